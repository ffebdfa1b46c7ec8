//! PCIe topology: where each PCI function sits (PCIe root, root port,
//! nearest PCIe switch, NUMA node) and how far it is from every GPU.
//!
//! Everything comes from the sysfs ancestry of a function: the link
//! `/sys/bus/pci/devices/<BDF>` points into `/sys/devices`, e.g.
//! `../../../devices/pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:00.0/0000:03:00.0`,
//! and the path names the host bridge (`pci0000:00`, the PCIe root), the
//! root port (`0000:00:01.0`), then every bridge down to the function. A VF
//! sits next to its PF, so it has its PF's ancestry.
//!
//! Bridges are classified by position, as the PCIe hierarchy forces: the
//! first bridge below the host bridge is the root port; below it, a PCIe
//! switch shows as a pair, its upstream port then one of its downstream
//! ports. A chain `root port, up, down, up, down` is two switches, the
//! second one nearest. A bridge left over at the end (a PCIe-to-PCI bridge)
//! is kept in [`PcieLocation::bridges`] but is not a switch. A function
//! right under the host bridge (root-complex integrated) has no root port.
//!
//! [`PciePath::parse`] and [`Topology::from_locations`] are pure;
//! [`Topology::read`] reads a node under a [`HostRoot`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::attr;
use crate::error::{Error, Result};
use crate::pci::PciAddress;
use crate::root::HostRoot;

/// Base class of display controllers (VGA `0x0300`, 3D `0x0302`).
pub const CLASS_DISPLAY: u8 = 0x03;
/// Subclass of 3D controllers (data-centre GPUs: `0x030200`).
pub const SUBCLASS_3D: u8 = 0x02;
/// NVIDIA's PCI vendor id.
pub const VENDOR_NVIDIA: u16 = 0x10de;
/// AMD/ATI's PCI vendor id.
pub const VENDOR_AMD: u16 = 0x1002;

/// Whether a function is a GPU: a 3D controller (class `0x0302xx`) of any
/// vendor, or a display controller of another subclass (VGA `0x0300`,
/// other `0x0380`) from NVIDIA or AMD. The VGA function of a server's BMC
/// (ASPEED, Matrox) is not a GPU.
pub fn is_gpu(class: u32, vendor: u16) -> bool {
    let base = (class >> 16) as u8;
    let sub = (class >> 8) as u8;
    base == CLASS_DISPLAY && (sub == SUBCLASS_3D || matches!(vendor, VENDOR_NVIDIA | VENDOR_AMD))
}

/// A PCIe root: the host bridge `pci<domain>:<bus>`, as the standard DRA
/// attribute `resource.kubernetes.io/pcieRoot` spells it (`pci0000:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PcieRoot {
    pub domain: u32,
    pub bus: u8,
}

impl PcieRoot {
    /// Parses `pci0000:00` (domain 4 to 8 hex digits, bus 2).
    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix("pci")?;
        let (d, b) = rest.split_once(':')?;
        let hex = |v: &str| !v.is_empty() && v.bytes().all(|c| c.is_ascii_hexdigit());
        if !hex(d) || d.len() < 4 || d.len() > 8 || !hex(b) || b.len() != 2 {
            return None;
        }
        Some(Self {
            domain: u32::from_str_radix(d, 16).ok()?,
            bus: u8::from_str_radix(b, 16).ok()?,
        })
    }
}

impl fmt::Display for PcieRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pci{:04x}:{:02x}", self.domain, self.bus)
    }
}

impl Serialize for PcieRoot {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PcieRoot {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("{s:?} is not a PCIe root (pciDDDD:BB)"))
        })
    }
}

/// The sysfs ancestry of one function: its host bridge and the bridges
/// between it and the function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciePath {
    pub root: PcieRoot,
    /// Bridges from the root port down, not including the function.
    pub bridges: Vec<PciAddress>,
    /// The function itself (the last path component).
    pub function: PciAddress,
}

impl PciePath {
    /// Parses a device path as the `bus/pci/devices/<BDF>` link's target
    /// (`../../../devices/pci0000:00/0000:00:01.0/0000:01:00.0`) or its
    /// realpath (`/sys/devices/pci0000:00/...`, possibly under a host root).
    /// The ancestry starts at the last `devices/pci<dom>:<bus>` pair of
    /// components; `None` when there is none (a VMBUS or platform device),
    /// when a component after it is not a PCI address, or when it ends at
    /// the host bridge.
    pub fn parse(path: &str) -> Option<Self> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let start = (1..parts.len())
            .rev()
            .find(|&i| parts[i - 1] == "devices" && PcieRoot::parse(parts[i]).is_some())?;
        let root = PcieRoot::parse(parts[start])?;
        let mut chain = Vec::with_capacity(parts.len() - start);
        for p in &parts[start + 1..] {
            chain.push(PciAddress::parse(p).filter(|a| a.to_string() == *p)?);
        }
        let function = chain.pop()?;
        Some(Self {
            root,
            bridges: chain,
            function,
        })
    }

    /// The root port: the first bridge, `None` for a root-complex
    /// integrated function.
    pub fn root_port(&self) -> Option<PciAddress> {
        self.bridges.first().copied()
    }

    /// Every PCIe switch above the function, top first: the bridges after
    /// the root port, taken in (upstream, downstream) pairs.
    pub fn switches(&self) -> Vec<PcieSwitch> {
        self.bridges
            .get(1..)
            .unwrap_or_default()
            .chunks_exact(2)
            .map(|p| PcieSwitch {
                upstream: p[0],
                downstream: p[1],
            })
            .collect()
    }
}

/// A PCIe switch as seen from one function: the switch's upstream port
/// (which names the switch) and the downstream port the function is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PcieSwitch {
    pub upstream: PciAddress,
    pub downstream: PciAddress,
}

/// Where one function sits, and what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PcieLocation {
    pub address: PciAddress,
    pub vendor: u16,
    /// 24-bit class code.
    pub class: u32,
    /// The host bridge, `pci<domain>:<bus>`.
    pub root: PcieRoot,
    /// The root port; `None` when the function is integrated in the root
    /// complex.
    pub root_port: Option<PciAddress>,
    /// The nearest PCIe switch above the function.
    pub switch: Option<PcieSwitch>,
    /// Every switch above the function, top first (the last is `switch`).
    pub switches: Vec<PcieSwitch>,
    /// Every bridge between the root and the function, root port first.
    pub bridges: Vec<PciAddress>,
    /// `numa_node`; `-1` (no affinity) or absent is `None`.
    pub numa_node: Option<u32>,
}

impl PcieLocation {
    /// A location from a parsed path and the function's identity.
    pub fn new(path: PciePath, vendor: u16, class: u32, numa_node: Option<u32>) -> Self {
        let switches = path.switches();
        Self {
            address: path.function,
            vendor,
            class,
            root: path.root,
            root_port: path.root_port(),
            switch: switches.last().copied(),
            switches,
            bridges: path.bridges,
            numa_node,
        }
    }

    /// Whether this function is a GPU ([`is_gpu`]).
    pub fn is_gpu(&self) -> bool {
        is_gpu(self.class, self.vendor)
    }

    /// How far this function is from `other` (see [`Distance`]).
    pub fn distance_to(&self, other: &PcieLocation) -> Distance {
        let shared_switch = self
            .switches
            .iter()
            .any(|s| other.switches.iter().any(|o| o.upstream == s.upstream));
        if shared_switch {
            Distance::SameSwitch
        } else if self.root == other.root {
            Distance::SameRoot
        } else if self.numa_node.is_some() && self.numa_node == other.numa_node {
            Distance::SameNuma
        } else {
            Distance::Other
        }
    }
}

/// The distance class between two functions, closest first (so `Ord`
/// sorts the best first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Distance {
    /// Both are below one PCIe switch (nvidia-smi `PIX`, or `PXB` when the
    /// switches are nested): peer traffic need not reach the root complex.
    SameSwitch,
    /// Same PCIe root (`pcieRoot`) but no shared switch (`PHB`).
    SameRoot,
    /// Different roots, same NUMA node (`NODE`).
    SameNuma,
    /// Anything else, including unknown NUMA (`SYS`).
    Other,
}

impl Distance {
    /// The lower-case name used in attributes and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Distance::SameSwitch => "switch",
            Distance::SameRoot => "root",
            Distance::SameNuma => "numa",
            Distance::Other => "other",
        }
    }
}

impl fmt::Display for Distance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The PCIe topology of a node: every function's location, and its GPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    functions: BTreeMap<PciAddress, PcieLocation>,
    gpus: Vec<PciAddress>,
}

impl Topology {
    /// A topology from locations (pure; tests and callers that read
    /// sysfs themselves).
    pub fn from_locations(locations: impl IntoIterator<Item = PcieLocation>) -> Self {
        let functions: BTreeMap<PciAddress, PcieLocation> =
            locations.into_iter().map(|l| (l.address, l)).collect();
        let gpus = functions
            .values()
            .filter(|l| l.is_gpu())
            .map(|l| l.address)
            .collect();
        Self { functions, gpus }
    }

    /// Reads every function under `<root>/sys/bus/pci/devices`: the link's
    /// target (or, when it is not a `devices/pci...` path, the realpath),
    /// `vendor`, `class` and `numa_node`. A function whose path has no PCIe
    /// ancestry (VMBUS) or that vanishes mid-read is skipped; fails only
    /// when the directory cannot be listed.
    pub fn read(root: &HostRoot) -> Result<Self> {
        let dir = root.pci_devices_dir();
        let entries = std::fs::read_dir(&dir).map_err(|source| Error::Read {
            path: dir.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(|source| Error::Read {
                path: dir.clone(),
                source,
            })?;
            let Some(address) = e.file_name().to_str().and_then(PciAddress::parse) else {
                continue;
            };
            match read_location(&e.path()) {
                Ok(Some(l)) if l.address == address => out.push(l),
                Ok(Some(l)) => tracing::warn!(
                    link = %address, target = %l.address,
                    "bus/pci/devices link names another function; skipped"
                ),
                Ok(None) => tracing::debug!(%address, "no PCIe ancestry or vanished; skipped"),
                Err(err) => tracing::warn!(%address, error = %err, "topology of device skipped"),
            }
        }
        Ok(Self::from_locations(out))
    }

    /// One function's location.
    pub fn location(&self, address: &PciAddress) -> Option<&PcieLocation> {
        self.functions.get(address)
    }

    /// All locations in address order.
    pub fn locations(&self) -> impl Iterator<Item = &PcieLocation> {
        self.functions.values()
    }

    /// The GPUs, in address order.
    pub fn gpus(&self) -> &[PciAddress] {
        &self.gpus
    }

    /// The distance between two functions; `None` when either is unknown.
    pub fn distance(&self, a: &PciAddress, b: &PciAddress) -> Option<Distance> {
        Some(self.functions.get(a)?.distance_to(self.functions.get(b)?))
    }

    /// The distance from `address` to every GPU (other than itself), in
    /// GPU address order; empty when the function is unknown.
    pub fn gpu_distances(&self, address: &PciAddress) -> Vec<(PciAddress, Distance)> {
        let Some(me) = self.functions.get(address) else {
            return Vec::new();
        };
        self.gpus
            .iter()
            .filter(|g| *g != address)
            .filter_map(|g| Some((*g, me.distance_to(self.functions.get(g)?))))
            .collect()
    }

    /// The nearest GPUs of `address`: their distance class and addresses;
    /// `None` when there is no GPU (or the function is unknown).
    pub fn nearest_gpus(&self, address: &PciAddress) -> Option<(Distance, Vec<PciAddress>)> {
        let all = self.gpu_distances(address);
        let best = all.iter().map(|(_, d)| *d).min()?;
        Some((
            best,
            all.into_iter()
                .filter(|(_, d)| *d == best)
                .map(|(g, _)| g)
                .collect(),
        ))
    }

    /// The best (smallest) distance from `address` to any of `targets`;
    /// `None` when none of them is known.
    pub fn best_distance(&self, address: &PciAddress, targets: &[PciAddress]) -> Option<Distance> {
        targets
            .iter()
            .filter_map(|t| self.distance(address, t))
            .min()
    }
}

/// Reads one `bus/pci/devices/<BDF>` entry; `Ok(None)` when it vanished or
/// has no PCIe ancestry.
fn read_location(link: &Path) -> Result<Option<PcieLocation>> {
    let target = match std::fs::read_link(link) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        // Not a link (a tree copied without links): its realpath.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => link.to_path_buf(),
        Err(source) => {
            return Err(Error::Read {
                path: link.to_path_buf(),
                source,
            });
        }
    };
    let path = match PciePath::parse(&target.to_string_lossy()) {
        Some(p) => p,
        None => match std::fs::canonicalize(link) {
            Ok(real) => match PciePath::parse(&real.to_string_lossy()) {
                Some(p) => p,
                None => return Ok(None),
            },
            Err(e) if attr::is_absent(&e) => return Ok(None),
            Err(source) => {
                return Err(Error::Read {
                    path: link.to_path_buf(),
                    source,
                });
            }
        },
    };
    let Some(vendor) =
        attr::read_opt_parsed(&link.join("vendor"), "a 16-bit hex id", attr::parse_hex_u16)?
    else {
        return Ok(None);
    };
    let Some(class) =
        attr::read_opt_parsed(&link.join("class"), "a hex class code", attr::parse_hex_u32)?
    else {
        return Ok(None);
    };
    let numa_node = attr::read_opt_parsed(&link.join("numa_node"), "a NUMA node number", |v| {
        v.parse::<i64>().ok()
    })?
    .and_then(|n| u32::try_from(n).ok());
    Ok(Some(PcieLocation::new(path, vendor, class, numa_node)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> PciAddress {
        PciAddress::parse(s).unwrap()
    }

    #[test]
    fn roots_parse_and_print_as_the_standard_attribute() {
        let r = PcieRoot::parse("pci0000:3a").unwrap();
        assert_eq!((r.domain, r.bus), (0, 0x3a));
        assert_eq!(r.to_string(), "pci0000:3a");
        assert_eq!(
            PcieRoot::parse("pci10000:00").unwrap().to_string(),
            "pci10000:00"
        );
        for bad in [
            "pci0000",
            "pci00:00",
            "pcix000:00",
            "0000:00",
            "pci0000:0",
            "pci0000:000",
        ] {
            assert_eq!(PcieRoot::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn link_target_below_two_switches() {
        let p = PciePath::parse(
            "../../../devices/pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:00.0/0000:03:00.0/0000:04:08.0/0000:05:00.1",
        )
        .unwrap();
        assert_eq!(p.root.to_string(), "pci0000:00");
        assert_eq!(p.root_port(), Some(a("0000:00:01.0")));
        assert_eq!(p.function, a("0000:05:00.1"));
        assert_eq!(
            p.switches(),
            vec![
                PcieSwitch {
                    upstream: a("0000:01:00.0"),
                    downstream: a("0000:02:00.0")
                },
                PcieSwitch {
                    upstream: a("0000:03:00.0"),
                    downstream: a("0000:04:08.0")
                },
            ]
        );
        let l = PcieLocation::new(p, VENDOR_NVIDIA, 0x030200, None);
        assert_eq!(l.switch.unwrap().upstream, a("0000:03:00.0"));
        assert!(l.is_gpu());
    }

    #[test]
    fn realpath_under_a_host_root_and_other_shapes() {
        // Realpath under a test root that itself contains "devices".
        let p = PciePath::parse("/tmp/devices/x/sys/devices/pci0000:17/0000:17:02.0/0000:18:00.0")
            .unwrap();
        assert_eq!(p.root.to_string(), "pci0000:17");
        assert_eq!(p.bridges, vec![a("0000:17:02.0")]);
        assert!(p.switches().is_empty());
        // Root-complex integrated: no root port, no switch.
        let p = PciePath::parse("/sys/devices/pci0000:00/0000:00:03.0").unwrap();
        assert_eq!(p.root_port(), None);
        assert!(p.switches().is_empty());
        // Root port + PCIe-to-PCI bridge: one leftover bridge, no switch.
        let p = PciePath::parse("/sys/devices/pci0000:00/0000:00:1c.0/0000:01:00.0/0000:02:00.0")
            .unwrap();
        assert_eq!(p.bridges.len(), 2);
        assert!(p.switches().is_empty());
        // Non-zero domain (VMD, multi-segment).
        let p = PciePath::parse("/sys/devices/pci10000:e0/10000:e0:01.0/10000:e1:00.0").unwrap();
        assert_eq!(p.root.to_string(), "pci10000:e0");
        assert_eq!(p.function.domain, 0x10000);
        // Not PCI, or broken.
        assert_eq!(
            PciePath::parse("/sys/devices/LNXSYSTM:00/VMBUS:00/abcd/pci0001:00/0001:00:00.0")
                .map(|p| p.root.to_string()),
            None,
            "a pci component not right after `devices` is not a root"
        );
        assert_eq!(PciePath::parse("/sys/devices/pci0000:00"), None);
        assert_eq!(
            PciePath::parse("/sys/devices/pci0000:00/0000:00:01.0/net"),
            None
        );
        assert_eq!(PciePath::parse("/sys/devices/platform/foo"), None);
        assert_eq!(PciePath::parse(""), None);
    }

    fn loc(path: &str, class: u32, numa: Option<u32>) -> PcieLocation {
        let vendor = if class >> 16 == 3 {
            VENDOR_NVIDIA
        } else {
            0x15b3
        };
        PcieLocation::new(PciePath::parse(path).unwrap(), vendor, class, numa)
    }

    /// Two GPUs and a NIC under one switch on root 0, a NIC on root 0
    /// without a switch, a NIC on root 1 (same NUMA), a NIC on NUMA 1, a
    /// NIC with unknown NUMA.
    fn sample() -> Topology {
        Topology::from_locations([
            loc(
                "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:00.0/0000:03:00.0",
                0x030200,
                Some(0),
            ),
            loc(
                "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:01.0/0000:04:00.0",
                0x030200,
                Some(0),
            ),
            loc(
                "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:02.0/0000:05:00.0",
                0x020000,
                Some(0),
            ),
            loc(
                "/sys/devices/pci0000:00/0000:00:02.0/0000:06:00.0",
                0x020000,
                Some(0),
            ),
            loc(
                "/sys/devices/pci0000:40/0000:40:01.0/0000:41:00.0",
                0x020000,
                Some(0),
            ),
            loc(
                "/sys/devices/pci0000:80/0000:80:01.0/0000:81:00.0",
                0x020000,
                Some(1),
            ),
            loc(
                "/sys/devices/pci0000:c0/0000:c0:01.0/0000:c1:00.0",
                0x020000,
                None,
            ),
            // BMC VGA: not a GPU.
            loc(
                "/sys/devices/pci0000:00/0000:00:1c.0/0000:07:00.0",
                0x030000,
                Some(0),
            )
            .with_vendor(0x1a03),
        ])
    }

    impl PcieLocation {
        fn with_vendor(mut self, v: u16) -> Self {
            self.vendor = v;
            self
        }
    }

    #[test]
    fn distance_classes() {
        let t = sample();
        assert_eq!(t.gpus(), &[a("0000:03:00.0"), a("0000:04:00.0")]);
        let d = |x: &str, y: &str| t.distance(&a(x), &a(y)).unwrap();
        assert_eq!(d("0000:05:00.0", "0000:03:00.0"), Distance::SameSwitch);
        assert_eq!(d("0000:03:00.0", "0000:04:00.0"), Distance::SameSwitch);
        assert_eq!(d("0000:06:00.0", "0000:03:00.0"), Distance::SameRoot);
        assert_eq!(d("0000:41:00.0", "0000:03:00.0"), Distance::SameNuma);
        assert_eq!(d("0000:81:00.0", "0000:03:00.0"), Distance::Other);
        assert_eq!(d("0000:c1:00.0", "0000:03:00.0"), Distance::Other);
        assert_eq!(t.distance(&a("0000:99:00.0"), &a("0000:03:00.0")), None);
        assert!(Distance::SameSwitch < Distance::SameRoot);
        assert!(Distance::SameNuma < Distance::Other);
    }

    #[test]
    fn nearest_gpus_and_best_distance() {
        let t = sample();
        let (d, g) = t.nearest_gpus(&a("0000:05:00.0")).unwrap();
        assert_eq!(d, Distance::SameSwitch);
        assert_eq!(g, vec![a("0000:03:00.0"), a("0000:04:00.0")]);
        // A GPU's nearest GPUs exclude itself.
        let (_, g) = t.nearest_gpus(&a("0000:03:00.0")).unwrap();
        assert_eq!(g, vec![a("0000:04:00.0")]);
        assert_eq!(t.gpu_distances(&a("0000:81:00.0")).len(), 2);
        assert_eq!(
            t.best_distance(&a("0000:06:00.0"), &[a("0000:41:00.0"), a("0000:03:00.0")]),
            Some(Distance::SameRoot)
        );
        assert_eq!(t.best_distance(&a("0000:06:00.0"), &[]), None);
        assert_eq!(Topology::default().nearest_gpus(&a("0000:06:00.0")), None);
    }

    #[test]
    fn gpu_classification() {
        assert!(is_gpu(0x030200, VENDOR_NVIDIA));
        assert!(is_gpu(0x030200, 0x8086));
        assert!(is_gpu(0x030000, VENDOR_NVIDIA));
        assert!(is_gpu(0x038000, VENDOR_AMD));
        assert!(!is_gpu(0x030000, 0x1a03));
        assert!(!is_gpu(0x020000, VENDOR_NVIDIA));
        assert!(!is_gpu(0x060400, VENDOR_NVIDIA));
    }
}
