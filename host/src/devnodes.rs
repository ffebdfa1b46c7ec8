//! What userspace opens to use a PCI function, and facts that name it:
//!
//! - its VFIO group device: `/dev/vfio/<group>`, or, for a group the
//!   kernel made in no-IOMMU mode (`vfio.enable_unsafe_noiommu_mode=1`;
//!   the group's `name` is `vfio-noiommu`), `/dev/vfio/noiommu-<group>`;
//! - its UIO devices (`uio_pci_generic`, `igb_uio`): `/dev/uioN` for each
//!   `uio/uioN` child of the function;
//! - the RDMA character devices of a function with an RDMA device:
//!   `/dev/infiniband/rdma_cm` and its first `uverbsN`, `umadN` and
//!   `issmN` (sysfs `infiniband_verbs/` and `infiniband_mad/`);
//! - the InfiniBand partition key at index 0 of port 1 of its (first) RDMA
//!   device, `infiniband/<dev>/ports/1/pkeys/0` (`0x7fff`).
//!
//! Paths returned are the node's (`/dev/...`), not under the host root.

use crate::attr::sorted_names;
use crate::pci::PciAddress;
use crate::root::HostRoot;

/// The name the kernel gives an IOMMU group it created for no-IOMMU VFIO.
pub const NOIOMMU_GROUP_NAME: &str = "vfio-noiommu";

/// The VFIO group device of a group, as a node path and as a container
/// sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VfioGroupNode {
    /// `/dev/vfio/<group>`, or `/dev/vfio/noiommu-<group>` in no-IOMMU
    /// mode.
    pub host_path: String,
    /// `/dev/vfio/<group>`: what DPDK and other users open.
    pub container_path: String,
    /// The group is a no-IOMMU group.
    pub noiommu: bool,
}

impl VfioGroupNode {
    /// The node exists under `root` (the group's devices are usable from
    /// userspace; a health check).
    pub fn exists(&self, root: &HostRoot) -> bool {
        root.join(self.host_path.trim_start_matches('/')).exists()
    }
}

/// Whether IOMMU group `group` is a no-IOMMU group (its `name` attribute
/// is `vfio-noiommu`; real groups have no `name` on bare metal).
pub fn is_noiommu_group(root: &HostRoot, group: u32) -> bool {
    std::fs::read_to_string(root.iommu_group(group).join("name"))
        .is_ok_and(|n| n.trim() == NOIOMMU_GROUP_NAME)
}

/// The VFIO group device of `group`.
pub fn vfio_group_node(root: &HostRoot, group: u32) -> VfioGroupNode {
    let noiommu = is_noiommu_group(root, group);
    let container_path = format!("/dev/vfio/{group}");
    let host_path = if noiommu {
        format!("/dev/vfio/noiommu-{group}")
    } else {
        container_path.clone()
    };
    VfioGroupNode {
        host_path,
        container_path,
        noiommu,
    }
}

/// `/dev/uioN` for each `uio/uioN` child of a function, sorted; empty when
/// it is not bound to a UIO driver.
pub fn uio_nodes(root: &HostRoot, address: &PciAddress) -> Vec<String> {
    sorted_names(&root.pci_device(address).join("uio"))
        .into_iter()
        .filter(|n| n.starts_with("uio"))
        .map(|n| format!("/dev/{n}"))
        .collect()
}

/// The RDMA character devices of the function (or auxiliary device) whose
/// sysfs directory is `dir`, by kind: `rdma_cm` (`/dev/infiniband/rdma_cm`,
/// node-wide) and the first `uverbs`, `umad` and `issm` node under
/// `infiniband_verbs/` and `infiniband_mad/`, as node paths. Call it for a
/// function that has an RDMA device; `rdma_cm` is there regardless.
pub fn rdma_char_devices(
    dir: &std::path::Path,
) -> std::collections::BTreeMap<&'static str, String> {
    let mut out = std::collections::BTreeMap::new();
    out.insert("rdma_cm", "/dev/infiniband/rdma_cm".to_string());
    for (sub, kinds) in [
        ("infiniband_verbs", &["uverbs"][..]),
        ("infiniband_mad", &["umad", "issm"][..]),
    ] {
        for n in sorted_names(&dir.join(sub)) {
            for kind in kinds {
                if n.starts_with(kind) && !out.contains_key(kind) {
                    out.insert(*kind, format!("/dev/infiniband/{n}"));
                }
            }
        }
    }
    out
}

/// The partition key at index 0 of port 1 of the function's first RDMA
/// device (by name), trimmed (`0x7fff`); `None` when it has none.
pub fn default_pkey(root: &HostRoot, address: &PciAddress) -> Option<String> {
    let dir = root.pci_device(address).join("infiniband");
    let devs = sorted_names(&dir);
    let first = devs.first()?;
    let key = std::fs::read_to_string(dir.join(first).join("ports/1/pkeys/0")).ok()?;
    Some(key.trim().to_string()).filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> (tempfile::TempDir, HostRoot) {
        let t = tempfile::tempdir().unwrap();
        let r = HostRoot::new(t.path());
        (t, r)
    }

    #[test]
    fn vfio_group_node_in_both_modes() {
        let (_t, r) = root();
        std::fs::create_dir_all(r.iommu_group(7)).unwrap();
        let n = vfio_group_node(&r, 7);
        assert_eq!(n.host_path, "/dev/vfio/7");
        assert_eq!(n.container_path, "/dev/vfio/7");
        assert!(!n.noiommu);
        std::fs::write(r.iommu_group(7).join("name"), "vfio-noiommu\n").unwrap();
        let n = vfio_group_node(&r, 7);
        assert_eq!(n.host_path, "/dev/vfio/noiommu-7");
        assert_eq!(n.container_path, "/dev/vfio/7");
        assert!(n.noiommu);
    }

    #[test]
    fn uio_nodes_and_pkey() {
        let (_t, r) = root();
        let a: PciAddress = "0000:3b:02.0".parse().unwrap();
        let d = r.pci_device(&a);
        assert!(uio_nodes(&r, &a).is_empty());
        assert_eq!(default_pkey(&r, &a), None);
        std::fs::create_dir_all(d.join("uio/uio3")).unwrap();
        assert_eq!(uio_nodes(&r, &a), ["/dev/uio3"]);
        std::fs::create_dir_all(d.join("infiniband/mlx5_4/ports/1/pkeys")).unwrap();
        std::fs::write(d.join("infiniband/mlx5_4/ports/1/pkeys/0"), "0x7fff\n").unwrap();
        assert_eq!(default_pkey(&r, &a).as_deref(), Some("0x7fff"));
    }

    #[test]
    fn rdma_char_devices_first_of_each_kind() {
        let (t, _r) = root();
        let d = t.path();
        std::fs::create_dir_all(d.join("infiniband_verbs/uverbs3")).unwrap();
        std::fs::create_dir_all(d.join("infiniband_mad/umad3")).unwrap();
        std::fs::create_dir_all(d.join("infiniband_mad/issm3")).unwrap();
        let got = rdma_char_devices(d);
        assert_eq!(got["rdma_cm"], "/dev/infiniband/rdma_cm");
        assert_eq!(got["uverbs"], "/dev/infiniband/uverbs3");
        assert_eq!(got["umad"], "/dev/infiniband/umad3");
        assert_eq!(got["issm"], "/dev/infiniband/issm3");
        assert_eq!(rdma_char_devices(&d.join("none")).len(), 1, "rdma_cm only");
    }
}
