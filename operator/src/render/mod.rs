//! The pure core: the objects the operator watches in, the objects it would
//! write out. No I/O. `sriov-network-operator render` prints the output; the
//! controllers use the same functions per node and per network.
//!
//! - [`node`]: one node's state spec and device-plugin config;
//! - [`mod@policy_status`]: policy conditions and counts;
//! - [`nad`] and [`network`]: SriovNetwork/SriovIBNetwork → NAD and `Ready`;
//! - [`pools`]: pool membership and `maxUnavailable`;
//! - [`daemonsets`]: SriovOperatorConfig → the DaemonSets;
//! - [`input`]: reading a YAML stream of objects.

pub mod daemonsets;
pub mod input;
pub mod nad;
pub mod network;
pub mod node;
pub mod policy_status;
pub mod pools;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};
use sriov_crds::conditions::{CONDITION_READY, set_condition};
use sriov_crds::nic_ids::NicIdList;
use sriov_crds::operator_config::OPERATOR_CONFIG_NAME;
use sriov_crds::{
    SriovIBNetwork, SriovNetwork, SriovNetworkNodePolicy, SriovNetworkNodeState,
    SriovNetworkPoolConfig, SriovOperatorConfig,
};

use crate::nad::NetworkAttachmentDefinition;
use crate::settings::Settings;
use nad::NetworkView;
use network::{NetworkCluster, NetworkOutcome, network_outcome};
use node::{DEVICE_PLUGIN_LABEL, NodeContext, NodeRender, render_node};
use policy_status::{PolicyTally, policy_status, tally_node};

/// Name of the device-plugin ConfigMap (one key per node).
pub const DEVICE_PLUGIN_CONFIG_MAP: &str = "device-plugin-config";
/// Field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "sriov-network-operator";

/// Every object the operator watches.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Node states (with the daemons' status).
    pub node_states: Vec<SriovNetworkNodeState>,
    /// Policies (all namespaces; only the operator namespace's count).
    pub policies: Vec<SriovNetworkNodePolicy>,
    /// SriovNetworks.
    pub networks: Vec<SriovNetwork>,
    /// SriovIBNetworks.
    pub ib_networks: Vec<SriovIBNetwork>,
    /// OVSNetworks.
    pub ovs_networks: Vec<sriov_crds::OVSNetwork>,
    /// Operator configs (only `default` in the operator namespace counts).
    pub operator_configs: Vec<SriovOperatorConfig>,
    /// Pool configs.
    pub pool_configs: Vec<SriovNetworkPoolConfig>,
    /// Namespaces. When none is given at all, every namespace is taken to exist.
    pub namespaces: Vec<Namespace>,
    /// NADs already in the cluster (ownership checks).
    pub nads: Vec<NetworkAttachmentDefinition>,
}

/// The default `SriovOperatorConfig` of the operator namespace, if any.
pub fn operator_config<'a>(
    configs: &'a [SriovOperatorConfig],
    settings: &Settings,
) -> Option<&'a SriovOperatorConfig> {
    configs.iter().find(|c| {
        c.name_any() == OPERATOR_CONFIG_NAME
            && c.namespace().as_deref() == Some(settings.namespace.as_str())
    })
}

/// True when the node carries every `configDaemonNodeSelector` label (an
/// empty selector selects every node).
pub fn node_selected_by_config(
    config: &SriovOperatorConfig,
    labels: &BTreeMap<String, String>,
) -> bool {
    let selector = match &config.spec.config_daemon_node_selector {
        Some(s) if !s.is_empty() => s.clone(),
        // Upstream's GetDefaultNodeSelector: Linux workers.
        _ => daemonsets::default_node_selector(),
    };
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The controller ownerReference to `SriovOperatorConfig/default` (upstream
/// owns node states, the ConfigMap and the DaemonSets by it).
pub fn owner_ref_to_config(config: &SriovOperatorConfig) -> Option<Vec<OwnerReference>> {
    let uid = config.uid()?;
    Some(vec![OwnerReference {
        api_version: sriov_crds::API_VERSION.to_string(),
        kind: "SriovOperatorConfig".to_string(),
        name: config.name_any(),
        uid,
        controller: Some(true),
        block_owner_deletion: Some(true),
    }])
}

/// Objects of the operator namespace only.
pub fn in_namespace<'a, K>(objs: &'a [K], settings: &Settings) -> Vec<K>
where
    K: ResourceExt + Clone + 'a,
{
    objs.iter()
        .filter(|o| o.namespace().as_deref() == Some(settings.namespace.as_str()))
        .cloned()
        .collect()
}

/// A node state object as the operator applies it (spec and owner only).
pub fn node_state_object(
    render: &NodeRender,
    settings: &Settings,
    owner: Option<Vec<OwnerReference>>,
) -> SriovNetworkNodeState {
    let mut ns = SriovNetworkNodeState::new(&render.node, render.spec.clone());
    ns.metadata.namespace = Some(settings.namespace.clone());
    ns.metadata.owner_references = owner;
    ns
}

/// The `device-plugin-config` ConfigMap from every node's config.
pub fn device_plugin_config_map<'a>(
    renders: impl IntoIterator<Item = &'a NodeRender>,
    settings: &Settings,
    owner: Option<Vec<OwnerReference>>,
) -> ConfigMap {
    let data: BTreeMap<String, String> = renders
        .into_iter()
        .map(|r| (r.node.clone(), r.device_plugin_json.clone()))
        .collect();
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(DEVICE_PLUGIN_CONFIG_MAP.to_string()),
            namespace: Some(settings.namespace.clone()),
            owner_references: owner,
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    }
}

/// The label patch of a node (`sriovnetwork.openshift.io/device-plugin`).
pub fn node_label_object(render: &NodeRender) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(render.node.clone()),
            labels: Some(BTreeMap::from([(
                DEVICE_PLUGIN_LABEL.to_string(),
                render.device_plugin_label().to_string(),
            )])),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A network CR's status object with its `Ready` condition.
fn network_ready_conditions(
    existing: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    outcome: &NetworkOutcome,
    generation: Option<i64>,
    now: &Time,
) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    let mut conditions = existing.to_vec();
    set_condition(
        &mut conditions,
        CONDITION_READY,
        outcome.condition.ready,
        outcome.condition.reason,
        &outcome.condition.message,
        generation,
        now.clone(),
    );
    conditions
}

fn cluster_for<'a>(
    inputs: &'a Inputs,
    namespaces: Option<&BTreeSet<String>>,
    view: &NetworkView,
    annotations: &'a BTreeMap<String, String>,
) -> NetworkCluster<'a> {
    let target = view.target_namespace().to_string();
    NetworkCluster {
        namespace_exists: namespaces.is_none_or(|s| s.contains(&target)),
        existing: inputs.nads.iter().find(|n| {
            n.name_any() == view.name && n.namespace().as_deref() == Some(target.as_str())
        }),
        last_namespace: annotations
            .get(crate::nad::LAST_NETWORK_NAMESPACE)
            .map(String::as_str),
    }
}

/// Everything one render produces.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// Node states to apply (selected nodes).
    pub node_states: Vec<SriovNetworkNodeState>,
    /// The device-plugin ConfigMap (None without an operator config).
    pub config_map: Option<ConfigMap>,
    /// Node label patches.
    pub node_labels: Vec<Node>,
    /// Policies with their new status.
    pub policy_statuses: Vec<SriovNetworkNodePolicy>,
    /// NADs to apply.
    pub nads: Vec<NetworkAttachmentDefinition>,
    /// SriovNetworks with their new status.
    pub network_statuses: Vec<SriovNetwork>,
    /// SriovIBNetworks with their new status.
    pub ib_network_statuses: Vec<SriovIBNetwork>,
    /// OVSNetworks with their new status.
    pub ovs_network_statuses: Vec<sriov_crds::OVSNetwork>,
    /// DaemonSets deployed for the operator config.
    pub daemonsets: Vec<DaemonSet>,
    /// Per-node results (for tests and the controllers).
    pub nodes: Vec<NodeRender>,
    /// Warnings (e.g. no operator config).
    pub warnings: Vec<String>,
}

/// Renders everything.
pub fn render_all(inputs: &Inputs, settings: &Settings, nics: &NicIdList, now: &Time) -> Rendered {
    let mut out = Rendered::default();
    let policies = in_namespace(&inputs.policies, settings);
    let pools = in_namespace(&inputs.pool_configs, settings);
    let config = operator_config(&inputs.operator_configs, settings);
    let states: BTreeMap<String, &SriovNetworkNodeState> = inputs
        .node_states
        .iter()
        .filter(|s| s.namespace().as_deref() == Some(settings.namespace.as_str()))
        .map(|s| (s.name_any(), s))
        .collect();
    match config {
        None => out.warnings.push(format!(
            "no SriovOperatorConfig \"default\" in namespace {}: like the Go operator, no node state, device-plugin config or DaemonSet is rendered",
            settings.namespace
        )),
        Some(config) => {
            let ctx = NodeContext {
                policies: &policies,
                pools: &pools,
                nics,
            };
            let owner = owner_ref_to_config(config);
            let mut nodes: Vec<&Node> = inputs
                .nodes
                .iter()
                .filter(|n| node_selected_by_config(config, n.labels()))
                .collect();
            nodes.sort_by_key(|n| n.name_any());
            let mut tallies: BTreeMap<String, PolicyTally> = BTreeMap::new();
            for node in nodes {
                let name = node.name_any();
                let state = states.get(&name).copied();
                let r = render_node(ctx, &name, node.labels(), state);
                tally_node(&mut tallies, &r, state);
                out.node_states
                    .push(node_state_object(&r, settings, owner.clone()));
                out.node_labels.push(node_label_object(&r));
                out.nodes.push(r);
            }
            out.config_map = Some(device_plugin_config_map(&out.nodes, settings, owner.clone()));
            let mut sorted = policies.clone();
            sorted.sort_by_key(|p| p.name_any());
            for p in sorted {
                if p.name_any() == sriov_crds::policy_merge::DEPRECATED_DEFAULT_POLICY {
                    continue;
                }
                let status = policy_status(&p, tallies.get(&p.name_any()), now);
                let mut obj = SriovNetworkNodePolicy::new(&p.name_any(), Default::default());
                obj.metadata.namespace = p.namespace();
                obj.spec = p.spec.clone();
                obj.status = Some(status);
                out.policy_statuses.push(obj);
            }
            out.daemonsets = daemonsets::render_daemonsets(config, settings);
        }
    }
    let namespaces: Option<BTreeSet<String>> = (!inputs.namespaces.is_empty())
        .then(|| inputs.namespaces.iter().map(|n| n.name_any()).collect());
    let ns = namespaces.as_ref();
    out.network_statuses = render_networks(
        &inputs.networks,
        NetworkView::sriov,
        |n| &mut n.status.get_or_insert_with(Default::default).conditions,
        (inputs, ns, settings, now),
        &mut out.nads,
    );
    out.ib_network_statuses = render_networks(
        &inputs.ib_networks,
        NetworkView::ib,
        |n| &mut n.status.get_or_insert_with(Default::default).conditions,
        (inputs, ns, settings, now),
        &mut out.nads,
    );
    out.ovs_network_statuses = render_networks(
        &inputs.ovs_networks,
        NetworkView::ovs,
        |n| &mut n.status.get_or_insert_with(Default::default).conditions,
        (inputs, ns, settings, now),
        &mut out.nads,
    );
    out
}

/// Renders one kind of network (in namespace/name order): its NAD into
/// `nads`, and each object with its new `Ready` condition, returned.
fn render_networks<N: Clone + ResourceExt>(
    list: &[N],
    view: fn(&N) -> NetworkView,
    conditions: fn(&mut N) -> &mut Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
    (inputs, namespaces, settings, now): (&Inputs, Option<&BTreeSet<String>>, &Settings, &Time),
    nads: &mut Vec<NetworkAttachmentDefinition>,
) -> Vec<N> {
    let mut sorted = list.to_vec();
    sorted.sort_by_key(|n| (n.namespace(), n.name_any()));
    sorted
        .into_iter()
        .map(|mut n| {
            let v = view(&n);
            let outcome = network_outcome(
                &v,
                settings,
                &cluster_for(inputs, namespaces, &v, n.annotations()),
            );
            let generation = n.meta().generation;
            let conds = conditions(&mut n);
            *conds = network_ready_conditions(conds, &outcome, generation, now);
            nads.extend(outcome.nad);
            n
        })
        .collect()
}

/// apiVersion/kind of a typed object, for output.
pub fn type_meta<K: Resource<DynamicType = ()>>() -> (String, String) {
    (K::api_version(&()).to_string(), K::kind(&()).to_string())
}
