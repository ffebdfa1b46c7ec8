//! A simulated SR-IOV node for tests, benchmarks and the demo.
//!
//! Modules:
//! - `api_server` (feature `api-server`): a Kubernetes API server stand-in
//!   whose test answers each request.
//! - [`check`]: a node's sysfs read raw as tests check it; waiting.
//! - [`catalog`]: the NIC models, ids from `data/supported-nic-ids.tsv`.
//! - [`ddptool`]: a stand-in for Intel's `ddptool`.
//! - [`fuse`]: the FUSE server over the in-memory filesystem.
//! - [`kernel`]: the simulated kernel, with the kernel's errnos and uevents.
//! - [`lanes`]: which test lanes a machine has; SKIP, or failure under CI.
//! - `live` (feature `live`): a node on disk whose sysfs writes the simulated
//!   kernel carries out, without FUSE or root.
//! - [`memfs`]: the in-memory filesystem the kernel writes to.
//! - [`mount`]: [`SimNode`]: a mounted node for tests.
//! - [`node`]: a node description in YAML, or by name, with fault injection.
//! - [`tree`]: a node's sysfs laid out exactly as the kernel does.
//! - [`uevent`]: the uevents the simulated kernel emits, and their delivery.
//! - [`veth`]: real veths backing PF and VF netdevs (`--veth`).

#[cfg(feature = "api-server")]
pub mod api_server;
pub mod catalog;
pub mod check;
pub mod ddptool;
pub mod fuse;
pub mod kernel;
pub mod lanes;
#[cfg(feature = "live")]
pub mod live;
pub mod memfs;
pub mod mount;
pub mod node;
pub mod tree;
pub mod uevent;
pub mod veth;

pub use mount::{SimError, SimNode, SimOptions};
