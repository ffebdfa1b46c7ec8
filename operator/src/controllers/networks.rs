//! SriovNetwork / SriovIBNetwork → NetworkAttachmentDefinition, with the
//! upstream finalizer (`netattdef.finalizers.sriovnetwork.openshift.io` on
//! CRs in the operator namespace), the `last-network-namespace` annotation
//! (the old NAD is deleted when `networkNamespace` changes), waiting for a
//! missing namespace, refusing to overwrite a NAD owned by someone else, and
//! the `Ready` condition with the upstream reasons.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{Result, api_err, apply, apply_status, is_not_found, same_conditions};
use crate::nad::{LAST_NETWORK_NAMESPACE, NAD_FINALIZER, NetworkAttachmentDefinition};
use crate::output::with_type;
use crate::render::nad::NetworkView;
use crate::render::network::{NetworkCluster, NetworkOutcome, network_outcome};
use crate::settings::Settings;
use sriov_crds::conditions::{CONDITION_READY, set_condition};

/// What a network reconcile did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkWrites {
    /// The finalizer was added or removed.
    pub finalizer: bool,
    /// The NAD was applied.
    pub nad: bool,
    /// A NAD was deleted (namespace change or CR deletion).
    pub deleted_nad: bool,
    /// The status was applied.
    pub status: bool,
    /// The `Ready` condition's status, reason and message.
    pub ready: Option<(bool, String, String)>,
}

async fn delete_nad(client: &Client, ns: &str, name: &str) -> Result<()> {
    let api: Api<NetworkAttachmentDefinition> = Api::namespaced(client.clone(), ns);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(api_err(format!(
            "delete NetworkAttachmentDefinition {ns}/{name}"
        ))(e)),
    }
}

/// Reconciles one network CR of kind `K` (`view` made from it).
pub async fn reconcile_network<K>(
    client: &Client,
    settings: &Settings,
    net: &K,
    view: &NetworkView,
    conditions: &[Condition],
    cluster: &NetworkCluster<'_>,
    now: &Time,
) -> Result<NetworkWrites>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let mut writes = NetworkWrites::default();
    let name = net.name_any();
    let ns = net.namespace().unwrap_or_default();
    let api: Api<K> = Api::namespaced(client.clone(), &ns);
    let finalizers = net.finalizers().to_vec();
    let has_finalizer = finalizers.iter().any(|f| f == NAD_FINALIZER);
    let cross_ns_forbidden = !view.network_namespace.is_empty() && ns != settings.namespace;
    if !cross_ns_forbidden {
        if net.meta().deletion_timestamp.is_some() {
            if has_finalizer {
                delete_nad(client, view.target_namespace(), &name).await?;
                writes.deleted_nad = true;
                let rest: Vec<String> = finalizers
                    .into_iter()
                    .filter(|f| f != NAD_FINALIZER)
                    .collect();
                let patch = json!({"metadata": {"finalizers": rest,
                    "resourceVersion": net.resource_version()}});
                match api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                {
                    Ok(_) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(api_err(format!("remove finalizer of {name}"))(e)),
                }
                writes.finalizer = true;
            }
            return Ok(writes);
        }
        if ns == settings.namespace && !has_finalizer {
            let mut all = finalizers.clone();
            all.push(NAD_FINALIZER.to_string());
            let patch = json!({"metadata": {"finalizers": all,
                "resourceVersion": net.resource_version()}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .map_err(api_err(format!("add finalizer to {name}")))?;
            writes.finalizer = true;
        }
    }
    let outcome: NetworkOutcome = network_outcome(view, settings, cluster);
    if let Some(old) = &outcome.delete_in {
        delete_nad(client, old, &name).await?;
        writes.deleted_nad = true;
    }
    if let Some(nad) = &outcome.nad
        && !outcome.unchanged
    {
        let target = view.target_namespace();
        let nads: Api<NetworkAttachmentDefinition> = Api::namespaced(client.clone(), target);
        apply(&nads, &name, &with_type(nad)).await?;
        writes.nad = true;
    }
    if let Some(record) = &outcome.record_namespace
        && net.annotations().get(LAST_NETWORK_NAMESPACE) != Some(record)
    {
        let patch = json!({"metadata": {"annotations": {LAST_NETWORK_NAMESPACE: record}}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(api_err(format!(
                "annotate {name} with {LAST_NETWORK_NAMESPACE}"
            )))?;
    }
    writes.ready = Some((
        outcome.condition.ready,
        outcome.condition.reason.to_string(),
        outcome.condition.message.clone(),
    ));
    let mut new_conditions = conditions.to_vec();
    set_condition(
        &mut new_conditions,
        CONDITION_READY,
        outcome.condition.ready,
        outcome.condition.reason,
        &outcome.condition.message,
        net.meta().generation,
        now.clone(),
    );
    if !same_conditions(conditions, &new_conditions) {
        let obj = json!({
            "apiVersion": K::api_version(&()), "kind": K::kind(&()),
            "metadata": {"name": name, "namespace": ns},
            "status": {"conditions": new_conditions},
        });
        apply_status(&api, &name, &obj).await?;
        writes.status = true;
    }
    Ok(writes)
}
