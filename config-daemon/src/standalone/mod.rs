//! The standalone mode (`sriov-config-daemon apply`): policies from a file,
//! the node from its sysfs, no API server.
//!
//! One run: read and check the policies (any error: nothing is changed),
//! scan the node, merge the policies for it, plan, apply (unless dry run),
//! scan again for the resulting state, and write the device plugin config.
//!
//! - [`watch`]: `apply --watch`, runs on policy edits, drift and a timer.

pub mod watch;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use sriov_crds::device_plugin_config::DevicePluginConfig;
use sriov_crds::nic_ids::NicIdList;
use sriov_crds::node_state::{SYNC_STATUS_FAILED, SYNC_STATUS_SUCCEEDED};
use sriov_crds::policy_merge::{merge_node, render_device_plugin_config};
use sriov_crds::{
    InterfaceExt, SriovNetworkNodeState, SriovNetworkNodeStateSpec, SriovNetworkNodeStateStatus,
};
use sriov_host::HostRoot;
use sriov_host::netlink::{LinkOps, Netlink};

use crate::apply::{ApplyEnv, ApplyOptions, PfOutcome, WaitMode, apply_plan_in_env};
use crate::discover;
use crate::journal::{Journal, JournalError, write_atomic};
use crate::plan::{Plan, plan_node_given_links};
use crate::policies::{PolicyFileError, read_policies};

/// Namespace the node state is reported in.
pub const DEFAULT_NAMESPACE: &str = "sriov-network-operator";

/// What one standalone run does.
#[derive(Debug, Clone)]
pub struct StandaloneConfig {
    pub host_root: HostRoot,
    pub policies: PathBuf,
    pub node_name: String,
    pub node_labels: BTreeMap<String, String>,
    pub dry_run: bool,
    pub device_plugin_config: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub apply: ApplyOptions,
    /// Apply steps that remove or rebind VFs held by pods.
    pub allow_disruption: bool,
}

/// Errors that stop a run before anything is changed.
#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    #[error(transparent)]
    Policies(#[from] PolicyFileError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("scanning the node under {root}: {source}")]
    Scan {
        root: String,
        #[source]
        source: Box<sriov_host::error::Error>,
    },
    #[error("writing the device plugin config {}: {source}", path.display())]
    DevicePluginConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a run found and did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// The plan (applied unless dry run).
    pub plan: Plan,
    /// Policies that lost a PF or part of one, as messages.
    pub conflicts: Vec<String>,
    /// The node state: spec from the merge, status from the scan after applying.
    pub state: SriovNetworkNodeState,
    /// The device plugin config for this node.
    pub device_plugin_config: DevicePluginConfig,
    /// Whether the device plugin config file was (re)written.
    pub device_plugin_config_written: bool,
    /// Steps interrupted by a crash, found in the journal at start.
    pub resumed: BTreeMap<String, String>,
    /// Seconds the apply took.
    pub apply_seconds: f64,
    #[serde(skip)]
    pub outcomes: Vec<PfOutcome>,
}

impl RunReport {
    /// Whether some PF failed.
    pub fn failed(&self) -> bool {
        self.outcomes.iter().any(|o| o.result.is_err())
    }

    /// The failures, one per PF, joined with `; `.
    pub fn error_text(&self) -> String {
        self.outcomes
            .iter()
            .filter_map(|o| o.result.as_ref().err().map(ToString::to_string))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn scan(root: &HostRoot) -> Result<sriov_host::Node, StandaloneError> {
    discover::scan_node(root).map_err(|source| StandaloneError::Scan {
        root: root.path().display().to_string(),
        source: Box::new(source),
    })
}

/// Refuses disruptive PF plans (their steps are replaced by an error).
pub fn refuse_disruptive(plan: &mut Plan) {
    for pf in plan.pfs.iter_mut().filter(|p| p.disruptive()) {
        let held: Vec<String> = pf
            .steps
            .iter()
            .flat_map(|s| s.held_vfs.iter().cloned())
            .collect();
        pf.error = Some(format!(
            "the change would remove or rebind VFs held by pods ({}); drain the node first or pass --allow-disruption",
            held.join(", ")
        ));
        pf.steps.clear();
    }
}

/// What a run uses besides sysfs.
#[derive(Debug, Clone, Copy)]
pub struct RunEnv<'a> {
    /// Netlink in the daemon's network namespace (PF link state, VF admin
    /// MACs), or why there is none: the PFs' netlink steps are then skipped
    /// with that reason.
    pub links: Result<&'a dyn LinkOps, &'a str>,
    /// How the apply waits for the kernel.
    pub waits: WaitMode,
}

/// One standalone run with the policies read from the file: netlink opened
/// in this thread's network namespace, waits on uevents.
pub fn run_once(cfg: &StandaloneConfig) -> Result<RunReport, StandaloneError> {
    let netlink = Netlink::open();
    let why;
    let links: Result<&dyn LinkOps, &str> = match &netlink {
        Ok(nl) => Ok(nl),
        Err(e) => {
            why = format!("netlink is not available: {e}");
            Err(why.as_str())
        }
    };
    run_once_in_env(
        cfg,
        &RunEnv {
            links,
            waits: WaitMode::Uevents,
        },
    )
}

/// One standalone run with the policies read from the file, and the
/// netlink handle and wait mode given.
pub fn run_once_in_env(
    cfg: &StandaloneConfig,
    env: &RunEnv<'_>,
) -> Result<RunReport, StandaloneError> {
    let policies = read_policies(&cfg.policies)?;
    let policies = policies.as_slice();
    let root = &cfg.host_root;
    let journal = Journal::open(&cfg.state_dir, !cfg.dry_run)?;
    let resumed = journal.warn_interrupted();
    let node = scan(root)?;
    let found = discover::interfaces(&node);
    let merge = merge_node(policies, &cfg.node_labels, &found);
    let conflicts: Vec<String> = merge.conflicts.iter().map(ToString::to_string).collect();
    for c in &conflicts {
        tracing::warn!("{c}");
    }
    let links = match env.links {
        Ok(ops) => discover::pf_links(ops, &node, &merge.interfaces),
        Err(why) => discover::pf_links_unavailable(&merge.interfaces, why),
    };
    let mut plan = plan_node_given_links(
        root,
        &merge.interfaces,
        &node,
        &journal.configured(),
        &links,
    );
    for pf in &plan.pfs {
        for note in &pf.skipped {
            tracing::info!(pf = %pf.label(), "skipped: {note}");
        }
    }
    if !cfg.allow_disruption && !cfg.dry_run {
        refuse_disruptive(&mut plan);
    }
    let nics = NicIdList::builtin();
    let start = Instant::now();
    let (outcomes, after) = if cfg.dry_run {
        (Vec::new(), found)
    } else {
        let apply_env = ApplyEnv {
            links: env.links.ok(),
            waits: env.waits,
        };
        let outcomes = apply_plan_in_env(root, &plan, &journal, &cfg.apply, &apply_env);
        journal.settle_interrupted(resumed.keys().map(String::as_str).filter(|pf| {
            !plan
                .pfs
                .iter()
                .any(|p| p.pci_address == *pf && !p.steps.is_empty())
        }))?;
        let after = if plan.pfs.iter().all(|p| p.steps.is_empty()) {
            found
        } else {
            discover::interfaces(&scan(root)?)
        };
        (outcomes, after)
    };
    let apply_seconds = start.elapsed().as_secs_f64();
    let dp = render_device_plugin_config(policies, &cfg.node_labels, &after, &merge, &nics);
    let mut written = false;
    if !cfg.dry_run
        && let Some(path) = &cfg.device_plugin_config
    {
        let text = dp.to_json();
        if std::fs::read_to_string(path).ok().as_deref() != Some(text.as_str()) {
            write_atomic(path, text.as_bytes()).map_err(|source| {
                StandaloneError::DevicePluginConfig {
                    path: path.clone(),
                    source,
                }
            })?;
            written = true;
        }
    }
    let mut report = RunReport {
        plan,
        conflicts,
        state: SriovNetworkNodeState::new(&cfg.node_name, SriovNetworkNodeStateSpec::default()),
        device_plugin_config: dp,
        device_plugin_config_written: written,
        resumed,
        apply_seconds,
        outcomes,
    };
    report.state.metadata.namespace = Some(DEFAULT_NAMESPACE.to_string());
    report.state.spec.interfaces = merge.interfaces.clone();
    let status_ifaces: Vec<InterfaceExt> = after
        .into_iter()
        .map(|mut i| {
            i.externally_managed = merge
                .interfaces
                .iter()
                .any(|s| s.pci_address == i.pci_address && s.externally_managed);
            i
        })
        .collect();
    let failed = report.failed();
    report.state.status = Some(SriovNetworkNodeStateStatus {
        interfaces: status_ifaces,
        sync_status: if cfg.dry_run {
            String::new()
        } else if failed {
            SYNC_STATUS_FAILED.into()
        } else {
            SYNC_STATUS_SUCCEEDED.into()
        },
        last_sync_error: report.error_text(),
        ..Default::default()
    });
    Ok(report)
}

/// How `--watch` reacts.
#[derive(Debug, Clone, Copy)]
pub struct WatchOptions {
    /// Re-check the node this often even without events.
    pub resync: Duration,
    /// First retry delay after a failure (doubles up to `max_backoff`).
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(30),
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}
