//! The SR-IOV CNI plugin (type `sriov`, binary `sriov`): moves a VF netdev
//! into a pod's network namespace (or leaves a vfio-pci/uio VF for DPDK),
//! applies VF settings on the PF, delegates IPAM, and restores everything on
//! DEL. A drop-in for the Go sriov-cni: same config, same state files.
//!
//! Modules:
//! - [`addressing`]: addresses and routes inside the pod's network namespace.
//! - [`config`]: the network configuration on stdin.
//! - [`device`]: the VF named by `deviceID`, resolved under the host root.
//! - [`device_info`]: device-info files (device-info-spec 1.1.0).
//! - [`env`](mod@env): the CNI environment (`CNI_COMMAND`, …).
//! - [`error`]: error codes, one table.
//! - [`ipam`]: IPAM delegation to the plugin named by `ipam.type`.
//! - [`plugin`]: ADD, DEL, CHECK, STATUS, GC.
//! - [`result`]: results in the shape of the config's `cniVersion`.
//! - [`run`]: one invocation: environment and stdin in, JSON out.
//! - [`state`]: saved state, allocation records, per-VF locks (the Go plugin's formats).
//! - [`test_hooks`]: failure injection for the tests (feature `test-hooks`).
//! - [`vf_settings`]: VF settings on the PF, applied and restored one by one.
//!
//! See `docs/cni.md`.

pub mod addressing;
pub mod config;
pub mod device;
pub mod device_info;
pub mod env;
pub mod error;
pub mod ipam;
pub mod plugin;
pub mod result;
pub mod run;
pub mod state;
pub mod test_hooks;
pub mod vf_settings;
