//! `SriovNetworkNodePolicy`: what a hardware admin wants on the NICs of a set of nodes.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Default policy priority when `priority` is not set (lower number wins).
pub const DEFAULT_PRIORITY: i32 = 99;
/// `deviceType` for VFs bound to their vendor's network driver.
pub const DEVICE_TYPE_NETDEVICE: &str = "netdevice";
/// `deviceType` for VFs bound to `vfio-pci` (DPDK, VMs).
pub const DEVICE_TYPE_VFIO_PCI: &str = "vfio-pci";
/// `eSwitchMode` values.
pub const ESWITCH_MODE_LEGACY: &str = "legacy";
/// `eSwitchMode: switchdev`.
pub const ESWITCH_MODE_SWITCHDEV: &str = "switchdev";
/// `vdpaType` values.
pub const VDPA_TYPE_VIRTIO: &str = "virtio";
/// `vdpaType: vhost`.
pub const VDPA_TYPE_VHOST: &str = "vhost";

/// Desired state of a `SriovNetworkNodePolicy`.
///
/// JSON field names and omission rules are those of the upstream Go
/// `sriov-network-operator` (`api/v1/sriovnetworknodepolicy_types.go`).
// Several `printcolumn(type_ = ...)` entries look like duplicates to clippy.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "sriovnetwork.openshift.io",
    version = "v1",
    kind = "SriovNetworkNodePolicy",
    plural = "sriovnetworknodepolicies",
    namespaced,
    status = "SriovNetworkNodePolicyStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(
        name = "Matched",
        type_ = "integer",
        json_path = ".status.matchedNodes"
    ),
    printcolumn(
        name = "Applied",
        type_ = "integer",
        json_path = ".status.appliedNodes"
    ),
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
    doc = "SriovNetworkNodePolicy selects SR-IOV NICs on a set of nodes and says how many VFs to create, with which driver, and under which device plugin resource name."
)]
// A missing or null `spec` reads as the default spec (`crate::absent_spec`).
#[serde(remote = "Self")]
pub struct SriovNetworkNodePolicySpec {
    /// Device plugin resource name (without prefix), e.g. `intelnics`.
    #[serde(rename = "resourceName")]
    pub resource_name: String,
    /// Labels a node must carry for this policy to apply.
    #[serde(rename = "nodeSelector")]
    pub node_selector: BTreeMap<String, String>,
    /// Priority; lower number wins when policies conflict. Defaults to 99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 99))]
    pub priority: Option<i32>,
    /// MTU of the VFs (and at least of the PF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub mtu: Option<i32>,
    /// Number of VFs for each matched PF.
    #[serde(rename = "numVfs")]
    #[schemars(range(min = 0))]
    pub num_vfs: i32,
    /// Which PFs this policy selects; every set field must match.
    #[serde(rename = "nicSelector")]
    pub nic_selector: SriovNetworkNicSelector,
    /// VF driver type: `netdevice` (vendor driver) or `vfio-pci`. Defaults to netdevice.
    #[serde(
        rename = "deviceType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    #[schemars(extend("enum" = ["netdevice", "vfio-pci"], "default" = "netdevice"))]
    pub device_type: String,
    /// RDMA mode. Defaults to false (true for InfiniBand netdevice).
    #[serde(rename = "isRdma", default, skip_serializing_if = "Option::is_none")]
    pub is_rdma: Option<bool>,
    /// Mount `/dev/vhost-net` and `/dev/net/tun` into pods using this resource.
    #[serde(
        rename = "needVhostNet",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub need_vhost_net: Option<bool>,
    /// Link type of the PF: `eth`/`ETH` or `ib`/`IB`.
    #[serde(rename = "linkType", default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["eth", "ETH", "ib", "IB"]))]
    pub link_type: String,
    /// E-switch mode of the PF: `legacy` or `switchdev`.
    #[serde(
        rename = "eSwitchMode",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    #[schemars(extend("enum" = ["legacy", "switchdev"]))]
    pub eswitch_mode: String,
    /// vDPA device type: `virtio` or `vhost`.
    #[serde(rename = "vdpaType", default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["virtio", "vhost"]))]
    pub vdpa_type: String,
    /// Do not advertise the NUMA node of the devices to the kubelet.
    #[serde(
        rename = "excludeTopology",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub exclude_topology: Option<bool>,
    /// VFs are created by someone else; only allocate them to the device plugin.
    #[serde(
        rename = "externallyManaged",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub externally_managed: Option<bool>,
    /// Software bridge for the matched PFs (switchdev only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<Bridge>,
    /// E-switch parameters (switchdev only).
    #[serde(
        rename = "eSwitchParams",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub eswitch_params: Option<ESwitchParams>,
}

/// Selects PFs on a node. All set fields are ANDed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct SriovNetworkNicSelector {
    /// PCI vendor id in hex without 0x, e.g. `8086`, `15b3`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vendor: String,
    /// PCI device id of the PF in hex without 0x, e.g. `158b`.
    #[serde(rename = "deviceID", default, skip_serializing_if = "String::is_empty")]
    pub device_id: String,
    /// PCI addresses of PFs, e.g. `0000:86:00.0`.
    #[serde(rename = "rootDevices", default, skip_serializing_if = "Vec::is_empty")]
    pub root_devices: Vec<String>,
    /// PF names, optionally with a VF index range: `ens1f0`, `ens1f0#2-5`.
    #[serde(rename = "pfNames", default, skip_serializing_if = "Vec::is_empty")]
    pub pf_names: Vec<String>,
    /// Infrastructure network filter, e.g. `openstack/NetworkID:<uuid>`.
    #[serde(
        rename = "netFilter",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub net_filter: String,
}

/// Software bridge configuration for the matched PFs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Bridge {
    /// OVS bridge configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ovs: Option<OvsConfig>,
}

/// E-switch parameters.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ESwitchParams {
    /// Multiport e-switch mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiport: Option<bool>,
}

/// OVS bridge and uplink configuration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct OvsConfig {
    /// Bridge level settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<OvsBridgeConfig>,
    /// Uplink (PF) settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uplink: Option<OvsUplinkConfig>,
}

/// Options from the OVSDB Bridge table.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct OvsBridgeConfig {
    /// `datapath_type`.
    #[serde(
        rename = "datapathType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub datapath_type: String,
    /// `external_ids`.
    #[serde(
        rename = "externalIDs",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub external_ids: BTreeMap<String, String>,
    /// `other_config`.
    #[serde(
        rename = "otherConfig",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub other_config: BTreeMap<String, String>,
    /// `fail_mode`: `secure` or `standalone`.
    #[serde(rename = "failMode", default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["secure", "standalone"]))]
    pub fail_mode: String,
}

/// PF interface settings in the OVS bridge.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct OvsUplinkConfig {
    /// Interface table settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<OvsInterfaceConfig>,
}

/// Options from the OVSDB Interface table.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct OvsInterfaceConfig {
    /// `type`.
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub type_: String,
    /// `options`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// `external_ids`.
    #[serde(
        rename = "externalIDs",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub external_ids: BTreeMap<String, String>,
    /// `other_config`.
    #[serde(
        rename = "otherConfig",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub other_config: BTreeMap<String, String>,
    /// `mtu_request`.
    #[serde(
        rename = "mtuRequest",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub mtu_request: Option<i32>,
}

/// Observed state of a `SriovNetworkNodePolicy` (new: upstream policies have
/// no status). Written by the operator through the status subresource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SriovNetworkNodePolicyStatus {
    /// How many nodes the `nodeSelector` selects.
    #[serde(
        rename = "matchedNodes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub matched_nodes: Option<i32>,
    /// How many of the matched nodes have applied the policy (their node
    /// state has `syncStatus: Succeeded` for a spec that includes it).
    #[serde(
        rename = "appliedNodes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub applied_nodes: Option<i32>,
    /// `Ready`, `Progressing`, `Degraded`, `Conflict` (a VF range or resource
    /// this policy lost to another one); metav1.Condition as the other kinds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

impl SriovNetworkNodePolicySpec {
    /// The priority in effect: `priority`, or 99 when unset.
    pub fn effective_priority(&self) -> i32 {
        self.priority.unwrap_or(DEFAULT_PRIORITY)
    }

    /// The device type in effect: `deviceType`, or `netdevice` when unset.
    pub fn effective_device_type(&self) -> &str {
        if self.device_type.is_empty() {
            DEVICE_TYPE_NETDEVICE
        } else {
            &self.device_type
        }
    }

    /// True when `linkType` is InfiniBand (`ib` or `IB`).
    pub fn is_infiniband(&self) -> bool {
        self.link_type.eq_ignore_ascii_case("ib")
    }

    /// True when `eSwitchMode` is `switchdev`.
    pub fn is_switchdev(&self) -> bool {
        self.eswitch_mode == ESWITCH_MODE_SWITCHDEV
    }

    /// `isRdma` in effect (unset is false).
    pub fn rdma(&self) -> bool {
        self.is_rdma.unwrap_or(false)
    }

    /// `needVhostNet` in effect (unset is false).
    pub fn vhost_net(&self) -> bool {
        self.need_vhost_net.unwrap_or(false)
    }

    /// `excludeTopology` in effect (unset is false).
    pub fn excludes_topology(&self) -> bool {
        self.exclude_topology.unwrap_or(false)
    }

    /// `externallyManaged` in effect (unset is false).
    pub fn is_externally_managed(&self) -> bool {
        self.externally_managed.unwrap_or(false)
    }

    /// True when a software bridge (`bridge.ovs`) is configured.
    pub fn has_bridge(&self) -> bool {
        self.bridge.as_ref().is_some_and(|b| b.ovs.is_some())
    }
}

impl SriovNetworkNicSelector {
    /// True when no field is set (an empty selector matches nothing).
    pub fn is_empty(&self) -> bool {
        self.vendor.is_empty()
            && self.device_id.is_empty()
            && self.root_devices.is_empty()
            && self.pf_names.is_empty()
            && self.net_filter.is_empty()
    }
}
