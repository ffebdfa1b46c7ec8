//! A whole-node scan: every PCI function under
//! `<root>/sys/bus/pci/devices`, with SR-IOV relations resolved.
//!
//! Functions are read independently (on 8 to 16 threads for large nodes),
//! then each VF gets its index from its PF's `virtfnN` links, which were
//! read once with the PF. A device that vanishes while the scan runs —
//! its link dangles, its directory or `vendor` is gone, or its PF no longer
//! lists it — is skipped, not an error.

use std::collections::{BTreeMap, HashMap};

pub use crate::detail::Detail;
use crate::error::{Error, Result};
use crate::netdev::Netdev;
use crate::pci::{PciAddress, PciFunction, RawFunction};
use crate::root::HostRoot;
use crate::sriov::VfInfo;

/// Everything a scan found, by PCI address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    functions: BTreeMap<PciAddress, PciFunction>,
    /// ifname -> function address.
    ifnames: HashMap<String, PciAddress>,
}

impl Node {
    /// Builds a node from functions (for callers that read functions
    /// themselves, and tests).
    pub fn from_functions(functions: impl IntoIterator<Item = PciFunction>) -> Self {
        let functions: BTreeMap<PciAddress, PciFunction> =
            functions.into_iter().map(|f| (f.address, f)).collect();
        let ifnames = functions
            .values()
            .flat_map(|f| f.netdevs.iter().map(|n| (n.name.clone(), f.address)))
            .collect();
        Self { functions, ifnames }
    }

    /// All functions in address order.
    pub fn functions(&self) -> impl Iterator<Item = &PciFunction> {
        self.functions.values()
    }

    /// The number of functions.
    pub fn len(&self) -> usize {
        self.functions.len()
    }

    /// No functions at all.
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }

    /// One function.
    pub fn get(&self, address: &PciAddress) -> Option<&PciFunction> {
        self.functions.get(address)
    }

    /// SR-IOV PFs in address order.
    pub fn pfs(&self) -> impl Iterator<Item = &PciFunction> {
        self.functions.values().filter(|f| f.is_pf())
    }

    /// All VFs in address order.
    pub fn vfs(&self) -> impl Iterator<Item = &PciFunction> {
        self.functions.values().filter(|f| f.is_vf())
    }

    /// A PF's VFs in index order (those present on the node).
    pub fn vfs_of(&self, pf: &PciAddress) -> Vec<&PciFunction> {
        let Some(cap) = self.functions.get(pf).and_then(|f| f.sriov.as_ref()) else {
            return Vec::new();
        };
        cap.vfs
            .iter()
            .filter_map(|l| self.functions.get(&l.address))
            .collect()
    }

    /// The PF of a VF.
    pub fn pf_of(&self, vf: &PciAddress) -> Option<&PciFunction> {
        let info = self.functions.get(vf)?.vf?;
        self.functions.get(&info.pf)
    }

    /// The PF netdev of a VF: its PF's primary netdev (not a representor).
    pub fn pf_netdev_of(&self, vf: &PciAddress) -> Option<&Netdev> {
        self.pf_of(vf)?.primary_netdev()
    }

    /// The function that has a netdev of this name.
    pub fn by_ifname(&self, name: &str) -> Option<&PciFunction> {
        self.ifnames.get(name).and_then(|a| self.functions.get(a))
    }

    /// The functions in an IOMMU group, in address order.
    pub fn iommu_group(&self, group: u32) -> Vec<&PciFunction> {
        self.functions
            .values()
            .filter(|f| f.iommu_group == Some(group))
            .collect()
    }
}

/// Below this many functions a scan runs on the calling thread only.
const PARALLEL_THRESHOLD: usize = 64;

/// Threads of a large scan, at least (more on machines with more cores).
const SCAN_THREADS: usize = 8;

/// Scans every PCI function of the node (blocking file I/O on several
/// threads: from async code, call it inside `spawn_blocking`). Fails only when
/// `<root>/sys/bus/pci/devices` cannot be listed. Vanished devices are
/// skipped silently; a device that cannot be read (an I/O error, a malformed
/// attribute) is skipped with a warning in the log.
pub fn scan(root: &HostRoot) -> Result<Node> {
    scan_detail(root, Detail::Full)
}

/// [`scan`], reading as much of each function as `detail` asks.
pub fn scan_detail(root: &HostRoot, detail: Detail) -> Result<Node> {
    let dir = root.pci_devices_dir();
    let entries = std::fs::read_dir(&dir).map_err(|source| Error::Read {
        path: dir.clone(),
        source,
    })?;
    let mut addresses: Vec<PciAddress> = Vec::new();
    for e in entries {
        let e = e.map_err(|source| Error::Read {
            path: dir.clone(),
            source,
        })?;
        if let Some(a) = e.file_name().to_str().and_then(PciAddress::parse) {
            addresses.push(a);
        }
    }
    addresses.sort();

    // Reads of some attributes block in the driver (`speed` asks the NIC's
    // firmware on some drivers), so a scan uses more threads than cores.
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(SCAN_THREADS, 2 * SCAN_THREADS);
    let raws: Vec<RawFunction> = if addresses.len() < PARALLEL_THRESHOLD {
        read_all(root, &addresses, detail)?
    } else {
        let chunk = addresses.len().div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = addresses
                .chunks(chunk)
                .map(|part| s.spawn(move || read_all(root, part, detail)))
                .collect();
            let mut out = Vec::with_capacity(addresses.len());
            for h in handles {
                out.extend(h.join().expect("scan worker panicked")?);
            }
            Ok::<_, Error>(out)
        })?
    };

    // VF -> (PF, index), from each PF's links, read once with the PF.
    let mut vf_index: HashMap<PciAddress, VfInfo> = HashMap::new();
    for r in &raws {
        if let Some(cap) = &r.function.sriov {
            for l in &cap.vfs {
                vf_index.insert(
                    l.address,
                    VfInfo {
                        pf: r.function.address,
                        index: l.index,
                    },
                );
            }
        }
    }
    let mut functions = Vec::with_capacity(raws.len());
    for r in raws {
        let mut f = r.function;
        if let Some(pf) = r.physfn {
            match vf_index.get(&f.address) {
                Some(info) if info.pf == pf => f.vf = Some(*info),
                _ => {
                    tracing::debug!(vf = %f.address, pf = %pf, "VF not listed by its PF (going away); skipped");
                    continue;
                }
            }
        }
        functions.push(f);
    }
    Ok(Node::from_functions(functions))
}

fn read_all(root: &HostRoot, addresses: &[PciAddress], detail: Detail) -> Result<Vec<RawFunction>> {
    let mut out = Vec::with_capacity(addresses.len());
    for a in addresses {
        match crate::pci::read_raw(&root.pci_device(a), *a, detail) {
            Ok(Some(r)) => out.push(r),
            Ok(None) => tracing::debug!(address = %a, "device vanished during scan; skipped"),
            // One unreadable device must not hide the rest of the node.
            Err(e) => tracing::warn!(address = %a, error = %e, "device skipped"),
        }
    }
    Ok(out)
}
