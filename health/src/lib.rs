//! The one small HTTP server every long-running component serves its probes
//! and metrics on (the device plugin, the config daemon, the operator), on
//! axum, with the metrics in a [`prometheus_client`] registry:
//!
//! - `GET /healthz`: 200 `ok` while [`Probe::live`] is `Ok`, else 503 with
//!   the reason;
//! - `GET /readyz`: the same for [`Probe::ready`];
//! - `GET /metrics`: [`Probe::metrics`], OpenMetrics text
//!   ([`OPENMETRICS`]).
//!
//! Anything else is 404. Accept errors (EMFILE and the like) are axum's to
//! handle: it logs them and backs off instead of spinning.
//!
//! [`shutdown_signal`] is when each of them stops.

use std::sync::Arc;

use axum::http::{StatusCode, header};
use axum::routing::get;
use prometheus_client::registry::Registry;

/// Resolves on SIGTERM (the kubelet stopping the pod) or SIGINT, and logs
/// which. Every long-running component stops on it.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
            }
        }
        Err(e) => {
            tracing::warn!("no SIGTERM handler ({e}); stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("SIGINT: stopping");
        }
    }
}

/// The `Content-Type` of `/metrics`.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a component answers on its probes.
pub trait Probe: Send + Sync + 'static {
    /// `/healthz`: whether the process works (a restart would not help
    /// while this is `Ok`). Default: always.
    fn live(&self) -> Result<(), String> {
        Ok(())
    }
    /// `/readyz`: whether it does its job now (`Err` says why not).
    fn ready(&self) -> Result<(), String>;
    /// `/metrics`: the exposition ([`encode`] of a registry).
    fn metrics(&self) -> String;
}

/// The OpenMetrics text of `registry`.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).expect("writing to a String");
    out
}

fn answer(r: Result<(), String>, ok: &'static str) -> (StatusCode, String) {
    match r {
        Ok(()) => (StatusCode::OK, format!("{ok}\n")),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

/// The router: `/healthz`, `/readyz`, `/metrics`.
pub fn router(probe: Arc<dyn Probe>) -> axum::Router {
    let (live, ready, metrics) = (probe.clone(), probe.clone(), probe);
    axum::Router::new()
        .route(
            "/healthz",
            get(move || {
                let p = live.clone();
                async move { answer(p.live(), "ok") }
            }),
        )
        .route(
            "/readyz",
            get(move || {
                let p = ready.clone();
                async move { answer(p.ready(), "ready") }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let p = metrics.clone();
                async move { ([(header::CONTENT_TYPE, OPENMETRICS)], p.metrics()) }
            }),
        )
}

/// Serves [`router`] on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, probe: Arc<dyn Probe>) {
    if let Err(e) = axum::serve(listener, router(probe)).await {
        tracing::error!(error = %e, "the health and metrics server stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct P(AtomicBool);
    impl Probe for P {
        fn ready(&self) -> Result<(), String> {
            if self.0.load(Ordering::Relaxed) {
                Ok(())
            } else {
                Err("starting".into())
            }
        }
        fn metrics(&self) -> String {
            let mut r = Registry::default();
            let c = prometheus_client::metrics::counter::Counter::<u64>::default();
            c.inc();
            r.register("things", "Things done", c);
            encode(&r)
        }
    }

    async fn get(port: u16, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn probes_and_metrics() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let p = Arc::new(P(AtomicBool::new(false)));
        tokio::spawn(serve(l, p.clone()));
        assert!(get(port, "/healthz").await.starts_with("HTTP/1.1 200"));
        let r = get(port, "/readyz").await;
        assert!(
            r.starts_with("HTTP/1.1 503") && r.ends_with("starting\n"),
            "{r}"
        );
        p.0.store(true, Ordering::Relaxed);
        assert!(get(port, "/readyz").await.starts_with("HTTP/1.1 200"));
        let m = get(port, "/metrics").await;
        assert!(m.contains(OPENMETRICS), "{m}");
        assert!(
            m.contains("\nthings_total 1\n") && m.ends_with("# EOF\n"),
            "{m}"
        );
        assert!(get(port, "/nope").await.starts_with("HTTP/1.1 404"));
    }
}
