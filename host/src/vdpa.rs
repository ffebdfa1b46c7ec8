//! vDPA devices of PCI functions, as the kernel lays them out (and as
//! govdpa reads them):
//!
//! ```text
//! sys/devices/.../0000:af:00.2/vdpa0/
//!     driver -> ../../../../../bus/vdpa/drivers/vhost_vdpa   (or virtio_vdpa)
//!     vhost-vdpa-0/         vhost_vdpa: the char device, /dev/vhost-vdpa-0
//!     virtio3/net/eth0/     virtio_vdpa: a virtio device with its netdev
//! sys/bus/vdpa/devices/vdpa0 -> ../../../devices/.../0000:af:00.2/vdpa0
//! ```

use crate::attr::sorted_names;
use crate::pci::PciAddress;
use crate::root::HostRoot;

/// The vDPA bus driver a device is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VdpaDriver {
    /// `vhost_vdpa`: a `/dev/vhost-vdpa-N` char device for user space.
    Vhost,
    /// `virtio_vdpa`: a kernel virtio device (a netdev).
    Virtio,
}

impl VdpaDriver {
    /// From the driver name (`vhost_vdpa`, `virtio_vdpa`).
    pub fn from_driver(name: &str) -> Option<Self> {
        match name {
            "vhost_vdpa" => Some(VdpaDriver::Vhost),
            "virtio_vdpa" => Some(VdpaDriver::Virtio),
            _ => None,
        }
    }

    /// `vhost` or `virtio`, as upstream's `vdpaType` and device-info files
    /// spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            VdpaDriver::Vhost => "vhost",
            VdpaDriver::Virtio => "virtio",
        }
    }
}

/// One vDPA device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VdpaDevice {
    /// `vdpa0`.
    pub name: String,
    pub parent: PciAddress,
    /// The bound driver; `None` when unbound or another driver.
    pub driver: Option<VdpaDriver>,
    /// vhost_vdpa: the char device name, `vhost-vdpa-0` (`/dev/<it>`).
    pub vhost_dev: Option<String>,
    /// virtio_vdpa: the virtio netdev, when it has one.
    pub virtio_netdev: Option<String>,
}

impl VdpaDevice {
    /// `/dev/vhost-vdpa-N` (node path) for a vhost device.
    pub fn vhost_path(&self) -> Option<String> {
        self.vhost_dev.as_ref().map(|d| format!("/dev/{d}"))
    }
}

fn numbered(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The vDPA devices under a PCI function (`vdpaN` children), sorted by
/// name. Unreadable or vanished entries are skipped.
pub fn devices_of(root: &HostRoot, parent: &PciAddress) -> Vec<VdpaDevice> {
    let dir = root.pci_device(parent);
    let mut out = Vec::new();
    for name in sorted_names(&dir) {
        if !numbered(&name, "vdpa") {
            continue;
        }
        let vdir = dir.join(&name);
        if !vdir.is_dir() {
            continue;
        }
        let driver = std::fs::read_link(vdir.join("driver"))
            .ok()
            .and_then(|t| t.file_name().and_then(|n| n.to_str()).map(str::to_string))
            .and_then(|d| VdpaDriver::from_driver(&d));
        let children = sorted_names(&vdir);
        let vhost_dev = children
            .iter()
            .find(|c| numbered(c, "vhost-vdpa-"))
            .cloned()
            .filter(|_| driver == Some(VdpaDriver::Vhost));
        let virtio_netdev = children
            .iter()
            .find(|c| numbered(c, "virtio"))
            .and_then(|v| sorted_names(&vdir.join(v).join("net")).into_iter().next())
            .filter(|_| driver == Some(VdpaDriver::Virtio));
        out.push(VdpaDevice {
            name,
            parent: *parent,
            driver,
            vhost_dev,
            virtio_netdev,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vhost_and_virtio_devices() {
        let tmp = tempfile::tempdir().unwrap();
        let root = HostRoot::new(tmp.path());
        let f = "sys/devices/pci0000:ae/0000:ae:00.0/0000:af:00.2";
        for d in [
            format!("{f}/vdpa0/vhost-vdpa-0"),
            format!("{f}/vdpa1/virtio3/net/eth0"),
            format!("{f}/vdpa2"),
            "sys/bus/pci/devices".into(),
        ] {
            std::fs::create_dir_all(tmp.path().join(d)).unwrap();
        }
        std::os::unix::fs::symlink(
            "../../../devices/pci0000:ae/0000:ae:00.0/0000:af:00.2",
            tmp.path().join("sys/bus/pci/devices/0000:af:00.2"),
        )
        .unwrap();
        for (v, drv) in [("vdpa0", "vhost_vdpa"), ("vdpa1", "virtio_vdpa")] {
            std::os::unix::fs::symlink(
                format!("../../../../../bus/vdpa/drivers/{drv}"),
                tmp.path().join(f).join(v).join("driver"),
            )
            .unwrap();
        }
        let a: PciAddress = "0000:af:00.2".parse().unwrap();
        let d = devices_of(&root, &a);
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].driver, Some(VdpaDriver::Vhost));
        assert_eq!(d[0].vhost_path().as_deref(), Some("/dev/vhost-vdpa-0"));
        assert_eq!(d[1].driver, Some(VdpaDriver::Virtio));
        assert_eq!(d[1].virtio_netdev.as_deref(), Some("eth0"));
        assert_eq!(d[1].vhost_dev, None);
        assert_eq!(d[2].driver, None);
        let none: PciAddress = "0000:af:00.3".parse().unwrap();
        assert!(devices_of(&root, &none).is_empty());
    }
}
