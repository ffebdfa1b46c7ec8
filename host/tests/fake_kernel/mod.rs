//! Test support: sysfs trees with the kernel's layout (built with
//! `sriov_sim::tree`), and an attribute writer that records every write,
//! injects errnos, and can play the kernel's part on a static tree (create VFs
//! on `sriov_numvfs`, move `driver` links on `unbind` / `drivers_probe`).

#![allow(dead_code)]

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sriov_host::root::{AttrWriter, FsWriter, HostRoot};
use sriov_sim::tree::{DiskSink, Netdev, PciFunction, SriovCaps, SysfsTree, vf_address};

pub type Tree = SysfsTree<DiskSink>;

/// A temp dir with a tree in it; dropped (and deleted) with the value.
pub struct TestNode {
    pub dir: tempfile::TempDir,
    pub tree: Arc<Mutex<Tree>>,
}

impl TestNode {
    pub fn empty() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tree = SysfsTree::on_disk(dir.path()).unwrap();
        Self {
            dir,
            tree: Arc::new(Mutex::new(tree)),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn root(&self) -> HostRoot {
        HostRoot::new(self.dir.path())
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Tree) -> R) -> R {
        f(&mut self.tree.lock().unwrap())
    }

    /// `<root>/<rel>` as a string, trimmed.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(rel))
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn dev_dir(&self, address: &str) -> PathBuf {
        let rel = self.with(|t| t.device_dir(address).unwrap().to_string());
        self.dir.path().join(rel)
    }
}

pub fn e810_caps(numvfs: u32) -> SriovCaps {
    SriovCaps {
        totalvfs: 64,
        numvfs,
        offset: 16,
        stride: 1,
        vf_device: 0x1889,
        drivers_autoprobe: true,
    }
}

/// Adds VF `index` of an E810 PF on the given driver (`None`: unbound),
/// with a netdev named `<pfname>v<index>` when the driver is `iavf`.
pub fn add_e810_vf(
    t: &mut Tree,
    pf: &str,
    pfname: &str,
    index: u32,
    driver: Option<&str>,
    group: u32,
) -> String {
    let addr = vf_address(pf, 16, 1, index).unwrap();
    let mut f = PciFunction::ethernet(&addr, 0x8086, 0x1889);
    f.numa_node = 0;
    f.iommu_group = Some(group);
    t.add_function(&f).unwrap();
    t.link_vf(pf, index, &addr).unwrap();
    if let Some(d) = driver {
        t.bind(&addr, d).unwrap();
        if d == "iavf" {
            let mut n = Netdev::ethernet(
                &format!("{pfname}v{index}"),
                &format!("02:00:00:00:00:{index:02x}"),
                100 + index,
            );
            n.operstate = "down".into();
            n.carrier = None;
            n.speed = Some(-1);
            t.add_netdev(&addr, &n).unwrap();
        }
        if d == "vfio-pci" {
            t.add_vfio_group(group).unwrap();
        }
    }
    addr
}

/// The mixed node used by most tests:
/// - `0000:3b:00.0` E810 PF on ice, NUMA 0, IOMMU 10, ACPI index 1, netdev
///   `ens1f0` (up, 25G), 3 VFs: `3b:02.0` on iavf (`ens1f0v0`), `3b:02.1` on
///   vfio-pci (no netdev), `3b:02.2` without a driver;
/// - `0000:3b:00.1` E810 PF on ice with 0 VFs, NUMA -1, netdev `ens1f1` down
///   (no carrier, speed -1);
/// - `0000:5e:00.0` ConnectX-5 PF (switchdev) on mlx5_core with two netdevs
///   (uplink `ens2f0np0` p0 and representor `eth4` pf0vf0) and RDMA `mlx5_0`;
/// - `0000:af:00.0` ConnectX-6 IB on mlx5_core: netdev `ib0` (type 32),
///   RDMA `mlx5_1`;
/// - `0000:00:17.0` a SATA controller on ahci (not a network device).
pub fn mixed_node() -> TestNode {
    let node = TestNode::empty();
    node.with(|t| {
        let mut pf0 = PciFunction::ethernet("0000:3b:00.0", 0x8086, 0x1593);
        pf0.numa_node = 0;
        pf0.iommu_group = Some(10);
        pf0.acpi_index = Some(1);
        pf0.subsystem_device = 0x0002;
        t.add_function(&pf0).unwrap();
        t.set_sriov("0000:3b:00.0", &e810_caps(3)).unwrap();
        t.bind("0000:3b:00.0", "ice").unwrap();
        t.add_netdev(
            "0000:3b:00.0",
            &Netdev::ethernet("ens1f0", "B4:96:91:00:00:01", 4),
        )
        .unwrap();
        add_e810_vf(t, "0000:3b:00.0", "ens1f0", 0, Some("iavf"), 20);
        add_e810_vf(t, "0000:3b:00.0", "ens1f0", 1, Some("vfio-pci"), 21);
        add_e810_vf(t, "0000:3b:00.0", "ens1f0", 2, None, 22);

        let mut pf1 = PciFunction::ethernet("0000:3b:00.1", 0x8086, 0x1593);
        pf1.iommu_group = Some(11);
        t.add_function(&pf1).unwrap();
        t.set_sriov("0000:3b:00.1", &e810_caps(0)).unwrap();
        t.bind("0000:3b:00.1", "ice").unwrap();
        let mut n = Netdev::ethernet("ens1f1", "b4:96:91:00:00:02", 5);
        n.operstate = "down".into();
        n.carrier = None;
        n.speed = Some(-1);
        t.add_netdev("0000:3b:00.1", &n).unwrap();

        let mut cx5 = PciFunction::ethernet("0000:5e:00.0", 0x15b3, 0x1017);
        cx5.numa_node = 1;
        cx5.iommu_group = Some(30);
        t.add_function(&cx5).unwrap();
        t.set_sriov(
            "0000:5e:00.0",
            &SriovCaps {
                totalvfs: 8,
                numvfs: 0,
                offset: 2,
                stride: 1,
                vf_device: 0x1018,
                drivers_autoprobe: true,
            },
        )
        .unwrap();
        t.bind("0000:5e:00.0", "mlx5_core").unwrap();
        let mut up = Netdev::ethernet("ens2f0np0", "0c:42:a1:00:00:01", 6);
        up.phys_port_name = Some("p0".into());
        up.phys_switch_id = Some("01a2b3fffec4d5e6".into());
        t.add_netdev("0000:5e:00.0", &up).unwrap();
        let mut rep = Netdev::ethernet("eth4", "0c:42:a1:00:00:02", 7);
        rep.phys_port_name = Some("pf0vf0".into());
        rep.phys_switch_id = Some("01a2b3fffec4d5e6".into());
        t.add_netdev("0000:5e:00.0", &rep).unwrap();
        t.add_rdma("0000:5e:00.0", "mlx5_0").unwrap();

        let mut ib = PciFunction::ethernet("0000:af:00.0", 0x15b3, 0x101b);
        ib.class = 0x020700;
        ib.numa_node = 1;
        ib.iommu_group = Some(40);
        t.add_function(&ib).unwrap();
        t.bind("0000:af:00.0", "mlx5_core").unwrap();
        let mut ibn = Netdev::ethernet(
            "ib0",
            "00:00:10:87:fe:80:00:00:00:00:00:00:0c:42:a1:03:00:6b:2a:9c",
            8,
        );
        ibn.link_type = 32;
        ibn.mtu = 2044;
        ibn.speed = Some(100000);
        t.add_netdev("0000:af:00.0", &ibn).unwrap();
        t.add_rdma("0000:af:00.0", "mlx5_1").unwrap();

        let mut sata = PciFunction::ethernet("0000:00:17.0", 0x8086, 0xa182);
        sata.class = 0x010601;
        sata.parent = "pci0000:00".into();
        t.add_function(&sata).unwrap();
        t.bind("0000:00:17.0", "ahci").unwrap();
    });
    node
}

/// A write seen by the [`Recorder`]: path relative to the root, and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub path: String,
    pub value: String,
}

type Reaction = Box<dyn Fn(&str, &str) + Send + Sync>;

/// Records writes, fails the ones told to, writes the rest to disk, then
/// lets a reaction (the "kernel") change the tree.
pub struct Recorder {
    root: PathBuf,
    pub writes: Mutex<Vec<Write>>,
    /// path suffix -> errno to fail with.
    pub failures: Mutex<HashMap<String, i32>>,
    reaction: Option<Reaction>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("root", &self.root)
            .finish()
    }
}

impl Recorder {
    pub fn new(root: &Path) -> Arc<Self> {
        Arc::new(Self {
            root: root.to_path_buf(),
            writes: Mutex::new(Vec::new()),
            failures: Mutex::new(HashMap::new()),
            reaction: None,
        })
    }

    pub fn reacting(
        root: &Path,
        reaction: impl Fn(&str, &str) + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            root: root.to_path_buf(),
            writes: Mutex::new(Vec::new()),
            failures: Mutex::new(HashMap::new()),
            reaction: Some(Box::new(reaction)),
        })
    }

    pub fn fail(&self, suffix: &str, errno: i32) {
        self.failures.lock().unwrap().insert(suffix.into(), errno);
    }

    pub fn writes(&self) -> Vec<(String, String)> {
        self.writes
            .lock()
            .unwrap()
            .iter()
            .map(|w| (w.path.clone(), w.value.clone()))
            .collect()
    }
}

impl AttrWriter for Recorder {
    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        let rel = path
            .strip_prefix(&self.root)
            .unwrap_or(path)
            .to_string_lossy()
            .to_string();
        self.writes.lock().unwrap().push(Write {
            path: rel.clone(),
            value: value.to_string(),
        });
        for (suffix, errno) in self.failures.lock().unwrap().iter() {
            if rel.ends_with(suffix.as_str()) {
                return Err(io::Error::from_raw_os_error(*errno));
            }
        }
        FsWriter.write(path, value)?;
        if let Some(r) = &self.reaction {
            r(&rel, value);
        }
        Ok(())
    }
}

/// A kernel stand-in for driver binding on a static tree: `unbind` removes
/// the driver link, `drivers_probe` binds the function to its
/// `driver_override` or, without one, to `default_driver`.
pub fn binding_kernel(node: &TestNode, default_driver: &'static str) -> Arc<Recorder> {
    let tree = node.tree.clone();
    let root = node.path().to_path_buf();
    Recorder::reacting(node.path(), move |rel, value| {
        let mut t = tree.lock().unwrap();
        if rel.ends_with("/unbind") {
            t.unbind(value.trim()).unwrap();
        } else if rel == "sys/bus/pci/drivers_probe" {
            let addr = value.trim();
            if t.driver_of(addr).is_some() {
                return;
            }
            let dir = root.join(t.device_dir(addr).unwrap());
            let ov = std::fs::read_to_string(dir.join("driver_override")).unwrap();
            let ov = ov.trim();
            let drv = if ov.is_empty() || ov == "(null)" {
                default_driver
            } else {
                ov
            };
            if root.join("sys/bus/pci/drivers").join(drv).is_dir() {
                t.bind(addr, drv).unwrap();
            }
        }
    })
}

/// Writes each function's `uevent` as the kernel shows it (PCI_CLASS,
/// PCI_ID, PCI_SUBSYS_ID, PCI_SLOT_NAME, MODALIAS, and DRIVER when bound),
/// from the function's own id files.
pub fn add_uevents(node: &TestNode) {
    let devs = node.path().join("sys/bus/pci/devices");
    for e in std::fs::read_dir(&devs).unwrap() {
        let e = e.unwrap();
        let dir = e.path();
        if !dir.exists() {
            continue;
        }
        let hex = |f: &str| {
            let v = std::fs::read_to_string(dir.join(f)).unwrap();
            u32::from_str_radix(v.trim().trim_start_matches("0x"), 16).unwrap()
        };
        let (v, d, c) = (hex("vendor"), hex("device"), hex("class"));
        let (sv, sd) = (hex("subsystem_vendor"), hex("subsystem_device"));
        let name = e.file_name().to_string_lossy().to_string();
        let mut u = String::new();
        if let Ok(t) = std::fs::read_link(dir.join("driver")) {
            u += &format!("DRIVER={}\n", t.file_name().unwrap().to_string_lossy());
        }
        u += &format!(
            "PCI_CLASS={c:X}\nPCI_ID={v:04X}:{d:04X}\nPCI_SUBSYS_ID={sv:04X}:{sd:04X}\n\
             PCI_SLOT_NAME={name}\nMODALIAS=pci:v{v:08X}d{d:08X}sv{sv:08X}sd{sd:08X}bc{:02X}sc{:02X}i{:02X}\n",
            c >> 16,
            (c >> 8) & 0xff,
            c & 0xff
        );
        std::fs::write(dir.join("uevent"), u).unwrap();
    }
}
