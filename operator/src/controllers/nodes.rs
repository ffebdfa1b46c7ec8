//! Node states, node labels, the device-plugin ConfigMap, policy statuses
//! and stale node states. One node at a time: an event for a node or a
//! policy re-renders only the nodes it can touch, and a write happens only
//! when the rendered object differs from the cached one.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Node};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use sriov_crds::{SriovNetworkNodePolicy, SriovNetworkNodeState, SriovOperatorConfig};

use super::{Result, api_err, apply, apply_status, is_not_found, same_conditions};
use crate::output::with_type;
use crate::render::node::{DEVICE_PLUGIN_LABEL, NodeContext, NodeRender, render_node};
use crate::render::policy_status::{PolicyTally, policy_status};
use crate::render::pools::pool_conflict_condition;
use crate::render::{
    DEVICE_PLUGIN_CONFIG_MAP, device_plugin_config_map, node_state_object, owner_ref_to_config,
};
use crate::settings::Settings;

/// Annotation holding the time after which a node state without a node is deleted.
pub const KEEP_STATE_UNTIL: &str = "sriovnetwork.openshift.io/keep-state-until";

/// What a node reconcile wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeWrites {
    /// The node state spec was applied.
    pub state: bool,
    /// The node's device-plugin label was applied.
    pub label: bool,
}

/// Renders one node and writes its node state and label when they differ.
pub async fn reconcile_node(
    client: &Client,
    settings: &Settings,
    config: &SriovOperatorConfig,
    ctx: NodeContext<'_>,
    node: &Node,
    state: Option<&SriovNetworkNodeState>,
) -> Result<(NodeRender, NodeWrites)> {
    let name = node.name_any();
    let render = render_node(ctx, &name, node.labels(), state);
    let owner = owner_ref_to_config(config);
    let mut writes = NodeWrites::default();
    let kept = state.is_some_and(|s| s.annotations().contains_key(KEEP_STATE_UNTIL));
    let state_differs = match state {
        None => true,
        Some(s) => {
            s.spec != render.spec || (owner.is_some() && s.metadata.owner_references != owner)
        }
    };
    let states: Api<SriovNetworkNodeState> = Api::namespaced(client.clone(), &settings.namespace);
    if kept {
        // The node is back: cancel the pending deletion.
        states
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {KEEP_STATE_UNTIL: null}}})),
            )
            .await
            .map_err(api_err(format!(
                "clear {KEEP_STATE_UNTIL} of node state {name}"
            )))?;
    }
    if state_differs {
        let mut obj = with_type(&node_state_object(&render, settings, owner));
        // An apply whose spec has no field at all leaves `spec: null` behind
        // (the emptied map is dropped), which the CRD refuses (the cluster
        // lane found it when a node's last policy was deleted): the empty
        // interface list is said explicitly.
        if obj["spec"].as_object().is_none_or(|m| m.is_empty()) {
            obj["spec"] = json!({"interfaces": []});
        }
        apply(&states, &name, &obj).await?;
        writes.state = true;
    }
    let want = render.device_plugin_label();
    if node.labels().get(DEVICE_PLUGIN_LABEL).map(String::as_str) != Some(want) {
        let nodes: Api<Node> = Api::all(client.clone());
        let obj = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {DEVICE_PLUGIN_LABEL: want}}
        });
        apply(&nodes, &name, &obj).await?;
        writes.label = true;
    }
    Ok((render, writes))
}

/// Writes the `device-plugin-config` ConfigMap when its data differs from `existing`.
pub async fn reconcile_config_map<'a>(
    client: &Client,
    settings: &Settings,
    config: &SriovOperatorConfig,
    existing: Option<&ConfigMap>,
    renders: impl IntoIterator<Item = &'a NodeRender>,
) -> Result<bool> {
    let cm = device_plugin_config_map(renders, settings, owner_ref_to_config(config));
    let same = existing
        .is_some_and(|e| e.data.clone().unwrap_or_default() == cm.data.clone().unwrap_or_default());
    if same {
        return Ok(false);
    }
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &settings.namespace);
    apply(&api, DEVICE_PLUGIN_CONFIG_MAP, &with_type(&cm)).await?;
    Ok(true)
}

/// Writes a policy's status when counts or conditions changed.
pub async fn reconcile_policy_status(
    client: &Client,
    policy: &SriovNetworkNodePolicy,
    tally: Option<&PolicyTally>,
    now: &Time,
) -> Result<bool> {
    let status = policy_status(policy, tally, now);
    if let Some(old) = &policy.status
        && old.matched_nodes == status.matched_nodes
        && old.applied_nodes == status.applied_nodes
        && same_conditions(&old.conditions, &status.conditions)
    {
        return Ok(false);
    }
    let ns = policy.namespace().unwrap_or_default();
    let api: Api<SriovNetworkNodePolicy> = Api::namespaced(client.clone(), &ns);
    let obj = json!({
        "apiVersion": sriov_crds::API_VERSION, "kind": "SriovNetworkNodePolicy",
        "metadata": {"name": policy.name_any(), "namespace": ns},
        "status": status,
    });
    apply_status(&api, &policy.name_any(), &obj).await?;
    Ok(true)
}

/// What happened to a node state without a (selected) node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaleOutcome {
    /// `keep-state-until` set; look again after this long.
    Marked(Duration),
    /// Still within the grace; look again after this long.
    Waiting(Duration),
    /// Deleted.
    Deleted,
}

/// A node state whose node is gone or no longer selected: the device-plugin
/// label is removed from the node (if it still exists), the state gets
/// `keep-state-until` = now + grace and is deleted once that has passed
/// (grace 0: at once), as upstream.
pub async fn reconcile_stale_state(
    client: &Client,
    settings: &Settings,
    state: &SriovNetworkNodeState,
    node: Option<&Node>,
    now: &Time,
) -> Result<StaleOutcome> {
    let name = state.name_any();
    if let Some(node) = node
        && node.labels().contains_key(DEVICE_PLUGIN_LABEL)
    {
        let nodes: Api<Node> = Api::all(client.clone());
        nodes
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {DEVICE_PLUGIN_LABEL: null}}})),
            )
            .await
            .map_err(api_err(format!(
                "remove {DEVICE_PLUGIN_LABEL} from node {name}"
            )))?;
    }
    let states: Api<SriovNetworkNodeState> = Api::namespaced(client.clone(), &settings.namespace);
    let grace = Duration::from_secs(settings.stale_delay_minutes * 60);
    if !grace.is_zero() {
        let until = state
            .annotations()
            .get(KEEP_STATE_UNTIL)
            .and_then(|v| v.parse::<k8s_openapi::jiff::Timestamp>().ok());
        match until {
            None => {
                let until = now.0 + grace;
                let value = until.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
                states
                    .patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(
                            json!({"metadata": {"annotations": {KEEP_STATE_UNTIL: value}}}),
                        ),
                    )
                    .await
                    .map_err(api_err(format!("mark node state {name} for deletion")))?;
                return Ok(StaleOutcome::Marked(grace));
            }
            Some(t) if t > now.0 => {
                let left = t.duration_since(now.0);
                return Ok(StaleOutcome::Waiting(
                    Duration::try_from(left).unwrap_or(Duration::from_secs(1)),
                ));
            }
            Some(_) => {}
        }
    }
    match states.delete(&name, &DeleteParams::default()).await {
        Ok(_) => Ok(StaleOutcome::Deleted),
        Err(e) if is_not_found(&e) => Ok(StaleOutcome::Deleted),
        Err(e) => Err(api_err(format!("delete node state {name}"))(e)),
    }
}

/// Device-plugin JSON per node, for callers that keep renders in a map.
pub fn config_data(renders: &BTreeMap<String, NodeRender>) -> BTreeMap<String, String> {
    renders
        .iter()
        .map(|(k, r)| (k.clone(), r.device_plugin_json.clone()))
        .collect()
}

/// Writes the node state's `PoolConflict` condition when it changes
/// ([`pool_conflict_condition`]); returns the condition written.
pub async fn reconcile_pool_condition(
    client: &Client,
    settings: &Settings,
    render: &NodeRender,
    state: Option<&SriovNetworkNodeState>,
    now: &Time,
) -> Result<Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>> {
    let existing = state
        .and_then(|s| s.status.as_ref())
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let Some(cond) = pool_conflict_condition(&render.pool, existing, now) else {
        return Ok(None);
    };
    let states: Api<SriovNetworkNodeState> = Api::namespaced(client.clone(), &settings.namespace);
    let obj = json!({
        "apiVersion": sriov_crds::API_VERSION, "kind": "SriovNetworkNodeState",
        "metadata": {"name": render.node, "namespace": settings.namespace},
        "status": {"conditions": [cond]},
    });
    apply_status(&states, &render.node, &obj).await?;
    Ok(Some(cond))
}
