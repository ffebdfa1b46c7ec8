//! Faults of the Kubernetes mode (`run`) against the API-server verifier and
//! a FUSE-simulated node (root + FUSE lane): the API server unreachable
//! (connection refused, then 500s) at start and in the middle of an apply,
//! and the node state deleted in the middle of an apply.

mod k8s_mock;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_mock::*;
use serde_json::{Value, json};
use sriov_config_daemon::k8s::{Daemon, K8sConfig};
use sriov_config_daemon::metrics::Metrics;
use sriov_sim::check;
use sriov_sim::lanes::{self, Lane};
use sriov_sim::node::NodeSpec;
use sriov_sim::{SimNode, SimOptions};

/// ens1f1's `sriov_numvfs` writes block 800 ms: an apply on it takes that
/// long, long enough for the test to break the API server meanwhile.
const NODE_YAML: &str = r#"
name: k8s-faults
pfs:
  - {model: e810, address: "0000:3b:00.0", ifname: ens1f0, vfs: 2}
  - {model: e810, address: "0000:3b:00.1", ifname: ens1f1, faults: {numvfs_delay_ms: 800}}
"#;
const PF1: &str = "0000:3b:00.1";
const BACKOFF: Duration = Duration::from_millis(200);

struct Env {
    sim: SimNode,
    state: tempfile::TempDir,
}

impl Env {
    fn start() -> Env {
        let spec = NodeSpec::from_yaml(NODE_YAML, "test").unwrap();
        Env {
            sim: SimNode::start(spec, SimOptions::default()).expect("sim starts"),
            state: tempfile::tempdir().unwrap(),
        }
    }

    fn cfg(&self) -> K8sConfig {
        let mut cfg = daemon_config(self.sim.root(), self.state.path());
        cfg.backoff = BACKOFF;
        cfg.max_backoff = Duration::from_secs(2);
        cfg
    }

    fn numvfs(&self, pf: &str) -> u32 {
        check::numvfs(self.sim.root(), pf)
    }

    /// The PCI addresses of a PF's VFs (`virtfnN` links).
    fn vfs(&self, pf: &str) -> Vec<String> {
        (0..)
            .map_while(|i| check::vf_address(self.sim.root(), pf, i))
            .collect()
    }
}

/// A spec asking 4 VFs on ens1f1.
fn spec4() -> Value {
    json!({"interfaces": [{"pciAddress": PF1, "name": "ens1f1", "numVfs": 4,
        "vfGroups": [{"resourceName": "res", "deviceType": "netdevice", "vfRange": "0-3",
                      "policyName": "p"}]}]})
}

fn api_errors(metrics: &Metrics) -> u64 {
    let text = metrics.encode();
    text.lines()
        .find_map(|l| l.strip_prefix("sriov_config_daemon_api_errors_total "))
        .unwrap_or_else(|| panic!("no api_errors_total in {text}"))
        .parse()
        .unwrap()
}

struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), sriov_config_daemon::k8s::SyncError>>,
}

impl Running {
    fn start(env: &Env, client: kube::Client, metrics: Arc<Metrics>) -> Running {
        let daemon = Daemon::new(client, env.cfg(), metrics);
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(daemon.run(async {
            let _ = rx.await;
        }));
        Running {
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(15), &mut self.task)
            .await
            .expect("the daemon stops")
            .unwrap()
            .unwrap();
    }
}

/// The API server refuses connections, then answers 500, at start; later
/// it goes away again while a spec is being applied. The daemon retries
/// with a doubling backoff, never touches the node while it cannot read
/// its spec, keeps what it applied (no rollback, no VF recreated) and
/// reports the node as soon as the API server answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_unreachable_retries_with_backoff_keeps_the_node_and_reports_when_back() {
    if !lanes::require(
        "api_server_unreachable_retries_with_backoff_keeps_the_node_and_reports_when_back",
        &[Lane::Fuse],
    ) {
        return;
    }
    let env = Env::start();
    let (client, mut api) = pair();
    let metrics = Arc::new(Metrics::new());
    let running = Running::start(&env, client, metrics.clone());

    // Start: refused, 500, refused, then the node state: retried after
    // 200, 400, 800 ms.
    let mut at = Vec::new();
    for answer in ["refuse", "500", "refuse"] {
        let r = api.expect("GET", &format!("{STATES}/{NODE}")).await;
        at.push(Instant::now());
        match answer {
            "refuse" => r.refuse(),
            _ => r.internal_error(),
        }
    }
    let r = api.expect("GET", &format!("{STATES}/{NODE}")).await;
    at.push(Instant::now());
    for (i, w) in at.windows(2).enumerate() {
        let want = BACKOFF * 2u32.pow(i as u32);
        let got = w[1] - w[0];
        assert!(got >= want, "retry {i} after {got:?}, backoff {want:?}");
        assert!(
            got < want + Duration::from_secs(2),
            "retry {i} after {got:?}, backoff {want:?}"
        );
    }
    assert_eq!(api_errors(&metrics), 3);
    assert!(metrics.readiness().is_err());
    // Nothing was touched while the spec could not be read.
    assert_eq!((env.numvfs("0000:3b:00.0"), env.numvfs(PF1)), (2, 0));
    let ns = node_state(2, spec4(), "Idle", "Idle");
    r.ok(ns.clone());

    // The watch lists it; the sync writes InProgress and applies 0 -> 4.
    let mut watches = Vec::new();
    let r = api.next_not_watch(&mut watches).await;
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("GET", STATES),
        "{r:?}"
    );
    r.ok(node_state_list(101, std::slice::from_ref(&ns)));
    let st = api.expect_status(&ns).await;
    assert_eq!(st["syncStatus"], "InProgress");

    // The API server goes away while the VFs are being created: the final
    // status write is refused, then 500; retried with the backoff.
    let r = api.next_not_watch(&mut watches).await;
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("PATCH", format!("{STATES}/{NODE}/status").as_str()),
        "{r:?}"
    );
    assert_eq!(r.body["status"]["syncStatus"], "Succeeded", "{r:?}");
    let vfs = env.vfs(PF1);
    assert_eq!(vfs.len(), 4, "applied before the status write");
    // A slow failure: the uevents of the new VFs reach the daemon before
    // this sync ends (they are then taken as its own, not as drift), so
    // what follows are retries only.
    tokio::time::sleep(Duration::from_millis(500)).await;
    r.refuse();
    let t0 = Instant::now();
    assert!(metrics.readiness().is_err());
    let r = api.next_not_watch(&mut watches).await;
    let t1 = Instant::now();
    assert!(t1 - t0 >= BACKOFF, "retried after {:?}: {r:?}", t1 - t0);
    assert_eq!(r.path, format!("{STATES}/{NODE}/status"), "{r:?}");
    r.internal_error();
    let r = api.next_not_watch(&mut watches).await;
    assert!(
        Instant::now() - t1 >= BACKOFF * 2,
        "second retry after {:?}",
        Instant::now() - t1
    );
    // Back: the retry reports the node as it is (the 4 VFs applied before
    // the outage, the same functions: nothing was redone).
    assert_eq!(r.path, format!("{STATES}/{NODE}/status"), "{r:?}");
    let st = r.body["status"].clone();
    let mut obj = ns.clone();
    obj["status"] = st.clone();
    r.ok(obj);
    assert_eq!(st["syncStatus"], "Succeeded", "{st}");
    assert_eq!(iface(&st, PF1)["numVfs"], 4);
    assert_eq!(iface(&st, PF1)["Vfs"].as_array().unwrap().len(), 4);
    let r = api.next_not_watch(&mut watches).await;
    assert_eq!(r.path, EVENTS, "{r:?}");
    assert_eq!(r.body["reason"], "SyncSucceeded", "{r:?}");
    let body = r.body.clone();
    r.ok(body);
    assert_eq!(env.vfs(PF1), vfs);
    assert_eq!(
        env.numvfs("0000:3b:00.0"),
        2,
        "the PF outside the spec untouched"
    );
    assert_eq!(api_errors(&metrics), 5);
    assert!(metrics.readiness().is_ok());
    assert_eq!(metrics.sync_status(), "Succeeded");
    // Converged: nothing more is sent.
    api.expect_silence(Duration::from_millis(1500)).await;
    running.stop().await;
    drop(watches);
    api.check_rbac();
}

/// Someone deletes the node state while its spec is being applied. The
/// daemon finishes the apply (the status write then fails: NotFound),
/// creates the node state again and reports the node in it, but the empty
/// spec of the node state it made itself resets nothing: the VFs it just
/// created stay until the operator writes a spec again, which then needs
/// no change at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_state_deleted_mid_apply_is_created_again_and_the_node_kept() {
    if !lanes::require(
        "the_node_state_deleted_mid_apply_is_created_again_and_the_node_kept",
        &[Lane::Fuse],
    ) {
        return;
    }
    let env = Env::start();
    let (client, mut api) = pair();
    let metrics = Arc::new(Metrics::new());
    let running = Running::start(&env, client, metrics.clone());

    let ns = node_state(2, spec4(), "Idle", "Idle");
    api.expect("GET", &format!("{STATES}/{NODE}"))
        .await
        .ok(ns.clone());
    let mut watches = Vec::new();
    let r = api.next_not_watch(&mut watches).await;
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("GET", STATES),
        "{r:?}"
    );
    r.ok(node_state_list(101, std::slice::from_ref(&ns)));
    let st = api.expect_status(&ns).await;
    assert_eq!(st["syncStatus"], "InProgress");
    // Deleted on the server while the 0 -> 4 write blocks in the kernel:
    // the apply finishes, its status write finds no object.
    let r = api.next_not_watch(&mut watches).await;
    assert_eq!(r.path, format!("{STATES}/{NODE}/status"), "{r:?}");
    let vfs = env.vfs(PF1);
    assert_eq!(vfs.len(), 4);
    tokio::time::sleep(Duration::from_millis(500)).await;
    r.not_found();
    // The watch then brings the deletion.
    let w = match watches.pop() {
        Some(w) => w,
        None => api.next().await,
    };
    assert!(w.is_watch(), "{w:?}");
    w.watch_events(&[json!({"type": "DELETED", "object": ns})]);

    // Created again: no operator config, so owned by the Node.
    api.expect("GET", &format!("{STATES}/{NODE}"))
        .await
        .not_found();
    api.expect_operator_config(None).await;
    api.expect("GET", &format!("{NODES}/{NODE}"))
        .await
        .ok(json!({"apiVersion": "v1", "kind": "Node",
                   "metadata": {"name": NODE, "uid": "node-uid"}}));
    let r = api.expect("POST", STATES).await;
    assert_eq!(r.body["spec"], json!({}));
    assert_eq!(r.body["metadata"]["ownerReferences"][0]["kind"], "Node");
    let mut again = node_state(1, json!({}), "Idle", "Idle");
    again["metadata"]["uid"] = json!("state-uid-2");
    r.ok(again.clone());
    // Its empty spec resets nothing: the node is reported as it is.
    let mut st = Value::Null;
    loop {
        let r = api.next_not_watch(&mut watches).await;
        if r.method == "PATCH" && r.path == format!("{STATES}/{NODE}/status") {
            st = r.body["status"].clone();
            let mut obj = again.clone();
            obj["status"] = st.clone();
            r.ok(obj);
        } else if r.path == EVENTS {
            let body = r.body.clone();
            r.ok(body);
            break;
        } else if r.method == "GET" && r.path == STATES {
            // The watch starts over with a list.
            r.ok(node_state_list(101, std::slice::from_ref(&again)));
        } else {
            panic!("unexpected request {r:?}");
        }
    }
    assert_eq!(st["syncStatus"], "Succeeded", "{st}");
    assert_eq!(iface(&st, PF1)["numVfs"], 4, "{st}");
    assert_eq!(env.vfs(PF1), vfs, "the VFs are kept");

    // The operator writes the spec again: nothing to change, nothing sent.
    let w = loop {
        if let Some(w) = watches.pop() {
            break w;
        }
        let r = api.next().await;
        if r.is_watch() {
            break r;
        }
        if r.method == "GET" && r.path == STATES {
            r.ok(node_state_list(101, std::slice::from_ref(&again)));
            continue;
        }
        panic!("unexpected request {r:?}");
    };
    let mut spec_again = node_state(2, spec4(), "Idle", "Idle");
    spec_again["metadata"]["uid"] = json!("state-uid-2");
    w.watch_events(&[json!({"type": "MODIFIED", "object": spec_again})]);
    // Only the status moves to the new generation.
    let r = api.next_not_watch(&mut watches).await;
    assert_eq!(r.path, format!("{STATES}/{NODE}/status"), "{r:?}");
    let st = r.body["status"].clone();
    let mut obj = spec_again.clone();
    obj["status"] = st.clone();
    r.ok(obj);
    assert_eq!(st["syncStatus"], "Succeeded", "{st}");
    assert_eq!(st["conditions"][0]["observedGeneration"], 2, "{st}");
    assert_eq!(iface(&st, PF1)["numVfs"], 4, "{st}");
    let mut watches2 = Vec::new();
    if let Ok(r) = tokio::time::timeout(
        Duration::from_millis(1500),
        api.next_not_watch(&mut watches2),
    )
    .await
    {
        panic!("unexpected request {r:?}");
    }
    assert_eq!(env.vfs(PF1), vfs);
    assert_eq!(metrics.sync_status(), "Succeeded");
    running.stop().await;
    drop((watches, watches2));
    api.check_rbac();
}
