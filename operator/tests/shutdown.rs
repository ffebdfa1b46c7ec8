//! The operator stops at once on SIGTERM (what the kubelet sends when the
//! pod is deleted), with status 0, instead of holding the pod for the
//! kubelet's whole grace period. (With leader election, reaching no API
//! server at start is an error before any wait: the pod restarts.)

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A kubeconfig naming an API server that does not answer (port 1 on
/// loopback): the controllers and the lease keep retrying.
fn kubeconfig(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    let mut f = std::fs::File::create(&path).unwrap();
    write!(
        f,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:1\n\
         users:\n- name: u\n  user: {{}}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n\
         current-context: x\n"
    )
    .unwrap();
    path
}

fn stops_on_sigterm(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sriov-network-operator"))
        .arg("run")
        .args(["--metrics-addr", "127.0.0.1:0"])
        .args(extra)
        .env("KUBECONFIG", kubeconfig(dir.path()))
        .env("NAMESPACE", "sriov-network-operator")
        .env("SRIOV_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let it get past start-up into its retry loops.
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited before the signal"
    );
    let sent = Instant::now();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{status:?}: {err}");
    assert!(err.contains("stopping (signal)"), "{err}");
}

#[test]
fn stops_on_sigterm_while_running_the_controllers() {
    stops_on_sigterm(&["--no-leader-elect"]);
}
