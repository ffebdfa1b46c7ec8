//! The device plugin config file, in the upstream format:
//!
//! ```json
//! {"resourceList": [{
//!     "resourceName": "intel_sriov_netdevice",
//!     "resourcePrefix": "intel.com",
//!     "deviceType": "netDevice",
//!     "excludeTopology": false,
//!     "selectors": {"vendors": ["8086"], "drivers": ["iavf"]},
//!     "additionalInfo": {"*": {"key": "value"}}
//! }]}
//! ```
//!
//! Keys match case-insensitively (`IsRdma` is `isRdma`), as Go's
//! `encoding/json` does; unknown keys are ignored with a warning. `selectors`
//! is one object or a list of objects (a device matches the resource when it
//! matches any of them).
//!
//! As upstream, one bad entry never takes the others down: an entry with an
//! invalid name, prefix, device type, selectors or `additionalInfo` value,
//! or a duplicate name, is skipped with a warning that names it
//! (`resourceList[2] "intel_dpdk": ...`) and listed in
//! [`Config::skipped`]; an `additionalInfo` key that is neither `"*"` nor a
//! PCI address is ignored with a warning. Only a file that is not a JSON
//! object with a `resourceList` list is rejected as a whole.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::selectors::{SelectorError, Selectors};

/// The upstream default prefix.
pub const DEFAULT_PREFIX: &str = "intel.com";

/// What kind of device a resource hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceType {
    /// Network functions (PCI class 0x02): VFs, and PFs without VFs.
    NetDevice,
    /// Processing accelerators (PCI class 0x12).
    Accelerator,
    /// Auxiliary network devices: scalable functions on the auxiliary bus
    /// (`mlx5_core.sf.4`); the device ID is the auxiliary device's name.
    AuxNetDevice,
}

impl DeviceType {
    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "netdevice" => Some(DeviceType::NetDevice),
            "accelerator" => Some(DeviceType::Accelerator),
            "auxnetdevice" => Some(DeviceType::AuxNetDevice),
            _ => None,
        }
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceType::NetDevice => "netDevice",
            DeviceType::Accelerator => "accelerator",
            DeviceType::AuxNetDevice => "auxNetDevice",
        }
    }
}

/// One entry of `resourceList`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceConfig {
    /// `resourceName`: letters, digits, `_` and `-` (upstream's
    /// `^[a-zA-Z0-9_-]+$`).
    pub name: String,
    /// `resourcePrefix`, or the `--resource-prefix` default.
    pub prefix: String,
    pub device_type: DeviceType,
    /// Do not report NUMA topology for this resource's devices.
    pub exclude_topology: bool,
    /// One or more selector sets; a device matching any is claimed.
    pub selectors: Vec<Selectors>,
    /// `additionalInfo`: `"*"` applies to all devices, a PCI address to one.
    pub additional_info: BTreeMap<String, BTreeMap<String, String>>,
}

impl ResourceConfig {
    /// `<prefix>/<name>`, the name the kubelet schedules.
    pub fn resource_name(&self) -> String {
        format!("{}/{}", self.prefix, self.name)
    }

    /// The extra info of one device: the `"*"` entries overlaid with the
    /// device's own.
    pub fn extra_for(&self, pci: &str) -> BTreeMap<String, String> {
        let mut out = self.additional_info.get("*").cloned().unwrap_or_default();
        if let Some(own) = self.additional_info.get(pci) {
            out.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        out
    }
}

/// The whole config.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub resources: Vec<ResourceConfig>,
    /// Entries skipped, each with why (the message names the entry).
    pub skipped: Vec<String>,
}

/// Why a config was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source} (check --config-file)")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: invalid JSON: {source}")]
    Json {
        origin: String,
        source: serde_json::Error,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("{origin}: {entry}: {message}")]
    Entry {
        origin: String,
        entry: String,
        message: String,
    },
    #[error("{origin}: {entry}: selectors[{index}]: {source}")]
    Selector {
        origin: String,
        entry: String,
        index: usize,
        source: SelectorError,
    },
}

/// Maps the keys of `obj` onto the canonical spellings in `known`
/// (case-insensitively). Unknown keys are returned separately.
pub(crate) fn canonical_keys(
    obj: &Map<String, Value>,
    known: &[&'static str],
) -> (BTreeMap<&'static str, Value>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut unknown = Vec::new();
    for (k, v) in obj {
        match known.iter().find(|c| c.eq_ignore_ascii_case(k)) {
            Some(c) => {
                out.insert(*c, v.clone());
            }
            None => unknown.push(k.clone()),
        }
    }
    (out, unknown)
}

const RESOURCE_KEYS: &[&str] = &[
    "resourceName",
    "resourcePrefix",
    "deviceType",
    "excludeTopology",
    "selectors",
    "additionalInfo",
];

/// Whether a resource name is valid: what upstream checks,
/// `^[a-zA-Z0-9_-]+$`.
pub fn valid_resource_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether a prefix is a DNS subdomain (`intel.com`, `nvidia.com`).
pub fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.len() <= 253
        && prefix.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path, default_prefix: &str) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string(), default_prefix)
    }

    /// Parses and validates config text; `origin` names it in errors and
    /// warnings. Bad entries are skipped (see the module docs).
    pub fn parse(text: &str, origin: &str, default_prefix: &str) -> Result<Config, ConfigError> {
        let origin = origin.to_string();
        let invalid = |message: String| ConfigError::Invalid {
            origin: origin.clone(),
            message,
        };
        let root: Value = serde_json::from_str(text).map_err(|source| ConfigError::Json {
            origin: origin.clone(),
            source,
        })?;
        let Value::Object(root) = root else {
            return Err(invalid(
                "the config must be a JSON object with \"resourceList\"".into(),
            ));
        };
        let (top, unknown) = canonical_keys(&root, &["resourceList"]);
        for k in unknown {
            tracing::warn!(%origin, key = %k, "unknown top-level key ignored");
        }
        let list = match top.get("resourceList") {
            None | Some(Value::Null) => {
                return Err(invalid("\"resourceList\" is missing".into()));
            }
            Some(Value::Array(a)) => a,
            Some(_) => return Err(invalid("\"resourceList\" must be a list".into())),
        };
        let mut resources: Vec<ResourceConfig> = Vec::with_capacity(list.len());
        let mut skipped = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let r = parse_resource(item, i, &origin, default_prefix).and_then(|r| {
                if resources
                    .iter()
                    .any(|o| o.resource_name() == r.resource_name())
                {
                    return Err(ConfigError::Entry {
                        origin: origin.clone(),
                        entry: format!("resourceList[{i}] {:?}", r.name),
                        message: format!(
                            "duplicate resource {}: each resource name may appear once",
                            r.resource_name()
                        ),
                    });
                }
                Ok(r)
            });
            match r {
                Ok(r) => resources.push(r),
                Err(e) => {
                    tracing::warn!(error = %e, "resource entry skipped; the other entries are used");
                    skipped.push(e.to_string());
                }
            }
        }
        Ok(Config { resources, skipped })
    }
}

fn parse_resource(
    item: &Value,
    i: usize,
    origin: &str,
    default_prefix: &str,
) -> Result<ResourceConfig, ConfigError> {
    let mut entry = format!("resourceList[{i}]");
    let err = |entry: &str, message: String| ConfigError::Entry {
        origin: origin.to_string(),
        entry: entry.to_string(),
        message,
    };
    let Value::Object(obj) = item else {
        return Err(err(&entry, "each resource must be a JSON object".into()));
    };
    let (f, unknown) = canonical_keys(obj, RESOURCE_KEYS);
    let name = match f.get("resourceName") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => {
            return Err(err(&entry, "\"resourceName\" is missing".into()));
        }
        Some(_) => return Err(err(&entry, "\"resourceName\" must be a string".into())),
    };
    entry = format!("resourceList[{i}] {name:?}");
    for k in unknown {
        tracing::warn!(%origin, entry = %entry, key = %k, "unknown key ignored");
    }
    if !valid_resource_name(&name) {
        return Err(err(
            &entry,
            "invalid resourceName: use letters, digits, '_' and '-'".into(),
        ));
    }
    let string = |key: &str| -> Result<Option<String>, ConfigError> {
        match f.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(err(&entry, format!("{key:?} must be a string"))),
        }
    };
    let prefix = string("resourcePrefix")?
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| default_prefix.to_string());
    if !valid_prefix(&prefix) {
        return Err(err(
            &entry,
            format!("invalid resourcePrefix {prefix:?}: use a DNS name such as intel.com"),
        ));
    }
    let device_type = match string("deviceType")? {
        None => DeviceType::NetDevice,
        Some(s) if s.is_empty() => DeviceType::NetDevice,
        Some(s) => DeviceType::parse(&s).ok_or_else(|| {
            err(
                &entry,
                format!("unknown deviceType {s:?}: use netDevice, accelerator or auxNetDevice"),
            )
        })?,
    };
    let exclude_topology = match f.get("excludeTopology") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(err(
                &entry,
                "\"excludeTopology\" must be true or false".into(),
            ));
        }
    };
    let raw_selectors: Vec<&Value> = match f.get("selectors") {
        None | Some(Value::Null) => {
            return Err(err(
                &entry,
                "\"selectors\" is missing: give an object or a list of objects".into(),
            ));
        }
        Some(v @ Value::Object(_)) => vec![v],
        Some(Value::Array(a)) if a.is_empty() => {
            return Err(err(&entry, "\"selectors\" is an empty list".into()));
        }
        Some(Value::Array(a)) => a.iter().collect(),
        Some(_) => {
            return Err(err(
                &entry,
                "\"selectors\" must be an object or a list of objects".into(),
            ));
        }
    };
    let mut selectors = Vec::with_capacity(raw_selectors.len());
    for (index, v) in raw_selectors.into_iter().enumerate() {
        let s = Selectors::from_json(v, device_type).map_err(|source| ConfigError::Selector {
            origin: origin.to_string(),
            entry: entry.clone(),
            index,
            source,
        })?;
        if s.is_rdma && s.vdpa_type.is_some() {
            // as upstream's netDevice ValidConfig
            return Err(err(
                &entry,
                format!("selectors[{index}]: isRdma and vdpaType are mutually exclusive"),
            ));
        }
        if device_type == DeviceType::AuxNetDevice {
            // as upstream's auxNetDevice ValidConfig: auxTypes is required,
            // and only scalable functions are supported
            if s.aux_types.is_empty() {
                return Err(err(
                    &entry,
                    format!("selectors[{index}]: auxNetDevice needs \"auxTypes\": [\"sf\"]"),
                ));
            }
            if let Some(t) = s.aux_types.iter().find(|t| *t != "sf") {
                return Err(err(
                    &entry,
                    format!("selectors[{index}]: auxTypes {t:?} is not supported: only \"sf\""),
                ));
            }
        }
        selectors.push(s);
    }
    let additional_info = match f.get("additionalInfo") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(v) => serde_json::from_value::<BTreeMap<String, BTreeMap<String, String>>>(v.clone())
            .map_err(|e| {
                err(
                    &entry,
                    format!(
                        "\"additionalInfo\" must map \"*\" or a PCI address to string pairs: {e}"
                    ),
                )
            })?,
    };
    // Keys: "*" or a PCI address (short form accepted: entries for it
    // apply to the full one). Upstream takes any key and looks devices up
    // by address, so another key never matches: ignored with a warning.
    let additional_info = additional_info
        .into_iter()
        .filter_map(|(k, v)| {
            if k == "*" {
                return Some((k, v));
            }
            match sriov_host::PciAddress::parse(&k) {
                Some(a) => Some((a.to_string(), v)),
                None => {
                    tracing::warn!(%origin, entry = %entry, key = %k,
                        "additionalInfo key is neither \"*\" nor a PCI address; ignored");
                    None
                }
            }
        })
        .collect();
    Ok(ResourceConfig {
        name,
        prefix,
        device_type,
        exclude_topology,
        selectors,
        additional_info,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, "test.json", DEFAULT_PREFIX)
    }

    #[test]
    fn minimal_resource_gets_defaults() {
        let c = parse(r#"{"resourceList":[{"resourceName":"a","selectors":{}}]}"#).unwrap();
        let r = &c.resources[0];
        assert_eq!(r.resource_name(), "intel.com/a");
        assert_eq!(r.device_type, DeviceType::NetDevice);
        assert!(!r.exclude_topology);
        assert_eq!(r.selectors.len(), 1);
    }

    #[test]
    fn keys_match_case_insensitively() {
        let c = parse(
            r#"{"ResourceList":[{"RESOURCENAME":"a","resourceprefix":"nvidia.com",
                "DeviceType":"NETDEVICE","ExcludeTopology":true,
                "Selectors":{"Vendors":["15B3"],"IsRdma":true}}]}"#,
        )
        .unwrap();
        let r = &c.resources[0];
        assert_eq!(r.resource_name(), "nvidia.com/a");
        assert_eq!(r.device_type, DeviceType::NetDevice);
        assert!(r.exclude_topology);
        assert_eq!(r.selectors[0].vendors, vec![0x15b3]);
        assert!(r.selectors[0].is_rdma);
    }

    #[test]
    fn selectors_may_be_a_list() {
        let c = parse(
            r#"{"resourceList":[{"resourceName":"a","selectors":[{"drivers":["iavf"]},{"drivers":["i40e"]}]}]}"#,
        )
        .unwrap();
        assert_eq!(c.resources[0].selectors.len(), 2);
        assert_eq!(
            c.resources[0].selectors[1].drivers,
            vec!["i40e".to_string()]
        );
    }

    #[test]
    fn bad_entries_are_skipped_naming_the_entry() {
        let cases = [
            (
                r#"{"resourceList":[{"resourceName":"a","deviceType":"gpu","selectors":{}}]}"#,
                "resourceList[0] \"a\": unknown deviceType \"gpu\"",
            ),
            (
                r#"{"resourceList":[{"resourceName":"a"}]}"#,
                "resourceList[0] \"a\": \"selectors\" is missing",
            ),
            (
                r#"{"resourceList":[{"resourceName":"bad name","selectors":{}}]}"#,
                "resourceList[0] \"bad name\": invalid resourceName",
            ),
            (
                r#"{"resourceList":[{"resourceName":"bad.name","selectors":{}}]}"#,
                "invalid resourceName",
            ),
            (
                r#"{"resourceList":[{"selectors":{}}]}"#,
                "resourceList[0]: \"resourceName\" is missing",
            ),
            (
                r#"{"resourceList":[{"resourceName":"a","selectors":{"vendors":["0x80g6"]}}]}"#,
                "resourceList[0] \"a\": selectors[0]: vendors",
            ),
            (
                r#"{"resourceList":[{"resourceName":"a","selectors":{"pfNames":["ens1#3-1"]}}]}"#,
                "resourceList[0] \"a\": selectors[0]: pfNames",
            ),
            (
                r#"{"resourceList":[{"resourceName":"a","selectors":[]}]}"#,
                "\"selectors\" is an empty list",
            ),
            (
                r#"{"resourceList":[{"resourceName":"a","resourcePrefix":"not a prefix","selectors":{}}]}"#,
                "invalid resourcePrefix",
            ),
            (
                r#"{"resourceList":[{"resourceName":"a","selectors":{},"additionalInfo":{"*":{"a":1}}}]}"#,
                "\"additionalInfo\" must map",
            ),
            (
                r#"{"resourceList":[{"resourceName":"a","selectors":{"isRdma":true,"vdpaType":"vhost"}}]}"#,
                "isRdma and vdpaType are mutually exclusive",
            ),
        ];
        for (text, want) in cases {
            let c = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(c.resources.is_empty(), "{text}: {c:?}");
            assert_eq!(c.skipped.len(), 1, "{text}: {c:?}");
            let e = &c.skipped[0];
            assert!(e.contains(want), "{text}\n got: {e}\nwant: {want}");
            assert!(e.starts_with("test.json"), "{e}");
        }
    }

    /// One bad entry never takes the others down (upstream skips it with a
    /// warning); a duplicate name keeps the first entry.
    #[test]
    fn a_bad_entry_leaves_the_others() {
        let c = parse(
            r#"{"resourceList":[
                {"resourceName":"good","selectors":{"drivers":["iavf"]}},
                {"resourceName":"bad","selectors":{"vendors":"8086"}},
                {"resourceName":"not valid!","selectors":{}},
                {"resourceName":"good","selectors":{"drivers":["ice"]}},
                {"resourceName":"also-good","selectors":{},
                 "additionalInfo":{"eth0":{"a":"b"},"*":{"c":"d"}}}]}"#,
        )
        .unwrap();
        let names: Vec<_> = c.resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["good", "also-good"]);
        assert_eq!(c.resources[0].selectors[0].drivers, ["iavf"]);
        assert_eq!(c.skipped.len(), 3, "{:?}", c.skipped);
        assert!(c.skipped[2].contains("duplicate resource intel.com/good"));
        // the bad additionalInfo key is dropped, the rest kept
        let info = &c.resources[1].additional_info;
        assert_eq!(info.keys().collect::<Vec<_>>(), ["*"]);
    }

    /// Upstream's resource name pattern, hyphens included.
    #[test]
    fn resource_names_as_upstream() {
        for ok in ["a", "intel_sriov-netdevice", "A-1_b", "-x"] {
            assert!(valid_resource_name(ok), "{ok}");
        }
        for bad in ["", "a.b", "a/b", "a b", "ä"] {
            assert!(!valid_resource_name(bad), "{bad}");
        }
        let c =
            parse(r#"{"resourceList":[{"resourceName":"sriov-net-a","selectors":{}}]}"#).unwrap();
        assert_eq!(c.resources[0].resource_name(), "intel.com/sriov-net-a");
    }

    /// What the Go operator writes (its config map for a node): `IsRdma`
    /// and `NeedVhostNet` always present, false meaning "no filter", and
    /// an unknown `SelectorObj` key.
    #[test]
    fn go_operator_config_parses() {
        let c = parse(
            r#"{"resourceList":[{"resourceName":"sriovnics","selectors":{"pfNames":["ens785f0#0-4","ens785f1#0-9"],"IsRdma":false,"NeedVhostNet":false},"SelectorObj":null}]}"#,
        )
        .unwrap();
        assert!(c.skipped.is_empty());
        let s = &c.resources[0].selectors[0];
        assert!(!s.is_rdma && !s.need_vhost_net);
        assert_eq!(s.pf_names.len(), 2);
    }

    #[test]
    fn whole_file_errors() {
        for (text, want) in [
            (r#"{"resourceList": [}"#, "test.json: invalid JSON"),
            (r#"[]"#, "must be a JSON object"),
            (r#"{}"#, "\"resourceList\" is missing"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}\n got: {e}\nwant: {want}");
        }
    }

    #[test]
    fn same_name_with_other_prefix_is_not_a_duplicate() {
        let c = parse(
            r#"{"resourceList":[{"resourceName":"a","selectors":{}},{"resourceName":"a","resourcePrefix":"x.io","selectors":{}}]}"#,
        )
        .unwrap();
        assert_eq!(c.resources.len(), 2);
    }

    #[test]
    fn additional_info_overlays_star_with_the_device() {
        let c = parse(
            r#"{"resourceList":[{"resourceName":"a","selectors":{},
               "additionalInfo":{"*":{"k":"all","x":"1"},"3b:02.0":{"k":"own"}}}]}"#,
        )
        .unwrap();
        let r = &c.resources[0];
        let e = r.extra_for("0000:3b:02.0");
        assert_eq!(e.get("k").map(String::as_str), Some("own"));
        assert_eq!(e.get("x").map(String::as_str), Some("1"));
        assert_eq!(
            r.extra_for("0000:3b:02.1").get("k").map(String::as_str),
            Some("all")
        );
    }

    /// The example configs documented by the upstream project parse.
    #[test]
    fn upstream_examples_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "json")
                && p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("upstream-")
            {
                let c = Config::load(&p, DEFAULT_PREFIX)
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                assert!(!c.resources.is_empty(), "{}", p.display());
                n += 1;
            }
        }
        assert!(n >= 3, "fixtures missing in {}", dir.display());
    }
}
