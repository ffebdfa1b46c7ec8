//! Drain coordination: the pure planner (pools, maxUnavailable, conflicts,
//! external drainer, restart mid-drain, forgotten cordons) and drain steps
//! against the API stand-in (targeted evictions, HTTP 429 from a PDB, the
//! bounded drain, DrainComplete, uncordon).

mod api_mock;

use std::collections::BTreeMap;
use std::time::Duration;

use api_mock::{NS, pair};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};
use sriov_crds::{SriovNetworkNodeState, SriovNetworkPoolConfig};
use sriov_operator::controllers::drain::{
    DrainAction, DrainProgress, finish, plan, pods_to_evict, start, step,
};
use sriov_operator::settings::Settings;

const STATES: &str =
    "/apis/sriovnetwork.openshift.io/v1/namespaces/sriov-network-operator/sriovnetworknodestates";

fn now() -> Time {
    Time("2026-01-02T03:04:05Z".parse().unwrap())
}

fn state(name: &str, desired: &str, current: &str, extra: Value) -> SriovNetworkNodeState {
    let mut ann = json!({"sriovnetwork.openshift.io/desired-state": desired,
                         "sriovnetwork.openshift.io/current-state": current});
    api_mock::merge(&mut ann, &extra);
    serde_json::from_value(json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeState",
        "metadata": {"name": name, "namespace": NS, "annotations": ann},
        "spec": {"interfaces": [{"pciAddress": "0000:3b:00.0", "numVfs": 4,
            "vfGroups": [{"resourceName": "intel_net", "vfRange": "0-3", "policyName": "p"}]}]}
    }))
    .unwrap()
}

fn pool(name: &str, selector: Value, max: Value) -> SriovNetworkPoolConfig {
    serde_json::from_value(json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkPoolConfig",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"nodeSelector": {"matchLabels": selector}, "maxUnavailable": max}
    }))
    .unwrap()
}

type NodeEntry<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);

fn nodes(entries: &[NodeEntry]) -> BTreeMap<String, (BTreeMap<String, String>, bool)> {
    entries
        .iter()
        .map(|(n, l, c)| {
            (
                n.to_string(),
                (
                    l.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    *c,
                ),
            )
        })
        .collect()
}

#[test]
fn default_pool_drains_one_node_at_a_time() {
    let states = vec![
        state("a", "Drain_Required", "Idle", json!({})),
        state("b", "Drain_Required", "Idle", json!({})),
        state("c", "Reboot_Required", "Idle", json!({})),
    ];
    let n = nodes(&[("a", &[], false), ("b", &[], false), ("c", &[], false)]);
    let p = plan(&states, &n, &[], false, &now());
    assert_eq!(p["a"], DrainAction::Start { reboot: false });
    assert!(
        matches!(
            &p["b"],
            DrainAction::WaitForCapacity {
                max: 1,
                draining: 1,
                ..
            }
        ),
        "{:?}",
        p["b"]
    );
    assert!(matches!(&p["c"], DrainAction::WaitForCapacity { .. }));

    // a is draining (as after an operator restart): it continues, the others wait.
    let states = vec![
        state("a", "Drain_Required", "Draining", json!({})),
        state("b", "Drain_Required", "Idle", json!({})),
    ];
    let p = plan(&states, &n, &[], false, &now());
    assert_eq!(p["a"], DrainAction::Continue { reboot: false });
    assert!(matches!(&p["b"], DrainAction::WaitForCapacity { .. }));
}

#[test]
fn pools_with_int_and_percent_and_a_node_in_two_pools() {
    let pools = vec![
        pool("rack1", json!({"rack": "1"}), json!(2)),
        pool("half", json!({"gpu": "yes"}), json!("50%")),
        pool("rack1-gpu", json!({"rack": "1", "gpu": "yes"}), json!(1)),
    ];
    let states: Vec<_> = ["r1", "r2", "r3", "g1", "g2", "g3", "g4", "both"]
        .iter()
        .map(|n| state(n, "Drain_Required", "Idle", json!({})))
        .collect();
    let n = nodes(&[
        ("r1", &[("rack", "1")], false),
        ("r2", &[("rack", "1")], false),
        ("r3", &[("rack", "1")], false),
        ("g1", &[("gpu", "yes")], false),
        ("g2", &[("gpu", "yes")], false),
        ("g3", &[("gpu", "yes")], false),
        ("g4", &[("gpu", "yes")], false),
        ("both", &[("rack", "1"), ("gpu", "yes")], false),
    ]);
    let p = plan(&states, &n, &pools, false, &now());
    let started = |prefix: &str| {
        p.iter()
            .filter(|(k, a)| k.starts_with(prefix) && matches!(a, DrainAction::Start { .. }))
            .count()
    };
    assert_eq!(started("r"), 2, "maxUnavailable 2");
    assert_eq!(started("g"), 2, "50% of 4");
    let DrainAction::PoolConflict(msg) = &p["both"] else {
        panic!("{:?}", p["both"])
    };
    assert!(msg.contains("half, rack1, rack1-gpu"), "{msg}");
}

#[test]
fn finish_uncordon_external_disabled_and_backoff() {
    let states = vec![
        state("done", "Idle", "DrainComplete", json!({})),
        state("withdrawn", "Idle", "Draining", json!({})),
        state("forgotten", "Idle", "Idle", json!({})),
        state(
            "external",
            "Drain_Required",
            "Idle",
            json!({"sriovnetwork.openshift.io/use-external-drainer": "true"}),
        ),
        state("waiting", "Drain_Required", "DrainComplete", json!({})),
        state(
            "later",
            "Drain_Required",
            "Idle",
            json!({"sriovnetwork.openshift.io/drain-retry-after": "2026-01-02T03:10:00Z"}),
        ),
    ];
    let n = nodes(&[
        ("done", &[], true),
        ("withdrawn", &[], true),
        ("forgotten", &[], true),
        ("external", &[], false),
        ("waiting", &[], true),
        ("later", &[], false),
    ]);
    let p = plan(&states, &n, &[], false, &now());
    assert_eq!(p["done"], DrainAction::Finish);
    assert_eq!(
        p["withdrawn"],
        DrainAction::Finish,
        "a request withdrawn mid-drain rolls back"
    );
    assert_eq!(
        p["forgotten"],
        DrainAction::Uncordon,
        "our cordon is never forgotten"
    );
    assert_eq!(p["external"], DrainAction::External);
    assert_eq!(p["waiting"], DrainAction::None, "the daemon applies");
    assert_eq!(p["later"], DrainAction::Backoff);
    let p = plan(&states[5..], &n, &[], true, &now());
    assert_eq!(p["later"], DrainAction::None, "disableDrain: no handshake");
}

fn pod(name: &str, resource: Option<&str>, daemonset: bool) -> Value {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {"nodeName": "a", "containers": [{"name": "c", "image": "x"}]},
        "status": {"phase": "Running"}});
    if let Some(r) = resource {
        p["spec"]["containers"][0]["resources"] = json!({"requests": {r: "1"}, "limits": {r: "1"}});
    }
    if daemonset {
        p["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "uid": "u"}]);
    }
    p
}

#[test]
fn only_pods_holding_the_nodes_resources_are_evicted() {
    let pods: Vec<Pod> = [
        pod("sriov", Some("openshift.io/intel_net"), false),
        pod("sriov-ds", Some("openshift.io/intel_net"), true),
        pod("other-resource", Some("nvidia.com/gpu"), false),
        pod("plain", None, false),
        pod("plain-ds", None, true),
    ]
    .into_iter()
    .map(|p| serde_json::from_value(p).unwrap())
    .collect();
    let res = vec!["openshift.io/intel_net".to_string()];
    let names = |v: Vec<&Pod>| {
        v.iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(pods_to_evict(&pods, &res, false)),
        ["sriov", "sriov-ds"]
    );
    assert_eq!(
        names(pods_to_evict(&pods, &res, true)),
        ["sriov", "sriov-ds", "other-resource", "plain"]
    );
}

#[tokio::test]
async fn drain_start_step_with_pdb_then_complete_and_finish() {
    let settings = Settings::default();
    let (client, mut api) = pair();
    let node: k8s_openapi::api::core::v1::Node =
        serde_json::from_value(json!({"metadata": {"name": "a"}, "spec": {}})).unwrap();
    let s2 = settings.clone();
    let c2 = client.clone();
    let t = tokio::spawn(async move { start(&c2, &s2, &node, &now()).await.unwrap() });
    let r = api.expect("PATCH", &format!("{STATES}/a")).await;
    assert_eq!(
        r.body["metadata"]["annotations"]["sriovnetwork.openshift.io/current-state"],
        "Draining"
    );
    assert_eq!(
        r.body["metadata"]["annotations"]["sriovnetwork.openshift.io/drain-started"],
        "2026-01-02T03:04:05Z"
    );
    r.ok(serde_json::to_value(state("a", "Drain_Required", "Draining", json!({}))).unwrap());
    let r = api.expect("PATCH", "/api/v1/nodes/a").await;
    assert_eq!(r.body["spec"]["unschedulable"], true);
    assert_eq!(
        r.body["metadata"]["annotations"]["sriovnetwork.openshift.io/cordoned-by-operator"],
        "true"
    );
    r.ok(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "a"}}));
    t.await.unwrap();

    // A step: the PDB refuses the eviction (429): pending.
    let draining = state(
        "a",
        "Drain_Required",
        "Draining",
        json!({"sriovnetwork.openshift.io/drain-started": "2026-01-02T03:04:05Z"}),
    );
    let pods = json!({"apiVersion": "v1", "kind": "PodList", "metadata": {},
        "items": [pod("sriov", Some("openshift.io/intel_net"), false), pod("plain", None, false)]});
    let run_step = |at: Time| {
        let (c, s, d) = (client.clone(), settings.clone(), draining.clone());
        tokio::spawn(async move { step(&c, &s, &d, false, &at).await.unwrap() })
    };
    let t = run_step(now());
    let r = api.expect("GET", "/api/v1/pods").await;
    assert_eq!(r.param("fieldSelector").as_deref(), Some("spec.nodeName=a"));
    r.ok(pods.clone());
    let r = api
        .expect("POST", "/api/v1/namespaces/apps/pods/sriov/eviction")
        .await;
    assert_eq!(r.body["metadata"]["name"], "sriov", "{r:?}");
    r.reply(429, json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "TooManyRequests",
        "message": "Cannot evict pod as it would violate the pod's disruption budget.", "code": 429}));
    assert_eq!(
        t.await.unwrap(),
        DrainProgress::Pending {
            blocked: vec!["apps/sriov".into()]
        }
    );

    // Still blocked after the timeout: abandoned, uncordoned, retried later.
    let late = Time("2026-01-02T03:10:00Z".parse().unwrap());
    let t = run_step(late);
    api.expect("GET", "/api/v1/pods").await.ok(pods.clone());
    api.expect("POST", "/api/v1/namespaces/apps/pods/sriov/eviction").await.reply(
        429,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "TooManyRequests", "code": 429}),
    );
    let r = api.expect("PATCH", &format!("{STATES}/a")).await;
    assert_eq!(
        r.body["metadata"]["annotations"]["sriovnetwork.openshift.io/current-state"],
        "Idle"
    );
    assert_eq!(
        r.body["metadata"]["annotations"]["sriovnetwork.openshift.io/drain-retry-after"],
        "2026-01-02T03:15:00Z"
    );
    r.ok(serde_json::to_value(state("a", "Drain_Required", "Idle", json!({}))).unwrap());
    api.expect("GET", "/api/v1/nodes/a").await.ok(json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "a", "annotations": {"sriovnetwork.openshift.io/cordoned-by-operator": "true"}},
        "spec": {"unschedulable": true}}));
    let r = api.expect("PATCH", "/api/v1/nodes/a").await;
    assert_eq!(r.body["spec"]["unschedulable"], Value::Null);
    r.ok(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "a"}}));
    let DrainProgress::Abandoned { reason } = t.await.unwrap() else {
        panic!()
    };
    assert!(
        reason.contains("PodDisruptionBudgets") && reason.contains("apps/sriov"),
        "{reason}"
    );

    // The pod is gone: DrainComplete.
    let t = run_step(now());
    api.expect("GET", "/api/v1/pods").await.ok(
        json!({"apiVersion": "v1", "kind": "PodList", "metadata": {},
        "items": [pod("plain", None, false)]}),
    );
    let r = api.expect("PATCH", &format!("{STATES}/a")).await;
    assert_eq!(
        r.body["metadata"]["annotations"]["sriovnetwork.openshift.io/current-state"],
        "DrainComplete"
    );
    r.ok(serde_json::to_value(state("a", "Drain_Required", "DrainComplete", json!({}))).unwrap());
    assert_eq!(t.await.unwrap(), DrainProgress::Complete);

    // The daemon is back to Idle: uncordon, Idle.
    let (c, s) = (client.clone(), settings.clone());
    let t = tokio::spawn(async move { finish(&c, &s, "a", true).await.unwrap() });
    let r = api.expect("PATCH", "/api/v1/nodes/a").await;
    assert_eq!(
        r.body["metadata"]["annotations"]["sriovnetwork.openshift.io/cordoned-by-operator"],
        Value::Null
    );
    r.ok(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "a"}}));
    let r = api.expect("PATCH", &format!("{STATES}/a")).await;
    assert_eq!(
        r.body["metadata"]["annotations"]["sriovnetwork.openshift.io/current-state"],
        "Idle"
    );
    r.ok(serde_json::to_value(state("a", "Idle", "Idle", json!({}))).unwrap());
    t.await.unwrap();
    api.expect_silence(Duration::from_millis(50)).await;
    api.check_rbac();
}
