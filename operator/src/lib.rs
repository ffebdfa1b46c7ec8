//! The SR-IOV network operator: turns the cluster-wide custom resources into
//! per-node desired state, device-plugin config and NetworkAttachmentDefinitions,
//! coordinates drains, and serves the admission webhooks.
//!
//! - [`render`]: the pure core. Objects in, objects to write out; no I/O.
//!   `sriov-network-operator render` and the controllers both use it.
//! - [`controllers`]: one controller per watched resource, on kube-runtime.
//! - [`webhook`]: the operator webhook and the network-resources injector.
//! - [`settings`]: the environment variables shared with the Go operator.
//! - [`nad`]: the NetworkAttachmentDefinition kind.

pub mod controllers;
pub mod metrics;
pub mod nad;
pub mod operator;
pub mod output;
pub mod render;
pub mod settings;
pub mod webhook;
