//! `SriovIBNetwork`: an InfiniBand network rendered with the `ib-sriov` CNI.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a `SriovIBNetwork`.
// Two `printcolumn(...)` entries look like duplicates to clippy.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "sriovnetwork.openshift.io",
    version = "v1",
    kind = "SriovIBNetwork",
    plural = "sriovibnetworks",
    namespaced,
    status = "SriovIBNetworkStatus",
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
    doc = "SriovIBNetwork describes an InfiniBand secondary network backed by SR-IOV VFs (ib-sriov CNI)."
)]
// A missing or null `spec` reads as the default spec (`crate::absent_spec`).
#[serde(remote = "Self")]
pub struct SriovIBNetworkSpec {
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
    /// CNI capabilities as a JSON string, e.g. `{"infinibandGUID": true}`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub capabilities: String,
    /// IPAM configuration as a JSON string.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipam: String,
    /// VF link state: `auto`, `enable` or `disable`.
    #[serde(
        rename = "linkState",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    #[schemars(extend("enum" = ["auto", "enable", "disable"]))]
    pub link_state: String,
    /// Meta plugins to chain, as a JSON string.
    #[serde(
        rename = "metaPlugins",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub meta_plugins: String,
}

/// Observed state of a `SriovIBNetwork`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SriovIBNetworkStatus {
    /// `Ready` / `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
