//! The VF named by `deviceID`, resolved under the host root: its PF, index,
//! driver mode and netdev names.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::Mode as FileMode;
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

/// A sysfs device directory opened once (`O_PATH`), read with `*at` calls
/// relative to it. `/sys/bus/pci/devices/<pci>` is a symlink; walking it
/// for every attribute costs a symlink resolution each time (a request to
/// the daemon on the simulator's FUSE sysfs, which does not cache
/// symlinks), so the directory is resolved once and the PF's directory is
/// reached through the VF's `physfn` target, relative to the VF's real
/// directory, as the kernel itself resolves that link.
struct DevDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl DevDir {
    fn open(path: PathBuf) -> std::io::Result<DevDir> {
        let fd = openat(
            AT_FDCWD,
            &path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            FileMode::empty(),
        )?;
        Ok(DevDir { fd, path })
    }

    /// A directory relative to this one (a relative symlink target such as
    /// `../0000:3b:00.0`).
    fn open_rel(&self, rel: &Path) -> std::io::Result<DevDir> {
        let fd = openat(
            &self.fd,
            rel,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            FileMode::empty(),
        )?;
        Ok(DevDir {
            fd,
            path: self.path.join(rel),
        })
    }

    fn link_target(&self, name: &str) -> Option<PathBuf> {
        readlinkat(&self.fd, name).ok().map(PathBuf::from)
    }

    fn link_name(&self, name: &str) -> Option<String> {
        self.link_target(name)?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    }

    fn exists(&self, name: &str) -> bool {
        nix::sys::stat::fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
    }

    fn read_u32(&self, name: &str) -> Option<u32> {
        let fd = openat(
            &self.fd,
            name,
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            FileMode::empty(),
        )
        .ok()?;
        // One read: a sysfs attribute comes whole in the first read (and
        // on FUSE every further read is another request to the daemon).
        let mut buf = [0u8; 32];
        let n = std::fs::File::from(fd).read(&mut buf).ok()?;
        std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
    }

    /// Entry names of the subdirectory `name` (sorted; empty when missing).
    fn list(&self, name: &str) -> Vec<String> {
        let Ok(mut d) = nix::dir::Dir::openat(
            &self.fd,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            FileMode::empty(),
        ) else {
            return Vec::new();
        };
        let mut v: Vec<String> = d
            .iter()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "." && n != "..")
            .collect();
        v.sort();
        v
    }
}

/// Resolves `pci`: it must be a VF (not a PF, not a plain device) with a
/// driver bound. Reads only what it needs (a handful of sysfs entries: the
/// VF index is computed from the PF's `sriov_offset`/`sriov_stride` and
/// checked against its `virtfnN` link, with a scan of the links as the
/// fallback), so it stays cheap on PFs with many VFs.
pub fn resolve(root: &HostRoot, pci: &PciAddress) -> Result<Vf> {
    let not_found = |path: PathBuf| {
        sysfs_err(
            pci,
            HostError::NoSuchDevice {
                address: *pci,
                path,
            },
        )
    };
    let dir = match DevDir::open(root.pci_device(pci)) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(not_found(root.pci_device(pci)));
        }
        Err(e) => {
            return Err(CniError::new(
                Code::Sysfs,
                format!("cannot open PCI device {pci}"),
                format!(
                    "{}: {e} (errno {})",
                    root.pci_device(pci).display(),
                    e.raw_os_error().unwrap_or(0)
                ),
            ));
        }
    };
    let physfn = dir.link_target("physfn");
    let Some(pf_pci) = physfn
        .as_ref()
        .and_then(|t| t.file_name())
        .and_then(|n| PciAddress::parse(&n.to_string_lossy()))
    else {
        if !dir.exists("vendor") {
            return Err(not_found(dir.path.clone()));
        }
        if dir.exists("sriov_totalvfs") {
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
                dir.path.display()
            ),
        ));
    };
    // sysfs links are relative; an absolute one (a hand-made tree) is
    // taken under the host root.
    let pf_dir = match physfn.as_deref().filter(|t| t.is_relative()) {
        Some(rel) => dir.open_rel(rel),
        None => DevDir::open(root.pci_device(&pf_pci)),
    }
    .map_err(|e| {
        CniError::new(
            Code::Sysfs,
            format!("cannot open the PF {pf_pci} of VF {pci}"),
            format!(
                "{}/physfn: {e} (errno {})",
                dir.path.display(),
                e.raw_os_error().unwrap_or(0)
            ),
        )
    })?;
    let guess = match (
        pf_dir.read_u32("sriov_offset"),
        pf_dir.read_u32("sriov_stride"),
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
    let pf_sysfs = root.pci_device(&pf_pci);
    let index = match guess.filter(|i| {
        pf_dir.link_name(&format!("virtfn{i}")).as_deref() == Some(pci.to_string().as_str())
    }) {
        Some(i) => i,
        None => sriov_host::sriov::read_vf_links(&pf_sysfs)
            .map_err(|e| sysfs_err(pci, e))?
            .into_iter()
            .find(|l| l.address == *pci)
            .map(|l| l.index)
            .ok_or_else(|| {
                CniError::new(
                    Code::NotAVf,
                    format!("VF {pci} is not listed by its PF {pf_pci}"),
                    format!("no virtfnN link in {} points to it", pf_sysfs.display()),
                )
            })?,
    };
    let driver = dir.link_name("driver");
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
    let pf_name = pf_dir.list("net").into_iter().next().unwrap_or_default();
    Ok(Vf {
        pci: *pci,
        pf_pci,
        pf_name,
        index,
        driver,
        mode,
        netdevs: if mode == Mode::Netdev {
            dir.list("net")
        } else {
            Vec::new()
        },
    })
}
