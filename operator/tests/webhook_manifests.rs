//! deploy/operator/webhooks.yaml: typed as the API server would read it,
//! upstream's names and paths, failurePolicy Fail, and the injector's CEL
//! matchConditions (a pod without networks never reaches the webhook).

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::DaemonSet;
use serde_json::Value;
use sriov_operator::webhook::certs::{
    INJECTOR_SERVICE, INJECTOR_WEBHOOK_CONFIG, OPERATOR_WEBHOOK_CONFIG, OPERATOR_WEBHOOK_SERVICE,
    SECRET_NAME,
};
use sriov_operator::webhook::{PATH_INJECTOR, PATH_MUTATING, PATH_READYZ, PATH_VALIDATING};

fn docs() -> Vec<Value> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/operator/webhooks.yaml");
    serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn find(kind: &str, name: &str) -> Value {
    docs()
        .into_iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name}"))
}

#[test]
fn webhook_configurations() {
    let m: MutatingWebhookConfiguration = serde_json::from_value(find(
        "MutatingWebhookConfiguration",
        OPERATOR_WEBHOOK_CONFIG,
    ))
    .unwrap();
    let w = &m.webhooks.unwrap()[0];
    assert_eq!(w.failure_policy.as_deref(), Some("Fail"));
    let svc = w.client_config.service.as_ref().unwrap();
    assert_eq!(
        (svc.name.as_str(), svc.path.as_deref()),
        (OPERATOR_WEBHOOK_SERVICE, Some(PATH_MUTATING))
    );

    let v: ValidatingWebhookConfiguration = serde_json::from_value(find(
        "ValidatingWebhookConfiguration",
        OPERATOR_WEBHOOK_CONFIG,
    ))
    .unwrap();
    let w = &v.webhooks.unwrap()[0];
    assert_eq!(w.failure_policy.as_deref(), Some("Fail"));
    assert_eq!(
        w.client_config.service.as_ref().unwrap().path.as_deref(),
        Some(PATH_VALIDATING)
    );
    let resources: Vec<String> = w
        .rules
        .iter()
        .flatten()
        .flat_map(|r| r.resources.clone().unwrap_or_default())
        .collect();
    for r in [
        "sriovnetworknodepolicies",
        "sriovoperatorconfigs",
        "sriovnetworkpoolconfigs",
        "sriovnetworks",
        "sriovibnetworks",
        "ovsnetworks",
    ] {
        assert!(resources.contains(&r.to_string()), "{r}");
    }

    let i: MutatingWebhookConfiguration = serde_json::from_value(find(
        "MutatingWebhookConfiguration",
        INJECTOR_WEBHOOK_CONFIG,
    ))
    .unwrap();
    let w = &i.webhooks.unwrap()[0];
    assert_eq!(w.failure_policy.as_deref(), Some("Fail"));
    let svc = w.client_config.service.as_ref().unwrap();
    assert_eq!(
        (svc.name.as_str(), svc.path.as_deref()),
        (INJECTOR_SERVICE, Some(PATH_INJECTOR))
    );
    let conditions = w.match_conditions.as_ref().unwrap();
    assert_eq!(
        conditions[0].expression,
        r#"has(object.metadata.annotations) && "k8s.v1.cni.cncf.io/networks" in object.metadata.annotations"#
    );
    assert_eq!(
        w.rules.as_ref().unwrap()[0].operations.as_ref().unwrap(),
        &["CREATE"]
    );
}

#[test]
fn daemonsets_serve_upstreams_services_with_their_secrets() {
    for (name, service, secret, sa) in [
        (
            "operator-webhook",
            OPERATOR_WEBHOOK_SERVICE,
            SECRET_NAME,
            "operator-webhook-sa",
        ),
        (
            "network-resources-injector",
            INJECTOR_SERVICE,
            "network-resources-injector-cert",
            "network-resources-injector-sa",
        ),
    ] {
        let d: DaemonSet = serde_json::from_value(find("DaemonSet", name)).unwrap();
        let pod = d.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some(sa));
        find("ServiceAccount", sa);
        let c = &pod.containers[0];
        let args = c.args.clone().unwrap().join(" ");
        assert!(
            args.starts_with(
                "webhook --listen=0.0.0.0:6443 --tls-cert=/etc/tls/tls.crt --tls-key=/etc/tls/tls.key"
            ),
            "{args}"
        );
        assert_eq!(
            c.readiness_probe
                .as_ref()
                .unwrap()
                .http_get
                .as_ref()
                .unwrap()
                .path
                .as_deref(),
            Some(PATH_READYZ)
        );
        let s = pod.volumes.unwrap()[0].secret.clone().unwrap();
        assert_eq!(s.secret_name.as_deref(), Some(secret));
        assert_eq!(find("Service", service)["spec"]["selector"]["app"], name);
        // Both service accounts get the caches' RBAC.
        for kind in ["ClusterRoleBinding", "RoleBinding"] {
            let b = find(kind, "sriov-network-webhook");
            assert!(
                b["subjects"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["name"] == sa),
                "{kind} lacks {sa}"
            );
        }
    }
}

#[test]
fn configuration_objects_for_the_controller() {
    use sriov_operator::webhook::configs;
    let (m, v) = configs::operator_webhook("my-ns", Some(b"PEM"));
    for c in m
        .webhooks
        .iter()
        .flatten()
        .map(|w| &w.client_config)
        .chain(v.webhooks.iter().flatten().map(|w| &w.client_config))
    {
        assert_eq!(c.service.as_ref().unwrap().namespace, "my-ns");
        assert_eq!(c.ca_bundle.as_ref().unwrap().0, b"PEM");
    }
    let i = configs::injector("my-ns", None);
    let w = &i.webhooks.unwrap()[0];
    assert_eq!(w.client_config.service.as_ref().unwrap().namespace, "my-ns");
    assert!(w.client_config.ca_bundle.is_none());
    assert!(w.match_conditions.is_some());
}
