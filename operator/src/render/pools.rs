//! `SriovNetworkPoolConfig` membership and capacity: which pool a node is in
//! (exactly one matching pool; none → the default pool of `maxUnavailable`
//! 1; two or more → an error reported on the node state) and how many of a
//! pool's nodes may be drained at once.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use sriov_crds::SriovNetworkPoolConfig;

/// True when `labels` satisfy the selector (matchLabels and matchExpressions
/// In, NotIn, Exists, DoesNotExist). An empty selector matches every node.
pub fn label_selector_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    if let Some(ml) = &sel.match_labels
        && !ml.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.as_deref().unwrap_or_default();
        let v = labels.get(&e.key);
        let ok = match e.operator.as_str() {
            "In" => v.is_some_and(|v| values.contains(v)),
            "NotIn" => v.is_none_or(|v| !values.contains(v)),
            "Exists" => v.is_some(),
            "DoesNotExist" => v.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// The pool a node belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolMembership {
    /// Exactly one pool config matches (its name).
    Pool(String),
    /// No pool config matches: the default pool (`maxUnavailable` 1).
    Default,
    /// More than one pool config matches: an error, the node is never drained.
    Conflict(Vec<String>),
}

/// Name used for the implicit pool of nodes in no pool config.
pub const DEFAULT_POOL: &str = "<default>";

impl PoolMembership {
    /// The pool key (`<default>` for the default pool); None for a conflict.
    pub fn key(&self) -> Option<&str> {
        match self {
            PoolMembership::Pool(n) => Some(n),
            PoolMembership::Default => Some(DEFAULT_POOL),
            PoolMembership::Conflict(_) => None,
        }
    }

    /// Error message for a node in several pools.
    pub fn error(&self) -> Option<String> {
        match self {
            PoolMembership::Conflict(names) => Some(format!(
                "node matches more than one SriovNetworkPoolConfig ({}); a node must be in at most one pool: make their nodeSelectors disjoint",
                names.join(", ")
            )),
            _ => None,
        }
    }
}

/// Pool configs that take part in membership: those with a nodeSelector
/// (an OpenShift `ovsHardwareOffloadConfig`-only pool selects no nodes).
fn selecting(
    pools: &[SriovNetworkPoolConfig],
) -> impl Iterator<Item = (&SriovNetworkPoolConfig, &LabelSelector)> {
    pools
        .iter()
        .filter_map(|p| p.spec.node_selector.as_ref().map(|s| (p, s)))
}

/// The pool of a node.
pub fn pool_of(
    pools: &[SriovNetworkPoolConfig],
    labels: &BTreeMap<String, String>,
) -> PoolMembership {
    let mut names: Vec<String> = selecting(pools)
        .filter(|(_, s)| label_selector_matches(s, labels))
        .map(|(p, _)| p.name_any())
        .collect();
    names.sort();
    match names.len() {
        0 => PoolMembership::Default,
        1 => PoolMembership::Pool(names.remove(0)),
        _ => PoolMembership::Conflict(names),
    }
}

/// The pool config of a node when exactly one matches.
pub fn pool_config_of<'a>(
    pools: &'a [SriovNetworkPoolConfig],
    labels: &BTreeMap<String, String>,
) -> Option<&'a SriovNetworkPoolConfig> {
    match pool_of(pools, labels) {
        PoolMembership::Pool(name) => pools.iter().find(|p| p.name_any() == name),
        _ => None,
    }
}

/// How many nodes of a pool of `size` nodes may be unavailable at once.
/// Default pool: 1. A pool without `maxUnavailable`: unlimited (upstream).
/// An int is taken as is (negative → 0); a percent is of the pool size,
/// rounded down, but at least 1 for a non-zero percent; a bad value → 1.
pub fn max_unavailable(pool: Option<&SriovNetworkPoolConfig>, size: usize) -> usize {
    let Some(pool) = pool else {
        return 1;
    };
    match &pool.spec.max_unavailable {
        None => usize::MAX,
        Some(IntOrString::Int(n)) => (*n).max(0) as usize,
        Some(IntOrString::String(s)) => {
            let pct = s
                .trim()
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<u32>().ok());
            match pct {
                Some(0) => 0,
                Some(p) => ((size * p.min(100) as usize) / 100).max(1),
                None => s.trim().parse::<usize>().unwrap_or(1),
            }
        }
    }
}

/// Node-state condition the operator sets while the node is in more than
/// one pool config (the node is then never drained). Owned by the operator
/// (server-side apply of the status, its own field manager); the daemon's
/// conditions are left alone.
pub const CONDITION_POOL_CONFLICT: &str = "PoolConflict";
/// `PoolConflict=True` reason.
pub const REASON_MULTIPLE_POOLS: &str = "MultiplePools";
/// `PoolConflict=False` reason, once the conflict is gone.
pub const REASON_SINGLE_POOL: &str = "SinglePool";

/// The `PoolConflict` condition to write on a node state, or None when the
/// existing conditions already say it: `True` (naming the pools) while the
/// node is in more than one pool; `False` once it is not, only where it was
/// `True` (a node never in conflict carries no such condition).
pub fn pool_conflict_condition(
    membership: &PoolMembership,
    existing: &[Condition],
    now: &Time,
) -> Option<Condition> {
    let old = existing.iter().find(|c| c.type_ == CONDITION_POOL_CONFLICT);
    let (status, reason, message) = match membership.error() {
        Some(msg) => ("True", REASON_MULTIPLE_POOLS, msg),
        None => match old {
            Some(c) if c.status == "True" => ("False", REASON_SINGLE_POOL, String::new()),
            _ => return None,
        },
    };
    if old.is_some_and(|c| c.status == status && c.reason == reason && c.message == message) {
        return None;
    }
    Some(Condition {
        type_: CONDITION_POOL_CONFLICT.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: None,
        last_transition_time: now.clone(),
    })
}
