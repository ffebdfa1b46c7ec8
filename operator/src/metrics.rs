//! Prometheus metrics and the `/healthz`, `/readyz`, `/metrics` endpoints.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Label of the per-controller metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    /// `node`, `device-plugin-config`, `policy-status`, `network`, `operator-config`, `stale-node-state`, `drain`.
    pub controller: String,
}

/// Label of the node sync-status gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncLabel {
    /// `Succeeded`, `InProgress`, `Failed`, `Unknown`.
    pub status: String,
}

/// The operator's metrics.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabel, Counter>,
    errors: Family<ControllerLabel, Counter>,
    queue: Gauge,
    nodes: Family<SyncLabel, Gauge>,
    drains: Gauge,
    retries: Counter,
    ready: AtomicBool,
    leader: AtomicI64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric (prefix `sriov_operator_`).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sriov_operator");
        let reconciles = Family::<ControllerLabel, Counter>::default();
        let errors = Family::<ControllerLabel, Counter>::default();
        let queue = Gauge::default();
        let nodes = Family::<SyncLabel, Gauge>::default();
        let drains = Gauge::default();
        let retries = Counter::default();
        registry.register("reconciles", "Reconciles by controller", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Failed reconciles by controller",
            errors.clone(),
        );
        registry.register(
            "queue_depth",
            "Keys waiting in the work queue",
            queue.clone(),
        );
        registry.register(
            "nodes",
            "Selected nodes by node-state sync status",
            nodes.clone(),
        );
        registry.register(
            "drains_in_progress",
            "Nodes being drained by the operator",
            drains.clone(),
        );
        registry.register(
            "retries",
            "Failed keys scheduled for a retry with backoff",
            retries.clone(),
        );
        Metrics {
            registry,
            retries,
            reconciles,
            errors,
            queue,
            nodes,
            drains,
            ready: AtomicBool::new(false),
            leader: AtomicI64::new(0),
        }
    }

    /// Counts a reconcile.
    pub fn reconciled(&self, controller: &str, ok: bool) {
        let l = ControllerLabel {
            controller: controller.to_string(),
        };
        self.reconciles.get_or_create(&l).inc();
        if !ok {
            self.errors.get_or_create(&l).inc();
        }
    }

    /// Counts a key scheduled for a retry.
    pub fn retried(&self) {
        self.retries.inc();
    }

    /// Sets the queue depth.
    pub fn queue_depth(&self, n: usize) {
        self.queue.set(n as i64);
    }

    /// Sets the node counts per sync status.
    pub fn nodes_by_sync_status(&self, counts: &BTreeMap<String, i64>) {
        for s in ["Succeeded", "InProgress", "Failed", "Unknown"] {
            self.nodes
                .get_or_create(&SyncLabel {
                    status: s.to_string(),
                })
                .set(counts.get(s).copied().unwrap_or(0));
        }
    }

    /// Sets the number of drains in progress.
    pub fn drains_in_progress(&self, n: usize) {
        self.drains.set(n as i64);
    }

    /// Marks the caches synced (readiness).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// True once the caches are synced.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Records leadership (1 leading, 0 standby).
    pub fn set_leader(&self, leader: bool) {
        self.leader.store(leader as i64, Ordering::Relaxed);
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        sriov_health::encode(&self.registry)
    }
}

/// `/healthz` (always 200), `/readyz` (200 once the caches are synced, or
/// while standing by as a non-leader), `/metrics`: served by the project's
/// one health and metrics server ([`sriov_health`]).
impl sriov_health::Probe for Metrics {
    fn ready(&self) -> Result<(), String> {
        let standby = self.leader.load(Ordering::Relaxed) == 0;
        if self.is_ready() || standby {
            Ok(())
        } else {
            Err("caches not synced".into())
        }
    }

    fn metrics(&self) -> String {
        self.encode()
    }
}
