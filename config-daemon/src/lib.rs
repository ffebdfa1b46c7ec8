//! The per-node SR-IOV config daemon: applies a node's desired state
//! (`SriovNetworkNodeState` spec, or policies in standalone mode) to its
//! sysfs and reports what the node has.
//!
//! - [`policies`]: the standalone mode's policy file and node labels.
//! - [`discover`]: a host scan as `SriovNetworkNodeState` status.
//! - [`plan`]: per PF, only the steps that differ, and whether they disrupt pods.
//! - [`apply`]: PFs in parallel, checked writes, bounded waits.
//! - [`journal`]: which PFs this daemon configured, the step in progress.
//! - [`standalone`]: one standalone run.
//! - [`k8s`]: the Kubernetes mode (node state watch, status, drain handshake).
//! - [`metrics`] and [`http`]: `/healthz`, `/readyz`, `/metrics`.

pub mod apply;
pub mod discover;
pub mod http;
pub mod journal;
pub mod k8s;
pub mod kernel_args;
pub mod metrics;
pub mod plan;
pub mod policies;
pub mod standalone;
pub mod table;
pub mod watch;
