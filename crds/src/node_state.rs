//! `SriovNetworkNodeState`: one per node, named as the node. `spec` is what the
//! operator wants on the node's PFs; `status` is what the config daemon found.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::node_policy::{OvsBridgeConfig, OvsInterfaceConfig};
use crate::serde_skip::{is_false, is_zero};

/// `syncStatus` while the daemon applies a spec.
pub const SYNC_STATUS_IN_PROGRESS: &str = "InProgress";
/// `syncStatus` after a successful apply.
pub const SYNC_STATUS_SUCCEEDED: &str = "Succeeded";
/// `syncStatus` after a failed apply (see `lastSyncError`).
pub const SYNC_STATUS_FAILED: &str = "Failed";

/// Desired state of one node's SR-IOV PFs.
// Several `printcolumn(type_ = "string")` entries look like duplicates to clippy.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "sriovnetwork.openshift.io",
    version = "v1",
    kind = "SriovNetworkNodeState",
    plural = "sriovnetworknodestates",
    namespaced,
    status = "SriovNetworkNodeStateStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(
        name = "Sync Status",
        type_ = "string",
        json_path = ".status.syncStatus"
    ),
    printcolumn(
        name = "Desired Sync State",
        type_ = "string",
        json_path = ".metadata.annotations.sriovnetwork\\.openshift\\.io/desired-state"
    ),
    printcolumn(
        name = "Current Sync State",
        type_ = "string",
        json_path = ".metadata.annotations.sriovnetwork\\.openshift\\.io/current-state"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    doc = "SriovNetworkNodeState holds, for one node (same name), the PF configuration the operator wants (spec) and the NICs and VFs the config daemon found (status)."
)]
// A missing or null `spec` reads as the default spec (`crate::absent_spec`).
#[serde(remote = "Self")]
pub struct SriovNetworkNodeStateSpec {
    /// Desired configuration of each PF.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    /// Software bridges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridges: Option<Bridges>,
    /// Node-wide settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<System>,
}

/// Desired configuration of one PF.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Interface {
    /// PCI address of the PF, e.g. `0000:86:00.0`.
    #[serde(rename = "pciAddress")]
    pub pci_address: String,
    /// VFs to create.
    #[serde(rename = "numVfs", default, skip_serializing_if = "is_zero")]
    pub num_vfs: i32,
    /// PF MTU.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtu: i32,
    /// PF netdev name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `eth` or `ib`.
    #[serde(rename = "linkType", default, skip_serializing_if = "String::is_empty")]
    pub link_type: String,
    /// `legacy` or `switchdev`.
    #[serde(
        rename = "eSwitchMode",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub eswitch_mode: String,
    /// VF groups: index ranges with their driver and resource.
    #[serde(rename = "vfGroups", default, skip_serializing_if = "Vec::is_empty")]
    pub vf_groups: Vec<VfGroup>,
    /// VFs exist already; verify, don't create.
    #[serde(
        rename = "externallyManaged",
        default,
        skip_serializing_if = "is_false"
    )]
    pub externally_managed: bool,
}

/// A range of VFs on one PF with one configuration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct VfGroup {
    /// Device plugin resource name.
    #[serde(
        rename = "resourceName",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub resource_name: String,
    /// `netdevice` or `vfio-pci`.
    #[serde(
        rename = "deviceType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub device_type: String,
    /// VF index range `start-end`, inclusive.
    #[serde(rename = "vfRange", default, skip_serializing_if = "String::is_empty")]
    pub vf_range: String,
    /// Policy this group comes from.
    #[serde(
        rename = "policyName",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub policy_name: String,
    /// VF MTU.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtu: i32,
    /// RDMA enabled.
    #[serde(rename = "isRdma", default, skip_serializing_if = "is_false")]
    pub is_rdma: bool,
    /// vDPA type.
    #[serde(rename = "vdpaType", default, skip_serializing_if = "String::is_empty")]
    pub vdpa_type: String,
}

/// Software bridges.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Bridges {
    /// OVS bridges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ovs: Vec<OvsConfigExt>,
}

/// One concrete OVS bridge.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct OvsConfigExt {
    /// Bridge name.
    pub name: String,
    /// Bridge level settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<OvsBridgeConfig>,
    /// Uplinks (PFs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uplinks: Vec<OvsUplinkConfigExt>,
}

/// One uplink (PF) of an OVS bridge.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct OvsUplinkConfigExt {
    /// PCI address of the PF.
    #[serde(rename = "pciAddress")]
    pub pci_address: String,
    /// PF netdev name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Interface table settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<OvsInterfaceConfig>,
}

/// Node-wide settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct System {
    /// RDMA subsystem mode: `shared` or `exclusive`.
    #[serde(rename = "rdmaMode", default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["shared", "exclusive"]))]
    pub rdma_mode: String,
    /// OVS `other_config`.
    #[serde(
        rename = "ovsConfig",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub ovs_config: BTreeMap<String, String>,
}

/// What the config daemon found and did on the node.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SriovNetworkNodeStateStatus {
    /// SR-IOV capable PFs and their VFs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceExt>,
    /// Software bridges found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridges: Option<Bridges>,
    /// Node-wide settings found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<System>,
    /// `InProgress`, `Succeeded` or `Failed`.
    #[serde(
        rename = "syncStatus",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub sync_status: String,
    /// Why the last apply failed: PF, step, kernel error.
    #[serde(
        rename = "lastSyncError",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub last_sync_error: String,
    /// `Ready`, `Progressing`, `Degraded`, `Draining`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// A PF as found on the node. Note the upstream spellings `totalvfs` and `Vfs`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct InterfaceExt {
    /// Netdev name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// MAC address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// Bound driver.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// PCI address.
    #[serde(rename = "pciAddress")]
    pub pci_address: String,
    /// PCI vendor id (hex, no 0x).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vendor: String,
    /// PCI device id (hex, no 0x).
    #[serde(rename = "deviceID", default, skip_serializing_if = "String::is_empty")]
    pub device_id: String,
    /// Infrastructure network id, e.g. `openstack/NetworkID:<uuid>`.
    #[serde(
        rename = "netFilter",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub net_filter: String,
    /// MTU.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtu: i32,
    /// Current VF count (`sriov_numvfs`).
    #[serde(rename = "numVfs", default, skip_serializing_if = "is_zero")]
    pub num_vfs: i32,
    /// Link speed, e.g. `25000 Mb/s`.
    #[serde(
        rename = "linkSpeed",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub link_speed: String,
    /// `ETH` or `IB`.
    #[serde(rename = "linkType", default, skip_serializing_if = "String::is_empty")]
    pub link_type: String,
    /// `up` or `down`.
    #[serde(
        rename = "linkAdminState",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub link_admin_state: String,
    /// `legacy` or `switchdev`.
    #[serde(
        rename = "eSwitchMode",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub eswitch_mode: String,
    /// VFs are managed outside of this operator.
    #[serde(
        rename = "externallyManaged",
        default,
        skip_serializing_if = "is_false"
    )]
    pub externally_managed: bool,
    /// Maximum VFs (`sriov_totalvfs`). Upstream spells it all lower case.
    #[serde(rename = "totalvfs", default, skip_serializing_if = "is_zero")]
    pub total_vfs: i32,
    /// The VFs. Upstream spells it `Vfs` with a capital V.
    #[serde(rename = "Vfs", default, skip_serializing_if = "Vec::is_empty")]
    pub vfs: Vec<VirtualFunction>,
    /// Alternative netdev names.
    #[serde(rename = "altNames", default, skip_serializing_if = "Vec::is_empty")]
    pub alt_names: Vec<String>,
}

/// A VF as found on the node. Note the upstream spellings `Vlan` and `vfID`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct VirtualFunction {
    /// Netdev name (empty when bound to vfio-pci).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// MAC address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// Assigned to a pod (`true`) — kept as string like upstream.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub assigned: String,
    /// Bound driver.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// PCI address.
    #[serde(rename = "pciAddress")]
    pub pci_address: String,
    /// PCI vendor id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vendor: String,
    /// PCI device id.
    #[serde(rename = "deviceID", default, skip_serializing_if = "String::is_empty")]
    pub device_id: String,
    /// VLAN. Upstream spells it `Vlan` with a capital V.
    #[serde(rename = "Vlan", default, skip_serializing_if = "is_zero")]
    pub vlan: i32,
    /// MTU.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtu: i32,
    /// VF index on its PF. Always serialized, also when 0.
    #[serde(rename = "vfID")]
    pub vf_id: i32,
    /// vDPA type.
    #[serde(rename = "vdpaType", default, skip_serializing_if = "String::is_empty")]
    pub vdpa_type: String,
    /// Representor netdev (switchdev).
    #[serde(
        rename = "representorName",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub representor_name: String,
    /// InfiniBand GUID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub guid: String,
}
