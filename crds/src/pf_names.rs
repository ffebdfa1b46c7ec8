//! The one `pfNames` / `rootDevices` grammar, in the two forms upstream
//! accepts:
//!
//! - in a `SriovNetworkNodePolicy` ([`PfSelector`]): `ens1f0` or
//!   `ens1f0#2-5`, a PF and one inclusive range of VF indexes (the Go
//!   operator splits on `#` and `-`); VF group ranges are `2-5`;
//! - in the device plugin's config ([`PfVfList`]): `ens1f0` or
//!   `ens1f0#0-3,5,7-9`, a comma-separated list of indexes and ranges (the
//!   Go device plugin's form).
//!
//! Both share the split at `#` and its checks (one `#`, a name before it,
//! no whitespace in the name) and the number and range rules.

use std::collections::BTreeSet;
use std::fmt;

/// The largest number of VF indexes one range may name (a typo such as
/// `0-40000` would otherwise make a set of 40,001 entries).
pub const MAX_RANGE_LEN: u32 = 4096;

/// `NAME` or `NAME#TAIL`, with the checks both forms share.
fn split_entry(entry: &str) -> Result<(&str, Option<&str>), PfNameError> {
    let mut parts = entry.split('#');
    let name = parts.next().unwrap_or_default();
    let tail = parts.next();
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
    Ok((name, tail))
}

/// A device plugin `pfNames` / `rootDevices` entry: a PF, and the VF
/// indexes it selects (`None`: all its VFs, and the PF itself).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PfVfList {
    /// PF netdev name (or PCI address for rootDevices).
    pub name: String,
    /// The VF indexes after `#`.
    pub indexes: Option<BTreeSet<u32>>,
}

impl PfVfList {
    /// Parses `ens1f0` or `ens1f0#0-3,5,7-9` (spaces around the list's
    /// items are allowed).
    pub fn parse(entry: &str) -> Result<Self, PfNameError> {
        let (name, tail) = split_entry(entry)?;
        let Some(list) = tail else {
            return Ok(Self {
                name: name.to_string(),
                indexes: None,
            });
        };
        let mut set = BTreeSet::new();
        for item in list.split(',').map(str::trim) {
            if item.contains('-') {
                let r = parse_range(entry, item)?;
                set.extend(r.start..=r.end);
            } else {
                set.insert(parse_index(entry, "VF", item)?);
            }
        }
        Ok(Self {
            name: name.to_string(),
            indexes: Some(set),
        })
    }
}

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
    /// Parses `ens1f0` or `ens1f0#2-5`. A list (`#0-3,5`, the device
    /// plugin's form) is refused: a policy names one range per entry.
    pub fn parse(entry: &str) -> Result<Self, PfNameError> {
        let (name, tail) = split_entry(entry)?;
        let range = match tail {
            None => None,
            Some(r) if r.contains(',') => {
                return Err(PfNameError::RangeSyntax {
                    entry: entry.to_string(),
                });
            }
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

/// A non-negative decimal index (`which` names it in the error).
fn parse_index(entry: &str, which: &'static str, s: &str) -> Result<u32, PfNameError> {
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
}

fn parse_range(entry: &str, text: &str) -> Result<VfRange, PfNameError> {
    let Some((a, b)) = text.split_once('-') else {
        return Err(PfNameError::RangeSyntax {
            entry: entry.to_string(),
        });
    };
    let start = parse_index(entry, "start", a)?;
    let end = parse_index(entry, "end", b)?;
    if start > end {
        return Err(PfNameError::Reversed {
            entry: entry.to_string(),
            start,
            end,
        });
    }
    if end - start >= MAX_RANGE_LEN {
        return Err(PfNameError::TooLarge {
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
    /// A range naming more than 4096 VFs (`MAX_RANGE_LEN`).
    #[error("VF range in {entry:?}: {start}-{end} names more than 4096 VFs")]
    TooLarge {
        /// The entry.
        entry: String,
        /// First.
        start: u32,
        /// Last.
        end: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_share_the_name_and_number_rules() {
        for bad in [
            "#0-3",
            "a#1#2",
            "ens 1#0-1",
            "ens1#x-3",
            "ens1#3-1",
            "ens1#0-5000",
            "ens1#-",
        ] {
            assert!(PfSelector::parse(bad).is_err(), "policy form {bad}");
            assert!(PfVfList::parse(bad).is_err(), "plugin form {bad}");
        }
        assert_eq!(
            PfVfList::parse("ens1#3-1").unwrap_err(),
            PfSelector::parse("ens1#3-1").unwrap_err()
        );
    }

    #[test]
    fn the_policy_form_is_one_range_the_plugin_form_a_list() {
        let p = PfSelector::parse("ens1f0#2-5").unwrap();
        assert_eq!(
            (p.name.as_str(), p.range),
            ("ens1f0", Some(VfRange { start: 2, end: 5 }))
        );
        assert!(matches!(
            PfSelector::parse("ens1f0#0-3,5"),
            Err(PfNameError::RangeSyntax { .. })
        ));
        assert!(matches!(
            PfSelector::parse("ens1f0#3"),
            Err(PfNameError::RangeSyntax { .. })
        ));
        let l = PfVfList::parse("ens1f0#0-3, 5,7-8").unwrap();
        assert_eq!(l.name, "ens1f0");
        assert_eq!(
            l.indexes.unwrap().into_iter().collect::<Vec<_>>(),
            [0, 1, 2, 3, 5, 7, 8]
        );
        assert_eq!(PfVfList::parse("0000:3b:00.0").unwrap().indexes, None);
        assert_eq!(
            PfVfList::parse("0000:3b:00.0#4").unwrap().indexes,
            Some(BTreeSet::from([4]))
        );
    }
}
