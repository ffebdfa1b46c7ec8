//! Rules of a policy against what a node reported (`SriovNetworkNodeState`
//! status): which PFs it selects, VF counts the hardware allows, NIC models
//! in the supported list, and the limits of externally managed PFs.

use super::RuleError;
use crate::nic_ids::NicIdList;
use crate::node_policy::SriovNetworkNodePolicySpec;
use crate::node_state::InterfaceExt;
use crate::rules::policy::NicCheck;
use crate::selection::selects;

/// Mellanox / NVIDIA PCI vendor id (vDPA is only supported there).
pub const VENDOR_MELLANOX: &str = "15b3";

fn describe(pf: &InterfaceExt) -> String {
    let name = if pf.name.is_empty() {
        "(no netdev)"
    } else {
        &pf.name
    };
    format!(
        "{name} ({}, {}:{})",
        pf.pci_address, pf.vendor, pf.device_id
    )
}

/// What a policy selects on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeSelection {
    /// PCI addresses of the selected, supported PFs.
    pub selected: Vec<String>,
    /// PFs the selector matches but whose model is not in the NIC list.
    pub unsupported: Vec<String>,
    /// Violations on the selected PFs.
    pub errors: Vec<RuleError>,
}

/// Checks a policy against one node's reported PFs. Returns the PCI addresses
/// of the PFs it selects, or the violations (also when it selects nothing).
pub fn check_policy_on_node(
    node: &str,
    spec: &SriovNetworkNodePolicySpec,
    pfs: &[InterfaceExt],
    nics: &NicIdList,
    nic_check: NicCheck,
) -> Result<Vec<String>, Vec<RuleError>> {
    let NodeSelection {
        selected,
        unsupported,
        mut errors,
    } = select_on_node(node, spec, pfs, nics, nic_check);
    if selected.is_empty() && errors.is_empty() {
        errors.push(nothing_selected(node, pfs, &unsupported));
    }
    if errors.is_empty() {
        Ok(selected)
    } else {
        Err(errors)
    }
}

/// The error for a node where the policy selects no supported PF.
pub fn nothing_selected(node: &str, pfs: &[InterfaceExt], unsupported: &[String]) -> RuleError {
    let found = if pfs.is_empty() {
        "the node reported no SR-IOV PFs".to_string()
    } else {
        format!(
            "PFs on the node: {}",
            pfs.iter().map(describe).collect::<Vec<_>>().join(", ")
        )
    };
    let why = if unsupported.is_empty() {
        String::new()
    } else {
        format!(
            "; selected but not in the supported NIC list: {} (add them to the supported-nic-ids list)",
            unsupported.join(", ")
        )
    };
    RuleError::new(
        "spec.nicSelector",
        format!("no supported NIC on node {node} is selected by nicSelector; {found}{why}"),
    )
}

/// Which PFs of a node the policy selects, and the violations on them.
pub fn select_on_node(
    node: &str,
    spec: &SriovNetworkNodePolicySpec,
    pfs: &[InterfaceExt],
    nics: &NicIdList,
    nic_check: NicCheck,
) -> NodeSelection {
    let mut errors = Vec::new();
    let mut selected = Vec::new();
    let mut unsupported = Vec::new();
    for pf in pfs.iter().filter(|pf| selects(&spec.nic_selector, pf)) {
        let known = nic_check == NicCheck::AnyNic
            || nics.is_known_pf(&pf.vendor, &pf.device_id)
            // In a VM the "PF" is a VF of the host NIC, selected by netFilter.
            || (!spec.nic_selector.net_filter.is_empty() && nics.is_known_vf(&pf.vendor, &pf.device_id));
        if !known {
            unsupported.push(describe(pf));
            continue;
        }
        selected.push(pf.pci_address.clone());
        if pf.total_vfs > 0 && spec.num_vfs > pf.total_vfs {
            errors.push(RuleError::new(
                "spec.numVfs",
                format!(
                    "numVfs {} exceeds what PF {} on node {node} supports: {} VFs (sriov_totalvfs); lower numVfs to {} or exclude this PF in nicSelector",
                    spec.num_vfs,
                    describe(pf),
                    pf.total_vfs,
                    pf.total_vfs
                ),
            ));
        }
        if spec.is_externally_managed() {
            if spec.num_vfs > pf.num_vfs {
                errors.push(RuleError::new(
                    "spec.numVfs",
                    format!(
                        "numVfs {} is more than the {} VFs that exist on externally managed PF {} on node {node}; create the VFs first or lower numVfs",
                        spec.num_vfs,
                        pf.num_vfs,
                        describe(pf)
                    ),
                ));
            }
            if let Some(mtu) = spec.mtu
                && mtu > pf.mtu
            {
                errors.push(RuleError::new(
                    "spec.mtu",
                    format!(
                        "mtu {mtu} is higher than the MTU {} of externally managed PF {} on node {node}; raise the PF MTU first or lower mtu",
                        pf.mtu,
                        describe(pf)
                    ),
                ));
            }
            if !spec.link_type.is_empty() && !spec.link_type.eq_ignore_ascii_case(&pf.link_type) {
                errors.push(RuleError::new(
                    "spec.linkType",
                    format!(
                        "linkType {} differs from the link type {:?} of externally managed PF {} on node {node}; the operator does not change it, so set linkType to {} or remove it",
                        spec.link_type,
                        pf.link_type,
                        describe(pf),
                        pf.link_type.to_ascii_lowercase()
                    ),
                ));
            }
        }
        if !spec.vdpa_type.is_empty() && !pf.vendor.eq_ignore_ascii_case(VENDOR_MELLANOX) {
            errors.push(RuleError::new(
                "spec.vdpaType",
                format!(
                    "vDPA is supported only on Mellanox/NVIDIA NICs (vendor 15b3), but PF {} on node {node} is vendor {}; remove vdpaType or select a Mellanox NIC",
                    describe(pf),
                    pf.vendor
                ),
            ));
        }
    }
    NodeSelection {
        selected,
        unsupported,
        errors,
    }
}
