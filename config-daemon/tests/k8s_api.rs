//! The Kubernetes mode against an API-server verifier (tower-test mock)
//! and a tree-backed simulated node (no root needed): the exact requests
//! for creating the node state, reporting the node, failing with a reason
//! and recovering, and asking for a drain.

mod k8s_mock;

use std::sync::Arc;
use std::time::Duration;

use k8s_mock::*;
use serde_json::{Value, json};
use sriov_config_daemon::k8s::drain::Decision;
use sriov_config_daemon::k8s::{Daemon, K8sConfig, Trigger};
use sriov_config_daemon::metrics::Metrics;
use sriov_sim::node::NodeSpec;

const NODE_YAML: &str = r#"
name: k8s
pfs:
  - {model: e810, address: "0000:3b:00.0", ifname: ens1f0, vfs: 4}
  - {model: e810, address: "0000:3b:00.1", ifname: ens1f1}
"#;

struct Env {
    tree: tempfile::TempDir,
    state: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let tree = tempfile::tempdir().unwrap();
        let spec = NodeSpec::from_yaml(NODE_YAML, "test").unwrap();
        sriov_sim::kernel::write_static_tree(tree.path(), &spec).unwrap();
        Env {
            tree,
            state: tempfile::tempdir().unwrap(),
        }
    }

    fn cfg(&self) -> K8sConfig {
        let mut cfg = daemon_config(self.tree.path(), self.state.path());
        cfg.apply.vf_timeout = Duration::from_millis(300);
        cfg.apply.bind_timeout = Duration::from_millis(300);
        cfg
    }

    fn vf(&self, pf: &str, i: u32) -> String {
        sriov_sim::check::vf_address(self.tree.path(), pf, i).unwrap()
    }

    fn hold(&self, vf: &str) {
        hold_vf(self.tree.path(), vf)
    }
}

#[tokio::test]
async fn creates_its_node_state_then_reports_the_node_and_follows_the_spec() {
    let env = Env::new();
    let (client, mut api) = pair();
    let metrics = Arc::new(Metrics::new());
    let mut cfg = env.cfg();
    cfg.backoff = Duration::from_millis(200);
    let daemon = Daemon::new(client, cfg, metrics.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(daemon.run(async {
        let _ = stop_rx.await;
    }));

    // No node state: read the operator config for the owner, create it.
    api.expect("GET", &format!("{STATES}/{NODE}"))
        .await
        .not_found();
    api.expect_operator_config(Some(false)).await;
    let r = api.expect("POST", STATES).await;
    assert_eq!(r.body["metadata"]["name"], NODE);
    assert_eq!(r.body["metadata"]["namespace"], NS);
    assert_eq!(
        r.body["metadata"]["annotations"],
        json!({"sriovnetwork.openshift.io/desired-state": "Idle",
               "sriovnetwork.openshift.io/current-state": "Idle"})
    );
    assert_eq!(
        r.body["metadata"]["ownerReferences"],
        json!([{"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovOperatorConfig",
                "name": "default", "uid": "config-uid", "controller": true,
                "blockOwnerDeletion": true}])
    );
    assert_eq!(r.body["spec"], json!({}));
    assert!(r.body.get("status").is_none_or(Value::is_null), "{r:?}");
    let created = node_state(1, json!({}), "Idle", "Idle");
    r.ok(created.clone());

    // The watch lists it (by name) and the first sync reports the node.
    let r = api.expect("GET", STATES).await;
    assert_eq!(
        r.param("fieldSelector").as_deref(),
        Some("metadata.name=node1"),
        "{r:?}"
    );
    assert!(r.param("watch").is_none(), "{r:?}");
    r.ok(node_state_list(101, std::slice::from_ref(&created)));
    let status = api.expect_status(&created).await;
    assert_eq!(status["syncStatus"], "Succeeded", "{status}");
    assert!(status.get("lastSyncError").is_none(), "{status}");
    let pf = iface(&status, "0000:3b:00.0");
    assert_eq!(
        (pf["name"].as_str(), pf["numVfs"].as_i64()),
        (Some("ens1f0"), Some(4))
    );
    assert_eq!(pf["Vfs"].as_array().unwrap().len(), 4);
    assert_eq!(pf["Vfs"][0]["driver"], "iavf");
    assert_eq!(iface(&status, "0000:3b:00.1")["name"], "ens1f1");
    assert_eq!(condition(&status, "Ready")["status"], "True");
    assert_eq!(condition(&status, "Degraded")["status"], "False");
    assert_eq!(condition(&status, "Ready")["observedGeneration"], 1);
    let (t, reason, _) = api.expect_event().await;
    assert_eq!((t.as_str(), reason.as_str()), ("Normal", "SyncSucceeded"));

    // The operator writes a spec naming a PF this node does not have:
    // Failed, with the PF and the reason, and a warning event.
    let r = api.expect("GET", STATES).await;
    assert_eq!(r.param("watch").as_deref(), Some("true"), "{r:?}");
    assert_eq!(r.param("resourceVersion").as_deref(), Some("101"), "{r:?}");
    let bad = node_state(
        2,
        json!({"interfaces": [{"pciAddress": "0000:99:00.0", "numVfs": 2}]}),
        "Idle",
        "Idle",
    );
    r.watch_events(&[json!({"type": "MODIFIED", "object": bad})]);
    // The API server fails the status write: not ready, retried after the
    // backoff (while the watch goes on).
    let r = api
        .expect("PATCH", &format!("{STATES}/{NODE}/status"))
        .await;
    r.reply(
        500,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "message": "etcdserver: request timed out", "reason": "InternalError", "code": 500}),
    );
    let first = api.next().await;
    let (watch, retry) = if first.method == "GET" {
        (first, api.next().await)
    } else {
        let w = api.next().await;
        (w, first)
    };
    assert_eq!(watch.param("watch").as_deref(), Some("true"), "{watch:?}");
    assert!(metrics.readiness().is_err());
    assert_eq!(
        (retry.method.as_str(), retry.path.as_str()),
        ("PATCH", format!("{STATES}/{NODE}/status").as_str()),
        "{retry:?}"
    );
    let status = retry.body["status"].clone();
    retry.ok(bad.clone());
    assert_eq!(status["syncStatus"], "Failed", "{status}");
    let err = status["lastSyncError"].as_str().unwrap();
    assert!(
        err.starts_with("PF 0000:99:00.0: no such SR-IOV PF on this node"),
        "{err}"
    );
    assert_eq!(condition(&status, "Degraded")["status"], "True");
    assert_eq!(condition(&status, "Degraded")["message"], err);
    assert_eq!(condition(&status, "Ready")["observedGeneration"], 2);
    let (t, reason, note) = api.expect_event().await;
    assert_eq!(
        (t.as_str(), reason.as_str(), note.as_str()),
        ("Warning", "SyncFailed", err)
    );
    assert_eq!(metrics.sync_status(), "Failed");
    assert!(metrics.readiness().is_ok());

    // Someone deletes the node state: the daemon creates it again and
    // reports the node in it.
    watch.watch_events(&[json!({"type": "DELETED", "object": bad})]);
    api.expect("GET", &format!("{STATES}/{NODE}"))
        .await
        .not_found();
    api.expect_operator_config(Some(false)).await;
    let r = api.expect("POST", STATES).await;
    assert_eq!(r.body["spec"], json!({}));
    let again = node_state(1, json!({}), "Idle", "Idle");
    r.ok(again.clone());
    let status = api.expect_status(&again).await;
    assert_eq!(status["syncStatus"], "Succeeded", "{status}");
    assert_eq!(iface(&status, "0000:3b:00.0")["numVfs"], 4);
    let (_, reason, _) = api.expect_event().await;
    assert_eq!(reason, "SyncSucceeded");

    // The watch goes on; stop the daemon.
    let r = api.expect("GET", STATES).await;
    assert_eq!(r.param("watch").as_deref(), Some("true"), "{r:?}");
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the daemon stops")
        .unwrap()
        .unwrap();
    drop(r);
    // deploy/config-daemon/rbac.yaml allows all of it.
    api.check_rbac();
}

#[tokio::test]
async fn an_existing_node_state_is_not_created_again_and_the_node_owns_a_new_one_without_config() {
    let env = Env::new();
    let (client, mut api) = pair();
    let mut d = Daemon::new(client, env.cfg(), Arc::new(Metrics::new()));
    let existing = node_state(3, json!({}), "Idle", "Idle");
    let t = tokio::spawn(async move {
        (
            d.ensure_node_state().await.map(|ns| ns.metadata.generation),
            d,
        )
    });
    api.expect("GET", &format!("{STATES}/{NODE}"))
        .await
        .ok(existing);
    let (got, mut d) = join(t).await;
    assert_eq!(got.unwrap(), Some(3));
    api.expect_silence(Duration::from_millis(100)).await;

    // No operator config: the Node owns the new state.
    let t =
        tokio::spawn(async move { d.ensure_node_state().await.map(|ns| ns.metadata.generation) });
    api.expect("GET", &format!("{STATES}/{NODE}"))
        .await
        .not_found();
    api.expect_operator_config(None).await;
    api.expect("GET", &format!("{NODES}/{NODE}")).await.ok(
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE, "uid": "node-uid"}}),
    );
    let r = api.expect("POST", STATES).await;
    assert_eq!(
        r.body["metadata"]["ownerReferences"],
        json!([{"apiVersion": "v1", "kind": "Node", "name": NODE, "uid": "node-uid"}])
    );
    r.ok(node_state(1, json!({}), "Idle", "Idle"));
    assert_eq!(join(t).await.unwrap(), Some(1));
}

#[tokio::test]
async fn a_failure_names_the_pf_then_the_fixed_spec_recovers_and_a_converged_node_writes_nothing() {
    let env = Env::new();
    let (client, mut api) = pair();
    let d = Daemon::new(client, env.cfg(), Arc::new(Metrics::new()));

    let bad = node_state(
        2,
        json!({"interfaces": [{"pciAddress": "0000:3b:00.0", "name": "ens1f0", "numVfs": 9999}]}),
        "Idle",
        "Idle",
    );
    let t = spawn_sync(d, bad.clone(), Trigger::Spec);
    let status = api.expect_status(&bad).await;
    assert_eq!(status["syncStatus"], "Failed");
    let err = status["lastSyncError"].as_str().unwrap().to_string();
    assert!(
        err.starts_with("PF ens1f0 (0000:3b:00.0): numVfs 9999 is more than the PF supports"),
        "{err}"
    );
    let (t_, reason, _) = api.expect_event().await;
    assert_eq!((t_.as_str(), reason.as_str()), ("Warning", "SyncFailed"));
    let (d, o) = join(t).await;
    assert!(o.failed());
    assert_eq!(o.last_sync_error, err);

    // The admin fixes the policy: what the node has (4 VFs) is what it wants.
    let mut good = node_state(
        3,
        json!({"interfaces": [{"pciAddress": "0000:3b:00.0", "name": "ens1f0", "numVfs": 4,
               "vfGroups": [{"resourceName": "net", "deviceType": "netdevice", "vfRange": "0-3", "policyName": "p"}]}]}),
        "Idle",
        "Idle",
    );
    good["status"] = status.clone();
    let t = spawn_sync(d, good.clone(), Trigger::Spec);
    let st = api.expect_status(&good).await;
    assert_eq!(st["syncStatus"], "Succeeded");
    assert!(st.get("lastSyncError").is_none(), "{st}");
    assert_eq!(condition(&st, "Degraded")["status"], "False");
    assert_eq!(condition(&st, "Ready")["status"], "True");
    let (t_, reason, _) = api.expect_event().await;
    assert_eq!((t_.as_str(), reason.as_str()), ("Normal", "SyncSucceeded"));
    let (d, o) = join(t).await;
    assert_eq!((o.sync_status.as_str(), o.steps), ("Succeeded", 0));

    // A resync of a converged node: no request at all.
    good["status"] = st;
    let t = spawn_sync(d, good, Trigger::Resync);
    let (_, o) = tokio::time::timeout(Duration::from_secs(10), t)
        .await
        .expect("a converged resync needs no API call")
        .unwrap();
    assert!(!o.status_written && !o.drift_repaired);
    api.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn a_disruptive_plan_asks_for_a_drain_and_waits_for_it() {
    let env = Env::new();
    // A pod holds VF 1 of ens1f0; the spec wants 8 VFs (the 4 go away).
    let held = env.vf("0000:3b:00.0", 1);
    env.hold(&held);
    let (client, mut api) = pair();
    let metrics = Arc::new(Metrics::new());
    let d = Daemon::new(client, env.cfg(), metrics.clone());
    let spec =
        json!({"interfaces": [{"pciAddress": "0000:3b:00.0", "name": "ens1f0", "numVfs": 8}]});
    let ns = node_state(2, spec.clone(), "Idle", "Idle");
    let t = spawn_sync(d, ns.clone(), Trigger::Spec);
    api.expect_operator_config(Some(false)).await;
    api.expect_annotations(&ns, "Drain_Required").await;
    let (t_, reason, note) = api.expect_event().await;
    assert_eq!((t_.as_str(), reason.as_str()), ("Normal", "DrainRequested"));
    assert!(note.contains(&held) && note.contains("ens1f0"), "{note}");
    let st = api.expect_status(&ns).await;
    assert_eq!(st["syncStatus"], "InProgress");
    assert_eq!(condition(&st, "Draining")["status"], "True");
    let msg = condition(&st, "Draining")["message"].as_str().unwrap();
    assert!(
        msg.contains(&held) && msg.contains("current-state is Idle"),
        "{msg}"
    );
    let (d, o) = join(t).await;
    assert_eq!(o.decision, Decision::RequestDrain);
    assert_eq!(o.held, vec!["0000:3b:00.0".to_string()]);
    // Nothing was written to the node.
    let numvfs = std::fs::read_to_string(
        env.tree
            .path()
            .join("sys/bus/pci/devices/0000:3b:00.0/sriov_numvfs"),
    )
    .unwrap();
    assert_eq!(numvfs.trim(), "4");

    // The operator drains: the daemon waits (it re-reads disableDrain and
    // reports where the drain is), and changes nothing.
    let mut draining = node_state(2, spec, "Drain_Required", "Draining");
    draining["status"] = st;
    let t = spawn_sync(d, draining.clone(), Trigger::Spec);
    api.expect_operator_config(Some(false)).await;
    let st = api.expect_status(&draining).await;
    assert_eq!(st["syncStatus"], "InProgress");
    let msg = condition(&st, "Draining")["message"].as_str().unwrap();
    assert!(msg.contains("current-state is Draining"), "{msg}");
    let (d, o) = join(t).await;
    assert_eq!(o.decision, Decision::WaitForDrain);
    assert_eq!(o.sync_status, "InProgress");
    // Once more (a resync while draining): nothing to write.
    draining["status"] = st;
    let t = spawn_sync(d, draining, Trigger::Resync);
    api.expect_operator_config(Some(false)).await;
    let (_, o) = join(t).await;
    assert!(!o.status_written);
    api.expect_silence(Duration::from_millis(100)).await;
    assert!(
        metrics
            .encode()
            .contains("sriov_config_daemon_drains_requested_total 1")
    );
}

#[tokio::test]
async fn use_external_drainer_marks_the_node_state_only_while_no_drain_is_going_on() {
    let env = Env::new();
    let (client, mut api) = pair();
    let mut cfg = env.cfg();
    cfg.use_external_drainer = true;
    let d = Daemon::new(client, cfg, Arc::new(Metrics::new()));
    let spec = json!({"interfaces": [{"pciAddress": "0000:3b:00.0", "name": "ens1f0", "numVfs": 4,
           "vfGroups": [{"resourceName": "net", "deviceType": "netdevice", "vfRange": "0-3", "policyName": "p"}]}]});

    // Idle and unmarked: the annotation is added first (a merge patch).
    let ns = node_state(2, spec.clone(), "Idle", "Idle");
    let t = spawn_sync(d, ns.clone(), Trigger::Spec);
    let r = api.expect("PATCH", &format!("{STATES}/{NODE}")).await;
    assert_eq!(r.content_type, "application/merge-patch+json", "{r:?}");
    assert_eq!(
        r.body,
        json!({"metadata": {"annotations": {"sriovnetwork.openshift.io/use-external-drainer": "true"}}})
    );
    r.echo(ns.clone());
    let st = api.expect_status(&ns).await;
    assert_eq!(st["syncStatus"], "Succeeded");
    let _ = api.expect_event().await;
    let (d, _) = join(t).await;

    // Marked: nothing more to say.
    let mut marked = ns.clone();
    marked["metadata"]["annotations"]["sriovnetwork.openshift.io/use-external-drainer"] =
        json!("true");
    marked["status"] = st.clone();
    let t = spawn_sync(d, marked.clone(), Trigger::Resync);
    let (_, o) = join(t).await;
    assert!(!o.status_written);
    api.expect_silence(Duration::from_millis(100)).await;

    // The setting is turned off while a drain is in flight: the annotation
    // stays until the node is Idle again, then goes (a null in the patch).
    let mut cfg = env.cfg();
    cfg.use_external_drainer = false;
    let (client, mut api) = pair();
    let d = Daemon::new(client, cfg, Arc::new(Metrics::new()));
    let mut busy = node_state(2, spec.clone(), "Drain_Required", "Draining");
    busy["metadata"]["annotations"]["sriovnetwork.openshift.io/use-external-drainer"] =
        json!("true");
    busy["status"] = st.clone();
    let t = spawn_sync(d, busy, Trigger::Resync);
    // Nothing disruptive is left to do: the stale request is withdrawn,
    // and only then (next sync) the mark.
    api.expect_annotations(&ns, "Idle").await;
    let (d, _) = join(t).await;
    marked["metadata"]["annotations"]["sriovnetwork.openshift.io/desired-state"] = json!("Idle");
    let t = spawn_sync(d, marked, Trigger::Spec);
    let r = api.expect("PATCH", &format!("{STATES}/{NODE}")).await;
    assert_eq!(
        r.body,
        json!({"metadata": {"annotations": {"sriovnetwork.openshift.io/use-external-drainer": null}}})
    );
    r.echo(ns);
    let (_, o) = join(t).await;
    assert_eq!(o.sync_status, "Succeeded");
    api.check_rbac();
}

#[tokio::test]
async fn vfio_pci_without_an_iommu_drains_adds_the_kernel_arguments_and_reboots_once() {
    use sriov_host::boot::{CpuVendor, RecordingBoot};
    let env = Env::new();
    let boot = Arc::new(RecordingBoot::new(CpuVendor::Intel, "ro quiet", false));
    let mut cfg = env.cfg();
    cfg.boot = boot.clone();
    let (client, mut api) = pair();
    let d = Daemon::new(client, cfg.clone(), Arc::new(Metrics::new()));
    let spec = json!({"interfaces": [{"pciAddress": "0000:3b:00.0", "name": "ens1f0", "numVfs": 4,
           "vfGroups": [{"resourceName": "dpdk", "deviceType": "vfio-pci", "vfRange": "0-3", "policyName": "p"}]}]});

    // Ask for a full drain first (Reboot_Required), say why.
    let ns = node_state(2, spec.clone(), "Idle", "Idle");
    let t = spawn_sync(d, ns.clone(), Trigger::Spec);
    api.expect_operator_config(Some(false)).await;
    api.expect_annotations(&ns, "Reboot_Required").await;
    let (t_, reason, note) = api.expect_event().await;
    assert_eq!(
        (t_.as_str(), reason.as_str()),
        ("Normal", "RebootRequested")
    );
    assert!(note.contains("intel_iommu=on iommu=pt"), "{note}");
    let st = api.expect_status(&ns).await;
    assert_eq!(st["syncStatus"], "InProgress");
    let (d, o) = join(t).await;
    assert_eq!(o.decision, Decision::RequestReboot);
    assert!(boot.added().is_empty() && boot.reboots() == 0);

    // The operator drains: wait, and say where the drain is.
    let mut draining = node_state(2, spec.clone(), "Reboot_Required", "Draining");
    draining["status"] = st;
    let t = spawn_sync(d, draining.clone(), Trigger::Spec);
    api.expect_operator_config(Some(false)).await;
    let st = api.expect_status(&draining).await;
    let msg = condition(&st, "Draining")["message"].as_str().unwrap();
    assert!(msg.contains("current-state is Draining"), "{msg}");
    let (d, o) = join(t).await;
    assert_eq!(o.decision, Decision::WaitForReboot);
    assert!(boot.reboots() == 0);

    // Drained: the arguments go to the boot loader, then one reboot.
    let mut drained = node_state(2, spec.clone(), "Reboot_Required", "DrainComplete");
    drained["status"] = st;
    let t = spawn_sync(d, drained.clone(), Trigger::Spec);
    let (t_, reason, note) = api.expect_event().await;
    assert_eq!((t_.as_str(), reason.as_str()), ("Warning", "RebootNode"));
    assert!(note.contains("intel_iommu=on iommu=pt"), "{note}");
    let st = api.expect_status(&drained).await;
    assert_eq!(st["syncStatus"], "InProgress");
    let (_, o) = join(t).await;
    assert_eq!(o.decision, Decision::Reboot);
    assert_eq!(
        boot.added(),
        vec![vec!["intel_iommu=on".to_string(), "iommu=pt".to_string()]]
    );
    assert_eq!(boot.reboots(), 1);
    api.check_rbac();

    // The node came back with the arguments but the firmware has the IOMMU
    // off: no second reboot; Failed with the reason, and the node is
    // released (Idle) instead of kept drained for nothing.
    boot.reboot_into(false);
    let (client, mut api) = pair();
    let d = Daemon::new(client, cfg, Arc::new(Metrics::new()));
    drained["status"] = st;
    let t = spawn_sync(d, drained.clone(), Trigger::Spec);
    api.expect_annotations(&drained, "Idle").await;
    let st = api.expect_status(&drained).await;
    assert_eq!(st["syncStatus"], "Failed");
    let err = st["lastSyncError"].as_str().unwrap();
    assert!(
        err.contains("ens1f0") && err.contains("firmware") && err.contains("not rebooting"),
        "{err}"
    );
    let (t_, reason, _) = api.expect_event().await;
    assert_eq!((t_.as_str(), reason.as_str()), ("Warning", "SyncFailed"));
    let (_, o) = join(t).await;
    assert!(o.failed());
    assert_eq!(boot.reboots(), 1);

    // A node drained for a Drain_Required (only the pods holding VFs went)
    // is not drained enough for a reboot: the request is withdrawn first.
    let boot = Arc::new(RecordingBoot::new(CpuVendor::Intel, "ro", false));
    let mut cfg = env.cfg();
    cfg.boot = boot.clone();
    let (client, mut api) = pair();
    let d = Daemon::new(client, cfg, Arc::new(Metrics::new()));
    let half = node_state(3, spec, "Drain_Required", "DrainComplete");
    let t = spawn_sync(d, half.clone(), Trigger::Spec);
    api.expect_operator_config(Some(false)).await;
    api.expect_annotations(&half, "Idle").await;
    let st = api.expect_status(&half).await;
    let msg = condition(&st, "Draining")["message"].as_str().unwrap();
    assert!(msg.contains("withdrew the Drain_Required request"), "{msg}");
    let (_, o) = join(t).await;
    assert_eq!(o.decision, Decision::RequestReboot);
    assert!(boot.added().is_empty() && boot.reboots() == 0);
}

#[test]
fn requests_map_to_the_rbac_attributes_they_need() {
    let a = |m: &str, p: &str, q: &str| rbac_attributes(m, p, q);
    let s = |g: &str, r: &str, v: &str, n: bool| (g.to_string(), r.to_string(), v.to_string(), n);
    assert_eq!(
        a("GET", &format!("{STATES}/{NODE}"), ""),
        s(
            "sriovnetwork.openshift.io",
            "sriovnetworknodestates",
            "get",
            true
        )
    );
    assert_eq!(
        a(
            "GET",
            STATES,
            "&fieldSelector=metadata.name%3Dnode1&watch=true"
        ),
        s(
            "sriovnetwork.openshift.io",
            "sriovnetworknodestates",
            "watch",
            true
        )
    );
    assert_eq!(
        a("PATCH", &format!("{STATES}/{NODE}/status"), "&force=true"),
        s(
            "sriovnetwork.openshift.io",
            "sriovnetworknodestates/status",
            "patch",
            true
        )
    );
    assert_eq!(
        a("PATCH", "/api/v1/nodes/node1", ""),
        s("", "nodes", "patch", false)
    );
    assert_eq!(
        a("POST", EVENTS, ""),
        s("events.k8s.io", "events", "create", true)
    );
}
