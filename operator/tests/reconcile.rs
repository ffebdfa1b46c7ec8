//! Reconcile scenarios against an API-server stand-in: server-side apply
//! writes (field manager, force), no-op detection, conditions, finalizers,
//! stale node states, the operator config's DaemonSets, and RBAC.

mod api_mock;

use std::collections::BTreeMap;
use std::time::Duration;

use api_mock::{ApiServer, NS, pair};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Client;
use serde_json::{Value, json};
use sriov_crds::nic_ids::NicIdList;
use sriov_crds::{
    SriovNetwork, SriovNetworkNodePolicy, SriovNetworkNodeState, SriovOperatorConfig,
};
use sriov_operator::controllers::networks::reconcile_network;
use sriov_operator::controllers::nodes::{
    StaleOutcome, reconcile_config_map, reconcile_node, reconcile_policy_status,
    reconcile_stale_state,
};
use sriov_operator::controllers::operator_config::{reconcile_operator_config, remove_deployed};
use sriov_operator::render::nad::NetworkView;
use sriov_operator::render::network::NetworkCluster;
use sriov_operator::render::node::NodeContext;
use sriov_operator::render::policy_status::{PolicyTally, tally_node};
use sriov_operator::settings::Settings;

const STATES: &str =
    "/apis/sriovnetwork.openshift.io/v1/namespaces/sriov-network-operator/sriovnetworknodestates";
const POLICIES: &str =
    "/apis/sriovnetwork.openshift.io/v1/namespaces/sriov-network-operator/sriovnetworknodepolicies";
const NODES: &str = "/api/v1/nodes";

fn settings() -> Settings {
    Settings::from_vars(&BTreeMap::from([
        ("RESOURCE_PREFIX".to_string(), "openshift.io".to_string()),
        (
            "STALE_NODE_STATE_CLEANUP_DELAY_MINUTES".to_string(),
            "30".to_string(),
        ),
    ]))
}

fn now() -> Time {
    Time("2026-01-02T03:04:05Z".parse().unwrap())
}

fn config() -> SriovOperatorConfig {
    serde_json::from_value(json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovOperatorConfig",
        "metadata": {"name": "default", "namespace": NS, "uid": "cfg-uid", "generation": 1},
        "spec": {"configDaemonNodeSelector": {"node-role.kubernetes.io/worker": ""}}
    }))
    .unwrap()
}

fn node(labels: Value) -> Node {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "worker-0", "labels": labels}}))
    .unwrap()
}

fn policy() -> SriovNetworkNodePolicy {
    serde_json::from_value(json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodePolicy",
        "metadata": {"name": "p", "namespace": NS, "generation": 2},
        "spec": {"resourceName": "r", "numVfs": 4, "nodeSelector": {"sriov": "yes"},
                 "nicSelector": {"pfNames": ["ens1f0"]}, "deviceType": "netdevice"}
    }))
    .unwrap()
}

fn state(spec: Value, sync: &str) -> SriovNetworkNodeState {
    serde_json::from_value(json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeState",
        "metadata": {"name": "worker-0", "namespace": NS, "resourceVersion": "7",
            "ownerReferences": [{"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovOperatorConfig",
                "name": "default", "uid": "cfg-uid", "controller": true, "blockOwnerDeletion": true}]},
        "spec": spec,
        "status": {"syncStatus": sync, "interfaces": [
            {"name": "ens1f0", "pciAddress": "0000:3b:00.0", "vendor": "8086", "deviceID": "158b", "totalvfs": 64}
        ]}
    }))
    .unwrap()
}

fn applied_spec() -> Value {
    json!({"interfaces": [{"pciAddress": "0000:3b:00.0", "name": "ens1f0", "numVfs": 4,
        "vfGroups": [{"resourceName": "r", "deviceType": "netdevice", "vfRange": "0-3", "policyName": "p"}]}]})
}

/// `worker-0` (label `sriov: yes`) rendered for [`policy`], its node
/// state `st`.
fn render_worker0(st: &SriovNetworkNodeState) -> sriov_operator::render::node::NodeRender {
    let policies = vec![policy()];
    let nics = NicIdList::builtin();
    let ctx = NodeContext {
        policies: &policies,
        pools: &[],
        nics: &nics,
    };
    let labels = BTreeMap::from([("sriov".to_string(), "yes".to_string())]);
    sriov_operator::render::node::render_node(ctx, "worker-0", &labels, Some(st))
}

fn assert_apply(r: &api_mock::Req) {
    assert_eq!(r.content_type, "application/apply-patch+yaml", "{r:?}");
    assert_eq!(
        r.param("fieldManager").as_deref(),
        Some("sriov-network-operator"),
        "{r:?}"
    );
    assert_eq!(r.param("force").as_deref(), Some("true"), "{r:?}");
}

async fn run<T: Send + 'static>(
    f: impl FnOnce(Client) -> tokio::task::JoinHandle<T>,
    serve: impl AsyncFnOnce(&mut ApiServer),
) -> (T, ApiServer) {
    let (client, mut api) = pair();
    let task = f(client);
    serve(&mut api).await;
    api.expect_silence(Duration::from_millis(50)).await;
    (task.await.unwrap(), api)
}

#[tokio::test]
async fn node_state_and_label_applied_then_no_op() {
    let policies = vec![policy()];
    let labels = json!({"node-role.kubernetes.io/worker": "", "sriov": "yes"});
    let st = state(json!({}), "InProgress");
    let (res, api) = run(
        |c| {
            let (policies, st) = (policies.clone(), st.clone());
            let n = node(labels.clone());
            tokio::spawn(async move {
                let nics = NicIdList::builtin();
                let ctx = NodeContext {
                    policies: &policies,
                    pools: &[],
                    nics: &nics,
                };
                reconcile_node(&c, &settings(), &config(), ctx, &n, Some(&st))
                    .await
                    .unwrap()
                    .1
            })
        },
        async |api| {
            let r = api.expect("PATCH", &format!("{STATES}/worker-0")).await;
            assert_apply(&r);
            assert_eq!(r.body["kind"], "SriovNetworkNodeState");
            assert_eq!(r.body["spec"], applied_spec());
            assert_eq!(r.body["metadata"]["ownerReferences"][0]["uid"], "cfg-uid");
            assert!(
                r.body.get("status").is_none(),
                "the operator never writes the daemon's status"
            );
            let body = r.body.clone();
            r.ok(body);
            let r = api.expect("PATCH", &format!("{NODES}/worker-0")).await;
            assert_apply(&r);
            assert_eq!(
                r.body["metadata"]["labels"],
                json!({"sriovnetwork.openshift.io/device-plugin": "Enabled"})
            );
            r.ok(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-0"}}));
        },
    )
    .await;
    assert!(res.state && res.label);

    // Same spec, label present: nothing is written.
    let st = state(applied_spec(), "Succeeded");
    let labels = json!({"node-role.kubernetes.io/worker": "", "sriov": "yes",
                        "sriovnetwork.openshift.io/device-plugin": "Enabled"});
    let (res, api2) = run(
        |c| {
            let policies = policies.clone();
            let n = node(labels.clone());
            tokio::spawn(async move {
                let nics = NicIdList::builtin();
                let ctx = NodeContext {
                    policies: &policies,
                    pools: &[],
                    nics: &nics,
                };
                reconcile_node(&c, &settings(), &config(), ctx, &n, Some(&st))
                    .await
                    .unwrap()
                    .1
            })
        },
        async |_| {},
    )
    .await;
    assert!(!res.state && !res.label);
    assert!(api2.seen.is_empty());
    api.check_rbac();
}

#[tokio::test]
async fn config_map_written_only_when_data_changes() {
    let st = state(applied_spec(), "Succeeded");
    let render = render_worker0(&st);
    let want = r#"{"resourceList":[{"resourceName":"r","selectors":{"pfNames":["ens1f0"],"IsRdma":false,"NeedVhostNet":false},"SelectorObj":null}]}"#;
    assert_eq!(render.device_plugin_json, want);
    let r1 = render.clone();
    let (wrote, api) = run(
        |c| {
            tokio::spawn(async move {
                reconcile_config_map(&c, &settings(), &config(), None, [&r1])
                    .await
                    .unwrap()
            })
        },
        async |api| {
            let r = api
                .expect(
                    "PATCH",
                    "/api/v1/namespaces/sriov-network-operator/configmaps/device-plugin-config",
                )
                .await;
            assert_apply(&r);
            assert_eq!(r.body["data"], json!({"worker-0": want}));
            assert_eq!(
                r.body["metadata"]["ownerReferences"][0]["kind"],
                "SriovOperatorConfig"
            );
            let b = r.body.clone();
            r.ok(b);
        },
    )
    .await;
    assert!(wrote);
    api.check_rbac();
    let existing: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "device-plugin-config"},
        "data": {"worker-0": want}}))
        .unwrap();
    let (wrote, _) = run(
        |c| {
            tokio::spawn(async move {
                reconcile_config_map(&c, &settings(), &config(), Some(&existing), [&render])
                    .await
                    .unwrap()
            })
        },
        async |_| {},
    )
    .await;
    assert!(!wrote);
}

#[tokio::test]
async fn policy_status_applied_to_the_status_subresource_once() {
    let st = state(applied_spec(), "Succeeded");
    let render = render_worker0(&st);
    let mut tallies: BTreeMap<String, PolicyTally> = BTreeMap::new();
    tally_node(&mut tallies, &render, Some(&st));
    let t = tallies["p"].clone();
    let t2 = t.clone();
    let (status, api) = run(
        |c| {
            tokio::spawn(async move {
                reconcile_policy_status(&c, &policy(), Some(&t), &now())
                    .await
                    .unwrap()
            })
        },
        async |api| {
            let r = api.expect("PATCH", &format!("{POLICIES}/p/status")).await;
            assert_apply(&r);
            assert_eq!(r.body["status"]["matchedNodes"], 1);
            assert_eq!(r.body["status"]["appliedNodes"], 1);
            let ready = &r.body["status"]["conditions"][0];
            assert_eq!(
                (
                    ready["type"].as_str(),
                    ready["status"].as_str(),
                    ready["reason"].as_str()
                ),
                (Some("Ready"), Some("True"), Some("Applied"))
            );
            assert_eq!(ready["observedGeneration"], 2);
            let mut b = r.body.clone();
            b["spec"] =
                json!({"resourceName": "r", "numVfs": 4, "nodeSelector": {}, "nicSelector": {}});
            r.ok(b);
        },
    )
    .await;
    assert!(status);
    api.check_rbac();
    // A policy that already carries this status: no write (time ignored).
    let mut p = policy();
    p.status = Some(sriov_operator::render::policy_status::policy_status(
        &p,
        Some(&t2),
        &now(),
    ));
    let later = Time("2026-01-02T04:00:00Z".parse().unwrap());
    let (status, _) = run(
        |c| {
            tokio::spawn(async move {
                reconcile_policy_status(&c, &p, Some(&t2), &later)
                    .await
                    .unwrap()
            })
        },
        async |_| {},
    )
    .await;
    assert!(!status);
}

#[tokio::test]
async fn stale_node_state_marked_then_deleted() {
    let st = state(json!({}), "Succeeded");
    let labelled = node(json!({"sriovnetwork.openshift.io/device-plugin": "Enabled"}));
    let (out, api) = run(
        |c| {
            let st = st.clone();
            tokio::spawn(async move { reconcile_stale_state(&c, &settings(), &st, Some(&labelled), &now()).await.unwrap() })
        },
        async |api| {
            let r = api.expect("PATCH", &format!("{NODES}/worker-0")).await;
            assert_eq!(r.content_type, "application/merge-patch+json");
            assert_eq!(r.body, json!({"metadata": {"labels": {"sriovnetwork.openshift.io/device-plugin": null}}}));
            r.ok(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-0"}}));
            let r = api.expect("PATCH", &format!("{STATES}/worker-0")).await;
            assert_eq!(
                r.body,
                json!({"metadata": {"annotations": {"sriovnetwork.openshift.io/keep-state-until": "2026-01-02T03:34:05Z"}}})
            );
            let b = r.body.clone();
            r.echo(json!({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeState",
                "metadata": {"name": "worker-0", "namespace": NS}, "spec": {}}).as_object().map(|_| {
                    let mut v = json!({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeState",
                        "metadata": {"name": "worker-0", "namespace": NS}, "spec": {}});
                    api_mock::merge(&mut v, &b);
                    v
                }).unwrap());
        },
    )
    .await;
    assert_eq!(out, StaleOutcome::Marked(Duration::from_secs(1800)));
    api.check_rbac();

    let mut marked = st.clone();
    marked.metadata.annotations = Some(BTreeMap::from([(
        "sriovnetwork.openshift.io/keep-state-until".to_string(),
        "2026-01-02T03:34:05Z".to_string(),
    )]));
    let m2 = marked.clone();
    let (out, _) = run(
        |c| {
            tokio::spawn(async move {
                reconcile_stale_state(&c, &settings(), &m2, None, &now())
                    .await
                    .unwrap()
            })
        },
        async |_| {},
    )
    .await;
    assert_eq!(out, StaleOutcome::Waiting(Duration::from_secs(1800)));
    let after = Time("2026-01-02T03:34:06Z".parse().unwrap());
    let (out, api) = run(
        |c| {
            tokio::spawn(async move {
                reconcile_stale_state(&c, &settings(), &marked, None, &after)
                    .await
                    .unwrap()
            })
        },
        async |api| {
            let r = api.expect("DELETE", &format!("{STATES}/worker-0")).await;
            r.ok(json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}));
        },
    )
    .await;
    assert_eq!(out, StaleOutcome::Deleted);
    api.check_rbac();
}

fn network(ns: &str, spec: Value, extra_meta: Value) -> SriovNetwork {
    let mut meta = json!({"name": "net1", "namespace": ns, "uid": "net-uid", "generation": 1, "resourceVersion": "5"});
    api_mock::merge(&mut meta, &extra_meta);
    serde_json::from_value(
        json!({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetwork",
        "metadata": meta, "spec": spec}),
    )
    .unwrap()
}

#[tokio::test]
async fn cross_namespace_network_gets_finalizer_nad_annotation_and_ready() {
    let net = network(
        NS,
        json!({"resourceName": "r", "networkNamespace": "apps"}),
        json!({}),
    );
    let (w, api) = run(
        |c| {
            let net = net.clone();
            tokio::spawn(async move {
                let view = NetworkView::sriov(&net);
                let cluster = NetworkCluster { namespace_exists: true, existing: None, last_namespace: None };
                reconcile_network(&c, &settings(), &net, &view, &[], &cluster, &now()).await.unwrap()
            })
        },
        async |api| {
            let path = format!("/apis/sriovnetwork.openshift.io/v1/namespaces/{NS}/sriovnetworks/net1");
            let r = api.expect("PATCH", &path).await;
            assert_eq!(r.content_type, "application/merge-patch+json");
            assert_eq!(r.body["metadata"]["finalizers"], json!(["netattdef.finalizers.sriovnetwork.openshift.io"]));
            assert_eq!(r.body["metadata"]["resourceVersion"], "5", "optimistic lock on the list");
            r.ok(json!({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetwork",
                "metadata": {"name": "net1", "namespace": NS}, "spec": {"resourceName": "r"}}));
            let r = api
                .expect("PATCH", "/apis/k8s.cni.cncf.io/v1/namespaces/apps/network-attachment-definitions/net1")
                .await;
            assert_apply(&r);
            assert_eq!(r.body["metadata"]["annotations"]["k8s.v1.cni.cncf.io/resourceName"], "openshift.io/r");
            assert!(r.body["metadata"].get("ownerReferences").is_none());
            let b = r.body.clone();
            r.ok(b);
            let r = api.expect("PATCH", &path).await;
            assert_eq!(
                r.body,
                json!({"metadata": {"annotations": {"operator.sriovnetwork.openshift.io/last-network-namespace": "apps"}}})
            );
            r.ok(json!({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetwork",
                "metadata": {"name": "net1", "namespace": NS}, "spec": {"resourceName": "r"}}));
            let r = api.expect("PATCH", &format!("{path}/status")).await;
            assert_apply(&r);
            let c = &r.body["status"]["conditions"][0];
            assert_eq!((c["type"].as_str(), c["status"].as_str(), c["reason"].as_str()),
                (Some("Ready"), Some("True"), Some("NetworkReady")));
            let mut b = r.body.clone();
            b["spec"] = json!({"resourceName": "r"});
            r.ok(b);
        },
    )
    .await;
    assert!(w.finalizer && w.nad && w.status && !w.deleted_nad);
    api.check_rbac();
}

#[tokio::test]
async fn network_namespace_change_deletes_old_nad_and_deletion_removes_finalizer() {
    let net = network(
        NS,
        json!({"resourceName": "r", "networkNamespace": "new"}),
        json!({
        "finalizers": ["netattdef.finalizers.sriovnetwork.openshift.io"],
        "annotations": {"operator.sriovnetwork.openshift.io/last-network-namespace": "old"}}),
    );
    let (w, api) = run(
        |c| {
            let net = net.clone();
            tokio::spawn(async move {
                let view = NetworkView::sriov(&net);
                let cluster = NetworkCluster { namespace_exists: true, existing: None, last_namespace: Some("old") };
                let ready = net.status.clone().unwrap_or_default().conditions;
                reconcile_network(&c, &settings(), &net, &view, &ready, &cluster, &now()).await.unwrap()
            })
        },
        async |api| {
            let r = api
                .expect("DELETE", "/apis/k8s.cni.cncf.io/v1/namespaces/old/network-attachment-definitions/net1")
                .await;
            r.not_found();
            let r = api
                .expect("PATCH", "/apis/k8s.cni.cncf.io/v1/namespaces/new/network-attachment-definitions/net1")
                .await;
            let b = r.body.clone();
            r.ok(b);
            let path = format!("/apis/sriovnetwork.openshift.io/v1/namespaces/{NS}/sriovnetworks/net1");
            let r = api.expect("PATCH", &path).await;
            assert_eq!(r.body["metadata"]["annotations"]["operator.sriovnetwork.openshift.io/last-network-namespace"], "new");
            r.ok(json!({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetwork",
                "metadata": {"name": "net1", "namespace": NS}, "spec": {"resourceName": "r"}}));
            let r = api.expect("PATCH", &format!("{path}/status")).await;
            let mut b = r.body.clone();
            b["spec"] = json!({"resourceName": "r"});
            r.ok(b);
        },
    )
    .await;
    assert!(w.deleted_nad && w.nad && !w.finalizer);
    api.check_rbac();

    let deleting = network(
        NS,
        json!({"resourceName": "r", "networkNamespace": "new"}),
        json!({
        "finalizers": ["other", "netattdef.finalizers.sriovnetwork.openshift.io"],
        "deletionTimestamp": "2026-01-02T03:00:00Z"}),
    );
    let (w, api) = run(
        |c| {
            tokio::spawn(async move {
                let view = NetworkView::sriov(&deleting);
                let cluster = NetworkCluster {
                    namespace_exists: true,
                    existing: None,
                    last_namespace: None,
                };
                reconcile_network(&c, &settings(), &deleting, &view, &[], &cluster, &now())
                    .await
                    .unwrap()
            })
        },
        async |api| {
            let r = api
                .expect(
                    "DELETE",
                    "/apis/k8s.cni.cncf.io/v1/namespaces/new/network-attachment-definitions/net1",
                )
                .await;
            r.ok(json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}));
            let r = api
                .expect(
                    "PATCH",
                    &format!(
                        "/apis/sriovnetwork.openshift.io/v1/namespaces/{NS}/sriovnetworks/net1"
                    ),
                )
                .await;
            assert_eq!(r.body["metadata"]["finalizers"], json!(["other"]));
            r.ok(
                json!({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetwork",
                "metadata": {"name": "net1", "namespace": NS}, "spec": {"resourceName": "r"}}),
            );
        },
    )
    .await;
    assert!(w.deleted_nad && w.finalizer && !w.nad);
    api.check_rbac();
}

#[tokio::test]
async fn foreign_nad_is_not_overwritten_and_missing_namespace_waits() {
    let net = network("apps", json!({"resourceName": "r"}), json!({}));
    let foreign: sriov_operator::nad::NetworkAttachmentDefinition = serde_json::from_value(json!({
        "metadata": {"name": "net1", "namespace": "apps",
            "annotations": {"sriovnetwork.openshift.io/owner-ref": "SriovNetwork.sriovnetwork.openshift.io/x/net1"}},
        "spec": {"config": "{}"}}))
    .unwrap();
    let (w, api) = run(
        |c| {
            let net = net.clone();
            tokio::spawn(async move {
                let view = NetworkView::sriov(&net);
                let cluster = NetworkCluster {
                    namespace_exists: true,
                    existing: Some(&foreign),
                    last_namespace: None,
                };
                reconcile_network(&c, &settings(), &net, &view, &[], &cluster, &now())
                    .await
                    .unwrap()
            })
        },
        async |api| {
            let r = api
                .expect(
                    "PATCH",
                    "/apis/sriovnetwork.openshift.io/v1/namespaces/apps/sriovnetworks/net1/status",
                )
                .await;
            let c = &r.body["status"]["conditions"][0];
            assert_eq!(
                (c["status"].as_str(), c["reason"].as_str()),
                (Some("False"), Some("NetworkAttachmentDefinitionInvalid"))
            );
            let mut b = r.body.clone();
            b["spec"] = json!({"resourceName": "r"});
            r.ok(b);
        },
    )
    .await;
    assert!(
        !w.nad && !w.finalizer,
        "no finalizer outside the operator namespace, no NAD write"
    );
    api.check_rbac();

    let waiting = network(
        NS,
        json!({"resourceName": "r", "networkNamespace": "later"}),
        json!({
        "finalizers": ["netattdef.finalizers.sriovnetwork.openshift.io"]}),
    );
    let (w, _) = run(
        |c| tokio::spawn(async move {
            let view = NetworkView::sriov(&waiting);
            let cluster = NetworkCluster { namespace_exists: false, existing: None, last_namespace: None };
            reconcile_network(&c, &settings(), &waiting, &view, &[], &cluster, &now()).await.unwrap()
        }),
        async |api| {
            let r = api.expect("PATCH", &format!("/apis/sriovnetwork.openshift.io/v1/namespaces/{NS}/sriovnetworks/net1/status")).await;
            let c = &r.body["status"]["conditions"][0];
            assert_eq!(c["reason"], "NamespaceNotFound");
            let mut b = r.body.clone();
            b["spec"] = json!({"resourceName": "r"});
            r.ok(b);
        },
    )
    .await;
    assert!(!w.nad);
}

#[tokio::test]
async fn operator_config_daemonsets_applied_once_and_removed_with_it() {
    let (n, api) = run(
        |c| tokio::spawn(async move { reconcile_operator_config(&c, &settings(), &config(), &[], &now()).await.unwrap() }),
        async |api| {
            for name in ["sriov-network-config-daemon", "sriov-device-plugin", "sriov-cni"] {
                let r = api
                    .expect("PATCH", &format!("/apis/apps/v1/namespaces/{NS}/daemonsets/{name}"))
                    .await;
                assert_apply(&r);
                let b = r.body.clone();
                r.ok(b);
            }
            let r = api
                .expect("PATCH", &format!("/apis/sriovnetwork.openshift.io/v1/namespaces/{NS}/sriovoperatorconfigs/default/status"))
                .await;
            let c = &r.body["status"]["conditions"][0];
            assert_eq!((c["status"].as_str(), c["reason"].as_str()), (Some("True"), Some("OperatorConfigReady")));
            let mut b = r.body.clone();
            b["spec"] = json!({});
            r.ok(b);
        },
    )
    .await;
    assert_eq!(n, 3);
    api.check_rbac();

    let existing: Vec<DaemonSet> =
        sriov_operator::render::daemonsets::render_daemonsets(&config(), &settings());
    let mut cfg = config();
    let mut conditions = vec![];
    sriov_crds::conditions::set_condition(
        &mut conditions,
        "Ready",
        true,
        "OperatorConfigReady",
        "the config daemon, device plugin and CNI DaemonSets are applied",
        Some(1),
        now(),
    );
    cfg.status = Some(sriov_crds::SriovOperatorConfigStatus {
        conditions,
        ..Default::default()
    });
    let e2 = existing.clone();
    let (n, _) = run(
        |c| {
            tokio::spawn(async move {
                reconcile_operator_config(&c, &settings(), &cfg, &e2, &now())
                    .await
                    .unwrap()
            })
        },
        async |_| {},
    )
    .await;
    assert_eq!(n, 0, "unchanged DaemonSets are not written");

    let (n, api) = run(
        |c| {
            tokio::spawn(async move {
                remove_deployed(&c, &settings(), &existing, false)
                    .await
                    .unwrap()
            })
        },
        async |api| {
            for name in [
                "sriov-network-config-daemon",
                "sriov-device-plugin",
                "sriov-cni",
            ] {
                let r = api
                    .expect(
                        "DELETE",
                        &format!("/apis/apps/v1/namespaces/{NS}/daemonsets/{name}"),
                    )
                    .await;
                r.ok(json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}));
            }
        },
    )
    .await;
    assert_eq!(n, 3);
    api.check_rbac();
}

// ---------------------------------------------------------------------------
// The whole loop (`controllers::run`) against an in-memory API server:
// watches with deletes, retries with backoff, the default operator config,
// Events, the PoolConflict condition, and RBAC for every request it made
// (lists and watches included).

use api_mock::cluster::{Cluster, Seen, cluster};
use sriov_operator::controllers::run::{Key, KeyTracker, Tuning, run_tuned};

const LONG: Duration = Duration::from_secs(10);

fn fast() -> Tuning {
    Tuning {
        resync: Duration::from_secs(3600),
        batch: Duration::from_millis(10),
        retry_base: Duration::from_millis(200),
        retry_cap: Duration::from_secs(2),
        drain_poll: Duration::from_millis(100),
        create_default_config: false,
        instance: Some("operator-test".into()),
    }
}

struct Running {
    cluster: Cluster,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Loads `objects` (resource, object) and starts the operator loop.
fn start(objects: Vec<(&str, Value)>, settings: Settings, tuning: Tuning) -> Running {
    let (client, cluster) = cluster();
    for (res, o) in objects {
        cluster.put(res, o);
    }
    let metrics = std::sync::Arc::new(sriov_operator::metrics::Metrics::new());
    let task = tokio::spawn(async move {
        run_tuned(client, settings, metrics, tuning).await.unwrap();
    });
    Running { cluster, task }
}

fn lane_config() -> Value {
    json!({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovOperatorConfig",
        "metadata": {"name": "default", "namespace": NS, "generation": 1},
        "spec": {"configDaemonNodeSelector": {"sriov": "yes"}}})
}

fn worker_node() -> Value {
    json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "worker-0", "labels": {"sriov": "yes", "rack": "1", "gpu": "yes"}}})
}

fn reported_state() -> Value {
    json!({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeState",
        "metadata": {"name": "worker-0", "namespace": NS},
        "spec": {},
        "status": {"syncStatus": "Succeeded", "interfaces": [
            {"name": "ens1f0", "pciAddress": "0000:3b:00.0", "vendor": "8086", "deviceID": "158b", "totalvfs": 64}]}})
}

fn policy_json(name: &str, pf: &str, num_vfs: i32, priority: i32) -> Value {
    json!({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodePolicy",
        "metadata": {"name": name, "namespace": NS, "generation": 1},
        "spec": {"resourceName": name, "numVfs": num_vfs, "priority": priority,
                 "nodeSelector": {"sriov": "yes"},
                 "nicSelector": {"pfNames": [pf]}, "deviceType": "netdevice"}})
}

fn pool_json(name: &str, label: &str, rdma: &str) -> Value {
    json!({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkPoolConfig",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"nodeSelector": {"matchLabels": {label: if label == "rack" {"1"} else {"yes"}}},
                 "maxUnavailable": 1, "rdmaMode": rdma}})
}

fn spec_of(c: &Cluster) -> Value {
    c.get("sriovnetworknodestates", NS, "worker-0")
        .map(|s| s["spec"].clone())
        .unwrap_or(Value::Null)
}

fn num_vfs(c: &Cluster) -> i64 {
    spec_of(c)["interfaces"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(|i| i["numVfs"].as_i64())
        .unwrap_or(0)
}

/// Events the operator published (created or, for a repeat, patched) with `reason`.
fn events(c: &Cluster, reason: &str) -> Vec<Seen> {
    c.seen()
        .into_iter()
        .filter(|s| s.path.contains("/apis/events.k8s.io/v1/") && s.body["reason"] == reason)
        .collect()
}

#[tokio::test]
async fn deleted_policy_pool_and_config_re_render_at_once() {
    let run = start(
        vec![
            ("nodes", worker_node()),
            ("sriovnetworknodestates", reported_state()),
            ("sriovoperatorconfigs", lane_config()),
            (
                "sriovnetworknodepolicies",
                policy_json("p", "ens1f0", 4, 99),
            ),
            (
                "sriovnetworkpoolconfigs",
                pool_json("rack1", "rack", "exclusive"),
            ),
        ],
        settings(),
        fast(),
    );
    let c = &run.cluster;
    c.wait_for("the policy rendered", LONG, |c| num_vfs(c) == 4)
        .await;
    assert_eq!(spec_of(c)["system"]["rdmaMode"], "exclusive");
    let cm = c.get("configmaps", NS, "device-plugin-config").unwrap();
    assert!(
        cm["data"]["worker-0"]
            .as_str()
            .unwrap()
            .contains("\"resourceName\":\"p\"")
    );

    // kubectl delete sriovnetworknodepolicy p: the node state drops the PF
    // well before any resync (the test's resync is an hour away).
    let t = std::time::Instant::now();
    c.delete("sriovnetworknodepolicies", NS, "p");
    c.wait_for("the interface dropped", Duration::from_secs(3), |c| {
        spec_of(c)
            .get("interfaces")
            .is_none_or(|i| i.as_array().is_some_and(Vec::is_empty))
    })
    .await;
    c.wait_for("the ConfigMap emptied", Duration::from_secs(3), |c| {
        c.get("configmaps", NS, "device-plugin-config").unwrap()["data"]["worker-0"]
            == r#"{"resourceList":null}"#
    })
    .await;
    c.wait_for("the label Disabled", Duration::from_secs(3), |c| {
        c.get("nodes", "", "worker-0").unwrap()["metadata"]["labels"]
            ["sriovnetwork.openshift.io/device-plugin"]
            == "Disabled"
    })
    .await;
    eprintln!("policy delete → node state spec: {:?}", t.elapsed());

    // The pool config's deletion takes its rdmaMode away.
    c.delete("sriovnetworkpoolconfigs", NS, "rack1");
    c.wait_for("rdmaMode dropped", Duration::from_secs(3), |c| {
        spec_of(c)
            .get("system")
            .is_none_or(|s| s.get("rdmaMode").is_none())
    })
    .await;
    // Nothing left: the apply says `interfaces: []` (a spec without any
    // field would be stored as null and refused by the API server).
    let last = c
        .seen()
        .into_iter()
        .rfind(|s| s.method == "PATCH" && s.path.ends_with("/sriovnetworknodestates/worker-0"))
        .unwrap();
    assert_eq!(
        last.body["spec"],
        json!({"interfaces": []}),
        "{}",
        last.body
    );

    // The operator config's deletion removes the DaemonSets it deployed.
    c.wait_for("the DaemonSets", LONG, |c| {
        c.get("daemonsets", NS, "sriov-network-config-daemon")
            .is_some()
    })
    .await;
    c.delete("sriovoperatorconfigs", NS, "default");
    c.wait_for("the DaemonSets removed", Duration::from_secs(3), |c| {
        [
            "sriov-network-config-daemon",
            "sriov-device-plugin",
            "sriov-cni",
        ]
        .iter()
        .all(|d| c.get("daemonsets", NS, d).is_none())
    })
    .await;

    // Node-state writes are announced on the node state.
    let ev = events(c, "NodeStateUpdated");
    assert!(!ev.is_empty(), "no NodeStateUpdated event");
    let e = &ev[0];
    assert_eq!(e.method, "POST");
    assert!(
        e.path.ends_with(&format!("/namespaces/{NS}/events")),
        "{}",
        e.path
    );
    assert_eq!(e.body["regarding"]["kind"], "SriovNetworkNodeState");
    assert_eq!(e.body["regarding"]["name"], "worker-0");
    assert_eq!(e.body["type"], "Normal");
    assert_eq!(e.body["reportingController"], "sriov-network-operator");
    assert_eq!(e.body["reportingInstance"], "operator-test");
    c.check_rbac();
}

#[test]
fn objects_deleted_during_a_relist_yield_their_keys() {
    let node = |n: &str| -> Node {
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}}))
            .unwrap()
    };
    let to_keys = |n: &Node| vec![Key::Node(kube::ResourceExt::name_any(n))];
    let mut t = KeyTracker::default();
    use kube::runtime::watcher::Event;
    assert!(t.on_event(&Event::Init, &to_keys).is_empty());
    assert_eq!(
        t.on_event(&Event::InitApply(node("a")), &to_keys),
        vec![Key::Node("a".into())]
    );
    t.on_event(&Event::InitApply(node("b")), &to_keys);
    assert!(t.on_event(&Event::InitDone, &to_keys).is_empty());
    // A delete event.
    assert_eq!(
        t.on_event(&Event::Delete(node("b")), &to_keys),
        vec![Key::Node("b".into())]
    );
    // The watch is re-listed and "a" is gone without a Delete event.
    t.on_event(&Event::Apply(node("c")), &to_keys);
    t.on_event(&Event::Init, &to_keys);
    t.on_event(&Event::InitApply(node("c")), &to_keys);
    assert_eq!(
        t.on_event(&Event::InitDone, &to_keys),
        vec![Key::Node("a".into())]
    );
    // Only once.
    t.on_event(&Event::Init, &to_keys);
    t.on_event(&Event::InitApply(node("c")), &to_keys);
    assert!(t.on_event(&Event::InitDone, &to_keys).is_empty());
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let t = Tuning::default();
    let secs: Vec<u64> = (1..=9).map(|n| t.backoff(n).as_secs()).collect();
    assert_eq!(secs, vec![1, 2, 4, 8, 16, 32, 64, 120, 120]);
    assert_eq!(t.backoff(1000), Duration::from_secs(120));
}

/// Times of the requests `method` on a path ending with `suffix`.
fn times(c: &Cluster, method: &str, suffix: &str) -> Vec<std::time::Instant> {
    c.seen()
        .into_iter()
        .filter(|s| s.method == method && s.path.ends_with(suffix))
        .map(|s| s.at)
        .collect()
}

#[tokio::test]
async fn failed_writes_are_retried_with_backoff() {
    let (client, c) = cluster();
    // The node state write fails twice (500), the ConfigMap once (409), the
    // first DaemonSet twice (500): each is retried with growing delays.
    c.fail("PATCH", "/sriovnetworknodestates/worker-0", 500, 2);
    c.fail("PATCH", "/configmaps/device-plugin-config", 409, 1);
    c.fail("PATCH", "/daemonsets/sriov-network-config-daemon", 500, 2);
    c.fail("PATCH", "/network-attachment-definitions/net1", 500, 2);
    c.put(
        "namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}),
    );
    c.put(
        "sriovnetworks",
        json!({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetwork",
            "metadata": {"name": "net1", "namespace": "apps"}, "spec": {"resourceName": "p"}}),
    );
    for (res, o) in [
        ("nodes", worker_node()),
        ("sriovnetworknodestates", reported_state()),
        ("sriovoperatorconfigs", lane_config()),
        (
            "sriovnetworknodepolicies",
            policy_json("p", "ens1f0", 4, 99),
        ),
    ] {
        c.put(res, o);
    }
    let metrics = std::sync::Arc::new(sriov_operator::metrics::Metrics::new());
    let m = metrics.clone();
    let task = tokio::spawn(async move {
        run_tuned(client, settings(), m, fast()).await.unwrap();
    });
    c.wait_for("the node state written", LONG, |c| num_vfs(c) == 4)
        .await;
    c.wait_for("the ConfigMap written", LONG, |c| {
        c.get("configmaps", NS, "device-plugin-config").is_some()
    })
    .await;
    c.wait_for("the operator config Ready", LONG, |c| {
        let cfg = c.get("sriovoperatorconfigs", NS, "default").unwrap();
        cfg["status"]["conditions"][0]["reason"] == "OperatorConfigReady"
    })
    .await;
    c.wait_for("the NAD written", LONG, |c| {
        c.get("network-attachment-definitions", "apps", "net1")
            .is_some()
    })
    .await;
    let nad = times(&c, "PATCH", "/network-attachment-definitions/net1");
    assert_eq!(nad.len(), 3, "two failures, then the NAD");
    assert!(nad[2] - nad[1] >= Duration::from_millis(400), "doubled");
    let st = times(&c, "PATCH", "/sriovnetworknodestates/worker-0");
    assert_eq!(st.len(), 3, "two failures, then the write");
    let (d1, d2) = (st[1] - st[0], st[2] - st[1]);
    assert!(d1 >= Duration::from_millis(200), "first retry after {d1:?}");
    assert!(
        d2 >= Duration::from_millis(400),
        "second retry after {d2:?} (doubled)"
    );
    // 409, the retry, then the write with the node's resources.
    assert!(times(&c, "PATCH", "/configmaps/device-plugin-config").len() >= 2);
    c.wait_for("the ConfigMap with the node", LONG, |c| {
        c.get("configmaps", NS, "device-plugin-config").unwrap()["data"]["worker-0"]
            .as_str()
            .is_some_and(|d| d.contains("\"resourceName\":\"p\""))
    })
    .await;
    let ds = times(&c, "PATCH", "/daemonsets/sriov-network-config-daemon");
    assert_eq!(
        ds.len(),
        3,
        "the operator-config sync is retried until it succeeds"
    );
    // The failure was reported in the config's status on the way.
    let status_writes: Vec<Seen> = c
        .seen()
        .into_iter()
        .filter(|s| s.path.ends_with("/sriovoperatorconfigs/default/status"))
        .collect();
    assert_eq!(
        status_writes[0].body["status"]["conditions"][0]["reason"],
        "OperatorConfigSyncFailed"
    );
    let text = metrics.encode();
    assert!(text.contains("sriov_operator_retries_total 7"), "{text}");
    task.abort();
    c.check_rbac();
}

#[tokio::test]
async fn default_operator_config_created_when_missing() {
    let mut vars = BTreeMap::from([(
        "ADMISSION_CONTROLLERS_ENABLED".to_string(),
        "true".to_string(),
    )]);
    vars.insert("RESOURCE_PREFIX".into(), "openshift.io".into());
    let mut tuning = fast();
    tuning.create_default_config = true;
    let worker = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-0",
        "labels": {"node-role.kubernetes.io/worker": "", "kubernetes.io/os": "linux"}}});
    let run = start(
        vec![("nodes", worker)],
        Settings::from_vars(&vars),
        tuning.clone(),
    );
    let c = &run.cluster;
    c.wait_for("the default config", LONG, |c| {
        c.get("sriovoperatorconfigs", NS, "default").is_some()
    })
    .await;
    let posts: Vec<Seen> = c
        .seen()
        .into_iter()
        .filter(|s| s.method == "POST" && s.path.ends_with("/sriovoperatorconfigs"))
        .collect();
    assert_eq!(posts.len(), 1);
    assert!(posts[0].path.contains(&format!("/namespaces/{NS}/")));
    assert_eq!(
        posts[0].body["spec"],
        json!({"enableInjector": true, "enableOperatorWebhook": true,
               "configDaemonNodeSelector": {}, "logLevel": 2,
               "disableDrain": true, "configurationMode": "daemon"}),
        "upstream's defaults; a single node disables the drain"
    );
    // The operator then works from it: the DaemonSets are deployed.
    c.wait_for("the DaemonSets", LONG, |c| {
        c.get("daemonsets", NS, "sriov-device-plugin").is_some()
    })
    .await;
    c.check_rbac();
    drop(run);

    // Two nodes, no admission controllers: drain on, webhooks off.
    let nodes: Vec<(&str, Value)> = ["a", "b"]
        .iter()
        .map(|n| {
            (
                "nodes",
                json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}}),
            )
        })
        .collect();
    let run = start(nodes, settings(), tuning.clone());
    let c = &run.cluster;
    c.wait_for("the default config", LONG, |c| {
        c.get("sriovoperatorconfigs", NS, "default").is_some()
    })
    .await;
    let cfg = c.get("sriovoperatorconfigs", NS, "default").unwrap();
    assert_eq!(cfg["spec"]["disableDrain"], false);
    assert_eq!(cfg["spec"]["enableInjector"], false);
    drop(run);

    // An existing config is left alone.
    let run = start(
        vec![
            ("nodes", worker_node()),
            ("sriovoperatorconfigs", lane_config()),
        ],
        settings(),
        tuning,
    );
    let c = &run.cluster;
    c.wait_for("the DaemonSets", LONG, |c| {
        c.get("daemonsets", NS, "sriov-cni").is_some()
    })
    .await;
    assert_eq!(
        c.count(|s| s.method == "POST" && s.path.ends_with("/sriovoperatorconfigs")),
        0
    );
    assert_eq!(
        c.get("sriovoperatorconfigs", NS, "default").unwrap()["spec"],
        lane_config()["spec"]
    );
}

fn event_types(c: &Cluster, reason: &str) -> Vec<(String, String, String)> {
    events(c, reason)
        .iter()
        .map(|e| {
            (
                e.body["type"].as_str().unwrap_or_default().to_string(),
                e.body["regarding"]["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                e.body["regarding"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn drain_events_started_blocked_complete_finished() {
    let mut st = reported_state();
    st["metadata"]["annotations"] = json!({
        "sriovnetwork.openshift.io/desired-state": "Drain_Required",
        "sriovnetwork.openshift.io/current-state": "Idle"});
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app", "namespace": "apps"},
        "spec": {"nodeName": "worker-0", "containers": [{"name": "c", "image": "x",
            "resources": {"requests": {"openshift.io/p": "1"}, "limits": {"openshift.io/p": "1"}}}]},
        "status": {"phase": "Running"}});
    let (client, c) = cluster();
    // A PodDisruptionBudget refuses the eviction twice.
    c.fail("POST", "/namespaces/apps/pods/app/eviction", 429, 2);
    for (res, o) in [
        ("nodes", worker_node()),
        ("sriovnetworknodestates", st),
        ("sriovoperatorconfigs", lane_config()),
        (
            "sriovnetworknodepolicies",
            policy_json("p", "ens1f0", 4, 99),
        ),
        ("pods", pod),
    ] {
        c.put(res, o);
    }
    let metrics = std::sync::Arc::new(sriov_operator::metrics::Metrics::new());
    let task = tokio::spawn(async move {
        run_tuned(client, settings(), metrics, fast())
            .await
            .unwrap();
    });
    let current = |c: &Cluster| {
        c.get("sriovnetworknodestates", NS, "worker-0").unwrap()["metadata"]["annotations"]
            ["sriovnetwork.openshift.io/current-state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    c.wait_for("DrainComplete", LONG, |c| current(c) == "DrainComplete")
        .await;
    assert!(
        c.get("pods", "apps", "app").is_none(),
        "the pod was evicted"
    );
    let node = c.get("nodes", "", "worker-0").unwrap();
    assert_eq!(node["spec"]["unschedulable"], true);
    // The daemon applied: Idle again; the operator uncordons.
    let mut st = c.get("sriovnetworknodestates", NS, "worker-0").unwrap();
    st["metadata"]["annotations"]["sriovnetwork.openshift.io/desired-state"] = json!("Idle");
    c.put("sriovnetworknodestates", st);
    c.wait_for("Idle and uncordoned", LONG, |c| {
        current(c) == "Idle"
            && c.get("nodes", "", "worker-0").unwrap()["spec"]
                .get("unschedulable")
                .is_none_or(Value::is_null)
    })
    .await;
    c.wait_for("DrainFinished", LONG, |c| {
        !events(c, "DrainFinished").is_empty()
    })
    .await;
    let on_state = |t: &str| {
        (
            t.to_string(),
            "SriovNetworkNodeState".to_string(),
            "worker-0".to_string(),
        )
    };
    assert_eq!(event_types(&c, "DrainStarted"), vec![on_state("Normal")]);
    let blocked = events(&c, "DrainBlocked");
    assert!(!blocked.is_empty(), "no DrainBlocked event");
    assert_eq!(blocked[0].body["type"], "Warning");
    assert!(
        blocked[0].body["note"]
            .as_str()
            .unwrap()
            .contains("apps/app"),
        "{:?}",
        blocked[0].body
    );
    assert_eq!(blocked[0].body["regarding"]["namespace"], NS);
    assert_eq!(event_types(&c, "DrainComplete"), vec![on_state("Normal")]);
    assert_eq!(event_types(&c, "DrainFinished"), vec![on_state("Normal")]);
    task.abort();
    c.check_rbac();
}

#[tokio::test]
async fn node_in_two_pools_gets_pool_conflict_condition_and_event() {
    let run = start(
        vec![
            ("nodes", worker_node()),
            ("sriovnetworknodestates", reported_state()),
            ("sriovoperatorconfigs", lane_config()),
            (
                "sriovnetworknodepolicies",
                policy_json("p", "ens1f0", 4, 99),
            ),
            ("sriovnetworkpoolconfigs", pool_json("rack1", "rack", "")),
            ("sriovnetworkpoolconfigs", pool_json("gpus", "gpu", "")),
        ],
        settings(),
        fast(),
    );
    let c = &run.cluster;
    let cond = |c: &Cluster| -> Value {
        c.get("sriovnetworknodestates", NS, "worker-0").unwrap()["status"]["conditions"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["type"] == "PoolConflict").cloned())
            .unwrap_or(Value::Null)
    };
    c.wait_for("PoolConflict=True", LONG, |c| cond(c)["status"] == "True")
        .await;
    let cnd = cond(c);
    assert_eq!(cnd["reason"], "MultiplePools");
    let msg = cnd["message"].as_str().unwrap();
    assert!(msg.contains("gpus, rack1"), "{msg}");
    // Written as the operator, to the status subresource, by server-side apply.
    let w: Vec<Seen> = c
        .seen()
        .into_iter()
        .filter(|s| s.path.ends_with("/sriovnetworknodestates/worker-0/status"))
        .collect();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].content_type, "application/apply-patch+yaml");
    assert!(w[0].query.contains("fieldManager=sriov-network-operator"));
    assert_eq!(
        w[0].body["status"]["conditions"].as_array().unwrap().len(),
        1
    );
    c.wait_for("the PoolConflict event", LONG, |c| {
        !events(c, "PoolConflict").is_empty()
    })
    .await;
    let e = &events(c, "PoolConflict")[0];
    assert_eq!(e.body["type"], "Warning");
    assert_eq!(e.body["regarding"]["name"], "worker-0");
    assert!(e.body["note"].as_str().unwrap().contains("gpus, rack1"));
    // The policy says it too.
    c.wait_for("the policy Degraded", LONG, |c| {
        c.get("sriovnetworknodepolicies", NS, "p").unwrap()["status"]["conditions"]
            .as_array()
            .is_some_and(|a| {
                a.iter()
                    .any(|x| x["type"] == "Degraded" && x["reason"] == "PoolConflict")
            })
    })
    .await;
    // One pool goes: the condition turns False.
    c.delete("sriovnetworkpoolconfigs", NS, "gpus");
    c.wait_for("PoolConflict=False", Duration::from_secs(3), |c| {
        cond(c)["status"] == "False"
    })
    .await;
    assert_eq!(cond(c)["reason"], "SinglePool");
    c.check_rbac();
}

#[tokio::test]
async fn nad_and_merge_conflict_events() {
    let foreign = json!({"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": "net2", "namespace": "apps",
            "annotations": {"sriovnetwork.openshift.io/owner-ref": "SriovNetwork.sriovnetwork.openshift.io/other/net2"}},
        "spec": {"config": "{}"}});
    let net = |ns: &str, name: &str| {
        json!({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetwork",
            "metadata": {"name": name, "namespace": ns, "generation": 1},
            "spec": {"resourceName": "p", "vlan": 10}})
    };
    let mut q = policy_json("q", "ens1f0#0-1", 4, 10);
    q["spec"]["resourceName"] = json!("q");
    let run = start(
        vec![
            (
                "namespaces",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
            ),
            (
                "namespaces",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}),
            ),
            ("nodes", worker_node()),
            ("sriovnetworknodestates", reported_state()),
            ("sriovoperatorconfigs", lane_config()),
            (
                "sriovnetworknodepolicies",
                policy_json("p", "ens1f0", 4, 99),
            ),
            ("sriovnetworknodepolicies", q),
            ("sriovnetworks", net(NS, "net1")),
            ("network-attachment-definitions", foreign),
            ("sriovnetworks", net("apps", "net2")),
        ],
        settings(),
        fast(),
    );
    let c = &run.cluster;
    c.wait_for("NAD net1", LONG, |c| {
        c.get("network-attachment-definitions", NS, "net1")
            .is_some()
    })
    .await;
    c.wait_for("the NAD events", LONG, |c| {
        !events(c, "NetworkAttachmentDefinitionApplied").is_empty()
            && !events(c, "NetworkAttachmentDefinitionInvalid").is_empty()
            && !events(c, "MergeConflict").is_empty()
    })
    .await;
    assert_eq!(
        event_types(c, "NetworkAttachmentDefinitionApplied"),
        vec![("Normal".into(), "SriovNetwork".into(), "net1".into())]
    );
    let refused = &events(c, "NetworkAttachmentDefinitionInvalid")[0];
    assert_eq!(refused.body["type"], "Warning");
    assert_eq!(refused.body["regarding"]["name"], "net2");
    assert!(
        refused.path.contains("/namespaces/apps/events"),
        "{}",
        refused.path
    );
    // The foreign NAD is untouched.
    assert_eq!(
        c.get("network-attachment-definitions", "apps", "net2")
            .unwrap()["spec"]["config"],
        "{}"
    );
    let conflict = &events(c, "MergeConflict")[0];
    assert_eq!(conflict.body["type"], "Warning");
    assert_eq!(conflict.body["regarding"]["kind"], "SriovNetworkNodePolicy");
    assert_eq!(conflict.body["regarding"]["name"], "p");
    assert!(conflict.body["note"].as_str().unwrap().contains("worker-0"));
    c.check_rbac();
}

/// deploy/operator/rbac.yaml grants the controllers exactly the verbs they
/// use: the running operator goes through every write it knows (default
/// config created, node states rendered, emptied and deleted, labels,
/// ConfigMap, statuses, networks in and across namespaces, an IB network,
/// a NAD moved, DaemonSets applied and removed, a drain blocked by a PDB
/// and abandoned, repeated Events), every request is checked against the
/// rules (see `check_rbac_requests`), and every verb the rules grant on
/// the controllers' resources must have been needed by some request.
/// Leases (leader election) and the webhook deployment's kinds are left
/// to their own tests.
#[tokio::test]
async fn rbac_grants_exactly_the_verbs_the_controllers_use() {
    let mut needed = std::collections::BTreeSet::new();
    let vars = BTreeMap::from([
        ("RESOURCE_PREFIX".to_string(), "openshift.io".to_string()),
        (
            "STALE_NODE_STATE_CLEANUP_DELAY_MINUTES".to_string(),
            "0".to_string(),
        ),
    ]);
    // 1. No config: created. Policies, pools, networks; a stale node state.
    let mut tuning = fast();
    tuning.create_default_config = true;
    let mut node = worker_node();
    node["metadata"]["labels"]["node-role.kubernetes.io/worker"] = json!("");
    node["metadata"]["labels"]["kubernetes.io/os"] = json!("linux");
    let mut stale = reported_state();
    stale["metadata"]["name"] = json!("gone");
    let cross = json!({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetwork",
        "metadata": {"name": "net1", "namespace": NS},
        "spec": {"resourceName": "p", "networkNamespace": "apps"}});
    let ib = json!({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovIBNetwork",
        "metadata": {"name": "ib1", "namespace": NS}, "spec": {"resourceName": "p"}});
    let ovs = json!({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "OVSNetwork",
        "metadata": {"name": "ovs1", "namespace": NS}, "spec": {"resourceName": "p", "bridge": "br0"}});
    let ns = |n: &str| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}});
    let run = start(
        vec![
            ("namespaces", ns(NS)),
            ("namespaces", ns("apps")),
            ("namespaces", ns("apps2")),
            ("nodes", node),
            (
                "nodes",
                json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "other"}}),
            ),
            // Selected, no node state yet (created by the apply), in two pools.
            (
                "nodes",
                json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "fresh",
                    "labels": {"node-role.kubernetes.io/worker": "", "kubernetes.io/os": "linux",
                               "rack": "1", "gpu": "yes"}}}),
            ),
            ("sriovnetworkpoolconfigs", pool_json("gpus", "gpu", "")),
            ("sriovnetworknodestates", reported_state()),
            ("sriovnetworknodestates", stale),
            (
                "sriovnetworknodepolicies",
                policy_json("p", "ens1f0", 4, 99),
            ),
            (
                "sriovnetworkpoolconfigs",
                pool_json("rack1", "rack", "exclusive"),
            ),
            ("sriovnetworks", cross),
            ("sriovibnetworks", ib),
            ("ovsnetworks", ovs),
        ],
        Settings::from_vars(&vars),
        tuning,
    );
    let c = &run.cluster;
    c.wait_for("the policy rendered", LONG, |c| num_vfs(c) == 4)
        .await;
    c.wait_for("the PoolConflict condition", LONG, |c| {
        c.get("sriovnetworknodestates", NS, "fresh")
            .is_some_and(|s| s["status"]["conditions"][0]["type"] == "PoolConflict")
    })
    .await;
    c.wait_for("the stale node state deleted", LONG, |c| {
        c.get("sriovnetworknodestates", NS, "gone").is_none()
    })
    .await;
    c.wait_for("NADs", LONG, |c| {
        c.get("network-attachment-definitions", "apps", "net1")
            .is_some()
            && c.get("network-attachment-definitions", NS, "ib1").is_some()
            && c.get("ovsnetworks", NS, "ovs1")
                .is_some_and(|n| n["status"]["conditions"][0]["reason"] == "NetworkReady")
    })
    .await;
    // The network moves to another namespace: the old NAD is deleted.
    let mut net = c.get("sriovnetworks", NS, "net1").unwrap();
    net["spec"]["networkNamespace"] = json!("apps2");
    c.put("sriovnetworks", net);
    c.wait_for("the NAD moved", LONG, |c| {
        c.get("network-attachment-definitions", "apps", "net1")
            .is_none()
            && c.get("network-attachment-definitions", "apps2", "net1")
                .is_some()
    })
    .await;
    // Everything goes: the node state is emptied, then the config: DaemonSets removed.
    c.delete("sriovnetworknodepolicies", NS, "p");
    c.delete("sriovnetworkpoolconfigs", NS, "rack1");
    c.wait_for("the spec emptied", LONG, |c| num_vfs(c) == 0)
        .await;
    c.wait_for("DaemonSets", LONG, |c| {
        c.get("daemonsets", NS, "sriov-cni").is_some()
    })
    .await;
    c.delete("sriovoperatorconfigs", NS, "default");
    c.wait_for("DaemonSets removed", LONG, |c| {
        c.get("daemonsets", NS, "sriov-cni").is_none()
    })
    .await;
    needed.extend(c.check_rbac());
    drop(run);

    // 2. A drain blocked by a PodDisruptionBudget for longer than the
    // timeout: abandoned, the node uncordoned (read first).
    let mut st = reported_state();
    st["metadata"]["annotations"] = json!({
        "sriovnetwork.openshift.io/desired-state": "Drain_Required",
        "sriovnetwork.openshift.io/current-state": "Draining",
        "sriovnetwork.openshift.io/drain-started": "2020-01-01T00:00:00Z"});
    let mut cordoned = worker_node();
    cordoned["metadata"]["annotations"] =
        json!({"sriovnetwork.openshift.io/cordoned-by-operator": "true"});
    cordoned["spec"] = json!({"unschedulable": true});
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app", "namespace": "apps"},
        "spec": {"nodeName": "worker-0", "containers": [{"name": "c", "image": "x",
            "resources": {"requests": {"openshift.io/p": "1"}}}]}});
    // worker-1: blocked, not yet timed out: DrainBlocked repeats (a series).
    let mut st1 = st.clone();
    st1["metadata"]["name"] = json!("worker-1");
    st1["metadata"]["annotations"]["sriovnetwork.openshift.io/drain-started"] =
        json!("2100-01-01T00:00:00Z");
    let mut node1 = worker_node();
    node1["metadata"]["name"] = json!("worker-1");
    let mut pod1 = pod.clone();
    pod1["metadata"]["name"] = json!("app1");
    pod1["spec"]["nodeName"] = json!("worker-1");
    let (client, c) = cluster();
    c.fail("POST", "/eviction", 429, 10_000);
    for (res, o) in [
        ("nodes", node1),
        ("sriovnetworknodestates", st1),
        ("pods", pod1),
        ("nodes", cordoned),
        ("sriovnetworknodestates", st),
        ("sriovoperatorconfigs", lane_config()),
        (
            "sriovnetworknodepolicies",
            policy_json("p", "ens1f0", 4, 99),
        ),
        ("pods", pod),
    ] {
        c.put(res, o);
    }
    let metrics = std::sync::Arc::new(sriov_operator::metrics::Metrics::new());
    let task = tokio::spawn(async move {
        run_tuned(client, Settings::from_vars(&vars), metrics, fast())
            .await
            .unwrap();
    });
    c.wait_for("DrainAbandoned", LONG, |c| {
        !events(c, "DrainAbandoned").is_empty()
    })
    .await;
    c.wait_for("uncordoned", LONG, |c| {
        c.get("nodes", "", "worker-0").unwrap()["spec"]
            .get("unschedulable")
            .is_none_or(Value::is_null)
    })
    .await;
    // Events repeated within the recorder's window are patched (a series).
    c.wait_for("an Event patched", LONG, |c| {
        c.count(|s| s.method == "PATCH" && s.path.contains("/apis/events.k8s.io/")) > 0
    })
    .await;
    needed.extend(c.check_rbac());
    task.abort();

    // What the rules grant the controllers.
    let skip = ["leases", "secrets", "services"];
    let (role, cluster_rules) = api_mock::rbac_rules();
    let mut granted = std::collections::BTreeSet::new();
    for r in role.iter().chain(cluster_rules.iter()) {
        for g in r["apiGroups"].as_array().unwrap() {
            if g == "admissionregistration.k8s.io" {
                continue;
            }
            for res in r["resources"].as_array().unwrap() {
                if skip.contains(&res.as_str().unwrap()) {
                    continue;
                }
                for v in r["verbs"].as_array().unwrap() {
                    granted.insert((
                        g.as_str().unwrap().to_string(),
                        res.as_str().unwrap().to_string(),
                        v.as_str().unwrap().to_string(),
                    ));
                }
            }
        }
    }
    let used: std::collections::BTreeSet<(String, String, String)> =
        needed.into_iter().map(|(g, r, v, _)| (g, r, v)).collect();
    let unused: Vec<_> = granted.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "deploy/operator/rbac.yaml grants verbs the operator never uses: {unused:?}"
    );
}

#[tokio::test]
async fn ovs_network_gets_an_ovs_nad_and_ready() {
    let ovs = json!({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "OVSNetwork",
        "metadata": {"name": "ovs1", "namespace": "apps", "generation": 1},
        "spec": {"resourceName": "ovs_res", "bridge": "br0", "vlan": 7}});
    let ns = |n: &str| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}});
    let run = start(
        vec![
            ("namespaces", ns("apps")),
            ("nodes", worker_node()),
            ("sriovoperatorconfigs", lane_config()),
            ("ovsnetworks", ovs),
        ],
        settings(),
        fast(),
    );
    let c = &run.cluster;
    c.wait_for("the OVS NAD and Ready", LONG, |c| {
        c.get("network-attachment-definitions", "apps", "ovs1")
            .is_some()
            && c.get("ovsnetworks", "apps", "ovs1")
                .is_some_and(|n| n["status"]["conditions"][0]["reason"] == "NetworkReady")
    })
    .await;
    let nad = c
        .get("network-attachment-definitions", "apps", "ovs1")
        .unwrap();
    let cfg: Value = serde_json::from_str(nad["spec"]["config"].as_str().unwrap()).unwrap();
    assert_eq!(
        cfg,
        json!({"cniVersion": "1.0.0", "name": "ovs1", "type": "ovs", "bridge": "br0",
               "vlan": 7, "ipam": {}})
    );
    assert_eq!(
        nad["metadata"]["annotations"]["k8s.v1.cni.cncf.io/resourceName"],
        "openshift.io/ovs_res"
    );
    assert_eq!(nad["metadata"]["ownerReferences"][0]["kind"], "OVSNetwork");
    assert_eq!(
        event_types(c, "NetworkAttachmentDefinitionApplied"),
        vec![("Normal".into(), "OVSNetwork".into(), "ovs1".into())]
    );
    c.check_rbac();
}

/// A pass writing more than `NODE_EVENTS_MAX` node state specs announces
/// them in one Event on the operator config; a pass writing a few announces
/// each on its node state.
#[tokio::test]
async fn many_node_state_writes_are_one_event_few_are_one_each() {
    use sriov_operator::controllers::run::NODE_EVENTS_MAX;
    let many = NODE_EVENTS_MAX + 2;
    let mut objects = vec![("sriovoperatorconfigs", lane_config())];
    for i in 0..many {
        let name = format!("worker-{i:02}");
        let mut n = worker_node();
        n["metadata"]["name"] = json!(name);
        let mut s = reported_state();
        s["metadata"]["name"] = json!(name);
        objects.push(("nodes", n));
        objects.push(("sriovnetworknodestates", s));
    }
    objects.push((
        "sriovnetworknodepolicies",
        policy_json("pol", "ens1f0", 4, 10),
    ));
    let run = start(objects, settings(), fast());
    let c = &run.cluster;
    let specs_with = |c: &Cluster, vfs: i64| {
        (0..many).all(|i| {
            c.get("sriovnetworknodestates", NS, &format!("worker-{i:02}"))
                .is_some_and(|s| s["spec"]["interfaces"][0]["numVfs"] == vfs)
        })
    };
    c.wait_for("every node state rendered", LONG, |c| specs_with(c, 4))
        .await;
    // Every spec of that pass, in one Event on the operator config.
    c.wait_for("the summary Event", LONG, |c| {
        !events(c, "NodeStateUpdated").is_empty()
    })
    .await;
    let ev = events(c, "NodeStateUpdated");
    assert_eq!(
        ev.len(),
        1,
        "{:?}",
        ev.iter().map(|e| &e.body).collect::<Vec<_>>()
    );
    let e = &ev[0].body;
    assert_eq!(e["regarding"]["kind"], "SriovOperatorConfig");
    assert_eq!(e["regarding"]["name"], "default");
    let note = e["note"].as_str().unwrap();
    assert!(
        note.starts_with(&format!("{many} node state specs written: worker-00, ")),
        "{note}"
    );
    assert!(note.ends_with(&format!(" and {} more", many - 5)), "{note}");

    // A policy change that touches two nodes: one Event on each node state.
    let mut p = policy_json("pol2", "ens1f0", 6, 5);
    p["spec"]["nodeSelector"] = json!({"pick": "yes"});
    for i in [3, 7] {
        let name = format!("worker-{i:02}");
        let mut n = c.get("nodes", "", &name).unwrap();
        n["metadata"]["labels"]["pick"] = json!("yes");
        c.put("nodes", n);
    }
    c.put("sriovnetworknodepolicies", p);
    c.wait_for("two per-node Events", LONG, |c| {
        events(c, "NodeStateUpdated").len() >= 3
    })
    .await;
    let mut regarding: Vec<String> = events(c, "NodeStateUpdated")[1..]
        .iter()
        .map(|e| {
            assert_eq!(e.body["regarding"]["kind"], "SriovNetworkNodeState");
            e.body["regarding"]["name"].as_str().unwrap().to_string()
        })
        .collect();
    regarding.sort();
    assert_eq!(regarding, ["worker-03", "worker-07"]);
    c.check_rbac();
}

#[tokio::test]
async fn a_deleted_webhook_secret_is_made_again_at_once_with_a_new_ca() {
    // An admin rotates the operator webhook's CA by deleting its Secret:
    // the operator watches the Secret and makes a new CA and serving
    // certificate, and the configurations trust it, well before any resync
    // (the test's is an hour away).
    let mut cfg = lane_config();
    cfg["spec"]["enableOperatorWebhook"] = json!(true);
    let mut vars = BTreeMap::from([
        ("RESOURCE_PREFIX".to_string(), "openshift.io".to_string()),
        (
            "SRIOV_NETWORK_WEBHOOK_IMAGE".to_string(),
            "img/webhook:1".to_string(),
        ),
    ]);
    vars.insert(
        "NETWORK_RESOURCES_INJECTOR_IMAGE".to_string(),
        "img/injector:1".to_string(),
    );
    let run = start(
        vec![("sriovoperatorconfigs", cfg)],
        Settings::from_vars(&vars),
        fast(),
    );
    let c = &run.cluster;
    let b64 = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let secret_ca = |c: &Cluster| {
        c.get("secrets", NS, "operator-webhook-cert")
            .map(|s| b64(&s["data"]["ca.crt"]))
    };
    let bundle = |c: &Cluster| {
        c.get(
            "validatingwebhookconfigurations",
            "",
            "sriov-operator-webhook-config",
        )
        .map(|v| b64(&v["webhooks"][0]["clientConfig"]["caBundle"]))
    };
    c.wait_for("the DaemonSet", LONG, |c| {
        c.get("daemonsets", NS, "operator-webhook").is_some()
    })
    .await;
    // What the DaemonSet controller would report: one ready pod.
    let mut d = c.get("daemonsets", NS, "operator-webhook").unwrap();
    d["status"] = json!({"numberReady": 1, "desiredNumberScheduled": 1,
        "currentNumberScheduled": 1, "numberMisscheduled": 0});
    c.put("daemonsets", d);
    c.wait_for("the configuration with the Secret's CA", LONG, |c| {
        bundle(c).is_some() && bundle(c) == secret_ca(c)
    })
    .await;
    let old = secret_ca(c).unwrap();

    c.delete("secrets", NS, "operator-webhook-cert");
    c.wait_for(
        "a new Secret, trusted by the configuration",
        Duration::from_secs(3),
        |c| secret_ca(c).is_some_and(|ca| ca != old) && bundle(c) == secret_ca(c),
    )
    .await;
    let s = c.get("secrets", NS, "operator-webhook-cert").unwrap();
    assert_eq!(s["type"], "kubernetes.io/tls");
    assert!(s["data"]["tls.crt"].is_string() && s["data"]["tls.key"].is_string());
    c.check_rbac();
}
