//! The caches the webhooks read: kube-runtime reflectors of NADs (metadata
//! only, all namespaces), Nodes (metadata only), node states and policies
//! (operator namespace), and a watch of the injector's control-switches
//! ConfigMap. No request does a GET.

use std::sync::{Arc, RwLock};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use sriov_crds::{SriovNetworkNodePolicy, SriovNetworkNodeState};

use super::injector::{CONTROL_SWITCHES_CONFIGMAP, InjectorSwitches, NadInfo, NadSource};
use super::operator_webhook::{ClusterSource, ClusterView};
use super::{NODE_SELECTOR_ANNOTATION, RESOURCE_NAME_ANNOTATION};
use crate::nad::NetworkAttachmentDefinition;

/// Reflector stores of what the webhooks read.
#[derive(Clone)]
pub struct Caches {
    nads: Store<PartialObjectMeta<NetworkAttachmentDefinition>>,
    nodes: Store<PartialObjectMeta<Node>>,
    states: Store<SriovNetworkNodeState>,
    policies: Store<SriovNetworkNodePolicy>,
}

impl NadSource for Caches {
    fn nad(&self, namespace: &str, name: &str) -> Option<NadInfo> {
        let nad = self.nads.get(&ObjectRef::new(name).within(namespace))?;
        let annotations = nad.annotations();
        Some(NadInfo {
            resource_name: annotations.get(RESOURCE_NAME_ANNOTATION).cloned(),
            node_selector: annotations.get(NODE_SELECTOR_ANNOTATION).cloned(),
        })
    }
}

impl ClusterSource for Caches {
    fn view(&self) -> ClusterView {
        ClusterView {
            nodes: self
                .nodes
                .state()
                .iter()
                .map(|n| (n.name_any(), n.labels().clone()))
                .collect(),
            node_states: self.states.state().iter().map(|s| (**s).clone()).collect(),
            policies: self
                .policies
                .state()
                .iter()
                .map(|p| (**p).clone())
                .collect(),
        }
    }
}

fn run_reflector<K>(api: Api<K>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    tokio::spawn(stream.for_each(|_| futures::future::ready(())));
    reader
}

/// Starts the reflectors and the control-switches watch (on the current
/// tokio runtime); [`Caches::wait_until_ready`] tells when they have listed.
pub fn start(
    client: Client,
    operator_namespace: &str,
    switches: Arc<RwLock<InjectorSwitches>>,
) -> Caches {
    let caches = Caches {
        nads: run_reflector(Api::<PartialObjectMeta<NetworkAttachmentDefinition>>::all(
            client.clone(),
        )),
        nodes: run_reflector(Api::<PartialObjectMeta<Node>>::all(client.clone())),
        states: run_reflector(Api::<SriovNetworkNodeState>::namespaced(
            client.clone(),
            operator_namespace,
        )),
        policies: run_reflector(Api::<SriovNetworkNodePolicy>::namespaced(
            client.clone(),
            operator_namespace,
        )),
    };
    let configmaps = Api::<ConfigMap>::namespaced(client, operator_namespace);
    let config =
        watcher::Config::default().fields(&format!("metadata.name={CONTROL_SWITCHES_CONFIGMAP}"));
    tokio::spawn(async move {
        let mut events = watcher(configmaps, config)
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(event) = events.next().await {
            if let Ok(cm) = event {
                let text = cm
                    .data
                    .as_ref()
                    .and_then(|d| d.get("config.json"))
                    .cloned()
                    .unwrap_or_default();
                let parsed = InjectorSwitches::from_config_json(&text);
                *switches.write().expect("switches lock") = parsed;
                tracing::info!(?parsed, "injector control switches");
            }
        }
    });
    caches
}

impl Caches {
    /// Returns once every store has its first list.
    pub async fn wait_until_ready(&self) {
        let _ = self.nads.wait_until_ready().await;
        let _ = self.nodes.wait_until_ready().await;
        let _ = self.states.wait_until_ready().await;
        let _ = self.policies.wait_until_ready().await;
    }
}
