//! The API server stand-in for the Kubernetes-mode tests
//! ([`sriov_sim::api_server`]): the daemon's client talks to a mock
//! service; the test takes each request in order, checks method, path,
//! query and body, and answers it. Here: the daemon's paths and objects, the
//! requests it makes (events, status, handshake annotations), and the RBAC
//! check against deploy/config-daemon/rbac.yaml; and what those tests share
//! besides: the daemon's config, syncs run in a task, a VF handed to a pod.

// Each test binary uses part of it.
#![allow(dead_code, unused_imports)]

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use sriov_config_daemon::k8s::{Daemon, K8sConfig, SyncOutcome, Trigger};
use sriov_crds::SriovNetworkNodeState;
use sriov_host::HostRoot;
pub use sriov_sim::api_server::{ApiServer, NS, Req, rbac_attributes};

pub const NODE: &str = "node1";
pub const STATES: &str =
    "/apis/sriovnetwork.openshift.io/v1/namespaces/sriov-network-operator/sriovnetworknodestates";
pub const CONFIG: &str = "/apis/sriovnetwork.openshift.io/v1/namespaces/sriov-network-operator/sriovoperatorconfigs/default";
pub const NODES: &str = "/api/v1/nodes";
pub const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/sriov-network-operator/events";

/// Requests as the daemon's tests see them.
pub trait DaemonReq {
    /// Whether this is a watch (not the initial list) on the node states.
    fn is_watch(&self) -> bool;
}

impl DaemonReq for Req {
    fn is_watch(&self) -> bool {
        self.is_watch_on(STATES)
    }
}

/// A client on the mock with the daemon's rights
/// (deploy/config-daemon/rbac.yaml), and the server side.
pub fn pair() -> (kube::Client, ApiServer) {
    sriov_sim::api_server::pair(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config-daemon/rbac.yaml"),
    )
}

/// The daemon's requests, as its tests expect them.
pub trait DaemonApi {
    /// The next request that is not a watch on the node states; watches
    /// seen meanwhile are kept, unanswered, in `watches`.
    async fn next_not_watch(&mut self, watches: &mut Vec<Req>) -> Req;
    /// Expects an event and answers it; returns (type, reason, note).
    async fn expect_event(&mut self) -> (String, String, String);
    /// Expects the status apply and answers it; returns the status.
    async fn expect_status(&mut self, object: &Value) -> Value;
    /// Expects the handshake annotation patches (node state, then Node)
    /// with `value`, and answers them.
    async fn expect_annotations(&mut self, object: &Value, value: &str);
    /// Expects the read of `SriovOperatorConfig/default` and answers it
    /// (`None`: 404).
    async fn expect_operator_config(&mut self, disable_drain: Option<bool>);
}

impl DaemonApi for ApiServer {
    async fn next_not_watch(&mut self, watches: &mut Vec<Req>) -> Req {
        loop {
            let r = self.next().await;
            if r.is_watch() {
                watches.push(r);
            } else {
                return r;
            }
        }
    }

    async fn expect_event(&mut self) -> (String, String, String) {
        let r = self.next().await;
        assert!(
            (r.method == "POST" && r.path == EVENTS)
                || (r.method == "PATCH" && r.path.starts_with(EVENTS)),
            "expected an event, got {r:?}"
        );
        let out = (
            r.body["type"].as_str().unwrap_or_default().to_string(),
            r.body["reason"].as_str().unwrap_or_default().to_string(),
            r.body["note"].as_str().unwrap_or_default().to_string(),
        );
        assert_eq!(
            r.body["regarding"]["kind"], "SriovNetworkNodeState",
            "{r:?}"
        );
        assert_eq!(
            r.body["reportingController"], "sriov-config-daemon",
            "{r:?}"
        );
        let body = r.body.clone();
        r.ok(body);
        out
    }

    async fn expect_status(&mut self, object: &Value) -> Value {
        let r = self
            .expect("PATCH", &format!("{STATES}/{NODE}/status"))
            .await;
        assert_eq!(r.content_type, "application/apply-patch+yaml", "{r:?}");
        assert_eq!(
            r.param("fieldManager").as_deref(),
            Some("sriov-config-daemon"),
            "{r:?}"
        );
        assert_eq!(r.param("force").as_deref(), Some("true"), "{r:?}");
        assert_eq!(
            r.body["apiVersion"], "sriovnetwork.openshift.io/v1",
            "{r:?}"
        );
        assert_eq!(r.body["kind"], "SriovNetworkNodeState", "{r:?}");
        let status = r.body["status"].clone();
        let mut obj = object.clone();
        obj["status"] = status.clone();
        r.ok(obj);
        status
    }

    async fn expect_annotations(&mut self, object: &Value, value: &str) {
        let r = self.expect("PATCH", &format!("{STATES}/{NODE}")).await;
        assert_eq!(r.content_type, "application/merge-patch+json", "{r:?}");
        assert_eq!(
            r.body,
            json!({"metadata": {"annotations": {"sriovnetwork.openshift.io/desired-state": value}}})
        );
        r.echo(object.clone());
        let r = self.expect("PATCH", &format!("{NODES}/{NODE}")).await;
        assert_eq!(r.content_type, "application/merge-patch+json", "{r:?}");
        assert_eq!(
            r.body,
            json!({"metadata": {"annotations": {"sriovnetwork.openshift.io/state": value}}})
        );
        r.ok(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE, "uid": "node-uid"}}));
    }

    async fn expect_operator_config(&mut self, disable_drain: Option<bool>) {
        let r = self.expect("GET", CONFIG).await;
        match disable_drain {
            None => r.not_found(),
            Some(d) => r.ok(operator_config(d)),
        }
    }
}

/// `SriovOperatorConfig/default`.
pub fn operator_config(disable_drain: bool) -> Value {
    json!({
        "apiVersion": "sriovnetwork.openshift.io/v1",
        "kind": "SriovOperatorConfig",
        "metadata": {"name": "default", "namespace": NS, "uid": "config-uid"},
        "spec": {"disableDrain": disable_drain}
    })
}

/// A node state as the API server returns it.
pub fn node_state(generation: i64, spec: Value, desired: &str, current: &str) -> Value {
    json!({
        "apiVersion": "sriovnetwork.openshift.io/v1",
        "kind": "SriovNetworkNodeState",
        "metadata": {
            "name": NODE, "namespace": NS, "uid": "state-uid", "generation": generation,
            "resourceVersion": format!("{}", 100 + generation),
            "annotations": {
                "sriovnetwork.openshift.io/desired-state": desired,
                "sriovnetwork.openshift.io/current-state": current
            }
        },
        "spec": spec
    })
}

/// A node state list as the API server returns it.
pub fn node_state_list(resource_version: u32, items: &[Value]) -> Value {
    json!({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeStateList",
           "metadata": {"resourceVersion": resource_version.to_string()}, "items": items})
}

/// The daemon's config for `NODE` on the host at `root`, its state in
/// `state`: no resync within a test, VF and bind waits long enough for
/// a FUSE-simulated node.
pub fn daemon_config(root: &Path, state: &Path) -> K8sConfig {
    let mut cfg = K8sConfig::new(NODE, HostRoot::new(root), state.to_path_buf());
    cfg.resync = Duration::from_secs(3600);
    cfg.apply.vf_timeout = Duration::from_secs(10);
    cfg.apply.bind_timeout = Duration::from_secs(5);
    cfg
}

/// A node state JSON as the daemon's typed object.
pub fn obj(v: &Value) -> SriovNetworkNodeState {
    serde_json::from_value(v.clone()).unwrap()
}

/// The status entry of the interface at `pci`.
pub fn iface<'a>(status: &'a Value, pci: &str) -> &'a Value {
    status["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["pciAddress"] == pci)
        .unwrap_or_else(|| panic!("{pci} not in {status}"))
}

/// The status condition of `type_`.
pub fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

/// Waits for a sync task (fails the test after 30 s: the daemon is waiting
/// for an answer the test did not expect to give).
pub async fn join<T>(t: tokio::task::JoinHandle<T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), t)
        .await
        .expect("the sync did not finish within 30 s (an unexpected request?)")
        .unwrap()
}

/// Runs one sync of `ns` in a task while the test plays the API server.
pub fn spawn_sync(
    mut d: Daemon,
    ns: Value,
    trigger: Trigger,
) -> tokio::task::JoinHandle<(Daemon, SyncOutcome)> {
    tokio::spawn(async move {
        let o = d.sync(&obj(&ns), trigger).await.expect("sync");
        (d, o)
    })
}

/// The device plugin handed `vf` to a pod (its device-info file).
pub fn hold_vf(root: &Path, vf: &str) {
    let dir = root.join("var/run/k8s.cni.cncf.io/devinfo/dp");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("openshift.io-net-{vf}-device.json")), "{}").unwrap();
}
