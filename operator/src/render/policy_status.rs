//! Policy status: how many nodes a policy matches and has been applied on,
//! and `Ready`/`Degraded` conditions naming the node and the reason (merge
//! conflicts, failed syncs, a node in two pools). Upstream policies carry no
//! status at all; here a losing policy is never silent.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sriov_crds::conditions::{CONDITION_DEGRADED, CONDITION_READY, set_condition};
use sriov_crds::node_state::{SYNC_STATUS_FAILED, SYNC_STATUS_SUCCEEDED};
use sriov_crds::{SriovNetworkNodePolicy, SriovNetworkNodePolicyStatus, SriovNetworkNodeState};

use super::node::NodeRender;

/// `Ready` reason: applied on every matched node.
pub const REASON_APPLIED: &str = "Applied";
/// `Ready` reason: some matched nodes have not applied it yet.
pub const REASON_PROGRESSING: &str = "Progressing";
/// `Ready` reason: no node matches the nodeSelector.
pub const REASON_NO_MATCHING_NODES: &str = "NoMatchingNodes";
/// `Ready` reason: see the Degraded condition.
pub const REASON_DEGRADED: &str = "Degraded";
/// `Degraded` reason: lost a PF or VFs to another policy.
pub const REASON_MERGE_CONFLICT: &str = "MergeConflict";
/// `Degraded` reason: a node's config daemon failed to apply.
pub const REASON_SYNC_FAILED: &str = "SyncFailed";
/// `Degraded` reason: a node is in more than one pool.
pub const REASON_POOL_CONFLICT: &str = "PoolConflict";
/// `Degraded` reason when nothing is wrong.
pub const REASON_AS_EXPECTED: &str = "AsExpected";

/// At most this many node problems are listed in a message.
const MAX_LISTED: usize = 5;

/// Per-policy tallies, gathered node by node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyTally {
    /// Nodes the policy selects.
    pub matched: i32,
    /// Of those, nodes whose daemon reports `Succeeded` for the current spec.
    pub applied: i32,
    /// (reason, "node: message") of problems, in node order.
    pub problems: Vec<(&'static str, String)>,
}

/// True when the node's daemon reports `Succeeded` and its spec is the rendered one.
pub fn node_applied(render: &NodeRender, state: Option<&SriovNetworkNodeState>) -> bool {
    let Some(state) = state else { return false };
    let synced = state
        .status
        .as_ref()
        .is_some_and(|s| s.sync_status == SYNC_STATUS_SUCCEEDED);
    synced && render.merged && state.spec == render.spec
}

/// Adds one node's outcome to the tallies of the policies that select it.
pub fn tally_node(
    tallies: &mut BTreeMap<String, PolicyTally>,
    render: &NodeRender,
    state: Option<&SriovNetworkNodeState>,
) {
    let applied = node_applied(render, state);
    let failed = state
        .and_then(|s| s.status.as_ref())
        .filter(|s| s.sync_status == SYNC_STATUS_FAILED)
        .map(|s| s.last_sync_error.clone());
    for policy in &render.merge.applied_policies {
        let t = tallies.entry(policy.clone()).or_default();
        t.matched += 1;
        if applied {
            t.applied += 1;
        }
        for c in render
            .merge
            .conflicts
            .iter()
            .filter(|c| &c.policy == policy)
        {
            t.problems
                .push((REASON_MERGE_CONFLICT, format!("node {}: {c}", render.node)));
        }
        if let Some(err) = &failed {
            t.problems.push((
                REASON_SYNC_FAILED,
                format!("node {}: the config daemon failed: {err}", render.node),
            ));
        }
        if let Some(err) = render.pool.error() {
            t.problems
                .push((REASON_POOL_CONFLICT, format!("node {}: {err}", render.node)));
        }
    }
}

/// The status of a policy from its tally; conditions keep their
/// `lastTransitionTime` when their status does not change.
pub fn policy_status(
    policy: &SriovNetworkNodePolicy,
    tally: Option<&PolicyTally>,
    now: &Time,
) -> SriovNetworkNodePolicyStatus {
    let empty = PolicyTally::default();
    let t = tally.unwrap_or(&empty);
    let mut status = policy.status.clone().unwrap_or_default();
    status.matched_nodes = Some(t.matched);
    status.applied_nodes = Some(t.applied);
    let generation = policy.metadata.generation;
    let (degraded_reason, degraded_message) = match t.problems.first() {
        None => (REASON_AS_EXPECTED, String::new()),
        Some((reason, _)) => {
            let mut msg: Vec<&str> = t
                .problems
                .iter()
                .take(MAX_LISTED)
                .map(|(_, m)| m.as_str())
                .collect();
            let more = t.problems.len().saturating_sub(MAX_LISTED);
            let more_text = format!("and {more} more");
            if more > 0 {
                msg.push(&more_text);
            }
            (*reason, msg.join("; "))
        }
    };
    let degraded = !t.problems.is_empty();
    let (ready, reason, message) = if t.matched == 0 {
        (
            false,
            REASON_NO_MATCHING_NODES,
            "no node selected by the operator config matches nodeSelector".to_string(),
        )
    } else if degraded {
        (
            false,
            REASON_DEGRADED,
            format!(
                "applied on {} of {} nodes; see Degraded",
                t.applied, t.matched
            ),
        )
    } else if t.applied == t.matched {
        (
            true,
            REASON_APPLIED,
            format!("applied on all {} matching nodes", t.matched),
        )
    } else {
        (
            false,
            REASON_PROGRESSING,
            format!("applied on {} of {} nodes", t.applied, t.matched),
        )
    };
    set_condition(
        &mut status.conditions,
        CONDITION_READY,
        ready,
        reason,
        &message,
        generation,
        now.clone(),
    );
    set_condition(
        &mut status.conditions,
        CONDITION_DEGRADED,
        degraded,
        degraded_reason,
        &degraded_message,
        generation,
        now.clone(),
    );
    status
}
