//! The SR-IOV network operator: turns the cluster-wide custom resources into
//! per-node desired state, device-plugin config and NetworkAttachmentDefinitions,
//! coordinates drains, and serves the admission webhooks.
//!
//! Modules:
//! - [`controllers`]: one controller per watched resource, on kube-runtime.
//! - [`metrics`]: Prometheus metrics and `/healthz`, `/readyz`, `/metrics`.
//! - [`nad`]: the `NetworkAttachmentDefinition` kind.
//! - [`operator`]: `run`: leader election, the controllers, the webhooks.
//! - [`output`]: printing rendered objects as a YAML stream (render mode).
//! - [`render`]: the pure core: objects in, objects to write out; no I/O.
//! - [`settings`]: the environment variables shared with the Go operator.
//! - [`webhook`]: the operator webhook and the network-resources injector.

pub mod controllers;
pub mod metrics;
pub mod nad;
pub mod operator;
pub mod output;
pub mod render;
pub mod settings;
pub mod webhook;
