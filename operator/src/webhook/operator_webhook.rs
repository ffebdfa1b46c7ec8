//! The operator webhook: defaults for policies (JSON patches) and the
//! validation of every kind, with `sriov_crds::rules` doing the checking.
//!
//! A rejection names the field, the value and the rule (`RuleError`s joined);
//! what upstream accepts but will not work comes back in the admission
//! `warnings` list.

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sriov_crds::manifests::fill_missing_spec;
use sriov_crds::nic_ids::NicIdList;
use sriov_crds::rules::admission::{NodeView, admit_policy};
use sriov_crds::rules::defaults::default_policy_spec;
use sriov_crds::rules::network::{
    check_ib_network_spec, check_network_namespace, check_network_spec, check_ovs_network_spec,
    ib_network_warnings, network_warnings, ovs_network_warnings,
};
use sriov_crds::rules::operator::{
    check_disable_drain_change, check_operator_config, check_pool_config, operator_config_warnings,
};
use sriov_crds::rules::policy::NicCheck;
use sriov_crds::rules::{RuleError, join};
use sriov_crds::{
    OVSNetwork, SriovIBNetwork, SriovNetwork, SriovNetworkNodePolicy, SriovNetworkNodeState,
    SriovNetworkPoolConfig, SriovOperatorConfig,
};

/// Name of upstream's deprecated default policy (never validated).
pub const DEFAULT_POLICY_NAME: &str = "default";

/// Settings of the operator webhook.
#[derive(Debug, Clone)]
pub struct OperatorWebhookConfig {
    /// The operator namespace (`NAMESPACE`).
    pub operator_namespace: String,
    /// `DEV_MODE=TRUE`: NICs outside the supported list are accepted.
    pub nic_check: NicCheck,
    /// The supported NIC list.
    pub nics: NicIdList,
}

impl Default for OperatorWebhookConfig {
    fn default() -> Self {
        Self {
            operator_namespace: crate::settings::DEFAULT_NAMESPACE.to_string(),
            nic_check: NicCheck::KnownOnly,
            nics: NicIdList::builtin(),
        }
    }
}

/// What the validation reads besides the request: the cluster as the
/// caches see it (`cache::Caches` in the server, a fixed value in tests).
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    /// Nodes: name and labels.
    pub nodes: Vec<(String, BTreeMap<String, String>)>,
    /// Node states (their status has the reported PFs and `syncStatus`).
    pub node_states: Vec<SriovNetworkNodeState>,
    /// Policies in the operator namespace.
    pub policies: Vec<SriovNetworkNodePolicy>,
}

impl ClusterView {
    /// Nodes with the PFs their state reports (`None`: no state or no status yet).
    pub fn node_views(&self) -> Vec<NodeView> {
        self.nodes
            .iter()
            .map(|(name, labels)| NodeView {
                name: name.clone(),
                labels: labels.clone(),
                pfs: self
                    .node_states
                    .iter()
                    .find(|s| s.name_any() == *name)
                    .and_then(|s| s.status.as_ref())
                    .filter(|st| !st.interfaces.is_empty() || !st.sync_status.is_empty())
                    .map(|st| st.interfaces.clone()),
            })
            .collect()
    }
}

/// Something that can give a [`ClusterView`] (the caches).
pub trait ClusterSource: Send + Sync {
    /// The current view.
    fn view(&self) -> ClusterView;
}

impl ClusterSource for ClusterView {
    fn view(&self) -> ClusterView {
        self.clone()
    }
}

/// A review's request, or a response saying it had none.
fn request_of(
    review: AdmissionReview<DynamicObject>,
) -> Result<AdmissionRequest<DynamicObject>, Box<AdmissionReview<DynamicObject>>> {
    review.try_into().map_err(|_| {
        Box::new(AdmissionResponse::invalid("the AdmissionReview has no request").into_review())
    })
}

fn typed<T: DeserializeOwned>(kind: &str, object: &DynamicObject) -> Result<T, String> {
    let mut value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    fill_missing_spec(kind, &mut value);
    serde_json::from_value(value).map_err(|e| format!("{kind} can't be read: {e}"))
}

fn with_warnings(mut response: AdmissionResponse, warnings: &[RuleError]) -> AdmissionResponse {
    if !warnings.is_empty() {
        response.warnings = Some(warnings.iter().map(ToString::to_string).collect());
    }
    response
}

/// `/mutating-custom-resource`: policy defaults as a JSON patch (CREATE and
/// UPDATE of `SriovNetworkNodePolicy`; everything else is allowed unchanged).
pub fn mutate(review: AdmissionReview<DynamicObject>) -> AdmissionReview<DynamicObject> {
    let req = match request_of(review) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let response = AdmissionResponse::from(&req);
    if req.kind.kind != "SriovNetworkNodePolicy"
        || !matches!(req.operation, Operation::Create | Operation::Update)
    {
        return response.into_review();
    }
    let Some(object) = &req.object else {
        return response.into_review();
    };
    let raw = serde_json::to_value(object).unwrap_or(Value::Null);
    let policy: SriovNetworkNodePolicy = match typed("SriovNetworkNodePolicy", object) {
        Ok(p) => p,
        Err(e) => return response.deny(e).into_review(),
    };
    let mut spec = policy.spec.clone();
    let changed = default_policy_spec(&mut spec);
    let mut ops = Vec::new();
    if !changed.is_empty() && raw.get("spec").is_none_or(Value::is_null) {
        ops.push(serde_json::json!({"op": "add", "path": "/spec", "value": {}}));
    }
    let spec_value = serde_json::to_value(&spec).unwrap_or(Value::Null);
    for field in changed {
        let key = field.path().trim_start_matches("/spec/");
        ops.push(serde_json::json!({"op": "add", "path": field.path(), "value": spec_value[key]}));
    }
    if ops.is_empty() {
        return response.into_review();
    }
    let patch: json_patch::Patch = match serde_json::from_value(Value::Array(ops)) {
        Ok(p) => p,
        Err(e) => {
            return response
                .deny(format!("building the patch: {e}"))
                .into_review();
        }
    };
    match response.clone().with_patch(patch) {
        Ok(r) => r.into_review(),
        Err(e) => response.deny(e.to_string()).into_review(),
    }
}

/// `/validating-custom-resource`: every rule of the kind in the request.
pub fn validate(
    review: AdmissionReview<DynamicObject>,
    config: &OperatorWebhookConfig,
    cluster: &dyn ClusterSource,
) -> AdmissionReview<DynamicObject> {
    let req = match request_of(review) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let response = AdmissionResponse::from(&req);
    let verdict = match verdict(&req, config, cluster) {
        Ok(v) => v,
        Err(message) => return response.deny(message).into_review(),
    };
    let response = with_warnings(response, &verdict.warnings);
    if verdict.errors.is_empty() {
        response.into_review()
    } else {
        let kind = &req.kind.kind;
        let name = if req.name.is_empty() {
            req.object
                .as_ref()
                .map(|o| o.name_any())
                .unwrap_or_default()
        } else {
            req.name.clone()
        };
        response
            .deny(format!(
                "{kind} {name} is invalid: {}",
                join(&verdict.errors)
            ))
            .into_review()
    }
}

/// Rejections and warnings for one request.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Rule violations (any rejects the request).
    pub errors: Vec<RuleError>,
    /// Admission warnings.
    pub warnings: Vec<RuleError>,
}

fn verdict(
    req: &AdmissionRequest<DynamicObject>,
    config: &OperatorWebhookConfig,
    cluster: &dyn ClusterSource,
) -> Result<Verdict, String> {
    let mut v = Verdict::default();
    let kind = req.kind.kind.as_str();
    let op_ns = config.operator_namespace.as_str();
    let object = match (&req.object, &req.operation) {
        (_, Operation::Delete) | (None, _) => {
            // Deletes are allowed (upstream: policies warn when outside the namespace).
            return Ok(v);
        }
        (Some(o), _) => o,
    };
    let namespace = object
        .namespace()
        .or_else(|| req.namespace.clone())
        .unwrap_or_default();
    match kind {
        "SriovNetworkNodePolicy" => {
            let policy: SriovNetworkNodePolicy = typed(kind, object)?;
            if policy.name_any() == DEFAULT_POLICY_NAME && namespace == op_ns {
                return Ok(v);
            }
            if namespace != op_ns {
                v.warnings.push(RuleError::new(
                    "metadata.namespace",
                    format!(
                        "{} is created or updated but not used: only policies in namespace {op_ns} are applied",
                        policy.name_any()
                    ),
                ));
            }
            let view = cluster.view();
            let admission = admit_policy(
                &policy,
                &view.node_views(),
                &view.policies,
                &config.nics,
                config.nic_check,
            );
            v.errors = admission.errors;
            v.warnings.extend(admission.warnings);
        }
        "SriovNetwork" => {
            let net: SriovNetwork = typed(kind, object)?;
            v.errors.extend(
                check_network_namespace(&namespace, &net.spec.network_namespace, op_ns).err(),
            );
            v.errors.extend(check_network_spec(&net.spec));
            v.warnings = network_warnings(&net.spec);
        }
        "SriovIBNetwork" => {
            let net: SriovIBNetwork = typed(kind, object)?;
            v.errors.extend(
                check_network_namespace(&namespace, &net.spec.network_namespace, op_ns).err(),
            );
            v.errors.extend(check_ib_network_spec(&net.spec));
            v.warnings = ib_network_warnings(&net.spec);
        }
        "OVSNetwork" => {
            let net: OVSNetwork = typed(kind, object)?;
            v.errors.extend(
                check_network_namespace(&namespace, &net.spec.network_namespace, op_ns).err(),
            );
            v.errors.extend(check_ovs_network_spec(&net.spec));
            v.warnings = ovs_network_warnings(&net.spec);
        }
        "SriovOperatorConfig" => {
            let mut cfg: SriovOperatorConfig = typed(kind, object)?;
            if cfg.namespace().is_none() {
                cfg.metadata.namespace = Some(namespace.clone());
            }
            let old: Option<SriovOperatorConfig> = match &req.old_object {
                Some(o) => Some(typed(kind, o)?),
                None => None,
            };
            v.errors = check_operator_config(&cfg, op_ns);
            if v.errors.is_empty() {
                let states = cluster.view().node_states;
                v.errors
                    .extend(check_disable_drain_change(old.as_ref(), &cfg, &states).err());
            }
            v.warnings = operator_config_warnings(&cfg);
        }
        "SriovNetworkPoolConfig" => {
            let pool: SriovNetworkPoolConfig = typed(kind, object)?;
            v.errors = check_pool_config(&pool);
        }
        _ => {}
    }
    Ok(v)
}
