//! PCI functions: what sysfs says about one function (its address type is
//! [`crate::address`]'s, re-exported here).
//!
//! A function lives at `<root>/sys/bus/pci/devices/<address>`, a link into
//! `sys/devices/...`. [`PciFunction::read`] reads one; [`crate::scan::scan`]
//! reads them all.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::address::{AddressError, PciAddress};
use crate::attr::{self, Dir};
use crate::detail::Detail;
use crate::error::{Error, Result};
use crate::netdev::Netdev;
use crate::root::HostRoot;
use crate::sriov::{SriovCapability, VfInfo};

/// PCI class code of Ethernet controllers is `0x0200xx`; the whole network
/// controller class is `0x02xxxx`.
pub const CLASS_NETWORK: u8 = 0x02;

/// Red Hat / virtio PCI vendor id; virtio-net netdevs live under
/// `<function>/virtioN/net/`.
const VIRTIO_VENDOR: u16 = 0x1af4;

/// One PCI function as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PciFunction {
    pub address: PciAddress,
    /// `vendor`, e.g. `0x8086`.
    pub vendor: u16,
    /// `device`.
    pub device: u16,
    /// `class`, 24 bits: base class, subclass, programming interface.
    pub class: u32,
    pub subsystem_vendor: Option<u16>,
    pub subsystem_device: Option<u16>,
    /// The bound driver (name of the `driver` link's target).
    pub driver: Option<String>,
    /// `driver_override`; `(null)` and empty are `None`.
    pub driver_override: Option<String>,
    /// `numa_node`; `-1` (no affinity) is `None`.
    pub numa_node: Option<u32>,
    /// The IOMMU group (name of the `iommu_group` link's target).
    pub iommu_group: Option<u32>,
    /// `acpi_index`, when firmware provides one.
    pub acpi_index: Option<u32>,
    /// SR-IOV capability: present on a PF (a function with `sriov_totalvfs`).
    pub sriov: Option<SriovCapability>,
    /// Present on a VF: its PF and index.
    pub vf: Option<VfInfo>,
    /// Network interfaces under `net/` (for virtio-net, `virtioN/net/`), by
    /// name.
    pub netdevs: Vec<Netdev>,
    /// RDMA devices under `infiniband/`, by name.
    pub rdma: Vec<String>,
}

impl PciFunction {
    /// Reads one function, including its VF index (from its PF's `virtfnN`
    /// links). [`Error::NoSuchDevice`] when it does not exist.
    pub fn read(root: &HostRoot, address: &PciAddress) -> Result<PciFunction> {
        let dir = root.pci_device(address);
        let raw = read_raw(&dir, *address, Detail::Full)?.ok_or_else(|| Error::NoSuchDevice {
            address: *address,
            path: dir.clone(),
        })?;
        let mut f = raw.function;
        if let Some(pf) = raw.physfn {
            let links = crate::sriov::read_vf_links(&root.pci_device(&pf))?;
            f.vf = links
                .iter()
                .find(|l| l.address == *address)
                .map(|l| VfInfo { pf, index: l.index });
        }
        Ok(f)
    }

    /// Base class `0x02` (network controller).
    pub fn is_network(&self) -> bool {
        (self.class >> 16) as u8 == CLASS_NETWORK
    }

    /// A physical function with SR-IOV capability.
    pub fn is_pf(&self) -> bool {
        self.sriov.is_some()
    }

    /// A virtual function.
    pub fn is_vf(&self) -> bool {
        self.vf.is_some()
    }

    /// The netdev to show for this function: the first that is not a switchdev
    /// representor (`pfNvfM`, `pfNsfM`), else the first.
    pub fn primary_netdev(&self) -> Option<&Netdev> {
        self.netdevs
            .iter()
            .find(|n| !n.is_representor())
            .or_else(|| self.netdevs.first())
    }

    /// Whether a netdev of this name belongs to the function.
    pub fn has_netdev(&self, name: &str) -> bool {
        self.netdevs.iter().any(|n| n.name == name)
    }
}

/// The members of an IOMMU group, from
/// `<root>/sys/kernel/iommu_groups/<group>/devices`, sorted. An absent group
/// is empty.
pub fn iommu_group_devices(root: &HostRoot, group: u32) -> Result<Vec<PciAddress>> {
    let dir = root.iommu_group(group).join("devices");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(Error::Read { path: dir, source }),
    };
    let mut out: Vec<PciAddress> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(PciAddress::parse))
        .collect();
    out.sort();
    Ok(out)
}

/// A function read without cross-device resolution: the VF index needs the
/// PF's links, which a scan reads once per PF.
pub(crate) struct RawFunction {
    pub function: PciFunction,
    pub physfn: Option<PciAddress>,
}

/// Reads a function directory, as much as `detail` asks. `Ok(None)` when
/// the device vanished (its directory or `vendor` is gone): callers skip it.
pub(crate) fn read_raw(
    path: &Path,
    address: PciAddress,
    detail: Detail,
) -> Result<Option<RawFunction>> {
    let full = detail == Detail::Full;
    let dir = match Dir::open(path) {
        Ok(d) => d,
        Err(e) if attr::is_absent(&e) || e.raw_os_error() == Some(libc::ENOTDIR) => {
            return Ok(None);
        }
        Err(source) => {
            return Err(Error::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    // `uevent` carries the ids in one read (PCI_CLASS, PCI_ID,
    // PCI_SUBSYS_ID); without it (a minimal tree) the single files are read.
    let ids = match dir.opt("uevent")? {
        Some(u) => ids_from_uevent(&u),
        None => None,
    };
    let ids = match ids {
        Some(ids) => ids,
        None => {
            let id = |name: &str| dir.opt_parsed(name, "a 16-bit hex id", attr::parse_hex_u16);
            let Some(vendor) = id("vendor")? else {
                return Ok(None);
            };
            let Some(device) = id("device")? else {
                return Ok(None);
            };
            let Some(class) = dir.opt_parsed("class", "a hex class code", attr::parse_hex_u32)?
            else {
                return Ok(None);
            };
            let subsystem = if full {
                id("subsystem_vendor")?.zip(id("subsystem_device")?)
            } else {
                None
            };
            Ids {
                vendor,
                device,
                class,
                subsystem,
            }
        }
    };
    let numa_node = dir
        .opt_parsed("numa_node", "a NUMA node number", |v| v.parse::<i64>().ok())?
        .and_then(|n| u32::try_from(n).ok());
    let driver_override = if full {
        dir.opt("driver_override")?
            .filter(|v| v != "(null)" && !v.is_empty())
    } else {
        None
    };
    let driver = dir.link_name("driver")?;
    let iommu_group = match dir.link_name("iommu_group")? {
        None => None,
        Some(g) => Some(g.parse::<u32>().map_err(|_| Error::Parse {
            path: dir.child_path("iommu_group"),
            value: g,
            expected: "an IOMMU group number",
        })?),
    };
    let physfn = dir
        .link_name("physfn")?
        .as_deref()
        .and_then(PciAddress::parse);
    // A VF is never a PF and has no firmware (ACPI) index.
    let (acpi_index, sriov) = if physfn.is_some() {
        (None, None)
    } else {
        (
            dir.opt_parsed("acpi_index", "an ACPI index", |v| v.parse::<u32>().ok())?,
            crate::sriov::read_capability(&dir)?,
        )
    };
    let mut netdevs = crate::netdev::read_netdevs_of(&dir, detail)?;
    if netdevs.is_empty() && ids.vendor == VIRTIO_VENDOR {
        // virtio-net: the netdev hangs off the virtio device, `virtioN/net/`.
        for name in dir.names()? {
            if name.starts_with("virtio")
                && let Ok(sub) = dir.sub(&name)
            {
                netdevs.extend(crate::netdev::read_netdevs_of(&sub, detail)?);
            }
        }
    }
    let rdma = dir
        .listing("infiniband")?
        .map(|(_, names)| names)
        .unwrap_or_default();
    Ok(Some(RawFunction {
        function: PciFunction {
            address,
            vendor: ids.vendor,
            device: ids.device,
            class: ids.class,
            subsystem_vendor: ids.subsystem.map(|s| s.0),
            subsystem_device: ids.subsystem.map(|s| s.1),
            driver,
            driver_override,
            numa_node,
            iommu_group,
            acpi_index,
            sriov,
            vf: None,
            netdevs,
            rdma,
        },
        physfn,
    }))
}

struct Ids {
    vendor: u16,
    device: u16,
    class: u32,
    subsystem: Option<(u16, u16)>,
}

/// The ids in a PCI device's `uevent` (`PCI_CLASS=20000`,
/// `PCI_ID=8086:1889`, `PCI_SUBSYS_ID=8086:0000`); `None` unless all are
/// there.
fn ids_from_uevent(uevent: &str) -> Option<Ids> {
    let mut class = None;
    let mut id = None;
    let mut subsystem = None;
    let pair = |v: &str| {
        let (a, b) = v.split_once(':')?;
        Some((attr::parse_hex_u16(a)?, attr::parse_hex_u16(b)?))
    };
    for line in uevent.lines() {
        match line.split_once('=') {
            Some(("PCI_CLASS", v)) => class = attr::parse_hex_u32(v),
            Some(("PCI_ID", v)) => id = pair(v),
            Some(("PCI_SUBSYS_ID", v)) => subsystem = pair(v),
            _ => {}
        }
    }
    let (vendor, device) = id?;
    Some(Ids {
        vendor,
        device,
        class: class?,
        subsystem: Some(subsystem?),
    })
}

/// Whether the function is on the node: its directory and `vendor`
/// file exist (a removed function's link can outlive its attributes for a
/// moment).
pub fn present(root: &HostRoot, address: &PciAddress) -> bool {
    root.pci_device(address).join("vendor").exists()
}

/// The directory a function's `bus/pci/devices` link points to, resolved.
pub fn device_dir(root: &HostRoot, address: &PciAddress) -> Result<PathBuf> {
    let link = root.pci_device(address);
    std::fs::canonicalize(&link).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::NoSuchDevice {
                address: *address,
                path: link,
            }
        } else {
            Error::Read { path: link, source }
        }
    })
}
