//! Errors of the sysfs model and its checked writes.
//!
//! Every variant names the path involved; I/O errors show the errno by name
//! (`EBUSY: Device or resource busy`) and, where one is known, what to do.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::address::PciAddress;

/// A `Result` with this crate's sysfs [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong reading or changing the node's sysfs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A read failed (other than a vanished device, see [`Error::NoSuchDevice`]).
    #[error("reading {}: {}{}", path.display(), describe_io(source), read_hint(source))]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A write to a sysfs attribute failed.
    #[error("writing {value:?} to {}: {}{}", path.display(), describe_io(source), write_hint(path, source))]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    /// A file held something this crate cannot parse.
    #[error("{}: cannot parse {value:?} as {expected}", path.display())]
    Parse {
        path: PathBuf,
        value: String,
        expected: &'static str,
    },
    /// A string is not a PCI address.
    #[error(transparent)]
    InvalidAddress(#[from] crate::address::AddressError),
    /// No such PCI function on the node (or it was removed).
    #[error("no PCI device {address} ({} does not exist)", path.display())]
    NoSuchDevice { address: PciAddress, path: PathBuf },
    /// No such network interface in `sys/class/net`.
    #[error("no network interface {name:?} ({} does not exist)", path.display())]
    NoSuchInterface { name: String, path: PathBuf },
    /// The interface exists but is not backed by a PCI function.
    #[error("network interface {name:?} is not a PCI device ({} points to {})", path.display(), target.display())]
    NotPciInterface {
        name: String,
        path: PathBuf,
        target: PathBuf,
    },
    /// The function has no SR-IOV capability (no `sriov_totalvfs`).
    #[error("{address} is not an SR-IOV physical function ({} does not exist)", path.display())]
    NotSriovPf { address: PciAddress, path: PathBuf },
    /// More VFs were requested than the PF supports.
    #[error("{address} supports at most {total} VFs, {requested} requested ({})", path.display())]
    TooManyVfs {
        address: PciAddress,
        requested: u32,
        total: u32,
        path: PathBuf,
    },
    /// The driver is not registered with the PCI bus.
    #[error("driver {driver} is not loaded ({} does not exist); load it first: modprobe {}", path.display(), driver)]
    DriverNotLoaded { driver: String, path: PathBuf },
    /// A bounded wait for the kernel ran out.
    #[error("timed out after {waited:?} waiting for {what} ({})", path.display())]
    Timeout {
        what: String,
        path: PathBuf,
        waited: Duration,
    },
    /// A write was accepted but the kernel state did not change as expected.
    #[error("{what} did not take effect: {} shows {found:?}, expected {expected:?}; {hint}", path.display())]
    NotApplied {
        what: String,
        path: PathBuf,
        expected: String,
        found: String,
        hint: &'static str,
    },
}

impl Error {
    /// The OS error number behind this error, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Read { source, .. } | Error::Write { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// The path the error is about, if any.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Error::Read { path, .. }
            | Error::Write { path, .. }
            | Error::Parse { path, .. }
            | Error::NoSuchDevice { path, .. }
            | Error::NoSuchInterface { path, .. }
            | Error::NotPciInterface { path, .. }
            | Error::NotSriovPf { path, .. }
            | Error::TooManyVfs { path, .. }
            | Error::DriverNotLoaded { path, .. }
            | Error::Timeout { path, .. }
            | Error::NotApplied { path, .. } => Some(path),
            Error::InvalidAddress(_) => None,
        }
    }
}

/// `EBUSY: Device or resource busy`, or the plain message for errors
/// without an errno.
pub fn describe_io(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let errno = nix::errno::Errno::from_raw(code);
            format!("{errno:?}: {}", errno.desc())
        }
        None => e.to_string(),
    }
}

fn read_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => " (run as root)",
        _ => "",
    }
}

fn write_hint(path: &std::path::Path, e: &io::Error) -> &'static str {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    match (e.raw_os_error(), name) {
        (Some(libc::EBUSY), "sriov_numvfs") => {
            " (VFs exist or are in use: set 0 first, and release VFs held by pods or vfio)"
        }
        (Some(libc::ERANGE), "sriov_numvfs") => " (more VFs than sriov_totalvfs)",
        (Some(libc::ENOMEM), "sriov_numvfs") => {
            " (the platform cannot place the VFs: check BIOS SR-IOV and PCI bus numbers)"
        }
        (Some(libc::EBUSY), _) => " (the device is in use)",
        (Some(libc::ENODEV), _) => " (the device or driver went away, or refused the device)",
        (Some(libc::EACCES) | Some(libc::EPERM), _) => " (run as root)",
        (Some(libc::EROFS), _) => " (sysfs is mounted read-only: the container must be privileged)",
        (Some(libc::ENOENT), _) => " (the attribute does not exist on this kernel or device)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_errors_name_the_errno_the_path_and_a_remedy() {
        let e = Error::Write {
            path: "/sys/bus/pci/devices/0000:3b:00.0/sriov_numvfs".into(),
            value: "8".into(),
            source: io::Error::from_raw_os_error(libc::EBUSY),
        };
        let msg = e.to_string();
        assert!(msg.contains("EBUSY"), "{msg}");
        assert!(
            msg.contains("/sys/bus/pci/devices/0000:3b:00.0/sriov_numvfs"),
            "{msg}"
        );
        assert!(msg.contains("set 0 first"), "{msg}");
        assert_eq!(e.errno(), Some(libc::EBUSY));
    }

    #[test]
    fn missing_driver_says_modprobe() {
        let e = Error::DriverNotLoaded {
            driver: "vfio-pci".into(),
            path: "/sys/bus/pci/drivers/vfio-pci".into(),
        };
        assert!(e.to_string().contains("modprobe vfio-pci"));
    }
}
