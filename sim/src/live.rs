//! A simulated node on disk whose sysfs writes the simulated kernel carries
//! out, without FUSE or root: [`live_root`] gives a [`HostRoot`] whose
//! attribute writer hands every write to [`SimKernel::store`] (as the FUSE
//! mount hands it writes), which moves `driver` links, creates
//! `dev/vfio/<group>`, removes netdevs... in the on-disk tree. Reads are
//! plain file reads of that tree.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sriov_host::HostRoot;
use sriov_host::root::AttrWriter;

use crate::kernel::SimKernel;
use crate::node::NodeSpec;
use crate::tree::DiskSink;

/// Hands sysfs writes under `root` to the simulated kernel.
#[derive(Debug)]
pub struct KernelWriter {
    root: PathBuf,
    kernel: Mutex<SimKernel<DiskSink>>,
}

impl AttrWriter for KernelWriter {
    fn write(&self, path: &Path, value: &str) -> std::io::Result<()> {
        // The kernel knows devices by their real directory, not the
        // sys/bus/pci/devices link.
        let dir = path
            .parent()
            .ok_or_else(|| std::io::Error::other("no parent"))?
            .canonicalize()?;
        let name = path
            .file_name()
            .ok_or_else(|| std::io::Error::other("no file name"))?;
        let rel = dir
            .strip_prefix(&self.root)
            .map_err(std::io::Error::other)?
            .join(name);
        let rel = rel
            .to_str()
            .ok_or_else(|| std::io::Error::other("path is not UTF-8"))?;
        self.kernel
            .lock()
            .map_err(|_| std::io::Error::other("simulated kernel poisoned"))?
            .store(rel, value)
            .map(|_| ())
            .map_err(|e| std::io::Error::from_raw_os_error(e.errno))
    }
}

/// Boots `spec` into the tree at `dir` and returns its root, with writes
/// going to the simulated kernel.
pub fn live_root(dir: &Path, spec: &NodeSpec) -> std::io::Result<HostRoot> {
    let kernel = SimKernel::boot(DiskSink::new(dir), spec.clone(), None)
        .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    let writer = KernelWriter {
        root: dir.canonicalize()?,
        kernel: Mutex::new(kernel),
    };
    Ok(HostRoot::new(dir).with_writer(Arc::new(writer)))
}
