//! The SR-IOV CNI plugin (type `sriov`, binary `sriov`): moves a VF netdev
//! into a pod's network namespace (or leaves a vfio-pci/uio VF for DPDK),
//! applies VF settings on the PF, delegates IPAM, and restores everything on
//! DEL. A drop-in for the Go sriov-cni: same config, same state files.
//!
//! - [`env`](mod@env): the CNI environment; [`config`]: the network config;
//!   [`result`]: results per spec version; [`error`]: error codes.
//! - [`state`]: saved state, allocation records, per-VF locks.
//! - [`device`]: the VF under the host root; [`vf_settings`]: PF-side VF
//!   settings; [`addressing`]: addresses and routes in the pod; [`ipam`]:
//!   IPAM delegation. Every netlink request, the one-request namespace
//!   move included, goes through the host crate's `LinkOps`.
//! - [`plugin`]: ADD, DEL, CHECK, STATUS, GC; [`run`]: one invocation.
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
