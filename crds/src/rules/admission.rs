//! The whole admission check of a `SriovNetworkNodePolicy`, as the upstream
//! webhook does it: static rules, then against every node its nodeSelector
//! picks (that node's reported PFs and the other policies selecting it).

use std::collections::BTreeMap;

use kube::ResourceExt;

use super::RuleError;
use crate::nic_ids::NicIdList;
use crate::node_policy::SriovNetworkNodePolicy;
use crate::node_state::InterfaceExt;
use crate::policy_merge::node_selected;
use crate::rules::cross_policy::check_against_policies;
use crate::rules::node::{nothing_selected, select_on_node};
use crate::rules::policy::{NicCheck, check_policy_spec};

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

/// Static and node-dependent rules of a policy being created or updated.
/// `policies` are the existing policies (the old version of this one is skipped).
pub fn admit_policy(
    policy: &SriovNetworkNodePolicy,
    nodes: &[NodeView],
    policies: &[SriovNetworkNodePolicy],
    nics: &NicIdList,
    nic_check: NicCheck,
) -> Vec<RuleError> {
    let mut errors = check_policy_spec(&policy.spec, nics, nic_check);
    if !errors.is_empty() {
        return errors;
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
        return vec![RuleError::new(
            "spec.nodeSelector",
            format!(
                "no node has the labels {wanted:?}; label the nodes (kubectl label node <node> {}) or fix nodeSelector",
                if wanted.is_empty() {
                    "<key>=<value>"
                } else {
                    &wanted
                }
            ),
        )];
    }
    let mut any_selected = false;
    let mut nothing = Vec::new();
    for node in &selected_nodes {
        if let Some(pfs) = &node.pfs {
            let sel = select_on_node(&node.name, &policy.spec, pfs, nics, nic_check);
            any_selected |= !sel.selected.is_empty();
            if sel.selected.is_empty() && sel.errors.is_empty() {
                nothing.push(nothing_selected(&node.name, pfs, &sel.unsupported));
            }
            errors.extend(sel.errors);
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
        errors.extend(nothing);
        if errors.is_empty() {
            errors.push(RuleError::new(
                "spec.nicSelector",
                "none of the selected nodes has reported its NICs yet (no SriovNetworkNodeState status); wait for the config daemon or check that it runs",
            ));
        }
    }
    errors
}
