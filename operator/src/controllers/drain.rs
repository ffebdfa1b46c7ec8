//! Drain coordination: the operator half of the node-state annotation
//! handshake (`desired-state` written by the config daemon, `current-state`
//! by the operator: `Idle`, `Drain_Required`, `Reboot_Required`,
//! `Draining`, `DrainComplete`), compatible with our config daemon and the
//! Go one.
//!
//! - Pools: a node is in the one `SriovNetworkPoolConfig` whose selector
//!   matches it, or in the default pool (`maxUnavailable` 1); a node in two
//!   pools is never drained and gets an Event naming the pools. A pool drains
//!   at most `maxUnavailable` nodes at once (int or percent).
//! - Only pods that hold a resource of the node's SR-IOV pools are evicted
//!   for `Drain_Required` (DaemonSet pods included when they hold one); for
//!   `Reboot_Required` every pod except mirror pods and DaemonSet pods that
//!   hold none. Eviction API, so PodDisruptionBudgets are honoured; a 429
//!   leaves the pod and is retried; after [`DRAIN_TIMEOUT`] the drain is
//!   abandoned with the reason reported, the node uncordoned and the request
//!   retried after [`DRAIN_BACKOFF`].
//! - The cordon is marked on the Node (`sriovnetwork.openshift.io/cordoned-by-operator`)
//!   so it is never forgotten: a restart mid-drain resumes from the
//!   annotations, and a node cordoned by us with no drain going on is
//!   uncordoned. A node cordoned by someone else is left cordoned.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{EvictParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use sriov_crds::{SriovNetworkNodeState, SriovNetworkPoolConfig};

use super::{Result, api_err};
use crate::render::pools::{PoolMembership, max_unavailable, pool_config_of, pool_of};
use crate::settings::Settings;

/// Daemon-owned annotation: what the node needs.
pub const DESIRED_STATE: &str = "sriovnetwork.openshift.io/desired-state";
/// Operator-owned annotation: where the drain is.
pub const CURRENT_STATE: &str = "sriovnetwork.openshift.io/current-state";
/// The daemon asks the operator to leave the node to an external drainer.
pub const USE_EXTERNAL_DRAINER: &str = "sriovnetwork.openshift.io/use-external-drainer";
/// Node annotation: the operator cordoned this node (so it uncordons it).
pub const CORDONED_BY_OPERATOR: &str = "sriovnetwork.openshift.io/cordoned-by-operator";
/// Node-state annotation: when the current drain started (RFC 3339).
pub const DRAIN_STARTED: &str = "sriovnetwork.openshift.io/drain-started";
/// Node-state annotation: a drain that timed out is retried after this time.
pub const DRAIN_RETRY_AFTER: &str = "sriovnetwork.openshift.io/drain-retry-after";

/// `Idle`.
pub const IDLE: &str = "Idle";
/// `Drain_Required`.
pub const DRAIN_REQUIRED: &str = "Drain_Required";
/// `Reboot_Required`.
pub const REBOOT_REQUIRED: &str = "Reboot_Required";
/// `Draining`.
pub const DRAINING: &str = "Draining";
/// `DrainComplete`.
pub const DRAIN_COMPLETE: &str = "DrainComplete";

/// How long a drain may be blocked (PDBs) before it is abandoned.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);
/// How long after an abandoned drain the request is tried again.
pub const DRAIN_BACKOFF: Duration = Duration::from_secs(300);

fn annotation<'a>(a: &'a BTreeMap<String, String>, k: &str) -> &'a str {
    a.get(k)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .unwrap_or(IDLE)
}

fn time_annotation(a: &BTreeMap<String, String>, k: &str) -> Option<k8s_openapi::jiff::Timestamp> {
    a.get(k).and_then(|v| v.parse().ok())
}

/// What to do for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainAction {
    /// Nothing.
    None,
    /// Capacity is free: cordon and start (`current-state: Draining`).
    Start {
        /// Drain for a reboot (every pod) rather than SR-IOV pods only.
        reboot: bool,
    },
    /// The pool is at `maxUnavailable`: wait.
    WaitForCapacity {
        /// Pool key.
        pool: String,
        /// Nodes of the pool draining now.
        draining: usize,
        /// The pool's limit.
        max: usize,
    },
    /// Keep evicting (`Draining`).
    Continue {
        /// Drain for a reboot.
        reboot: bool,
    },
    /// The daemon is done (or withdrew the request): uncordon, `Idle`.
    Finish,
    /// Uncordon a node we cordoned that has no drain going on.
    Uncordon,
    /// Never drained: the node is in more than one pool.
    PoolConflict(String),
    /// A timed-out drain waits for its retry time.
    Backoff,
    /// The node is left to an external drainer.
    External,
}

/// Decides the action of every node state (pure). `nodes` gives each node's
/// labels and whether we cordoned it; `now` is for the back-off.
pub fn plan(
    states: &[SriovNetworkNodeState],
    nodes: &BTreeMap<String, (BTreeMap<String, String>, bool)>,
    pools: &[SriovNetworkPoolConfig],
    disable_drain: bool,
    now: &Time,
) -> BTreeMap<String, DrainAction> {
    let empty = (BTreeMap::new(), false);
    let mut pool_members: BTreeMap<String, Vec<&SriovNetworkNodeState>> = BTreeMap::new();
    for s in states {
        let (labels, _) = nodes.get(&s.name_any()).unwrap_or(&empty);
        if let Some(k) = pool_of(pools, labels).key() {
            pool_members.entry(k.to_string()).or_default().push(s);
        }
    }
    let busy = |s: &SriovNetworkNodeState| {
        matches!(
            annotation(s.annotations(), CURRENT_STATE),
            DRAINING | DRAIN_COMPLETE
        )
    };
    let mut in_flight: BTreeMap<String, usize> = pool_members
        .iter()
        .map(|(k, m)| (k.clone(), m.iter().filter(|s| busy(s)).count()))
        .collect();
    let mut out = BTreeMap::new();
    let mut sorted: Vec<&SriovNetworkNodeState> = states.iter().collect();
    sorted.sort_by_key(|s| s.name_any());
    for s in sorted {
        let name = s.name_any();
        let a = s.annotations();
        let (labels, cordoned) = nodes.get(&name).unwrap_or(&empty);
        let desired = annotation(a, DESIRED_STATE);
        let current = annotation(a, CURRENT_STATE);
        let wants = desired == DRAIN_REQUIRED || desired == REBOOT_REQUIRED;
        let reboot = desired == REBOOT_REQUIRED;
        let action = if a.get(USE_EXTERNAL_DRAINER).is_some_and(|v| v == "true") {
            DrainAction::External
        } else if !wants {
            if current != IDLE {
                DrainAction::Finish
            } else if *cordoned {
                DrainAction::Uncordon
            } else {
                DrainAction::None
            }
        } else if current == DRAIN_COMPLETE {
            DrainAction::None
        } else if current == DRAINING {
            DrainAction::Continue { reboot }
        } else if disable_drain {
            // The daemon applies without a handshake; nothing to do.
            DrainAction::None
        } else if time_annotation(a, DRAIN_RETRY_AFTER).is_some_and(|t| t > now.0) {
            DrainAction::Backoff
        } else {
            let membership = pool_of(pools, labels);
            match &membership {
                PoolMembership::Conflict(_) => {
                    DrainAction::PoolConflict(membership.error().unwrap_or_default())
                }
                _ => {
                    let key = membership.key().unwrap_or_default().to_string();
                    let size = pool_members.get(&key).map_or(1, Vec::len);
                    let max = max_unavailable(pool_config_of(pools, labels), size);
                    let draining = in_flight.get(&key).copied().unwrap_or(0);
                    if draining < max {
                        *in_flight.entry(key).or_default() += 1;
                        DrainAction::Start { reboot }
                    } else {
                        DrainAction::WaitForCapacity {
                            pool: key,
                            draining,
                            max,
                        }
                    }
                }
            }
        };
        out.insert(name, action);
    }
    out
}

/// SR-IOV resources (`<prefix>/<name>`) of a node, from its node state spec.
pub fn node_resources(state: &SriovNetworkNodeState, settings: &Settings) -> Vec<String> {
    let mut r: Vec<String> = state
        .spec
        .interfaces
        .iter()
        .flat_map(|i| i.vf_groups.iter())
        .map(|g| format!("{}/{}", settings.resource_prefix, g.resource_name))
        .collect();
    r.sort();
    r.dedup();
    r
}

fn holds_any(pod: &Pod, resources: &[String]) -> bool {
    pod.spec
        .iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .any(|c| {
            c.resources.as_ref().is_some_and(|r| {
                [r.requests.as_ref(), r.limits.as_ref()]
                    .into_iter()
                    .flatten()
                    .any(|m| m.keys().any(|k| resources.contains(k)))
            })
        })
}

/// The pods of a node to evict: `reboot` → all but mirror pods, finished pods and
/// DaemonSet pods holding no SR-IOV resource; otherwise the pods holding one
/// of `resources` (DaemonSet pods included).
pub fn pods_to_evict<'a>(pods: &'a [Pod], resources: &[String], reboot: bool) -> Vec<&'a Pod> {
    pods.iter()
        .filter(|p| {
            let phase = p
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .unwrap_or("");
            if matches!(phase, "Succeeded" | "Failed") {
                return false;
            }
            if p.annotations().contains_key("kubernetes.io/config.mirror") {
                return false;
            }
            let holds = holds_any(p, resources);
            let daemonset = p.owner_references().iter().any(|o| o.kind == "DaemonSet");
            if reboot { holds || !daemonset } else { holds }
        })
        .collect()
}

/// What a drain step found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainProgress {
    /// No pod left to evict: `DrainComplete` was set.
    Complete,
    /// Evictions sent; pods still terminating or refused (names of refused pods).
    Pending {
        /// Pods a PodDisruptionBudget refused (HTTP 429).
        blocked: Vec<String>,
    },
    /// Blocked longer than [`DRAIN_TIMEOUT`]: abandoned, node uncordoned, retried later.
    Abandoned {
        /// Why.
        reason: String,
    },
}

async fn set_current(
    client: &Client,
    settings: &Settings,
    node: &str,
    value: &str,
    extra: serde_json::Value,
) -> Result<()> {
    let states: Api<SriovNetworkNodeState> = Api::namespaced(client.clone(), &settings.namespace);
    let mut ann = json!({CURRENT_STATE: value});
    super::networks_merge(&mut ann, &extra);
    states
        .patch(
            node,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": ann}})),
        )
        .await
        .map_err(api_err(format!(
            "set {CURRENT_STATE}={value} on node state {node}"
        )))?;
    Ok(())
}

async fn cordon(client: &Client, node: &str, on: bool) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let patch = if on {
        json!({"metadata": {"annotations": {CORDONED_BY_OPERATOR: "true"}}, "spec": {"unschedulable": true}})
    } else {
        json!({"metadata": {"annotations": {CORDONED_BY_OPERATOR: null}}, "spec": {"unschedulable": null}})
    };
    nodes
        .patch(node, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map_err(api_err(format!(
            "{} node {node}",
            if on { "cordon" } else { "uncordon" }
        )))?;
    Ok(())
}

fn stamp(t: k8s_openapi::jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Starts a drain: `current-state: Draining` (with the start time), then
/// cordon (unless someone else already cordoned the node).
pub async fn start(client: &Client, settings: &Settings, node: &Node, now: &Time) -> Result<()> {
    let name = node.name_any();
    set_current(
        client,
        settings,
        &name,
        DRAINING,
        json!({DRAIN_STARTED: stamp(now.0), DRAIN_RETRY_AFTER: null}),
    )
    .await?;
    let already = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    if !already {
        cordon(client, &name, true).await?;
    }
    Ok(())
}

/// One drain step: evict what is left; `DrainComplete` when nothing is.
pub async fn step(
    client: &Client,
    settings: &Settings,
    state: &SriovNetworkNodeState,
    reboot: bool,
    now: &Time,
) -> Result<DrainProgress> {
    let name = state.name_any();
    let pods_api: Api<Pod> = Api::all(client.clone());
    let pods = pods_api
        .list(&ListParams::default().fields(&format!("spec.nodeName={name}")))
        .await
        .map_err(api_err(format!("list pods of node {name}")))?;
    let resources = node_resources(state, settings);
    let targets = pods_to_evict(&pods.items, &resources, reboot);
    if targets.is_empty() {
        set_current(
            client,
            settings,
            &name,
            DRAIN_COMPLETE,
            json!({DRAIN_STARTED: null}),
        )
        .await?;
        return Ok(DrainProgress::Complete);
    }
    let mut blocked = Vec::new();
    for p in targets {
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let ns = p.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        match api.evict(&p.name_any(), &EvictParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 429 => {
                blocked.push(format!("{ns}/{}", p.name_any()))
            }
            Err(e) if super::is_not_found(&e) => {}
            Err(e) => return Err(api_err(format!("evict pod {ns}/{}", p.name_any()))(e)),
        }
    }
    let started = time_annotation(state.annotations(), DRAIN_STARTED).unwrap_or(now.0);
    let elapsed = Duration::try_from(now.0.duration_since(started)).unwrap_or_default();
    if !blocked.is_empty() && elapsed >= DRAIN_TIMEOUT {
        let reason = format!(
            "drain of node {name} blocked for {}s by PodDisruptionBudgets (pods {}); uncordoned, retried after {}s",
            elapsed.as_secs(),
            blocked.join(", "),
            DRAIN_BACKOFF.as_secs()
        );
        abandon(client, settings, &name, now).await?;
        return Ok(DrainProgress::Abandoned { reason });
    }
    Ok(DrainProgress::Pending { blocked })
}

async fn abandon(client: &Client, settings: &Settings, node: &str, now: &Time) -> Result<()> {
    let retry = now.0 + DRAIN_BACKOFF;
    set_current(
        client,
        settings,
        node,
        IDLE,
        json!({DRAIN_STARTED: null, DRAIN_RETRY_AFTER: stamp(retry)}),
    )
    .await?;
    uncordon_if_ours(client, node).await
}

async fn uncordon_if_ours(client: &Client, node: &str) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    match nodes
        .get_opt(node)
        .await
        .map_err(api_err(format!("get node {node}")))?
    {
        Some(n) if n.annotations().contains_key(CORDONED_BY_OPERATOR) => {
            cordon(client, node, false).await
        }
        _ => Ok(()),
    }
}

/// The daemon is done: uncordon (if we cordoned) and `current-state: Idle`.
pub async fn finish(
    client: &Client,
    settings: &Settings,
    node: &str,
    cordoned_by_us: bool,
) -> Result<()> {
    if cordoned_by_us {
        cordon(client, node, false).await?;
    }
    set_current(client, settings, node, IDLE, json!({DRAIN_STARTED: null})).await
}

/// Uncordons a node we cordoned that has no drain going on.
pub async fn uncordon(client: &Client, node: &str) -> Result<()> {
    cordon(client, node, false).await
}
