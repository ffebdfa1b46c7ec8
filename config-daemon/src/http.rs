//! `/healthz`, `/readyz` and `/metrics` over plain HTTP/1.1 on
//! `--metrics-addr` (off by default). One request per connection; the
//! request head is read with a 5 s limit, so a stuck client cannot hold a
//! task forever.
//!
//! - `/healthz`: 200 while the process serves requests.
//! - `/readyz`: 200 once the first sync is done and the API server (in
//!   Kubernetes mode) answered the last request; else 503 with the reason.
//! - `/metrics`: [`Metrics::render`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::metrics::Metrics;

/// How long a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The answer to one request: status line, content type, body.
pub fn respond(
    metrics: &Metrics,
    method: &str,
    path: &str,
) -> (&'static str, &'static str, String) {
    let path = path.split('?').next().unwrap_or(path);
    match (method, path) {
        ("GET", "/healthz") => ("200 OK", "text/plain", "ok\n".into()),
        ("GET", "/readyz") => match metrics.readiness() {
            Ok(()) => ("200 OK", "text/plain", "ready\n".into()),
            Err(why) => ("503 Service Unavailable", "text/plain", format!("{why}\n")),
        },
        ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
        ("GET", _) => (
            "404 Not Found",
            "text/plain",
            "not found: try /healthz, /readyz or /metrics\n".into(),
        ),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".into()),
    }
}

async fn handle(mut conn: tokio::net::TcpStream, metrics: Arc<Metrics>) {
    let mut buf = vec![0u8; 4096];
    let mut n = 0;
    while n < buf.len() {
        match tokio::time::timeout(READ_TIMEOUT, conn.read(&mut buf[n..])).await {
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
    let (code, ctype, body) = respond(&metrics, method, path);
    let resp = format!(
        "HTTP/1.1 {code}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(resp.as_bytes()).await;
    let _ = conn.shutdown().await;
}

/// Serves the endpoints on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        match listener.accept().await {
            Ok((conn, _)) => {
                tokio::spawn(handle(conn, metrics.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a metrics connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Binds `addr` and serves the endpoints from a thread of its own (for the
/// synchronous standalone `--watch` loop). Returns the bound address.
pub fn spawn_server_thread(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
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
                match TcpListener::from_std(std_listener) {
                    Ok(l) => serve(l, metrics).await,
                    Err(e) => tracing::error!(error = %e, "cannot serve metrics"),
                }
            })
        })?;
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let m = Metrics::new();
        assert_eq!(respond(&m, "GET", "/healthz").0, "200 OK");
        let (code, _, body) = respond(&m, "GET", "/readyz");
        assert_eq!(code, "503 Service Unavailable");
        assert!(body.contains("first sync"), "{body}");
        m.set_sync_status("Succeeded");
        assert_eq!(respond(&m, "GET", "/readyz?verbose").0, "200 OK");
        assert_eq!(respond(&m, "GET", "/nope").0, "404 Not Found");
        assert_eq!(respond(&m, "POST", "/metrics").0, "405 Method Not Allowed");
    }
}
