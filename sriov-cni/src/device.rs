//! The VF named by `deviceID`, resolved under the host root: its PF, index,
//! driver mode and netdev names.

use sriov_host::driver::DriverKind;
use sriov_host::error::Error as HostError;
use sriov_host::{HostRoot, PciAddress};

use crate::error::{CniError, Code, Result};

/// How the VF is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A kernel netdev that moves into the pod.
    Netdev,
    /// Bound to vfio-pci / uio: no netdev; only PF-side settings.
    Userspace,
}

/// A resolved VF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vf {
    /// The VF's PCI address.
    pub pci: PciAddress,
    /// The PF's PCI address.
    pub pf_pci: PciAddress,
    /// The PF's netdev name (empty when the PF has none).
    pub pf_name: String,
    /// The VF index on the PF.
    pub index: u32,
    /// The VF's driver.
    pub driver: Option<String>,
    /// Mode from the driver.
    pub mode: Mode,
    /// The VF's netdev names as sysfs shows them (netdev mode).
    pub netdevs: Vec<String>,
}

fn sysfs_err(pci: &PciAddress, e: HostError) -> CniError {
    match e {
        HostError::NoSuchDevice { .. } => CniError::new(
            Code::DeviceNotFound,
            format!("PCI device {pci} does not exist on this node"),
            format!("{e}; check deviceID (the device plugin's allocation) and SRIOV_HOST_ROOT"),
        ),
        other => CniError::new(
            Code::Sysfs,
            format!("cannot read PCI device {pci}"),
            other.to_string(),
        ),
    }
}

/// The netdev names under `<root>/sys/bus/pci/devices/<pci>/net/`.
pub fn netdev_names(root: &HostRoot, pci: &PciAddress) -> Vec<String> {
    let dir = root.pci_device(pci).join("net");
    let mut v: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn link_name(path: &std::path::Path) -> Option<String> {
    std::fs::read_link(path)
        .ok()?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
}

fn read_u32(path: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Resolves `pci`: it must be a VF (not a PF, not a plain device) with a
/// driver bound. Reads only what it needs (a handful of sysfs entries: the
/// VF index is computed from the PF's `sriov_offset`/`sriov_stride` and
/// checked against its `virtfnN` link, with a scan of the links as the
/// fallback), so it stays cheap on PFs with many VFs.
pub fn resolve(root: &HostRoot, pci: &PciAddress) -> Result<Vf> {
    let dir = root.pci_device(pci);
    if !dir.join("vendor").exists() {
        return Err(sysfs_err(
            pci,
            HostError::NoSuchDevice {
                address: *pci,
                path: dir,
            },
        ));
    }
    let Some(pf_pci) = link_name(&dir.join("physfn")).and_then(|n| PciAddress::parse(&n)) else {
        if dir.join("sriov_totalvfs").exists() {
            return Err(CniError::new(
                Code::NotAVf,
                format!("deviceID {pci} is an SR-IOV physical function, not a VF"),
                "give the PCI address of one of its VFs (the device plugin's allocation)",
            ));
        }
        return Err(CniError::new(
            Code::NotAVf,
            format!("deviceID {pci} is not an SR-IOV virtual function"),
            format!(
                "{} has no physfn link; give the PCI address of a VF",
                dir.display()
            ),
        ));
    };
    let pf_dir = root.pci_device(&pf_pci);
    let guess = match (
        read_u32(&pf_dir.join("sriov_offset")),
        read_u32(&pf_dir.join("sriov_stride")),
    ) {
        (Some(off), Some(stride)) if stride > 0 => {
            let rid = |a: &PciAddress| {
                ((a.bus as i64) << 8) | ((a.device as i64) << 3) | a.function as i64
            };
            let d = rid(pci) - rid(&pf_pci) - off as i64;
            (d >= 0 && d % stride as i64 == 0).then(|| (d / stride as i64) as u32)
        }
        _ => None,
    };
    let index = match guess.filter(|i| {
        link_name(&pf_dir.join(format!("virtfn{i}"))).as_deref() == Some(pci.to_string().as_str())
    }) {
        Some(i) => i,
        None => sriov_host::sriov::read_vf_links(&pf_dir)
            .map_err(|e| sysfs_err(pci, e))?
            .into_iter()
            .find(|l| l.address == *pci)
            .map(|l| l.index)
            .ok_or_else(|| {
                CniError::new(
                    Code::NotAVf,
                    format!("VF {pci} is not listed by its PF {pf_pci}"),
                    format!("no virtfnN link in {} points to it", pf_dir.display()),
                )
            })?,
    };
    let driver = link_name(&dir.join("driver"));
    let mode = match DriverKind::of(driver.as_deref()) {
        DriverKind::Userspace => Mode::Userspace,
        DriverKind::Kernel => Mode::Netdev,
        DriverKind::None => {
            return Err(CniError::new(
                Code::VfNetdevMissing,
                format!("VF {pci} has no driver bound"),
                "bind it to its VF driver (netdevice mode) or vfio-pci (userspace mode)",
            ));
        }
    };
    let pf_name = netdev_names(root, &pf_pci)
        .into_iter()
        .next()
        .unwrap_or_default();
    Ok(Vf {
        pci: *pci,
        pf_pci,
        pf_name,
        index,
        driver,
        mode,
        netdevs: if mode == Mode::Netdev {
            netdev_names(root, pci)
        } else {
            Vec::new()
        },
    })
}
