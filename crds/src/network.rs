//! `SriovNetwork`: a network pods attach to; the operator renders a
//! `NetworkAttachmentDefinition` with an `sriov` CNI config from it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a `SriovNetwork`.
// Two `printcolumn(...)` entries look like duplicates to clippy.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "sriovnetwork.openshift.io",
    version = "v1",
    kind = "SriovNetwork",
    plural = "sriovnetworks",
    namespaced,
    status = "SriovNetworkStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    doc = "SriovNetwork describes a secondary network backed by SR-IOV VFs; the operator renders it into a NetworkAttachmentDefinition using the sriov CNI."
)]
// A missing or null `spec` reads as the default spec (`crate::absent_spec`).
#[serde(remote = "Self")]
pub struct SriovNetworkSpec {
    /// Namespace of the NetworkAttachmentDefinition (default: this object's namespace).
    #[serde(
        rename = "networkNamespace",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub network_namespace: String,
    /// Device plugin resource name of the VFs.
    #[serde(rename = "resourceName")]
    pub resource_name: String,
    /// CNI capabilities as a JSON string, e.g. `{"mac": true, "ips": true}`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub capabilities: String,
    /// IPAM configuration as a JSON string.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipam: String,
    /// VLAN id of the VF, 0 for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4094))]
    pub vlan: Option<i32>,
    /// VLAN QoS (priority), 0-7.
    #[serde(rename = "vlanQoS", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 7))]
    pub vlan_qos: Option<i32>,
    /// VLAN protocol. Defaults to 802.1q.
    #[serde(
        rename = "vlanProto",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    #[schemars(extend("enum" = ["802.1q", "802.1Q", "802.1ad", "802.1AD"]))]
    pub vlan_proto: String,
    /// VF spoof check: `on` or `off`.
    #[serde(rename = "spoofChk", default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["on", "off"]))]
    pub spoof_chk: String,
    /// VF trust mode: `on` or `off`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["on", "off"]))]
    pub trust: String,
    /// VF link state: `auto`, `enable` or `disable`.
    #[serde(
        rename = "linkState",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    #[schemars(extend("enum" = ["auto", "enable", "disable"]))]
    pub link_state: String,
    /// Minimum TX rate in Mbps; 0 means no limit.
    #[serde(rename = "minTxRate", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_tx_rate: Option<i32>,
    /// Maximum TX rate in Mbps; 0 means no limit.
    #[serde(rename = "maxTxRate", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_tx_rate: Option<i32>,
    /// Meta plugins to chain after sriov, as a JSON string (one or more plugin objects).
    #[serde(
        rename = "metaPlugins",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub meta_plugins: String,
    /// Log level of the sriov CNI: panic, error, warning, info, debug. Defaults to info.
    #[serde(rename = "logLevel", default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["panic", "error", "warning", "info", "debug", ""], "default" = "info"))]
    pub log_level: String,
    /// Log file of the sriov CNI (default: stderr).
    #[serde(rename = "logFile", default, skip_serializing_if = "String::is_empty")]
    pub log_file: String,
}

/// Observed state of a `SriovNetwork`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SriovNetworkStatus {
    /// `Ready` when the NetworkAttachmentDefinition is in place, `Degraded` otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
