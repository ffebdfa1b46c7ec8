//! The webhook configurations as objects, for the controller that creates
//! and removes them after `SriovOperatorConfig.enableOperatorWebhook` /
//! `enableInjector`: read from `deploy/operator/webhooks.yaml` (compiled in,
//! one source of truth), with the namespace and `caBundle` filled in.

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use serde_json::Value;

use super::certs::{INJECTOR_WEBHOOK_CONFIG, OPERATOR_WEBHOOK_CONFIG};

const MANIFEST: &str = include_str!("../../../deploy/operator/webhooks.yaml");
const MANIFEST_NAMESPACE: &str = "sriov-network-operator";

fn documents() -> Vec<Value> {
    serde_saphyr::from_multiple(MANIFEST).expect("deploy/operator/webhooks.yaml is valid YAML")
}

fn find(kind: &str, name: &str) -> Value {
    documents()
        .into_iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("deploy/operator/webhooks.yaml has no {kind} {name}"))
}

fn fill(value: &mut Value, namespace: &str) {
    for w in value["webhooks"].as_array_mut().into_iter().flatten() {
        if w["clientConfig"]["service"]["namespace"] == MANIFEST_NAMESPACE {
            w["clientConfig"]["service"]["namespace"] = Value::String(namespace.to_string());
        }
    }
}

fn set_ca<'a>(
    client_configs: impl Iterator<
        Item = &'a mut k8s_openapi::api::admissionregistration::v1::WebhookClientConfig,
    >,
    ca_bundle: Option<&[u8]>,
) {
    for c in client_configs {
        c.ca_bundle = ca_bundle.map(|b| ByteString(b.to_vec()));
    }
}

/// The operator webhook's configurations (mutating, validating) for the
/// operator `namespace`, trusting `ca_bundle` (PEM; None leaves it to
/// cert-manager's CA injector).
pub fn operator_webhook(
    namespace: &str,
    ca_bundle: Option<&[u8]>,
) -> (MutatingWebhookConfiguration, ValidatingWebhookConfiguration) {
    let mut m = find("MutatingWebhookConfiguration", OPERATOR_WEBHOOK_CONFIG);
    fill(&mut m, namespace);
    let mut v = find("ValidatingWebhookConfiguration", OPERATOR_WEBHOOK_CONFIG);
    fill(&mut v, namespace);
    let mut m: MutatingWebhookConfiguration =
        serde_json::from_value(m).expect("a MutatingWebhookConfiguration");
    let mut v: ValidatingWebhookConfiguration =
        serde_json::from_value(v).expect("a ValidatingWebhookConfiguration");
    set_ca(
        m.webhooks
            .iter_mut()
            .flatten()
            .map(|w| &mut w.client_config),
        ca_bundle,
    );
    set_ca(
        v.webhooks
            .iter_mut()
            .flatten()
            .map(|w| &mut w.client_config),
        ca_bundle,
    );
    (m, v)
}

/// The injector's configuration for the operator `namespace`.
pub fn injector(namespace: &str, ca_bundle: Option<&[u8]>) -> MutatingWebhookConfiguration {
    let mut m = find("MutatingWebhookConfiguration", INJECTOR_WEBHOOK_CONFIG);
    fill(&mut m, namespace);
    let mut m: MutatingWebhookConfiguration =
        serde_json::from_value(m).expect("a MutatingWebhookConfiguration");
    set_ca(
        m.webhooks
            .iter_mut()
            .flatten()
            .map(|w| &mut w.client_config),
        ca_bundle,
    );
    m
}
