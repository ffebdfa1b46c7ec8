//! The policy merge shared by the operator and the config daemon: from the
//! policies and one node's reported PFs, the node's desired PF configuration
//! (`SriovNetworkNodeState` spec interfaces) and its device plugin config.
//!
//! Policies are taken in order of priority (lower number first), then name.
//! Each PF a policy selects (vendor, deviceID, rootDevices, pfNames with
//! ranges and netFilter, ANDed) gets a VF group for it. A later policy whose
//! range overlaps a group already on the PF, or that has the same
//! resourceName there, or wants a different PF-wide setting, loses on that
//! PF; the loss is reported as a [`MergeConflict`], never dropped silently.
//! A PF's `numVfs` and `mtu` are the maximum over its surviving groups.

use std::collections::BTreeMap;
use std::fmt;

use kube::ResourceExt;

use crate::device_plugin_config::{
    DevicePluginConfig, NetDeviceSelectors, ResourceConfig, Selectors,
};
use crate::nic_ids::NicIdList;
use crate::node_policy::{DEVICE_TYPE_VFIO_PCI, SriovNetworkNodePolicy};
use crate::node_state::{Interface, InterfaceExt, VfGroup};
use crate::pf_names::VfRange;
use crate::selection::{net_filter_matches, pf_name_entry, selects};

/// Name of the deprecated upstream default policy, which is ignored.
pub const DEPRECATED_DEFAULT_POLICY: &str = "default";

/// Why a policy lost on a PF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictReason {
    /// Its VF range overlaps the winner's group.
    OverlappingRange {
        /// The loser's range.
        range: VfRange,
        /// The winner's range.
        winner_range: VfRange,
    },
    /// The winner already has a group with the same resource name on this PF.
    SameResourceName(String),
    /// A PF-wide setting differs from the winner's (eSwitchMode, linkType, externallyManaged).
    PfSetting {
        /// Field name.
        field: &'static str,
        /// The loser's value.
        value: String,
        /// The winner's value.
        winner_value: String,
    },
}

/// A policy that lost a PF to a policy earlier in the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeConflict {
    /// The policy that lost.
    pub policy: String,
    /// The policy that keeps the PF (or the overlapping VFs).
    pub winner: String,
    /// PCI address of the PF.
    pub pf_pci_address: String,
    /// PF netdev name.
    pub pf_name: String,
    /// Why.
    pub reason: ConflictReason,
}

impl fmt::Display for MergeConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pf = if self.pf_name.is_empty() {
            self.pf_pci_address.clone()
        } else {
            format!("{} ({})", self.pf_name, self.pf_pci_address)
        };
        match &self.reason {
            ConflictReason::OverlappingRange {
                range,
                winner_range,
            } => write!(
                f,
                "policy {} lost VFs {range} on PF {pf} to policy {} (VFs {winner_range}), which wins (lower priority number; on equal priority the name that sorts later); give the policies disjoint pfNames ranges",
                self.policy, self.winner
            ),
            ConflictReason::SameResourceName(name) => write!(
                f,
                "policy {} lost PF {pf} to policy {}, which already puts VFs of this PF into resource {name}; use a different resourceName or one policy",
                self.policy, self.winner
            ),
            ConflictReason::PfSetting {
                field,
                value,
                winner_value,
            } => write!(
                f,
                "policy {} lost PF {pf} to policy {}: it wants {field} {value:?} but the winner set {winner_value:?}; make the policies agree",
                self.policy, self.winner
            ),
        }
    }
}

/// The merge result for one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeMerge {
    /// Desired PF configuration, sorted by PCI address; groups sorted by range.
    pub interfaces: Vec<Interface>,
    /// Policies that lost (part of) a PF.
    pub conflicts: Vec<MergeConflict>,
    /// Policies that apply to the node (node selector matches), in merge order.
    pub applied_policies: Vec<String>,
}

/// True when every `nodeSelector` label is on the node with the same value.
pub fn node_selected(
    policy: &SriovNetworkNodePolicy,
    node_labels: &BTreeMap<String, String>,
) -> bool {
    policy
        .spec
        .node_selector
        .iter()
        .all(|(k, v)| node_labels.get(k) == Some(v))
}

/// The policies that apply to a node, in merge order (winner first): priority
/// (lower number first), then, for equal priority, the name that sorts LATER
/// first. That is the upstream operator's order: it applies policies sorted by
/// priority number descending and name ascending, and a later application
/// overrides an earlier one, so among equal priorities the greatest name wins.
/// The deprecated `default` policy is skipped.
pub fn policies_for_node<'a>(
    policies: &'a [SriovNetworkNodePolicy],
    node_labels: &BTreeMap<String, String>,
) -> Vec<&'a SriovNetworkNodePolicy> {
    let mut selected: Vec<&SriovNetworkNodePolicy> = policies
        .iter()
        .filter(|p| p.name_any() != DEPRECATED_DEFAULT_POLICY && node_selected(p, node_labels))
        .collect();
    selected.sort_by(|a, b| {
        a.spec
            .effective_priority()
            .cmp(&b.spec.effective_priority())
            .then_with(|| b.name_any().cmp(&a.name_any()))
    });
    selected
}

fn range_of(group: &VfGroup) -> Option<VfRange> {
    VfRange::parse(&group.vf_range).ok()
}

/// Merges the policies for one node with the PFs it reported.
pub fn merge_node(
    policies: &[SriovNetworkNodePolicy],
    node_labels: &BTreeMap<String, String>,
    pfs: &[InterfaceExt],
) -> NodeMerge {
    let ordered = policies_for_node(policies, node_labels);
    let mut result = NodeMerge {
        applied_policies: ordered.iter().map(|p| p.name_any()).collect(),
        ..Default::default()
    };
    let mut by_pci: BTreeMap<String, Interface> = BTreeMap::new();
    for policy in ordered {
        let name = policy.name_any();
        let spec = &policy.spec;
        if spec.num_vfs <= 0 {
            continue;
        }
        for pf in pfs.iter().filter(|pf| selects(&spec.nic_selector, pf)) {
            let num_vfs = spec.num_vfs as u32;
            let range = pf_name_entry(&spec.nic_selector, pf)
                .and_then(|e| e.range)
                .unwrap_or(VfRange {
                    start: 0,
                    end: num_vfs - 1,
                });
            let group = VfGroup {
                resource_name: spec.resource_name.clone(),
                device_type: spec.effective_device_type().to_string(),
                vf_range: range.to_string(),
                policy_name: name.clone(),
                mtu: spec.mtu.unwrap_or(0),
                is_rdma: spec.rdma(),
                vdpa_type: spec.vdpa_type.clone(),
            };
            let conflict = |winner: &str, reason| MergeConflict {
                policy: name.clone(),
                winner: winner.to_string(),
                pf_pci_address: pf.pci_address.clone(),
                pf_name: pf.name.clone(),
                reason,
            };
            let Some(iface) = by_pci.get_mut(&pf.pci_address) else {
                by_pci.insert(
                    pf.pci_address.clone(),
                    Interface {
                        pci_address: pf.pci_address.clone(),
                        num_vfs: spec.num_vfs,
                        mtu: spec.mtu.unwrap_or(0),
                        name: pf.name.clone(),
                        link_type: spec.link_type.clone(),
                        eswitch_mode: spec.eswitch_mode.clone(),
                        vf_groups: vec![group],
                        externally_managed: spec.is_externally_managed(),
                    },
                );
                continue;
            };
            let first_policy = iface
                .vf_groups
                .first()
                .map(|g| g.policy_name.clone())
                .unwrap_or_default();
            let pf_settings = [
                ("eSwitchMode", &spec.eswitch_mode, &iface.eswitch_mode),
                ("linkType", &spec.link_type, &iface.link_type),
            ];
            let setting_conflict = pf_settings.iter().find(|(_, mine, theirs)| {
                !mine.is_empty() && !theirs.is_empty() && !mine.eq_ignore_ascii_case(theirs)
            });
            if let Some((field, mine, theirs)) = setting_conflict {
                result.conflicts.push(conflict(
                    &first_policy,
                    ConflictReason::PfSetting {
                        field,
                        value: (*mine).clone(),
                        winner_value: (*theirs).clone(),
                    },
                ));
                continue;
            }
            if spec.is_externally_managed() != iface.externally_managed {
                result.conflicts.push(conflict(
                    &first_policy,
                    ConflictReason::PfSetting {
                        field: "externallyManaged",
                        value: spec.is_externally_managed().to_string(),
                        winner_value: iface.externally_managed.to_string(),
                    },
                ));
                continue;
            }
            if let Some(winner) = iface
                .vf_groups
                .iter()
                .find(|g| g.resource_name == group.resource_name)
            {
                result.conflicts.push(conflict(
                    &winner.policy_name,
                    ConflictReason::SameResourceName(group.resource_name.clone()),
                ));
                continue;
            }
            if let Some((winner, winner_range)) = iface
                .vf_groups
                .iter()
                .filter_map(|g| range_of(g).map(|r| (g, r)))
                .find(|(_, r)| r.overlaps(&range))
            {
                result.conflicts.push(conflict(
                    &winner.policy_name,
                    ConflictReason::OverlappingRange {
                        range,
                        winner_range,
                    },
                ));
                continue;
            }
            iface.num_vfs = iface.num_vfs.max(spec.num_vfs);
            iface.mtu = iface.mtu.max(spec.mtu.unwrap_or(0));
            if iface.link_type.is_empty() {
                iface.link_type = spec.link_type.clone();
            }
            if iface.eswitch_mode.is_empty() {
                iface.eswitch_mode = spec.eswitch_mode.clone();
            }
            iface.vf_groups.push(group);
        }
    }
    result.interfaces = by_pci
        .into_values()
        .map(|mut iface| {
            iface
                .vf_groups
                .sort_by_key(|g| range_of(g).map(|r| r.start).unwrap_or(u32::MAX));
            iface
        })
        .collect();
    result
}

/// `ether` / `infiniband` as the device plugin's `linkTypes` want them.
fn device_plugin_link_type(link_type: &str) -> &'static str {
    if link_type.eq_ignore_ascii_case("ib") {
        "infiniband"
    } else {
        "ether"
    }
}

fn push_unique(list: &mut Vec<String>, value: &str) {
    if !value.is_empty() && !list.iter().any(|v| v == value) {
        list.push(value.to_string());
    }
}

/// Policies in the upstream operator's application order: priority number
/// descending, then name ascending (the reverse of [`policies_for_node`]).
/// The device-plugin config lists resources in this order.
pub fn policies_in_upstream_order<'a>(
    policies: &'a [SriovNetworkNodePolicy],
    node_labels: &BTreeMap<String, String>,
) -> Vec<&'a SriovNetworkNodePolicy> {
    let mut v = policies_for_node(policies, node_labels);
    v.reverse();
    v
}

/// Resolves a pfNames entry's interface name (an altName becomes the PF's
/// netdev name); the `#range` suffix is kept.
fn resolve_pf_name(entry: &str, pfs: &[InterfaceExt]) -> String {
    let (name, suffix) = match entry.split_once('#') {
        Some((n, r)) => (n, format!("#{r}")),
        None => (entry, String::new()),
    };
    for pf in pfs {
        if pf.name == name {
            return entry.to_string();
        }
        if pf.alt_names.iter().any(|a| a == name) {
            return format!("{}{suffix}", pf.name);
        }
    }
    entry.to_string()
}

/// Renders the device plugin config for one node exactly as the upstream
/// operator does (`renderDevicePluginConfigData`).
///
/// Every policy that selects the node (except `default`) contributes, in
/// upstream order (priority number descending, then name), whether or not it
/// won a PF in the merge (`merge` is not consulted; upstream does not either).
/// Policies with the same resourceName are merged into the first entry.
/// Selectors: the policy's vendor as written; the VF device id of its
/// deviceID from the NIC list (the PF id when numVfs is 0; left out when the
/// id is unknown); pfNames with their `#range`, altNames resolved to the
/// netdev name; rootDevices; `linkTypes` `ether`/`infiniband` unless the
/// device type is `vfio-pci`; `drivers: [vfio-pci]` when it is; the PCI
/// addresses of PFs matching netFilter.
/// `IsRdma`, `NeedVhostNet` and `vdpaType` come from the first policy of a
/// resource, `excludeTopology` from the last one.
pub fn render_device_plugin_config(
    policies: &[SriovNetworkNodePolicy],
    node_labels: &BTreeMap<String, String>,
    pfs: &[InterfaceExt],
    _merge: &NodeMerge,
    nics: &NicIdList,
) -> DevicePluginConfig {
    let mut config = DevicePluginConfig::default();
    for policy in policies_in_upstream_order(policies, node_labels) {
        let spec = &policy.spec;
        let sel = &spec.nic_selector;
        let index = match config
            .resource_list
            .iter()
            .position(|r| r.resource_name == spec.resource_name)
        {
            Some(i) => i,
            None => {
                config.resource_list.push(ResourceConfig {
                    resource_name: spec.resource_name.clone(),
                    selectors: Some(Selectors::One(Box::new(NetDeviceSelectors {
                        is_rdma: spec.is_rdma.unwrap_or(false),
                        need_vhost_net: spec.vhost_net(),
                        vdpa_type: spec.vdpa_type.clone(),
                        ..Default::default()
                    }))),
                    ..Default::default()
                });
                config.resource_list.len() - 1
            }
        };
        let resource = &mut config.resource_list[index];
        resource.exclude_topology = spec.excludes_topology();
        let Some(Selectors::One(s)) = resource.selectors.as_mut() else {
            continue;
        };
        push_unique(&mut s.vendors, &sel.vendor);
        if !sel.device_id.is_empty() {
            let vf_device = if spec.num_vfs == 0 {
                Some(sel.device_id.clone())
            } else {
                nics.vf_device_for(&sel.vendor, &sel.device_id)
                    .or_else(|| nics.vf_device_for_pf_device(&sel.device_id))
                    .map(str::to_string)
            };
            if let Some(d) = vf_device {
                push_unique(&mut s.devices, &d);
            }
        }
        for p in &sel.pf_names {
            push_unique(&mut s.pf_names, &resolve_pf_name(p, pfs));
        }
        if spec.device_type != DEVICE_TYPE_VFIO_PCI && !spec.link_type.is_empty() {
            push_unique(&mut s.link_types, device_plugin_link_type(&spec.link_type));
        }
        for d in &sel.root_devices {
            push_unique(&mut s.root_devices, d);
        }
        // Upstream selects vfio-pci VFs by driver (and only those).
        if spec.device_type == DEVICE_TYPE_VFIO_PCI {
            push_unique(&mut s.drivers, DEVICE_TYPE_VFIO_PCI);
        }
        if !sel.net_filter.is_empty() {
            for pf in pfs
                .iter()
                .filter(|pf| net_filter_matches(&sel.net_filter, &pf.net_filter))
            {
                push_unique(&mut s.pci_addresses, &pf.pci_address);
            }
        }
    }
    config
}
