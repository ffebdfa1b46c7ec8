//! Builds a node's sysfs (and `/dev/vfio`) with the kernel's exact layout.
//!
//! Paths given to a [`TreeSink`] are relative to the host root, e.g.
//! `sys/bus/pci/devices/0000:3b:00.0`. Symlink targets are relative, as the
//! kernel makes them:
//!
//! ```text
//! sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0/        the function
//!     vendor device class subsystem_vendor subsystem_device numa_node
//!     driver_override  [sriov_* for a PF]
//!     driver      -> ../../../../bus/pci/drivers/ice
//!     iommu_group -> ../../../../kernel/iommu_groups/12
//!     virtfn0     -> ../0000:3b:01.0           (PF)
//!     physfn      -> ../0000:3b:00.0           (VF)
//!     net/ens1f0/{address,mtu,operstate,carrier,speed,type,ifindex,...}
//!     infiniband/mlx5_0/
//! sys/bus/pci/devices/0000:3b:00.0 -> ../../../devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0
//! sys/bus/pci/drivers/ice/{bind,unbind,new_id,remove_id,0000:3b:00.0 -> ...}
//! sys/bus/pci/drivers_probe
//! sys/kernel/iommu_groups/12/devices/0000:3b:00.0 -> ../../../../devices/...
//! sys/class/net/ens1f0 -> ../../devices/.../net/ens1f0
//! sys/class/infiniband/mlx5_0 -> ../../devices/.../infiniband/mlx5_0
//! dev/vfio/12                                     (vfio-pci bound, per group)
//! ```
//!
//! The builder is generic over its sink so that the same layout code writes a
//! static tree to disk ([`DiskSink`]) or fills the simulator's in-memory
//! filesystem.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// Where a tree is written. Paths are relative to the host root and use `/`.
pub trait TreeSink {
    /// Creates a directory and its parents; existing directories are fine.
    fn mkdir_all(&mut self, path: &str) -> io::Result<()>;
    /// Creates or replaces a regular file. `writable` marks kernel attributes
    /// that accept writes (mode 0644 instead of 0444).
    fn write_file(&mut self, path: &str, content: &str, writable: bool) -> io::Result<()>;
    /// Creates a symlink at `path` pointing to `target` (relative).
    fn symlink(&mut self, path: &str, target: &str) -> io::Result<()>;
    /// Removes a file, link or directory tree; a missing path is fine.
    fn remove_all(&mut self, path: &str) -> io::Result<()>;
}

/// Writes a tree under a directory on disk (plain files and symlinks).
#[derive(Debug, Clone)]
pub struct DiskSink {
    root: PathBuf,
    /// Directories known to exist (saves a syscall per file).
    dirs: std::collections::HashSet<PathBuf>,
}

impl DiskSink {
    /// A sink writing under `root` (the host root, not `root/sys`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            dirs: Default::default(),
        }
    }

    /// The host root this sink writes under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }

    /// Drops the cached parent of `full` and creates it again.
    fn forget_parent(&mut self, full: &Path) -> io::Result<()> {
        if let Some(parent) = full.parent() {
            self.dirs.retain(|d| !parent.starts_with(d));
        }
        self.ensure_parent(full)
    }

    fn ensure_parent(&mut self, full: &Path) -> io::Result<()> {
        if let Some(parent) = full.parent()
            && !self.dirs.contains(parent)
        {
            std::fs::create_dir_all(parent)?;
            self.dirs.insert(parent.to_path_buf());
        }
        Ok(())
    }
}

/// The process umask, read once from `/proc/self/status` (022 if unknown).
fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Umask:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            })
            .unwrap_or(0o022)
    })
}

impl TreeSink for DiskSink {
    fn mkdir_all(&mut self, path: &str) -> io::Result<()> {
        let full = self.full(path);
        std::fs::create_dir_all(&full)?;
        self.dirs.insert(full);
        Ok(())
    }

    fn write_file(&mut self, path: &str, content: &str, writable: bool) -> io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let full = self.full(path);
        self.ensure_parent(&full)?;
        let mode = if writable { 0o644 } else { 0o444 };
        let create = || {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&full)
        };
        let created = match create() {
            // A cached directory was removed behind our back: recreate it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.forget_parent(&full)?;
                create()
            }
            other => other,
        };
        match created {
            Ok(mut f) => {
                f.write_all(content.as_bytes())?;
                if mode & umask() != 0 {
                    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                std::fs::write(&full, content)?;
                std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode))
            }
            Err(e) => Err(e),
        }
    }

    fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        let full = self.full(path);
        self.ensure_parent(&full)?;
        let mut res = std::os::unix::fs::symlink(target, &full);
        if matches!(&res, Err(e) if e.kind() == io::ErrorKind::NotFound) {
            self.forget_parent(&full)?;
            res = std::os::unix::fs::symlink(target, &full);
        }
        match res {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                std::fs::remove_file(&full)?;
                std::os::unix::fs::symlink(target, full)
            }
            other => other,
        }
    }

    fn remove_all(&mut self, path: &str) -> io::Result<()> {
        let full = self.full(path);
        self.dirs.retain(|d| !d.starts_with(&full));
        let res = match std::fs::symlink_metadata(&full) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&full),
            Ok(_) => std::fs::remove_file(&full),
            Err(e) => Err(e),
        };
        match res {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

/// The identity and placement of one PCI function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciFunction {
    /// Full address, `0000:3b:00.0`.
    pub address: String,
    /// Path of the parent under `sys/devices`, e.g. `pci0000:3a/0000:3a:00.0`.
    pub parent: String,
    pub vendor: u16,
    pub device: u16,
    /// 24-bit class code, `0x020000` for an Ethernet controller.
    pub class: u32,
    pub subsystem_vendor: u16,
    pub subsystem_device: u16,
    /// NUMA node, `-1` for none.
    pub numa_node: i32,
    /// IOMMU group, `None` when the IOMMU is off.
    pub iommu_group: Option<u32>,
    /// ACPI index (`acpi_index` file), if firmware gives one.
    pub acpi_index: Option<u32>,
}

/// The function's modalias, as drivers/pci/pci-sysfs.c prints it (the
/// `modalias` file and the uevent's `MODALIAS`).
fn pci_modalias(f: &PciFunction) -> String {
    format!(
        "pci:v{:08X}d{:08X}sv{:08X}sd{:08X}bc{:02X}sc{:02X}i{:02X}",
        f.vendor,
        f.device,
        f.subsystem_vendor,
        f.subsystem_device,
        f.class >> 16,
        (f.class >> 8) & 0xff,
        f.class & 0xff
    )
}

/// The PCI variables of the function's uevent (the `uevent` file and every
/// event about it), in the kernel's order.
pub(crate) fn pci_uevent_vars(f: &PciFunction) -> Vec<(String, String)> {
    vec![
        ("PCI_CLASS".into(), format!("{:X}", f.class)),
        (
            "PCI_ID".into(),
            format!("{:04X}:{:04X}", f.vendor, f.device),
        ),
        (
            "PCI_SUBSYS_ID".into(),
            format!("{:04X}:{:04X}", f.subsystem_vendor, f.subsystem_device),
        ),
        ("PCI_SLOT_NAME".into(), f.address.clone()),
        ("MODALIAS".into(), pci_modalias(f)),
    ]
}

/// The function's `uevent` file, as the kernel's `pci_uevent` writes it.
fn pci_uevent(f: &PciFunction) -> String {
    pci_uevent_vars(f)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect()
}

impl PciFunction {
    /// An Ethernet function with the given ids under a root port derived from
    /// its bus number (`pci0000:BB/0000:BB:00.0` with `BB` = bus - 1).
    pub fn ethernet(address: &str, vendor: u16, device: u16) -> Self {
        Self {
            address: address.to_string(),
            parent: default_parent(address),
            vendor,
            device,
            class: 0x020000,
            subsystem_vendor: vendor,
            subsystem_device: 0,
            numa_node: -1,
            iommu_group: None,
            acpi_index: None,
        }
    }
}

/// The parent path the kernel would show for a function on a bus behind a
/// root port: `pci<dom>:<bus-1>/<dom>:<bus-1>:00.0`.
pub fn default_parent(address: &str) -> String {
    let (domain, rest) = address.split_once(':').unwrap_or(("0000", address));
    let bus = rest
        .split(':')
        .next()
        .and_then(|b| u8::from_str_radix(b, 16).ok())
        .unwrap_or(1);
    let up = bus.saturating_sub(1);
    format!("pci{domain}:{up:02x}/{domain}:{up:02x}:00.0")
}

/// SR-IOV capability files of a PF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SriovCaps {
    pub totalvfs: u32,
    pub numvfs: u32,
    /// Routing-ID offset of VF 0 from the PF.
    pub offset: u32,
    /// Routing-ID distance between consecutive VFs.
    pub stride: u32,
    pub vf_device: u16,
    pub drivers_autoprobe: bool,
}

/// A network interface of a function (`net/<name>/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netdev {
    pub name: String,
    pub mac: String,
    pub mtu: u32,
    /// `up`, `down`, `unknown`, ...
    pub operstate: String,
    /// `None` leaves `carrier` unreadable as the kernel does for a down link
    /// (we model it as an absent file).
    pub carrier: Option<bool>,
    /// Mb/s; `-1` when unknown, `None` for no file.
    pub speed: Option<i64>,
    /// ARPHRD type: 1 Ethernet, 32 InfiniBand.
    pub link_type: u16,
    pub ifindex: u32,
    pub phys_port_name: Option<String>,
    pub phys_switch_id: Option<String>,
}

impl Netdev {
    /// An Ethernet netdev that is up with carrier.
    pub fn ethernet(name: &str, mac: &str, ifindex: u32) -> Self {
        Self {
            name: name.to_string(),
            mac: mac.to_string(),
            mtu: 1500,
            operstate: "up".to_string(),
            carrier: Some(true),
            speed: Some(25000),
            link_type: 1,
            ifindex,
            phys_port_name: None,
            phys_switch_id: None,
        }
    }
}

/// Lays out PCI functions, drivers, netdevs and IOMMU groups the kernel way.
#[derive(Debug)]
pub struct SysfsTree<S: TreeSink> {
    sink: S,
    /// address -> device directory (relative to the host root).
    devices: BTreeMap<String, String>,
    /// address -> bound driver name.
    bound: BTreeMap<String, String>,
    drivers: std::collections::BTreeSet<String>,
    /// address -> IOMMU group.
    groups: BTreeMap<String, u32>,
    /// address -> netdev and RDMA class links (relative to the host root).
    class_links: BTreeMap<String, Vec<String>>,
    /// address -> the PCI part of its `uevent` file (after `DRIVER=`).
    uevents: BTreeMap<String, String>,
}

impl SysfsTree<DiskSink> {
    /// A builder writing to disk under `root`.
    pub fn on_disk(root: impl Into<PathBuf>) -> io::Result<Self> {
        Self::new(DiskSink::new(root))
    }
}

impl<S: TreeSink> SysfsTree<S> {
    /// Creates the skeleton: `sys/bus/pci/{devices,drivers,drivers_probe,rescan}`,
    /// `sys/class/net`, `sys/kernel/iommu_groups`, `sys/devices`.
    pub fn new(mut sink: S) -> io::Result<Self> {
        for d in [
            "sys/bus/pci/devices",
            "sys/bus/pci/drivers",
            "sys/class/net",
            "sys/class/infiniband",
            "sys/kernel/iommu_groups",
            "sys/devices",
        ] {
            sink.mkdir_all(d)?;
        }
        sink.write_file("sys/bus/pci/drivers_probe", "", true)?;
        sink.write_file("sys/bus/pci/rescan", "", true)?;
        Ok(Self {
            sink,
            devices: BTreeMap::new(),
            bound: BTreeMap::new(),
            uevents: BTreeMap::new(),
            drivers: Default::default(),
            groups: BTreeMap::new(),
            class_links: BTreeMap::new(),
        })
    }

    /// The sink, to inspect or extend the tree.
    pub fn sink(&mut self) -> &mut S {
        &mut self.sink
    }

    /// The sink, read-only.
    pub fn sink_ref(&self) -> &S {
        &self.sink
    }

    /// Consumes the builder, returning its sink.
    pub fn into_sink(self) -> S {
        self.sink
    }

    /// The directory of a function, relative to the host root.
    pub fn device_dir(&self, address: &str) -> Option<&str> {
        self.devices.get(address).map(String::as_str)
    }

    /// The driver a function is bound to in this tree.
    pub fn driver_of(&self, address: &str) -> Option<&str> {
        self.bound.get(address).map(String::as_str)
    }

    /// Adds a function with its identity files, `bus/pci/devices` link and
    /// IOMMU group.
    pub fn add_function(&mut self, f: &PciFunction) -> io::Result<()> {
        let dir = format!("sys/devices/{}/{}", f.parent, f.address);
        self.sink.mkdir_all(&dir)?;
        // ghw (upstream's device plugin) identifies a function by its
        // modalias alone.
        let modalias = format!("{}\n", pci_modalias(f));
        let files: [(&str, String, bool); 8] = [
            ("vendor", format!("0x{:04x}\n", f.vendor), false),
            ("device", format!("0x{:04x}\n", f.device), false),
            ("class", format!("0x{:06x}\n", f.class), false),
            (
                "subsystem_vendor",
                format!("0x{:04x}\n", f.subsystem_vendor),
                false,
            ),
            (
                "subsystem_device",
                format!("0x{:04x}\n", f.subsystem_device),
                false,
            ),
            ("numa_node", format!("{}\n", f.numa_node), false),
            ("modalias", modalias, false),
            ("driver_override", "(null)\n".to_string(), true),
        ];
        for (name, content, writable) in files {
            self.sink
                .write_file(&format!("{dir}/{name}"), &content, writable)?;
        }
        self.sink.write_file(&format!("{dir}/remove"), "", true)?;
        self.sink
            .write_file(&format!("{dir}/uevent"), &pci_uevent(f), true)?;
        self.uevents.insert(f.address.clone(), pci_uevent(f));
        if let Some(idx) = f.acpi_index {
            self.sink
                .write_file(&format!("{dir}/acpi_index"), &format!("{idx}\n"), false)?;
        }
        self.sink.symlink(
            &format!("sys/bus/pci/devices/{}", f.address),
            &relative("sys/bus/pci/devices", &dir),
        )?;
        self.sink
            .symlink(&format!("{dir}/subsystem"), &relative(&dir, "sys/bus/pci"))?;
        if let Some(group) = f.iommu_group {
            let gdir = format!("sys/kernel/iommu_groups/{group}");
            self.sink.mkdir_all(&format!("{gdir}/devices"))?;
            self.sink.symlink(
                &format!("{gdir}/devices/{}", f.address),
                &relative(&format!("{gdir}/devices"), &dir),
            )?;
            self.sink
                .symlink(&format!("{dir}/iommu_group"), &relative(&dir, &gdir))?;
            self.groups.insert(f.address.clone(), group);
        }
        self.devices.insert(f.address.clone(), dir);
        Ok(())
    }

    /// Removes a function: its directory, its `bus/pci/devices` link, its
    /// driver link and IOMMU group membership, and its netdev class links.
    pub fn remove_function(&mut self, address: &str) -> io::Result<()> {
        let Some(dir) = self.devices.get(address).cloned() else {
            return Ok(());
        };
        self.unbind(address)?;
        for link in self.class_links.remove(address).unwrap_or_default() {
            self.sink.remove_all(&link)?;
        }
        if let Some(group) = self.groups.remove(address) {
            self.sink.remove_all(&format!(
                "sys/kernel/iommu_groups/{group}/devices/{address}"
            ))?;
        }
        self.sink
            .remove_all(&format!("sys/bus/pci/devices/{address}"))?;
        self.sink.remove_all(&dir)?;
        self.devices.remove(address);
        self.uevents.remove(address);
        Ok(())
    }

    /// Writes a PF's SR-IOV capability files.
    pub fn set_sriov(&mut self, address: &str, caps: &SriovCaps) -> io::Result<()> {
        let dir = self.dir(address)?;
        let files: [(&str, String, bool); 6] = [
            ("sriov_totalvfs", format!("{}\n", caps.totalvfs), false),
            ("sriov_numvfs", format!("{}\n", caps.numvfs), true),
            ("sriov_offset", format!("{}\n", caps.offset), false),
            ("sriov_stride", format!("{}\n", caps.stride), false),
            (
                "sriov_vf_device",
                format!("{:04x}\n", caps.vf_device),
                false,
            ),
            (
                "sriov_drivers_autoprobe",
                format!("{}\n", u8::from(caps.drivers_autoprobe)),
                true,
            ),
        ];
        for (name, content, writable) in files {
            self.sink
                .write_file(&format!("{dir}/{name}"), &content, writable)?;
        }
        Ok(())
    }

    /// Sets only `sriov_numvfs` of a PF.
    pub fn set_numvfs(&mut self, address: &str, numvfs: u32) -> io::Result<()> {
        let dir = self.dir(address)?;
        self.sink
            .write_file(&format!("{dir}/sriov_numvfs"), &format!("{numvfs}\n"), true)
    }

    /// Links VF `index` of a PF: `virtfnN` on the PF, `physfn` on the VF.
    /// Both functions must exist and be siblings (same parent), as in the
    /// kernel.
    pub fn link_vf(&mut self, pf: &str, index: u32, vf: &str) -> io::Result<()> {
        let pf_dir = self.dir(pf)?;
        let vf_dir = self.dir(vf)?;
        self.sink.symlink(
            &format!("{pf_dir}/virtfn{index}"),
            &relative(&pf_dir, &vf_dir),
        )?;
        self.sink
            .symlink(&format!("{vf_dir}/physfn"), &relative(&vf_dir, &pf_dir))
    }

    /// Removes the `virtfnN` link of a PF.
    pub fn unlink_vf(&mut self, pf: &str, index: u32) -> io::Result<()> {
        let pf_dir = self.dir(pf)?;
        self.sink.remove_all(&format!("{pf_dir}/virtfn{index}"))
    }

    /// Registers a driver: `bus/pci/drivers/<name>/{bind,unbind,new_id,remove_id}`.
    pub fn add_driver(&mut self, name: &str) -> io::Result<()> {
        if self.drivers.contains(name) {
            return Ok(());
        }
        let ddir = format!("sys/bus/pci/drivers/{name}");
        self.sink.mkdir_all(&ddir)?;
        for f in ["bind", "unbind", "new_id", "remove_id"] {
            self.sink.write_file(&format!("{ddir}/{f}"), "", true)?;
        }
        self.drivers.insert(name.to_string());
        Ok(())
    }

    /// Binds a function to a driver (registering the driver if needed): the
    /// function's `driver` link and the driver's link back to the function.
    pub fn bind(&mut self, address: &str, driver: &str) -> io::Result<()> {
        self.add_driver(driver)?;
        self.unbind(address)?;
        let dir = self.dir(address)?;
        let ddir = format!("sys/bus/pci/drivers/{driver}");
        self.sink
            .symlink(&format!("{dir}/driver"), &relative(&dir, &ddir))?;
        self.sink
            .symlink(&format!("{ddir}/{address}"), &relative(&ddir, &dir))?;
        self.bound.insert(address.to_string(), driver.to_string());
        self.write_uevent(address)
    }

    /// Unbinds a function from its driver, if any (netdevs are left to the
    /// caller, as a real driver's remove() is what deletes them).
    pub fn unbind(&mut self, address: &str) -> io::Result<()> {
        let Some(driver) = self.bound.remove(address) else {
            return Ok(());
        };
        let dir = self.dir(address)?;
        self.sink.remove_all(&format!("{dir}/driver"))?;
        self.sink
            .remove_all(&format!("sys/bus/pci/drivers/{driver}/{address}"))?;
        self.write_uevent(address)
    }

    /// Writes a function's `uevent` file as the kernel shows it: `DRIVER=`
    /// while bound, then the PCI variables (`pci_uevent`).
    fn write_uevent(&mut self, address: &str) -> io::Result<()> {
        let Some(pci) = self.uevents.get(address) else {
            return Ok(());
        };
        let dir = self.dir(address)?;
        let driver = self
            .bound
            .get(address)
            .map(|d| format!("DRIVER={d}\n"))
            .unwrap_or_default();
        self.sink
            .write_file(&format!("{dir}/uevent"), &format!("{driver}{pci}"), true)
    }

    /// Writes a function's `driver_override`; `None` writes `(null)`.
    pub fn set_driver_override(&mut self, address: &str, driver: Option<&str>) -> io::Result<()> {
        let dir = self.dir(address)?;
        let content = format!("{}\n", driver.unwrap_or("(null)"));
        self.sink
            .write_file(&format!("{dir}/driver_override"), &content, true)
    }

    /// Adds a netdev under a function and its `class/net` link.
    pub fn add_netdev(&mut self, address: &str, n: &Netdev) -> io::Result<()> {
        self.add_netdev_under(address, "", n)
    }

    /// Adds a netdev under a child device of a function (`subdir`, e.g.
    /// `virtio0` for virtio-net: `<fn>/virtio0/net/<name>`; empty for
    /// `<fn>/net/<name>`), with its `device` link and its `class/net` link.
    pub fn add_netdev_under(&mut self, address: &str, subdir: &str, n: &Netdev) -> io::Result<()> {
        let dir = self.dir(address)?;
        let parent = if subdir.is_empty() {
            dir.clone()
        } else {
            format!("{dir}/{subdir}")
        };
        let ndir = format!("{parent}/net/{}", n.name);
        self.sink.mkdir_all(&ndir)?;
        let mut files: Vec<(&str, String, bool)> = vec![
            ("address", format!("{}\n", n.mac), false),
            ("mtu", format!("{}\n", n.mtu), true),
            ("operstate", format!("{}\n", n.operstate), false),
            ("type", format!("{}\n", n.link_type), false),
            ("ifindex", format!("{}\n", n.ifindex), false),
            ("addr_len", "6\n".to_string(), false),
        ];
        if let Some(c) = n.carrier {
            // 0644 as in the kernel; writes reach the driver's
            // ndo_change_carrier (SimKernel::store).
            files.push(("carrier", format!("{}\n", u8::from(c)), true));
        }
        if let Some(s) = n.speed {
            files.push(("speed", format!("{s}\n"), false));
        }
        if let Some(p) = &n.phys_port_name {
            files.push(("phys_port_name", format!("{p}\n"), false));
        }
        if let Some(s) = &n.phys_switch_id {
            files.push(("phys_switch_id", format!("{s}\n"), false));
        }
        for (name, content, writable) in files {
            self.sink
                .write_file(&format!("{ndir}/{name}"), &content, writable)?;
        }
        // The kernel writes links to an ancestor through the ancestor's
        // parent: `device -> ../../../0000:3b:00.0`.
        let (grand, base) = parent.rsplit_once('/').unwrap_or(("", &parent));
        self.sink.symlink(
            &format!("{ndir}/device"),
            &format!("{}/{base}", relative(&ndir, grand)),
        )?;
        let link = format!("sys/class/net/{}", n.name);
        self.sink
            .symlink(&link, &relative("sys/class/net", &ndir))?;
        self.class_links
            .entry(address.to_string())
            .or_default()
            .push(link);
        Ok(())
    }

    /// Removes a netdev of a function and its `class/net` link.
    pub fn remove_netdev(&mut self, address: &str, name: &str) -> io::Result<()> {
        self.remove_netdev_under(address, "", name)
    }

    /// Removes a netdev added with [`SysfsTree::add_netdev_under`].
    pub fn remove_netdev_under(
        &mut self,
        address: &str,
        subdir: &str,
        name: &str,
    ) -> io::Result<()> {
        let dir = self.dir(address)?;
        let link = format!("sys/class/net/{name}");
        if let Some(links) = self.class_links.get_mut(address) {
            links.retain(|l| l != &link);
        }
        self.sink.remove_all(&link)?;
        if subdir.is_empty() {
            self.sink.remove_all(&format!("{dir}/net/{name}"))
        } else {
            self.sink.remove_all(&format!("{dir}/{subdir}/net/{name}"))
        }
    }

    /// Adds an RDMA device (`infiniband/<name>`) and its class link, with
    /// its character devices' sysfs entries (`infiniband_verbs/uverbsN`,
    /// `infiniband_mad/umadN` and `issmN`, N the device's number).
    pub fn add_rdma(&mut self, address: &str, name: &str) -> io::Result<()> {
        let dir = self.dir(address)?;
        let idir = format!("{dir}/infiniband/{name}");
        self.sink.mkdir_all(&idir)?;
        self.sink
            .write_file(&format!("{idir}/node_type"), "1: CA\n", false)?;
        let n = name.rsplit('_').next().unwrap_or("0");
        for sub in [
            format!("infiniband_verbs/uverbs{n}"),
            format!("infiniband_mad/umad{n}"),
            format!("infiniband_mad/issm{n}"),
        ] {
            self.sink.mkdir_all(&format!("{dir}/{sub}"))?;
            self.sink
                .write_file(&format!("{dir}/{sub}/ibdev"), &format!("{name}\n"), false)?;
        }
        let link = format!("sys/class/infiniband/{name}");
        self.sink
            .symlink(&link, &relative("sys/class/infiniband", &idir))?;
        self.class_links
            .entry(address.to_string())
            .or_default()
            .push(link);
        Ok(())
    }

    /// Creates `dev/vfio/vfio` and `dev/vfio/<group>` (as plain files in a
    /// static tree; the FUSE simulator serves them as it likes).
    pub fn add_vfio_group(&mut self, group: u32) -> io::Result<()> {
        self.sink.mkdir_all("dev/vfio")?;
        self.sink.write_file("dev/vfio/vfio", "", true)?;
        self.sink.write_file(&format!("dev/vfio/{group}"), "", true)
    }

    /// Removes `dev/vfio/<group>`.
    pub fn remove_vfio_group(&mut self, group: u32) -> io::Result<()> {
        self.sink.remove_all(&format!("dev/vfio/{group}"))
    }

    fn dir(&self, address: &str) -> io::Result<String> {
        self.devices.get(address).cloned().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no PCI function {address} in the tree"),
            )
        })
    }
}

/// The relative path from directory `from` to `to` (both relative to the
/// same root, `/`-separated), as the kernel writes sysfs links.
pub fn relative(from: &str, to: &str) -> String {
    let f: Vec<&str> = from.split('/').filter(|s| !s.is_empty()).collect();
    let t: Vec<&str> = to.split('/').filter(|s| !s.is_empty()).collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; f.len() - common];
    parts.extend(&t[common..]);
    parts.join("/")
}

/// The address of a VF from its PF's address and the SR-IOV routing-ID
/// arithmetic: `RID(VF n) = RID(PF) + offset + n * stride`, where the RID is
/// `bus << 8 | device << 3 | function`.
pub fn vf_address(pf: &str, offset: u32, stride: u32, index: u32) -> Option<String> {
    let (domain, rest) = pf.split_once(':')?;
    let (bus, devfn) = rest.split_once(':')?;
    let (dev, func) = devfn.split_once('.')?;
    let bus = u32::from_str_radix(bus, 16).ok()?;
    let dev = u32::from_str_radix(dev, 16).ok()?;
    let func = u32::from_str_radix(func, 16).ok()?;
    let rid = (bus << 8 | dev << 3 | func) + offset + index * stride;
    if rid > 0xffff {
        return None;
    }
    Some(format!(
        "{domain}:{:02x}:{:02x}.{:x}",
        rid >> 8,
        (rid >> 3) & 0x1f,
        rid & 7
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_match_the_kernel() {
        assert_eq!(
            relative(
                "sys/bus/pci/devices",
                "sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0"
            ),
            "../../../devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0"
        );
        assert_eq!(
            relative(
                "sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0",
                "sys/bus/pci/drivers/ice"
            ),
            "../../../../bus/pci/drivers/ice"
        );
        assert_eq!(
            relative(
                "sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0",
                "sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:01.0"
            ),
            "../0000:3b:01.0"
        );
    }

    /// The kernel's format (`pci:v…d…sv…sd…bc…sc…i…`, upper-case hex), in
    /// the `modalias` file and the uevent alike.
    #[test]
    fn modalias_as_the_kernel_prints_it() {
        let mut f = PciFunction::ethernet("0000:3b:02.0", 0x8086, 0x1889);
        f.subsystem_vendor = 0x8086;
        f.subsystem_device = 0x0003;
        f.class = 0x020000;
        assert_eq!(
            pci_modalias(&f),
            "pci:v00008086d00001889sv00008086sd00000003bc02sc00i00"
        );
        assert!(
            pci_uevent(&f)
                .contains("\nMODALIAS=pci:v00008086d00001889sv00008086sd00000003bc02sc00i00\n")
        );
    }

    #[test]
    fn vf_addresses_follow_offset_and_stride() {
        assert_eq!(
            vf_address("0000:3b:00.0", 16, 1, 0).unwrap(),
            "0000:3b:02.0"
        );
        assert_eq!(
            vf_address("0000:3b:00.0", 16, 1, 9).unwrap(),
            "0000:3b:03.1"
        );
        assert_eq!(
            vf_address("0000:3b:00.1", 15, 1, 0).unwrap(),
            "0000:3b:02.0"
        );
        assert_eq!(
            vf_address("0000:01:00.0", 128, 2, 1).unwrap(),
            "0000:01:10.2"
        );
        assert_eq!(vf_address("0000:ff:1f.7", 1, 1, 0), None);
    }

    #[test]
    fn disk_sink_modes_rewrites_and_relinks() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let mut s = DiskSink::new(tmp.path());
        s.write_file("sys/a/ro", "1\n", false).unwrap();
        s.write_file("sys/a/rw", "1\n", true).unwrap();
        let mode = |p: &str| {
            std::fs::metadata(tmp.path().join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("sys/a/ro"), 0o444);
        assert_eq!(mode("sys/a/rw"), 0o644);
        s.write_file("sys/a/rw", "2\n", true).unwrap();
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("sys/a/rw")).unwrap(),
            "2\n"
        );
        s.symlink("sys/l", "a/ro").unwrap();
        s.symlink("sys/l", "a/rw").unwrap();
        assert_eq!(
            std::fs::read_link(tmp.path().join("sys/l"))
                .unwrap()
                .to_str(),
            Some("a/rw")
        );
        // A removed directory is recreated on the next write under it,
        // also when something else removed it.
        s.remove_all("sys/a").unwrap();
        s.write_file("sys/a/b/c", "x", true).unwrap();
        assert!(tmp.path().join("sys/a/b/c").exists());
        std::fs::remove_dir_all(tmp.path().join("sys/a")).unwrap();
        s.write_file("sys/a/b/d", "x", true).unwrap();
        s.symlink("sys/a/b/e", "d").unwrap();
        std::fs::remove_dir_all(tmp.path().join("sys/a")).unwrap();
        s.symlink("sys/a/b/e", "d").unwrap();
        assert!(tmp.path().join("sys/a/b/e").is_symlink());
    }

    #[test]
    fn default_parent_is_the_root_port_above_the_bus() {
        assert_eq!(default_parent("0000:3b:00.0"), "pci0000:3a/0000:3a:00.0");
    }

    #[test]
    fn builds_a_pf_with_a_vf_on_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let mut t = SysfsTree::on_disk(tmp.path()).unwrap();
        let mut pf = PciFunction::ethernet("0000:3b:00.0", 0x8086, 0x1593);
        pf.numa_node = 0;
        pf.iommu_group = Some(10);
        t.add_function(&pf).unwrap();
        t.set_sriov(
            "0000:3b:00.0",
            &SriovCaps {
                totalvfs: 128,
                numvfs: 1,
                offset: 16,
                stride: 1,
                vf_device: 0x1889,
                drivers_autoprobe: true,
            },
        )
        .unwrap();
        t.bind("0000:3b:00.0", "ice").unwrap();
        t.add_netdev(
            "0000:3b:00.0",
            &Netdev::ethernet("ens1f0", "aa:bb:cc:00:00:01", 5),
        )
        .unwrap();
        let vf_addr = vf_address("0000:3b:00.0", 16, 1, 0).unwrap();
        let mut vf = PciFunction::ethernet(&vf_addr, 0x8086, 0x1889);
        vf.iommu_group = Some(11);
        t.add_function(&vf).unwrap();
        t.link_vf("0000:3b:00.0", 0, &vf_addr).unwrap();
        t.bind(&vf_addr, "vfio-pci").unwrap();
        t.add_vfio_group(11).unwrap();

        let sys = tmp.path().join("sys");
        let dev = std::fs::canonicalize(sys.join("bus/pci/devices/0000:3b:02.0")).unwrap();
        assert_eq!(
            dev,
            std::fs::canonicalize(sys.join("devices/pci0000:3a/0000:3a:00.0/0000:3b:02.0"))
                .unwrap()
        );
        let physfn = std::fs::canonicalize(dev.join("physfn")).unwrap();
        assert!(physfn.ends_with("0000:3b:00.0"));
        let drv = std::fs::read_link(dev.join("driver")).unwrap();
        assert_eq!(
            drv.to_str().unwrap(),
            "../../../../bus/pci/drivers/vfio-pci"
        );
        assert!(dev.join("driver/0000:3b:02.0").exists());
        assert!(
            std::fs::canonicalize(dev.join("iommu_group"))
                .unwrap()
                .ends_with("kernel/iommu_groups/11")
        );
        assert_eq!(
            std::fs::read_to_string(sys.join("class/net/ens1f0/address")).unwrap(),
            "aa:bb:cc:00:00:01\n"
        );
        assert!(tmp.path().join("dev/vfio/11").exists());

        t.remove_function(&vf_addr).unwrap();
        assert!(!sys.join("bus/pci/devices/0000:3b:02.0").exists());
        assert!(!sys.join("bus/pci/drivers/vfio-pci/0000:3b:02.0").exists());
        assert!(
            !sys.join("kernel/iommu_groups/11/devices/0000:3b:02.0")
                .exists()
        );
        t.remove_function("0000:3b:00.0").unwrap();
        assert!(std::fs::symlink_metadata(sys.join("class/net/ens1f0")).is_err());
    }
}
