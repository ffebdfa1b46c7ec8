//! The Kubernetes mode against an API-server verifier (tower-test mock)
//! and a FUSE-mounted simulated node (root + FUSE lane): the spec is really
//! applied, an injected kernel fault fails with the kernel's error and
//! recovers, the drain handshake holds a disruptive PF until the operator
//! drained the node, `disableDrain` skips it, and hand-made drift is
//! repaired from uevents.

mod k8s_mock;

use std::sync::Arc;
use std::time::Duration;

use k8s_mock::*;
use serde_json::{Value, json};
use sriov_config_daemon::k8s::drain::Decision;
use sriov_config_daemon::k8s::{Daemon, K8sConfig, Trigger};
use sriov_config_daemon::metrics::Metrics;
use sriov_sim::check;
use sriov_sim::lanes::{self, Lane};
use sriov_sim::node::NodeSpec;
use sriov_sim::{SimNode, SimOptions};

const TWO_PFS: &str = r#"
name: k8s
pfs:
  - {model: e810, address: "0000:3b:00.0", ifname: ens1f0, vfs: 4}
  - {model: e810, address: "0000:3b:00.1", ifname: ens1f1}
"#;

const ENOMEM: &str = r#"
name: k8s-enomem
pfs:
  - {model: e810, address: "0000:3b:00.0", ifname: ens1f0, faults: {numvfs_enomem: true}}
  - {model: e810, address: "0000:3b:00.1", ifname: ens1f1}
"#;

const HEALTHY: &str = r#"
name: k8s-healthy
pfs:
  - {model: e810, address: "0000:3b:00.0", ifname: ens1f0}
  - {model: e810, address: "0000:3b:00.1", ifname: ens1f1}
"#;

struct Env {
    sim: SimNode,
    state: tempfile::TempDir,
}

impl Env {
    fn start(yaml: &str) -> Env {
        let spec = NodeSpec::from_yaml(yaml, "test").unwrap();
        Env {
            sim: SimNode::start(spec, SimOptions::default()).expect("sim starts"),
            state: tempfile::tempdir().unwrap(),
        }
    }

    fn cfg(&self) -> K8sConfig {
        daemon_config(self.sim.root(), self.state.path())
    }

    fn numvfs(&self, pf: &str) -> u32 {
        check::numvfs(self.sim.root(), pf)
    }

    fn vf(&self, pf: &str, i: u32) -> String {
        check::vf_address(self.sim.root(), pf, i).unwrap()
    }

    fn vf_driver(&self, pf: &str, i: u32) -> Option<String> {
        check::driver(self.sim.root(), &self.vf(pf, i))
    }

    fn hold(&self, vf: &str) {
        hold_vf(self.sim.root(), vf)
    }
}

fn pf_spec(pci: &str, name: &str, n: u32, device_type: &str) -> Value {
    json!({"pciAddress": pci, "name": name, "numVfs": n,
           "vfGroups": [{"resourceName": format!("res_{name}"), "deviceType": device_type,
                         "vfRange": format!("0-{}", n - 1), "policyName": format!("p-{name}")}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applies_the_spec_then_a_kernel_fault_fails_with_its_errno_and_recovers() {
    if !lanes::require(
        "applies_the_spec_then_a_kernel_fault_fails_with_its_errno_and_recovers",
        &[Lane::Fuse],
    ) {
        return;
    }
    let mut env = Env::start(ENOMEM);
    let (client, mut api) = pair();
    let metrics = Arc::new(Metrics::new());
    let d = Daemon::new(client, env.cfg(), metrics.clone());

    // 0 -> 4 VFs on the healthy PF: InProgress, applied, Succeeded.
    let ns = node_state(
        2,
        json!({"interfaces": [pf_spec("0000:3b:00.1", "ens1f1", 4, "netdevice")]}),
        "Idle",
        "Idle",
    );
    let t = spawn_sync(d, ns.clone(), Trigger::Spec);
    let st = api.expect_status(&ns).await;
    assert_eq!(st["syncStatus"], "InProgress");
    assert_eq!(condition(&st, "Progressing")["status"], "True");
    assert!(iface(&st, "0000:3b:00.1").get("numVfs").is_none(), "{st}");
    let st = api.expect_status(&ns).await;
    assert_eq!(st["syncStatus"], "Succeeded");
    assert_eq!(iface(&st, "0000:3b:00.1")["numVfs"], 4);
    assert_eq!(
        iface(&st, "0000:3b:00.1")["Vfs"].as_array().unwrap().len(),
        4
    );
    let (t_, reason, note) = api.expect_event().await;
    assert_eq!((t_.as_str(), reason.as_str()), ("Normal", "SyncSucceeded"));
    assert!(note.contains("steps applied"), "{note}");
    let (d, o) = join(t).await;
    assert!(o.steps >= 1, "{o:?}");
    assert_eq!(env.numvfs("0000:3b:00.1"), 4);

    // The other PF cannot place its VFs (ENOMEM): Failed, naming the PF,
    // the step and the kernel's error; the first PF stays as it is.
    let mut ns = node_state(
        3,
        json!({"interfaces": [pf_spec("0000:3b:00.0", "ens1f0", 4, "netdevice"),
                              pf_spec("0000:3b:00.1", "ens1f1", 4, "netdevice")]}),
        "Idle",
        "Idle",
    );
    ns["status"] = st;
    let t = spawn_sync(d, ns.clone(), Trigger::Spec);
    assert_eq!(api.expect_status(&ns).await["syncStatus"], "InProgress");
    let st = api.expect_status(&ns).await;
    assert_eq!(st["syncStatus"], "Failed");
    let err = st["lastSyncError"].as_str().unwrap().to_string();
    assert!(
        err.starts_with("PF ens1f0 (0000:3b:00.0): set sriov_numvfs from 0 to 4: writing \"4\""),
        "{err}"
    );
    assert!(err.contains("ENOMEM"), "{err}");
    assert!(!err.contains("0000:3b:00.1"), "{err}");
    assert_eq!(condition(&st, "Degraded")["message"], err.as_str());
    let (t_, reason, note) = api.expect_event().await;
    assert_eq!(
        (t_.as_str(), reason.as_str(), note.as_str()),
        ("Warning", "SyncFailed", err.as_str())
    );
    let (d, o) = join(t).await;
    assert!(o.failed());
    assert_eq!(env.numvfs("0000:3b:00.1"), 4);

    // The platform can place the VFs now (same root, same journal): the
    // retry keeps the error visible while applying, then succeeds.
    let root = env.sim.root().to_path_buf();
    env.sim.stop();
    env.sim = SimNode::start(
        NodeSpec::from_yaml(HEALTHY, "healthy").unwrap(),
        SimOptions {
            root: Some(root),
            ..Default::default()
        },
    )
    .unwrap();
    ns["status"] = st;
    let t = spawn_sync(d, ns.clone(), Trigger::Retry);
    let st = api.expect_status(&ns).await;
    assert_eq!(st["syncStatus"], "InProgress");
    assert_eq!(st["lastSyncError"], err.as_str());
    let st = api.expect_status(&ns).await;
    assert_eq!(st["syncStatus"], "Succeeded");
    assert!(st.get("lastSyncError").is_none(), "{st}");
    assert_eq!(condition(&st, "Degraded")["status"], "False");
    let (_, reason, _) = api.expect_event().await;
    assert_eq!(reason, "SyncSucceeded");
    join(t).await;
    assert_eq!(env.numvfs("0000:3b:00.0"), 4);
    assert_eq!(env.numvfs("0000:3b:00.1"), 4);
    let text = metrics.encode();
    assert!(
        text.contains("sriov_config_daemon_syncs_total{result=\"failed\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("sriov_config_daemon_syncs_total{result=\"succeeded\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("sriov_config_daemon_pf_failures_total 1"),
        "{text}"
    );
}

/// ens1f0 has 4 VFs on iavf and a pod holds VF 1; the spec moves them to
/// vfio-pci (disruptive) and gives ens1f1 2 VFs (not disruptive).
fn disruptive_setup() -> (Env, String, Value) {
    let env = Env::start(TWO_PFS);
    let held = env.vf("0000:3b:00.0", 1);
    env.hold(&held);
    let spec = json!({"interfaces": [pf_spec("0000:3b:00.0", "ens1f0", 4, "vfio-pci"),
                                     pf_spec("0000:3b:00.1", "ens1f1", 2, "netdevice")]});
    (env, held, spec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_handshake_holds_the_disruptive_pf_until_drained_then_returns_to_idle() {
    if !lanes::require(
        "drain_handshake_holds_the_disruptive_pf_until_drained_then_returns_to_idle",
        &[Lane::Fuse],
    ) {
        return;
    }
    let (env, held, spec) = disruptive_setup();
    let (client, mut api) = pair();
    let d = Daemon::new(client, env.cfg(), Arc::new(Metrics::new()));
    let ns = node_state(2, spec.clone(), "Idle", "Idle");
    let t = spawn_sync(d, ns.clone(), Trigger::Spec);
    // Ask for the drain (node state, then Node), say so.
    api.expect_operator_config(Some(false)).await;
    api.expect_annotations(&ns, "Drain_Required").await;
    let (_, reason, note) = api.expect_event().await;
    assert_eq!(reason, "DrainRequested");
    assert!(note.contains(&held), "{note}");
    // The non-disruptive PF is applied at once.
    assert_eq!(api.expect_status(&ns).await["syncStatus"], "InProgress");
    let st = api.expect_status(&ns).await;
    assert_eq!(st["syncStatus"], "InProgress");
    assert_eq!(condition(&st, "Draining")["status"], "True");
    assert_eq!(iface(&st, "0000:3b:00.1")["numVfs"], 2);
    let (d, o) = join(t).await;
    assert_eq!(o.decision, Decision::RequestDrain);
    assert_eq!(env.numvfs("0000:3b:00.1"), 2);
    assert_eq!(env.vf_driver("0000:3b:00.0", 1).as_deref(), Some("iavf"));

    // The operator finished draining: apply, back to Idle, Succeeded.
    let mut drained = node_state(2, spec, "Drain_Required", "DrainComplete");
    drained["status"] = st;
    let t = spawn_sync(d, drained.clone(), Trigger::Spec);
    let st = api.expect_status(&drained).await;
    assert_eq!(st["syncStatus"], "InProgress");
    assert_eq!(condition(&st, "Draining")["status"], "False");
    api.expect_annotations(&drained, "Idle").await;
    let st = api.expect_status(&drained).await;
    assert_eq!(st["syncStatus"], "Succeeded");
    assert_eq!(iface(&st, "0000:3b:00.0")["Vfs"][1]["driver"], "vfio-pci");
    let (_, reason, _) = api.expect_event().await;
    assert_eq!(reason, "SyncSucceeded");
    let (_, o) = join(t).await;
    assert_eq!(o.decision, Decision::ApplyDrained);
    for i in 0..4 {
        assert_eq!(
            env.vf_driver("0000:3b:00.0", i).as_deref(),
            Some("vfio-pci")
        );
    }
    api.expect_silence(Duration::from_millis(100)).await;
    api.check_rbac();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_drain_applies_a_disruptive_plan_without_the_handshake() {
    if !lanes::require(
        "disable_drain_applies_a_disruptive_plan_without_the_handshake",
        &[Lane::Fuse],
    ) {
        return;
    }
    let (env, _held, spec) = disruptive_setup();
    let (client, mut api) = pair();
    let metrics = Arc::new(Metrics::new());
    let d = Daemon::new(client, env.cfg(), metrics.clone());
    let ns = node_state(2, spec, "Idle", "Idle");
    let t = spawn_sync(d, ns.clone(), Trigger::Spec);
    api.expect_operator_config(Some(true)).await;
    let (t_, reason, note) = api.expect_event().await;
    assert_eq!((t_.as_str(), reason.as_str()), ("Warning", "DrainSkipped"));
    assert!(note.contains("disableDrain"), "{note}");
    // No annotation patch: straight to applying.
    assert_eq!(api.expect_status(&ns).await["syncStatus"], "InProgress");
    let st = api.expect_status(&ns).await;
    assert_eq!(st["syncStatus"], "Succeeded");
    let (_, reason, _) = api.expect_event().await;
    assert_eq!(reason, "SyncSucceeded");
    let (_, o) = join(t).await;
    assert_eq!(o.decision, Decision::ApplyWithoutDrain);
    assert_eq!(
        env.vf_driver("0000:3b:00.0", 1).as_deref(),
        Some("vfio-pci")
    );
    assert_eq!(env.numvfs("0000:3b:00.1"), 2);
    assert!(
        metrics
            .encode()
            .contains("sriov_config_daemon_drains_skipped_total 1")
    );
    api.expect_silence(Duration::from_millis(100)).await;
    api.check_rbac();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_repairs_hand_made_drift_from_uevents() {
    if !lanes::require(
        "the_daemon_repairs_hand_made_drift_from_uevents",
        &[Lane::Fuse],
    ) {
        return;
    }
    let env = Env::start(TWO_PFS);
    let (client, mut api) = pair();
    let metrics = Arc::new(Metrics::new());
    let daemon = Daemon::new(client, env.cfg(), metrics.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(daemon.run(async {
        let _ = stop_rx.await;
    }));
    let ns = node_state(
        2,
        json!({"interfaces": [pf_spec("0000:3b:00.1", "ens1f1", 2, "netdevice")]}),
        "Idle",
        "Idle",
    );
    api.expect("GET", &format!("{STATES}/{NODE}"))
        .await
        .ok(ns.clone());
    api.expect("GET", STATES)
        .await
        .ok(node_state_list(102, std::slice::from_ref(&ns)));
    assert_eq!(api.expect_status(&ns).await["syncStatus"], "InProgress");
    assert_eq!(api.expect_status(&ns).await["syncStatus"], "Succeeded");
    assert_eq!(api.expect_event().await.1, "SyncSucceeded");
    assert_eq!(env.numvfs("0000:3b:00.1"), 2);
    // The watch waits for changes (held open: no answer).
    let watch = api.expect("GET", STATES).await;
    assert_eq!(watch.param("watch").as_deref(), Some("true"));
    // Someone removes the VFs by hand: the kernel's uevents bring the
    // daemon back, it repairs and says so.
    std::fs::write(
        env.sim
            .root()
            .join("sys/bus/pci/devices/0000:3b:00.1/sriov_numvfs"),
        "0",
    )
    .unwrap();
    let st = api.expect_status(&ns).await;
    assert_eq!(st["syncStatus"], "InProgress");
    let st = api.expect_status(&ns).await;
    assert_eq!(st["syncStatus"], "Succeeded");
    let (t_, reason, note) = api.expect_event().await;
    assert_eq!((t_.as_str(), reason.as_str()), ("Warning", "DriftRepaired"));
    assert!(note.contains("set sriov_numvfs from 0 to 2"), "{note}");
    assert_eq!(env.numvfs("0000:3b:00.1"), 2);
    assert!(
        metrics
            .encode()
            .contains("sriov_config_daemon_drift_repairs_total 1")
    );
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the daemon stops")
        .unwrap()
        .unwrap();
    drop(watch);
}
