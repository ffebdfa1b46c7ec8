//! The NIC catalog: the PCI ids, drivers, SR-IOV geometry, link speed and
//! MAC prefix of each simulated NIC model.
//!
//! PCI ids come from the repository's `data/supported-nic-ids.tsv` (the same
//! list the operator uses), looked up by its `model_key` column, so a model
//! here can never drift from the list.

use std::sync::OnceLock;

/// The repository's list of known SR-IOV NICs.
const SUPPORTED_NIC_IDS: &str = include_str!("../../data/supported-nic-ids.tsv");

/// One row of `supported-nic-ids.tsv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicIds {
    /// `model_key` column, e.g. `Intel_ice_Columbiaville_E810-XXVDA2`.
    pub key: String,
    pub vendor: u16,
    pub pf_device: u16,
    pub vf_device: u16,
}

/// Every row of `supported-nic-ids.tsv`.
pub fn supported_nic_ids() -> &'static [NicIds] {
    static IDS: OnceLock<Vec<NicIds>> = OnceLock::new();
    IDS.get_or_init(|| {
        SUPPORTED_NIC_IDS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("model_key"))
            .filter_map(|l| {
                let cols: Vec<&str> = l.split('\t').collect();
                let hex = |i: usize| cols.get(i).and_then(|c| u16::from_str_radix(c, 16).ok());
                Some(NicIds {
                    key: cols.first()?.to_string(),
                    vendor: hex(1)?,
                    pf_device: hex(2)?,
                    vf_device: hex(3)?,
                })
            })
            .collect()
    })
}

/// How a model numbers its VFs (PCI SR-IOV capability `First VF Offset` and
/// `VF Stride`) for the PF at function number `f` of the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VfLayout {
    /// Each PF owns a contiguous block of `totalvfs` routing IDs:
    /// `offset = base + f * (totalvfs - 1)`, stride 1 (Intel i40e/ice,
    /// NVIDIA mlx5 with ARI).
    Blocks { base: u32 },
    /// The PFs' VFs interleave: the same offset for every PF and a stride
    /// of the number of ports (Intel 82576: offset 128, stride 2).
    Interleaved { offset: u32, stride: u32 },
}

/// A simulated NIC model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicModel {
    /// The name used in node YAML: `e810`, `x710`, `82576`, `cx6dx`, `virtio`.
    pub name: &'static str,
    /// Human name, for docs and `lspci`-like output.
    pub description: &'static str,
    /// The `model_key` of its row in `supported-nic-ids.tsv`.
    pub ids_key: &'static str,
    pub vendor: u16,
    pub pf_device: u16,
    /// The VF device id; `None` for a device without SR-IOV.
    pub vf_device: Option<u16>,
    pub subsystem_device: u16,
    /// Kernel driver of the PF (the physical function).
    pub pf_driver: &'static str,
    /// Kernel driver of its VFs (`None` without SR-IOV).
    pub vf_driver: Option<&'static str>,
    /// `sriov_totalvfs` of one port.
    pub totalvfs: u32,
    pub layout: VfLayout,
    /// Link speed in Mb/s (`speed` of the PF netdev and its VFs).
    pub speed: i64,
    /// First three bytes of the PF MACs.
    pub oui: [u8; 3],
    /// Largest MTU the driver accepts.
    pub max_mtu: u32,
    /// The driver registers an RDMA device per function (`infiniband/`).
    pub rdma: bool,
    /// The netdev sits under a child device (`virtio0/net/<if>`), not
    /// directly under the PCI function.
    pub netdev_subdir: Option<&'static str>,
}

impl NicModel {
    /// `sriov_offset` and `sriov_stride` of the PF at function number `f`.
    pub fn offset_stride(&self, function: u32) -> (u32, u32) {
        match self.layout {
            VfLayout::Blocks { base } => (base + function * self.totalvfs.saturating_sub(1), 1),
            VfLayout::Interleaved { offset, stride } => (offset, stride),
        }
    }

    /// Whether the model has SR-IOV.
    pub fn has_sriov(&self) -> bool {
        self.vf_device.is_some() && self.totalvfs > 0
    }

    /// Whether a driver's id table matches a (vendor, device) pair of this
    /// model, for the drivers the simulator knows.
    pub fn driver_handles(driver: &str, vendor: u16, device: u16) -> bool {
        catalog().iter().any(|m| {
            m.vendor == vendor
                && ((m.pf_driver == driver && m.pf_device == device)
                    || (m.vf_driver == Some(driver) && m.vf_device == Some(device)))
        })
    }
}

fn ids(key: &str) -> &'static NicIds {
    supported_nic_ids()
        .iter()
        .find(|r| r.key == key)
        .unwrap_or_else(|| panic!("data/supported-nic-ids.tsv has no row {key}"))
}

/// Every model the simulator knows.
pub fn catalog() -> &'static [NicModel] {
    static CATALOG: OnceLock<Vec<NicModel>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let e810 = ids("Intel_ice_Columbiaville_E810-XXVDA2");
        let x710 = ids("Intel_i40e_10G_X710_SFP");
        let i82576 = ids("Intel_ixgbe_82576");
        let cx6dx = ids("Nvidia_mlx5_ConnectX-6_Dx");
        let virtio = ids("Red_Hat_Virtio_network_device");
        vec![
            NicModel {
                name: "e810",
                description: "Intel Ethernet Controller E810-XXV for SFP (E810-XXVDA2)",
                ids_key: "Intel_ice_Columbiaville_E810-XXVDA2",
                vendor: e810.vendor,
                pf_device: e810.pf_device,
                vf_device: Some(e810.vf_device),
                subsystem_device: 0x0003,
                pf_driver: "ice",
                vf_driver: Some("iavf"),
                totalvfs: 128,
                layout: VfLayout::Blocks { base: 16 },
                speed: 25000,
                oui: [0xb4, 0x96, 0x91],
                max_mtu: 9702,
                rdma: false,
                netdev_subdir: None,
            },
            NicModel {
                name: "x710",
                description: "Intel Ethernet Controller X710 for 10GbE SFP+",
                ids_key: "Intel_i40e_10G_X710_SFP",
                vendor: x710.vendor,
                pf_device: x710.pf_device,
                vf_device: Some(x710.vf_device),
                subsystem_device: 0x0001,
                pf_driver: "i40e",
                vf_driver: Some("iavf"),
                totalvfs: 64,
                layout: VfLayout::Blocks { base: 16 },
                speed: 10000,
                oui: [0x3c, 0xfd, 0xfe],
                max_mtu: 9702,
                rdma: false,
                netdev_subdir: None,
            },
            NicModel {
                name: "82576",
                description: "Intel 82576 Gigabit Network Connection",
                ids_key: "Intel_ixgbe_82576",
                vendor: i82576.vendor,
                pf_device: i82576.pf_device,
                vf_device: Some(i82576.vf_device),
                subsystem_device: 0xa02c,
                pf_driver: "igb",
                vf_driver: Some("igbvf"),
                totalvfs: 7,
                layout: VfLayout::Interleaved {
                    offset: 128,
                    stride: 2,
                },
                speed: 1000,
                oui: [0x00, 0x1b, 0x21],
                max_mtu: 9216,
                rdma: false,
                netdev_subdir: None,
            },
            NicModel {
                name: "cx6dx",
                description: "NVIDIA ConnectX-6 Dx EN adapter card",
                ids_key: "Nvidia_mlx5_ConnectX-6_Dx",
                vendor: cx6dx.vendor,
                pf_device: cx6dx.pf_device,
                vf_device: Some(cx6dx.vf_device),
                subsystem_device: 0x0016,
                pf_driver: "mlx5_core",
                vf_driver: Some("mlx5_core"),
                totalvfs: 127,
                layout: VfLayout::Blocks { base: 2 },
                speed: 100000,
                oui: [0x0c, 0x42, 0xa1],
                max_mtu: 9978,
                rdma: true,
                netdev_subdir: None,
            },
            NicModel {
                name: "virtio",
                description: "Red Hat Virtio network device (no SR-IOV)",
                ids_key: "Red_Hat_Virtio_network_device",
                vendor: virtio.vendor,
                pf_device: virtio.pf_device,
                vf_device: None,
                subsystem_device: 0x0001,
                pf_driver: "virtio-pci",
                vf_driver: None,
                totalvfs: 0,
                layout: VfLayout::Blocks { base: 0 },
                speed: -1,
                oui: [0x52, 0x54, 0x00],
                max_mtu: 65535,
                rdma: false,
                netdev_subdir: Some("virtio0"),
            },
        ]
    })
}

/// A simulated GPU model (no SR-IOV; it only has to sit in the PCIe tree
/// where a real one would, so topology code can pair NICs with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuModel {
    /// The name used in node YAML: `h100`, `a100`.
    pub name: &'static str,
    pub description: &'static str,
    pub vendor: u16,
    pub device: u16,
    pub subsystem_device: u16,
    /// 24-bit class code: `0x030200`, a 3D controller.
    pub class: u32,
    /// The kernel driver bound at boot.
    pub driver: &'static str,
}

/// Every GPU model the simulator knows: NVIDIA data-centre GPUs, which
/// show as 3D controllers (class `0x030200`, vendor `10de`).
pub fn gpu_catalog() -> &'static [GpuModel] {
    const GPUS: &[GpuModel] = &[
        GpuModel {
            name: "h100",
            description: "NVIDIA H100 SXM5 80GB (GH100)",
            vendor: 0x10de,
            device: 0x2330,
            subsystem_device: 0x16c1,
            class: 0x030200,
            driver: "nvidia",
        },
        GpuModel {
            name: "a100",
            description: "NVIDIA A100 SXM4 40GB (GA100)",
            vendor: 0x10de,
            device: 0x20b0,
            subsystem_device: 0x134f,
            class: 0x030200,
            driver: "nvidia",
        },
    ];
    GPUS
}

/// A GPU model by its YAML name (`h100`, `a100`).
pub fn gpu_model(name: &str) -> Option<&'static GpuModel> {
    gpu_catalog().iter().find(|m| m.name == name)
}

/// PCI ids of the PCIe switch ports the simulator lays out (Broadcom/PLX
/// PEX 8747, as on many GPU baseboards): vendor, device.
pub const SWITCH_PORT_IDS: (u16, u16) = (0x10b5, 0x8747);

/// PCI ids of the root ports the simulator lays out when a node declares
/// switches or GPUs (Intel Sapphire Rapids PCIe root port): vendor, device.
pub const ROOT_PORT_IDS: (u16, u16) = (0x8086, 0x352a);

/// Class code of a PCI-to-PCI bridge (root ports and switch ports).
pub const CLASS_BRIDGE: u32 = 0x060400;

/// A model by its YAML name (`e810`, `x710`, `82576`, `cx6dx`, `virtio`).
pub fn model(name: &str) -> Option<&'static NicModel> {
    catalog().iter().find(|m| m.name == name)
}

/// The MAC of a PF netdev: the model's OUI and three bytes from the PCI
/// bus, device and function, so that it is stable and unique on a node.
pub fn pf_mac(model: &NicModel, address: &str) -> String {
    let [bus, devfn] = bus_devfn(address);
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        model.oui[0],
        model.oui[1],
        model.oui[2],
        domain_byte(address),
        bus,
        devfn
    )
}

/// The MAC of a VF netdev: locally administered (`02:`), from the VF's PCI
/// address (VF drivers pick a random MAC when the PF has not set one; the
/// simulator keeps it stable).
pub fn vf_mac(address: &str) -> String {
    let [bus, devfn] = bus_devfn(address);
    format!(
        "02:53:{:02x}:{:02x}:{:02x}:{:02x}",
        domain_byte(address),
        bus,
        devfn,
        0x01
    )
}

fn domain_byte(address: &str) -> u8 {
    address
        .split(':')
        .next()
        .and_then(|d| u16::from_str_radix(d, 16).ok())
        .map(|d| d as u8)
        .unwrap_or(0)
}

fn bus_devfn(address: &str) -> [u8; 2] {
    let mut parts = address.split(':').skip(1);
    let bus = parts
        .next()
        .and_then(|b| u8::from_str_radix(b, 16).ok())
        .unwrap_or(0);
    let devfn = parts
        .next()
        .and_then(|df| {
            let (d, f) = df.split_once('.')?;
            Some((u8::from_str_radix(d, 16).ok()? << 3) | u8::from_str_radix(f, 16).ok()?)
        })
        .unwrap_or(0);
    [bus, devfn]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_supported_list() {
        let e810 = model("e810").unwrap();
        assert_eq!(
            (e810.vendor, e810.pf_device, e810.vf_device),
            (0x8086, 0x159b, Some(0x1889))
        );
        let cx = model("cx6dx").unwrap();
        assert_eq!(
            (cx.vendor, cx.pf_device, cx.vf_device),
            (0x15b3, 0x101d, Some(0x101e))
        );
        assert_eq!(model("82576").unwrap().pf_device, 0x10c9);
        assert_eq!(model("x710").unwrap().vf_device, Some(0x154c));
        assert!(!model("virtio").unwrap().has_sriov());
        assert!(supported_nic_ids().len() > 40);
    }

    #[test]
    fn offsets_give_disjoint_vf_ranges() {
        let x710 = model("x710").unwrap();
        // XL710: PF0 offset 16, PF1 offset 79.
        assert_eq!(x710.offset_stride(0), (16, 1));
        assert_eq!(x710.offset_stride(1), (79, 1));
        assert_eq!(model("82576").unwrap().offset_stride(1), (128, 2));
    }

    #[test]
    fn drivers_match_their_id_tables() {
        assert!(NicModel::driver_handles("iavf", 0x8086, 0x1889));
        assert!(NicModel::driver_handles("ice", 0x8086, 0x159b));
        assert!(!NicModel::driver_handles("ice", 0x8086, 0x1889));
        assert!(NicModel::driver_handles("mlx5_core", 0x15b3, 0x101e));
        assert!(!NicModel::driver_handles("vfio-pci", 0x8086, 0x1889));
    }

    #[test]
    fn gpus_are_nvidia_3d_controllers() {
        for g in gpu_catalog() {
            assert_eq!((g.vendor, g.class), (0x10de, 0x030200), "{}", g.name);
        }
        assert_eq!(gpu_model("h100").unwrap().device, 0x2330);
        assert!(gpu_model("e810").is_none());
    }

    #[test]
    fn macs_are_stable_and_distinct() {
        let e810 = model("e810").unwrap();
        assert_eq!(pf_mac(e810, "0000:3b:00.1"), "b4:96:91:00:3b:01");
        assert_ne!(vf_mac("0000:3b:02.0"), vf_mac("0000:3b:02.1"));
        assert!(vf_mac("0000:3b:02.0").starts_with("02:"));
    }
}
