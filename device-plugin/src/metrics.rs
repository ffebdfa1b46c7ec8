//! `/healthz`, `/readyz` and `/metrics` on `--metrics-addr`, through the
//! project's one health and metrics server ([`sriov_health`]): a
//! `prometheus-client` collector reads the plugin's [`Status`] at each
//! scrape. `/healthz` and `/readyz` answer 503 `starting` until the first
//! scan and registrations are done.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::manager::Status;

/// Reads [`Status`] at scrape time.
#[derive(Debug)]
struct StatusCollector(Arc<Status>);

impl Collector for StatusCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let status = &self.0;
        let c = &status.counters;
        let counters: [(&str, &str, u64); 8] = [
            (
                "sriov_dp_allocations",
                "Allocate calls that succeeded.",
                c.allocations.load(Ordering::Relaxed),
            ),
            (
                "sriov_dp_allocated_devices",
                "Devices handed out by Allocate.",
                c.allocated_devices.load(Ordering::Relaxed),
            ),
            (
                "sriov_dp_allocation_errors",
                "Allocate calls that failed.",
                c.allocation_errors.load(Ordering::Relaxed),
            ),
            (
                "sriov_dp_list_and_watch_updates",
                "Device lists sent on ListAndWatch streams.",
                c.list_and_watch_updates.load(Ordering::Relaxed),
            ),
            (
                "sriov_dp_rescans",
                "Node scans.",
                status.rescans.load(Ordering::Relaxed),
            ),
            (
                "sriov_dp_config_reloads",
                "Config reloads applied.",
                status.config_reloads.load(Ordering::Relaxed),
            ),
            (
                "sriov_dp_config_errors",
                "Config reloads rejected.",
                status.config_errors.load(Ordering::Relaxed),
            ),
            (
                "sriov_dp_registrations",
                "Successful registrations with the kubelet.",
                status.registrations.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, v) in counters {
            let m = ConstCounter::new(v);
            m.encode(enc.encode_descriptor(name, help, None, m.metric_type())?)?;
        }
        let scan = ConstGauge::new(*status.last_scan_seconds.lock().expect("lock"));
        scan.encode(enc.encode_descriptor(
            "sriov_dp_last_scan_seconds",
            "Duration of the last node scan.",
            None,
            scan.metric_type(),
        )?)?;
        let stale = ConstGauge::new(i64::from(status.config_stale.load(Ordering::Relaxed)));
        stale.encode(enc.encode_descriptor(
            "sriov_dp_config_stale",
            "1 while the config file was rejected and the pools come from the last good config.",
            None,
            stale.metric_type(),
        )?)?;
        let pools = status.pools.lock().expect("lock").clone();
        let kind = ConstGauge::new(0i64).metric_type();
        let mut family = enc.encode_descriptor(
            "sriov_dp_pool_devices",
            "Devices in a pool by health.",
            None,
            kind,
        )?;
        for p in &pools {
            for (health, n) in [("healthy", p.healthy), ("unhealthy", p.devices - p.healthy)] {
                let labels = [("resource", p.resource.as_str()), ("health", health)];
                ConstGauge::new(n as i64).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = enc.encode_descriptor(
            "sriov_dp_pool_registered",
            "Whether the pool is registered with the kubelet.",
            None,
            kind,
        )?;
        for p in &pools {
            let labels = [("resource", p.resource.as_str())];
            ConstGauge::new(i64::from(p.registered)).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The plugin's probes and metrics.
struct PluginProbe {
    status: Arc<Status>,
    registry: Registry,
}

impl sriov_health::Probe for PluginProbe {
    fn live(&self) -> Result<(), String> {
        self.ready()
    }

    fn ready(&self) -> Result<(), String> {
        if self.status.ready.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err("starting".into())
        }
    }

    fn metrics(&self) -> String {
        sriov_health::encode(&self.registry)
    }
}

fn probe(status: Arc<Status>) -> PluginProbe {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(StatusCollector(status.clone())));
    PluginProbe { status, registry }
}

/// The metrics text (OpenMetrics), as `/metrics` serves it.
pub fn render(status: &Arc<Status>) -> String {
    sriov_health::Probe::metrics(&probe(status.clone()))
}

/// Serves `/healthz`, `/readyz` and `/metrics` on `listener` forever.
pub async fn serve(listener: tokio::net::TcpListener, status: Arc<Status>) {
    sriov_health::serve(listener, Arc::new(probe(status))).await
}
