//! The node's kernel as typed data and operations, resolved under a host
//! root (default `/`, `--host-root` / `SRIOV_HOST_ROOT`).
//!
//! - Sysfs model (PCI functions, SR-IOV PFs and VFs, drivers, IOMMU groups,
//!   NUMA, netdevs, RDMA devices, auxiliary and vDPA devices)
//!   and checked writes: [`root`], [`pci`],
//!   [`sriov`], [`netdev`], [`driver`], [`mod@scan`], [`routes`],
//!   [`auxiliary`], [`vdpa`].
//! - Netlink (VF settings on a PF, link moves, renames): [`netlink`].
//! - Network namespaces on a dedicated thread: [`netns`].
//! - Kernel uevents: [`uevent`].

// sysfs model and writes
mod attr;
pub mod auxiliary;
pub mod driver;
pub mod error;
pub mod netdev;
pub mod pci;
pub mod root;
pub mod routes;
pub mod scan;
pub mod sriov;
pub mod vdpa;

pub use driver::{BindOptions, BindOutcome, DriverKind, DriverState};
pub use netdev::{LinkType, Netdev, OperState};
pub use pci::{PciAddress, PciFunction};
pub use root::HostRoot;
pub use scan::{Node, scan};
pub use sriov::{SriovCapability, VfInfo, VfLink};

// netlink, namespaces, uevents
pub mod netlink;
pub mod netns;
pub mod uevent;
