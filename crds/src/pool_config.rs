//! `SriovNetworkPoolConfig`: groups nodes for parallel drains and RDMA mode.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a node pool.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "sriovnetwork.openshift.io",
    version = "v1",
    kind = "SriovNetworkPoolConfig",
    plural = "sriovnetworkpoolconfigs",
    namespaced,
    status = "SriovNetworkPoolConfigStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "SriovNetworkPoolConfig groups nodes by label selector: how many may be unavailable at once during SR-IOV changes, and their RDMA mode."
)]
// A missing or null `spec` reads as the default spec (`crate::absent_spec`).
#[serde(remote = "Self")]
pub struct SriovNetworkPoolConfigSpec {
    /// OVS hardware offload configuration (OpenShift).
    #[serde(
        rename = "ovsHardwareOffloadConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ovs_hardware_offload_config: Option<OvsHardwareOffloadConfig>,
    /// Nodes in this pool.
    #[serde(
        rename = "nodeSelector",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub node_selector: Option<LabelSelector>,
    /// Nodes of the pool that may be unavailable at once: a number or a percentage (`"25%"`).
    #[serde(
        rename = "maxUnavailable",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_unavailable: Option<IntOrString>,
    /// RDMA subsystem mode: `shared` or `exclusive`.
    #[serde(rename = "rdmaMode", default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["shared", "exclusive"]))]
    pub rdma_mode: String,
}

/// OVS hardware offload configuration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct OvsHardwareOffloadConfig {
    /// Name (MachineConfigPool on OpenShift).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// OVS `other_config`.
    #[serde(
        rename = "otherConfig",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub other_config: BTreeMap<String, String>,
}

/// Observed state of a node pool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SriovNetworkPoolConfigStatus {
    /// Conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
