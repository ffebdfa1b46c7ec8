//! A Kubernetes DRA (Dynamic Resource Allocation, `resource.k8s.io/v1`)
//! driver for SR-IOV VFs — partial, see `docs/dra.md` for what works.
//!
//! Modules:
//! - [`attributes`]: one DRA device per VF, with PCIe, SR-IOV and topology attributes.
//! - [`authority`]: repairs the socket path the kubelet's plugin watcher sends as `:authority`.
//! - [`config`]: the upstream `VfConfig` opaque parameters of a claim, merged per request.
//! - [`health`]: device health streamed to the kubelet (`v1alpha1.DRAResourceHealth`).
//! - [`metrics`]: `/healthz`, `/readyz` (registered with the kubelet) and `/metrics`.
//! - [`plugin`]: the kubelet plugin API: registration and `DRAPlugin` over unix sockets.
//! - [`pools`]: the device plugin's config file as the device selection (one config source).
//! - [`prepare`]: checkpointed, idempotent prepare/unprepare of a claim, a CDI spec per claim.
//! - [`slices`]: the node's ResourceSlices and publishing them.
//!
//! A claimed VF reaches the pod's network through Multus (the CDI device
//! name is the VF's PCI address, Multus's `deviceID`); not here: an NRI
//! attachment of its own and with it `networkData` in the claim status
//! (`docs/dra.md`).

pub mod attributes;
pub mod authority;
pub mod config;
pub mod health;
pub mod metrics;
pub mod plugin;
pub mod pools;
pub mod prepare;
pub mod slices;

/// The default driver name: the upstream SR-IOV DRA driver's, so its
/// DeviceClasses select this driver's devices.
pub const DEFAULT_DRIVER_NAME: &str = attributes::UPSTREAM_DOMAIN;
