//! The list of known SR-IOV NICs: vendor id, PF device id, VF device id.
//!
//! The compiled-in list comes from `data/supported-nic-ids.tsv`. At run time
//! it can be replaced or extended from a TSV file or from a map in the format
//! of the upstream `supported-nic-ids` ConfigMap (`Name: "vendor pf vf"`).

use std::collections::BTreeMap;
use std::path::Path;

const BUILTIN_TSV: &str = include_str!("../../data/supported-nic-ids.tsv");

/// One known NIC model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicId {
    /// Model key, e.g. `Intel_i40e_XXV710`.
    pub model: String,
    /// PCI vendor id, lowercase hex without 0x.
    pub vendor: String,
    /// PF device id, lowercase hex without 0x.
    pub pf_device: String,
    /// VF device id, lowercase hex without 0x.
    pub vf_device: String,
}

/// Errors while reading a NIC list.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NicIdError {
    /// A TSV line does not have the expected columns.
    #[error(
        "{source_name} line {line}: expected at least 4 tab-separated columns (model_key vendor_id pf_device_id vf_device_id), found {found}"
    )]
    Columns {
        /// File or map name.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// Columns found.
        found: usize,
    },
    /// A ConfigMap entry is not `"vendor pf vf"`.
    #[error(
        "{source_name} entry {key:?}: value {value:?} must be three space-separated ids \"vendor pf vf\", e.g. \"8086 158b 154c\""
    )]
    Entry {
        /// File or map name.
        source_name: String,
        /// Map key.
        key: String,
        /// Map value.
        value: String,
    },
    /// An id is not 4 hex digits.
    #[error(
        "{source_name} {location}: {what} id {value:?} must be 4 hex digits without 0x, e.g. 8086"
    )]
    BadId {
        /// File or map name.
        source_name: String,
        /// Line or key.
        location: String,
        /// vendor / PF device / VF device.
        what: &'static str,
        /// The bad value.
        value: String,
    },
    /// The file could not be read.
    #[error("reading NIC list {path}: {message}; check the path or the mounted ConfigMap")]
    Io {
        /// Path.
        path: String,
        /// The OS error.
        message: String,
    },
}

/// The list of known NICs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NicIdList {
    entries: Vec<NicId>,
}

fn normalize_id(
    source_name: &str,
    location: &str,
    what: &'static str,
    value: &str,
) -> Result<String, NicIdError> {
    let v = value.trim();
    let v = v.strip_prefix("0x").unwrap_or(v);
    if v.len() == 4 && v.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(v.to_ascii_lowercase())
    } else {
        Err(NicIdError::BadId {
            source_name: source_name.to_string(),
            location: location.to_string(),
            what,
            value: value.to_string(),
        })
    }
}

impl NicIdList {
    /// The compiled-in list from `data/supported-nic-ids.tsv`.
    pub fn builtin() -> Self {
        Self::parse_tsv(BUILTIN_TSV, "data/supported-nic-ids.tsv")
            .expect("the compiled-in data/supported-nic-ids.tsv is valid (checked by tests)")
    }

    /// An empty list.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses the TSV format: `model_key vendor_id pf_device_id vf_device_id [vendor driver]`,
    /// `#` comment lines, an optional header line starting with `model_key`.
    pub fn parse_tsv(text: &str, source_name: &str) -> Result<Self, NicIdError> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("model_key\t")
            {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() < 4 {
                return Err(NicIdError::Columns {
                    source_name: source_name.to_string(),
                    line: i + 1,
                    found: cols.len(),
                });
            }
            let loc = format!("line {}", i + 1);
            entries.push(NicId {
                model: cols[0].trim().to_string(),
                vendor: normalize_id(source_name, &loc, "vendor", cols[1])?,
                pf_device: normalize_id(source_name, &loc, "PF device", cols[2])?,
                vf_device: normalize_id(source_name, &loc, "VF device", cols[3])?,
            });
        }
        Ok(Self { entries })
    }

    /// Parses the upstream ConfigMap format: each value is `"vendor pf vf"`.
    pub fn parse_config_map(
        data: &BTreeMap<String, String>,
        source_name: &str,
    ) -> Result<Self, NicIdError> {
        let mut entries = Vec::new();
        for (key, value) in data {
            let ids: Vec<&str> = value.split_whitespace().collect();
            if ids.len() != 3 {
                return Err(NicIdError::Entry {
                    source_name: source_name.to_string(),
                    key: key.clone(),
                    value: value.clone(),
                });
            }
            let loc = format!("entry {key:?}");
            entries.push(NicId {
                model: key.clone(),
                vendor: normalize_id(source_name, &loc, "vendor", ids[0])?,
                pf_device: normalize_id(source_name, &loc, "PF device", ids[1])?,
                vf_device: normalize_id(source_name, &loc, "VF device", ids[2])?,
            });
        }
        Ok(Self { entries })
    }

    /// Reads a file: YAML/JSON map in ConfigMap format when it parses as a
    /// string map (a whole ConfigMap object with `data:` works too), TSV otherwise.
    pub fn from_file(path: &Path) -> Result<Self, NicIdError> {
        let text = std::fs::read_to_string(path).map_err(|e| NicIdError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let name = path.display().to_string();
        if text.lines().any(|l| l.contains('\t')) {
            return Self::parse_tsv(&text, &name);
        }
        #[derive(serde::Deserialize)]
        struct ConfigMapLike {
            data: BTreeMap<String, String>,
        }
        if let Ok(cm) = serde_saphyr::from_str::<ConfigMapLike>(&text) {
            return Self::parse_config_map(&cm.data, &name);
        }
        if let Ok(map) = serde_saphyr::from_str::<BTreeMap<String, String>>(&text) {
            return Self::parse_config_map(&map, &name);
        }
        Self::parse_tsv(&text, &name)
    }

    /// Adds entries of `other`; an entry with the same vendor and PF id replaces the old one.
    pub fn extend(&mut self, other: NicIdList) {
        for e in other.entries {
            self.entries
                .retain(|x| !(x.vendor == e.vendor && x.pf_device == e.pf_device));
            self.entries.push(e);
        }
    }

    /// All entries.
    pub fn entries(&self) -> &[NicId] {
        &self.entries
    }

    /// True when some entry has this vendor id.
    pub fn is_known_vendor(&self, vendor: &str) -> bool {
        self.entries
            .iter()
            .any(|e| e.vendor.eq_ignore_ascii_case(vendor))
    }

    /// True when some entry has this PF device id (any vendor).
    pub fn is_known_pf_device(&self, device: &str) -> bool {
        self.entries
            .iter()
            .any(|e| e.pf_device.eq_ignore_ascii_case(device))
    }

    /// True when (vendor, device) is a known PF.
    pub fn is_known_pf(&self, vendor: &str, device: &str) -> bool {
        self.find_pf(vendor, device).is_some()
    }

    /// True when (vendor, device) is a known VF (used inside VMs, where the NIC is a VF).
    pub fn is_known_vf(&self, vendor: &str, device: &str) -> bool {
        self.entries.iter().any(|e| {
            e.vendor.eq_ignore_ascii_case(vendor) && e.vf_device.eq_ignore_ascii_case(device)
        })
    }

    /// The entry of a known PF.
    pub fn find_pf(&self, vendor: &str, device: &str) -> Option<&NicId> {
        self.entries.iter().find(|e| {
            e.vendor.eq_ignore_ascii_case(vendor) && e.pf_device.eq_ignore_ascii_case(device)
        })
    }

    /// VF device id of a PF, by vendor and PF device id.
    pub fn vf_device_for(&self, vendor: &str, pf_device: &str) -> Option<&str> {
        self.find_pf(vendor, pf_device)
            .map(|e| e.vf_device.as_str())
    }

    /// VF device id of a PF device id of any vendor (the policy may not name the vendor).
    pub fn vf_device_for_pf_device(&self, pf_device: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.pf_device.eq_ignore_ascii_case(pf_device))
            .map(|e| e.vf_device.as_str())
    }
}
