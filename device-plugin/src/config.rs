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
//! The file is read into the typed model the config daemon and the
//! operator write, [`sriov_crds::device_plugin_config`], by its reader
//! [`sriov_crds::device_plugin_config::read`]: keys match
//! case-insensitively (`IsRdma` is `isRdma`) and `null` is as absent, as Go's
//! `encoding/json` does; unknown keys are ignored with a warning.
//! `selectors` is one object or a list of objects (a device matches the
//! resource when it matches any of them). Each entry is then turned into
//! the plugin's runtime form ([`ResourceConfig`], [`Selectors`]: ids as
//! numbers, PCI addresses and VF ranges parsed).
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

use sriov_crds::device_plugin_config::{self as model, Entry, ReadError};

use crate::selectors::{SelectorError, Selectors};

pub use sriov_crds::device_plugin_config::{DeviceType, valid_prefix, valid_resource_name};

/// The upstream default prefix.
pub const DEFAULT_PREFIX: &str = "intel.com";

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
        let entries = model::read(text, origin).map_err(|e| match e {
            ReadError::Json(source) => ConfigError::Json {
                origin: origin.to_string(),
                source,
            },
            ReadError::Invalid(message) => ConfigError::Invalid {
                origin: origin.to_string(),
                message: message.to_string(),
            },
        })?;
        let mut resources: Vec<ResourceConfig> = Vec::with_capacity(entries.len());
        let mut skipped = Vec::new();
        for entry in entries {
            let r = entry
                .map_err(|e| ConfigError::Entry {
                    origin: origin.to_string(),
                    entry: e.label,
                    message: e.message,
                })
                .and_then(|e| {
                    let r = runtime_resource(&e, origin, default_prefix)?;
                    if resources
                        .iter()
                        .any(|o| o.resource_name() == r.resource_name())
                    {
                        return Err(ConfigError::Entry {
                            origin: origin.to_string(),
                            entry: e.label,
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

/// One entry of the model in the plugin's runtime form: the prefix
/// defaulted, selectors parsed, `additionalInfo` keys normalised.
fn runtime_resource(
    e: &Entry,
    origin: &str,
    default_prefix: &str,
) -> Result<ResourceConfig, ConfigError> {
    let err = |message: String| ConfigError::Entry {
        origin: origin.to_string(),
        entry: e.label.clone(),
        message,
    };
    let r = &e.resource;
    let prefix = if r.resource_prefix.is_empty() {
        default_prefix
    } else {
        &r.resource_prefix
    };
    if !valid_prefix(prefix) {
        return Err(err(format!(
            "invalid resourcePrefix {prefix:?}: use a DNS name such as intel.com"
        )));
    }
    let model_selectors = r.selectors.as_ref().map(|s| s.as_slice()).unwrap_or(&[]);
    let mut selectors = Vec::with_capacity(model_selectors.len());
    for (index, s) in model_selectors.iter().enumerate() {
        selectors.push(Selectors::from_model(s, e.device_type).map_err(|source| {
            ConfigError::Selector {
                origin: origin.to_string(),
                entry: e.label.clone(),
                index,
                source,
            }
        })?);
    }
    // Keys: "*" or a PCI address (short form accepted: entries for it
    // apply to the full one). Upstream takes any key and looks devices up
    // by address, so another key never matches: ignored with a warning.
    let additional_info = r
        .additional_info
        .iter()
        .filter_map(|(k, v)| {
            if k == "*" {
                return Some((k.clone(), v.clone()));
            }
            match sriov_host::PciAddress::parse(k) {
                Some(a) => Some((a.to_string(), v.clone())),
                None => {
                    tracing::warn!(%origin, entry = %e.label, key = %k,
                        "additionalInfo key is neither \"*\" nor a PCI address; ignored");
                    None
                }
            }
        })
        .collect();
    Ok(ResourceConfig {
        name: r.resource_name.clone(),
        prefix: prefix.to_string(),
        device_type: e.device_type,
        exclude_topology: r.exclude_topology,
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
