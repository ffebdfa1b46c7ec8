//! `/healthz`, `/readyz` and `/metrics` for real, on 127.0.0.1 port 0 (the
//! Kubernetes mode's server), and through the binary's standalone
//! `apply --watch --metrics-addr` on a tree-backed node.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sriov_config_daemon::metrics::{Metrics, RunSample};

/// One plain HTTP/1.1 GET: (status code, body).
fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    Ok((code, body.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_answer_on_a_real_socket() {
    let metrics = Arc::new(Metrics::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(sriov_health::serve(listener, metrics.clone()));
    let m = metrics.clone();
    let (health, ready_before, ready_after, metrics_text, missing) =
        tokio::task::spawn_blocking(move || {
            let health = get(addr, "/healthz").unwrap();
            let ready_before = get(addr, "/readyz").unwrap();
            m.record_run(&RunSample {
                duration: Duration::from_millis(120),
                steps: 5,
                failed_pfs: 0,
                drift_repaired: true,
            });
            m.set_sync_status("Succeeded");
            let ready_after = get(addr, "/readyz").unwrap();
            let metrics_text = get(addr, "/metrics").unwrap();
            let missing = get(addr, "/nothing").unwrap();
            (health, ready_before, ready_after, metrics_text, missing)
        })
        .await
        .unwrap();
    assert_eq!(health, (200, "ok\n".into()));
    assert_eq!(ready_before.0, 503);
    assert!(ready_before.1.contains("first sync"), "{}", ready_before.1);
    assert_eq!(ready_after, (200, "ready\n".into()));
    assert_eq!(metrics_text.0, 200);
    assert!(metrics_text.1.ends_with("# EOF\n"), "{}", metrics_text.1);
    for line in [
        "sriov_config_daemon_steps_applied_total 5",
        "sriov_config_daemon_drift_repairs_total 1",
        "sriov_config_daemon_syncs_total{result=\"succeeded\"} 1",
        "sriov_config_daemon_apply_duration_seconds_bucket{le=\"0.25\"} 1",
        "sriov_config_daemon_sync_status{status=\"Succeeded\"} 1",
    ] {
        assert!(metrics_text.1.lines().any(|l| l == line), "missing {line}");
    }
    assert_eq!(missing.0, 404);
    // The API server stops answering: not ready any more, still healthy.
    metrics.api_result(false);
    let (ready, health) = tokio::task::spawn_blocking(move || {
        (
            get(addr, "/readyz").unwrap(),
            get(addr, "/healthz").unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!(ready.0, 503);
    assert!(ready.1.contains("API server"), "{}", ready.1);
    assert_eq!(health.0, 200);
    server.abort();
}

/// A free port on 127.0.0.1 (bound and released).
fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[test]
fn standalone_watch_serves_metrics() {
    let tree = tempfile::tempdir().unwrap();
    let spec = sriov_sim::node::NodeSpec::from_yaml(
        "pfs:\n  - {model: e810, address: \"0000:3b:00.0\", ifname: ens1f0, vfs: 2}\n",
        "t",
    )
    .unwrap();
    sriov_sim::kernel::write_static_tree(tree.path(), &spec).unwrap();
    // The node already has what the policy asks: the run writes nothing.
    let policies = tree.path().join("policies.yaml");
    std::fs::write(
        &policies,
        r#"apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {name: p}
spec:
  resourceName: net
  nodeSelector: {}
  numVfs: 2
  nicSelector: {pfNames: [ens1f0]}
"#,
    )
    .unwrap();
    let addr = free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_sriov-config-daemon"))
        .arg("apply")
        .arg("--watch")
        .arg("--host-root")
        .arg(tree.path())
        .arg("--state-dir")
        .arg(tree.path().join("state"))
        .arg("-p")
        .arg(&policies)
        .arg("--metrics-addr")
        .arg(addr.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Kill(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    let ready = loop {
        match get(addr, "/readyz") {
            Ok((200, body)) => break body,
            _ if Instant::now() > deadline => panic!("/readyz never answered 200 on {addr}"),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    assert_eq!(ready, "ready\n");
    let (code, text) = get(addr, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(
        text.lines()
            .any(|l| l == "sriov_config_daemon_sync_status{status=\"Succeeded\"} 1"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l == "sriov_config_daemon_syncs_total{result=\"succeeded\"} 1"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l == "sriov_config_daemon_steps_applied_total 0"),
        "{text}"
    );
}
