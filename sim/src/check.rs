//! What tests check on a node: its sysfs read raw under a host root (a
//! mounted [`crate::SimNode`] or a tree from
//! [`crate::kernel::write_static_tree`]), apart from `sriov_host`, which is
//! what is under test; and waiting until a condition holds.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `<root>/sys/bus/pci/devices/<address>`.
pub fn pci_device(root: &Path, address: &str) -> PathBuf {
    root.join("sys/bus/pci/devices").join(address)
}

/// The last component of the link at `path`; `None` when there is none.
pub fn link_name(path: &Path) -> Option<String> {
    let target = std::fs::read_link(path).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

/// A PF's `sriov_numvfs`; panics when it cannot be read.
pub fn numvfs(root: &Path, pf: &str) -> u32 {
    let path = pci_device(root, pf).join("sriov_numvfs");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}: {text:?} is not a number", path.display()))
}

/// The PCI address of VF `index` of `pf` (its `virtfn<index>` link);
/// `None` while there is no such VF.
pub fn vf_address(root: &Path, pf: &str, index: u32) -> Option<String> {
    link_name(&pci_device(root, pf).join(format!("virtfn{index}")))
}

/// The driver a PCI function is bound to; `None` when unbound.
pub fn driver(root: &Path, address: &str) -> Option<String> {
    link_name(&pci_device(root, address).join("driver"))
}

/// Polls `done` every 10 ms; panics, naming `what`, after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeSpec;

    #[test]
    fn reads_a_written_tree() {
        let d = tempfile::tempdir().unwrap();
        let yaml = "name: t\npfs:\n  - {model: e810, address: \"0000:3b:00.0\", ifname: ens1f0, vfs: 2, vf_drivers: {1: none}}\n";
        let spec = NodeSpec::from_yaml(yaml, "t").unwrap();
        crate::kernel::write_static_tree(d.path(), &spec).unwrap();
        assert_eq!(numvfs(d.path(), "0000:3b:00.0"), 2);
        let vf0 = vf_address(d.path(), "0000:3b:00.0", 0).unwrap();
        let vf1 = vf_address(d.path(), "0000:3b:00.0", 1).unwrap();
        assert_eq!(vf_address(d.path(), "0000:3b:00.0", 2), None);
        assert_eq!(driver(d.path(), &vf0).as_deref(), Some("iavf"));
        assert_eq!(driver(d.path(), &vf1), None);
        assert_eq!(driver(d.path(), "0000:3b:00.0").as_deref(), Some("ice"));
        wait_until("nothing", Duration::from_millis(1), || true);
    }
}
