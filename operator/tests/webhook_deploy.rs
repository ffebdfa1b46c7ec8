//! The operator deploys the admission webhooks (`webhook::deploy`, through
//! `reconcile_operator_config`) against the in-memory API server: with
//! `enableOperatorWebhook` / `enableInjector` the Secrets, Services and
//! DaemonSets (upstream's names) are created, the configurations follow once
//! a pod is ready with the Secret's CA as `caBundle`, an unchanged pass only
//! reads, and turning the flags off (or deleting the config) removes them;
//! every request is allowed by deploy/operator/rbac.yaml.

mod api_mock;

use std::collections::BTreeMap;

use api_mock::NS;
use api_mock::cluster::{Cluster, cluster};
use base64::Engine;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};
use sriov_crds::SriovOperatorConfig;
use sriov_operator::controllers::operator_config::{reconcile_operator_config, remove_deployed};
use sriov_operator::settings::Settings;
use sriov_operator::webhook::deploy::{Component, holds, render_configs};

// The webhook configurations: the operator webhook's two and the injector's.
const MUTATING: &str = "mutatingwebhookconfigurations";
const VALIDATING: &str = "validatingwebhookconfigurations";
const OPERATOR_WEBHOOK: &str = "sriov-operator-webhook-config";
const INJECTOR: &str = "network-resources-injector-config";
const OPERATOR_WEBHOOK_CONFIGS: [(&str, &str); 2] =
    [(MUTATING, OPERATOR_WEBHOOK), (VALIDATING, OPERATOR_WEBHOOK)];
const WEBHOOK_CONFIGS: [(&str, &str); 3] = [
    (MUTATING, OPERATOR_WEBHOOK),
    (VALIDATING, OPERATOR_WEBHOOK),
    (MUTATING, INJECTOR),
];

fn settings(extra: &[(&str, &str)]) -> Settings {
    let mut vars = BTreeMap::from([
        (
            "SRIOV_NETWORK_WEBHOOK_IMAGE".to_string(),
            "img/webhook:1".to_string(),
        ),
        (
            "NETWORK_RESOURCES_INJECTOR_IMAGE".to_string(),
            "img/injector:1".to_string(),
        ),
    ]);
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    Settings::from_vars(&vars)
}

fn now() -> Time {
    Time("2026-01-02T03:04:05Z".parse().unwrap())
}

fn config(webhook: bool, injector: bool) -> Value {
    json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovOperatorConfig",
        "metadata": {"name": "default", "namespace": NS, "uid": "cfg-uid", "generation": 1},
        "spec": {"enableOperatorWebhook": webhook, "enableInjector": injector, "logLevel": 1}
    })
}

fn typed(v: &Value) -> SriovOperatorConfig {
    serde_json::from_value(v.clone()).unwrap()
}

/// The DaemonSets the cluster holds, as the controller's cache has them.
fn daemonsets(c: &Cluster) -> Vec<DaemonSet> {
    [
        "operator-webhook",
        "network-resources-injector",
        "sriov-network-config-daemon",
        "sriov-device-plugin",
        "sriov-cni",
    ]
    .iter()
    .filter_map(|n| c.get("daemonsets", NS, n))
    .map(|d| serde_json::from_value(d).unwrap())
    .collect()
}

/// What the DaemonSet controller would report: one ready pod.
fn mark_ready(c: &Cluster, name: &str) {
    let mut d = c.get("daemonsets", NS, name).expect(name);
    d["status"] = json!({"numberReady": 1, "desiredNumberScheduled": 1, "currentNumberScheduled": 1, "numberMisscheduled": 0});
    c.put("daemonsets", d);
}

fn writes(c: &Cluster) -> usize {
    c.count(|s| {
        matches!(s.method.as_str(), "POST" | "PATCH" | "PUT" | "DELETE")
            && !s.path.ends_with("/status")
    })
}

fn ca_bundles(cfg: &Value) -> Vec<Vec<u8>> {
    cfg["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            base64::engine::general_purpose::STANDARD
                .decode(w["clientConfig"]["caBundle"].as_str().expect("caBundle"))
                .unwrap()
        })
        .collect()
}

fn secret_ca(c: &Cluster, name: &str) -> Vec<u8> {
    let s = c.get("secrets", NS, name).expect(name);
    base64::engine::general_purpose::STANDARD
        .decode(s["data"]["ca.crt"].as_str().unwrap())
        .unwrap()
}

fn condition_message(c: &Cluster) -> String {
    let cfg = c.get("sriovoperatorconfigs", NS, "default").unwrap();
    cfg["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn webhooks_deployed_with_the_ca_and_removed_when_disabled() {
    let (client, c) = cluster();
    let s = settings(&[]);
    c.put("sriovoperatorconfigs", config(true, true));
    let cfg = typed(&config(true, true));

    // First pass: certificates, Services, DaemonSets; no configuration yet.
    reconcile_operator_config(&client, &s, &cfg, &daemonsets(&c), &now())
        .await
        .unwrap();
    for (secret, svc) in [
        ("operator-webhook-cert", "operator-webhook-service"),
        (
            "network-resources-injector-cert",
            "network-resources-injector-service",
        ),
    ] {
        let sec = c
            .get("secrets", NS, secret)
            .unwrap_or_else(|| panic!("Secret {secret}"));
        assert_eq!(sec["type"], "kubernetes.io/tls");
        for k in ["tls.crt", "tls.key", "ca.crt", "ca.key"] {
            assert!(
                sec["data"][k].as_str().is_some_and(|v| !v.is_empty()),
                "{secret} {k}"
            );
        }
        let names =
            sec["metadata"]["annotations"]["sriovnetwork.openshift.io/serving-cert-dns-names"]
                .as_str()
                .unwrap();
        assert!(names.contains(&format!("{svc}.{NS}.svc")), "{names}");
        let service = c
            .get("services", NS, svc)
            .unwrap_or_else(|| panic!("Service {svc}"));
        assert_eq!(service["spec"]["ports"][0]["port"], 443);
        assert_eq!(service["spec"]["ports"][0]["targetPort"], 6443);
    }
    for (name, image, secret) in [
        ("operator-webhook", "img/webhook:1", "operator-webhook-cert"),
        (
            "network-resources-injector",
            "img/injector:1",
            "network-resources-injector-cert",
        ),
    ] {
        let d = c
            .get("daemonsets", NS, name)
            .unwrap_or_else(|| panic!("DaemonSet {name}"));
        let pod = &d["spec"]["template"]["spec"];
        let ctr = &pod["containers"][0];
        assert_eq!(ctr["image"], image);
        assert_eq!(ctr["command"], json!(["sriov-network-operator"]));
        assert_eq!(ctr["args"][0], "webhook");
        assert_eq!(pod["volumes"][0]["secret"]["secretName"], secret);
        assert_eq!(d["metadata"]["ownerReferences"][0]["uid"], "cfg-uid");
        let env: BTreeMap<String, Value> = ctr["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["name"].as_str().unwrap().to_string(), e["value"].clone()))
            .collect();
        assert_eq!(env["SRIOV_LOG"], "debug", "logLevel 1");
        assert_eq!(env["DEV_MODE"], "FALSE");
        let svc = c.get("services", NS, &format!("{name}-service")).unwrap();
        assert_eq!(
            svc["spec"]["selector"],
            d["spec"]["template"]["metadata"]["labels"]
        );
    }
    for (res, name) in WEBHOOK_CONFIGS {
        assert!(
            c.get(res, "", name).is_none(),
            "{res} {name} before a pod is ready"
        );
    }
    assert!(
        condition_message(&c).contains("waiting for a ready pod of DaemonSet operator-webhook"),
        "{}",
        condition_message(&c)
    );

    // Pods ready: the configurations, trusting the Secrets' CAs.
    mark_ready(&c, "operator-webhook");
    mark_ready(&c, "network-resources-injector");
    reconcile_operator_config(&client, &s, &cfg, &daemonsets(&c), &now())
        .await
        .unwrap();
    let op_ca = secret_ca(&c, "operator-webhook-cert");
    let inj_ca = secret_ca(&c, "network-resources-injector-cert");
    assert_ne!(op_ca, inj_ca, "one CA per Secret");
    for (res, name, ca, path) in [
        (
            MUTATING,
            OPERATOR_WEBHOOK,
            &op_ca,
            "/mutating-custom-resource",
        ),
        (
            VALIDATING,
            OPERATOR_WEBHOOK,
            &op_ca,
            "/validating-custom-resource",
        ),
        (MUTATING, INJECTOR, &inj_ca, "/mutate"),
    ] {
        let w = c
            .get(res, "", name)
            .unwrap_or_else(|| panic!("{res} {name}"));
        assert_eq!(
            ca_bundles(&w),
            vec![ca.clone()],
            "{res} {name}: caBundle is the Secret's ca.crt"
        );
        let svc = &w["webhooks"][0]["clientConfig"]["service"];
        assert_eq!(svc["namespace"], NS);
        assert_eq!(svc["path"], path);
    }
    let inj = c.get(MUTATING, "", INJECTOR).unwrap();
    assert_eq!(inj["webhooks"][0]["failurePolicy"], "Fail");
    assert!(inj["webhooks"][0]["matchConditions"].is_array());
    let msg = condition_message(&c);
    assert!(
        msg.contains("operator webhook: serving") && msg.contains("injector: serving"),
        "{msg}"
    );

    // Unchanged: reads only (the Secret is kept, nothing applied).
    let before = writes(&c);
    let cfg_now = typed(&c.get("sriovoperatorconfigs", NS, "default").unwrap());
    let n = reconcile_operator_config(&client, &s, &cfg_now, &daemonsets(&c), &now())
        .await
        .unwrap();
    assert_eq!(
        (n, writes(&c)),
        (0, before),
        "an unchanged pass writes nothing"
    );
    assert_eq!(secret_ca(&c, "operator-webhook-cert"), op_ca);

    // The injector off: its configuration, Service and DaemonSet go; the
    // operator webhook stays.
    c.put("sriovoperatorconfigs", config(true, false));
    let cfg = typed(&c.get("sriovoperatorconfigs", NS, "default").unwrap());
    reconcile_operator_config(&client, &s, &cfg, &daemonsets(&c), &now())
        .await
        .unwrap();
    assert!(c.get(MUTATING, "", INJECTOR).is_none());
    assert!(
        c.get("services", NS, "network-resources-injector-service")
            .is_none()
    );
    assert!(
        c.get("daemonsets", NS, "network-resources-injector")
            .is_none()
    );
    assert!(
        c.get("secrets", NS, "network-resources-injector-cert")
            .is_some(),
        "the Secret stays"
    );
    assert!(c.get(VALIDATING, "", OPERATOR_WEBHOOK).is_some());
    assert!(c.get("daemonsets", NS, "operator-webhook").is_some());

    // The config deleted: the rest goes, the configurations first.
    let existing = daemonsets(&c);
    let first_delete = c.seen().len();
    remove_deployed(&client, &s, &existing, false)
        .await
        .unwrap();
    for (res, name) in OPERATOR_WEBHOOK_CONFIGS {
        assert!(c.get(res, "", name).is_none(), "{res} {name}");
    }
    assert!(c.get("daemonsets", NS, "operator-webhook").is_none());
    assert!(c.get("services", NS, "operator-webhook-service").is_none());
    let deletes: Vec<String> = c.seen()[first_delete..]
        .iter()
        .filter(|s| s.method == "DELETE")
        .map(|s| s.path.rsplit('/').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(
        &deletes[..3],
        [MUTATING, VALIDATING, "services"],
        "{deletes:?}"
    );
    c.check_rbac();
}

#[tokio::test]
async fn configurations_go_with_the_config_even_when_the_gc_took_the_daemonsets_first() {
    let (client, c) = cluster();
    let s = settings(&[]);
    c.put("sriovoperatorconfigs", config(true, true));
    let cfg = typed(&config(true, true));
    reconcile_operator_config(&client, &s, &cfg, &[], &now())
        .await
        .unwrap();
    for name in ["operator-webhook", "network-resources-injector"] {
        mark_ready(&c, name);
    }
    reconcile_operator_config(&client, &s, &cfg, &daemonsets(&c), &now())
        .await
        .unwrap();
    assert!(c.get(MUTATING, "", INJECTOR).is_some());
    // The config is deleted and the garbage collector removes the DaemonSets
    // it owns before the operator's pass: nothing names the cluster-scoped
    // configurations any more.
    for name in ["operator-webhook", "network-resources-injector"] {
        c.delete("daemonsets", NS, name);
    }
    // Without a sweep they would stay, pointing the API server at servers
    // that are gone.
    remove_deployed(&client, &s, &[], false).await.unwrap();
    assert!(c.get(MUTATING, "", INJECTOR).is_some());
    remove_deployed(&client, &s, &[], true).await.unwrap();
    for (res, name) in WEBHOOK_CONFIGS {
        assert!(c.get(res, "", name).is_none(), "{res} {name}");
    }
    assert!(c.get("services", NS, "operator-webhook-service").is_none());
    c.check_rbac();
}

#[tokio::test]
async fn disabled_webhooks_cost_no_request() {
    let (client, c) = cluster();
    let s = settings(&[]);
    c.put("sriovoperatorconfigs", config(false, false));
    let cfg = typed(&config(false, false));
    reconcile_operator_config(&client, &s, &cfg, &[], &now())
        .await
        .unwrap();
    let seen: Vec<String> = c
        .seen()
        .iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert!(
        seen.iter()
            .all(|r| r.contains("/daemonsets/") || r.ends_with("/status")),
        "only the DaemonSets and the status: {seen:?}"
    );
    assert!(c.get("secrets", NS, "operator-webhook-cert").is_none());
    assert!(
        !condition_message(&c).contains("webhook"),
        "{}",
        condition_message(&c)
    );
}

#[tokio::test]
async fn an_existing_secret_is_kept_and_its_ca_trusted() {
    // A Secret from an earlier install (or another operator replica) is
    // reused: the configurations trust its CA, nothing is regenerated.
    let (client, c) = cluster();
    let s = settings(&[]);
    c.put("sriovoperatorconfigs", config(true, false));
    let cfg = typed(&config(true, false));
    reconcile_operator_config(&client, &s, &cfg, &daemonsets(&c), &now())
        .await
        .unwrap();
    let ca = secret_ca(&c, "operator-webhook-cert");
    let rv = c.get("secrets", NS, "operator-webhook-cert").unwrap()["metadata"]["resourceVersion"]
        .clone();
    mark_ready(&c, "operator-webhook");
    reconcile_operator_config(&client, &s, &cfg, &daemonsets(&c), &now())
        .await
        .unwrap();
    assert_eq!(
        c.get("secrets", NS, "operator-webhook-cert").unwrap()["metadata"]["resourceVersion"],
        rv
    );
    let v = c.get(VALIDATING, "", OPERATOR_WEBHOOK).unwrap();
    assert_eq!(ca_bundles(&v), vec![ca]);
}

#[tokio::test]
async fn cert_manager_mode_writes_no_secret_and_annotates() {
    let (client, c) = cluster();
    let s = settings(&[(
        "ADMISSION_CONTROLLERS_CERTIFICATES_CERT_MANAGER_ENABLED",
        "true",
    )]);
    c.put("sriovoperatorconfigs", config(true, true));
    let cfg = typed(&config(true, true));
    reconcile_operator_config(&client, &s, &cfg, &daemonsets(&c), &now())
        .await
        .unwrap();
    mark_ready(&c, "operator-webhook");
    mark_ready(&c, "network-resources-injector");
    reconcile_operator_config(&client, &s, &cfg, &daemonsets(&c), &now())
        .await
        .unwrap();
    assert!(c.get("secrets", NS, "operator-webhook-cert").is_none());
    assert_eq!(
        c.count(|r| r.path.contains("/secrets")),
        0,
        "cert-manager's Secrets are not read or written"
    );
    let m = c.get(MUTATING, "", INJECTOR).unwrap();
    assert_eq!(
        m["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        format!("{NS}/network-resources-injector-cert")
    );
    assert!(m["webhooks"][0]["clientConfig"]["caBundle"].is_null());
    let v = c.get(VALIDATING, "", OPERATOR_WEBHOOK).unwrap();
    assert_eq!(
        v["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        format!("{NS}/operator-webhook-cert")
    );
    c.check_rbac();
}

/// The operator's DRA pools reach the injector (its extended-resource
/// names), not the operator webhook.
#[test]
fn the_injector_gets_the_dra_pools() {
    use sriov_operator::webhook::deploy::{Component, render_daemonset};
    let s = settings(&[
        ("SRIOV_DRA_RESOURCES", "dra_vfs,other.io/x"),
        ("RESOURCE_PREFIX", "intel.com"),
    ]);
    let cfg = typed(&config(true, true));
    let env = |c: Component| -> BTreeMap<String, String> {
        let ds = serde_json::to_value(render_daemonset(c, &cfg, &s)).unwrap();
        ds["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap().to_string(),
                    e["value"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    let inj = env(Component::Injector);
    assert_eq!(inj["SRIOV_DRA_RESOURCES"], "dra_vfs,other.io/x");
    assert_eq!(inj["RESOURCE_PREFIX"], "intel.com");
    // What the injector process then makes of them.
    let vars: BTreeMap<String, String> = inj.into_iter().collect();
    assert_eq!(
        Settings::from_vars(&vars).dra_resource_names(),
        ["intel.com/dra_vfs", "other.io/x"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    assert!(!env(Component::OperatorWebhook).contains_key("SRIOV_DRA_RESOURCES"));
}

#[test]
fn injector_failure_policy_follows_upstreams_gate() {
    let s = settings(&[]);
    let mut cfg = typed(&config(false, true));
    let default = render_configs(Component::Injector, &cfg, &s, Some(b"CA"));
    assert_eq!(default[0]["webhooks"][0]["failurePolicy"], "Fail");
    assert!(default[0]["webhooks"][0]["matchConditions"].is_array());
    cfg.spec.feature_gates = Some(BTreeMap::from([(
        "resourceInjectorMatchCondition".to_string(),
        false,
    )]));
    let upstream = render_configs(Component::Injector, &cfg, &s, Some(b"CA"));
    assert_eq!(upstream[0]["webhooks"][0]["failurePolicy"], "Ignore");
    assert!(upstream[0]["webhooks"][0].get("matchConditions").is_none());
    // The operator webhook: Fail, as upstream.
    let op = render_configs(Component::OperatorWebhook, &cfg, &s, Some(b"CA"));
    assert!(
        op.iter()
            .all(|c| c["webhooks"][0]["failurePolicy"] == "Fail")
    );
}

#[test]
fn holds_ignores_what_the_api_server_adds() {
    let want = json!({"a": 1, "l": [{"x": 1}], "n": null});
    assert!(holds(
        &json!({"a": 1, "l": [{"x": 1, "default": true}], "extra": 2}),
        &want
    ));
    assert!(!holds(&json!({"a": 2, "l": [{"x": 1}]}), &want));
    assert!(
        !holds(&json!({"a": 1, "l": [{"x": 1}, {"x": 2}]}), &want),
        "a longer list differs"
    );
    assert!(
        !holds(&json!({"l": [{"x": 1}]}), &want),
        "a missing field differs"
    );
}
