//! A Kubernetes DRA (Dynamic Resource Allocation, `resource.k8s.io/v1`)
//! driver for SR-IOV VFs — partial, see `docs/dra.md` for what works.
//!
//! - [`attributes`]: one DRA device per VF, with the standard PCIe
//!   attributes, the upstream SR-IOV DRA driver's attribute names, and the
//!   PCIe switch and nearest GPUs from [`sriov_host::topology`].
//! - [`slices`]: the node's ResourceSlices, split at 128 devices, and
//!   publishing them with pool generations.
//! - [`prepare`]: checkpointed, idempotent prepare/unprepare of a claim's
//!   devices, writing a CDI spec per claim.
//! - [`plugin`]: the kubelet plugin API — registration and `DRAPlugin`
//!   v1/v1beta1 over unix sockets, claims read from the API server.
//!
//! Not here yet: VF configuration per claim (driver rebind, network
//! attachment), the health service, claim status writes.

pub mod attributes;
pub mod plugin;
pub mod prepare;
pub mod slices;

/// The default driver name: the upstream SR-IOV DRA driver's, so its
/// DeviceClasses select this driver's devices.
pub const DEFAULT_DRIVER_NAME: &str = attributes::UPSTREAM_DOMAIN;
