//! The spec of a `SriovNetworkNodeState` through the same engine the
//! standalone mode uses ([`plan_node`], [`apply_plan`], the journal and the
//! scan): blocking work, run off the async runtime by the caller.

use std::path::Path;
use std::time::{Duration, Instant};

use sriov_crds::{Interface, InterfaceExt};
use sriov_host::HostRoot;

use crate::apply::{ApplyOptions, PfOutcome, apply_plan};
use crate::discover;
use crate::journal::{Journal, JournalError};
use crate::plan::{PfPlan, Plan, plan_node};

/// Why the node could not even be planned.
#[derive(Debug, thiserror::Error)]
pub enum ConvergeError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("scanning the node under {root}: {source}")]
    Scan {
        root: String,
        #[source]
        source: Box<sriov_host::error::Error>,
    },
    /// The node's kernel cannot do what the spec asks (kernel arguments).
    #[error("{0}")]
    Boot(String),
}

/// A planned node: what the scan found and what to change.
#[derive(Debug)]
pub struct Prepared {
    pub journal: Journal,
    /// The status interfaces the scan found (before any change).
    pub found: Vec<InterfaceExt>,
    pub plan: Plan,
}

fn scan(root: &HostRoot) -> Result<sriov_host::Node, ConvergeError> {
    discover::scan_node(root).map_err(|source| ConvergeError::Scan {
        root: root.path().display().to_string(),
        source: Box::new(source),
    })
}

/// Opens the journal (logging steps a crash interrupted), scans, plans.
/// With `resets` false, PFs this daemon configured that are not in `spec`
/// are left as they are (not reset): the spec is a placeholder, not what
/// anyone asked for.
pub fn prepare(
    root: &HostRoot,
    state_dir: &Path,
    spec: &[Interface],
    resets: bool,
) -> Result<Prepared, ConvergeError> {
    let journal = Journal::open(state_dir, true)?;
    journal.warn_interrupted();
    let node = scan(root)?;
    let found = discover::interfaces(&node);
    let configured = if resets {
        journal.configured()
    } else {
        Default::default()
    };
    let plan = plan_node(root, spec, &node, &configured);
    Ok(Prepared {
        journal,
        found,
        plan,
    })
}

/// Splits a plan into the PFs to apply now and the disruptive PFs held
/// back until the node is drained.
pub fn hold_disruptive(plan: Plan) -> (Plan, Vec<PfPlan>) {
    let (held, now): (Vec<PfPlan>, Vec<PfPlan>) =
        plan.pfs.into_iter().partition(PfPlan::disruptive);
    (Plan { pfs: now }, held)
}

/// What an apply did.
#[derive(Debug)]
pub struct Applied {
    pub outcomes: Vec<PfOutcome>,
    /// The status interfaces after the apply.
    pub after: Vec<InterfaceExt>,
    pub elapsed: Duration,
}

impl Applied {
    /// Steps that ran to completion.
    pub fn steps(&self) -> usize {
        self.outcomes.iter().map(|o| o.steps_done).sum()
    }

    /// PFs that failed.
    pub fn failed_pfs(&self) -> usize {
        self.outcomes.iter().filter(|o| o.result.is_err()).count()
    }

    /// The failures, one per PF, joined with `; ` (empty when none).
    pub fn error_text(&self) -> String {
        self.outcomes
            .iter()
            .filter_map(|o| o.result.as_ref().err().map(ToString::to_string))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Applies `plan` (PFs in parallel) and scans again when anything was
/// written. `found` is the scan from [`prepare`], reused when the plan
/// changed nothing.
pub fn apply(
    root: &HostRoot,
    plan: &Plan,
    journal: &Journal,
    opts: &ApplyOptions,
    found: Vec<InterfaceExt>,
) -> Result<Applied, ConvergeError> {
    let start = Instant::now();
    let outcomes = apply_plan(root, plan, journal, opts);
    let idle: Vec<String> = journal
        .interrupted()
        .into_keys()
        .filter(|pf| {
            !plan
                .pfs
                .iter()
                .any(|p| &p.pci_address == pf && !p.steps.is_empty())
        })
        .collect();
    journal.settle_interrupted(idle.iter().map(String::as_str))?;
    let after = if plan.pfs.iter().any(|p| !p.steps.is_empty()) {
        discover::interfaces(&scan(root)?)
    } else {
        found
    };
    Ok(Applied {
        outcomes,
        after,
        elapsed: start.elapsed(),
    })
}
