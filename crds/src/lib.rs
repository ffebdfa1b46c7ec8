//! API types of `sriovnetwork.openshift.io/v1`, their validation and
//! defaulting rules, the list of known SR-IOV NICs, and the generated CRDs.
//!
//! JSON field names are exactly those of the Go sriov-network-operator, so
//! existing manifests apply unchanged (note the upstream spellings
//! `totalvfs`, `Vfs`, `Vlan`, `vfID`).

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
