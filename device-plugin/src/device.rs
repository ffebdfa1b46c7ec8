//! Candidate devices: what a scan of the node offers to pools.
//!
//! Offered: network functions (PCI class 0x02) that are VFs, or PFs without
//! VFs; and processing accelerators (class 0x12). Not offered: a PF with VFs
//! enabled, and a PF whose netdev carries the node's default route.

use std::path::Path;

use sriov_host::{HostRoot, LinkType, Node, PciAddress, PciFunction};

/// PCI base class of processing accelerators.
pub const CLASS_ACCELERATOR: u8 = 0x12;

/// The vDPA flavour of a device (`vdpaType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VdpaType {
    /// Bound to `vhost_vdpa`: `/dev/vhost-vdpa-N`.
    Vhost,
    /// Bound to `virtio_vdpa`: a virtio netdev.
    Virtio,
}

impl VdpaType {
    /// `vhost` or `virtio` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "vhost" => Some(VdpaType::Vhost),
            "virtio" => Some(VdpaType::Virtio),
            _ => None,
        }
    }
}

/// One offered device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub address: PciAddress,
    pub vendor: u16,
    pub device_id: u16,
    pub class: u32,
    pub driver: Option<String>,
    pub numa_node: Option<u32>,
    pub iommu_group: Option<u32>,
    /// The device's `acpi_index`, else its PF's.
    pub acpi_index: Option<u32>,
    /// The PF of a VF.
    pub pf: Option<PciAddress>,
    pub vf_index: Option<u32>,
    /// The PF's netdev name (for a PF without VFs: its own).
    pub pf_ifname: Option<String>,
    /// The device's own netdev.
    pub ifname: Option<String>,
    /// The device's link type, else its PF's (a VF on vfio-pci has no
    /// netdev).
    pub link_type: Option<LinkType>,
    /// RDMA devices (`mlx5_3`).
    pub rdma: Vec<String>,
    pub vdpa: Option<VdpaType>,
}

impl Device {
    fn base_class(&self) -> u8 {
        (self.class >> 16) as u8
    }

    /// A network controller.
    pub fn is_network(&self) -> bool {
        self.base_class() == sriov_host::pci::CLASS_NETWORK
    }

    /// A processing accelerator.
    pub fn is_accelerator(&self) -> bool {
        self.base_class() == CLASS_ACCELERATOR
    }

    /// Bound to vfio-pci.
    pub fn is_vfio(&self) -> bool {
        self.driver.as_deref() == Some("vfio-pci")
    }
}

/// The interface carrying the default IPv4 route, from
/// `<root>/proc/net/route` (destination `00000000`).
pub fn default_route_ifname(root: &HostRoot) -> Option<String> {
    let text = std::fs::read_to_string(root.proc("net/route")).ok()?;
    text.lines().skip(1).find_map(|l| {
        let mut cols = l.split_whitespace();
        let ifname = cols.next()?;
        (cols.next()? == "00000000").then(|| ifname.to_string())
    })
}

/// The vDPA type of a function: a `vdpaN` child whose driver is
/// `vhost_vdpa` or `virtio_vdpa`.
fn read_vdpa(root: &HostRoot, address: &PciAddress) -> Option<VdpaType> {
    let dir = root.pci_device(address);
    let entries = std::fs::read_dir(&dir).ok()?;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with("vdpa") || !name[4..].bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let drv = std::fs::read_link(dir.join(name).join("driver")).ok();
        match drv
            .as_deref()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
        {
            Some("vhost_vdpa") => return Some(VdpaType::Vhost),
            Some("virtio_vdpa") => return Some(VdpaType::Virtio),
            _ => {}
        }
    }
    None
}

fn device_of(root: &HostRoot, node: &Node, f: &PciFunction, want_vdpa: bool) -> Device {
    let pf = f.vf.map(|v| node.get(&v.pf)).unwrap_or(None);
    let own_netdev = f.primary_netdev();
    let pf_netdev = match pf {
        Some(p) => p.primary_netdev(),
        None => own_netdev,
    };
    Device {
        address: f.address,
        vendor: f.vendor,
        device_id: f.device,
        class: f.class,
        driver: f.driver.clone(),
        numa_node: f.numa_node,
        iommu_group: f.iommu_group,
        acpi_index: f.acpi_index.or(pf.and_then(|p| p.acpi_index)),
        pf: f.vf.map(|v| v.pf),
        vf_index: f.vf.map(|v| v.index),
        pf_ifname: pf_netdev.map(|n| n.name.clone()),
        ifname: own_netdev.map(|n| n.name.clone()),
        link_type: own_netdev.or(pf_netdev).map(|n| n.link_type),
        rdma: f.rdma.clone(),
        vdpa: if want_vdpa && f.is_vf() {
            read_vdpa(root, &f.address)
        } else {
            None
        },
    }
}

/// The devices a node offers, in address order. `want_vdpa`: read each
/// VF's vDPA type (only `vdpaType` selectors need it; it costs a directory
/// listing per VF).
pub fn candidates(root: &HostRoot, node: &Node, want_vdpa: bool) -> Vec<Device> {
    let default_if = default_route_ifname(root);
    let mut out = Vec::new();
    for f in node.functions() {
        let class = (f.class >> 16) as u8;
        if class != sriov_host::pci::CLASS_NETWORK && class != CLASS_ACCELERATOR {
            continue;
        }
        if let Some(cap) = &f.sriov
            && (cap.num_vfs > 0 || !cap.vfs.is_empty())
        {
            continue; // a PF with VFs: its VFs are offered instead
        }
        if !f.is_vf()
            && let Some(d) = &default_if
            && f.has_netdev(d)
        {
            tracing::debug!(address = %f.address, ifname = %d, "carries the default route; not offered");
            continue;
        }
        out.push(device_of(root, node, f, want_vdpa));
    }
    out
}
