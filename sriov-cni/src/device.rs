//! The VF named by `deviceID`, resolved under the host root: its PF, index,
//! driver mode and netdev names.

use sriov_host::driver::DriverKind;
use sriov_host::error::Error as HostError;
use sriov_host::{HostRoot, PciAddress, PciFunction};

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

/// Resolves `pci`: it must be a VF (not a PF, not a plain device) with a
/// driver bound.
pub fn resolve(root: &HostRoot, pci: &PciAddress) -> Result<Vf> {
    let f = PciFunction::read(root, pci).map_err(|e| sysfs_err(pci, e))?;
    if f.is_pf() {
        return Err(CniError::new(
            Code::NotAVf,
            format!("deviceID {pci} is an SR-IOV physical function, not a VF"),
            "give the PCI address of one of its VFs (the device plugin's allocation)",
        ));
    }
    let Some(vfinfo) = f.vf else {
        return Err(CniError::new(
            Code::NotAVf,
            format!("deviceID {pci} is not an SR-IOV virtual function"),
            format!(
                "{} has no physfn link; give the PCI address of a VF",
                root.pci_device(pci).display()
            ),
        ));
    };
    let mode = match DriverKind::of(f.driver.as_deref()) {
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
    let pf_name = netdev_names(root, &vfinfo.pf)
        .into_iter()
        .next()
        .unwrap_or_default();
    Ok(Vf {
        pci: *pci,
        pf_pci: vfinfo.pf,
        pf_name,
        index: vfinfo.index,
        driver: f.driver,
        mode,
        netdevs: f.netdevs.iter().map(|n| n.name.clone()).collect(),
    })
}
