//! Auxiliary-bus devices: the sub-devices a PCI driver splits a function
//! into, such as NVIDIA/Mellanox scalable functions (`mlx5_core.sf.4`).
//!
//! The kernel lays them out as children of their parent device, named
//! `<driver>.<type>.<id>`, with a link on the bus:
//!
//! ```text
//! sys/bus/auxiliary/devices/mlx5_core.sf.4 -> ../../../devices/pci0000:ae/0000:ae:00.0/0000:af:00.0/mlx5_core.sf.4
//! sys/devices/.../0000:af:00.0/mlx5_core.sf.4/
//!     sfnum                 the SF number the admin chose (SFs only)
//!     driver -> ../../../../../bus/auxiliary/drivers/mlx5_core.sf
//!     net/enp175s0f0s88/    the SF's netdev
//!     infiniband/mlx5_4/    its RDMA device, when one is registered
//! ```
//!
//! A device on the auxiliary bus may itself have auxiliary children
//! (`mlx5_core.sf.4/mlx5_core.eth.4`); its PCI parent is the nearest
//! ancestor whose name is a PCI address.

use std::path::{Path, PathBuf};

use crate::attr::sorted_names;
use crate::pci::PciAddress;
use crate::root::HostRoot;

/// One auxiliary device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuxDevice {
    /// Its name on the bus, `mlx5_core.sf.4`: the device ID.
    pub name: String,
    /// The part after the driver prefix and before the id: `sf`, `eth`,
    /// `rdma`.
    pub aux_type: String,
    /// The PCI function it belongs to.
    pub parent: PciAddress,
    /// `sfnum` (scalable functions only).
    pub sfnum: Option<u32>,
    /// The bound auxiliary driver (`mlx5_core.sf`).
    pub driver: Option<String>,
    /// Netdevs under `net/`, sorted.
    pub netdevs: Vec<String>,
    /// RDMA devices under `infiniband/`, sorted.
    pub rdma: Vec<String>,
}

/// Splits `mlx5_core.sf.4` into (`mlx5_core`, `sf`, 4). The driver part may
/// itself contain dots; the type is the second-to-last part and the id the
/// last. `None` for names that are not `<driver>.<type>.<id>`.
pub fn parse_name(name: &str) -> Option<(&str, &str, u32)> {
    let (rest, id) = name.rsplit_once('.')?;
    let (driver, ty) = rest.rsplit_once('.')?;
    if driver.is_empty()
        || ty.is_empty()
        || id.is_empty()
        || !id.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    if !ty.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    Some((driver, ty, id.parse().ok()?))
}

/// `<root>/sys/bus/auxiliary/devices/<name>`.
pub fn device_path(root: &HostRoot, name: &str) -> PathBuf {
    root.sys("bus/auxiliary/devices").join(name)
}

fn read_one(dir: &Path, name: &str, parent: PciAddress) -> Option<AuxDevice> {
    let (_, ty, _) = parse_name(name)?;
    // vanished mid-scan: skipped
    std::fs::symlink_metadata(dir).ok()?;
    let sfnum = std::fs::read_to_string(dir.join("sfnum"))
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let driver = std::fs::read_link(dir.join("driver"))
        .ok()
        .and_then(|t| t.file_name().and_then(|n| n.to_str()).map(str::to_string));
    Some(AuxDevice {
        name: name.to_string(),
        aux_type: ty.to_string(),
        parent,
        sfnum,
        driver,
        netdevs: sorted_names(&dir.join("net")),
        rdma: sorted_names(&dir.join("infiniband")),
    })
}

/// The auxiliary devices directly under a PCI function, by name. As
/// upstream (sriovnet `GetAuxNetDevicesFromPci`), only a function with a
/// `net/` directory (a network function with a netdev driver) is looked at;
/// anything else has none.
pub fn devices_of(root: &HostRoot, parent: &PciAddress) -> Vec<AuxDevice> {
    let dir = root.pci_device(parent);
    if !dir.join("net").is_dir() {
        return Vec::new();
    }
    sorted_names(&dir)
        .into_iter()
        .filter(|n| parse_name(n).is_some())
        .filter_map(|n| read_one(&dir.join(&n), &n, *parent))
        .collect()
}

/// One auxiliary device by name, from `sys/bus/auxiliary/devices`; its PCI
/// parent is found by walking up the link target. `None` when it does not
/// exist (or is not below a PCI function).
pub fn read(root: &HostRoot, name: &str) -> Option<AuxDevice> {
    let link = device_path(root, name);
    let target = std::fs::read_link(&link).ok()?;
    let parent = target
        .ancestors()
        .skip(1)
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()))
        .find_map(|n| (n.len() == 12).then(|| PciAddress::parse(n)).flatten())?;
    read_one(&link, name, parent)
}

/// Whether the auxiliary device still exists.
pub fn exists(root: &HostRoot, name: &str) -> bool {
    device_path(root, name).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse_name("mlx5_core.sf.4"), Some(("mlx5_core", "sf", 4)));
        assert_eq!(parse_name("mlx5_core.eth.0"), Some(("mlx5_core", "eth", 0)));
        assert_eq!(parse_name("a.b.c.rdma.12"), Some(("a.b.c", "rdma", 12)));
        for bad in [
            "mlx5_core.sf",
            "sf.4",
            "mlx5_core.sf.x",
            ".sf.1",
            "0000:3b:00.0",
            "net",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn reads_the_kernel_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let root = HostRoot::new(tmp.path());
        let pf = "sys/devices/pci0000:ae/0000:ae:00.0/0000:af:00.0";
        let sf = format!("{pf}/mlx5_core.sf.4");
        for d in [
            format!("{pf}/net/ens3f0np0"),
            format!("{sf}/net/ens3f0s88"),
            format!("{sf}/infiniband/mlx5_4"),
            format!("{pf}/mlx5_core.eth.0"),
            "sys/bus/auxiliary/devices".to_string(),
            "sys/bus/auxiliary/drivers/mlx5_core.sf".to_string(),
            "sys/bus/pci/devices".to_string(),
        ] {
            std::fs::create_dir_all(tmp.path().join(d)).unwrap();
        }
        std::fs::write(tmp.path().join(&sf).join("sfnum"), "88\n").unwrap();
        std::os::unix::fs::symlink(
            "../../../../../bus/auxiliary/drivers/mlx5_core.sf",
            tmp.path().join(&sf).join("driver"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            "../../../devices/pci0000:ae/0000:ae:00.0/0000:af:00.0",
            tmp.path().join("sys/bus/pci/devices/0000:af:00.0"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            "../../../devices/pci0000:ae/0000:ae:00.0/0000:af:00.0/mlx5_core.sf.4",
            tmp.path().join("sys/bus/auxiliary/devices/mlx5_core.sf.4"),
        )
        .unwrap();
        let pfa: PciAddress = "0000:af:00.0".parse().unwrap();
        let all = devices_of(&root, &pfa);
        assert_eq!(
            all.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
            ["mlx5_core.eth.0", "mlx5_core.sf.4"]
        );
        let s = &all[1];
        assert_eq!(s.aux_type, "sf");
        assert_eq!(s.sfnum, Some(88));
        assert_eq!(s.driver.as_deref(), Some("mlx5_core.sf"));
        assert_eq!(s.netdevs, ["ens3f0s88"]);
        assert_eq!(s.rdma, ["mlx5_4"]);
        assert_eq!(all[0].sfnum, None);
        assert_eq!(read(&root, "mlx5_core.sf.4").as_ref(), Some(s));
        assert!(exists(&root, "mlx5_core.sf.4"));
        assert_eq!(read(&root, "mlx5_core.sf.5"), None);
    }
}
