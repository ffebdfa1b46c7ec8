//! What the daemon counts, and its readiness, for `/metrics` (Prometheus
//! text format 0.0.4) and `/readyz`. Shared by the Kubernetes mode and the
//! standalone `--watch` mode; all updates are lock-free counters except
//! the duration histogram and the sync status.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Upper bounds (seconds) of the apply duration histogram buckets.
pub const DURATION_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The sync statuses reported as a one-hot gauge.
const SYNC_STATUSES: [&str; 3] = ["InProgress", "Succeeded", "Failed"];

#[derive(Debug, Default)]
struct Histogram {
    /// Cumulative counts per bucket of [`DURATION_BUCKETS`].
    buckets: [u64; DURATION_BUCKETS.len()],
    count: u64,
    sum: f64,
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
#[derive(Debug, Default)]
pub struct Metrics {
    runs_succeeded: AtomicU64,
    runs_failed: AtomicU64,
    pf_failures: AtomicU64,
    steps_applied: AtomicU64,
    drift_repairs: AtomicU64,
    drains_requested: AtomicU64,
    drains_skipped: AtomicU64,
    api_errors: AtomicU64,
    last_run_unix: AtomicU64,
    durations: Mutex<Histogram>,
    sync_status: Mutex<String>,
    first_sync_done: AtomicBool,
    /// The API server answered the last call (always true in standalone mode).
    api_ok: AtomicBool,
}

impl Metrics {
    /// Fresh counters; not ready until the first sync is recorded.
    pub fn new() -> Self {
        Self {
            api_ok: AtomicBool::new(true),
            ..Default::default()
        }
    }

    /// Records one apply run.
    pub fn record_run(&self, s: &RunSample) {
        if s.failed_pfs > 0 {
            self.runs_failed.fetch_add(1, Ordering::Relaxed);
            self.pf_failures.fetch_add(s.failed_pfs, Ordering::Relaxed);
        } else {
            self.runs_succeeded.fetch_add(1, Ordering::Relaxed);
        }
        self.steps_applied.fetch_add(s.steps, Ordering::Relaxed);
        if s.drift_repaired {
            self.drift_repairs.fetch_add(1, Ordering::Relaxed);
        }
        let secs = s.duration.as_secs_f64();
        {
            let mut h = self.durations.lock().expect("metrics lock");
            for (i, le) in DURATION_BUCKETS.iter().enumerate() {
                if secs <= *le {
                    h.buckets[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.last_run_unix.store(now, Ordering::Relaxed);
    }

    /// Sets the reported `syncStatus` and marks the first sync as done.
    pub fn set_sync_status(&self, status: &str) {
        *self.sync_status.lock().expect("metrics lock") = status.to_string();
        self.first_sync_done.store(true, Ordering::Relaxed);
    }

    /// The last reported `syncStatus` (empty before the first sync).
    pub fn sync_status(&self) -> String {
        self.sync_status.lock().expect("metrics lock").clone()
    }

    /// A drain was requested from the operator.
    pub fn drain_requested(&self) {
        self.drains_requested.fetch_add(1, Ordering::Relaxed);
    }

    /// A disruptive change went ahead without a drain (`disableDrain`).
    pub fn drain_skipped(&self) {
        self.drains_skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// Records whether an API call succeeded.
    pub fn api_result(&self, ok: bool) {
        if !ok {
            self.api_errors.fetch_add(1, Ordering::Relaxed);
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

    /// Steps applied so far.
    pub fn steps_applied(&self) -> u64 {
        self.steps_applied.load(Ordering::Relaxed)
    }

    /// Drift repairs so far.
    pub fn drift_repairs(&self) -> u64 {
        self.drift_repairs.load(Ordering::Relaxed)
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut counter = |name: &str, help: &str, labels: &str, v: u64| {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name}{labels} {v}"
            );
        };
        counter(
            "sriov_config_daemon_pf_failures_total",
            "PF applies that failed (each names the PF, step and kernel error in lastSyncError).",
            "",
            self.pf_failures.load(Ordering::Relaxed),
        );
        counter(
            "sriov_config_daemon_steps_applied_total",
            "Plan steps applied (sriov_numvfs, driver binds, MTUs).",
            "",
            self.steps_applied.load(Ordering::Relaxed),
        );
        counter(
            "sriov_config_daemon_drift_repairs_total",
            "Runs that repaired drift (the node changed while the spec did not).",
            "",
            self.drift_repairs.load(Ordering::Relaxed),
        );
        counter(
            "sriov_config_daemon_drains_requested_total",
            "Drains requested through the desired-state annotation.",
            "",
            self.drains_requested.load(Ordering::Relaxed),
        );
        counter(
            "sriov_config_daemon_drains_skipped_total",
            "Disruptive changes applied without a drain (disableDrain).",
            "",
            self.drains_skipped.load(Ordering::Relaxed),
        );
        counter(
            "sriov_config_daemon_api_errors_total",
            "Kubernetes API requests that failed.",
            "",
            self.api_errors.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            s,
            "# HELP sriov_config_daemon_syncs_total Apply runs by result.\n# TYPE sriov_config_daemon_syncs_total counter"
        );
        let _ = writeln!(
            s,
            "sriov_config_daemon_syncs_total{{result=\"succeeded\"}} {}",
            self.runs_succeeded.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "sriov_config_daemon_syncs_total{{result=\"failed\"}} {}",
            self.runs_failed.load(Ordering::Relaxed)
        );
        {
            let h = self.durations.lock().expect("metrics lock");
            let name = "sriov_config_daemon_apply_duration_seconds";
            let _ = writeln!(
                s,
                "# HELP {name} Duration of apply runs (scan, plan, apply, rescan).\n# TYPE {name} histogram"
            );
            for (i, le) in DURATION_BUCKETS.iter().enumerate() {
                let _ = writeln!(s, "{name}_bucket{{le=\"{le}\"}} {}", h.buckets[i]);
            }
            let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(s, "{name}_sum {}", h.sum);
            let _ = writeln!(s, "{name}_count {}", h.count);
        }
        let _ = writeln!(
            s,
            "# HELP sriov_config_daemon_last_sync_timestamp_seconds Unix time of the last apply run.\n# TYPE sriov_config_daemon_last_sync_timestamp_seconds gauge\nsriov_config_daemon_last_sync_timestamp_seconds {}",
            self.last_run_unix.load(Ordering::Relaxed)
        );
        let status = self.sync_status();
        let _ = writeln!(
            s,
            "# HELP sriov_config_daemon_sync_status The node's syncStatus (1 for the current one).\n# TYPE sriov_config_daemon_sync_status gauge"
        );
        for st in SYNC_STATUSES {
            let _ = writeln!(
                s,
                "sriov_config_daemon_sync_status{{status=\"{st}\"}} {}",
                u8::from(status == st)
            );
        }
        let _ = writeln!(
            s,
            "# HELP sriov_config_daemon_ready Whether /readyz answers 200.\n# TYPE sriov_config_daemon_ready gauge\nsriov_config_daemon_ready {}",
            u8::from(self.readiness().is_ok())
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_runs_buckets_and_status() {
        let m = Metrics::new();
        assert!(m.readiness().is_err());
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
        let text = m.render();
        for line in [
            "sriov_config_daemon_syncs_total{result=\"succeeded\"} 1",
            "sriov_config_daemon_syncs_total{result=\"failed\"} 1",
            "sriov_config_daemon_pf_failures_total 2",
            "sriov_config_daemon_steps_applied_total 4",
            "sriov_config_daemon_drift_repairs_total 1",
            "sriov_config_daemon_apply_duration_seconds_bucket{le=\"0.05\"} 1",
            "sriov_config_daemon_apply_duration_seconds_bucket{le=\"0.25\"} 1",
            "sriov_config_daemon_apply_duration_seconds_bucket{le=\"0.5\"} 2",
            "sriov_config_daemon_apply_duration_seconds_bucket{le=\"+Inf\"} 2",
            "sriov_config_daemon_apply_duration_seconds_count 2",
            "sriov_config_daemon_sync_status{status=\"Failed\"} 1",
            "sriov_config_daemon_sync_status{status=\"Succeeded\"} 0",
            "sriov_config_daemon_ready 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        m.api_result(false);
        assert_eq!(
            m.readiness(),
            Err("the API server did not answer the last request")
        );
        assert!(
            m.render()
                .contains("sriov_config_daemon_api_errors_total 1")
        );
    }
}
