//! The sriov-network-device-plugin config file (`config.json`):
//! `{"resourceList": [{resourceName, resourcePrefix?, deviceType?,
//! excludeTopology?, selectors: object | [object], additionalInfo?}]}`.
//!
//! Field names are those of the Go device plugin. `IsRdma` and `NeedVhostNet`
//! have no JSON tag in the Go operator's copy of these types, so it writes
//! them capitalized and always; both spellings are read.
//!
//! One model for both sides: the config daemon and the operator build a
//! [`DevicePluginConfig`] (`policy_merge::render_device_plugin_config`) and
//! serialize it; the device plugin reads the file into the same types with
//! [`read`], which layers the Go plugin's leniency on top of the typed
//! deserialisation (keys matched case-insensitively, `null` as absent,
//! unknown keys ignored with a warning, one bad entry skipped, not the
//! file). The rules that decide whether an entry is usable
//! ([`valid_resource_name`], [`valid_prefix`], [`DeviceType`] and the
//! selectors each type takes, [`NetDeviceSelectors::validate`]) live here too.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod read;

pub use read::{Entry, EntryError, ReadError, SelectorError, read, read_selectors};

/// The whole config file.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct DevicePluginConfig {
    /// Resource pools; the first pool whose selectors match a device claims it.
    #[serde(rename = "resourceList", default)]
    pub resource_list: Vec<ResourceConfig>,
}

/// One resource pool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceConfig {
    /// Prefix overriding the plugin's `--resource-prefix` (e.g. `openshift.io`).
    #[serde(
        rename = "resourcePrefix",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub resource_prefix: String,
    /// Resource name, advertised as `<prefix>/<name>`.
    #[serde(rename = "resourceName")]
    pub resource_name: String,
    /// `netDevice` (default), `accelerator` or `auxNetDevice`.
    #[serde(
        rename = "deviceType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub device_type: String,
    /// Do not report NUMA topology for this pool.
    #[serde(rename = "excludeTopology", default, skip_serializing_if = "is_false")]
    pub exclude_topology: bool,
    /// Device selectors: one object, or a list (a device matching any entry is selected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selectors: Option<Selectors>,
    /// Extra key/values per device (`"*"` for all) put into the device-info file.
    #[serde(
        rename = "additionalInfo",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub additional_info: BTreeMap<String, BTreeMap<String, String>>,
}

impl DevicePluginConfig {
    /// The top-level keys, as spelled in the file.
    pub const FIELDS: &'static [&'static str] = &["resourceList"];
}

impl ResourceConfig {
    /// The keys of a `resourceList` entry, as spelled in the file (the
    /// serde names of the fields above; a unit test keeps them in step).
    pub const FIELDS: &'static [&'static str] = &[
        "resourcePrefix",
        "resourceName",
        "deviceType",
        "excludeTopology",
        "selectors",
        "additionalInfo",
    ];
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `selectors`: one object or a list of objects.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(untagged)]
pub enum Selectors {
    /// A single selector object.
    One(Box<NetDeviceSelectors>),
    /// A list; a device matching any entry is selected.
    Many(Vec<NetDeviceSelectors>),
}

impl Selectors {
    /// The selector objects as a slice.
    pub fn as_slice(&self) -> &[NetDeviceSelectors] {
        match self {
            Selectors::One(s) => std::slice::from_ref(s),
            Selectors::Many(v) => v,
        }
    }
}

/// Selectors of network devices. Empty lists match everything.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct NetDeviceSelectors {
    /// PCI vendor ids (lowercase hex, no 0x).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vendors: Vec<String>,
    /// PCI device ids (the VF device id for VF pools).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// Bound drivers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drivers: Vec<String>,
    /// PCI addresses.
    #[serde(
        rename = "pciAddresses",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub pci_addresses: Vec<String>,
    /// ACPI indexes.
    #[serde(rename = "acpiIndexes", default, skip_serializing_if = "Vec::is_empty")]
    pub acpi_indexes: Vec<String>,
    /// PF names with optional VF ranges: `ens1f0`, `ens1f0#0-3,5`.
    #[serde(rename = "pfNames", default, skip_serializing_if = "Vec::is_empty")]
    pub pf_names: Vec<String>,
    /// PF PCI addresses with optional VF ranges.
    #[serde(rename = "rootDevices", default, skip_serializing_if = "Vec::is_empty")]
    pub root_devices: Vec<String>,
    /// `ether` or `infiniband`.
    #[serde(rename = "linkTypes", default, skip_serializing_if = "Vec::is_empty")]
    pub link_types: Vec<String>,
    /// Intel DDP profile names.
    #[serde(rename = "ddpProfiles", default, skip_serializing_if = "Vec::is_empty")]
    pub ddp_profiles: Vec<String>,
    /// Mount RDMA character devices.
    #[serde(rename = "IsRdma", alias = "isRdma", default)]
    pub is_rdma: bool,
    /// Mount `/dev/vhost-net` and `/dev/net/tun`.
    #[serde(rename = "NeedVhostNet", alias = "needVhostNet", default)]
    pub need_vhost_net: bool,
    /// `virtio` or `vhost`.
    #[serde(rename = "vdpaType", default, skip_serializing_if = "String::is_empty")]
    pub vdpa_type: String,
    /// Auxiliary device types (`sf`), for `auxNetDevice` pools.
    #[serde(rename = "auxTypes", default, skip_serializing_if = "Vec::is_empty")]
    pub aux_types: Vec<String>,
    /// InfiniBand partition keys (`0x7fff`) of the device's port 1.
    #[serde(rename = "pKeys", default, skip_serializing_if = "Vec::is_empty")]
    pub p_keys: Vec<String>,
}

impl NetDeviceSelectors {
    /// The selector keys, as spelled in the file. `isRdma` and
    /// `needVhostNet` in their documented spelling (both spellings are
    /// read; the writers write `IsRdma` and `NeedVhostNet`).
    pub const FIELDS: &'static [&'static str] = &[
        "vendors",
        "devices",
        "drivers",
        "pciAddresses",
        "acpiIndexes",
        "pfNames",
        "rootDevices",
        "linkTypes",
        "ddpProfiles",
        "pKeys",
        "isRdma",
        "needVhostNet",
        "vdpaType",
        "auxTypes",
    ];

    /// The rules of one selector set for a device type, as the Go plugin's
    /// `ValidConfig`: `isRdma` and `vdpaType` are mutually exclusive; an
    /// `auxNetDevice` set needs `auxTypes`, and only `sf` is supported.
    pub fn validate(&self, device_type: DeviceType) -> Result<(), String> {
        if self.is_rdma && !self.vdpa_type.is_empty() {
            return Err("isRdma and vdpaType are mutually exclusive".into());
        }
        if device_type == DeviceType::AuxNetDevice {
            if self.aux_types.is_empty() {
                return Err("auxNetDevice needs \"auxTypes\": [\"sf\"]".into());
            }
            if let Some(t) = self.aux_types.iter().find(|t| *t != "sf") {
                return Err(format!("auxTypes {t:?} is not supported: only \"sf\""));
            }
        }
        Ok(())
    }
}

/// What kind of device a resource hands out (`deviceType`).
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
    /// A `deviceType` value, any case; empty is `netDevice` (the default).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "" | "netdevice" => Some(DeviceType::NetDevice),
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

    /// Whether a selector key (one of [`NetDeviceSelectors::FIELDS`])
    /// applies to this device type. The Go plugin has a selector struct per
    /// type and ignores the other keys; so does [`read`] (with a warning).
    pub fn takes(self, key: &str) -> bool {
        match self {
            DeviceType::NetDevice => key != "auxTypes",
            DeviceType::Accelerator => matches!(
                key,
                "vendors" | "devices" | "drivers" | "pciAddresses" | "acpiIndexes"
            ),
            DeviceType::AuxNetDevice => matches!(
                key,
                "vendors"
                    | "devices"
                    | "drivers"
                    | "pfNames"
                    | "rootDevices"
                    | "linkTypes"
                    | "isRdma"
                    | "needVhostNet"
                    | "auxTypes"
            ),
        }
    }
}

/// Whether a resource name is valid: what upstream checks,
/// `^[a-zA-Z0-9_-]+$`.
pub fn valid_resource_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether a resource prefix is a DNS subdomain (`intel.com`, `nvidia.com`).
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

/// Errors reading a device plugin config.
#[derive(Debug, thiserror::Error)]
#[error(
    "device plugin config is not valid: {0}; expected {{\"resourceList\": [{{\"resourceName\": ..., \"selectors\": {{...}}}}]}}"
)]
pub struct DevicePluginConfigError(#[from] serde_json::Error);

impl DevicePluginConfig {
    /// Parses the JSON config file strictly: the text must match the model
    /// as the writers write it (exact key spellings, no `null` lists). The
    /// device plugin reads with [`read`] instead.
    pub fn from_json(text: &str) -> Result<Self, DevicePluginConfigError> {
        Ok(serde_json::from_str(text)?)
    }

    /// The JSON text (pretty printed) as the device plugin reads it.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("device plugin config serializes")
    }
}

/// The Go operator's `ResourceConfig` as `encoding/json` writes it: field
/// order of the Go struct, `excludeTopology` only when true, and the untagged
/// `SelectorObj` field always present as `null`.
#[derive(Serialize)]
struct UpstreamResource<'a> {
    #[serde(rename = "resourcePrefix", skip_serializing_if = "str::is_empty")]
    resource_prefix: &'a str,
    #[serde(rename = "resourceName")]
    resource_name: &'a str,
    #[serde(rename = "deviceType", skip_serializing_if = "str::is_empty")]
    device_type: &'a str,
    #[serde(rename = "excludeTopology", skip_serializing_if = "is_false")]
    exclude_topology: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    selectors: Option<&'a Selectors>,
    #[serde(rename = "SelectorObj")]
    selector_obj: Option<()>,
}

#[derive(Serialize)]
struct UpstreamList<'a> {
    #[serde(rename = "resourceList")]
    resource_list: Option<Vec<UpstreamResource<'a>>>,
}

/// Escapes like Go's `encoding/json` (HTML-safe): `<`, `>`, `&`, U+2028 and
/// U+2029 become `\uXXXX`. They can only occur inside JSON strings.
pub fn go_json_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

impl DevicePluginConfig {
    /// The compact JSON the Go operator writes into the `device-plugin-config`
    /// ConfigMap: byte for byte what `json.Marshal(ResourceConfList)` gives,
    /// `{"resourceList":null}` for a node without resources.
    pub fn to_upstream_json(&self) -> String {
        let list = UpstreamList {
            resource_list: (!self.resource_list.is_empty()).then(|| {
                self.resource_list
                    .iter()
                    .map(|r| UpstreamResource {
                        resource_prefix: &r.resource_prefix,
                        resource_name: &r.resource_name,
                        device_type: &r.device_type,
                        exclude_topology: r.exclude_topology,
                        selectors: r.selectors.as_ref(),
                        selector_obj: None,
                    })
                    .collect()
            }),
        };
        go_json_escape(&serde_json::to_string(&list).expect("device plugin config serializes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn full_selectors() -> NetDeviceSelectors {
        let l = |s: &str| vec![s.to_string()];
        NetDeviceSelectors {
            vendors: l("8086"),
            devices: l("154c"),
            drivers: l("iavf"),
            pci_addresses: l("0000:3b:02.0"),
            acpi_indexes: l("101"),
            pf_names: l("ens1f0#0-3"),
            root_devices: l("0000:3b:00.0"),
            link_types: l("ether"),
            ddp_profiles: l("GTP"),
            is_rdma: true,
            need_vhost_net: true,
            vdpa_type: "vhost".into(),
            aux_types: l("sf"),
            p_keys: l("0x7fff"),
        }
    }

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort_by_key(|s| s.to_ascii_lowercase());
        k
    }

    fn lower_sorted(f: &[&str]) -> Vec<String> {
        let mut k: Vec<String> = f.iter().map(|s| s.to_ascii_lowercase()).collect();
        k.sort();
        k
    }

    /// The key lists the reader normalises against are the serde names of
    /// the model (so a field added to the model without its key fails here).
    #[test]
    fn fields_are_the_serde_names() {
        let r = ResourceConfig {
            resource_prefix: "example.com".into(),
            resource_name: "a".into(),
            device_type: "netDevice".into(),
            exclude_topology: true,
            selectors: Some(Selectors::One(Box::new(full_selectors()))),
            additional_info: [("*".to_string(), BTreeMap::new())].into(),
        };
        let v = serde_json::to_value(&r).unwrap();
        let mut want: Vec<String> = ResourceConfig::FIELDS
            .iter()
            .map(|s| s.to_string())
            .collect();
        want.sort_by_key(|s| s.to_ascii_lowercase());
        assert_eq!(keys(&v), want);
        let sel = &v["selectors"];
        let got: Vec<String> = keys(sel).iter().map(|s| s.to_ascii_lowercase()).collect();
        assert_eq!(got, lower_sorted(NetDeviceSelectors::FIELDS));
        // each spelling in FIELDS is one serde reads (not ignored)
        for f in NetDeviceSelectors::FIELDS {
            let one =
                json!({ *f: sel[keys(sel).iter().find(|k| k.eq_ignore_ascii_case(f)).unwrap()] });
            let s: NetDeviceSelectors = serde_json::from_value(one).unwrap();
            assert_ne!(s, NetDeviceSelectors::default(), "{f}");
        }
        let top = serde_json::to_value(DevicePluginConfig::default()).unwrap();
        assert_eq!(keys(&top), DevicePluginConfig::FIELDS);
    }

    #[test]
    fn device_types_and_the_selectors_they_take() {
        assert_eq!(DeviceType::parse(""), Some(DeviceType::NetDevice));
        assert_eq!(
            DeviceType::parse("AUXNETDEVICE"),
            Some(DeviceType::AuxNetDevice)
        );
        assert_eq!(DeviceType::parse("gpu"), None);
        for t in [
            DeviceType::NetDevice,
            DeviceType::Accelerator,
            DeviceType::AuxNetDevice,
        ] {
            assert_eq!(DeviceType::parse(t.as_str()), Some(t));
        }
        let takes = |t: DeviceType| -> Vec<&str> {
            NetDeviceSelectors::FIELDS
                .iter()
                .copied()
                .filter(|k| t.takes(k))
                .collect()
        };
        assert_eq!(
            takes(DeviceType::NetDevice).len(),
            NetDeviceSelectors::FIELDS.len() - 1
        );
        assert_eq!(
            takes(DeviceType::Accelerator),
            [
                "vendors",
                "devices",
                "drivers",
                "pciAddresses",
                "acpiIndexes"
            ]
        );
        assert!(takes(DeviceType::AuxNetDevice).contains(&"auxTypes"));
        assert!(!takes(DeviceType::AuxNetDevice).contains(&"pKeys"));
    }

    #[test]
    fn selector_rules() {
        let mut s = NetDeviceSelectors {
            is_rdma: true,
            vdpa_type: "vhost".into(),
            ..Default::default()
        };
        assert!(
            s.validate(DeviceType::NetDevice)
                .unwrap_err()
                .contains("mutually exclusive")
        );
        s.vdpa_type.clear();
        assert_eq!(s.validate(DeviceType::NetDevice), Ok(()));
        assert!(
            s.validate(DeviceType::AuxNetDevice)
                .unwrap_err()
                .contains("needs \"auxTypes\"")
        );
        s.aux_types = vec!["eth".into()];
        assert!(
            s.validate(DeviceType::AuxNetDevice)
                .unwrap_err()
                .contains("only \"sf\"")
        );
        s.aux_types = vec!["sf".into()];
        assert_eq!(s.validate(DeviceType::AuxNetDevice), Ok(()));
    }

    fn read_ok(text: &str) -> Vec<Entry> {
        read(text, "t.json")
            .unwrap()
            .into_iter()
            .map(|e| e.unwrap_or_else(|e| panic!("{text}: {e}")))
            .collect()
    }

    fn read_err(text: &str) -> String {
        let mut all = read(text, "t.json").unwrap();
        assert_eq!(all.len(), 1);
        all.remove(0).unwrap_err().to_string()
    }

    /// Go's encoding/json leniency: any key case, null as absent, unknown
    /// keys ignored; the list form of selectors kept.
    #[test]
    fn read_is_lenient_as_go() {
        let e = read_ok(
            r#"{"RESOURCELIST":[{"ResourceName":"a","resourceprefix":"x.io","DEVICETYPE":"NetDevice",
               "excludetopology":true,"SelectorObj":null,"other":1,"additionalInfo":null,
               "Selectors":[{"Vendors":["8086"],"ISRDMA":true,"devices":null,"PKEYS":["0x7fff"]},
                            {"needvhostnet":true,"nope":[]}]}]}"#,
        );
        let r = &e[0].resource;
        assert_eq!(e[0].label, "resourceList[0] \"a\"");
        assert_eq!(e[0].device_type, DeviceType::NetDevice);
        assert_eq!(
            (
                r.resource_prefix.as_str(),
                r.resource_name.as_str(),
                r.exclude_topology
            ),
            ("x.io", "a", true)
        );
        let Some(Selectors::Many(s)) = &r.selectors else {
            panic!("list form kept: {r:?}")
        };
        assert_eq!(s[0].vendors, ["8086"]);
        assert!(s[0].is_rdma && s[0].devices.is_empty());
        assert_eq!(s[0].p_keys, ["0x7fff"]);
        assert!(s[1].need_vhost_net);
    }

    /// Keys the device type does not take are dropped before the typed
    /// read, so a bad value there does not matter (Go never looks at it).
    #[test]
    fn read_drops_what_the_device_type_does_not_take() {
        let e = read_ok(
            r#"{"resourceList":[{"resourceName":"acc","deviceType":"accelerator",
               "selectors":{"vendors":["8086"],"pfNames":7,"isRdma":true,"vdpaType":"vhost"}}]}"#,
        );
        let Some(Selectors::One(s)) = &e[0].resource.selectors else {
            panic!()
        };
        assert_eq!(
            **s,
            NetDeviceSelectors {
                vendors: vec!["8086".into()],
                ..Default::default()
            }
        );
    }

    #[test]
    fn read_names_the_entry_and_the_key() {
        for (text, want) in [
            (
                r#"{"resourceList":[7]}"#,
                "resourceList[0]: each resource must be a JSON object",
            ),
            (
                r#"{"resourceList":[{"resourceName":null,"selectors":{}}]}"#,
                "resourceList[0]: \"resourceName\" is missing",
            ),
            (
                r#"{"resourceList":[{"resourceName":"a","excludeTopology":"yes","selectors":{}}]}"#,
                "resourceList[0] \"a\": \"excludeTopology\" must be true or false: invalid type",
            ),
            (
                r#"{"resourceList":[{"resourceName":"a","selectors":{"vendors":"8086"}}]}"#,
                "resourceList[0] \"a\": selectors[0]: vendors: must be a list of strings: invalid type",
            ),
            (
                r#"{"resourceList":[{"resourceName":"a","selectors":[{},{"IsRdma":"no"}]}]}"#,
                "resourceList[0] \"a\": selectors[1]: isRdma: must be true or false",
            ),
            (
                r#"{"resourceList":[{"resourceName":"a","selectors":[{},3]}]}"#,
                "selectors[1]: selectors must be a JSON object",
            ),
            (
                r#"{"resourceList":[{"resourceName":"a","selectors":"x"}]}"#,
                "\"selectors\" must be an object or a list of objects",
            ),
            (
                r#"{"resourceList":[{"resourceName":"a","deviceType":"auxNetDevice","selectors":{}}]}"#,
                "selectors[0]: auxNetDevice needs \"auxTypes\"",
            ),
            (
                r#"{"resourceList":[{"resourceName":"a","resourcePrefix":"a b","selectors":{}}]}"#,
                "invalid resourcePrefix \"a b\"",
            ),
        ] {
            let got = read_err(text);
            assert!(got.contains(want), "{text}\n got: {got}\nwant: {want}");
        }
        for (text, want) in [
            ("{", "invalid JSON"),
            ("[]", "must be a JSON object"),
            (r#"{"resourceList":null}"#, "\"resourceList\" is missing"),
            (r#"{"resourceList":{}}"#, "\"resourceList\" must be a list"),
        ] {
            let got = read(text, "t.json").unwrap_err().to_string();
            assert!(got.contains(want), "{text}: {got}");
        }
    }

    /// What the writers write reads back to the same model.
    #[test]
    fn writers_output_reads_back() {
        let c = DevicePluginConfig {
            resource_list: vec![ResourceConfig {
                resource_name: "a".into(),
                exclude_topology: true,
                selectors: Some(Selectors::One(Box::new(NetDeviceSelectors {
                    vendors: vec!["8086".into()],
                    pf_names: vec!["ens1f0#0-3".into()],
                    need_vhost_net: true,
                    ..Default::default()
                }))),
                ..Default::default()
            }],
        };
        for text in [c.to_json(), c.to_upstream_json()] {
            let got: Vec<ResourceConfig> = read_ok(&text).into_iter().map(|e| e.resource).collect();
            assert_eq!(got, c.resource_list, "{text}");
        }
    }
}
