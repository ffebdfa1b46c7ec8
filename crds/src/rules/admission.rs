//! The whole admission check of a `SriovNetworkNodePolicy`, as the upstream
//! webhook does it: static rules, then against every node its nodeSelector
//! picks (that node's reported PFs and the other policies selecting it);
//! plus the warnings upstream does not give.

use std::collections::BTreeMap;

use kube::ResourceExt;

use super::RuleError;
use crate::nic_ids::NicIdList;
use crate::node_policy::SriovNetworkNodePolicy;
use crate::node_state::InterfaceExt;
use crate::policy_merge::node_selected;
use crate::rules::cross_policy::check_against_policies;
use crate::rules::node::{nothing_selected, select_on_node};
use crate::rules::policy::{NicCheck, check_policy_spec, policy_warnings};

/// A node as the webhook sees it.
#[derive(Debug, Clone, Default)]
pub struct NodeView {
    /// Node name.
    pub name: String,
    /// Node labels.
    pub labels: BTreeMap<String, String>,
    /// PFs from its `SriovNetworkNodeState` status; `None` when the node has no state yet.
    pub pfs: Option<Vec<InterfaceExt>>,
}

/// The verdict on a policy: rejections and warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyAdmission {
    /// Violations; any of them rejects the policy.
    pub errors: Vec<RuleError>,
    /// Accepted, but worth telling the user (admission `warnings`).
    pub warnings: Vec<RuleError>,
}

/// Static and node-dependent rules of a policy being created or updated.
/// `policies` are the existing policies (the old version of this one is skipped).
///
/// Unlike upstream, a policy whose `nodeSelector` picks no node yet, or whose
/// nodes have not reported their NICs yet, is accepted with a warning (its
/// status then says where it applies). It is rejected when every selected
/// node has reported and none has a selected, supported PF.
pub fn admit_policy(
    policy: &SriovNetworkNodePolicy,
    nodes: &[NodeView],
    policies: &[SriovNetworkNodePolicy],
    nics: &NicIdList,
    nic_check: NicCheck,
) -> PolicyAdmission {
    let mut warnings = policy_warnings(&policy.spec, nic_check);
    let mut errors = check_policy_spec(&policy.spec, nics, nic_check);
    if !errors.is_empty() {
        return PolicyAdmission { errors, warnings };
    }
    let selected_nodes: Vec<&NodeView> = nodes
        .iter()
        .filter(|n| node_selected(policy, &n.labels))
        .collect();
    if selected_nodes.is_empty() {
        let wanted = policy
            .spec
            .node_selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        warnings.push(RuleError::new(
            "spec.nodeSelector",
            format!(
                "no node has the labels {wanted:?} yet; the policy applies once nodes are labelled (kubectl label node <node> {})",
                if wanted.is_empty() {
                    "<key>=<value>"
                } else {
                    &wanted
                }
            ),
        ));
        return PolicyAdmission { errors, warnings };
    }
    let mut any_selected = false;
    let mut unreported = Vec::new();
    let mut nothing = Vec::new();
    for node in &selected_nodes {
        match &node.pfs {
            Some(pfs) => {
                let sel = select_on_node(&node.name, &policy.spec, pfs, nics, nic_check);
                any_selected |= !sel.selected.is_empty();
                if sel.selected.is_empty() && sel.errors.is_empty() {
                    nothing.push(nothing_selected(&node.name, pfs, &sel.unsupported));
                }
                errors.extend(sel.errors);
            }
            None => unreported.push(node.name.clone()),
        }
        let others: Vec<SriovNetworkNodePolicy> = policies
            .iter()
            .filter(|p| p.name_any() != policy.name_any() && node_selected(p, &node.labels))
            .cloned()
            .collect();
        for e in check_against_policies(policy, &others) {
            if !errors.contains(&e) {
                errors.push(e);
            }
        }
    }
    if !any_selected && errors.is_empty() {
        if unreported.is_empty() {
            errors.extend(nothing);
        } else {
            warnings.extend(nothing);
            warnings.push(RuleError::new(
                "spec.nicSelector",
                format!(
                    "{} selected node(s) have not reported their NICs yet ({}); the NIC checks run when the config daemon reports, and the policy's status shows where it applies",
                    unreported.len(),
                    preview(&unreported)
                ),
            ));
        }
    }
    PolicyAdmission { errors, warnings }
}

fn preview(names: &[String]) -> String {
    const MAX: usize = 5;
    if names.len() <= MAX {
        names.join(", ")
    } else {
        format!(
            "{}, and {} more",
            names[..MAX].join(", "),
            names.len() - MAX
        )
    }
}
