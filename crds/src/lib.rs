//! API types of `sriovnetwork.openshift.io/v1`, their validation and
//! defaulting rules, the list of known SR-IOV NICs, and the generated CRDs.
//!
//! JSON field names are exactly those of the Go sriov-network-operator, so
//! existing manifests apply unchanged (note the upstream spellings
//! `totalvfs`, `Vfs`, `Vlan`, `vfID`).
//!
//! Modules:
//! - `absent_spec`: a missing or null `spec` reads as the default spec.
//! - [`conditions`]: status condition types and an upsert that keeps transition times.
//! - [`crd_gen`]: the seven CustomResourceDefinitions, rendered as YAML.
//! - [`device_plugin_config`]: the device plugin's `config.json` as typed data.
//! - [`ib_network`]: the `SriovIBNetwork` kind.
//! - [`manifests`]: reading YAML streams of `sriovnetwork.openshift.io/v1` objects.
//! - [`network`]: the `SriovNetwork` kind.
//! - [`nic_ids`]: the known SR-IOV NICs: vendor, PF and VF device ids.
//! - [`node_policy`]: the `SriovNetworkNodePolicy` kind.
//! - [`node_state`]: the `SriovNetworkNodeState` kind.
//! - [`operator_config`]: the `SriovOperatorConfig` kind.
//! - [`ovs_network`]: the `OVSNetwork` kind.
//! - [`pf_names`]: the one `pfNames` / `rootDevices` grammar, policy and device-plugin forms.
//! - [`policy_merge`]: policies to one node's spec, shared by the operator and the daemon.
//! - [`pool_config`]: the `SriovNetworkPoolConfig` kind.
//! - [`rules`]: validation and defaulting rules, pure functions.
//! - [`selection`]: which PFs a policy's `nicSelector` selects.
//! - `serde_skip`: `skip_serializing_if` predicates matching Go's `omitempty`.

mod absent_spec;
pub mod conditions;
pub mod crd_gen;
pub mod device_plugin_config;
pub mod ib_network;
pub mod manifests;
pub mod network;
pub mod nic_ids;
pub mod node_policy;
pub mod node_state;
pub mod operator_config;
pub mod ovs_network;
pub mod pf_names;
pub mod policy_merge;
pub mod pool_config;
pub mod rules;
pub mod selection;
mod serde_skip;

pub use ib_network::{SriovIBNetwork, SriovIBNetworkSpec, SriovIBNetworkStatus};
pub use network::{SriovNetwork, SriovNetworkSpec, SriovNetworkStatus};
pub use node_policy::{
    SriovNetworkNicSelector, SriovNetworkNodePolicy, SriovNetworkNodePolicySpec,
    SriovNetworkNodePolicyStatus,
};
pub use node_state::{
    Interface, InterfaceExt, SriovNetworkNodeState, SriovNetworkNodeStateSpec,
    SriovNetworkNodeStateStatus, VfGroup, VirtualFunction,
};
pub use operator_config::{
    SriovOperatorConfig, SriovOperatorConfigSpec, SriovOperatorConfigStatus,
};
pub use ovs_network::{OVSNetwork, OVSNetworkSpec, OVSNetworkStatus, TrunkConfig};
pub use pool_config::{
    SriovNetworkPoolConfig, SriovNetworkPoolConfigSpec, SriovNetworkPoolConfigStatus,
};

/// API group of all kinds.
pub const GROUP: &str = "sriovnetwork.openshift.io";
/// API version of all kinds.
pub const VERSION: &str = "v1";
/// `apiVersion` of all kinds.
pub const API_VERSION: &str = "sriovnetwork.openshift.io/v1";
