//! One node's share of the render: its `SriovNetworkNodeState` spec (the
//! policy merge of `sriov_crds::policy_merge` over the PFs its daemon
//! reported, plus the pool's rdmaMode), its device-plugin config (the
//! ConfigMap key, byte-compatible with upstream) and the merge outcome the
//! policy statuses are built from. Pure: depends only on its arguments, so
//! the controllers can render one node at a time.

use std::collections::BTreeMap;

use sriov_crds::device_plugin_config::DevicePluginConfig;
use sriov_crds::nic_ids::NicIdList;
use sriov_crds::node_state::System;
use sriov_crds::policy_merge::{NodeMerge, merge_node, render_device_plugin_config};
use sriov_crds::{
    InterfaceExt, SriovNetworkNodePolicy, SriovNetworkNodeState, SriovNetworkNodeStateSpec,
    SriovNetworkPoolConfig,
};

use super::pools::{PoolMembership, pool_config_of, pool_of};

/// What is rendered for one node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRender {
    /// Node (and node state) name.
    pub node: String,
    /// The desired spec. When the daemon has not reported any PF yet, the
    /// existing spec is kept (upstream skips the update); a new node state
    /// gets an empty spec.
    pub spec: SriovNetworkNodeStateSpec,
    /// True when the spec comes from the merge (the node reported PFs).
    pub merged: bool,
    /// The merge outcome (groups, conflicts, policies that select the node).
    pub merge: NodeMerge,
    /// The device-plugin config of the node.
    pub device_plugin: DevicePluginConfig,
    /// Its ConfigMap value, byte for byte as upstream writes it.
    pub device_plugin_json: String,
    /// The node's pool.
    pub pool: PoolMembership,
}

impl NodeRender {
    /// `Enabled` when the node has at least one device-plugin resource, else `Disabled`.
    pub fn device_plugin_label(&self) -> &'static str {
        if self.device_plugin.resource_list.is_empty() {
            DEVICE_PLUGIN_DISABLED
        } else {
            DEVICE_PLUGIN_ENABLED
        }
    }
}

/// Node label the device-plugin DaemonSet selects on.
pub const DEVICE_PLUGIN_LABEL: &str = "sriovnetwork.openshift.io/device-plugin";
/// Label value: the node has resources.
pub const DEVICE_PLUGIN_ENABLED: &str = "Enabled";
/// Label value: the node has no resources.
pub const DEVICE_PLUGIN_DISABLED: &str = "Disabled";

/// The inputs shared by every node of one render.
#[derive(Debug, Clone, Copy)]
pub struct NodeContext<'a> {
    /// Policies of the operator namespace.
    pub policies: &'a [SriovNetworkNodePolicy],
    /// Pool configs of the operator namespace.
    pub pools: &'a [SriovNetworkPoolConfig],
    /// The supported-NIC list (PF → VF device id).
    pub nics: &'a NicIdList,
}

/// Renders one node.
pub fn render_node(
    ctx: NodeContext<'_>,
    node: &str,
    labels: &BTreeMap<String, String>,
    state: Option<&SriovNetworkNodeState>,
) -> NodeRender {
    let reported: &[InterfaceExt] = state
        .and_then(|s| s.status.as_ref())
        .map(|s| s.interfaces.as_slice())
        .unwrap_or_default();
    let merge = merge_node(ctx.policies, labels, reported);
    let pool = pool_of(ctx.pools, labels);
    let rdma_mode = pool_config_of(ctx.pools, labels)
        .map(|p| p.spec.rdma_mode.clone())
        .unwrap_or_default();
    let merged = !reported.is_empty();
    let spec = if merged {
        SriovNetworkNodeStateSpec {
            interfaces: merge.interfaces.clone(),
            system: system(&rdma_mode),
            bridges: state.and_then(|s| s.spec.bridges.clone()),
        }
    } else {
        match state {
            Some(s) => s.spec.clone(),
            None => SriovNetworkNodeStateSpec {
                system: system(&rdma_mode),
                ..Default::default()
            },
        }
    };
    let device_plugin =
        render_device_plugin_config(ctx.policies, labels, reported, &merge, ctx.nics);
    let device_plugin_json = device_plugin.to_upstream_json();
    NodeRender {
        node: node.to_string(),
        spec,
        merged,
        merge,
        device_plugin,
        device_plugin_json,
        pool,
    }
}

fn system(rdma_mode: &str) -> Option<System> {
    (!rdma_mode.is_empty()).then(|| System {
        rdma_mode: rdma_mode.to_string(),
        ..Default::default()
    })
}
