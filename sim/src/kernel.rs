//! The simulated kernel: PCI functions, SR-IOV, driver binding, netdevs,
//! RDMA devices, IOMMU groups and vfio, with the kernel's semantics and
//! errnos, laid out through a [`SysfsTree`] into any [`TreeSink`].
//!
//! The static tree (`sriov-sim tree`) and the FUSE mount (`sriov-sim
//! mount`) both run this code, so they have the same layout by
//! construction. Writes to sysfs attributes arrive through
//! [`SimKernel::store`] with the attribute's path, as the kernel's `store`
//! callbacks would.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::time::Duration;

use crate::catalog::{self, NicModel};
use crate::node::{NodeSpec, PfSpec};
use crate::tree::{Netdev, PciFunction, SriovCaps, SysfsTree, TreeSink};
use crate::uevent::Uevent;

/// The driver that takes any device named in `driver_override` or `new_id`.
pub const VFIO_PCI: &str = "vfio-pci";

/// A refused write: the errno the kernel returns and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason} (errno {errno})")]
pub struct StoreError {
    /// Positive errno (`libc::EBUSY`, ...).
    pub errno: i32,
    pub path: String,
    pub reason: String,
}

/// What the caller must do after a successful store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEffect {
    /// Nothing more.
    Done,
    /// VFs of `pf` must be created after `after` by calling
    /// [`SimKernel::create_late_vfs`] with `generation` (fault injection
    /// `vfs_late_ms`).
    LateVfs {
        pf: String,
        generation: u64,
        after: Duration,
    },
}

/// A backend's failure with the errno it stands for (a failed `ip`
/// command of [`crate::veth`]); the kernel passes the errno on to the
/// sysfs write that asked for it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    pub errno: i32,
    pub message: String,
}

/// The errno of a backend's error: an OS error's own, a
/// [`BackendError`]'s, else EIO.
pub fn backend_errno(e: &io::Error) -> i32 {
    e.raw_os_error()
        .or_else(|| {
            e.get_ref()
                .and_then(|i| i.downcast_ref::<BackendError>())
                .map(|v| v.errno)
        })
        .unwrap_or(libc::EIO)
}

/// Creates and deletes real interfaces that back simulated netdevs (veths
/// with `--veth`).
pub trait NetdevBackend: Send {
    /// Creates the interface `name` with `mac` and `mtu`, up with carrier
    /// when `up` (a PF) and down otherwise (a VF); returns its ifindex.
    fn create(&mut self, name: &str, mac: &str, mtu: u32, up: bool) -> io::Result<u32>;
    /// Deletes the interface created as `name` (wherever it has moved).
    fn delete(&mut self, name: &str) -> io::Result<()>;
    /// Sets the MTU of the interface created as `name`.
    fn set_mtu(&mut self, name: &str, mtu: u32) -> io::Result<()>;
    /// Deletes everything still created.
    fn delete_all(&mut self);
    /// Where the interface created as `name` is now: its current state in
    /// this network namespace, or `None` when it has left it.
    fn locate(&mut self, name: &str) -> io::Result<Option<LinkInfo>>;
}

/// A backing interface as seen in the simulator's network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub name: String,
    pub ifindex: u32,
    pub mac: String,
    pub mtu: u32,
    pub operstate: String,
}

#[derive(Debug, Clone)]
enum Kind {
    /// A PF (or a non-SR-IOV function when the model has no SR-IOV).
    Pf {
        spec: usize,
        numvfs: u32,
        totalvfs: u32,
        offset: u32,
        stride: u32,
        autoprobe: bool,
        /// VFs that exist as functions (can lag `numvfs` with `vfs_late_ms`).
        created: u32,
        generation: u64,
    },
    Vf {
        pf: String,
        index: u32,
    },
}

#[derive(Debug, Clone)]
struct NetdevState {
    /// The name it was created with (the backend's key).
    name: String,
    /// The name sysfs shows now; `None` while a backing interface is in
    /// another network namespace.
    shown: Option<String>,
    /// Its directory while shown.
    dir: String,
    mtu: u32,
    backed: bool,
    /// The `operstate` sysfs shows now.
    operstate: String,
    /// `carrier` as shown; `None` while the link is down (unreadable).
    carrier: Option<bool>,
}

#[derive(Debug, Clone)]
struct Func {
    model: &'static NicModel,
    vendor: u16,
    device: u16,
    kind: Kind,
    numa: i32,
    group: Option<u32>,
    driver: Option<String>,
    driver_override: Option<String>,
    netdev: Option<NetdevState>,
    rdma: Option<String>,
    dir: String,
    /// Child devices on other buses (auxiliary SFs, vDPA), created by the
    /// driver's probe and removed by its remove.
    children: Vec<ChildDev>,
}

/// A child device of a function on another bus: an auxiliary device
/// (`mlx5_core.sf.2`) or a vDPA device (`vdpa0`).
#[derive(Debug, Clone)]
struct ChildDev {
    /// `auxiliary` or `vdpa`.
    bus: &'static str,
    name: String,
    dir: String,
    driver: String,
    /// Its netdev (subdir of the function is the child's name).
    netdev: Option<String>,
    /// A device node it created under `dev/` (`vhost-vdpa-0`).
    devnode: Option<String>,
    /// Its RDMA device (`infiniband/<name>` under it).
    rdma: Option<String>,
}

/// The simulated kernel state over a sysfs tree.
pub struct SimKernel<S: TreeSink> {
    tree: SysfsTree<S>,
    spec: NodeSpec,
    funcs: BTreeMap<String, Func>,
    dir_to_addr: HashMap<String, String>,
    netdev_dirs: HashMap<String, String>,
    drivers: BTreeSet<String>,
    dynamic_ids: BTreeMap<String, BTreeSet<(u16, u16)>>,
    free_groups: BTreeSet<u32>,
    next_group: u32,
    next_ifindex: u32,
    next_rdma: u32,
    /// Auxiliary device ids (mlx5's IDA: the lowest free id is reused).
    next_adev: u32,
    free_adev: BTreeSet<u32>,
    /// vDPA device indexes (the vdpa core's IDA).
    next_vdpa: u32,
    free_vdpa: BTreeSet<u32>,
    vfio_groups: BTreeSet<u32>,
    seqnum: u64,
    events: Vec<Uevent>,
    backend: Option<Box<dyn NetdevBackend>>,
    /// PFs (spec indexes) removed through `remove`, found again by
    /// `bus/pci/rescan`.
    removed: BTreeSet<usize>,
}

impl<S: TreeSink> std::fmt::Debug for SimKernel<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimKernel")
            .field("node", &self.spec.name)
            .field("functions", &self.funcs.len())
            .finish()
    }
}

fn eio(path: &str, e: io::Error) -> StoreError {
    StoreError {
        errno: libc::EIO,
        path: path.to_string(),
        reason: format!("simulator tree update failed: {e}"),
    }
}

fn err(errno: i32, path: &str, reason: impl Into<String>) -> StoreError {
    StoreError {
        errno,
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// `kstrtou16(buf, 0, ..)`-like parsing: decimal, `0x` hex or `0` octal,
/// one trailing newline allowed.
fn parse_uint(data: &str) -> Option<u64> {
    let s = data.strip_suffix('\n').unwrap_or(data);
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() {
        return None;
    }
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

/// The kernel's `kstrtobool`.
fn parse_bool(data: &str) -> Option<bool> {
    let b = data.as_bytes();
    match b.first()? {
        b'y' | b'Y' | b'1' => Some(true),
        b'n' | b'N' | b'0' => Some(false),
        b'o' | b'O' => match b.get(1)? {
            b'n' | b'N' => Some(true),
            b'f' | b'F' => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A sysfs string argument: one trailing newline removed.
fn chomp(data: &str) -> &str {
    data.strip_suffix('\n').unwrap_or(data)
}

impl<S: TreeSink> SimKernel<S> {
    /// Boots a node: lays out every function of `spec`, binds drivers and
    /// enables the initial VFs. Boot-time uevents are not kept (nobody
    /// listens before the node is up).
    pub fn boot(
        sink: S,
        spec: NodeSpec,
        backend: Option<Box<dyn NetdevBackend>>,
    ) -> io::Result<Self> {
        spec.validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let tree = SysfsTree::new(sink)?;
        let mut k = SimKernel {
            tree,
            next_group: spec.first_iommu_group,
            spec,
            funcs: BTreeMap::new(),
            dir_to_addr: HashMap::new(),
            netdev_dirs: HashMap::new(),
            drivers: BTreeSet::new(),
            dynamic_ids: BTreeMap::new(),
            free_groups: BTreeSet::new(),
            next_ifindex: 2,
            next_rdma: 0,
            next_adev: 0,
            free_adev: BTreeSet::new(),
            next_vdpa: 0,
            free_vdpa: BTreeSet::new(),
            vfio_groups: BTreeSet::new(),
            seqnum: 0,
            events: Vec::new(),
            backend,
            removed: BTreeSet::new(),
        };
        let to_io = |e: StoreError| io::Error::other(e.to_string());
        // Drivers the node's modules register, plus vfio-pci.
        let mut drivers: Vec<&str> = vec![VFIO_PCI];
        for pf in &k.spec.pfs {
            let m = pf.nic();
            drivers.push(m.pf_driver);
            if let Some(d) = m.vf_driver {
                drivers.push(d);
            }
        }
        for g in &k.spec.gpus {
            if let Some(m) = crate::catalog::gpu_model(&g.model) {
                drivers.push(m.driver);
            }
        }
        drivers.sort_unstable();
        drivers.dedup();
        for d in drivers {
            k.tree.add_driver(d)?;
            k.drivers.insert(d.to_string());
        }
        // vfio-pci is loaded: the container device exists.
        k.tree.sink().mkdir_all("dev/vfio")?;
        k.tree.sink().write_file("dev/vfio/vfio", "", true)?;
        k.add_bridges_and_gpus()?;
        let pfs = k.spec.pfs.clone();
        for (i, pf) in pfs.iter().enumerate() {
            k.add_pf(i, pf)?;
        }
        for pf in &pfs {
            if let Some(driver) = pf.start_driver() {
                k.attach(&pf.address, driver).map_err(to_io)?;
            }
        }
        for pf in &pfs {
            if pf.vfs > 0 {
                k.enable_vfs(&pf.address, pf.vfs, "boot").map_err(to_io)?;
                for (idx, drv) in &pf.vf_drivers {
                    let vf = k.vf_addr(&pf.address, *idx).expect("validated");
                    k.detach(&vf).map_err(to_io)?;
                    if drv != "none" {
                        k.attach(&vf, drv).map_err(to_io)?;
                    }
                }
            }
        }
        k.events.clear();
        Ok(k)
    }

    /// The node description.
    pub fn spec(&self) -> &NodeSpec {
        &self.spec
    }

    /// The tree's sink (the in-memory filesystem in the mount).
    pub fn sink(&mut self) -> &mut S {
        self.tree.sink()
    }

    /// Takes the uevents emitted since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<Uevent> {
        std::mem::take(&mut self.events)
    }

    /// The PCI addresses of all functions, PFs and VFs.
    pub fn functions(&self) -> Vec<String> {
        self.funcs.keys().cloned().collect()
    }

    /// The driver a function is bound to.
    pub fn driver_of(&self, address: &str) -> Option<&str> {
        self.funcs.get(address)?.driver.as_deref()
    }

    /// Deletes every backing interface (at shutdown).
    pub fn shutdown(&mut self) {
        if let Some(b) = self.backend.as_mut() {
            b.delete_all();
        }
    }

    /// How long a write of `data` to `path` must wait before it is applied
    /// (fault injection `numvfs_delay_ms` and `write_delay_ms`).
    pub fn write_delay(&self, path: &str, data: &str) -> Option<Duration> {
        let (dir, attr) = path.rsplit_once('/')?;
        // The function the write is about: the attribute's own function,
        // a netdev's function, or the address written to a driver file.
        let addr = if let Some(a) = self.dir_to_addr.get(dir) {
            a.clone()
        } else if attr == "mtu"
            && let Some(a) = self.netdev_dirs.get(dir)
        {
            a.clone()
        } else if matches!(attr, "bind" | "unbind" | "drivers_probe") {
            chomp(data).to_string()
        } else {
            return None;
        };
        let f = self.funcs.get(&addr)?;
        let pf = match &f.kind {
            Kind::Pf { .. } => f,
            Kind::Vf { pf, .. } => self.funcs.get(pf)?,
        };
        let Kind::Pf { spec, .. } = pf.kind else {
            return None;
        };
        let faults = &self.spec.pfs[spec].faults;
        let ms = match faults.write_delay_ms.get(attr) {
            Some(ms) => *ms,
            None if attr == "sriov_numvfs" && std::ptr::eq(f, pf) => faults.numvfs_delay_ms,
            None => 0,
        };
        (ms > 0).then(|| Duration::from_millis(ms))
    }

    /// A write of `data` to the attribute at `path` (relative to the host
    /// root), with the kernel's semantics and errnos.
    pub fn store(&mut self, path: &str, data: &str) -> Result<StoreEffect, StoreError> {
        let (dir, attr) = path
            .rsplit_once('/')
            .ok_or_else(|| err(libc::EINVAL, path, "not an attribute path"))?;
        if let Some(addr) = self.dir_to_addr.get(dir).cloned() {
            return match attr {
                "sriov_numvfs" => self.store_numvfs(path, &addr, data),
                "sriov_drivers_autoprobe" => {
                    let v = parse_bool(data)
                        .ok_or_else(|| err(libc::EINVAL, path, "expected 0 or 1"))?;
                    if let Some(Func {
                        kind: Kind::Pf { autoprobe, .. },
                        ..
                    }) = self.funcs.get_mut(&addr)
                    {
                        *autoprobe = v;
                    }
                    let content = format!("{}\n", u8::from(v));
                    self.tree
                        .sink()
                        .write_file(path, &content, true)
                        .map_err(|e| eio(path, e))?;
                    Ok(StoreEffect::Done)
                }
                "remove" => {
                    let n = parse_uint(data)
                        .ok_or_else(|| err(libc::EINVAL, path, "expected a number"))?;
                    if n != 0 {
                        self.remove_function(&addr).map_err(|e| eio(path, e))?;
                    }
                    Ok(StoreEffect::Done)
                }
                "driver_override" => {
                    let v = chomp(data);
                    if data.len() >= 4096 {
                        return Err(err(libc::EINVAL, path, "override longer than a page"));
                    }
                    let v = (!v.is_empty()).then(|| v.to_string());
                    self.tree
                        .set_driver_override(&addr, v.as_deref())
                        .map_err(|e| eio(path, e))?;
                    if let Some(f) = self.funcs.get_mut(&addr) {
                        f.driver_override = v;
                    }
                    Ok(StoreEffect::Done)
                }
                _ => Err(err(
                    libc::EOPNOTSUPP,
                    path,
                    format!("writing `{attr}` is not simulated"),
                )),
            };
        }
        if path == "sys/bus/pci/rescan" {
            let n = parse_uint(data).ok_or_else(|| err(libc::EINVAL, path, "expected a number"))?;
            if n != 0 {
                self.rescan().map_err(|e| eio(path, e))?;
            }
            return Ok(StoreEffect::Done);
        }
        if path == "sys/bus/pci/drivers_probe" {
            let addr = chomp(data).to_string();
            if !self.funcs.contains_key(&addr) {
                return Err(err(libc::ENODEV, path, format!("no PCI device {addr}")));
            }
            if self.funcs[&addr].driver.is_none() {
                self.probe(&addr)?;
            }
            return Ok(StoreEffect::Done);
        }
        if let Some(driver) = dir.strip_prefix("sys/bus/pci/drivers/")
            && self.drivers.contains(driver)
        {
            let driver = driver.to_string();
            return self.store_driver_attr(path, &driver, attr, data);
        }
        if attr == "mtu"
            && let Some(addr) = self.netdev_dirs.get(dir).cloned()
        {
            return self.store_mtu(path, &addr, data);
        }
        if attr == "carrier"
            && let Some(addr) = self.netdev_dirs.get(dir).cloned()
        {
            return self.store_carrier(path, &addr, data);
        }
        Err(err(
            libc::EOPNOTSUPP,
            path,
            "writing this file is not simulated",
        ))
    }

    fn store_numvfs(
        &mut self,
        path: &str,
        addr: &str,
        data: &str,
    ) -> Result<StoreEffect, StoreError> {
        let n = parse_uint(data)
            .filter(|n| *n <= u16::MAX as u64)
            .ok_or_else(|| {
                err(
                    libc::EINVAL,
                    path,
                    format!("{:?} is not a number", chomp(data)),
                )
            })? as u32;
        let f = &self.funcs[addr];
        let Kind::Pf {
            spec,
            numvfs,
            totalvfs,
            ..
        } = f.kind
        else {
            return Err(err(libc::EINVAL, path, "not a PF"));
        };
        if n > totalvfs {
            return Err(err(
                libc::ERANGE,
                path,
                format!("{n} VFs requested; sriov_totalvfs is {totalvfs}"),
            ));
        }
        if n == numvfs {
            return Ok(StoreEffect::Done);
        }
        let Some(driver) = f.driver.clone() else {
            return Err(err(
                libc::ENOENT,
                path,
                "no driver bound to device; cannot configure SR-IOV",
            ));
        };
        if driver != f.model.pf_driver {
            return Err(err(
                libc::ENOENT,
                path,
                format!("driver {driver} does not support SR-IOV configuration"),
            ));
        }
        if n == 0 {
            self.disable_vfs(addr).map_err(|e| eio(path, e))?;
            return Ok(StoreEffect::Done);
        }
        if numvfs != 0 {
            return Err(err(
                libc::EBUSY,
                path,
                format!("{numvfs} VFs already enabled. Disable before enabling {n} VFs"),
            ));
        }
        if self.spec.pfs[spec].faults.numvfs_enomem {
            return Err(err(
                libc::ENOMEM,
                path,
                "injected fault: VF resources could not be allocated",
            ));
        }
        let late = self.spec.pfs[spec].faults.vfs_late_ms;
        if late > 0 {
            let generation = self.set_numvfs_only(addr, n).map_err(|e| eio(path, e))?;
            return Ok(StoreEffect::LateVfs {
                pf: addr.to_string(),
                generation,
                after: Duration::from_millis(late),
            });
        }
        self.enable_vfs(addr, n, path)?;
        Ok(StoreEffect::Done)
    }

    fn store_driver_attr(
        &mut self,
        path: &str,
        driver: &str,
        attr: &str,
        data: &str,
    ) -> Result<StoreEffect, StoreError> {
        match attr {
            "bind" => {
                let addr = chomp(data);
                let Some(f) = self.funcs.get(addr) else {
                    return Err(err(libc::ENODEV, path, format!("no PCI device {addr}")));
                };
                if !self.driver_matches(driver, f) {
                    return Err(err(
                        libc::ENODEV,
                        path,
                        format!("driver {driver} does not handle device {addr}"),
                    ));
                }
                if let Some(cur) = &f.driver {
                    return Err(err(
                        libc::EBUSY,
                        path,
                        format!("device {addr} is already bound to {cur}"),
                    ));
                }
                if self.bind_fault(driver, addr) {
                    return Err(err(
                        libc::EIO,
                        path,
                        format!("injected fault: {driver} probe of {addr} failed"),
                    ));
                }
                if !Self::probe_succeeds(driver, f) {
                    return Err(err(
                        libc::ENODEV,
                        path,
                        format!("{driver} probe of {addr} failed: it cannot drive this device"),
                    ));
                }
                self.attach(addr, driver)?;
                Ok(StoreEffect::Done)
            }
            "unbind" => {
                let addr = chomp(data);
                match self.funcs.get(addr) {
                    Some(f) if f.driver.as_deref() == Some(driver) => {
                        self.detach(addr)?;
                        Ok(StoreEffect::Done)
                    }
                    _ => Err(err(
                        libc::ENODEV,
                        path,
                        format!("device {addr} is not bound to {driver}"),
                    )),
                }
            }
            "new_id" | "remove_id" => {
                let fields: Vec<u32> = chomp(data)
                    .split_whitespace()
                    .map_while(|s| u32::from_str_radix(s.trim_start_matches("0x"), 16).ok())
                    .collect();
                if fields.len() < 2 || fields[0] > 0xffff || fields[1] > 0xffff {
                    return Err(err(libc::EINVAL, path, "expected \"VENDOR DEVICE\" in hex"));
                }
                let id = (fields[0] as u16, fields[1] as u16);
                let ids = self.dynamic_ids.entry(driver.to_string()).or_default();
                if attr == "remove_id" {
                    if !ids.remove(&id) {
                        return Err(err(libc::ENODEV, path, "no such dynamic id"));
                    }
                    return Ok(StoreEffect::Done);
                }
                if !ids.insert(id) {
                    return Err(err(libc::EEXIST, path, "dynamic id already added"));
                }
                // driver_attach(): probe every unbound device it now matches.
                let candidates: Vec<String> = self
                    .funcs
                    .iter()
                    .filter(|(_, f)| {
                        f.driver.is_none()
                            && self.driver_matches(driver, f)
                            && Self::probe_succeeds(driver, f)
                    })
                    .map(|(a, _)| a.clone())
                    .collect();
                for addr in candidates {
                    self.attach(&addr, driver)?;
                }
                Ok(StoreEffect::Done)
            }
            _ => Err(err(
                libc::EOPNOTSUPP,
                path,
                format!("writing `{attr}` is not simulated"),
            )),
        }
    }

    fn store_mtu(&mut self, path: &str, addr: &str, data: &str) -> Result<StoreEffect, StoreError> {
        let mtu = parse_uint(data).ok_or_else(|| err(libc::EINVAL, path, "MTU is not a number"))?;
        let f = &self.funcs[addr];
        let max = f.model.max_mtu as u64;
        if !(68..=max).contains(&mtu) {
            return Err(err(
                libc::EINVAL,
                path,
                format!("MTU {mtu} outside 68..={max}"),
            ));
        }
        let mtu = mtu as u32;
        let nd = f.netdev.clone().expect("netdev dir maps to a netdev");
        if nd.backed
            && let Some(b) = self.backend.as_mut()
        {
            b.set_mtu(&nd.name, mtu)
                .map_err(|e| err(backend_errno(&e), path, e.to_string()))?;
        }
        self.tree
            .sink()
            .write_file(path, &format!("{mtu}\n"), true)
            .map_err(|e| eio(path, e))?;
        if let Some(n) = self.funcs.get_mut(addr).and_then(|f| f.netdev.as_mut()) {
            n.mtu = mtu;
        }
        Ok(StoreEffect::Done)
    }

    fn driver_matches(&self, driver: &str, f: &Func) -> bool {
        if let Some(o) = &f.driver_override {
            return o == driver;
        }
        NicModel::driver_handles(driver, f.vendor, f.device)
            || self
                .dynamic_ids
                .get(driver)
                .is_some_and(|ids| ids.contains(&(f.vendor, f.device)))
    }

    /// Whether the driver's probe() accepts the device once matched: vfio-pci
    /// takes anything; a hardware driver only the devices in its id table
    /// (matching through `driver_override` alone is not enough).
    fn probe_succeeds(driver: &str, f: &Func) -> bool {
        driver == VFIO_PCI || NicModel::driver_handles(driver, f.vendor, f.device)
    }

    /// Whether binding the VF `addr` to `driver` fails by injection
    /// (`faults.bind_fail` of its PF).
    fn bind_fault(&self, driver: &str, addr: &str) -> bool {
        let Some(Func {
            kind: Kind::Vf { pf, .. },
            ..
        }) = self.funcs.get(addr)
        else {
            return false;
        };
        let Some(Func {
            kind: Kind::Pf { spec, .. },
            ..
        }) = self.funcs.get(pf)
        else {
            return false;
        };
        self.spec.pfs[*spec]
            .faults
            .bind_fail
            .iter()
            .any(|d| d == driver)
    }

    /// Binds an unbound device to the first registered driver that matches
    /// it (driver_override first), as the bus's probe does. Nothing matching
    /// is not an error.
    fn probe(&mut self, addr: &str) -> Result<(), StoreError> {
        let f = &self.funcs[addr];
        let found = self
            .drivers
            .iter()
            .find(|d| {
                self.driver_matches(d, f) && Self::probe_succeeds(d, f) && !self.bind_fault(d, addr)
            })
            .cloned();
        if let Some(d) = found {
            self.attach(addr, &d)?;
        }
        Ok(())
    }

    /// The lowest free id of an IDA.
    fn ida_alloc(free: &mut BTreeSet<u32>, next: &mut u32) -> u32 {
        if let Some(i) = free.pop_first() {
            return i;
        }
        *next += 1;
        *next - 1
    }

    fn alloc_group(&mut self) -> u32 {
        if let Some(g) = self.free_groups.pop_first() {
            return g;
        }
        let g = self.next_group;
        self.next_group += 1;
        g
    }

    fn devpath(dir: &str) -> String {
        format!("/{}", dir.strip_prefix("sys/").unwrap_or(dir))
    }

    fn emit(
        &mut self,
        action: &str,
        devpath: String,
        subsystem: &str,
        vars: Vec<(String, String)>,
    ) {
        self.seqnum += 1;
        self.events.push(Uevent {
            action: action.into(),
            devpath,
            subsystem: subsystem.into(),
            vars,
            seqnum: self.seqnum,
        });
    }

    fn pci_vars(&self, addr: &str, f: &Func, driver: Option<&str>) -> Vec<(String, String)> {
        // The same function as the static tree lays it out (add_pf, add_vf).
        let mut pci = PciFunction::ethernet(addr, f.vendor, f.device);
        pci.subsystem_device = f.model.subsystem_device;
        let mut v: Vec<(String, String)> = driver
            .map(|d| ("DRIVER".to_string(), d.to_string()))
            .into_iter()
            .collect();
        v.extend(crate::tree::pci_uevent_vars(&pci));
        v
    }

    /// Lays out the root ports and switch ports the node names (PCI
    /// bridges) and its GPUs, bound to their driver. The kernel's own
    /// tables do not track them: they only give PFs and VFs a place in the
    /// PCIe tree.
    fn add_bridges_and_gpus(&mut self) -> io::Result<()> {
        use crate::catalog::{CLASS_BRIDGE, ROOT_PORT_IDS, SWITCH_PORT_IDS};
        for (address, parent, numa, switch_port) in self.spec.bridges() {
            let (vendor, device) = if switch_port {
                SWITCH_PORT_IDS
            } else {
                ROOT_PORT_IDS
            };
            let mut pci = PciFunction::ethernet(&address, vendor, device);
            pci.class = CLASS_BRIDGE;
            pci.parent = parent;
            pci.numa_node = numa;
            self.tree.add_function(&pci)?;
        }
        for g in self.spec.gpus.clone() {
            let m = crate::catalog::gpu_model(&g.model).expect("validated");
            let mut pci = PciFunction::ethernet(&g.address, m.vendor, m.device);
            pci.class = m.class;
            pci.subsystem_device = m.subsystem_device;
            pci.numa_node = g.numa;
            pci.iommu_group = self.spec.iommu.then(|| self.alloc_group());
            if let Some(b) = &g.behind {
                pci.parent = self.spec.bridge_dir(b).expect("validated");
            }
            self.tree.add_function(&pci)?;
            self.tree.bind(&g.address, m.driver)?;
        }
        Ok(())
    }

    fn add_pf(&mut self, spec_idx: usize, pf: &PfSpec) -> io::Result<()> {
        let m = pf.nic();
        let group = self.spec.iommu.then(|| self.alloc_group());
        let mut pci = PciFunction::ethernet(&pf.address, m.vendor, m.pf_device);
        pci.subsystem_device = m.subsystem_device;
        pci.numa_node = pf.numa;
        pci.iommu_group = group;
        if let Some(b) = &pf.behind {
            pci.parent = self.spec.bridge_dir(b).expect("validated");
        } else if pf.address[5..7] == *"00" {
            // A root-complex integrated device sits right under the host bridge.
            pci.parent = format!("pci{}:00", &pf.address[..4]);
        }
        self.tree.add_function(&pci)?;
        let dir = self
            .tree
            .device_dir(&pf.address)
            .expect("just added")
            .to_string();
        let (offset, stride) = m.offset_stride(pf.function());
        let totalvfs = pf.total_vfs();
        if m.has_sriov() {
            self.tree.set_sriov(
                &pf.address,
                &SriovCaps {
                    totalvfs,
                    numvfs: 0,
                    offset,
                    stride,
                    vf_device: m.vf_device.unwrap_or(0),
                    drivers_autoprobe: pf.autoprobe,
                },
            )?;
        }
        self.dir_to_addr.insert(dir.clone(), pf.address.clone());
        self.funcs.insert(
            pf.address.clone(),
            Func {
                model: m,
                vendor: m.vendor,
                device: m.pf_device,
                kind: Kind::Pf {
                    spec: spec_idx,
                    numvfs: 0,
                    totalvfs,
                    offset,
                    stride,
                    autoprobe: pf.autoprobe,
                    created: 0,
                    generation: 0,
                },
                numa: pf.numa,
                group,
                driver: None,
                driver_override: None,
                netdev: None,
                rdma: None,
                dir,
                children: Vec::new(),
            },
        );
        Ok(())
    }

    fn vf_addr(&self, pf: &str, index: u32) -> Option<String> {
        let Kind::Pf { offset, stride, .. } = self.funcs.get(pf)?.kind else {
            return None;
        };
        crate::tree::vf_address(pf, offset, stride, index)
    }

    /// Writes `sriov_numvfs` and bumps the PF's generation without
    /// creating VFs (they come later). Returns the generation.
    fn set_numvfs_only(&mut self, pf: &str, n: u32) -> io::Result<u64> {
        self.tree.set_numvfs(pf, n)?;
        let Some(Func {
            kind: Kind::Pf {
                numvfs, generation, ..
            },
            ..
        }) = self.funcs.get_mut(pf)
        else {
            return Ok(0);
        };
        *numvfs = n;
        *generation += 1;
        Ok(*generation)
    }

    /// Creates VFs that a `vfs_late_ms` write announced, if the PF has not
    /// changed since (same `generation`).
    pub fn create_late_vfs(&mut self, pf: &str, generation: u64) -> Result<(), StoreError> {
        let Some(Func {
            kind:
                Kind::Pf {
                    numvfs,
                    generation: g,
                    created,
                    ..
                },
            ..
        }) = self.funcs.get(pf)
        else {
            return Ok(());
        };
        if *g != generation || *created >= *numvfs {
            return Ok(());
        }
        let n = *numvfs;
        self.create_vfs(pf, n, "late VF creation")
    }

    fn enable_vfs(&mut self, pf: &str, n: u32, path: &str) -> Result<(), StoreError> {
        self.set_numvfs_only(pf, n).map_err(|e| eio(path, e))?;
        self.create_vfs(pf, n, path)
    }

    fn create_vfs(&mut self, pf: &str, n: u32, path: &str) -> Result<(), StoreError> {
        let pf_func = self.funcs[pf].clone();
        let Kind::Pf {
            autoprobe, created, ..
        } = pf_func.kind
        else {
            return Ok(());
        };
        let model = pf_func.model;
        let vf_device = model.vf_device.unwrap_or(0);
        for index in created..n {
            let vf = self
                .vf_addr(pf, index)
                .ok_or_else(|| err(libc::ENOMEM, path, "VF routing ID beyond bus ff"))?;
            let group = self.spec.iommu.then(|| self.alloc_group());
            let mut pci = PciFunction::ethernet(&vf, model.vendor, vf_device);
            pci.parent = self
                .tree
                .device_dir(pf)
                .and_then(|d| d.strip_prefix("sys/devices/"))
                .and_then(|d| d.rsplit_once('/'))
                .map(|(parent, _)| parent.to_string())
                .unwrap_or(pci.parent);
            pci.subsystem_device = model.subsystem_device;
            pci.numa_node = pf_func.numa;
            pci.iommu_group = group;
            self.tree.add_function(&pci).map_err(|e| eio(path, e))?;
            self.tree
                .link_vf(pf, index, &vf)
                .map_err(|e| eio(path, e))?;
            let dir = self.tree.device_dir(&vf).expect("just added").to_string();
            self.dir_to_addr.insert(dir.clone(), vf.clone());
            let func = Func {
                model,
                vendor: model.vendor,
                device: vf_device,
                kind: Kind::Vf {
                    pf: pf.to_string(),
                    index,
                },
                numa: pf_func.numa,
                group,
                driver: None,
                driver_override: None,
                netdev: None,
                rdma: None,
                dir: dir.clone(),
                children: Vec::new(),
            };
            let vars = self.pci_vars(&vf, &func, None);
            self.funcs.insert(vf.clone(), func);
            self.emit("add", Self::devpath(&dir), "pci", vars);
            if let Some(Func {
                kind: Kind::Pf { created, .. },
                ..
            }) = self.funcs.get_mut(pf)
            {
                *created = index + 1;
            }
            if autoprobe {
                self.probe(&vf)?;
            }
        }
        let pf_dir = pf_func.dir.clone();
        self.emit("change", Self::devpath(&pf_dir), "pci", vec![]);
        Ok(())
    }

    /// `echo 1 > <fn>/remove` (`pci_stop_and_remove_bus_device`): the
    /// driver's remove runs (a PF's disables its VFs first), then the
    /// function goes: its directory, links, IOMMU group, and a `remove`
    /// pci uevent. A removed PF comes back with `bus/pci/rescan`; a removed
    /// VF does not (VFs are not found by a bus scan; the PF's
    /// `sriov_numvfs` still counts it until SR-IOV is disabled).
    fn remove_function(&mut self, addr: &str) -> io::Result<()> {
        let to_io = |e: StoreError| io::Error::other(e.to_string());
        self.detach(addr).map_err(to_io)?;
        let Some(f) = self.funcs.get(addr).cloned() else {
            return Ok(());
        };
        match &f.kind {
            Kind::Pf { spec, created, .. } => {
                if *created > 0 {
                    // SR-IOV still on (the PF was not bound to its driver).
                    self.disable_vfs(addr)?;
                }
                self.removed.insert(*spec);
            }
            Kind::Vf { pf, index } => self.tree.unlink_vf(pf, *index)?,
        }
        self.forget_function(addr)
    }

    /// The last part of a function's removal, once no driver holds it: its
    /// directory and links, its IOMMU group (the number is free again), and
    /// the `remove` pci uevent.
    fn forget_function(&mut self, addr: &str) -> io::Result<()> {
        let Some(f) = self.funcs.remove(addr) else {
            return Ok(());
        };
        self.tree.remove_function(addr)?;
        if let Some(g) = f.group {
            self.tree
                .sink()
                .remove_all(&format!("sys/kernel/iommu_groups/{g}"))?;
            self.free_groups.insert(g);
        }
        self.dir_to_addr.remove(&f.dir);
        let vars = self.pci_vars(addr, &f, None);
        self.emit("remove", Self::devpath(&f.dir), "pci", vars);
        Ok(())
    }

    /// `echo 1 > bus/pci/rescan`: removed PFs are found again, in address
    /// order, each with an `add` pci uevent, then bound to the driver the
    /// node started them with (SR-IOV disabled, as after a hot-add).
    fn rescan(&mut self) -> io::Result<()> {
        let to_io = |e: StoreError| io::Error::other(e.to_string());
        let mut found: Vec<usize> = std::mem::take(&mut self.removed).into_iter().collect();
        found.sort_by(|a, b| self.spec.pfs[*a].address.cmp(&self.spec.pfs[*b].address));
        for i in found {
            let pf = self.spec.pfs[i].clone();
            self.add_pf(i, &pf)?;
            let f = self.funcs[&pf.address].clone();
            let vars = self.pci_vars(&pf.address, &f, None);
            self.emit("add", Self::devpath(&f.dir), "pci", vars);
            if let Some(driver) = pf.start_driver() {
                self.attach(&pf.address, driver).map_err(to_io)?;
            }
        }
        Ok(())
    }

    fn disable_vfs(&mut self, pf: &str) -> io::Result<()> {
        let Kind::Pf { created, .. } = self.funcs[pf].kind else {
            return Ok(());
        };
        let to_io = |e: StoreError| io::Error::other(e.to_string());
        for index in (0..created).rev() {
            let Some(vf) = self.vf_addr(pf, index) else {
                continue;
            };
            if !self.funcs.contains_key(&vf) {
                continue;
            }
            self.detach(&vf).map_err(to_io)?;
            self.tree.unlink_vf(pf, index)?;
            self.forget_function(&vf)?;
        }
        self.set_numvfs_only(pf, 0)?;
        if let Some(Func {
            kind: Kind::Pf { created, .. },
            ..
        }) = self.funcs.get_mut(pf)
        {
            *created = 0;
        }
        let dir = self.funcs[pf].dir.clone();
        self.emit("change", Self::devpath(&dir), "pci", vec![]);
        Ok(())
    }

    /// Binds `addr` to `driver` and runs the driver's probe: netdev, RDMA
    /// device or vfio group.
    fn attach(&mut self, addr: &str, driver: &str) -> Result<(), StoreError> {
        let path = format!("sys/bus/pci/drivers/{driver}/bind");
        self.tree.bind(addr, driver).map_err(|e| eio(&path, e))?;
        self.drivers.insert(driver.to_string());
        let mut f = self.funcs[addr].clone();
        f.driver = Some(driver.to_string());
        let m = f.model;
        let is_netdev_driver =
            driver != VFIO_PCI && (driver == m.pf_driver || Some(driver) == m.vf_driver);
        if is_netdev_driver {
            let (name, mac, speed, operstate) = match &f.kind {
                Kind::Pf { spec, .. } => {
                    let s = &self.spec.pfs[*spec];
                    (s.ifname.clone(), catalog::pf_mac(m, addr), m.speed, "up")
                }
                Kind::Vf { pf, index } => {
                    let Kind::Pf { spec, .. } = self.funcs[pf].kind else {
                        unreachable!("a VF's parent is a PF")
                    };
                    let pfname = &self.spec.pfs[spec].ifname;
                    (
                        format!("{pfname}v{index}"),
                        catalog::vf_mac(addr),
                        m.speed,
                        "down",
                    )
                }
            };
            let mtu = match &f.kind {
                Kind::Pf { spec, .. } => self.spec.pfs[*spec].mtu,
                Kind::Vf { .. } => 1500,
            };
            let mut backed = false;
            let ifindex = match self.backend.as_mut() {
                Some(b) => {
                    backed = true;
                    let what = if matches!(f.kind, Kind::Vf { .. }) {
                        "VF"
                    } else {
                        "PF"
                    };
                    b.create(&name, &mac, mtu, operstate == "up").map_err(|e| {
                        // The driver's probe failed: leave the device unbound.
                        let _ = self.tree.unbind(addr);
                        err(
                            backend_errno(&e),
                            &path,
                            format!("cannot create the veth {name} backing the {what}: {e}"),
                        )
                    })?
                }
                None => {
                    let i = self.next_ifindex;
                    self.next_ifindex += 1;
                    i
                }
            };
            let mut nd = Netdev::ethernet(&name, &mac, ifindex);
            nd.mtu = mtu;
            nd.speed = Some(speed);
            nd.operstate = operstate.into();
            if operstate == "down" {
                nd.carrier = None;
            }
            let subdir = m.netdev_subdir.unwrap_or("");
            self.tree
                .add_netdev_under(addr, subdir, &nd)
                .map_err(|e| eio(&path, e))?;
            let ndir = if subdir.is_empty() {
                format!("{}/net/{name}", f.dir)
            } else {
                format!("{}/{subdir}/net/{name}", f.dir)
            };
            self.netdev_dirs.insert(ndir.clone(), addr.to_string());
            self.emit(
                "add",
                Self::devpath(&ndir),
                "net",
                vec![
                    ("INTERFACE".into(), name.clone()),
                    ("IFINDEX".into(), ifindex.to_string()),
                ],
            );
            f.netdev = Some(NetdevState {
                shown: Some(name.clone()),
                name,
                dir: ndir,
                mtu,
                backed,
                operstate: operstate.into(),
                carrier: (operstate != "down").then_some(true),
            });
            if m.rdma {
                let rdma = format!("mlx5_{}", self.next_rdma);
                self.next_rdma += 1;
                self.tree.add_rdma(addr, &rdma).map_err(|e| eio(&path, e))?;
                self.emit(
                    "add",
                    Self::devpath(&format!("{}/infiniband/{rdma}", f.dir)),
                    "infiniband",
                    vec![("NAME".into(), rdma.clone())],
                );
                f.rdma = Some(rdma);
            }
            self.add_children(addr, &mut f, &path)?;
        }
        if driver == VFIO_PCI
            && let Some(g) = f.group
        {
            self.tree.add_vfio_group(g).map_err(|e| eio(&path, e))?;
            self.vfio_groups.insert(g);
            self.emit(
                "add",
                format!("/devices/virtual/vfio/{g}"),
                "vfio",
                vec![("DEVNAME".into(), format!("vfio/{g}"))],
            );
        }
        let vars = self.pci_vars(addr, &f, Some(driver));
        let dir = f.dir.clone();
        self.funcs.insert(addr.to_string(), f);
        self.emit("bind", Self::devpath(&dir), "pci", vars);
        Ok(())
    }

    /// A netdev driver's probe of `addr` creates its child devices: an mlx5
    /// PF with `sfs` gets its Ethernet auxiliary device and its scalable
    /// functions (each with a netdev), a VF listed in its PF's `vdpa` its
    /// vDPA device.
    fn add_children(&mut self, addr: &str, f: &mut Func, path: &str) -> Result<(), StoreError> {
        match f.kind.clone() {
            Kind::Pf { spec, .. } => {
                let ps = self.spec.pfs[spec].clone();
                if ps.sfs == 0 || f.model.pf_driver != "mlx5_core" {
                    return Ok(());
                }
                let id = Self::ida_alloc(&mut self.free_adev, &mut self.next_adev);
                let eth = format!("mlx5_core.eth.{id}");
                let c = self
                    .add_child(f, "auxiliary", &eth, "mlx5_core.eth", &[])
                    .map_err(|e| eio(path, e))?;
                f.children.push(c);
                // udev names SF netdevs after the PF's slot name plus
                // s<sfnum>: ens3f0np0 -> ens3f0s0
                let base = match ps.ifname.rfind("np") {
                    Some(i) if ps.ifname[i + 2..].bytes().all(|b| b.is_ascii_digit()) => {
                        &ps.ifname[..i]
                    }
                    _ => ps.ifname.as_str(),
                };
                for sfnum in 0..ps.sfs {
                    let id = Self::ida_alloc(&mut self.free_adev, &mut self.next_adev);
                    let name = format!("mlx5_core.sf.{id}");
                    let mut c = self
                        .add_child(
                            f,
                            "auxiliary",
                            &name,
                            "mlx5_core.sf",
                            &[("sfnum", format!("{sfnum}\n"))],
                        )
                        .map_err(|e| eio(path, e))?;
                    let ifname = format!("{base}s{sfnum}");
                    let ifindex = self.next_ifindex;
                    self.next_ifindex += 1;
                    let mut nd = Netdev::ethernet(&ifname, &catalog::vf_mac(&name), ifindex);
                    nd.speed = Some(f.model.speed);
                    nd.operstate = "down".into();
                    nd.carrier = None;
                    self.tree
                        .add_netdev_under(addr, &name, &nd)
                        .map_err(|e| eio(path, e))?;
                    self.emit(
                        "add",
                        Self::devpath(&format!("{}/net/{ifname}", c.dir)),
                        "net",
                        vec![
                            ("INTERFACE".into(), ifname.clone()),
                            ("IFINDEX".into(), ifindex.to_string()),
                        ],
                    );
                    c.netdev = Some(ifname);
                    // an SF is an mlx5 device of its own: it registers an
                    // RDMA device under it, as a PCI function does
                    let rdma = format!("mlx5_{}", self.next_rdma);
                    self.next_rdma += 1;
                    let idir = format!("{}/infiniband/{rdma}", c.dir);
                    let sink = self.tree.sink();
                    let io = |e| eio(path, e);
                    sink.mkdir_all(&idir).map_err(io)?;
                    sink.write_file(&format!("{idir}/node_type"), "1: CA\n", false)
                        .map_err(io)?;
                    sink.symlink(
                        &format!("sys/class/infiniband/{rdma}"),
                        &crate::tree::relative("sys/class/infiniband", &idir),
                    )
                    .map_err(io)?;
                    self.emit(
                        "add",
                        Self::devpath(&idir),
                        "infiniband",
                        vec![("NAME".into(), rdma.clone())],
                    );
                    c.rdma = Some(rdma);
                    f.children.push(c);
                }
            }
            Kind::Vf { pf, index } => {
                let Kind::Pf { spec, .. } = self.funcs[&pf].kind else {
                    return Ok(());
                };
                let Some(t) = self.spec.pfs[spec].vdpa.get(&index).cloned() else {
                    return Ok(());
                };
                let n = Self::ida_alloc(&mut self.free_vdpa, &mut self.next_vdpa);
                let name = format!("vdpa{n}");
                let driver = if t == "vhost" {
                    "vhost_vdpa"
                } else {
                    "virtio_vdpa"
                };
                let mut c = self
                    .add_child(f, "vdpa", &name, driver, &[])
                    .map_err(|e| eio(path, e))?;
                let sink = self.tree.sink();
                let io = |e| eio(path, e);
                if t == "vhost" {
                    // the vhost-vdpa char device (major 511 is dynamic on a
                    // real node)
                    let vd = format!("vhost-vdpa-{n}");
                    sink.mkdir_all(&format!("{}/{vd}", c.dir)).map_err(io)?;
                    sink.write_file(&format!("{}/{vd}/dev", c.dir), &format!("511:{n}\n"), false)
                        .map_err(io)?;
                    sink.write_file(&format!("dev/{vd}"), "", true)
                        .map_err(io)?;
                    c.devnode = Some(vd);
                } else {
                    sink.mkdir_all(&format!("{}/virtio{}", c.dir, n + 1))
                        .map_err(io)?;
                }
                f.children.push(c);
            }
        }
        Ok(())
    }

    /// Lays out a child device `name` of function `f` on `bus`, bound to
    /// `driver`: its directory with `files`, `subsystem` and `driver`
    /// links, the bus's `devices/<name>` link and the driver's link back;
    /// emits its add and bind uevents.
    fn add_child(
        &mut self,
        f: &Func,
        bus: &'static str,
        name: &str,
        driver: &str,
        files: &[(&str, String)],
    ) -> io::Result<ChildDev> {
        let dir = format!("{}/{name}", f.dir);
        let bdir = format!("sys/bus/{bus}");
        let ddir = format!("{bdir}/drivers/{driver}");
        let sink = self.tree.sink();
        sink.mkdir_all(&dir)?;
        sink.mkdir_all(&format!("{bdir}/devices"))?;
        sink.mkdir_all(&ddir)?;
        for (n, content) in files {
            sink.write_file(&format!("{dir}/{n}"), content, false)?;
        }
        sink.write_file(
            &format!("{dir}/uevent"),
            &format!("DRIVER={driver}\n"),
            true,
        )?;
        sink.symlink(
            &format!("{dir}/subsystem"),
            &crate::tree::relative(&dir, &bdir),
        )?;
        sink.symlink(
            &format!("{bdir}/devices/{name}"),
            &crate::tree::relative(&format!("{bdir}/devices"), &dir),
        )?;
        sink.symlink(
            &format!("{dir}/driver"),
            &crate::tree::relative(&dir, &ddir),
        )?;
        sink.symlink(
            &format!("{ddir}/{name}"),
            &crate::tree::relative(&ddir, &dir),
        )?;
        self.emit("add", Self::devpath(&dir), bus, vec![]);
        self.emit(
            "bind",
            Self::devpath(&dir),
            bus,
            vec![("DRIVER".into(), driver.to_string())],
        );
        Ok(ChildDev {
            bus,
            name: name.to_string(),
            dir,
            driver: driver.to_string(),
            netdev: None,
            devnode: None,
            rdma: None,
        })
    }

    /// The driver's remove deletes the child devices, newest first.
    fn remove_children(&mut self, addr: &str, f: &mut Func, path: &str) -> Result<(), StoreError> {
        while let Some(c) = f.children.pop() {
            let io = |e| eio(path, e);
            if let Some(nd) = &c.netdev {
                self.tree
                    .remove_netdev_under(addr, &c.name, nd)
                    .map_err(io)?;
                self.emit(
                    "remove",
                    Self::devpath(&format!("{}/net/{nd}", c.dir)),
                    "net",
                    vec![("INTERFACE".into(), nd.clone())],
                );
            }
            if let Some(r) = &c.rdma {
                self.emit(
                    "remove",
                    Self::devpath(&format!("{}/infiniband/{r}", c.dir)),
                    "infiniband",
                    vec![("NAME".into(), r.clone())],
                );
                self.tree
                    .sink()
                    .remove_all(&format!("sys/class/infiniband/{r}"))
                    .map_err(io)?;
            }
            let bdir = format!("sys/bus/{}", c.bus);
            let sink = self.tree.sink();
            if let Some(d) = &c.devnode {
                sink.remove_all(&format!("dev/{d}")).map_err(io)?;
            }
            sink.remove_all(&format!("{bdir}/drivers/{}/{}", c.driver, c.name))
                .map_err(io)?;
            sink.remove_all(&format!("{bdir}/devices/{}", c.name))
                .map_err(io)?;
            sink.remove_all(&c.dir).map_err(io)?;
            // the id goes back to its IDA: vdpa<N>, <driver>.<type>.<N>
            let (ida, id) = if c.bus == "vdpa" {
                (&mut self.free_vdpa, c.name.strip_prefix("vdpa"))
            } else {
                (&mut self.free_adev, c.name.rsplit_once('.').map(|(_, n)| n))
            };
            if let Some(id) = id.and_then(|n| n.parse::<u32>().ok()) {
                ida.insert(id);
            }
            self.emit(
                "unbind",
                Self::devpath(&c.dir),
                c.bus,
                vec![("DRIVER".into(), c.driver.clone())],
            );
            self.emit("remove", Self::devpath(&c.dir), c.bus, vec![]);
        }
        Ok(())
    }

    /// Makes sysfs follow backing interfaces that were moved to another
    /// network namespace (hidden, as the kernel hides them), brought back
    /// or renamed (shown under the new name, with their current address,
    /// MTU and operstate). Returns whether anything changed.
    pub fn refresh_netdevs(&mut self) -> bool {
        let Some(backend) = self.backend.as_mut() else {
            return false;
        };
        let mut changes = Vec::new();
        let mut oper = Vec::new();
        for (addr, f) in &self.funcs {
            let Some(nd) = f.netdev.as_ref().filter(|n| n.backed) else {
                continue;
            };
            match backend.locate(&nd.name) {
                Ok(loc) if loc.as_ref().map(|l| &l.name) != nd.shown.as_ref() => {
                    changes.push((addr.clone(), loc));
                }
                Ok(Some(l)) if l.operstate != nd.operstate => {
                    oper.push((addr.clone(), l.operstate));
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(netdev = %nd.name, error = %e, "cannot locate"),
            }
        }
        let changed = !changes.is_empty() || !oper.is_empty();
        for (addr, loc) in changes {
            if let Err(e) = self.show_netdev(&addr, loc) {
                tracing::warn!(function = %addr, error = %e, "cannot update the netdev in sysfs");
            }
        }
        for (addr, operstate) in oper {
            if let Err(e) = self.set_operstate(&addr, &operstate) {
                tracing::warn!(function = %addr, error = %e, "cannot update the operstate in sysfs");
            }
        }
        changed
    }

    /// Shows `operstate` for the netdev of `addr`, with `carrier` as the
    /// kernel shows it: `1` when up, `0` when the link is up but has no
    /// carrier, unreadable (absent here) when the link is down. No uevent:
    /// the kernel announces link state changes over rtnetlink only.
    fn set_operstate(&mut self, addr: &str, operstate: &str) -> io::Result<()> {
        let Some(nd) = self.funcs.get(addr).and_then(|f| f.netdev.clone()) else {
            return Ok(());
        };
        if nd.shown.is_none() {
            return Ok(());
        }
        let sink = self.tree.sink();
        sink.write_file(
            &format!("{}/operstate", nd.dir),
            &format!("{operstate}\n"),
            false,
        )?;
        let path = format!("{}/carrier", nd.dir);
        let carrier = match operstate {
            "up" => Some(true),
            "lowerlayerdown" | "dormant" => Some(false),
            _ => None,
        };
        match carrier {
            Some(c) => sink.write_file(&path, &format!("{}\n", u8::from(c)), true)?,
            None => sink.remove_all(&path)?,
        }
        if let Some(n) = self.funcs.get_mut(addr).and_then(|f| f.netdev.as_mut()) {
            n.operstate = operstate.to_string();
            n.carrier = carrier;
        }
        Ok(())
    }

    /// A write to a netdev's `carrier`: the drivers the simulator stands
    /// for implement `ndo_change_carrier`, as dummy and netdevsim do (real
    /// NIC drivers refuse it): tests pull the cable with `echo 0`. Carrier
    /// off shows `operstate` `down` and `carrier` `0`; on, `up` and `1`.
    fn store_carrier(
        &mut self,
        path: &str,
        addr: &str,
        data: &str,
    ) -> Result<StoreEffect, StoreError> {
        let on = parse_uint(data)
            .ok_or_else(|| err(libc::EINVAL, path, "carrier is not a number"))?
            != 0;
        let nd = self.funcs[addr]
            .netdev
            .clone()
            .expect("netdev dir maps to a netdev");
        if nd.backed {
            return Err(err(
                libc::EOPNOTSUPP,
                path,
                "a veth-backed netdev follows its veth's carrier",
            ));
        }
        if nd.carrier.is_none() {
            // netif_running() is false: the kernel answers EINVAL.
            return Err(err(libc::EINVAL, path, "the link is down"));
        }
        let sink = self.tree.sink();
        let state = if on { "up" } else { "down" };
        sink.write_file(
            &format!("{}/operstate", nd.dir),
            &format!("{state}\n"),
            false,
        )
        .and_then(|_| sink.write_file(path, &format!("{}\n", u8::from(on)), true))
        .map_err(|e| eio(path, e))?;
        if let Some(n) = self.funcs.get_mut(addr).and_then(|f| f.netdev.as_mut()) {
            n.operstate = state.to_string();
            n.carrier = Some(on);
        }
        Ok(StoreEffect::Done)
    }

    fn show_netdev(&mut self, addr: &str, loc: Option<LinkInfo>) -> io::Result<()> {
        let mut f = self.funcs[addr].clone();
        let Some(mut nd) = f.netdev.take() else {
            return Ok(());
        };
        let old_dir = nd.dir.clone();
        let old = nd.shown.take();
        if let Some(old) = &old {
            self.tree.remove_netdev_under(addr, "", old)?;
            self.netdev_dirs.remove(&old_dir);
            if loc.is_none() {
                self.emit(
                    "remove",
                    Self::devpath(&old_dir),
                    "net",
                    vec![("INTERFACE".into(), old.clone())],
                );
            }
        }
        if let Some(l) = loc {
            let mut n = Netdev::ethernet(&l.name, &l.mac, l.ifindex);
            n.mtu = l.mtu;
            n.speed = Some(f.model.speed);
            n.carrier = (l.operstate == "up").then_some(true);
            n.operstate = l.operstate.clone();
            self.tree.add_netdev(addr, &n)?;
            nd.dir = format!("{}/net/{}", f.dir, l.name);
            nd.mtu = l.mtu;
            nd.operstate = l.operstate;
            nd.carrier = n.carrier;
            self.netdev_dirs.insert(nd.dir.clone(), addr.to_string());
            let mut vars = vec![
                ("INTERFACE".into(), l.name.clone()),
                ("IFINDEX".into(), l.ifindex.to_string()),
            ];
            if old.is_some() {
                // Renamed where it is shown: the kernel's kobject_rename
                // sends `move` with the old path first.
                vars.insert(0, ("DEVPATH_OLD".into(), Self::devpath(&old_dir)));
                self.emit("move", Self::devpath(&nd.dir), "net", vars);
            } else {
                self.emit("add", Self::devpath(&nd.dir), "net", vars);
            }
            nd.shown = Some(l.name);
        } else {
            // The kernel keeps the empty `net` glue directory.
            self.tree.sink().mkdir_all(&format!("{}/net", f.dir))?;
        }
        f.netdev = Some(nd);
        self.funcs.insert(addr.to_string(), f);
        Ok(())
    }

    /// Unbinds `addr` and runs the driver's remove: a PF driver disables
    /// SR-IOV first; netdevs, RDMA devices and vfio groups go away.
    fn detach(&mut self, addr: &str) -> Result<(), StoreError> {
        let Some(f) = self.funcs.get(addr).cloned() else {
            return Ok(());
        };
        let Some(driver) = f.driver.clone() else {
            return Ok(());
        };
        let path = format!("sys/bus/pci/drivers/{driver}/unbind");
        if let Kind::Pf { created, .. } = f.kind
            && created > 0
            && driver == f.model.pf_driver
        {
            self.disable_vfs(addr).map_err(|e| eio(&path, e))?;
        }
        let mut f = self.funcs[addr].clone();
        self.remove_children(addr, &mut f, &path)?;
        if let Some(rdma) = f.rdma.take() {
            self.emit(
                "remove",
                Self::devpath(&format!("{}/infiniband/{rdma}", f.dir)),
                "infiniband",
                vec![("NAME".into(), rdma.clone())],
            );
            self.tree
                .sink()
                .remove_all(&format!("sys/class/infiniband/{rdma}"))
                .and_then(|()| {
                    ["infiniband", "infiniband_verbs", "infiniband_mad"]
                        .iter()
                        .try_for_each(|d| self.tree.sink().remove_all(&format!("{}/{d}", f.dir)))
                })
                .map_err(|e| eio(&path, e))?;
        }
        if let Some(nd) = f.netdev.take() {
            if nd.backed
                && let Some(b) = self.backend.as_mut()
                && let Err(e) = b.delete(&nd.name)
            {
                tracing::warn!(netdev = %nd.name, error = %e, "cannot delete the backing veth");
            }
            let subdir = f.model.netdev_subdir.unwrap_or("");
            if let Some(shown) = &nd.shown {
                self.tree
                    .remove_netdev_under(addr, subdir, shown)
                    .map_err(|e| eio(&path, e))?;
                self.netdev_dirs.remove(&nd.dir);
                self.emit(
                    "remove",
                    Self::devpath(&nd.dir),
                    "net",
                    vec![("INTERFACE".into(), shown.clone())],
                );
            }
            // The `net` glue directory (or the virtio child device) goes
            // with the last netdev.
            let glue = if subdir.is_empty() {
                format!("{}/net", f.dir)
            } else {
                format!("{}/{subdir}", f.dir)
            };
            self.tree
                .sink()
                .remove_all(&glue)
                .map_err(|e| eio(&path, e))?;
        }
        if driver == VFIO_PCI
            && let Some(g) = f.group
            && self.vfio_groups.remove(&g)
        {
            self.tree.remove_vfio_group(g).map_err(|e| eio(&path, e))?;
            self.emit(
                "remove",
                format!("/devices/virtual/vfio/{g}"),
                "vfio",
                vec![("DEVNAME".into(), format!("vfio/{g}"))],
            );
        }
        self.tree.unbind(addr).map_err(|e| eio(&path, e))?;
        f.driver = None;
        let vars = self.pci_vars(addr, &f, None);
        let dir = f.dir.clone();
        self.funcs.insert(addr.to_string(), f);
        self.emit("unbind", Self::devpath(&dir), "pci", vars);
        Ok(())
    }
}

/// `proc/net/route` for a node: a default route through its first
/// non-SR-IOV NIC (the management interface), so route-based "is this
/// interface in use" checks see it as active.
pub fn proc_net_route(spec: &NodeSpec) -> String {
    let mut s = String::from(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n",
    );
    if let Some(pf) = spec.pfs.iter().find(|p| !p.nic().has_sriov()) {
        s.push_str(&format!(
            "{}\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n",
            pf.ifname
        ));
        s.push_str(&format!(
            "{}\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n",
            pf.ifname
        ));
    }
    s
}

/// Writes the static tree of `spec` under `root` (`sys/`, `dev/vfio/`,
/// `proc/net/route`).
pub fn write_static_tree(root: &std::path::Path, spec: &NodeSpec) -> io::Result<()> {
    let sink = crate::tree::DiskSink::new(root);
    let k = SimKernel::boot(sink, spec.clone(), None)?;
    drop(k);
    let proc_net = root.join("proc/net");
    std::fs::create_dir_all(&proc_net)?;
    std::fs::write(proc_net.join("route"), proc_net_route(spec))?;
    if spec.pfs.iter().any(|p| p.ddp_profile.is_some()) {
        crate::ddptool::write(root, spec)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_follows_kstrto() {
        assert_eq!(parse_uint("4\n"), Some(4));
        assert_eq!(parse_uint("0x10"), Some(16));
        assert_eq!(parse_uint("010"), Some(8));
        assert_eq!(parse_uint("abc"), None);
        assert_eq!(parse_uint("4 \n"), None);
        assert_eq!(parse_uint(""), None);
        assert_eq!(parse_bool("on\n"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("x"), None);
    }

    #[test]
    fn mixed_static_tree_has_the_kernel_layout() {
        let tmp = tempfile::tempdir().unwrap();
        write_static_tree(tmp.path(), &NodeSpec::mixed()).unwrap();
        let sys = tmp.path().join("sys");
        let pf = sys.join("bus/pci/devices/0000:3b:00.0");
        assert_eq!(
            std::fs::read_to_string(pf.join("sriov_numvfs")).unwrap(),
            "4\n"
        );
        assert_eq!(
            std::fs::read_to_string(pf.join("sriov_offset")).unwrap(),
            "16\n"
        );
        let vf0 = std::fs::canonicalize(pf.join("virtfn0")).unwrap();
        assert!(vf0.ends_with("0000:3b:02.0"), "{vf0:?}");
        assert!(vf0.join("net/ens1f0v0/address").exists());
        assert!(
            std::fs::read_link(vf0.join("driver"))
                .unwrap()
                .ends_with("iavf")
        );
        assert_eq!(
            std::fs::read_to_string(vf0.join("numa_node")).unwrap(),
            "0\n"
        );
        let cx = sys.join("bus/pci/devices/0000:af:00.0");
        assert!(cx.join("infiniband").read_dir().unwrap().next().is_some());
        let cxvf = std::fs::canonicalize(cx.join("virtfn1")).unwrap();
        assert!(cxvf.ends_with("0000:af:00.3"), "{cxvf:?}");
        assert!(cxvf.join("net/ens3f0np0v1").exists());
        assert!(sys.join("class/net/enp0s3").exists());
        assert!(
            std::fs::read_to_string(tmp.path().join("proc/net/route"))
                .unwrap()
                .contains("enp0s3\t00000000")
        );
        // Every function has its own IOMMU group.
        let groups = std::fs::read_dir(sys.join("kernel/iommu_groups"))
            .unwrap()
            .count();
        assert_eq!(groups, 6 + 4 + 2);
    }

    #[test]
    fn gpu_static_tree_places_functions_behind_switches() {
        let tmp = tempfile::tempdir().unwrap();
        write_static_tree(tmp.path(), &NodeSpec::gpu()).unwrap();
        let sys = tmp.path().join("sys");
        let target = |a: &str| {
            std::fs::read_link(sys.join("bus/pci/devices").join(a))
                .unwrap()
                .to_string_lossy()
                .into_owned()
        };
        assert_eq!(
            target("0000:19:00.0"),
            "../../../devices/pci0000:16/0000:16:01.0/0000:17:00.0/0000:18:00.0/0000:19:00.0"
        );
        assert_eq!(
            target("0000:1b:00.0"),
            "../../../devices/pci0000:16/0000:16:01.0/0000:17:00.0/0000:18:02.0/0000:1b:00.0"
        );
        // VFs sit next to their PF, below the same switch.
        let vf = std::fs::read_link(sys.join("bus/pci/devices/0000:1b:00.0/virtfn0")).unwrap();
        assert_eq!(vf.to_string_lossy(), "../0000:1b:00.2");
        assert!(target("0000:1b:00.2").contains("/0000:18:02.0/0000:1b:00.2"));
        assert_eq!(
            target("0000:1c:00.0"),
            "../../../devices/pci0000:16/0000:16:02.0/0000:1c:00.0"
        );
        assert_eq!(
            target("0000:31:00.0"),
            "../../../devices/pci0000:30/0000:30:00.0/0000:31:00.0"
        );
        let gpu = sys.join("bus/pci/devices/0000:9a:00.0");
        assert_eq!(
            std::fs::read_to_string(gpu.join("class")).unwrap(),
            "0x030200\n"
        );
        assert_eq!(
            std::fs::read_to_string(gpu.join("vendor")).unwrap(),
            "0x10de\n"
        );
        assert_eq!(
            std::fs::read_to_string(gpu.join("numa_node")).unwrap(),
            "1\n"
        );
        assert!(
            std::fs::read_link(gpu.join("driver"))
                .unwrap()
                .ends_with("nvidia")
        );
        let port = sys.join("bus/pci/devices/0000:98:00.0");
        assert_eq!(
            std::fs::read_to_string(port.join("class")).unwrap(),
            "0x060400\n"
        );
        let root_port = sys.join("bus/pci/devices/0000:16:01.0");
        assert_eq!(
            std::fs::read_to_string(root_port.join("class")).unwrap(),
            "0x060400\n"
        );
    }

    #[test]
    fn topology_validation() {
        let mut spec = NodeSpec::gpu();
        spec.gpus[0].model = "v100x".into();
        assert!(
            spec.validate()
                .unwrap_err()
                .to_string()
                .contains("unknown model")
        );
        let mut spec = NodeSpec::gpu();
        spec.gpus[0].address = "0000:1b:00.0".into();
        assert!(
            spec.validate()
                .unwrap_err()
                .to_string()
                .contains("appears twice")
        );
        let mut spec = NodeSpec::gpu();
        spec.pfs[0].behind = Some("0000:17:00.0".into());
        assert!(
            spec.validate()
                .unwrap_err()
                .to_string()
                .contains("upstream port")
        );
        let mut spec = NodeSpec::gpu();
        spec.switches[0].behind = "0000:18:00.0".into();
        assert!(spec.validate().unwrap_err().to_string().contains("cycle"));
        let mut spec = NodeSpec::gpu();
        spec.pfs[1].behind = Some("0000:19:00.0".into());
        assert!(
            spec.validate()
                .unwrap_err()
                .to_string()
                .contains("not a bridge")
        );
        let yaml = r#"
name: tiny
pfs:
  - {model: e810, address: "0000:03:00.0", ifname: ens1f0, vfs: 2, behind: "0000:02:01.0"}
switches:
  - {behind: "0000:00:01.0", upstream: "0000:01:00.0", downstream: ["0000:02:00.0", "0000:02:01.0"]}
gpus:
  - {model: a100, address: "0000:04:00.0", behind: "0000:02:00.0"}
"#;
        let spec = NodeSpec::from_yaml(yaml, "test").unwrap();
        assert_eq!(
            spec.bridge_dir("0000:02:01.0").unwrap(),
            "pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:01.0"
        );
    }

    /// The kernel semantics without FUSE (runs without root).
    #[test]
    fn sfs_and_vdpa_devices_follow_their_drivers() {
        use crate::memfs::MemFs;
        let mut spec = NodeSpec::mixed();
        spec.pfs[3].sfs = 2;
        spec.pfs[3].vdpa = [(0, "vhost".to_string()), (1, "virtio".to_string())].into();
        let mut k = SimKernel::boot(MemFs::new(), spec, None).unwrap();
        let fs = k.sink().clone();
        let pf = k.funcs["0000:af:00.0"].dir.clone();
        for p in [
            format!("{pf}/mlx5_core.eth.0"),
            format!("{pf}/mlx5_core.sf.1/sfnum"),
            format!("{pf}/mlx5_core.sf.2/net/ens3f0s1/type"),
            format!("{pf}/mlx5_core.sf.2/infiniband"),
            "sys/bus/auxiliary/devices/mlx5_core.sf.2".into(),
            "sys/bus/auxiliary/drivers/mlx5_core.sf/mlx5_core.sf.1".into(),
            "sys/class/net/ens3f0s0".into(),
            "sys/bus/vdpa/devices/vdpa0".into(),
            "sys/bus/vdpa/drivers/virtio_vdpa/vdpa1".into(),
            "dev/vhost-vdpa-0".into(),
        ] {
            assert!(fs.resolve(&p).is_some(), "{p}");
        }
        let vf0 = k.funcs["0000:af:00.2"].dir.clone();
        assert!(
            fs.resolve(&format!("{vf0}/vdpa0/vhost-vdpa-0/dev"))
                .is_some()
        );
        // PF unbound: VFs, vDPA devices and SFs go, with uevents
        k.store("sys/bus/pci/drivers/mlx5_core/unbind", "0000:af:00.0")
            .unwrap();
        let fs = k.sink().clone();
        for p in [
            "sys/bus/auxiliary/devices/mlx5_core.sf.1",
            "sys/class/net/ens3f0s0",
            "sys/bus/vdpa/devices/vdpa0",
            "dev/vhost-vdpa-0",
        ] {
            assert!(fs.resolve(p).is_none(), "{p}");
        }
        let ev = k.take_events();
        let count = |action: &str, subsystem: &str| {
            ev.iter()
                .filter(|e| e.action == action && e.subsystem == subsystem)
                .count()
        };
        assert_eq!(count("remove", "auxiliary"), 3);
        assert_eq!(count("remove", "vdpa"), 2);
        // bound again: the same names (ids are reused)
        k.store("sys/bus/pci/drivers/mlx5_core/bind", "0000:af:00.0")
            .unwrap();
        let fs = k.sink().clone();
        assert!(
            fs.resolve("sys/bus/auxiliary/devices/mlx5_core.sf.1")
                .is_some()
        );
        assert_eq!(
            k.take_events()
                .iter()
                .filter(|e| e.action == "add" && e.subsystem == "auxiliary")
                .count(),
            3
        );
    }

    #[test]
    fn store_semantics_and_errnos_in_memory() {
        use crate::memfs::MemFs;
        let mut k = SimKernel::boot(MemFs::new(), NodeSpec::mixed(), None).unwrap();
        let pf = k.funcs["0000:3b:00.1"].dir.clone();
        let numvfs = format!("{pf}/sriov_numvfs");
        let errno = |r: Result<StoreEffect, StoreError>| r.unwrap_err().errno;
        assert_eq!(errno(k.store(&numvfs, "x")), libc::EINVAL);
        assert_eq!(errno(k.store(&numvfs, "129")), libc::ERANGE);
        assert_eq!(errno(k.store(&numvfs, "70000")), libc::EINVAL);
        assert_eq!(k.store(&numvfs, "2\n").unwrap(), StoreEffect::Done);
        assert_eq!(errno(k.store(&numvfs, "3")), libc::EBUSY);
        assert_eq!(k.driver_of("0000:3b:12.1"), Some("iavf"));
        let events: Vec<String> = k
            .take_events()
            .iter()
            .map(|e| format!("{} {}", e.action, e.subsystem))
            .collect();
        assert_eq!(
            events,
            [
                "add pci",
                "add net",
                "bind pci",
                "add pci",
                "add net",
                "bind pci",
                "change pci"
            ]
        );
        let fs = k.sink().clone();
        assert!(fs.resolve("sys/class/net/ens1f1v1").is_some());
        let bind = "sys/bus/pci/drivers/vfio-pci/bind";
        assert_eq!(errno(k.store(bind, "0000:3b:12.0")), libc::ENODEV);
        let vf_dir = k.funcs["0000:3b:12.0"].dir.clone();
        k.store(&format!("{vf_dir}/driver_override"), "vfio-pci\n")
            .unwrap();
        assert_eq!(errno(k.store(bind, "0000:3b:12.0")), libc::EBUSY);
        k.store("sys/bus/pci/drivers/iavf/unbind", "0000:3b:12.0")
            .unwrap();
        k.store(bind, "0000:3b:12.0").unwrap();
        let g = k.funcs["0000:3b:12.0"].group.unwrap();
        assert!(k.sink().resolve(&format!("dev/vfio/{g}")).is_some());
        assert!(k.sink().resolve("sys/class/net/ens1f1v0").is_none());
        k.store(&numvfs, "0").unwrap();
        assert!(k.sink().resolve(&format!("dev/vfio/{g}")).is_none());
        assert!(k.sink().resolve(&vf_dir).is_none());
        assert_eq!(
            errno(k.store(&format!("{pf}/vendor"), "1")),
            libc::EOPNOTSUPP
        );
        // Without a PF driver: ENOENT.
        k.store("sys/bus/pci/drivers/ice/unbind", "0000:3b:00.1")
            .unwrap();
        assert_eq!(errno(k.store(&numvfs, "1")), libc::ENOENT);
    }

    /// The content of a file in the in-memory tree, `None` when absent.
    fn read_mem(k: &mut SimKernel<crate::memfs::MemFs>, path: &str) -> Option<String> {
        let fs = k.sink();
        let ino = fs.resolve(path)?;
        match &fs.get(ino)?.kind {
            crate::memfs::NodeKind::File { content, .. } => Some(content.clone()),
            other => panic!("{path} is not a file: {other:?}"),
        }
    }

    fn actions(k: &mut SimKernel<crate::memfs::MemFs>) -> Vec<String> {
        k.take_events()
            .iter()
            .map(|e| format!("{} {} {}", e.action, e.subsystem, e.devpath))
            .collect()
    }

    #[test]
    fn remove_and_rescan_follow_the_kernel() {
        use crate::memfs::MemFs;
        let mut k = SimKernel::boot(MemFs::new(), NodeSpec::mixed(), None).unwrap();
        let errno = |r: Result<StoreEffect, StoreError>| r.unwrap_err().errno;
        let pf = k.funcs["0000:3b:00.0"].dir.clone();
        let pf_group = k.funcs["0000:3b:00.0"].group.unwrap();
        assert_eq!(errno(k.store(&format!("{pf}/remove"), "x")), libc::EINVAL);
        k.store(&format!("{pf}/remove"), "0").unwrap();
        assert!(k.sink().resolve(&pf).is_some(), "0 removes nothing");

        // A PF: its VFs go first (unbind, remove), then the PF itself.
        k.store(&format!("{pf}/remove"), "1\n").unwrap();
        let ev = actions(&mut k);
        assert_eq!(
            ev.iter().filter(|e| e.starts_with("remove pci")).count(),
            5,
            "{ev:#?}"
        );
        assert!(
            ev.last()
                .unwrap()
                .starts_with(&format!("remove pci /{}", pf.trim_start_matches("sys/"))),
            "{ev:#?}"
        );
        assert!(
            ev.iter()
                .any(|e| e.starts_with("unbind pci") && e.ends_with("0000:3b:00.0")),
            "{ev:#?}"
        );
        for gone in [
            "sys/bus/pci/devices/0000:3b:00.0",
            "sys/bus/pci/devices/0000:3b:02.0",
            "sys/class/net/ens1f0",
            "sys/class/net/ens1f0v0",
            "sys/bus/pci/drivers/ice/0000:3b:00.0",
            pf.as_str(),
        ] {
            assert!(k.sink().resolve(gone).is_none(), "{gone} still there");
        }
        assert!(
            k.sink()
                .resolve(&format!("sys/kernel/iommu_groups/{pf_group}"))
                .is_none()
        );
        assert!(!k.functions().contains(&"0000:3b:00.0".to_string()));

        // A VF: gone, its virtfn link too; the PF still counts it.
        let cx = k.funcs["0000:af:00.0"].dir.clone();
        let vf1 = k.vf_addr("0000:af:00.0", 1).unwrap();
        let vf1_dir = k.funcs[&vf1].dir.clone();
        k.take_events();
        k.store(&format!("{vf1_dir}/remove"), "1").unwrap();
        let ev = actions(&mut k);
        assert!(ev.last().unwrap().starts_with("remove pci"), "{ev:#?}");
        assert!(k.sink().resolve(&vf1_dir).is_none());
        assert!(k.sink().resolve(&format!("{cx}/virtfn1")).is_none());
        assert!(k.sink().resolve(&format!("{cx}/virtfn0")).is_some());
        assert_eq!(
            read_mem(&mut k, &format!("{cx}/sriov_numvfs")).unwrap(),
            "2\n"
        );

        // Rescan: the PF is found again, bound to its driver, SR-IOV off;
        // the removed VF is not (a bus scan does not find VFs).
        k.store("sys/bus/pci/rescan", "1").unwrap();
        let ev = actions(&mut k);
        let pf_path = format!("/{}", pf.trim_start_matches("sys/"));
        assert_eq!(
            ev,
            [
                format!("add pci {pf_path}"),
                format!("add net {pf_path}/net/ens1f0"),
                format!("bind pci {pf_path}"),
            ]
        );
        assert_eq!(
            read_mem(&mut k, &format!("{pf}/sriov_numvfs")).unwrap(),
            "0\n"
        );
        assert!(k.sink().resolve("sys/class/net/ens1f0").is_some());
        assert_eq!(k.driver_of("0000:3b:00.0"), Some("ice"));
        assert!(k.sink().resolve(&vf1_dir).is_none());
        // SR-IOV works on the PF found again, and off on the one with a
        // removed VF.
        k.store(&format!("{pf}/sriov_numvfs"), "2").unwrap();
        assert_eq!(k.driver_of("0000:3b:02.1"), Some("iavf"));
        k.store(&format!("{cx}/sriov_numvfs"), "0").unwrap();
        assert!(k.sink().resolve(&format!("{cx}/virtfn0")).is_none());
        // A second rescan finds nothing new.
        k.take_events();
        k.store("sys/bus/pci/rescan", "1").unwrap();
        assert!(actions(&mut k).is_empty());
    }

    #[test]
    fn carrier_writes_change_operstate_without_uevents() {
        use crate::memfs::MemFs;
        let mut k = SimKernel::boot(MemFs::new(), NodeSpec::mixed(), None).unwrap();
        let errno = |r: Result<StoreEffect, StoreError>| r.unwrap_err().errno;
        let net = "sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.1/net/ens1f1";
        let net = if k.sink().resolve(net).is_some() {
            net.to_string()
        } else {
            format!("{}/net/ens1f1", k.funcs["0000:3b:00.1"].dir)
        };
        assert_eq!(read_mem(&mut k, &format!("{net}/carrier")).unwrap(), "1\n");
        k.store(&format!("{net}/carrier"), "0\n").unwrap();
        assert_eq!(read_mem(&mut k, &format!("{net}/carrier")).unwrap(), "0\n");
        assert_eq!(
            read_mem(&mut k, &format!("{net}/operstate")).unwrap(),
            "down\n"
        );
        k.store(&format!("{net}/carrier"), "1").unwrap();
        assert_eq!(
            read_mem(&mut k, &format!("{net}/operstate")).unwrap(),
            "up\n"
        );
        assert_eq!(
            errno(k.store(&format!("{net}/carrier"), "up")),
            libc::EINVAL
        );
        assert!(
            k.take_events().is_empty(),
            "the kernel sends no uevent for carrier"
        );
        // A VF netdev that is down: no carrier to change (EINVAL, as
        // netif_running() is false).
        let vf = format!("{}/net/ens1f0v0", k.funcs["0000:3b:02.0"].dir);
        assert!(read_mem(&mut k, &format!("{vf}/carrier")).is_none());
        assert_eq!(errno(k.store(&format!("{vf}/carrier"), "1")), libc::EINVAL);
    }

    /// A backend standing for veths a test moves, renames and sets up.
    #[derive(Clone, Default)]
    struct FakeBackend(std::sync::Arc<std::sync::Mutex<BTreeMap<String, Option<LinkInfo>>>>);

    impl NetdevBackend for FakeBackend {
        fn create(&mut self, name: &str, mac: &str, mtu: u32, up: bool) -> io::Result<u32> {
            let mut m = self.0.lock().unwrap();
            let ifindex = 100 + m.len() as u32;
            m.insert(
                name.into(),
                Some(LinkInfo {
                    name: name.into(),
                    ifindex,
                    mac: mac.into(),
                    mtu,
                    operstate: if up { "up" } else { "down" }.into(),
                }),
            );
            Ok(ifindex)
        }
        fn delete(&mut self, name: &str) -> io::Result<()> {
            self.0.lock().unwrap().remove(name);
            Ok(())
        }
        fn set_mtu(&mut self, _: &str, _: u32) -> io::Result<()> {
            Ok(())
        }
        fn delete_all(&mut self) {
            self.0.lock().unwrap().clear();
        }
        fn locate(&mut self, name: &str) -> io::Result<Option<LinkInfo>> {
            Ok(self.0.lock().unwrap().get(name).cloned().flatten())
        }
    }

    #[test]
    fn backed_netdevs_renamed_send_move_and_follow_operstate() {
        use crate::memfs::MemFs;
        let backend = FakeBackend::default();
        let mut k = SimKernel::boot(
            MemFs::new(),
            NodeSpec::mixed(),
            Some(Box::new(backend.clone())),
        )
        .unwrap();
        let vf_dir = k.funcs["0000:3b:02.0"].dir.clone();
        let edit = |f: &dyn Fn(&mut LinkInfo)| {
            let mut m = backend.0.lock().unwrap();
            f(m.get_mut("ens1f0v0").unwrap().as_mut().unwrap());
        };
        // Renamed in place: one `move` with the old path, sysfs under the
        // new name.
        edit(&|l| l.name = "data0".into());
        assert!(k.refresh_netdevs());
        let ev = k.take_events();
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0].action, "move");
        assert_eq!(
            ev[0].devpath,
            format!("/{}/net/data0", vf_dir.trim_start_matches("sys/"))
        );
        assert_eq!(
            ev[0].vars[0],
            (
                "DEVPATH_OLD".to_string(),
                format!("/{}/net/ens1f0v0", vf_dir.trim_start_matches("sys/"))
            )
        );
        assert!(
            ev[0]
                .vars
                .iter()
                .any(|(k, v)| k == "INTERFACE" && v == "data0")
        );
        assert!(k.sink().resolve("sys/class/net/data0").is_some());
        assert!(k.sink().resolve("sys/class/net/ens1f0v0").is_none());
        // Set up with carrier: operstate and carrier follow, no uevent.
        edit(&|l| l.operstate = "up".into());
        assert!(k.refresh_netdevs());
        assert!(k.take_events().is_empty());
        let net = format!("{vf_dir}/net/data0");
        assert_eq!(
            read_mem(&mut k, &format!("{net}/operstate")).unwrap(),
            "up\n"
        );
        assert_eq!(read_mem(&mut k, &format!("{net}/carrier")).unwrap(), "1\n");
        edit(&|l| l.operstate = "lowerlayerdown".into());
        assert!(k.refresh_netdevs());
        assert_eq!(read_mem(&mut k, &format!("{net}/carrier")).unwrap(), "0\n");
        // A veth-backed netdev follows its veth: writing carrier is refused.
        let errno = k.store(&format!("{net}/carrier"), "1").unwrap_err().errno;
        assert_eq!(errno, libc::EOPNOTSUPP);
        edit(&|l| l.operstate = "down".into());
        assert!(k.refresh_netdevs());
        assert!(read_mem(&mut k, &format!("{net}/carrier")).is_none());
        // Gone to another namespace: `remove`; back: `add`.
        backend.0.lock().unwrap().insert("ens1f0v0".into(), None);
        assert!(k.refresh_netdevs());
        let ev: Vec<String> = k.take_events().iter().map(|e| e.action.clone()).collect();
        assert_eq!(ev, ["remove"]);
        assert!(!k.refresh_netdevs(), "nothing changed since");
    }

    /// `write_delay_ms` delays the writes named, about the PF or its VFs
    /// only; `numvfs_delay_ms` stays a PF `sriov_numvfs` delay.
    #[test]
    fn write_delays_apply_to_the_pf_and_its_vfs() {
        use crate::memfs::MemFs;
        let mut spec = NodeSpec::mixed();
        let faults = &mut spec
            .pfs
            .iter_mut()
            .find(|p| p.address == "0000:3b:00.1")
            .unwrap()
            .faults;
        faults.numvfs_delay_ms = 7;
        faults.write_delay_ms = [("mtu", 5), ("drivers_probe", 9), ("unbind", 3)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let mut k = SimKernel::boot(MemFs::new(), spec, None).unwrap();
        let pf = k.funcs["0000:3b:00.1"].dir.clone();
        k.store(&format!("{pf}/sriov_numvfs"), "2").unwrap();
        let ms = |d: Option<Duration>| d.map(|d| d.as_millis() as u64);
        assert_eq!(
            ms(k.write_delay(&format!("{pf}/sriov_numvfs"), "0")),
            Some(7)
        );
        let vf = &k.funcs["0000:3b:12.0"];
        let vf_net = vf.netdev.as_ref().unwrap().dir.clone();
        let vf_dir = vf.dir.clone();
        let pf_net = k.funcs["0000:3b:00.1"].netdev.as_ref().unwrap().dir.clone();
        assert_eq!(ms(k.write_delay(&format!("{pf_net}/mtu"), "9000")), Some(5));
        assert_eq!(ms(k.write_delay(&format!("{vf_net}/mtu"), "9000")), Some(5));
        assert_eq!(
            ms(k.write_delay("sys/bus/pci/drivers_probe", "0000:3b:12.0\n")),
            Some(9)
        );
        assert_eq!(
            ms(k.write_delay("sys/bus/pci/drivers/iavf/unbind", "0000:3b:12.0")),
            Some(3)
        );
        // Not listed, or about another PF: no delay.
        assert_eq!(
            ms(k.write_delay(&format!("{vf_dir}/driver_override"), "x")),
            None
        );
        assert_eq!(
            ms(k.write_delay("sys/bus/pci/drivers_probe", "0000:3b:00.0")),
            None
        );
        assert_eq!(ms(k.write_delay("sys/bus/pci/drivers_probe", "junk")), None);
    }

    /// Every PCI function has the kernel's `uevent` file: `DRIVER=` while
    /// bound, then `pci_uevent`'s variables; it follows binds.
    #[test]
    fn pci_uevent_files_follow_the_driver() {
        use crate::memfs::MemFs;
        let tmp = tempfile::tempdir().unwrap();
        write_static_tree(tmp.path(), &NodeSpec::mixed()).unwrap();
        let pf =
            std::fs::read_to_string(tmp.path().join("sys/bus/pci/devices/0000:3b:00.0/uevent"))
                .unwrap();
        assert_eq!(
            pf,
            "DRIVER=ice\nPCI_CLASS=20000\nPCI_ID=8086:159B\nPCI_SUBSYS_ID=8086:0003\n\
             PCI_SLOT_NAME=0000:3b:00.0\n\
             MODALIAS=pci:v00008086d0000159Bsv00008086sd00000003bc02sc00i00\n"
        );
        let mut k = SimKernel::boot(MemFs::new(), NodeSpec::mixed(), None).unwrap();
        let pf = k.funcs["0000:3b:00.1"].dir.clone();
        k.store(&format!("{pf}/sriov_numvfs"), "1").unwrap();
        let vf = k.funcs["0000:3b:12.0"].dir.clone();
        let read = |k: &mut SimKernel<MemFs>| {
            let fs = k.sink();
            let ino = fs.resolve(&format!("{vf}/uevent")).expect("VF uevent file");
            match &fs.get(ino).unwrap().kind {
                crate::memfs::NodeKind::File { content, .. } => content.clone(),
                other => panic!("not a file: {other:?}"),
            }
        };
        let bound = read(&mut k);
        assert!(
            bound.starts_with("DRIVER=iavf\nPCI_CLASS=20000\nPCI_ID=8086:1889\n"),
            "{bound}"
        );
        k.store("sys/bus/pci/drivers/iavf/unbind", "0000:3b:12.0")
            .unwrap();
        let unbound = read(&mut k);
        assert!(unbound.starts_with("PCI_CLASS=20000\n"), "{unbound}");
        assert!(unbound.contains("PCI_SLOT_NAME=0000:3b:12.0\n"));
    }

    /// The YAML example in docs/simulator.md is a valid node.
    #[test]
    fn the_documented_yaml_example_parses() {
        let doc = include_str!("../../docs/simulator.md");
        let start = doc.find("```yaml\n").expect("a yaml block") + 8;
        let end = start + doc[start..].find("```").unwrap();
        let spec = NodeSpec::from_yaml(&doc[start..end], "docs/simulator.md").unwrap();
        assert_eq!(spec.pfs[0].vf_drivers[&1], "vfio-pci");
        let tmp = tempfile::tempdir().unwrap();
        write_static_tree(tmp.path(), &spec).unwrap();
    }

    #[test]
    fn vf_drivers_per_index_bind_vfio() {
        let yaml = "pfs: [{model: e810, address: '0000:3b:00.0', ifname: p0, vfs: 2, vf_drivers: {1: vfio-pci}}]";
        let spec = NodeSpec::from_yaml(yaml, "t").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        write_static_tree(tmp.path(), &spec).unwrap();
        let vf1 = tmp.path().join("sys/bus/pci/devices/0000:3b:02.1");
        assert!(
            std::fs::read_link(vf1.join("driver"))
                .unwrap()
                .ends_with("vfio-pci")
        );
        assert!(!vf1.join("net").join("p0v1").exists());
        let g = std::fs::read_link(vf1.join("iommu_group")).unwrap();
        let g = g.file_name().unwrap().to_str().unwrap();
        assert!(tmp.path().join("dev/vfio").join(g).exists());
    }
}
