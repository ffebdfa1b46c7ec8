//! `SriovOperatorConfig` `default` → the DaemonSets (config daemon, device
//! plugin, CNI installer), applied when they differ from what runs, and the
//! config's `Ready` condition (`OperatorConfigReady`,
//! `OperatorConfigSyncFailed`). Deleting the config deletes them.
//! `enableOperatorWebhook` / `enableInjector` deploy the admission webhooks
//! (`webhook::deploy`: certificates, DaemonSets, Services, configurations)
//! and remove them when they turn false; the condition's message says where
//! they stand.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::DeleteParams;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use sriov_crds::SriovOperatorConfig;
use sriov_crds::conditions::{CONDITION_READY, set_condition};

use super::{Result, api_err, apply, apply_status, is_not_found, same_conditions};
use crate::output::with_type;
use crate::render::daemonsets::{ALL, render_daemonsets};
use crate::settings::Settings;

/// `Ready` reason: the DaemonSets are applied.
pub const REASON_READY: &str = "OperatorConfigReady";
/// `Ready` reason: applying them failed.
pub const REASON_SYNC_FAILED: &str = "OperatorConfigSyncFailed";

fn template_differs(want: &DaemonSet, have: Option<&DaemonSet>) -> bool {
    let Some(have) = have else { return true };
    want.spec.as_ref().map(|s| &s.template.spec) != have.spec.as_ref().map(|s| &s.template.spec)
        || want.metadata.owner_references != have.metadata.owner_references
}

/// Applies the DaemonSets that differ from `existing` and sets the
/// condition; returns how many DaemonSets were applied. A failed apply is
/// reported in the condition (`OperatorConfigSyncFailed`) and returned as
/// the error, so the caller retries it.
pub async fn reconcile_operator_config(
    client: &Client,
    settings: &Settings,
    config: &SriovOperatorConfig,
    existing: &[DaemonSet],
    now: &Time,
) -> Result<usize> {
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), &settings.namespace);
    let mut applied = 0;
    let mut failure = None;
    for ds in render_daemonsets(config, settings) {
        let name = ds.name_any();
        let have = existing.iter().find(|d| d.name_any() == name);
        if !template_differs(&ds, have) {
            continue;
        }
        match apply(&api, &name, &with_type(&ds)).await {
            Ok(_) => applied += 1,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let mut webhooks = Vec::new();
    if failure.is_none() {
        match crate::webhook::deploy::reconcile_webhooks(client, settings, config, existing).await {
            Ok(o) => {
                applied += o.writes;
                webhooks = o.summary;
            }
            Err(e) => failure = Some(e.into()),
        }
    }
    let old = config
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut conditions = old.clone();
    let (ready, reason, message) = match &failure {
        None => (
            true,
            REASON_READY,
            std::iter::once(
                "the config daemon, device plugin and CNI DaemonSets are applied".to_string(),
            )
            .chain(webhooks)
            .collect::<Vec<_>>()
            .join("; "),
        ),
        Some(e) => (false, REASON_SYNC_FAILED, e.to_string()),
    };
    set_condition(
        &mut conditions,
        CONDITION_READY,
        ready,
        reason,
        &message,
        config.metadata.generation,
        now.clone(),
    );
    if !same_conditions(&old, &conditions) {
        let configs: Api<SriovOperatorConfig> =
            Api::namespaced(client.clone(), &settings.namespace);
        let obj = json!({
            "apiVersion": sriov_crds::API_VERSION, "kind": "SriovOperatorConfig",
            "metadata": {"name": config.name_any(), "namespace": settings.namespace},
            "status": {"conditions": conditions},
        });
        let written = apply_status(&configs, &config.name_any(), &obj).await;
        if let Some(e) = failure {
            return Err(e);
        }
        written?;
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(applied),
    }
}

/// The config is gone: delete the DaemonSets it deployed (their owner
/// reference would let the garbage collector do it too; this does not wait).
/// With `sweep`, every webhook component's configurations and Service are
/// deleted even when its DaemonSet is gone already (the garbage collector
/// was first); without, only those of the DaemonSets in `existing`.
pub async fn remove_deployed(
    client: &Client,
    settings: &Settings,
    existing: &[DaemonSet],
    sweep: bool,
) -> Result<usize> {
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), &settings.namespace);
    let mut deleted = 0;
    // The webhook configurations first: the API server must stop calling
    // servers that are going away (they are cluster-scoped, so no owner
    // reference removes them).
    for component in crate::webhook::deploy::Component::ALL {
        if sweep || existing.iter().any(|d| d.name_any() == component.name()) {
            deleted += crate::webhook::deploy::remove(client, settings, component).await?;
        }
    }
    for name in ALL {
        if !existing.iter().any(|d| d.name_any() == name) {
            continue;
        }
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => deleted += 1,
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api_err(format!("delete DaemonSet {name}"))(e)),
        }
    }
    Ok(deleted)
}
