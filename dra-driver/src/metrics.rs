//! `/healthz`, `/readyz` and `/metrics` on `--metrics-addr`, through the
//! project's one health and metrics server ([`sriov_health`]).
//!
//! `/readyz` answers 200 only while the kubelet has this instance
//! registered (its `NotifyRegistrationStatus`): the DaemonSet's readiness
//! probe, so in a rolling update (`maxSurge`) the new pod turns Ready, and
//! the old pod is stopped, only once the kubelet can call the new one.
//! `/healthz` answers 200 while the process serves.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

/// The registration status the kubelet last reported (`None`: not yet).
pub type RegistrationStatus = watch::Receiver<Option<Result<(), String>>>;

type Labels = Vec<(&'static str, &'static str)>;

/// The driver's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Claims prepared, by `result` (`ok`, `error`).
    prepares: Family<Labels, Counter>,
    /// Claims unprepared, by `result`.
    unprepares: Family<Labels, Counter>,
    /// Time to prepare one claim (from the kubelet's call to the answer,
    /// the API read and any rebind included).
    prepare_seconds: Histogram,
    /// Devices in the last published ResourceSlices.
    pub published_devices: Gauge,
    /// Claims in the checkpoint.
    pub prepared_claims: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let prepares = Family::<Labels, Counter>::default();
        let unprepares = Family::<Labels, Counter>::default();
        // 0.5 ms .. ~4 s.
        let prepare_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        let published_devices = Gauge::default();
        let prepared_claims = Gauge::default();
        registry.register(
            "sriov_dra_claim_prepares",
            "NodePrepareResources claims answered, by result.",
            prepares.clone(),
        );
        registry.register(
            "sriov_dra_claim_unprepares",
            "NodeUnprepareResources claims answered, by result.",
            unprepares.clone(),
        );
        registry.register(
            "sriov_dra_prepare_duration_seconds",
            "Time to prepare one claim.",
            prepare_seconds.clone(),
        );
        registry.register(
            "sriov_dra_published_devices",
            "Devices in the node's ResourceSlices as last published.",
            published_devices.clone(),
        );
        registry.register(
            "sriov_dra_prepared_claims",
            "Claims prepared on the node (the checkpoint).",
            prepared_claims.clone(),
        );
        Self {
            registry,
            prepares,
            unprepares,
            prepare_seconds,
            published_devices,
            prepared_claims,
        }
    }
}

fn result(ok: bool) -> Labels {
    vec![("result", if ok { "ok" } else { "error" })]
}

impl Metrics {
    /// Records one claim's prepare.
    pub fn prepared(&self, ok: bool, seconds: f64) {
        self.prepares.get_or_create(&result(ok)).inc();
        self.prepare_seconds.observe(seconds);
    }

    /// Records one claim's unprepare.
    pub fn unprepared(&self, ok: bool) {
        self.unprepares.get_or_create(&result(ok)).inc();
    }

    /// The OpenMetrics text, as `/metrics` serves it.
    pub fn render(&self) -> String {
        sriov_health::encode(&self.registry)
    }
}

/// Why the instance is not ready, from the kubelet's last verdict.
pub fn readiness(status: &Option<Result<(), String>>) -> Result<(), String> {
    match status {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(format!("the kubelet refused the registration: {e}")),
        None => Err("waiting for the kubelet to register the plugin".into()),
    }
}

struct DriverProbe {
    metrics: Arc<Metrics>,
    status: RegistrationStatus,
}

impl sriov_health::Probe for DriverProbe {
    fn ready(&self) -> Result<(), String> {
        readiness(&self.status.borrow())
    }

    fn metrics(&self) -> String {
        self.metrics.render()
    }
}

/// Serves `/healthz`, `/readyz` and `/metrics` on `listener` forever.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    status: RegistrationStatus,
) {
    sriov_health::serve(listener, Arc::new(DriverProbe { metrics, status })).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_once_registered() {
        assert!(readiness(&None).unwrap_err().contains("waiting"));
        assert!(
            readiness(&Some(Err("bad version".into())))
                .unwrap_err()
                .contains("refused the registration: bad version")
        );
        assert_eq!(readiness(&Some(Ok(()))), Ok(()));
    }

    #[test]
    fn counts_prepares_by_result_with_durations() {
        let m = Metrics::default();
        m.prepared(true, 0.002);
        m.prepared(false, 0.01);
        m.prepared(true, 0.001);
        m.unprepared(true);
        m.published_devices.set(4);
        let text = m.render();
        for line in [
            "sriov_dra_claim_prepares_total{result=\"ok\"} 2",
            "sriov_dra_claim_prepares_total{result=\"error\"} 1",
            "sriov_dra_claim_unprepares_total{result=\"ok\"} 1",
            "sriov_dra_prepare_duration_seconds_count 3",
            "sriov_dra_published_devices 4",
            "sriov_dra_prepared_claims 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
