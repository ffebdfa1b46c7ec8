//! The node's kernel as typed data and operations, resolved under a host
//! root (default `/`, `--host-root` / `SRIOV_HOST_ROOT`).
//!
//! Modules:
//! - [`address`]: PCI function addresses.
//! - `attr`: reading sysfs attributes as the kernel writes them.
//! - [`auxiliary`]: auxiliary-bus devices (scalable functions).
//! - [`boot`]: kernel command line, IOMMU state, boot-loader arguments.
//! - `detail`: how much of each function a read fills in ([`scan::Detail`]).
//! - [`devnodes`]: device nodes (VFIO, no-IOMMU, UIO) and InfiniBand partition keys.
//! - [`driver`]: driver binding, the safe kernel way.
//! - [`error`]: errors of the sysfs model and its checked writes.
//! - [`files`]: atomic file writes with one durability policy.
//! - [`netdev`]: network interfaces as sysfs shows them.
//! - [`netlink`]: link, VF, address and route operations behind one synchronous trait.
//! - [`netns`]: network namespaces, and running code inside one.
//! - [`pci`]: what sysfs says about one PCI function.
//! - [`root`]: the host root every path is resolved under.
//! - [`routes`]: whether an interface carries routes (`/proc/net/route`).
//! - [`scan`](mod@scan): a whole-node scan.
//! - [`sriov`]: a PF's SR-IOV capability files and VF links; `sriov_numvfs` writes.
//! - [`sysctl`]: per-interface `/proc/sys/net` knobs.
//! - [`topology`]: PCIe topology: root, root port, switches, NUMA, distance to GPUs.
//! - [`uevent`]: kernel uevents.
//! - [`vdpa`]: vDPA devices of PCI functions.

// sysfs model and writes
pub mod address;
mod attr;
pub mod auxiliary;
pub mod boot;
mod detail;
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
