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

/// The `kind` `name` of the manifest for the operator `namespace`, typed.
fn filled<T: serde::de::DeserializeOwned>(kind: &str, name: &str, namespace: &str) -> T {
    let mut value = documents()
        .into_iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("deploy/operator/webhooks.yaml has no {kind} {name}"));
    for w in value["webhooks"].as_array_mut().into_iter().flatten() {
        if w["clientConfig"]["service"]["namespace"] == MANIFEST_NAMESPACE {
            w["clientConfig"]["service"]["namespace"] = Value::String(namespace.to_string());
        }
    }
    serde_json::from_value(value).unwrap_or_else(|e| panic!("{kind} {name}: {e}"))
}

fn ca(ca_bundle: Option<&[u8]>) -> Option<ByteString> {
    ca_bundle.map(|b| ByteString(b.to_vec()))
}

/// The `MutatingWebhookConfiguration` `name`, trusting `ca_bundle`.
fn mutating(name: &str, namespace: &str, ca_bundle: Option<&[u8]>) -> MutatingWebhookConfiguration {
    let mut m: MutatingWebhookConfiguration =
        filled("MutatingWebhookConfiguration", name, namespace);
    for w in m.webhooks.iter_mut().flatten() {
        w.client_config.ca_bundle = ca(ca_bundle);
    }
    m
}

/// The `ValidatingWebhookConfiguration` `name`, trusting `ca_bundle`.
fn validating(
    name: &str,
    namespace: &str,
    ca_bundle: Option<&[u8]>,
) -> ValidatingWebhookConfiguration {
    let mut v: ValidatingWebhookConfiguration =
        filled("ValidatingWebhookConfiguration", name, namespace);
    for w in v.webhooks.iter_mut().flatten() {
        w.client_config.ca_bundle = ca(ca_bundle);
    }
    v
}

/// The operator webhook's configurations (mutating, validating) for the
/// operator `namespace`, trusting `ca_bundle` (PEM; None leaves it to
/// cert-manager's CA injector).
pub fn operator_webhook(
    namespace: &str,
    ca_bundle: Option<&[u8]>,
) -> (MutatingWebhookConfiguration, ValidatingWebhookConfiguration) {
    (
        mutating(OPERATOR_WEBHOOK_CONFIG, namespace, ca_bundle),
        validating(OPERATOR_WEBHOOK_CONFIG, namespace, ca_bundle),
    )
}

/// The injector's configuration for the operator `namespace`.
pub fn injector(namespace: &str, ca_bundle: Option<&[u8]>) -> MutatingWebhookConfiguration {
    mutating(INJECTOR_WEBHOOK_CONFIG, namespace, ca_bundle)
}
