//! The host root: every path this crate reads or writes on the node is
//! resolved under it.
//!
//! The default is `/`. A container that mounts the node's `/` at `/host`
//! uses `/host`; tests and the simulator use a temp dir or a FUSE mount.
//! [`HostRoot::from_env`] reads [`HOST_ROOT_ENV`] (`SRIOV_HOST_ROOT`).
//!
//! A `HostRoot` also carries the [`AttrWriter`] through which every sysfs
//! write goes. The default, [`FsWriter`], writes the file; tests substitute a
//! writer that records the writes, injects errors (`EBUSY`...) or plays the
//! kernel's part on a static tree.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::address::PciAddress;

/// The environment variable naming the host root.
pub const HOST_ROOT_ENV: &str = "SRIOV_HOST_ROOT";

/// Performs sysfs attribute writes. One `write` is one `write(2)` of the
/// whole value to the opened attribute, as the kernel expects.
pub trait AttrWriter: Send + Sync + fmt::Debug {
    /// Writes `value` to the attribute at `path` (which must exist).
    fn write(&self, path: &Path, value: &str) -> io::Result<()>;
}

/// The real writer: opens the existing attribute write-only (truncating, so a
/// static tree shows the last value written) and writes the value in one
/// call. Never creates files: a missing attribute is `ENOENT`.
#[derive(Debug, Default, Clone, Copy)]
pub struct FsWriter;

impl AttrWriter for FsWriter {
    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)?;
        let n = f.write(value.as_bytes())?;
        if n != value.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write: {n} of {} bytes", value.len()),
            ));
        }
        Ok(())
    }
}

/// A node's filesystem root, and how attributes are written under it.
#[derive(Clone)]
pub struct HostRoot {
    root: PathBuf,
    writer: Arc<dyn AttrWriter>,
}

impl fmt::Debug for HostRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostRoot")
            .field("root", &self.root)
            .field("writer", &self.writer)
            .finish()
    }
}

impl Default for HostRoot {
    /// The real node: `/`.
    fn default() -> Self {
        Self::new("/")
    }
}

impl PartialEq for HostRoot {
    /// Two roots are equal when they name the same directory.
    fn eq(&self, other: &Self) -> bool {
        self.root == other.root
    }
}

impl HostRoot {
    /// A host root at `root`, writing with [`FsWriter`].
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            writer: Arc::new(FsWriter),
        }
    }

    /// The root named by `SRIOV_HOST_ROOT`, or `/` when it is unset or empty.
    pub fn from_env() -> Self {
        match std::env::var_os(HOST_ROOT_ENV) {
            Some(v) if !v.is_empty() => Self::new(v),
            _ => Self::default(),
        }
    }

    /// The same root with another attribute writer.
    pub fn with_writer(mut self, writer: Arc<dyn AttrWriter>) -> Self {
        self.writer = writer;
        self
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The writer used for attribute writes.
    pub fn writer(&self) -> &dyn AttrWriter {
        self.writer.as_ref()
    }

    /// Resolves a node path (`/sys/...` or `sys/...`) under the root.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        let rel = rel.as_ref();
        let rel = rel.strip_prefix("/").unwrap_or(rel);
        self.root.join(rel)
    }

    /// `<root>/sys/<rel>`.
    pub fn sys(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.join("sys").join(rel)
    }

    /// `<root>/proc/<rel>`.
    pub fn proc(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.join("proc").join(rel)
    }

    /// `<root>/dev/<rel>`.
    pub fn dev(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.join("dev").join(rel)
    }

    /// `<root>/sys/bus/pci/devices`.
    pub fn pci_devices_dir(&self) -> PathBuf {
        self.sys("bus/pci/devices")
    }

    /// `<root>/sys/bus/pci/devices/<address>` (a link to the function's
    /// directory under `sys/devices`).
    pub fn pci_device(&self, address: &PciAddress) -> PathBuf {
        self.pci_devices_dir().join(address.to_string())
    }

    /// `<root>/sys/bus/pci/drivers`.
    pub fn pci_drivers_dir(&self) -> PathBuf {
        self.sys("bus/pci/drivers")
    }

    /// `<root>/sys/bus/pci/drivers/<name>`; it exists when the driver is
    /// loaded.
    pub fn pci_driver(&self, name: &str) -> PathBuf {
        self.pci_drivers_dir().join(name)
    }

    /// `<root>/sys/bus/pci/drivers_probe`.
    pub fn drivers_probe(&self) -> PathBuf {
        self.sys("bus/pci/drivers_probe")
    }

    /// `<root>/sys/kernel/iommu_groups/<group>`.
    pub fn iommu_group(&self, group: u32) -> PathBuf {
        self.sys("kernel/iommu_groups").join(group.to_string())
    }

    /// `<root>/sys/class/net/<ifname>`.
    pub fn class_net(&self, ifname: &str) -> PathBuf {
        self.sys("class/net").join(ifname)
    }

    /// `<root>/dev/vfio/<group>`, the VFIO group device of a group whose
    /// devices are bound to vfio-pci.
    pub fn vfio_group_dev(&self, group: u32) -> PathBuf {
        self.dev("vfio").join(group.to_string())
    }

    /// Reads an attribute (trimmed), with the path in the error; the twin
    /// of [`HostRoot::write_attr`] for reading back what was written.
    pub fn read_attr(&self, path: &Path) -> crate::error::Result<String> {
        crate::attr::read_trimmed(path).map_err(|source| crate::error::Error::Read {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Writes an attribute through the root's writer, with the path and
    /// errno in the error.
    pub fn write_attr(&self, path: &Path, value: &str) -> crate::error::Result<()> {
        tracing::debug!(path = %path.display(), value, "sysfs write");
        self.writer
            .write(path, value)
            .map_err(|source| crate::error::Error::Write {
                path: path.to_path_buf(),
                value: value.trim_end().to_string(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_under_the_root() {
        let r = HostRoot::new("/host");
        let a: PciAddress = "3b:00.0".parse().unwrap();
        assert_eq!(r.join("/sys/x"), PathBuf::from("/host/sys/x"));
        assert_eq!(r.join("sys/x"), PathBuf::from("/host/sys/x"));
        assert_eq!(
            r.pci_device(&a),
            PathBuf::from("/host/sys/bus/pci/devices/0000:3b:00.0")
        );
        assert_eq!(
            r.pci_driver("vfio-pci"),
            PathBuf::from("/host/sys/bus/pci/drivers/vfio-pci")
        );
        assert_eq!(r.vfio_group_dev(7), PathBuf::from("/host/dev/vfio/7"));
        assert_eq!(r.proc("net/route"), PathBuf::from("/host/proc/net/route"));
        assert_eq!(HostRoot::default().path(), Path::new("/"));
    }

    #[test]
    fn fs_writer_truncates_and_never_creates() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("attr");
        std::fs::write(&p, "longer old value\n").unwrap();
        FsWriter.write(&p, "4").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "4");
        let missing = tmp.path().join("missing");
        let e = FsWriter.write(&missing, "1").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        assert!(!missing.exists());
    }
}
