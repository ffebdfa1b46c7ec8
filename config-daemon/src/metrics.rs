//! What the daemon counts, and its readiness: a `prometheus-client`
//! registry (prefix `sriov_config_daemon_`) served with `/healthz` and
//! `/readyz` by the project's one health and metrics server
//! ([`sriov_health`]). Shared by the Kubernetes mode and the standalone
//! `--watch` mode.
//!
//! - `/healthz`: 200 while the process serves requests.
//! - `/readyz`: 200 once the first sync is done and the API server (in
//!   Kubernetes mode) answered the last request; else 503 with the reason.
//! - `/metrics`: [`Metrics::encode`] (OpenMetrics text).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Upper bounds (seconds) of the apply duration histogram buckets.
pub const DURATION_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The sync statuses reported as a one-hot gauge.
const SYNC_STATUSES: [&str; 3] = ["InProgress", "Succeeded", "Failed"];

/// Label of `syncs_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    /// `succeeded` or `failed`.
    result: &'static str,
}

/// Label of the `sync_status` gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    /// One of [`SYNC_STATUSES`].
    status: &'static str,
}

/// One run of the apply engine, as the metrics see it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunSample {
    /// How long plan + apply + rescan took.
    pub duration: Duration,
    /// Steps that ran to completion.
    pub steps: u64,
    /// PFs whose apply failed.
    pub failed_pfs: u64,
    /// The run repaired drift (the node no longer matched an unchanged spec).
    pub drift_repaired: bool,
}

/// Counters and gauges of one daemon process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    syncs: Family<ResultLabel, Counter>,
    pf_failures: Counter,
    steps_applied: Counter,
    drift_repairs: Counter,
    drains_requested: Counter,
    drains_skipped: Counter,
    api_errors: Counter,
    durations: Histogram,
    last_run_unix: Gauge,
    sync_status_gauge: Family<StatusLabel, Gauge>,
    ready: Gauge,
    sync_status: Mutex<String>,
    first_sync_done: AtomicBool,
    /// The API server answered the last call (always true in standalone mode).
    api_ok: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh counters; not ready until the first sync is recorded.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sriov_config_daemon");
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let pf_failures = counter(
            &mut registry,
            "pf_failures",
            "PF applies that failed (each names the PF, step and kernel error in lastSyncError).",
        );
        let steps_applied = counter(
            &mut registry,
            "steps_applied",
            "Plan steps applied (sriov_numvfs, driver binds, MTUs).",
        );
        let drift_repairs = counter(
            &mut registry,
            "drift_repairs",
            "Runs that repaired drift (the node changed while the spec did not).",
        );
        let drains_requested = counter(
            &mut registry,
            "drains_requested",
            "Drains requested through the desired-state annotation.",
        );
        let drains_skipped = counter(
            &mut registry,
            "drains_skipped",
            "Disruptive changes applied without a drain (disableDrain).",
        );
        let api_errors = counter(
            &mut registry,
            "api_errors",
            "Kubernetes API requests that failed.",
        );
        let syncs = Family::<ResultLabel, Counter>::default();
        // Both series exist from the start (0 before the first run).
        for result in ["succeeded", "failed"] {
            let _ = syncs.get_or_create(&ResultLabel { result });
        }
        registry.register("syncs", "Apply runs by result.", syncs.clone());
        let durations = Histogram::new(DURATION_BUCKETS);
        registry.register_with_unit(
            "apply_duration",
            "Duration of apply runs (scan, plan, apply, rescan).",
            Unit::Seconds,
            durations.clone(),
        );
        let last_run_unix = Gauge::default();
        registry.register_with_unit(
            "last_sync_timestamp",
            "Unix time of the last apply run.",
            Unit::Seconds,
            last_run_unix.clone(),
        );
        let sync_status_gauge = Family::<StatusLabel, Gauge>::default();
        for status in SYNC_STATUSES {
            let _ = sync_status_gauge.get_or_create(&StatusLabel { status });
        }
        registry.register(
            "sync_status",
            "The node's syncStatus (1 for the current one).",
            sync_status_gauge.clone(),
        );
        let ready = Gauge::default();
        registry.register("ready", "Whether /readyz answers 200.", ready.clone());
        Self {
            registry,
            syncs,
            pf_failures,
            steps_applied,
            drift_repairs,
            drains_requested,
            drains_skipped,
            api_errors,
            durations,
            last_run_unix,
            sync_status_gauge,
            ready,
            sync_status: Mutex::new(String::new()),
            first_sync_done: AtomicBool::new(false),
            api_ok: AtomicBool::new(true),
        }
    }

    /// Records one apply run.
    pub fn record_run(&self, s: &RunSample) {
        let result = if s.failed_pfs > 0 {
            self.pf_failures.inc_by(s.failed_pfs);
            "failed"
        } else {
            "succeeded"
        };
        self.syncs.get_or_create(&ResultLabel { result }).inc();
        self.steps_applied.inc_by(s.steps);
        if s.drift_repaired {
            self.drift_repairs.inc();
        }
        self.durations.observe(s.duration.as_secs_f64());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.last_run_unix
            .set(i64::try_from(now).unwrap_or(i64::MAX));
    }

    /// Sets the reported `syncStatus` and marks the first sync as done.
    pub fn set_sync_status(&self, status: &str) {
        for st in SYNC_STATUSES {
            self.sync_status_gauge
                .get_or_create(&StatusLabel { status: st })
                .set(i64::from(status == st));
        }
        *self.sync_status.lock().expect("metrics lock") = status.to_string();
        self.first_sync_done.store(true, Ordering::Relaxed);
    }

    /// The last reported `syncStatus` (empty before the first sync).
    pub fn sync_status(&self) -> String {
        self.sync_status.lock().expect("metrics lock").clone()
    }

    /// A drain was requested from the operator.
    pub fn drain_requested(&self) {
        self.drains_requested.inc();
    }

    /// A disruptive change went ahead without a drain (`disableDrain`).
    pub fn drain_skipped(&self) {
        self.drains_skipped.inc();
    }

    /// Records whether an API call succeeded.
    pub fn api_result(&self, ok: bool) {
        if !ok {
            self.api_errors.inc();
        }
        self.api_ok.store(ok, Ordering::Relaxed);
    }

    /// `Ok` when the first sync is done and the API server (if any) answers;
    /// else why not.
    pub fn readiness(&self) -> Result<(), &'static str> {
        if !self.first_sync_done.load(Ordering::Relaxed) {
            return Err("the first sync has not finished");
        }
        if !self.api_ok.load(Ordering::Relaxed) {
            return Err("the API server did not answer the last request");
        }
        Ok(())
    }

    /// The metrics as OpenMetrics text, as `/metrics` serves them.
    pub fn encode(&self) -> String {
        self.ready.set(i64::from(self.readiness().is_ok()));
        sriov_health::encode(&self.registry)
    }
}

/// `/healthz` (always 200), `/readyz` ([`Metrics::readiness`]), `/metrics`
/// ([`Metrics::encode`]).
impl sriov_health::Probe for Metrics {
    fn ready(&self) -> Result<(), String> {
        self.readiness().map_err(String::from)
    }

    fn metrics(&self) -> String {
        self.encode()
    }
}

/// Binds `addr` and serves `/healthz`, `/readyz` and `/metrics` from a
/// thread of its own (for the synchronous standalone `--watch` loop).
/// Returns the bound address.
pub fn serve_in_thread(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    let bound = std_listener.local_addr()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || {
            rt.block_on(async move {
                match tokio::net::TcpListener::from_std(std_listener) {
                    Ok(l) => sriov_health::serve(l, metrics).await,
                    Err(e) => tracing::error!(error = %e, "cannot serve metrics"),
                }
            })
        })?;
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sriov_health::Probe;

    fn has(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn counts_runs_buckets_and_status() {
        let m = Metrics::new();
        assert!(m.readiness().is_err());
        let before = m.encode();
        for line in [
            "sriov_config_daemon_syncs_total{result=\"succeeded\"} 0",
            "sriov_config_daemon_syncs_total{result=\"failed\"} 0",
            "sriov_config_daemon_sync_status{status=\"InProgress\"} 0",
            "sriov_config_daemon_ready 0",
        ] {
            assert!(has(&before, line), "missing {line:?} in\n{before}");
        }
        m.record_run(&RunSample {
            duration: Duration::from_millis(300),
            steps: 3,
            failed_pfs: 0,
            drift_repaired: false,
        });
        m.record_run(&RunSample {
            duration: Duration::from_millis(40),
            steps: 1,
            failed_pfs: 2,
            drift_repaired: true,
        });
        m.set_sync_status("Failed");
        assert!(m.readiness().is_ok());
        let text = m.encode();
        for line in [
            "# TYPE sriov_config_daemon_syncs counter",
            "sriov_config_daemon_syncs_total{result=\"succeeded\"} 1",
            "sriov_config_daemon_syncs_total{result=\"failed\"} 1",
            "sriov_config_daemon_pf_failures_total 2",
            "sriov_config_daemon_steps_applied_total 4",
            "sriov_config_daemon_drift_repairs_total 1",
            "sriov_config_daemon_drains_requested_total 0",
            "sriov_config_daemon_drains_skipped_total 0",
            "# TYPE sriov_config_daemon_apply_duration_seconds histogram",
            "# UNIT sriov_config_daemon_apply_duration_seconds seconds",
            "sriov_config_daemon_apply_duration_seconds_bucket{le=\"0.05\"} 1",
            "sriov_config_daemon_apply_duration_seconds_bucket{le=\"0.25\"} 1",
            "sriov_config_daemon_apply_duration_seconds_bucket{le=\"0.5\"} 2",
            "sriov_config_daemon_apply_duration_seconds_bucket{le=\"60.0\"} 2",
            "sriov_config_daemon_apply_duration_seconds_bucket{le=\"+Inf\"} 2",
            "sriov_config_daemon_apply_duration_seconds_count 2",
            "sriov_config_daemon_sync_status{status=\"Failed\"} 1",
            "sriov_config_daemon_sync_status{status=\"Succeeded\"} 0",
            "sriov_config_daemon_ready 1",
            "# EOF",
        ] {
            assert!(has(&text, line), "missing {line:?} in\n{text}");
        }
        let sum: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("sriov_config_daemon_apply_duration_seconds_sum "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((sum - 0.34).abs() < 1e-9, "{sum}");
        let last: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("sriov_config_daemon_last_sync_timestamp_seconds "))
            .unwrap()
            .parse()
            .unwrap();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert!(now.as_secs() - last < 60, "{last}");
        m.drain_requested();
        m.drain_skipped();
        m.set_sync_status("Succeeded");
        m.api_result(false);
        assert_eq!(
            m.readiness(),
            Err("the API server did not answer the last request")
        );
        assert_eq!(
            m.ready(),
            Err("the API server did not answer the last request".to_string())
        );
        let text = m.metrics();
        for line in [
            "sriov_config_daemon_api_errors_total 1",
            "sriov_config_daemon_drains_requested_total 1",
            "sriov_config_daemon_drains_skipped_total 1",
            "sriov_config_daemon_sync_status{status=\"Failed\"} 0",
            "sriov_config_daemon_sync_status{status=\"Succeeded\"} 1",
            "sriov_config_daemon_ready 0",
        ] {
            assert!(has(&text, line), "missing {line:?} in\n{text}");
        }
        m.api_result(true);
        assert_eq!(m.ready(), Ok(()));
        assert_eq!(m.live(), Ok(()));
    }
}
