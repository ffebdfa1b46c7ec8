//! The operator deploys the webhooks, as the Go operator does: when
//! `SriovOperatorConfig` `default` has `enableOperatorWebhook` /
//! `enableInjector`, the serving certificate in its Secret
//! ([`certs::ensure_secret`]), the DaemonSet running
//! `sriov-network-operator webhook` and its Service (upstream's names:
//! `operator-webhook` / `operator-webhook-service`,
//! `network-resources-injector` / `network-resources-injector-service`), and
//! — once a pod of the DaemonSet is ready, so admission never points at a
//! server that is not up yet — the webhook configurations with the CA in
//! their `caBundle`. When the flag turns false the configurations go first
//! (the API server stops calling), then the Service and the DaemonSet. The
//! Secret stays (re-enabling reuses its CA).
//!
//! Templates: `deploy/operator/webhooks.yaml` (compiled in). Images:
//! `SRIOV_NETWORK_WEBHOOK_IMAGE`, `NETWORK_RESOURCES_INJECTOR_IMAGE`.
//! Certificates: `ADMISSION_CONTROLLERS_CERTIFICATES_*` (Secret names; with
//! cert-manager the operator writes no Secret and no `caBundle`, and
//! annotates the configurations with `cert-manager.io/inject-ca-from`).
//! Every write is a server-side apply of what differs; an unchanged pass
//! only reads (the Secret, the Service, the configurations).

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{EnvVar, LocalObjectReference, PodSpec, Service};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};
use sriov_crds::SriovOperatorConfig;

use super::certs::{
    self, CERT_MANAGER_INJECT_ANNOTATION, INJECTOR_SERVICE, INJECTOR_WEBHOOK_CONFIG,
    OPERATOR_WEBHOOK_CONFIG, OPERATOR_WEBHOOK_SERVICE,
};
use super::configs;
use crate::render::FIELD_MANAGER;
use crate::render::daemonsets::log_filter;
use crate::render::owner_ref_to_config;
use crate::settings::Settings;

const MANIFEST: &str = include_str!("../../../deploy/operator/webhooks.yaml");

/// Upstream's DaemonSet of the operator webhook.
pub const OPERATOR_WEBHOOK_NAME: &str = "operator-webhook";
/// Upstream's DaemonSet of the network-resources injector.
pub const INJECTOR_NAME: &str = "network-resources-injector";
/// Upstream's feature gate: `false` gives upstream's default injector
/// configuration (`failurePolicy: Ignore`, no `matchConditions`).
pub const MATCH_CONDITION_GATE: &str = "resourceInjectorMatchCondition";

/// Which of the two servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// The operator webhook (`enableOperatorWebhook`).
    OperatorWebhook,
    /// The network-resources injector (`enableInjector`).
    Injector,
}

impl Component {
    /// Both, in deployment order.
    pub const ALL: [Component; 2] = [Component::OperatorWebhook, Component::Injector];

    /// The DaemonSet's name.
    pub fn name(self) -> &'static str {
        match self {
            Component::OperatorWebhook => OPERATOR_WEBHOOK_NAME,
            Component::Injector => INJECTOR_NAME,
        }
    }

    /// The Service's name.
    pub fn service(self) -> &'static str {
        match self {
            Component::OperatorWebhook => OPERATOR_WEBHOOK_SERVICE,
            Component::Injector => INJECTOR_SERVICE,
        }
    }

    /// The Secret of its serving certificate.
    pub fn secret(self, settings: &Settings) -> &str {
        match self {
            Component::OperatorWebhook => &settings.webhook_certs.operator_secret,
            Component::Injector => &settings.webhook_certs.injector_secret,
        }
    }

    /// Whether the operator config asks for it.
    pub fn enabled(self, config: &SriovOperatorConfig) -> bool {
        match self {
            Component::OperatorWebhook => config.spec.enable_operator_webhook.unwrap_or(false),
            Component::Injector => config.spec.enable_injector.unwrap_or(false),
        }
    }

    fn image(self, settings: &Settings) -> &str {
        match self {
            Component::OperatorWebhook => &settings.images.webhook,
            Component::Injector => &settings.images.injector,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Component::OperatorWebhook => "operator webhook",
            Component::Injector => "injector",
        }
    }
}

/// Why deploying the webhooks failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The serving certificate.
    #[error("webhook certificate: {0}")]
    Cert(#[from] certs::CertError),
    /// An API request.
    #[error("{what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// The client error.
        source: kube::Error,
    },
}

fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> DeployError {
    let what = what.into();
    move |source| DeployError::Api { what, source }
}

fn template<T: serde::de::DeserializeOwned>(kind: &str, name: &str) -> T {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(MANIFEST).expect("deploy/operator/webhooks.yaml is YAML");
    let doc = docs
        .into_iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("deploy/operator/webhooks.yaml has no {kind} {name}"));
    serde_json::from_value(doc).unwrap_or_else(|e| panic!("{kind} {name}: {e}"))
}

fn pod_spec(ds: &mut DaemonSet) -> &mut PodSpec {
    ds.spec
        .get_or_insert_with(Default::default)
        .template
        .spec
        .get_or_insert_with(Default::default)
}

fn set_env(envs: &mut Vec<EnvVar>, name: &str, value: &str) {
    let var = EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        value_from: None,
    };
    match envs.iter_mut().find(|e| e.name == name) {
        Some(e) => *e = var,
        None => envs.push(var),
    }
}

/// The component's DaemonSet for the operator config.
pub fn render_daemonset(
    component: Component,
    config: &SriovOperatorConfig,
    settings: &Settings,
) -> DaemonSet {
    let mut ds: DaemonSet = template("DaemonSet", component.name());
    ds.metadata.namespace = Some(settings.namespace.clone());
    ds.metadata.owner_references = owner_ref_to_config(config);
    let secret = component.secret(settings).to_string();
    let spec = pod_spec(&mut ds);
    if !settings.image_pull_secrets.is_empty() {
        spec.image_pull_secrets = Some(
            settings
                .image_pull_secrets
                .iter()
                .map(|s| LocalObjectReference { name: s.clone() })
                .collect(),
        );
    }
    for v in spec.volumes.iter_mut().flatten() {
        if let Some(s) = v.secret.as_mut() {
            s.secret_name = Some(secret.clone());
        }
    }
    for c in spec.containers.iter_mut() {
        c.image = Some(component.image(settings).to_string());
        let envs = c.env.get_or_insert_with(Vec::new);
        set_env(
            envs,
            "DEV_MODE",
            if settings.dev_mode { "TRUE" } else { "FALSE" },
        );
        set_env(envs, "SRIOV_LOG", log_filter(config.spec.log_level));
        // The injector requests no extended resource for a DRA pool's
        // network: it needs the pools and the prefix of their names.
        if component == Component::Injector && !settings.dra_resources.is_empty() {
            set_env(
                envs,
                "SRIOV_DRA_RESOURCES",
                &settings.dra_resources.join(","),
            );
            set_env(envs, "RESOURCE_PREFIX", &settings.resource_prefix);
        }
    }
    ds
}

/// The component's Service.
pub fn render_service(
    component: Component,
    config: &SriovOperatorConfig,
    settings: &Settings,
) -> Service {
    let mut svc: Service = template("Service", component.service());
    svc.metadata.namespace = Some(settings.namespace.clone());
    svc.metadata.owner_references = owner_ref_to_config(config);
    svc
}

/// The component's webhook configurations (JSON with apiVersion and kind),
/// trusting `ca_bundle` (None: cert-manager injects it).
pub fn render_configs(
    component: Component,
    config: &SriovOperatorConfig,
    settings: &Settings,
    ca_bundle: Option<&[u8]>,
) -> Vec<Value> {
    let ns = &settings.namespace;
    let mut out: Vec<Value> = match component {
        Component::OperatorWebhook => {
            let (m, v) = configs::operator_webhook(ns, ca_bundle);
            vec![
                typed_json(&m, "MutatingWebhookConfiguration"),
                typed_json(&v, "ValidatingWebhookConfiguration"),
            ]
        }
        Component::Injector => {
            let mut m = typed_json(
                &configs::injector(ns, ca_bundle),
                "MutatingWebhookConfiguration",
            );
            let gate = config
                .spec
                .feature_gates
                .as_ref()
                .and_then(|g| g.get(MATCH_CONDITION_GATE))
                .copied();
            if gate == Some(false) {
                for w in m["webhooks"].as_array_mut().into_iter().flatten() {
                    w["failurePolicy"] = json!("Ignore");
                    if let Some(o) = w.as_object_mut() {
                        o.remove("matchConditions");
                    }
                }
            }
            vec![m]
        }
    };
    if settings.webhook_certs.cert_manager {
        let from = format!("{ns}/{}", component.secret(settings));
        for c in &mut out {
            c["metadata"]["annotations"] = json!({ CERT_MANAGER_INJECT_ANNOTATION: from });
        }
    }
    out
}

fn typed_json<K: serde::Serialize + Resource<DynamicType = ()>>(obj: &K, kind: &str) -> Value {
    let mut v = serde_json::to_value(obj).expect("serializable");
    v["apiVersion"] = json!(K::api_version(&()));
    v["kind"] = json!(kind);
    v
}

/// `have` holds everything `want` says (objects key by key, lists item by
/// item with the same length; `null` asks for nothing): the API server's
/// defaults in `have` are ignored.
pub fn holds(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (_, Value::Null) => true,
        (Value::Object(h), Value::Object(w)) => w.iter().all(|(k, wv)| match h.get(k) {
            Some(hv) => holds(hv, wv),
            None => wv.is_null(),
        }),
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(a, b)| holds(a, b))
        }
        (h, w) => h == w,
    }
}

async fn apply_json<K>(api: &Api<K>, name: &str, obj: &Value) -> Result<(), DeployError>
where
    K: Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await
    .map_err(api_err(format!("apply {name}")))?;
    Ok(())
}

async fn delete_if_there<K>(api: &Api<K>, what: &str, name: &str) -> Result<bool, DeployError>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(api_err(format!("delete {what} {name}"))(e)),
    }
}

/// The pod template or the owner differ (the API server's defaults in the
/// running DaemonSet do not count).
fn daemonset_differs(want: &DaemonSet, have: Option<&DaemonSet>) -> bool {
    let Some(have) = have else { return true };
    let json = |d: &DaemonSet| serde_json::to_value(d).expect("serializable");
    let (w, h) = (json(want), json(have));
    !holds(&h["spec"]["template"], &w["spec"]["template"])
        || !holds(&h["spec"]["selector"], &w["spec"]["selector"])
        || want.metadata.owner_references != have.metadata.owner_references
}

fn ready_pods(ds: Option<&DaemonSet>) -> i32 {
    ds.and_then(|d| d.status.as_ref())
        .map(|s| s.number_ready)
        .unwrap_or(0)
}

/// What a pass did and where the webhooks stand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookOutcome {
    /// Objects written (applied or deleted).
    pub writes: usize,
    /// One line per enabled component for the config's condition.
    pub summary: Vec<String>,
}

/// Deploys the enabled components and removes the disabled ones.
/// `existing`: the DaemonSets of the operator namespace (the controller's
/// cache); a disabled component whose DaemonSet is not there costs no
/// request.
pub async fn reconcile_webhooks(
    client: &Client,
    settings: &Settings,
    config: &SriovOperatorConfig,
    existing: &[DaemonSet],
) -> Result<WebhookOutcome, DeployError> {
    let mut out = WebhookOutcome::default();
    for component in Component::ALL {
        let have = existing.iter().find(|d| d.name_any() == component.name());
        if component.enabled(config) {
            deploy(client, settings, config, component, have, &mut out).await?;
        } else if have.is_some() {
            out.writes += remove(client, settings, component).await?;
        }
    }
    Ok(out)
}

async fn deploy(
    client: &Client,
    settings: &Settings,
    config: &SriovOperatorConfig,
    component: Component,
    have: Option<&DaemonSet>,
    out: &mut WebhookOutcome,
) -> Result<(), DeployError> {
    let ns = &settings.namespace;
    // 1. The serving certificate (before the pods that mount it).
    let ca = if settings.webhook_certs.cert_manager {
        None
    } else {
        let ensured = certs::ensure_secret(
            client.clone(),
            ns,
            component.secret(settings),
            &[component.service()],
            certs::Lifetimes::default(),
        )
        .await?;
        (!ensured.cert_manager).then_some(ensured.ca_bundle)
    };
    // 2. The Service.
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let svc = typed_json(&render_service(component, config, settings), "Service");
    let current = services
        .get_opt(component.service())
        .await
        .map_err(api_err(format!("read Service {}", component.service())))?;
    let current = current.map(|s| serde_json::to_value(s).expect("serializable"));
    let svc_differs = match &current {
        None => true,
        Some(c) => {
            !holds(&c["spec"], &svc["spec"])
                || !holds(
                    &c["metadata"]["ownerReferences"],
                    &svc["metadata"]["ownerReferences"],
                )
        }
    };
    if svc_differs {
        apply_json(&services, component.service(), &svc).await?;
        out.writes += 1;
    }
    // 3. The DaemonSet.
    let ds = render_daemonset(component, config, settings);
    if daemonset_differs(&ds, have) {
        let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), ns);
        apply_json(&daemonsets, component.name(), &typed_json(&ds, "DaemonSet")).await?;
        out.writes += 1;
    }
    // 4. The configurations, once the server answers.
    let ready = ready_pods(have);
    if ready == 0 {
        out.summary.push(format!(
            "{}: waiting for a ready pod of DaemonSet {} before writing its webhook configuration",
            component.what(),
            component.name()
        ));
        return Ok(());
    }
    for cfg in render_configs(
        component,
        config,
        settings,
        ca.as_deref().map(str::as_bytes),
    ) {
        let name = cfg["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = cfg["kind"].as_str().unwrap_or_default().to_string();
        let written = if kind == "ValidatingWebhookConfiguration" {
            apply_config::<
                k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration,
            >(client, &name, &cfg)
            .await?
        } else {
            apply_config::<k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration>(
                client, &name, &cfg,
            )
            .await?
        };
        out.writes += usize::from(written);
    }
    out.summary.push(format!(
        "{}: serving ({ready} ready pod(s) of DaemonSet {})",
        component.what(),
        component.name()
    ));
    Ok(())
}

async fn apply_config<K>(client: &Client, name: &str, want: &Value) -> Result<bool, DeployError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::all(client.clone());
    let current = api
        .get_opt(name)
        .await
        .map_err(api_err(format!("read {name}")))?
        .map(|c| serde_json::to_value(c).expect("serializable"));
    let same = current.as_ref().is_some_and(|c| {
        holds(&c["webhooks"], &want["webhooks"])
            && holds(
                &c["metadata"]["annotations"],
                &want["metadata"]["annotations"],
            )
    });
    if same {
        return Ok(false);
    }
    apply_json(&api, name, want).await?;
    Ok(true)
}

/// Removes a component: its configurations first, then the Service and the
/// DaemonSet. Returns how many objects were deleted.
pub async fn remove(
    client: &Client,
    settings: &Settings,
    component: Component,
) -> Result<usize, DeployError> {
    use k8s_openapi::api::admissionregistration::v1::{
        MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
    };
    let mut deleted = 0;
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    match component {
        Component::OperatorWebhook => {
            deleted += usize::from(
                delete_if_there(
                    &mutating,
                    "MutatingWebhookConfiguration",
                    OPERATOR_WEBHOOK_CONFIG,
                )
                .await?,
            );
            deleted += usize::from(
                delete_if_there(
                    &validating,
                    "ValidatingWebhookConfiguration",
                    OPERATOR_WEBHOOK_CONFIG,
                )
                .await?,
            );
        }
        Component::Injector => {
            deleted += usize::from(
                delete_if_there(
                    &mutating,
                    "MutatingWebhookConfiguration",
                    INJECTOR_WEBHOOK_CONFIG,
                )
                .await?,
            );
        }
    }
    let services: Api<Service> = Api::namespaced(client.clone(), &settings.namespace);
    deleted += usize::from(delete_if_there(&services, "Service", component.service()).await?);
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), &settings.namespace);
    deleted += usize::from(delete_if_there(&daemonsets, "DaemonSet", component.name()).await?);
    Ok(deleted)
}
