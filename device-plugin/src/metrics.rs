//! `/healthz` and `/metrics` (Prometheus text format 0.0.4) over plain
//! HTTP/1.1 on `--metrics-addr`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::manager::Status;

/// The metrics text.
pub fn render(status: &Status) -> String {
    let mut s = String::new();
    let c = &status.counters;
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
    };
    counter(
        "sriov_dp_allocations_total",
        "Allocate calls that succeeded.",
        c.allocations.load(Ordering::Relaxed),
    );
    counter(
        "sriov_dp_allocated_devices_total",
        "Devices handed out by Allocate.",
        c.allocated_devices.load(Ordering::Relaxed),
    );
    counter(
        "sriov_dp_allocation_errors_total",
        "Allocate calls that failed.",
        c.allocation_errors.load(Ordering::Relaxed),
    );
    counter(
        "sriov_dp_list_and_watch_updates_total",
        "Device lists sent on ListAndWatch streams.",
        c.list_and_watch_updates.load(Ordering::Relaxed),
    );
    counter(
        "sriov_dp_rescans_total",
        "Node scans.",
        status.rescans.load(Ordering::Relaxed),
    );
    counter(
        "sriov_dp_config_reloads_total",
        "Config reloads applied.",
        status.config_reloads.load(Ordering::Relaxed),
    );
    counter(
        "sriov_dp_config_errors_total",
        "Config reloads rejected.",
        status.config_errors.load(Ordering::Relaxed),
    );
    counter(
        "sriov_dp_registrations_total",
        "Successful registrations with the kubelet.",
        status.registrations.load(Ordering::Relaxed),
    );
    let _ = writeln!(
        s,
        "# HELP sriov_dp_last_scan_seconds Duration of the last node scan.\n# TYPE sriov_dp_last_scan_seconds gauge\nsriov_dp_last_scan_seconds {}",
        *status.last_scan_seconds.lock().expect("lock")
    );
    let _ = writeln!(
        s,
        "# HELP sriov_dp_config_stale 1 while the config file was rejected and the pools come from the last good config.\n# TYPE sriov_dp_config_stale gauge\nsriov_dp_config_stale {}",
        u8::from(status.config_stale.load(Ordering::Relaxed))
    );
    let pools = status.pools.lock().expect("lock").clone();
    let _ = writeln!(
        s,
        "# HELP sriov_dp_pool_devices Devices in a pool by health.\n# TYPE sriov_dp_pool_devices gauge"
    );
    for p in &pools {
        let _ = writeln!(
            s,
            "sriov_dp_pool_devices{{resource=\"{}\",health=\"healthy\"}} {}",
            p.resource, p.healthy
        );
        let _ = writeln!(
            s,
            "sriov_dp_pool_devices{{resource=\"{}\",health=\"unhealthy\"}} {}",
            p.resource,
            p.devices - p.healthy
        );
    }
    let _ = writeln!(
        s,
        "# HELP sriov_dp_pool_registered Whether the pool is registered with the kubelet.\n# TYPE sriov_dp_pool_registered gauge"
    );
    for p in &pools {
        let _ = writeln!(
            s,
            "sriov_dp_pool_registered{{resource=\"{}\"}} {}",
            p.resource,
            u8::from(p.registered)
        );
    }
    s
}

/// Serves `/healthz` and `/metrics` on `listener` forever.
pub async fn serve(listener: tokio::net::TcpListener, status: Arc<Status>) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            continue;
        };
        let status = status.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut n = 0;
            // read the request head (we need the first line only)
            while n < buf.len() {
                match tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    conn.read(&mut buf[n..]),
                )
                .await
                {
                    Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                    Ok(Ok(k)) => {
                        n += k;
                        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                }
            }
            let head = String::from_utf8_lossy(&buf[..n]);
            let mut parts = head.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let (code, ctype, body) = match (method, path) {
                ("GET", "/healthz") if status.ready.load(Ordering::Relaxed) => {
                    ("200 OK", "text/plain", "ok\n".to_string())
                }
                ("GET", "/healthz") => (
                    "503 Service Unavailable",
                    "text/plain",
                    "starting\n".to_string(),
                ),
                ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4", render(&status)),
                _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
            };
            let resp = format!(
                "HTTP/1.1 {code}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}
