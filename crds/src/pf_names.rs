//! The `pfNames` / `rootDevices` entry syntax: `ens1f0` or `ens1f0#2-5`
//! (a PF and an inclusive range of VF indexes), and VF group ranges `2-5`.

use std::fmt;

/// An inclusive range of VF indexes, `start-end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VfRange {
    /// First VF index.
    pub start: u32,
    /// Last VF index (inclusive).
    pub end: u32,
}

impl VfRange {
    /// A range; `start` must not be above `end`.
    pub fn new(start: u32, end: u32) -> Result<Self, PfNameError> {
        if start > end {
            return Err(PfNameError::Reversed {
                entry: format!("{start}-{end}"),
                start,
                end,
            });
        }
        Ok(Self { start, end })
    }

    /// Parses `a-b`.
    pub fn parse(text: &str) -> Result<Self, PfNameError> {
        parse_range(text, text)
    }

    /// True when the two ranges share an index.
    pub fn overlaps(&self, other: &VfRange) -> bool {
        self.start <= other.end && other.start <= self.end
    }

    /// True when `index` is in the range.
    pub fn contains(&self, index: u32) -> bool {
        self.start <= index && index <= self.end
    }

    /// Number of VFs in the range.
    pub fn len(&self) -> u32 {
        self.end - self.start + 1
    }

    /// Never empty; present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl fmt::Display for VfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// A parsed `pfNames` (or `rootDevices`) entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PfSelector {
    /// PF netdev name (or PCI address for rootDevices).
    pub name: String,
    /// VF index range, when given with `#start-end`.
    pub range: Option<VfRange>,
}

impl PfSelector {
    /// Parses `ens1f0` or `ens1f0#2-5`.
    pub fn parse(entry: &str) -> Result<Self, PfNameError> {
        let mut parts = entry.split('#');
        let name = parts.next().unwrap_or_default();
        let range_text = parts.next();
        if parts.next().is_some() {
            return Err(PfNameError::Separator {
                entry: entry.to_string(),
            });
        }
        if name.is_empty() {
            return Err(PfNameError::EmptyName {
                entry: entry.to_string(),
            });
        }
        if name.chars().any(char::is_whitespace) {
            return Err(PfNameError::Whitespace {
                entry: entry.to_string(),
            });
        }
        let range = match range_text {
            None => None,
            Some(r) => Some(parse_range(entry, r)?),
        };
        Ok(Self {
            name: name.to_string(),
            range,
        })
    }

    /// The VF range this entry selects on a PF with `num_vfs` VFs:
    /// the explicit range, or all VFs `0-(num_vfs-1)`. `None` when `num_vfs` is 0
    /// and no range is given.
    pub fn effective_range(&self, num_vfs: u32) -> Option<VfRange> {
        match self.range {
            Some(r) => Some(r),
            None if num_vfs > 0 => Some(VfRange {
                start: 0,
                end: num_vfs - 1,
            }),
            None => None,
        }
    }
}

impl fmt::Display for PfSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.range {
            Some(r) => write!(f, "{}#{}", self.name, r),
            None => f.write_str(&self.name),
        }
    }
}

fn parse_range(entry: &str, text: &str) -> Result<VfRange, PfNameError> {
    let Some((a, b)) = text.split_once('-') else {
        return Err(PfNameError::RangeSyntax {
            entry: entry.to_string(),
        });
    };
    let parse = |s: &str, which: &'static str| {
        if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) {
            return Err(PfNameError::RangeNumber {
                entry: entry.to_string(),
                which,
                value: s.to_string(),
            });
        }
        s.parse::<u32>().map_err(|_| PfNameError::RangeNumber {
            entry: entry.to_string(),
            which,
            value: s.to_string(),
        })
    };
    let start = parse(a, "start")?;
    let end = parse(b, "end")?;
    if start > end {
        return Err(PfNameError::Reversed {
            entry: entry.to_string(),
            start,
            end,
        });
    }
    Ok(VfRange { start, end })
}

/// Why a `pfNames` entry or VF range does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PfNameError {
    /// More than one `#`.
    #[error(
        "PF name {entry:?} has more than one '#'; write it as <pf>#<first>-<last>, e.g. ens1f0#2-5"
    )]
    Separator {
        /// The entry.
        entry: String,
    },
    /// Nothing before `#`.
    #[error(
        "PF name {entry:?} has no interface name before '#'; write it as <pf>#<first>-<last>, e.g. ens1f0#2-5"
    )]
    EmptyName {
        /// The entry.
        entry: String,
    },
    /// Whitespace in the name.
    #[error("PF name {entry:?} contains whitespace; interface names have none")]
    Whitespace {
        /// The entry.
        entry: String,
    },
    /// The range is not `a-b`.
    #[error("VF range in {entry:?} must be <first>-<last>, e.g. ens1f0#2-5 (a single VF is 3-3)")]
    RangeSyntax {
        /// The entry.
        entry: String,
    },
    /// A bound is not a number.
    #[error("VF range in {entry:?}: {which} index {value:?} is not a non-negative number")]
    RangeNumber {
        /// The entry.
        entry: String,
        /// `start` or `end`.
        which: &'static str,
        /// The text.
        value: String,
    },
    /// start > end.
    #[error(
        "VF range in {entry:?}: first index {start} is above last index {end}; write {end}-{start}"
    )]
    Reversed {
        /// The entry.
        entry: String,
        /// First.
        start: u32,
        /// Last.
        end: u32,
    },
}
