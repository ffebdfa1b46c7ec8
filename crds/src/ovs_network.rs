//! `OVSNetwork`: a network whose VFs (switchdev representors) are plugged
//! into an OVS bridge; rendered with the `ovs` CNI. Fields as upstream
//! (`api/v1/ovsnetwork_types.go`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of an `OVSNetwork`.
// Two `printcolumn(...)` entries look like duplicates to clippy.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "sriovnetwork.openshift.io",
    version = "v1",
    kind = "OVSNetwork",
    plural = "ovsnetworks",
    namespaced,
    status = "OVSNetworkStatus",
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
    doc = "OVSNetwork describes a secondary network whose VFs are attached to an OVS bridge (ovs CNI); the operator renders it into a NetworkAttachmentDefinition."
)]
// A missing or null `spec` reads as the default spec (`crate::absent_spec`).
#[serde(remote = "Self")]
pub struct OVSNetworkSpec {
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
    /// CNI capabilities as a JSON string, e.g. `{"mac": true}`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub capabilities: String,
    /// IPAM configuration as a JSON string.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipam: String,
    /// Meta plugins to chain, as a JSON string.
    #[serde(
        rename = "metaPlugins",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub meta_plugins: String,
    /// OVS bridge name; unset: OVS picks the bridge from the VF's PCI address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bridge: String,
    /// VLAN of the OVS port, 0-4095.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4095))]
    pub vlan: Option<i64>,
    /// MTU of the OVS port (`uint` upstream, without a minimum in its CRD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<i64>,
    /// Trunk VLANs of the OVS port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trunk: Vec<TrunkConfig>,
    /// OVS interface type (e.g. `dpdk`).
    #[serde(
        rename = "interfaceType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub interface_type: String,
}

/// A trunk entry: one VLAN (`id`) or a range (`minID`-`maxID`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct TrunkConfig {
    /// First VLAN of a range.
    #[serde(rename = "minID", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4095))]
    pub min_id: Option<i64>,
    /// Last VLAN of a range.
    #[serde(rename = "maxID", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4095))]
    pub max_id: Option<i64>,
    /// A single VLAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4095))]
    pub id: Option<i64>,
}

/// Observed state of an `OVSNetwork`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct OVSNetworkStatus {
    /// `Ready` when the NetworkAttachmentDefinition is in place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
