//! The sriov-network-device-plugin config file (`config.json`):
//! `{"resourceList": [{resourceName, resourcePrefix?, deviceType?,
//! excludeTopology?, selectors: object | [object], additionalInfo?}]}`.
//!
//! Field names are those of the Go device plugin. `IsRdma` and `NeedVhostNet`
//! have no JSON tag there, so Go writes them capitalized and always; both
//! spellings are read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
}

/// Errors reading a device plugin config.
#[derive(Debug, thiserror::Error)]
#[error(
    "device plugin config is not valid: {0}; expected {{\"resourceList\": [{{\"resourceName\": ..., \"selectors\": {{...}}}}]}}"
)]
pub struct DevicePluginConfigError(#[from] serde_json::Error);

impl DevicePluginConfig {
    /// Parses the JSON config file.
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
