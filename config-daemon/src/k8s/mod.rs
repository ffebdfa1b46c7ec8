//! The Kubernetes mode (`sriov-config-daemon run`): the daemon watches its
//! node's `SriovNetworkNodeState` (named as the node, in the operator's
//! namespace), creates it when missing, applies its `spec` with the same
//! plan/apply engine as the standalone mode, and reports the node in
//! `status` by server-side apply.
//!
//! - [`drain`]: the `desired-state`/`current-state` handshake for
//!   disruptive plans, and `disableDrain`.
//! - [`status`]: the status, its conditions and the apply body.
//! - [`converge`]: plan and apply off the async runtime.
//!
//! A sync runs when the spec or the handshake annotations change (status
//! writes do not trigger one), on kernel uevents about PCI functions or
//! netdevs (drift), every resync interval, and after a failure with
//! exponential backoff. Each `syncStatus` transition, drain request and
//! drift repair is also a Kubernetes Event on the node state.

pub mod converge;
pub mod drain;
pub mod status;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use sriov_crds::operator_config::OPERATOR_CONFIG_NAME;
use sriov_crds::{
    API_VERSION, SriovNetworkNodeState, SriovNetworkNodeStateSpec, SriovNetworkNodeStateStatus,
    SriovOperatorConfig,
};
use sriov_host::HostRoot;
use sriov_host::boot::{HostBoot, NodeBoot};
use tokio::sync::mpsc;

use crate::apply::ApplyOptions;
use crate::backoff::Backoff;
use crate::events::{RunSchedule, spawn_forwarder};
use crate::kernel_args::{self, KernelArgs};
use crate::metrics::{Metrics, RunSample};
use converge::{ConvergeError, hold_disruptive};
use drain::{Decision, DrainState};
use status::{FIELD_MANAGER, Phase, apply_body, build_status, same_status, status_interfaces};

pub use crate::events::Trigger;
pub use crate::standalone::DEFAULT_NAMESPACE;

/// Events and logs name the daemon so.
pub const REPORTER: &str = "sriov-config-daemon";

/// Longest event note (the API limit is 1 kB).
const MAX_NOTE: usize = 1000;

/// How the Kubernetes mode runs.
#[derive(Debug, Clone)]
pub struct K8sConfig {
    /// This node's name (the node state has the same name).
    pub node_name: String,
    /// Namespace of the node states and the `SriovOperatorConfig`.
    pub namespace: String,
    pub host_root: HostRoot,
    /// Journal directory.
    pub state_dir: PathBuf,
    pub apply: ApplyOptions,
    /// Re-check the node this often without events.
    pub resync: Duration,
    /// First retry delay after a failure (doubles up to `max_backoff`).
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Leave drains to an external drainer (`USE_EXTERNAL_DRAINER=true`,
    /// as upstream): the node state carries the
    /// [`drain::USE_EXTERNAL_DRAINER`] annotation while this is set.
    pub use_external_drainer: bool,
    /// The node's boot: kernel facts, boot-loader arguments, reboot.
    pub boot: Arc<dyn NodeBoot>,
}

impl K8sConfig {
    /// Defaults for a node: namespace `sriov-network-operator`, 30 s resync,
    /// backoff 1 s doubling to 60 s.
    pub fn new(node_name: &str, host_root: HostRoot, state_dir: PathBuf) -> Self {
        Self {
            node_name: node_name.to_string(),
            namespace: DEFAULT_NAMESPACE.to_string(),
            state_dir,
            apply: ApplyOptions::default(),
            resync: Duration::from_secs(30),
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            use_external_drainer: false,
            boot: Arc::new(HostBoot(host_root.clone())),
            host_root,
        }
    }
}

/// Why a sync could not finish (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// An API request failed.
    #[error(
        "{what}: {source}; check the API server and the daemon's RBAC (see docs/config-daemon.md)"
    )]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    /// A blocking task died.
    #[error("{what}: the worker task failed: {message} (a bug: please report it)")]
    Task { what: &'static str, message: String },
    /// The watch stream ended.
    #[error("the watch on SriovNetworkNodeState {0} ended")]
    WatchEnded(String),
}

fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> SyncError {
    let what = what.into();
    move |source| SyncError::Api { what, source }
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    /// `syncStatus` written.
    pub sync_status: String,
    /// `lastSyncError` written.
    pub last_sync_error: String,
    pub decision: Decision,
    /// Steps applied.
    pub steps: usize,
    /// PFs held back for a drain (PCI addresses).
    pub held: Vec<String>,
    /// The status was written.
    pub status_written: bool,
    /// The node had drifted from an unchanged spec and was repaired.
    pub drift_repaired: bool,
}

impl SyncOutcome {
    /// Retry with backoff.
    pub fn failed(&self) -> bool {
        self.sync_status == sriov_crds::node_state::SYNC_STATUS_FAILED
    }
}

/// The daemon: API handles, the event recorder and what it last wrote.
pub struct Daemon {
    cfg: K8sConfig,
    states: Api<SriovNetworkNodeState>,
    nodes: Api<Node>,
    configs: Api<SriovOperatorConfig>,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    /// The status as last written (or read), to skip identical writes.
    last_status: Option<SriovNetworkNodeStateStatus>,
    /// Generation of the spec last applied without failure.
    applied_generation: Option<i64>,
    /// (uid, generation) of the node state this daemon created, while its
    /// spec is the empty placeholder it wrote.
    created: Option<(String, Option<i64>)>,
}

fn now() -> Time {
    Time(Timestamp::now())
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SyncError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SyncError::Task {
            what,
            message: e.to_string(),
        })
}

impl Daemon {
    /// A daemon on `client` (a real cluster, or a mock in tests).
    pub fn new(client: Client, cfg: K8sConfig, metrics: Arc<Metrics>) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: REPORTER.into(),
                instance: Some(format!("{REPORTER}-{}", cfg.node_name)),
            },
        );
        Self {
            states: Api::namespaced(client.clone(), &cfg.namespace),
            configs: Api::namespaced(client.clone(), &cfg.namespace),
            nodes: Api::all(client),
            recorder,
            metrics,
            cfg,
            last_status: None,
            applied_generation: None,
            created: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &K8sConfig {
        &self.cfg
    }

    async fn api<T>(&self, r: Result<T, SyncError>) -> Result<T, SyncError> {
        self.metrics.api_result(r.is_ok());
        r
    }

    /// Returns the node's `SriovNetworkNodeState`, creating it when missing:
    /// empty spec, both handshake annotations `Idle`, owned (as the
    /// operator does) by the `SriovOperatorConfig` `default` when it exists,
    /// else by the Node, so it goes away with its owner.
    pub async fn ensure_node_state(&mut self) -> Result<SriovNetworkNodeState, SyncError> {
        let name = self.cfg.node_name.clone();
        let found = self
            .api(
                self.states
                    .get_opt(&name)
                    .await
                    .map_err(api_err(format!("reading SriovNetworkNodeState {name}"))),
            )
            .await?;
        if let Some(ns) = found {
            return Ok(ns);
        }
        let owner = self.owner().await?;
        let mut ns = SriovNetworkNodeState::new(&name, SriovNetworkNodeStateSpec::default());
        ns.metadata.namespace = Some(self.cfg.namespace.clone());
        ns.metadata.annotations = Some(
            [
                (drain::DESIRED_STATE.to_string(), drain::IDLE.to_string()),
                (drain::CURRENT_STATE.to_string(), drain::IDLE.to_string()),
            ]
            .into(),
        );
        ns.metadata.owner_references = owner.map(|o| vec![o]);
        tracing::info!(node = %name, namespace = %self.cfg.namespace, "creating the node's SriovNetworkNodeState");
        match self.states.create(&PostParams::default(), &ns).await {
            Ok(created) => {
                self.metrics.api_result(true);
                self.created = created
                    .metadata
                    .uid
                    .clone()
                    .map(|uid| (uid, created.metadata.generation));
                Ok(created)
            }
            Err(kube::Error::Api(s)) if s.is_already_exists() => {
                // The operator created it meanwhile.
                self.api(
                    self.states
                        .get(&name)
                        .await
                        .map_err(api_err(format!("reading SriovNetworkNodeState {name}"))),
                )
                .await
            }
            Err(e) => {
                self.metrics.api_result(false);
                Err(api_err(format!("creating SriovNetworkNodeState {name}"))(e))
            }
        }
    }

    /// The `SriovOperatorConfig` `default`, if there is one.
    async fn operator_config(&self) -> Result<Option<SriovOperatorConfig>, SyncError> {
        self.api(
            self.configs
                .get_opt(OPERATOR_CONFIG_NAME)
                .await
                .map_err(api_err(format!(
                    "reading SriovOperatorConfig {OPERATOR_CONFIG_NAME}"
                ))),
        )
        .await
    }

    async fn owner(&self) -> Result<Option<OwnerReference>, SyncError> {
        let cfg = self.operator_config().await?;
        if let Some(c) = cfg
            && let Some(uid) = c.metadata.uid.clone()
        {
            return Ok(Some(OwnerReference {
                api_version: API_VERSION.into(),
                kind: "SriovOperatorConfig".into(),
                name: c.name_any(),
                uid,
                controller: Some(true),
                block_owner_deletion: Some(true),
            }));
        }
        let node = self
            .api(
                self.nodes
                    .get_opt(&self.cfg.node_name)
                    .await
                    .map_err(api_err(format!("reading Node {}", self.cfg.node_name))),
            )
            .await?;
        Ok(node.and_then(|n| {
            Some(OwnerReference {
                api_version: "v1".into(),
                kind: "Node".into(),
                name: n.name_any(),
                uid: n.metadata.uid?,
                controller: None,
                block_owner_deletion: None,
            })
        }))
    }

    /// `spec.disableDrain` of the `SriovOperatorConfig` `default` (false
    /// when there is none).
    pub async fn disable_drain(&self) -> Result<bool, SyncError> {
        let cfg = self.operator_config().await?;
        Ok(cfg.and_then(|c| c.spec.disable_drain).unwrap_or(false))
    }

    /// Sets the daemon's side of the handshake: `desired-state` on the node
    /// state and `sriovnetwork.openshift.io/state` on the Node (merge
    /// patches, as upstream).
    async fn annotate(&self, value: &str) -> Result<(), SyncError> {
        let name = &self.cfg.node_name;
        tracing::info!(node = %name, value, "setting the drain annotations");
        let patch = json!({"metadata": {"annotations": {drain::DESIRED_STATE: value}}});
        self.api(
            self.states
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(|_| ())
                .map_err(api_err(format!(
                    "setting {} to {value} on SriovNetworkNodeState {name}",
                    drain::DESIRED_STATE
                ))),
        )
        .await?;
        let patch = json!({"metadata": {"annotations": {drain::NODE_STATE: value}}});
        self.api(
            self.nodes
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(|_| ())
                .map_err(api_err(format!(
                    "setting {} to {value} on Node {name}",
                    drain::NODE_STATE
                ))),
        )
        .await
    }

    /// Adds (`"true"`) or removes the external-drainer annotation of the
    /// node state (a merge patch, as upstream).
    async fn set_external_drainer(&self, add: bool) -> Result<(), SyncError> {
        let name = &self.cfg.node_name;
        let value = if add { json!("true") } else { json!(null) };
        tracing::info!(node = %name, add, "{}", drain::USE_EXTERNAL_DRAINER);
        let patch = json!({"metadata": {"annotations": {drain::USE_EXTERNAL_DRAINER: value}}});
        self.api(
            self.states
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(|_| ())
                .map_err(api_err(format!(
                    "{} {} on SriovNetworkNodeState {name}",
                    if add { "adding" } else { "removing" },
                    drain::USE_EXTERNAL_DRAINER
                ))),
        )
        .await
    }

    /// Writes the status by server-side apply (forced: the daemon owns it),
    /// unless it says what was last written.
    async fn write_status(&mut self, st: SriovNetworkNodeStateStatus) -> Result<bool, SyncError> {
        if same_status(self.last_status.as_ref(), &st) {
            return Ok(false);
        }
        let name = self.cfg.node_name.clone();
        self.api(
            self.states
                .patch_status(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(apply_body(&st)),
                )
                .await
                .map(|_| ())
                .map_err(api_err(format!(
                    "writing the status of SriovNetworkNodeState {name}"
                ))),
        )
        .await?;
        self.last_status = Some(st);
        Ok(true)
    }

    /// Publishes an event on the node state; failures are logged only
    /// (events are best effort).
    async fn event(&self, reference: &ObjectReference, type_: EventType, reason: &str, note: &str) {
        let ev = KubeEvent {
            type_,
            reason: reason.into(),
            note: Some(truncate(note, MAX_NOTE)),
            action: "Sync".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, reference).await {
            tracing::warn!(reason, error = %e, "cannot publish an event (check RBAC: events.k8s.io events create/patch)");
        }
    }

    /// One sync of `ns`: plan its spec against the node, handle the drain
    /// handshake, apply, report. API failures return `Err` (retried);
    /// apply failures are reported in the status (`Failed`) and the outcome.
    pub async fn sync(
        &mut self,
        ns: &SriovNetworkNodeState,
        trigger: Trigger,
    ) -> Result<SyncOutcome, SyncError> {
        if self.last_status.is_none() {
            self.last_status = ns.status.clone();
        }
        let previous_status = self
            .last_status
            .as_ref()
            .map(|s| s.sync_status.clone())
            .unwrap_or_default();
        let generation = ns.metadata.generation;
        let reference = ns.object_ref(&());
        let spec = ns.spec.interfaces.clone();
        let drain_state = DrainState::of(ns);
        if let Some(add) = drain::external_drainer_change(
            ns.annotations(),
            &drain_state,
            self.cfg.use_external_drainer,
        ) {
            self.set_external_drainer(add).await?;
        }
        // The empty spec of a node state this daemon created (at start, or
        // after someone deleted it) asks for nothing: the PFs it configured
        // keep their VFs until the operator writes a spec (as upstream,
        // which leaves the node alone while its node state is missing).
        let placeholder = self.created.as_ref().is_some_and(|(uid, generation)| {
            ns.metadata.uid.as_ref() == Some(uid) && ns.metadata.generation == *generation
        });
        if placeholder {
            tracing::info!("the node state is the placeholder this daemon created: no PF is reset");
        }
        let (root, dir) = (self.cfg.host_root.clone(), self.cfg.state_dir.clone());
        let spec2 = spec.clone();
        let prepared = blocking("planning", move || {
            converge::prepare(&root, &dir, &spec2, !placeholder)
        })
        .await?;
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => return self.host_failure(ns, &reference, &previous_status, e).await,
        };
        let need = if kernel_args::uses_vfio(&spec) {
            let boot = self.cfg.boot.clone();
            let facts = blocking("reading the kernel command line", move || boot.facts()).await?;
            kernel_args::needed(&spec, &facts)
        } else {
            KernelArgs::Satisfied
        };
        match need {
            KernelArgs::Satisfied => {}
            KernelArgs::Reboot(args) => {
                return self
                    .reboot_for(
                        ns,
                        &reference,
                        &previous_status,
                        &drain_state,
                        args,
                        prepared,
                    )
                    .await;
            }
            KernelArgs::Stuck(why) => {
                // A reboot would not help: never hold the node drained for it.
                if drain_state.desired != drain::IDLE {
                    self.annotate(drain::IDLE).await?;
                }
                return self
                    .host_failure(ns, &reference, &previous_status, ConvergeError::Boot(why))
                    .await;
            }
        }
        let disruptive = prepared.plan.disruptive();
        let disable = if drain::needs_drain_setting(disruptive, &drain_state) {
            self.disable_drain().await?
        } else {
            false
        };
        let decision = drain::decide(disruptive, &drain_state, disable);
        let plan_text = prepared.plan.render();
        let (plan, held) = if decision.holds_disruptive() {
            hold_disruptive(prepared.plan)
        } else {
            (prepared.plan, Vec::new())
        };
        let held_text: Vec<String> = held
            .iter()
            .map(|p| {
                let vfs: Vec<String> = p
                    .steps
                    .iter()
                    .flat_map(|s| s.held_vfs.iter().cloned())
                    .collect();
                format!("PF {} (VFs held by pods: {})", p.label(), vfs.join(", "))
            })
            .collect();
        match decision {
            Decision::RequestDrain => {
                self.annotate(drain::DRAIN_REQUIRED).await?;
                self.metrics.drain_requested();
                self.event(
                    &reference,
                    EventType::Normal,
                    "DrainRequested",
                    &format!("disruptive changes need a drain: {}", held_text.join("; ")),
                )
                .await;
            }
            Decision::ApplyWithoutDrain => {
                self.metrics.drain_skipped();
                self.event(
                    &reference,
                    EventType::Warning,
                    "DrainSkipped",
                    "disableDrain is set in SriovOperatorConfig default: applying disruptive changes without a drain",
                )
                .await;
            }
            _ => {}
        }
        let found = prepared.found;
        // PFs that cannot be configured are in the plan with an error and
        // no steps: they fail without an InProgress round trip.
        let to_apply = !plan.is_empty();
        let writes = plan.pfs.iter().any(|p| !p.steps.is_empty());
        if writes {
            let st = build_status(
                self.last_status.as_ref(),
                status_interfaces(found.clone(), &spec),
                &Phase::Applying,
                generation,
                now(),
            );
            self.write_status(st).await?;
        }
        let (root, opts) = (self.cfg.host_root.clone(), self.cfg.apply);
        let journal = prepared.journal;
        let applied = blocking("applying", move || {
            converge::apply(&root, &plan, &journal, &opts, found)
        })
        .await?;
        let applied = match applied {
            Ok(a) => a,
            Err(e) => return self.host_failure(ns, &reference, &previous_status, e).await,
        };
        let errors = applied.error_text();
        let failed = !errors.is_empty();
        let drift_repaired =
            writes && trigger.checks_drift() && self.applied_generation == generation;
        if to_apply {
            self.metrics.record_run(&RunSample {
                duration: applied.elapsed,
                steps: applied.steps() as u64,
                failed_pfs: applied.failed_pfs() as u64,
                drift_repaired,
            });
        }
        if drain::back_to_idle(&drain_state, decision, failed) {
            self.annotate(drain::IDLE).await?;
        }
        let phase = if failed {
            Phase::Failed(errors.clone())
        } else if !held.is_empty() {
            Phase::WaitingForDrain(format!(
                "waiting for the operator to drain the node ({} is {}): {}",
                drain::CURRENT_STATE,
                drain_state.current,
                held_text.join("; ")
            ))
        } else {
            Phase::Succeeded
        };
        let st = build_status(
            self.last_status.as_ref(),
            status_interfaces(applied.after.clone(), &spec),
            &phase,
            generation,
            now(),
        );
        let written = self.write_status(st).await?;
        self.metrics.set_sync_status(phase.sync_status());
        if !failed && held.is_empty() {
            self.applied_generation = generation;
        }
        if drift_repaired {
            tracing::warn!(
                ?trigger,
                "drift: the node no longer matched the spec; repaired:\n{plan_text}"
            );
            self.event(
                &reference,
                EventType::Warning,
                "DriftRepaired",
                &format!("the node no longer matched the spec; repaired:\n{plan_text}"),
            )
            .await;
        }
        if phase.sync_status() != previous_status {
            match &phase {
                Phase::Succeeded => {
                    self.event(
                        &reference,
                        EventType::Normal,
                        "SyncSucceeded",
                        &format!(
                            "the node matches the spec ({} steps applied)",
                            applied.steps()
                        ),
                    )
                    .await
                }
                Phase::Failed(e) => {
                    self.event(&reference, EventType::Warning, "SyncFailed", e)
                        .await
                }
                Phase::Applying | Phase::WaitingForDrain(_) => {}
            }
        }
        Ok(SyncOutcome {
            sync_status: phase.sync_status().to_string(),
            last_sync_error: match &phase {
                Phase::Failed(e) => e.clone(),
                _ => String::new(),
            },
            decision,
            steps: applied.steps(),
            held: held.iter().map(|p| p.pci_address.clone()).collect(),
            status_written: written,
            drift_repaired,
        })
    }

    /// The spec needs kernel arguments: ask for a full drain, then add them
    /// and reboot (nothing else is applied: the node reboots). After the
    /// reboot the daemon finds them, applies the spec and returns to `Idle`.
    async fn reboot_for(
        &mut self,
        ns: &SriovNetworkNodeState,
        reference: &ObjectReference,
        previous_status: &str,
        drain_state: &DrainState,
        args: Vec<String>,
        prepared: converge::Prepared,
    ) -> Result<SyncOutcome, SyncError> {
        let args_text = args.join(" ");
        let disable = if drain_state.drained() && drain_state.desired == drain::REBOOT_REQUIRED {
            false
        } else {
            self.disable_drain().await?
        };
        let decision = drain::decide_reboot(drain_state, disable);
        let message = match decision {
            Decision::RequestReboot if drain_state.desired != drain::IDLE => {
                // A drain asked for as Drain_Required evicts only the pods
                // holding VFs: withdraw it first (the operator uncordons and
                // goes Idle), then ask for the full drain a reboot needs on
                // the next sync, as upstream.
                self.annotate(drain::IDLE).await?;
                format!(
                    "withdrew the {} request; a full drain for the reboot with the kernel arguments {args_text} is asked for next",
                    drain_state.desired
                )
            }
            Decision::RequestReboot => {
                self.annotate(drain::REBOOT_REQUIRED).await?;
                self.metrics.drain_requested();
                let note = format!(
                    "vfio-pci VFs need an IOMMU: the kernel arguments {args_text} and a reboot; asking for a drain first"
                );
                self.event(reference, EventType::Normal, "RebootRequested", &note)
                    .await;
                format!(
                    "waiting for the operator to drain the node before a reboot for the kernel arguments {args_text}"
                )
            }
            Decision::WaitForReboot => format!(
                "waiting for the operator to drain the node ({} is {}) before a reboot for the kernel arguments {args_text}",
                drain::CURRENT_STATE,
                drain_state.current
            ),
            _ => {
                let boot = self.cfg.boot.clone();
                let a = args.clone();
                let added =
                    blocking("adding kernel arguments", move || boot.add_kernel_args(&a)).await?;
                let tool = match added {
                    Ok(tool) => tool,
                    Err(e) => {
                        return self
                            .host_failure(
                                ns,
                                reference,
                                previous_status,
                                ConvergeError::Boot(format!(
                                    "cannot add the kernel arguments {args_text} that vfio-pci VFs need: {e}"
                                )),
                            )
                            .await;
                    }
                };
                let note = format!(
                    "added the kernel arguments {args_text} ({tool:?}); rebooting the node"
                );
                tracing::warn!("{note}");
                self.event(reference, EventType::Warning, "RebootNode", &note)
                    .await;
                let st = build_status(
                    self.last_status.as_ref(),
                    status_interfaces(prepared.found.clone(), &ns.spec.interfaces),
                    &Phase::WaitingForDrain(note.clone()),
                    ns.metadata.generation,
                    now(),
                );
                self.write_status(st).await?;
                let boot = self.cfg.boot.clone();
                let rebooted = blocking("rebooting", move || boot.reboot()).await?;
                if let Err(e) = rebooted {
                    return self
                        .host_failure(
                            ns,
                            reference,
                            previous_status,
                            ConvergeError::Boot(format!(
                                "added the kernel arguments {args_text} but cannot reboot the node: {e}; reboot it by hand"
                            )),
                        )
                        .await;
                }
                note
            }
        };
        let phase = Phase::WaitingForDrain(message);
        let st = build_status(
            self.last_status.as_ref(),
            status_interfaces(prepared.found, &ns.spec.interfaces),
            &phase,
            ns.metadata.generation,
            now(),
        );
        let written = self.write_status(st).await?;
        self.metrics.set_sync_status(phase.sync_status());
        Ok(SyncOutcome {
            sync_status: phase.sync_status().to_string(),
            last_sync_error: String::new(),
            decision,
            steps: 0,
            held: Vec::new(),
            status_written: written,
            drift_repaired: false,
        })
    }

    /// The node could not be scanned or the journal not used: `Failed`
    /// with the reason, the interfaces as last reported.
    async fn host_failure(
        &mut self,
        ns: &SriovNetworkNodeState,
        reference: &ObjectReference,
        previous_status: &str,
        e: ConvergeError,
    ) -> Result<SyncOutcome, SyncError> {
        let message = e.to_string();
        tracing::error!(error = %message, "sync failed before any change");
        let interfaces = self
            .last_status
            .as_ref()
            .map(|s| s.interfaces.clone())
            .unwrap_or_default();
        let phase = Phase::Failed(message.clone());
        let st = build_status(
            self.last_status.as_ref(),
            interfaces,
            &phase,
            ns.metadata.generation,
            now(),
        );
        let written = self.write_status(st).await?;
        self.metrics.set_sync_status(phase.sync_status());
        if previous_status != phase.sync_status() {
            self.event(reference, EventType::Warning, "SyncFailed", &message)
                .await;
        }
        Ok(SyncOutcome {
            sync_status: phase.sync_status().to_string(),
            last_sync_error: message,
            decision: Decision::Apply,
            steps: 0,
            held: Vec::new(),
            status_written: written,
            drift_repaired: false,
        })
    }

    /// Runs until `shutdown` completes: ensures the node state, watches
    /// it, and syncs on changes, uevents, resyncs and retries.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), SyncError> {
        tokio::pin!(shutdown);
        let mut backoff = Backoff::new(self.cfg.backoff, self.cfg.max_backoff);
        let mut latest = loop {
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                r = self.ensure_node_state() => match r {
                    Ok(ns) => break ns,
                    Err(e) => {
                        let wait = backoff.next_delay();
                        tracing::warn!(error = %e, retry_in = ?wait, "cannot get or create the node state");
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        };
        let name = self.cfg.node_name.clone();
        let mut stream = watcher(
            self.states.clone(),
            watcher::Config::default().fields(&format!("metadata.name={name}")),
        )
        .boxed();
        let (drift_tx, mut drift_rx) = mpsc::channel::<()>(1);
        spawn_forwarder(self.cfg.host_root.path().to_path_buf(), drift_tx);
        let mut schedule =
            RunSchedule::new(self.cfg.resync, self.cfg.backoff, self.cfg.max_backoff);
        let mut timer = Trigger::Resync;
        // What a sync depends on: spec generation and the handshake annotations.
        let key = |ns: &SriovNetworkNodeState| (ns.metadata.generation, DrainState::of(ns));
        let mut seen = None;
        let mut pending: Option<Trigger> = None;
        let far = tokio::time::Instant::now() + Duration::from_secs(86400 * 365);
        let mut wake = far;
        loop {
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                ev = stream.next() => match ev {
                    Some(Ok(watcher::Event::Apply(ns) | watcher::Event::InitApply(ns))) => {
                        if seen.as_ref() != Some(&key(&ns)) {
                            seen = Some(key(&ns));
                            pending = Some(Trigger::Spec);
                        }
                        latest = ns;
                    }
                    Some(Ok(watcher::Event::Delete(_))) => {
                        tracing::warn!(node = %name, "the node state was deleted; creating it again");
                        self.last_status = None;
                        match self.ensure_node_state().await {
                            Ok(ns) => {
                                seen = Some(key(&ns));
                                latest = ns;
                                pending = Some(Trigger::Spec);
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot recreate the node state");
                                let next = schedule.after_run(true, false);
                                timer = next.trigger;
                                wake = tokio::time::Instant::now() + next.after;
                            }
                        }
                    }
                    Some(Ok(watcher::Event::Init | watcher::Event::InitDone)) => {}
                    Some(Err(e)) => {
                        self.metrics.api_result(false);
                        tracing::warn!(error = %e, "watching the node state");
                        tokio::time::sleep(schedule.backoff().min(Duration::from_secs(5))).await;
                    }
                    None => return Err(SyncError::WatchEnded(name)),
                },
                Some(()) = drift_rx.recv() => pending = Some(Trigger::Uevent),
                _ = tokio::time::sleep_until(wake) => pending = Some(timer),
            }
            let Some(trigger) = pending.take() else {
                continue;
            };
            tracing::debug!(?trigger, "sync");
            let result = self.sync(&latest, trigger).await;
            // Uevents during the sync: ours, or drift while it scanned.
            let events_during_run = drift_rx.try_recv().is_ok();
            let failed = !matches!(&result, Ok(o) if !o.failed());
            let next = schedule.after_run(failed, events_during_run);
            match &result {
                Ok(o) => {
                    tracing::info!(?trigger, sync_status = %o.sync_status, steps = o.steps, held = o.held.len(), "synced")
                }
                Err(e) => {
                    tracing::warn!(?trigger, error = %e, retry_in = ?next.after, "sync failed")
                }
            }
            timer = next.trigger;
            wake = tokio::time::Instant::now() + next.after;
        }
    }
}
