//! A simulated SR-IOV node for tests, benchmarks and the demo.
//!
//! - [`catalog`]: the NIC models (E810, X710, 82576, ConnectX-6 Dx,
//!   virtio-net) with ids from `data/supported-nic-ids.tsv`.
//! - [`node`]: a node description in YAML, or by name (`mixed`,
//!   `scale:PFS:VFS`), with fault injection.
//! - [`tree`]: a builder that lays out a node's sysfs exactly as the kernel
//!   does (real symlinks for `driver`, `physfn`, `virtfnN`, `iommu_group`,
//!   `bus/pci/devices`, `class/net`), into any [`tree::TreeSink`].
//! - [`kernel`]: the simulated kernel (SR-IOV, driver binding, netdevs,
//!   vfio, scalable functions on the auxiliary bus, vDPA devices) with the
//!   kernel's errnos, over any sink.
//! - [`ddptool`]: a stand-in for Intel's `ddptool` reporting the PFs' DDP
//!   profiles.
//! - [`memfs`] and [`fuse`]: the in-memory filesystem the kernel writes to
//!   and its FUSE server; [`mount`]: [`mount::SimNode`], a mounted node for
//!   tests.
//! - [`veth`]: real veth interfaces backing VF netdevs (`--veth`).
//! - [`uevent`]: the uevents the simulated kernel emits and their delivery.
//! - [`lanes`]: how tests that need root, FUSE, network namespaces or QEMU
//!   decide to run or skip, and how CI turns a skip into a failure.

pub mod catalog;
pub mod ddptool;
pub mod fuse;
pub mod kernel;
pub mod lanes;
pub mod memfs;
pub mod mount;
pub mod node;
pub mod tree;
pub mod uevent;
pub mod veth;

pub use mount::{SimError, SimNode, SimOptions};
