//! The per-node SR-IOV config daemon: applies a node's desired state
//! (`SriovNetworkNodeState` spec, or policies in standalone mode) to its
//! sysfs and reports what the node has.
//!
//! Modules:
//! - [`apply`]: executes a plan: PFs in parallel, checked writes, bounded waits.
//! - [`backoff`]: the retry delay after a failure (doubling up to a maximum).
//! - [`discover`]: a host scan as the `SriovNetworkNodeState` status; which PFs netlink sees.
//! - [`events`]: what starts a run and ends a wait: uevents, file edits, the resync and retry timer.
//! - [`journal`]: which PFs this daemon configured, and the step in progress.
//! - [`k8s`]: the Kubernetes mode: node state watch, status, drain handshake.
//! - [`kernel_args`]: which kernel arguments the spec needs, and whether a reboot does.
//! - [`metrics`]: what the daemon counts, and its readiness, served on
//!   `/healthz`, `/readyz` and `/metrics` through `sriov_health`.
//! - [`plan`]: per PF, only the steps that differ, and whether they disrupt pods.
//! - [`policies`]: the standalone mode's policy file and node labels.
//! - [`standalone`]: the standalone mode: one run (`apply`), and `apply --watch`.
//! - [`table`]: the node's PFs and VFs as a text table (`show`).

pub mod apply;
pub mod backoff;
pub mod discover;
pub mod events;
pub mod journal;
pub mod k8s;
pub mod kernel_args;
pub mod metrics;
pub mod plan;
pub mod policies;
pub mod standalone;
pub mod table;
