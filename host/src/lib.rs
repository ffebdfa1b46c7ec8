//! The node's kernel as typed data and operations, resolved under a host
//! root (default `/`, `--host-root` / `SRIOV_HOST_ROOT`).
//!
//! - Sysfs model (PCI functions, SR-IOV PFs and VFs, drivers, IOMMU groups,
//!   NUMA, netdevs, RDMA devices, auxiliary and vDPA devices)
//!   and checked writes: [`root`], [`pci`],
//!   [`sriov`], [`netdev`], [`driver`], [`mod@scan`], [`routes`],
//!   [`auxiliary`], [`vdpa`]; device nodes (VFIO, no-IOMMU, UIO) and
//!   InfiniBand partition keys: [`devnodes`].
//! - Atomic file writes with one durability policy: [`files`].
//! - PCIe topology (root, root port, switches, NUMA, distance to GPUs):
//!   [`topology`].
//! - Netlink (VF settings on a PF, link moves, renames, addresses and
//!   routes): [`netlink`]; per-interface `/proc/sys/net` knobs:
//!   [`sysctl`].
//! - Network namespaces on a dedicated thread: [`netns`].
//! - Kernel uevents: [`uevent`].

// sysfs model and writes
mod attr;
pub mod auxiliary;
pub mod boot;
pub mod devnodes;
pub mod driver;
pub mod error;
pub mod files;
pub mod netdev;
pub mod pci;
pub mod root;
pub mod routes;
pub mod scan;
pub mod sriov;
pub mod topology;
pub mod vdpa;

pub use driver::{BindOptions, BindOutcome, DriverKind, DriverState};
pub use netdev::{LinkType, Netdev, OperState};
pub use pci::{PciAddress, PciFunction};
pub use root::HostRoot;
pub use scan::{Node, scan};
pub use sriov::{SriovCapability, VfInfo, VfLink};
pub use topology::{Distance, PcieLocation, PcieRoot, Topology};

// netlink, namespaces, uevents
pub mod netlink;
pub mod netns;
pub mod sysctl;
pub mod uevent;

/// The pure parsers behind the sysfs reads, for the fuzz targets (`fuzz/`).
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::attr::{attribute_text, parse_dirents, parse_hex_u16, parse_hex_u32};
}
