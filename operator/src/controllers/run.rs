//! Wiring: reflectors for every watched kind feed one work queue keyed per
//! node (and per network); a worker renders and writes only what changed.
//!
//! Event → keys: a Node or its node state → that node; a policy → the nodes
//! its old or new `nodeSelector` matches; a pool config or the operator
//! config → every node; a network, a NAD of its name, or the creation of its
//! target namespace → that network. Deletions count as much as changes: a
//! deleted policy re-renders the nodes it had selected, a deleted pool or
//! operator config every node, a deleted network or NAD its network; objects
//! deleted while a watch was re-listing are found by comparing the new list
//! with the objects seen before. Every 5 minutes everything is resynced.
//!
//! A failed write is retried per key with exponential backoff
//! ([`Tuning::retry_base`] doubling up to [`Tuning::retry_cap`]); a key that
//! succeeds again starts over.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use sriov_crds::nic_ids::NicIdList;
use sriov_crds::{
    OVSNetwork, SriovIBNetwork, SriovNetwork, SriovNetworkNodePolicy, SriovNetworkNodeState,
    SriovNetworkPoolConfig, SriovOperatorConfig,
};
use tokio::sync::mpsc;

use super::networks::reconcile_network;
use super::nodes::{
    StaleOutcome, reconcile_config_map, reconcile_node, reconcile_policy_status,
    reconcile_pool_condition, reconcile_stale_state,
};
use super::operator_config::{reconcile_operator_config, remove_deployed};
use crate::metrics::Metrics;
use crate::nad::NetworkAttachmentDefinition;
use crate::render::nad::NetworkView;
use crate::render::network::NetworkCluster;
use crate::render::node::{NodeContext, NodeRender};
use crate::render::policy_status::{PolicyTally, REASON_MERGE_CONFLICT, tally_node};
use crate::render::{in_namespace, node_selected_by_config, operator_config};
use crate::settings::Settings;

/// Full resync period (upstream: 5 min).
pub const RESYNC: Duration = Duration::from_secs(300);
/// Collects events for this long before a pass (bursts become one pass).
pub const BATCH: Duration = Duration::from_millis(20);
/// First retry of a failed key; doubled on each failure.
pub const RETRY_BASE: Duration = Duration::from_secs(1);
/// Longest wait between retries of a failing key.
pub const RETRY_CAP: Duration = Duration::from_secs(120);
/// A drain in progress is stepped again after this long.
pub const DRAIN_POLL: Duration = Duration::from_secs(5);

/// Timings of the loop and what it does at start (tests shorten them).
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Full resync period.
    pub resync: Duration,
    /// Event batching window.
    pub batch: Duration,
    /// First retry delay of a failed key.
    pub retry_base: Duration,
    /// Retry delay cap.
    pub retry_cap: Duration,
    /// Drain stepping period.
    pub drain_poll: Duration,
    /// Create `SriovOperatorConfig` `default` at start when it is missing.
    pub create_default_config: bool,
    /// `reportingInstance` of the Events (the pod name).
    pub instance: Option<String>,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            resync: RESYNC,
            batch: BATCH,
            retry_base: RETRY_BASE,
            retry_cap: RETRY_CAP,
            drain_poll: DRAIN_POLL,
            create_default_config: true,
            instance: None,
        }
    }
}

impl Tuning {
    /// Delay before retry number `failures` (1 = first failure).
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(20);
        self.retry_base.saturating_mul(factor).min(self.retry_cap)
    }
}

/// A unit of work.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// Render and write one node.
    Node(String),
    /// Every node (pool or operator config changed, resync).
    AllNodes,
    /// A policy changed: re-render the nodes of these selectors.
    Policy(String),
    /// The operator config (DaemonSets).
    Config,
    /// A network: (kind, namespace, name).
    Network(&'static str, String, String),
    /// Networks targeting a namespace (it was created).
    Namespace(String),
    /// A NAD changed: networks of this name in its namespace and the operator namespace.
    Nad(String, String),
    /// Drains in progress need another step.
    Drain,
    /// The device-plugin ConfigMap and the policy statuses (from the kept renders).
    Summary,
}

impl Key {
    /// The key of a network object of `kind` (`SriovNetwork`, ...).
    fn network(kind: &'static str, n: &impl ResourceExt) -> Key {
        let (kind, ns, name) = network_id(kind, n);
        Key::Network(kind, ns, name)
    }
}

/// A network object's (kind, namespace, name).
fn network_id(kind: &'static str, n: &impl ResourceExt) -> (&'static str, String, String) {
    (kind, n.namespace().unwrap_or_default(), n.name_any())
}

/// What a pass left to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassOutcome {
    /// Keys whose writes failed: retried with backoff.
    pub failed: Vec<Key>,
    /// A drain is in progress: step it again after [`Tuning::drain_poll`].
    pub drain_active: bool,
}

/// The cached cluster.
#[derive(Clone)]
pub struct Stores {
    /// Nodes.
    pub nodes: Store<Node>,
    /// Node states.
    pub states: Store<SriovNetworkNodeState>,
    /// Policies.
    pub policies: Store<SriovNetworkNodePolicy>,
    /// Pool configs.
    pub pools: Store<SriovNetworkPoolConfig>,
    /// Operator configs.
    pub configs: Store<SriovOperatorConfig>,
    /// ConfigMaps of the operator namespace.
    pub config_maps: Store<ConfigMap>,
    /// DaemonSets of the operator namespace.
    pub daemonsets: Store<DaemonSet>,
    /// SriovNetworks.
    pub networks: Store<SriovNetwork>,
    /// SriovIBNetworks.
    pub ib_networks: Store<SriovIBNetwork>,
    /// OVSNetworks.
    pub ovs_networks: Store<OVSNetwork>,
    /// NADs.
    pub nads: Store<NetworkAttachmentDefinition>,
    /// Namespaces.
    pub namespaces: Store<Namespace>,
}

fn spawn_reflector<K, F>(
    api: Api<K>,
    cfg: watcher::Config,
    tx: mpsc::UnboundedSender<Key>,
    to_keys: F,
) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    F: Fn(&K) -> Vec<Key> + Send + 'static,
{
    spawn_slimmed_reflector(api, cfg, tx, to_keys, None, |o: &mut K| {
        o.meta_mut().managed_fields = None
    })
}

/// Like `spawn_reflector`, but an update that leaves `metadata.generation`
/// as it was (a status write, e.g. the operator's own) yields no keys: for
/// kinds whose spec alone matters (policies, the operator config).
fn spawn_spec_reflector<K, F>(
    api: Api<K>,
    cfg: watcher::Config,
    tx: mpsc::UnboundedSender<Key>,
    to_keys: F,
) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    F: Fn(&K) -> Vec<Key> + Send + 'static,
{
    spawn_slimmed_reflector(api, cfg, tx, to_keys, Some(generation::<K>), |o: &mut K| {
        o.meta_mut().managed_fields = None
    })
}

fn generation<K: Resource>(o: &K) -> Option<i64> {
    o.meta().generation
}

/// The node-state cache keeps what rendering and drains read: the VF lists
/// of the status (most of a node state's size) and managed fields are dropped.
pub fn slim_node_state(s: &mut SriovNetworkNodeState) {
    s.metadata.managed_fields = None;
    for i in s.status.iter_mut().flat_map(|st| st.interfaces.iter_mut()) {
        i.vfs = Vec::new();
    }
}

/// A reflector whose cache keeps what `slim` leaves of each object;
/// `fingerprint` as in [`KeyTracker::fingerprint`].
fn spawn_slimmed_reflector<K, F, M>(
    api: Api<K>,
    cfg: watcher::Config,
    tx: mpsc::UnboundedSender<Key>,
    to_keys: F,
    fingerprint: Option<fn(&K) -> Option<i64>>,
    slim: M,
) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    F: Fn(&K) -> Vec<Key> + Send + 'static,
    M: FnMut(&mut K) + Send + 'static,
{
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, cfg).modify(slim)).default_backoff();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut keys = KeyTracker {
            fingerprint,
            ..Default::default()
        };
        loop {
            match stream.try_next().await {
                Ok(Some(event)) => {
                    for k in keys.on_event(&event, &to_keys) {
                        let _ = tx.send(k);
                    }
                }
                Ok(None) => break,
                Err(e) => tracing::warn!("watch error: {e}"),
            }
        }
    });
    store
}

/// Turns watch events into work keys, deletes included: the keys each
/// object produced last are kept (by namespace and name), so an object
/// deleted while the watch was re-listing (no `Delete` event, only missing
/// from the new list) still yields the keys it had.
pub struct KeyTracker<K> {
    known: HashMap<(String, String), (Vec<Key>, Option<i64>)>,
    relist: Option<HashSet<(String, String)>>,
    /// When set, an update with the same fingerprint (generation) as the
    /// object had yields no keys.
    pub fingerprint: Option<fn(&K) -> Option<i64>>,
}

impl<K> Default for KeyTracker<K> {
    fn default() -> Self {
        KeyTracker {
            known: HashMap::new(),
            relist: None,
            fingerprint: None,
        }
    }
}

impl<K: Resource> KeyTracker<K> {
    /// The keys of one watch event.
    pub fn on_event<F>(&mut self, event: &watcher::Event<K>, to_keys: &F) -> Vec<Key>
    where
        F: Fn(&K) -> Vec<Key>,
    {
        let id = |o: &K| (o.namespace().unwrap_or_default(), o.name_any());
        match event {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                if matches!(event, watcher::Event::InitApply(_))
                    && let Some(seen) = &mut self.relist
                {
                    seen.insert(id(o));
                }
                let print = self.fingerprint.and_then(|f| f(o));
                let keys = to_keys(o);
                let old = self.known.insert(id(o), (keys.clone(), print));
                match old {
                    Some((_, before)) if print.is_some() && before == print => Vec::new(),
                    _ => keys,
                }
            }
            watcher::Event::Delete(o) => {
                self.known.remove(&id(o));
                to_keys(o)
            }
            watcher::Event::Init => {
                self.relist = Some(HashSet::new());
                Vec::new()
            }
            watcher::Event::InitDone => {
                let Some(seen) = self.relist.take() else {
                    return Vec::new();
                };
                let gone: Vec<(String, String)> = self
                    .known
                    .keys()
                    .filter(|k| !seen.contains(*k))
                    .cloned()
                    .collect();
                gone.into_iter()
                    .flat_map(|k| self.known.remove(&k).map(|(k, _)| k).unwrap_or_default())
                    .collect()
            }
        }
    }
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Runs the controllers until the process ends.
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Arc<Metrics>,
) -> Result<(), super::Error> {
    run_tuned(client, settings, metrics, Tuning::default()).await
}

/// [`run()`] with explicit timings.
pub async fn run_tuned(
    client: Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    tuning: Tuning,
) -> Result<(), super::Error> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Key>();
    let ns = settings.namespace.clone();
    let all = watcher::Config::default();
    let stores = Stores {
        nodes: spawn_reflector(
            Api::all(client.clone()),
            all.clone(),
            tx.clone(),
            |n: &Node| vec![Key::Node(n.name_any()), Key::Drain],
        ),
        states: spawn_slimmed_reflector(
            Api::namespaced(client.clone(), &ns),
            all.clone(),
            tx.clone(),
            |s: &SriovNetworkNodeState| vec![Key::Node(s.name_any()), Key::Drain],
            None,
            slim_node_state,
        ),
        policies: spawn_spec_reflector(
            Api::namespaced(client.clone(), &ns),
            all.clone(),
            tx.clone(),
            |p: &SriovNetworkNodePolicy| vec![Key::Policy(p.name_any())],
        ),
        pools: spawn_reflector(
            Api::namespaced(client.clone(), &ns),
            all.clone(),
            tx.clone(),
            |_: &SriovNetworkPoolConfig| vec![Key::AllNodes],
        ),
        configs: spawn_spec_reflector(
            Api::namespaced(client.clone(), &ns),
            all.clone(),
            tx.clone(),
            |_: &SriovOperatorConfig| vec![Key::AllNodes, Key::Config],
        ),
        config_maps: spawn_reflector(
            Api::namespaced(client.clone(), &ns),
            all.clone().fields(&format!(
                "metadata.name={}",
                crate::render::DEVICE_PLUGIN_CONFIG_MAP
            )),
            tx.clone(),
            |_: &ConfigMap| vec![],
        ),
        daemonsets: spawn_reflector(
            Api::namespaced(client.clone(), &ns),
            all.clone(),
            tx.clone(),
            |_: &DaemonSet| vec![Key::Config],
        ),
        networks: spawn_reflector(
            Api::all(client.clone()),
            all.clone(),
            tx.clone(),
            |n: &SriovNetwork| vec![Key::network("SriovNetwork", n)],
        ),
        ib_networks: spawn_reflector(
            Api::all(client.clone()),
            all.clone(),
            tx.clone(),
            |n: &SriovIBNetwork| vec![Key::network("SriovIBNetwork", n)],
        ),
        ovs_networks: spawn_reflector(
            Api::all(client.clone()),
            all.clone(),
            tx.clone(),
            |n: &OVSNetwork| vec![Key::network("OVSNetwork", n)],
        ),
        nads: spawn_reflector(
            Api::all(client.clone()),
            all.clone(),
            tx.clone(),
            |n: &NetworkAttachmentDefinition| {
                vec![Key::Nad(n.namespace().unwrap_or_default(), n.name_any())]
            },
        ),
        namespaces: spawn_reflector(
            Api::all(client.clone()),
            all.clone(),
            tx.clone(),
            |n: &Namespace| vec![Key::Namespace(n.name_any())],
        ),
    };
    // The webhooks' Secrets (by name; data not kept): one deleted to
    // rotate a CA by hand, or changed, is made again within seconds
    // instead of at the next resync.
    for component in crate::webhook::deploy::Component::ALL {
        let name = component.secret(&settings).to_string();
        spawn_slimmed_reflector(
            Api::<Secret>::namespaced(client.clone(), &ns),
            all.clone().fields(&format!("metadata.name={name}")),
            tx.clone(),
            |_: &Secret| vec![Key::Config],
            None,
            |s: &mut Secret| {
                s.data = None;
                s.string_data = None;
                s.metadata.managed_fields = None;
            },
        );
    }
    let _ = futures::join!(
        stores.nodes.wait_until_ready(),
        stores.states.wait_until_ready(),
        stores.policies.wait_until_ready(),
        stores.pools.wait_until_ready(),
        stores.configs.wait_until_ready(),
    );
    metrics.set_ready(true);
    tracing::info!("caches synced; reconciling");
    if tuning.create_default_config {
        ensure_default_config(&client, &settings, &stores, &tuning).await;
    }
    let mut worker = Worker::new(client, settings, stores, metrics);
    worker.set_reporter_instance(tuning.instance.clone());
    let mut pending: BTreeSet<Key> = BTreeSet::from([Key::AllNodes, Key::Config]);
    let mut failures: HashMap<Key, u32> = HashMap::new();
    let mut delayed: BTreeMap<Instant, BTreeSet<Key>> = BTreeMap::new();
    let mut next_resync = Instant::now() + tuning.resync;
    loop {
        if pending.is_empty() {
            let next_retry = delayed.keys().next().copied();
            let retry_at = next_retry.unwrap_or(next_resync);
            tokio::select! {
                k = rx.recv() => match k {
                    Some(k) => { pending.insert(k); }
                    None => break,
                },
                _ = tokio::time::sleep_until(next_resync.into()) => {
                    pending.insert(Key::AllNodes);
                    pending.insert(Key::Config);
                    next_resync = Instant::now() + tuning.resync;
                }
                _ = tokio::time::sleep_until(retry_at.into()), if next_retry.is_some() => {}
            }
            let now = Instant::now();
            while let Some(entry) = delayed.first_entry() {
                if *entry.key() > now {
                    break;
                }
                pending.extend(entry.remove());
            }
            if pending.is_empty() {
                continue;
            }
        }
        tokio::time::sleep(tuning.batch).await;
        while let Ok(k) = rx.try_recv() {
            pending.insert(k);
        }
        worker
            .metrics
            .queue_depth(pending.len() + delayed.values().map(BTreeSet::len).sum::<usize>());
        let keys = std::mem::take(&mut pending);
        let processed: Vec<Key> = keys.iter().cloned().collect();
        let out = worker.pass(keys).await;
        for k in processed {
            if !out.failed.contains(&k) {
                failures.remove(&k);
            }
        }
        let now = Instant::now();
        for k in out.failed {
            let n = failures.entry(k.clone()).or_insert(0);
            *n += 1;
            let wait = tuning.backoff(*n);
            tracing::info!("retrying {k:?} in {wait:?} (failure {n})");
            worker.metrics.retried();
            delayed.entry(now + wait).or_default().insert(k);
        }
        if out.drain_active {
            delayed
                .entry(now + tuning.drain_poll)
                .or_default()
                .insert(Key::Drain);
        }
    }
    Ok(())
}

/// The `SriovOperatorConfig` `default` the operator creates when there is
/// none, with the defaults the Go operator's `createDefaultOperatorConfig`
/// used (v1.0–v1.2; since v1.3 the Helm chart's `sriovOperatorConfig`
/// holds the same values): the injector and the operator webhook on when
/// `ADMISSION_CONTROLLERS_ENABLED=true`, an empty `configDaemonNodeSelector`
/// (Linux workers), `logLevel` 2, `disableDrain` on a single-node cluster,
/// `configurationMode` `daemon`.
pub fn default_operator_config(settings: &Settings, single_node: bool) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": sriov_crds::API_VERSION,
        "kind": "SriovOperatorConfig",
        "metadata": {"name": sriov_crds::operator_config::OPERATOR_CONFIG_NAME,
                     "namespace": settings.namespace},
        "spec": {
            "enableInjector": settings.admission_controllers_enabled,
            "enableOperatorWebhook": settings.admission_controllers_enabled,
            "configDaemonNodeSelector": {},
            "logLevel": 2,
            "disableDrain": single_node,
            "configurationMode": "daemon",
        }
    })
}

/// Creates `SriovOperatorConfig` `default` when the cache has none (once, at
/// start: a config deleted later stays deleted). A 409 means someone else
/// created it meanwhile; other errors are retried with backoff.
async fn ensure_default_config(
    client: &Client,
    settings: &Settings,
    stores: &Stores,
    tuning: &Tuning,
) {
    let name = sriov_crds::operator_config::OPERATOR_CONFIG_NAME;
    let present = |stores: &Stores| {
        stores.configs.state().iter().any(|c| {
            c.name_any() == name && c.namespace().as_deref() == Some(settings.namespace.as_str())
        })
    };
    let api: Api<SriovOperatorConfig> = Api::namespaced(client.clone(), &settings.namespace);
    let mut failures = 0;
    while !present(stores) {
        let single_node = stores.nodes.state().len() == 1;
        let obj: SriovOperatorConfig =
            serde_json::from_value(default_operator_config(settings, single_node))
                .expect("the default operator config is a SriovOperatorConfig");
        match api.create(&kube::api::PostParams::default(), &obj).await {
            Ok(_) => {
                tracing::info!(
                    "created SriovOperatorConfig {name} in {} (single node: {single_node})",
                    settings.namespace
                );
                return;
            }
            Err(kube::Error::Api(e)) if e.code == 409 => return,
            Err(e) => {
                failures += 1;
                let wait = tuning.backoff(failures);
                tracing::warn!("creating SriovOperatorConfig {name}: {e}; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// The per-pass logic, with the renders of every node kept between passes.
pub struct Worker {
    client: Client,
    settings: Settings,
    stores: Stores,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    nics: NicIdList,
    renders: BTreeMap<String, NodeRender>,
    policy_selectors: HashMap<String, BTreeMap<String, String>>,
    recorder: Recorder,
    /// Since the operator config was last seen gone, the webhook
    /// configurations were swept (deleted whether or not their DaemonSets
    /// were still there).
    swept: bool,
}

/// How many nodes of a pass are worked on at once (their API requests
/// overlap; the renders are pure and cheap).
pub const PARALLEL_NODES: usize = 16;

/// A pass that writes at most this many node state specs announces each on
/// its node state (a `NodeStateUpdated` Event); one that writes more (a
/// policy change across a large cluster) announces them in one Event on the
/// `SriovOperatorConfig`, so a change to 1,000 nodes costs 1,000 applies and
/// one Event, not 2,000 requests. The log has every node either way.
pub const NODE_EVENTS_MAX: usize = 10;

/// What [`Worker::pass_node`] did for one node.
struct NodeOutcome {
    name: String,
    /// The node's render to keep (`None`: the node is not selected).
    render: Option<NodeRender>,
    retry: Option<Key>,
    /// The spec was written: the node state and what was written.
    spec_written: Option<(ObjectReference, String)>,
}

/// `reportingController` of the operator's Events.
pub const EVENT_REPORTER: &str = "sriov-network-operator";

/// Event reasons.
pub mod reasons {
    /// A node state's spec was written.
    pub const NODE_STATE_UPDATED: &str = "NodeStateUpdated";
    /// A drain started (cordon, evictions).
    pub const DRAIN_STARTED: &str = "DrainStarted";
    /// No pod left to evict: `DrainComplete`.
    pub const DRAIN_COMPLETE: &str = "DrainComplete";
    /// Evictions refused by PodDisruptionBudgets.
    pub const DRAIN_BLOCKED: &str = "DrainBlocked";
    /// Blocked too long: given up, uncordoned, retried later.
    pub const DRAIN_ABANDONED: &str = "DrainAbandoned";
    /// The daemon is done: uncordoned, `Idle`.
    pub const DRAIN_FINISHED: &str = "DrainFinished";
    /// A node matches more than one pool config.
    pub const POOL_CONFLICT: &str = "PoolConflict";
    /// A NAD was written.
    pub const NAD_APPLIED: &str = "NetworkAttachmentDefinitionApplied";
    /// A policy lost VFs or a PF to another policy.
    pub const MERGE_CONFLICT: &str = "MergeConflict";
}

/// The note of the one Event for many node state specs: the count and the
/// first names (an Event note holds at most 1 kB).
fn spec_summary(names: &[&str]) -> String {
    const SHOWN: usize = 5;
    let mut note = format!("{} node state specs written: ", names.len());
    note.push_str(
        &names
            .iter()
            .take(SHOWN)
            .copied()
            .collect::<Vec<_>>()
            .join(", "),
    );
    if names.len() > SHOWN {
        note.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    note
}

fn state_ref(
    settings: &Settings,
    name: &str,
    state: Option<&SriovNetworkNodeState>,
) -> ObjectReference {
    match state {
        Some(s) => s.object_ref(&()),
        None => ObjectReference {
            api_version: Some(sriov_crds::API_VERSION.into()),
            kind: Some("SriovNetworkNodeState".into()),
            name: Some(name.into()),
            namespace: Some(settings.namespace.clone()),
            ..Default::default()
        },
    }
}

impl Worker {
    /// A worker over the stores.
    pub fn new(client: Client, settings: Settings, stores: Stores, metrics: Arc<Metrics>) -> Self {
        let client_for_events = client.clone();
        Worker {
            client,
            settings,
            stores,
            metrics,
            nics: NicIdList::builtin(),
            renders: BTreeMap::new(),
            policy_selectors: HashMap::new(),
            swept: false,
            recorder: Recorder::new(
                client_for_events,
                Reporter {
                    controller: EVENT_REPORTER.into(),
                    instance: None,
                },
            ),
        }
    }

    /// Sets the `reportingInstance` of the Events (the pod name).
    pub fn set_reporter_instance(&mut self, instance: Option<String>) {
        self.recorder = Recorder::new(
            self.client.clone(),
            Reporter {
                controller: EVENT_REPORTER.into(),
                instance,
            },
        );
    }

    /// Publishes an Event (best effort: a failure is logged only).
    async fn event(
        &self,
        regarding: &ObjectReference,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let ev = KubeEvent {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, regarding).await {
            tracing::debug!("event {reason}: {e}");
        }
    }

    /// Announces the node state specs a pass wrote: one Event per node
    /// state, or one for all of them on the operator config when there are
    /// more than [`NODE_EVENTS_MAX`].
    async fn spec_events(
        &self,
        cfg: &SriovOperatorConfig,
        written: Vec<(ObjectReference, String)>,
    ) {
        if written.len() <= NODE_EVENTS_MAX {
            for (regarding, note) in written {
                self.event(
                    &regarding,
                    false,
                    reasons::NODE_STATE_UPDATED,
                    "Render",
                    note,
                )
                .await;
            }
            return;
        }
        let names: Vec<&str> = written
            .iter()
            .filter_map(|(r, _)| r.name.as_deref())
            .collect();
        self.event(
            &cfg.object_ref(&()),
            false,
            reasons::NODE_STATE_UPDATED,
            "Render",
            spec_summary(&names),
        )
        .await;
    }

    fn nodes_for_policy(&mut self, name: &str) -> BTreeSet<String> {
        let current = self
            .stores
            .policies
            .state()
            .into_iter()
            .find(|p| p.name_any() == name)
            .map(|p| p.spec.node_selector.clone());
        let old = match &current {
            Some(sel) => self.policy_selectors.insert(name.to_string(), sel.clone()),
            None => self.policy_selectors.remove(name),
        };
        let selectors: Vec<BTreeMap<String, String>> = current.into_iter().chain(old).collect();
        let mut out: BTreeSet<String> = self
            .stores
            .nodes
            .state()
            .iter()
            .filter(|n| {
                selectors
                    .iter()
                    .any(|s| s.iter().all(|(k, v)| n.labels().get(k) == Some(v)))
            })
            .map(|n| n.name_any())
            .collect();
        // Nodes where the policy had groups before (e.g. it no longer selects them).
        out.extend(
            self.renders
                .iter()
                .filter(|(_, r)| r.merge.applied_policies.iter().any(|p| p == name))
                .map(|(n, _)| n.clone()),
        );
        out
    }

    /// One pass over `keys`: the keys that failed and whether a drain is going on.
    pub async fn pass(&mut self, keys: BTreeSet<Key>) -> PassOutcome {
        let mut retry = Vec::new();
        let mut summary = false;
        let mut nodes: BTreeSet<String> = BTreeSet::new();
        let mut networks: BTreeSet<(&'static str, String, String)> = BTreeSet::new();
        let mut config = false;
        for k in keys {
            match k {
                Key::Node(n) => {
                    nodes.insert(n);
                }
                Key::AllNodes => {
                    nodes.extend(self.stores.nodes.state().iter().map(|n| n.name_any()));
                    nodes.extend(self.stores.states.state().iter().map(|n| n.name_any()));
                    nodes.extend(self.renders.keys().cloned());
                }
                Key::Policy(p) => nodes.extend(self.nodes_for_policy(&p)),
                Key::Config => config = true,
                Key::Drain => {}
                Key::Summary => summary = true,
                Key::Network(kind, ns, name) => {
                    networks.insert((kind, ns, name));
                }
                Key::Namespace(target) => {
                    for n in self.stores.networks.state() {
                        if NetworkView::sriov(&n).target_namespace() == target {
                            networks.insert(network_id("SriovNetwork", &*n));
                        }
                    }
                    for n in self.stores.ib_networks.state() {
                        if NetworkView::ib(&n).target_namespace() == target {
                            networks.insert(network_id("SriovIBNetwork", &*n));
                        }
                    }
                    for n in self.stores.ovs_networks.state() {
                        if NetworkView::ovs(&n).target_namespace() == target {
                            networks.insert(network_id("OVSNetwork", &*n));
                        }
                    }
                }
                Key::Nad(ns, name) => {
                    for nns in [ns, self.settings.namespace.clone()] {
                        for kind in ["SriovNetwork", "SriovIBNetwork", "OVSNetwork"] {
                            networks.insert((kind, nns.clone(), name.clone()));
                        }
                    }
                }
            }
        }
        let now = now();
        let configs: Vec<SriovOperatorConfig> = self
            .stores
            .configs
            .state()
            .iter()
            .map(|c| (**c).clone())
            .collect();
        let cfg = operator_config(&configs, &self.settings).cloned();
        if config {
            let existing: Vec<DaemonSet> = self
                .stores
                .daemonsets
                .state()
                .iter()
                .map(|d| (**d).clone())
                .collect();
            let r = match &cfg {
                Some(c) => {
                    self.swept = false;
                    reconcile_operator_config(&self.client, &self.settings, c, &existing, &now)
                        .await
                        .map(|_| ())
                }
                None => {
                    // The garbage collector may have deleted the webhook
                    // DaemonSets (owned by the config) before this pass saw
                    // the config go: their cluster-scoped configurations
                    // have no owner and must go too, once.
                    let sweep = !self.swept;
                    let r = remove_deployed(&self.client, &self.settings, &existing, sweep).await;
                    self.swept |= r.is_ok();
                    r.map(|_| ())
                }
            };
            self.metrics.reconciled("operator-config", r.is_ok());
            if let Err(e) = r {
                tracing::warn!("operator config: {e}");
                retry.push(Key::Config);
            }
        }
        if !nodes.is_empty() || summary {
            retry.extend(self.pass_nodes(cfg.as_ref(), nodes, &now).await);
        }
        let (drain_active, drain_failed) = self.pass_drains(cfg.as_ref(), &now).await;
        if drain_failed {
            retry.push(Key::Drain);
        }
        for (kind, ns, name) in networks {
            let r = self.pass_network(kind, &ns, &name, &now).await;
            self.metrics.reconciled("network", r.is_ok());
            if let Err(e) = r {
                tracing::warn!("{kind} {ns}/{name}: {e}");
                retry.push(Key::Network(kind, ns, name));
            }
        }
        PassOutcome {
            failed: retry,
            drain_active,
        }
    }

    /// One node of a pass: its node state spec, the spec Event and the pool
    /// condition (a selected node), or the stale-state cleanup (a node state
    /// without a selected node). Takes `&self`: a pass runs up to
    /// [`PARALLEL_NODES`] of these at once.
    async fn pass_node(
        &self,
        cfg: &SriovOperatorConfig,
        ctx: NodeContext<'_>,
        name: String,
        node: Option<Arc<Node>>,
        state: Option<Arc<SriovNetworkNodeState>>,
        now: &Time,
    ) -> NodeOutcome {
        let node = node.as_ref();
        let state = state.as_ref();
        let mut out = NodeOutcome {
            name: name.clone(),
            render: None,
            retry: None,
            spec_written: None,
        };
        let selected = node.is_some_and(|n| node_selected_by_config(cfg, n.labels()));
        if selected {
            let node = node.expect("selected nodes exist");
            let r = reconcile_node(
                &self.client,
                &self.settings,
                cfg,
                ctx,
                node,
                state.map(|s| &**s),
            )
            .await;
            self.metrics.reconciled("node", r.is_ok());
            match r {
                Ok((render, writes)) => {
                    let regarding = state_ref(&self.settings, &name, state.map(|s| &**s));
                    if writes.state {
                        let groups: usize = render
                            .spec
                            .interfaces
                            .iter()
                            .map(|i| i.vf_groups.len())
                            .sum();
                        let note = format!(
                            "spec written: {} interface(s), {} VF group(s){}",
                            render.spec.interfaces.len(),
                            groups,
                            if render.merge.applied_policies.is_empty() {
                                String::new()
                            } else {
                                format!(
                                    " from policies {}",
                                    render.merge.applied_policies.join(", ")
                                )
                            }
                        );
                        tracing::info!("node state {name}: {note}");
                        out.spec_written = Some((regarding.clone(), note));
                    }
                    let c = reconcile_pool_condition(
                        &self.client,
                        &self.settings,
                        &render,
                        state.map(|s| &**s),
                        now,
                    )
                    .await;
                    match c {
                        Ok(Some(c)) if c.status == "True" => {
                            self.event(
                                &regarding,
                                true,
                                reasons::POOL_CONFLICT,
                                "SelectPool",
                                c.message,
                            )
                            .await;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!("node {name}: pool condition: {e}");
                            out.retry = Some(Key::Node(name.clone()));
                        }
                    }
                    out.render = Some(render);
                }
                Err(e) => {
                    tracing::warn!("node {name}: {e}");
                    out.retry = Some(Key::Node(name.clone()));
                }
            }
        } else {
            if let Some(state) = state {
                let r = reconcile_stale_state(
                    &self.client,
                    &self.settings,
                    state,
                    node.map(|n| &**n),
                    now,
                )
                .await;
                self.metrics.reconciled("stale-node-state", r.is_ok());
                match r {
                    Ok(StaleOutcome::Marked(d) | StaleOutcome::Waiting(d)) => {
                        // Looked at again by the periodic resync.
                        tracing::info!("node state {name} has no node; deleted in {d:?}");
                    }
                    Ok(StaleOutcome::Deleted) => {
                        tracing::info!("deleted node state {name} (no node)")
                    }
                    Err(e) => {
                        tracing::warn!("stale node state {name}: {e}");
                        out.retry = Some(Key::Node(name.clone()));
                    }
                }
            }
        }
        out
    }

    async fn pass_nodes(
        &mut self,
        cfg: Option<&SriovOperatorConfig>,
        nodes: BTreeSet<String>,
        now: &Time,
    ) -> Vec<Key> {
        let mut retry = Vec::new();
        let Some(cfg) = cfg else {
            tracing::info!(
                "no SriovOperatorConfig default in {}: policies are not rendered",
                self.settings.namespace
            );
            return retry;
        };
        let policies: Vec<SriovNetworkNodePolicy> = in_namespace(
            &self
                .stores
                .policies
                .state()
                .iter()
                .map(|p| (**p).clone())
                .collect::<Vec<_>>(),
            &self.settings,
        );
        let pools: Vec<SriovNetworkPoolConfig> = in_namespace(
            &self
                .stores
                .pools
                .state()
                .iter()
                .map(|p| (**p).clone())
                .collect::<Vec<_>>(),
            &self.settings,
        );
        let ctx = NodeContext {
            policies: &policies,
            pools: &pools,
            nics: &self.nics,
        };
        let node_map: BTreeMap<String, Arc<Node>> = self
            .stores
            .nodes
            .state()
            .into_iter()
            .map(|n| (n.name_any(), n))
            .collect();
        let state_map: BTreeMap<String, Arc<SriovNetworkNodeState>> = self
            .stores
            .states
            .state()
            .into_iter()
            .filter(|s| s.namespace().as_deref() == Some(self.settings.namespace.as_str()))
            .map(|s| (s.name_any(), s))
            .collect();
        // The nodes' API writes overlap (a policy change touching 1,000 nodes
        // is 1,000 server-side applies and Events); renders are kept after.
        use futures::StreamExt as _;
        let outcomes: Vec<NodeOutcome> = futures::stream::iter(nodes)
            .map(|name| {
                let node = node_map.get(&name).cloned();
                let state = state_map.get(&name).cloned();
                self.pass_node(cfg, ctx, name, node, state, now)
            })
            .buffer_unordered(PARALLEL_NODES)
            .collect()
            .await;
        let written: Vec<_> = outcomes
            .iter()
            .filter_map(|o| o.spec_written.clone())
            .collect();
        self.spec_events(cfg, written).await;
        for o in outcomes {
            match o.render {
                Some(r) => {
                    self.renders.insert(o.name, r);
                }
                None => {
                    self.renders.remove(&o.name);
                }
            }
            retry.extend(o.retry);
        }
        let cm = self
            .stores
            .config_maps
            .state()
            .into_iter()
            .find(|c| c.name_any() == crate::render::DEVICE_PLUGIN_CONFIG_MAP);
        let r = reconcile_config_map(
            &self.client,
            &self.settings,
            cfg,
            cm.as_deref(),
            self.renders.values(),
        )
        .await;
        self.metrics.reconciled("device-plugin-config", r.is_ok());
        if let Err(e) = r {
            tracing::warn!("device-plugin ConfigMap: {e}");
            retry.push(Key::Summary);
        }
        let mut tallies: BTreeMap<String, PolicyTally> = BTreeMap::new();
        let mut by_status: BTreeMap<String, i64> = BTreeMap::new();
        for (name, render) in &self.renders {
            let state = state_map.get(name).map(|s| &**s);
            tally_node(&mut tallies, render, state);
            let sync = state
                .and_then(|s| s.status.as_ref())
                .map(|s| s.sync_status.clone())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "Unknown".into());
            *by_status.entry(sync).or_default() += 1;
        }
        self.metrics.nodes_by_sync_status(&by_status);
        for p in &policies {
            if p.name_any() == sriov_crds::policy_merge::DEPRECATED_DEFAULT_POLICY {
                continue;
            }
            let tally = tallies.get(&p.name_any());
            let r = reconcile_policy_status(&self.client, p, tally, now).await;
            self.metrics.reconciled("policy-status", r.is_ok());
            match r {
                Ok(true) => {
                    let conflicts: Vec<&str> = tally
                        .iter()
                        .flat_map(|t| t.problems.iter())
                        .filter(|(reason, _)| *reason == REASON_MERGE_CONFLICT)
                        .map(|(_, m)| m.as_str())
                        .collect();
                    if !conflicts.is_empty() {
                        let note = conflicts.join("; ");
                        self.event(
                            &p.object_ref(&()),
                            true,
                            reasons::MERGE_CONFLICT,
                            "Merge",
                            note,
                        )
                        .await;
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!("policy {} status: {e}", p.name_any());
                    retry.push(Key::Summary);
                }
            }
        }
        retry
    }

    /// Plans and runs the drain handshake for every node state: (a drain is
    /// in progress so step again shortly, a write failed).
    async fn pass_drains(&self, cfg: Option<&SriovOperatorConfig>, now: &Time) -> (bool, bool) {
        use super::drain::{self, DrainAction, DrainProgress};
        let states: Vec<SriovNetworkNodeState> = self
            .stores
            .states
            .state()
            .iter()
            .filter(|s| s.namespace().as_deref() == Some(self.settings.namespace.as_str()))
            .map(|s| (**s).clone())
            .collect();
        let node_map: BTreeMap<String, Arc<Node>> = self
            .stores
            .nodes
            .state()
            .into_iter()
            .map(|n| (n.name_any(), n))
            .collect();
        let nodes: BTreeMap<String, (BTreeMap<String, String>, bool)> = node_map
            .iter()
            .map(|(k, n)| {
                (
                    k.clone(),
                    (
                        n.labels().clone(),
                        n.annotations().contains_key(drain::CORDONED_BY_OPERATOR),
                    ),
                )
            })
            .collect();
        let pools: Vec<SriovNetworkPoolConfig> = in_namespace(
            &self
                .stores
                .pools
                .state()
                .iter()
                .map(|p| (**p).clone())
                .collect::<Vec<_>>(),
            &self.settings,
        );
        let disable = cfg.and_then(|c| c.spec.disable_drain).unwrap_or(false);
        let actions = drain::plan(&states, &nodes, &pools, disable, now);
        let mut active = 0;
        let mut failed = false;
        for (name, action) in actions {
            let state = states.iter().find(|s| s.name_any() == name);
            let regarding = state_ref(&self.settings, &name, state);
            let r = match (&action, node_map.get(&name), state) {
                (DrainAction::Start { reboot }, Some(node), _) => {
                    active += 1;
                    tracing::info!("node {name}: draining");
                    let r = drain::start(&self.client, &self.settings, node, now).await;
                    if r.is_ok() {
                        let note = if *reboot {
                            format!("node {name} cordoned; evicting its pods for a reboot")
                        } else {
                            format!(
                                "node {name} cordoned; evicting the pods holding its SR-IOV resources"
                            )
                        };
                        self.event(&regarding, false, reasons::DRAIN_STARTED, "Drain", note)
                            .await;
                    }
                    r
                }
                (DrainAction::Continue { reboot }, _, Some(state)) => {
                    active += 1;
                    match drain::step(&self.client, &self.settings, state, *reboot, now).await {
                        Ok(DrainProgress::Complete) => {
                            tracing::info!("node {name}: drain complete");
                            let note = format!("node {name} drained: DrainComplete");
                            self.event(&regarding, false, reasons::DRAIN_COMPLETE, "Drain", note)
                                .await;
                            Ok(())
                        }
                        Ok(DrainProgress::Pending { blocked }) => {
                            if !blocked.is_empty() {
                                let note = format!(
                                    "evictions refused by PodDisruptionBudgets: {}",
                                    blocked.join(", ")
                                );
                                tracing::info!("node {name}: {note}");
                                self.event(&regarding, true, reasons::DRAIN_BLOCKED, "Drain", note)
                                    .await;
                            }
                            Ok(())
                        }
                        Ok(DrainProgress::Abandoned { reason }) => {
                            tracing::warn!("{reason}");
                            self.event(&regarding, true, reasons::DRAIN_ABANDONED, "Drain", reason)
                                .await;
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
                (DrainAction::Finish, _, _) => {
                    let ours = nodes.get(&name).is_some_and(|(_, c)| *c);
                    tracing::info!("node {name}: drain finished");
                    let r = drain::finish(&self.client, &self.settings, &name, ours).await;
                    if r.is_ok() {
                        let note = format!(
                            "node {name} back to Idle{}",
                            if ours { ", uncordoned" } else { "" }
                        );
                        self.event(&regarding, false, reasons::DRAIN_FINISHED, "Drain", note)
                            .await;
                    }
                    r
                }
                (DrainAction::Uncordon, Some(_), _) => drain::uncordon(&self.client, &name).await,
                (DrainAction::PoolConflict(msg), _, _) => {
                    // Reported on the node state (PoolConflict condition and Event).
                    tracing::warn!("node {name}: {msg}");
                    Ok(())
                }
                (
                    DrainAction::WaitForCapacity {
                        pool,
                        draining,
                        max,
                    },
                    _,
                    _,
                ) => {
                    tracing::debug!(
                        "node {name}: pool {pool} has {draining} of {max} nodes draining"
                    );
                    active += 1;
                    Ok(())
                }
                _ => Ok(()),
            };
            self.metrics.reconciled("drain", r.is_ok());
            if let Err(e) = r {
                tracing::warn!("node {name}: drain: {e}");
                failed = true;
            }
        }
        self.metrics.drains_in_progress(active);
        (active > 0, failed)
    }

    async fn pass_network(
        &self,
        kind: &str,
        ns: &str,
        name: &str,
        now: &Time,
    ) -> super::Result<()> {
        let namespaces: BTreeSet<String> = self
            .stores
            .namespaces
            .state()
            .iter()
            .map(|n| n.name_any())
            .collect();
        let nads = self.stores.nads.state();
        macro_rules! one {
            ($store:expr, $view:path) => {{
                let Some(net) = $store
                    .state()
                    .into_iter()
                    .find(|n| n.name_any() == name && n.namespace().as_deref() == Some(ns))
                else {
                    return Ok(());
                };
                let view = $view(&net);
                let target = view.target_namespace().to_string();
                let existing = nads
                    .iter()
                    .find(|n| {
                        n.name_any() == name && n.namespace().as_deref() == Some(target.as_str())
                    })
                    .map(|n| &**n);
                let cluster = NetworkCluster {
                    namespace_exists: namespaces.contains(&target),
                    existing,
                    last_namespace: net
                        .annotations()
                        .get(crate::nad::LAST_NETWORK_NAMESPACE)
                        .map(String::as_str),
                };
                let conditions = net
                    .status
                    .as_ref()
                    .map(|s| s.conditions.clone())
                    .unwrap_or_default();
                let w = reconcile_network(
                    &self.client,
                    &self.settings,
                    &*net,
                    &view,
                    &conditions,
                    &cluster,
                    now,
                )
                .await?;
                let regarding = net.object_ref(&());
                if w.nad {
                    let note = format!("NetworkAttachmentDefinition {target}/{name} written");
                    self.event(&regarding, false, reasons::NAD_APPLIED, "Render", note)
                        .await;
                }
                if let Some((false, reason, message)) = &w.ready
                    && w.status
                {
                    self.event(&regarding, true, reason, "Render", message.clone())
                        .await;
                }
                Ok(())
            }};
        }
        match kind {
            "SriovNetwork" => one!(self.stores.networks, NetworkView::sriov),
            "OVSNetwork" => one!(self.stores.ovs_networks, NetworkView::ovs),
            _ => one!(self.stores.ib_networks, NetworkView::ib),
        }
    }
}
