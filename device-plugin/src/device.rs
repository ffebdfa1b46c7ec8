//! Candidate devices: what a scan of the node offers to pools.
//!
//! Offered: network functions (PCI class 0x02) that are VFs, or PFs without
//! VFs; and processing accelerators (class 0x12). Not offered: a PF with VFs
//! enabled, and, as upstream, any function (PF or VF) one of whose netdevs
//! carries an IPv4 default route (every default route of the main table,
//! from `/proc/net/route`, is looked at).

use sriov_host::{HostRoot, LinkType, Node, PciAddress, PciFunction};

/// PCI base class of processing accelerators.
pub const CLASS_ACCELERATOR: u8 = 0x12;

/// The vDPA flavour of a device (`vdpaType`).
pub type VdpaType = sriov_host::vdpa::VdpaDriver;

/// Parses a `vdpaType` value: `vhost` or `virtio` (any case).
pub fn parse_vdpa_type(s: &str) -> Option<VdpaType> {
    match s.to_ascii_lowercase().as_str() {
        "vhost" => Some(VdpaType::Vhost),
        "virtio" => Some(VdpaType::Virtio),
        _ => None,
    }
}

/// What the kubelet calls a device: a PCI address, or for an auxiliary
/// device (a scalable function) its name on the auxiliary bus
/// (`mlx5_core.sf.4`), as upstream.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceId {
    Pci(PciAddress),
    Aux(String),
}

impl DeviceId {
    /// A PCI address (short form accepted) or an auxiliary device name.
    pub fn parse(s: &str) -> Option<DeviceId> {
        if let Some(a) = PciAddress::parse(s) {
            return Some(DeviceId::Pci(a));
        }
        sriov_host::auxiliary::parse_name(s).map(|_| DeviceId::Aux(s.to_string()))
    }
}

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceId::Pci(a) => write!(f, "{a}"),
            DeviceId::Aux(n) => f.write_str(n),
        }
    }
}

/// The auxiliary-device part of an offered device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuxInfo {
    /// `mlx5_core.sf.4`.
    pub name: String,
    /// `sf`.
    pub aux_type: String,
    /// The SF number (`sfnum`).
    pub sfnum: Option<u32>,
}

/// The vDPA device of a VF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VdpaInfo {
    /// `vdpa0`.
    pub name: String,
    pub kind: VdpaType,
    /// vhost: `/dev/vhost-vdpa-N` (node path).
    pub vhost_path: Option<String>,
}

/// One offered device.
///
/// An auxiliary device (deviceType `auxNetDevice`) carries the PCI facts of
/// its parent function (`address`, ids, driver, NUMA), `pf` = the parent,
/// `vf_index` = its `sfnum` (so `#` ranges of `pfNames`/`rootDevices` select
/// SF numbers, as upstream), and its own netdev and RDMA devices.
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
    /// The PF of a VF (the parent of an auxiliary device).
    pub pf: Option<PciAddress>,
    pub vf_index: Option<u32>,
    /// The PF's netdev name; as upstream, `None` for a function that is
    /// not a VF (a PF without VFs has no PF name).
    pub pf_ifname: Option<String>,
    /// The device's own netdev.
    pub ifname: Option<String>,
    /// The device's link type, else its PF's (a VF on vfio-pci has no
    /// netdev).
    pub link_type: Option<LinkType>,
    /// RDMA devices (`mlx5_3`).
    pub rdma: Vec<String>,
    /// The InfiniBand partition key (index 0 of port 1), read for devices
    /// of link type infiniband (`pKeys`).
    pub pkey: Option<String>,
    /// The vDPA device (read only when a resource selects on `vdpaType`).
    pub vdpa: Option<VdpaInfo>,
    /// Set for auxiliary devices.
    pub aux: Option<AuxInfo>,
}

impl Device {
    /// The ID the kubelet sees.
    pub fn id(&self) -> DeviceId {
        match &self.aux {
            Some(a) => DeviceId::Aux(a.name.clone()),
            None => DeviceId::Pci(self.address),
        }
    }

    /// The device's sysfs directory (the auxiliary device's for an
    /// auxiliary device).
    pub fn sysfs_dir(&self, root: &HostRoot) -> std::path::PathBuf {
        match &self.aux {
            Some(a) => sriov_host::auxiliary::device_path(root, &a.name),
            None => root.pci_device(&self.address),
        }
    }

    /// The vDPA type, if it has a vDPA device.
    pub fn vdpa_type(&self) -> Option<VdpaType> {
        self.vdpa.as_ref().map(|v| v.kind)
    }

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

    /// Bound to a UIO driver (`uio_pci_generic`, `igb_uio`; upstream also
    /// names `uio`).
    pub fn is_uio(&self) -> bool {
        matches!(
            self.driver.as_deref(),
            Some("uio" | "igb_uio" | "uio_pci_generic")
        )
    }

    /// The netdev whose link health concerns the device: its PF's (the
    /// parent's for an auxiliary device), for a PF without VFs its own.
    pub fn link_ifname(&self) -> Option<&str> {
        match self.pf {
            Some(_) => self.pf_ifname.as_deref(),
            None => self.ifname.as_deref(),
        }
    }
}

/// The vDPA device of a function: the first `vdpaN` child bound to
/// `vhost_vdpa` or `virtio_vdpa`.
fn read_vdpa(root: &HostRoot, address: &PciAddress) -> Option<VdpaInfo> {
    sriov_host::vdpa::devices_of(root, address)
        .into_iter()
        .find_map(|v| {
            Some(VdpaInfo {
                kind: v.driver?,
                vhost_path: v.vhost_path(),
                name: v.name,
            })
        })
}

fn device_of(root: &HostRoot, node: &Node, f: &PciFunction, want_vdpa: bool) -> Device {
    let pf = f.vf.map(|v| node.get(&v.pf)).unwrap_or(None);
    let own_netdev = f.primary_netdev();
    let pf_netdev = pf.and_then(|p| p.primary_netdev());
    let link_type = own_netdev.or(pf_netdev).map(|n| n.link_type);
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
        link_type,
        rdma: f.rdma.clone(),
        pkey: if link_type == Some(LinkType::Infiniband) {
            sriov_host::devnodes::default_pkey(root, &f.address)
        } else {
            None
        },
        vdpa: if want_vdpa && f.is_vf() {
            read_vdpa(root, &f.address)
        } else {
            None
        },
        aux: None,
    }
}

/// The devices a node offers, in address order. `want_vdpa`: read each
/// VF's vDPA type (only `vdpaType` selectors need it; it costs a directory
/// listing per VF).
pub fn candidates(root: &HostRoot, node: &Node, want_vdpa: bool) -> Vec<Device> {
    let default_ifs = sriov_host::routes::default_route_ifnames(root).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read the default routes; no interface is excluded as the default route's");
        Vec::new()
    });
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
        if let Some(d) = default_ifs.iter().find(|d| f.has_netdev(d)) {
            tracing::debug!(address = %f.address, ifname = %d, "carries a default route; not offered");
            continue;
        }
        out.push(device_of(root, node, f, want_vdpa));
    }
    out
}

/// The auxiliary devices of the node's network functions (deviceType
/// `auxNetDevice`), as upstream finds them: every auxiliary child of a
/// network function that has a netdev (`mlx5_core.sf.4`, but also
/// `mlx5_core.eth.0`; `auxTypes` tells them apart), in function then name
/// order. Each carries its parent's PCI facts; see [`Device`].
pub fn aux_candidates(root: &HostRoot, node: &Node) -> Vec<Device> {
    let mut out = Vec::new();
    for f in node.functions() {
        if !f.is_network() || f.netdevs.is_empty() {
            continue;
        }
        for a in sriov_host::auxiliary::devices_of(root, &f.address) {
            let parent_netdev = f.primary_netdev();
            let ifname = a.netdevs.first().cloned();
            let link_type = ifname
                .as_deref()
                .and_then(|n| sriov_host::netdev::link_type(root, n))
                .or(parent_netdev.map(|n| n.link_type));
            out.push(Device {
                address: f.address,
                vendor: f.vendor,
                device_id: f.device,
                class: f.class,
                driver: f.driver.clone(),
                numa_node: f.numa_node,
                iommu_group: None,
                acpi_index: f.acpi_index,
                pf: Some(f.address),
                vf_index: a.sfnum,
                pf_ifname: parent_netdev.map(|n| n.name.clone()),
                ifname,
                link_type,
                rdma: a.rdma.clone(),
                pkey: None,
                vdpa: None,
                aux: Some(AuxInfo {
                    name: a.name,
                    aux_type: a.aux_type,
                    sfnum: a.sfnum,
                }),
            });
        }
    }
    out
}
