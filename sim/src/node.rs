//! A simulated node: its NICs, in YAML or by name (`mixed`, `gpu`, `scale:PFS:VFS`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::catalog::{self, NicModel};

/// A node description (see `docs/simulator.md` for the YAML reference).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// A name for logs.
    #[serde(default = "default_name")]
    pub name: String,
    /// Whether the IOMMU is on (functions get `iommu_group` links and
    /// vfio-pci creates `dev/vfio/<group>`). Default true.
    #[serde(default = "yes")]
    pub iommu: bool,
    /// The first IOMMU group number handed out. Default 10.
    #[serde(default = "default_first_group")]
    pub first_iommu_group: u32,
    /// The node's network functions, SR-IOV or not.
    pub pfs: Vec<PfSpec>,
    /// PCIe switches (laid out with their root ports as bridge functions).
    #[serde(default)]
    pub switches: Vec<SwitchSpec>,
    /// GPUs (NVIDIA 3D controllers), for PCIe topology tests.
    #[serde(default)]
    pub gpus: Vec<GpuSpec>,
}

/// A PCIe switch: its upstream port and its downstream ports, all PCI
/// bridges (`0x060400`, Broadcom/PLX ids), placed below `behind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchSpec {
    /// The bridge above the switch: a root port (laid out under the host
    /// bridge `pci<domain>:<bus of the port>`) or a downstream port of
    /// another switch.
    pub behind: String,
    /// Address of the upstream port, `0000:17:00.0`.
    pub upstream: String,
    /// Addresses of the downstream ports, `0000:18:00.0`, ...
    pub downstream: Vec<String>,
    /// NUMA node of the ports, -1 for none. Default -1.
    #[serde(default = "minus_one")]
    pub numa: i32,
}

/// One GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    /// GPU catalog model: `h100`, `a100`.
    pub model: String,
    /// PCI address, `0000:19:00.0`.
    pub address: String,
    /// NUMA node, -1 for none. Default -1.
    #[serde(default = "minus_one")]
    pub numa: i32,
    /// The bridge it sits under (a switch's downstream port or a root
    /// port); default the root port the address implies, as for a PF.
    #[serde(default)]
    pub behind: Option<String>,
}

/// One physical function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PfSpec {
    /// Catalog model: `e810`, `x710`, `82576`, `cx6dx`, `virtio`.
    pub model: String,
    /// PCI address, `0000:3b:00.0`.
    pub address: String,
    /// Name of its netdev, `ens1f0`.
    pub ifname: String,
    /// NUMA node, -1 for none. Default -1.
    #[serde(default = "minus_one")]
    pub numa: i32,
    /// VFs enabled at start. Default 0.
    #[serde(default)]
    pub vfs: u32,
    /// PF driver at start; default the catalog's, `none` for unbound.
    #[serde(default)]
    pub driver: Option<String>,
    /// Driver of VF N at start (`none` for unbound); other VFs get the
    /// catalog's VF driver (or none when `autoprobe` is false).
    #[serde(default)]
    pub vf_drivers: BTreeMap<u32, String>,
    /// `sriov_drivers_autoprobe` at start. Default true.
    #[serde(default = "yes")]
    pub autoprobe: bool,
    /// MTU of the PF netdev. Default 1500.
    #[serde(default = "default_mtu")]
    pub mtu: u32,
    /// `sriov_totalvfs`; default the catalog's.
    #[serde(default)]
    pub totalvfs: Option<u32>,
    /// Fault injection.
    #[serde(default)]
    pub faults: Faults,
    /// Scalable functions (mlx5 models only): auxiliary devices
    /// `mlx5_core.sf.<id>` with `sfnum` 0..sfs, created while the PF is
    /// bound to its driver. Default 0.
    #[serde(default)]
    pub sfs: u32,
    /// vDPA devices on VFs: VF index -> `vhost` or `virtio` (the vDPA bus
    /// driver), created while the VF is bound to the model's VF driver.
    #[serde(default)]
    pub vdpa: BTreeMap<u32, String>,
    /// The DDP profile loaded on the PF (i40e/ice models only), as Intel's
    /// `ddptool` reports it; see `docs/simulator.md`.
    #[serde(default)]
    pub ddp_profile: Option<String>,
    /// The bridge the PF sits under: a downstream port of one of the
    /// node's `switches`, or a root port. Default: the root port its
    /// address implies (`pci<dom>:<bus-1>/<dom>:<bus-1>:00.0`), or the host
    /// bridge for bus 00.
    #[serde(default)]
    pub behind: Option<String>,
}

/// Faults injected into a PF's `sriov_numvfs` writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Every write to `sriov_numvfs` takes this long before it returns.
    #[serde(default)]
    pub numvfs_delay_ms: u64,
    /// Writes of a non-zero count to `sriov_numvfs` fail with ENOMEM.
    #[serde(default)]
    pub numvfs_enomem: bool,
    /// The write returns at once, `sriov_numvfs` reads the new count, but
    /// the VF functions (and their links, drivers, netdevs) appear this
    /// many ms later.
    #[serde(default)]
    pub vfs_late_ms: u64,
    /// Binding this PF's VFs to one of these drivers fails: a write of the
    /// VF's address to `drivers/<driver>/bind` returns EIO (the driver's
    /// probe() failed), and a probe (`drivers_probe`, autoprobe) leaves
    /// the VF unbound.
    #[serde(default)]
    pub bind_fail: Vec<String>,
    /// Writes that block this long (ms) before they are applied, by
    /// attribute name: `sriov_numvfs`, `mtu` (the PF's or a VF's netdev),
    /// `driver_override`, `bind`, `unbind`, `drivers_probe` (naming the PF
    /// or one of its VFs). Tests use them to kill a process in the middle
    /// of a step.
    #[serde(default)]
    pub write_delay_ms: BTreeMap<String, u64>,
}

fn default_name() -> String {
    "node".into()
}
fn yes() -> bool {
    true
}
fn minus_one() -> i32 {
    -1
}
fn default_mtu() -> u32 {
    1500
}
fn default_first_group() -> u32 {
    10
}

/// Why a node description was rejected.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot read node file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("node YAML {origin} is invalid: {message}")]
    Yaml { origin: String, message: String },
    #[error(
        "unknown node {0:?}: give `mixed`, `scale:PFS:VFS` (e.g. scale:2:64) or a path to a YAML file"
    )]
    UnknownName(String),
    #[error("node {node}: {message}")]
    Invalid { node: String, message: String },
}

impl PfSpec {
    /// A PF as a YAML entry with only these keys reads: every other field
    /// at its default.
    pub fn new(model: &str, address: &str, ifname: &str, numa: i32, vfs: u32) -> PfSpec {
        PfSpec {
            model: model.into(),
            address: address.into(),
            ifname: ifname.into(),
            numa,
            vfs,
            driver: None,
            vf_drivers: BTreeMap::new(),
            autoprobe: yes(),
            mtu: default_mtu(),
            totalvfs: None,
            faults: Faults::default(),
            sfs: 0,
            vdpa: BTreeMap::new(),
            ddp_profile: None,
            behind: None,
        }
    }

    /// The catalog model (validated by [`NodeSpec::validate`]).
    pub fn nic(&self) -> &'static NicModel {
        catalog::model(&self.model).expect("validated model")
    }

    /// The driver the PF is bound to at start (and after a rescan): the
    /// `driver` field, else the model's; `None` for `none` (unbound).
    pub fn start_driver(&self) -> Option<&str> {
        match self.driver.as_deref() {
            Some("none") => None,
            Some(d) => Some(d),
            None => Some(self.nic().pf_driver),
        }
    }

    /// `sriov_totalvfs` of this PF.
    pub fn total_vfs(&self) -> u32 {
        self.totalvfs.unwrap_or(self.nic().totalvfs)
    }

    /// The PCI function number (the part after the dot).
    pub fn function(&self) -> u32 {
        self.address
            .rsplit_once('.')
            .and_then(|(_, f)| u32::from_str_radix(f, 16).ok())
            .unwrap_or(0)
    }
}

impl NodeSpec {
    /// Parses a node from YAML and validates it.
    pub fn from_yaml(yaml: &str, origin: &str) -> Result<Self, NodeError> {
        let spec: NodeSpec = serde_saphyr::from_str(yaml).map_err(|e| NodeError::Yaml {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        spec.validate()?;
        Ok(spec)
    }

    /// A named node (`mixed`, `gpu`, `scale:PFS:VFS`) or the YAML file at `arg`.
    pub fn resolve(arg: &str) -> Result<Self, NodeError> {
        if arg == "mixed" {
            return Ok(Self::mixed());
        }
        if arg == "gpu" {
            return Ok(Self::gpu());
        }
        if let Some(rest) = arg.strip_prefix("scale:") {
            let (pfs, vfs) = rest
                .split_once(':')
                .and_then(|(p, v)| Some((p.parse().ok()?, v.parse().ok()?)))
                .ok_or_else(|| NodeError::UnknownName(arg.to_string()))?;
            return Self::scale(pfs, vfs);
        }
        let path = Path::new(arg);
        if path.is_file() || arg.ends_with(".yaml") || arg.ends_with(".yml") || arg.contains('/') {
            let yaml = std::fs::read_to_string(path).map_err(|source| NodeError::Read {
                path: arg.to_string(),
                source,
            })?;
            return Self::from_yaml(&yaml, arg);
        }
        Err(NodeError::UnknownName(arg.to_string()))
    }

    /// `mixed`: two E810 ports on NUMA 0 (one with 4 VFs, one with none),
    /// one X710 port with none, one ConnectX-6 Dx port on NUMA 1 with 2 VFs,
    /// one 82576 port and one virtio-net device.
    pub fn mixed() -> Self {
        let pf = PfSpec::new;
        NodeSpec {
            name: "mixed".into(),
            iommu: true,
            first_iommu_group: 10,
            pfs: vec![
                pf("e810", "0000:3b:00.0", "ens1f0", 0, 4),
                pf("e810", "0000:3b:00.1", "ens1f1", 0, 0),
                pf("x710", "0000:5e:00.0", "ens2f0", 0, 0),
                pf("cx6dx", "0000:af:00.0", "ens3f0np0", 1, 2),
                pf("82576", "0000:d8:00.0", "ens4f0", 1, 0),
                pf("virtio", "0000:00:03.0", "enp0s3", -1, 0),
            ],
            switches: Vec::new(),
            gpus: Vec::new(),
        }
    }

    /// `scale:PFS:VFS`: `pfs` E810 ports (two per card, cards alternating
    /// between NUMA 0 and 1), each with `vfs` VFs on iavf.
    pub fn scale(pfs: u32, vfs: u32) -> Result<Self, NodeError> {
        let invalid = |message: String| NodeError::Invalid {
            node: format!("scale:{pfs}:{vfs}"),
            message,
        };
        if pfs == 0 || pfs > 120 {
            return Err(invalid("PFS must be 1..=120".into()));
        }
        if vfs > 128 {
            return Err(invalid("VFS must be 0..=128 (E810 sriov_totalvfs)".into()));
        }
        let pfs: Vec<PfSpec> = (0..pfs)
            .map(|i| {
                let card = i / 2;
                let func = i % 2;
                PfSpec::new(
                    "e810",
                    &format!("0000:{:02x}:00.{func}", 0x10 + card * 2),
                    &format!("ens{}f{func}", card + 1),
                    (card % 2) as i32,
                    vfs,
                )
            })
            .collect();
        Ok(NodeSpec {
            name: format!("scale:{}:{vfs}", pfs.len()),
            iommu: true,
            first_iommu_group: 10,
            pfs,
            switches: Vec::new(),
            gpus: Vec::new(),
        })
    }

    /// `gpu`: a GPU server's PCIe tree, so every distance class can be
    /// tested (see `docs/simulator.md`):
    ///
    /// - NUMA 0, root `pci0000:16`: root port `0000:16:01.0` → switch
    ///   `0000:17:00.0` with H100s `0000:19:00.0`, `0000:1a:00.0` and a
    ///   ConnectX-6 Dx `0000:1b:00.0` (`ens1f0np0`, 4 VFs) on its
    ///   downstream ports; root port `0000:16:02.0` → E810 `0000:1c:00.0`
    ///   (`ens2f0`, 4 VFs; same root as the GPUs, no switch).
    /// - NUMA 0, root `pci0000:30`: E810 `0000:31:00.0` (`ens3f0`, 4 VFs).
    /// - NUMA 1, root `pci0000:97`: root port `0000:97:01.0` → switch
    ///   `0000:98:00.0` with H100 `0000:9a:00.0` and ConnectX-6 Dx
    ///   `0000:9b:00.0` (`ens4f0np0`, 4 VFs).
    /// - NUMA 1, root `pci0000:b0`: X710 `0000:b1:00.0` (`ens5f0`, 2 VFs).
    /// - No NUMA, root `pci0000:d7`: 82576 `0000:d8:00.0` (`ens6f0`, 2 VFs).
    pub fn gpu() -> Self {
        let pf = |model: &str,
                  address: &str,
                  ifname: &str,
                  numa: i32,
                  vfs: u32,
                  behind: Option<&str>| PfSpec {
            behind: behind.map(str::to_string),
            ..PfSpec::new(model, address, ifname, numa, vfs)
        };
        let gpu = |address: &str, numa: i32, behind: &str| GpuSpec {
            model: "h100".into(),
            address: address.into(),
            numa,
            behind: Some(behind.into()),
        };
        let switch = |behind: &str, upstream: &str, downstream: &[&str], numa: i32| SwitchSpec {
            behind: behind.into(),
            upstream: upstream.into(),
            downstream: downstream.iter().map(|d| d.to_string()).collect(),
            numa,
        };
        NodeSpec {
            name: "gpu".into(),
            iommu: true,
            first_iommu_group: 10,
            pfs: vec![
                pf(
                    "cx6dx",
                    "0000:1b:00.0",
                    "ens1f0np0",
                    0,
                    4,
                    Some("0000:18:02.0"),
                ),
                pf("e810", "0000:1c:00.0", "ens2f0", 0, 4, Some("0000:16:02.0")),
                pf("e810", "0000:31:00.0", "ens3f0", 0, 4, None),
                pf(
                    "cx6dx",
                    "0000:9b:00.0",
                    "ens4f0np0",
                    1,
                    4,
                    Some("0000:99:01.0"),
                ),
                pf("x710", "0000:b1:00.0", "ens5f0", 1, 2, None),
                pf("82576", "0000:d8:00.0", "ens6f0", -1, 2, None),
            ],
            switches: vec![
                switch(
                    "0000:16:01.0",
                    "0000:17:00.0",
                    &["0000:18:00.0", "0000:18:01.0", "0000:18:02.0"],
                    0,
                ),
                switch(
                    "0000:97:01.0",
                    "0000:98:00.0",
                    &["0000:99:00.0", "0000:99:01.0"],
                    1,
                ),
            ],
            gpus: vec![
                gpu("0000:19:00.0", 0, "0000:18:00.0"),
                gpu("0000:1a:00.0", 0, "0000:18:01.0"),
                gpu("0000:9a:00.0", 1, "0000:99:00.0"),
            ],
        }
    }

    /// The directory (relative to `sys/devices`) of the bridge at
    /// `address`: a downstream or upstream port of one of the switches, or
    /// else a root port under the host bridge `pci<dom>:<bus>`. `None` when
    /// switches nest in a cycle.
    pub fn bridge_dir(&self, address: &str) -> Option<String> {
        self.bridge_dir_depth(address, 0)
    }

    fn bridge_dir_depth(&self, address: &str, depth: usize) -> Option<String> {
        if depth > self.switches.len() {
            return None;
        }
        for s in &self.switches {
            let up = || {
                self.bridge_dir_depth(&s.behind, depth + 1)
                    .map(|p| format!("{p}/{}", s.upstream))
            };
            if s.upstream == address {
                return up();
            }
            if s.downstream.iter().any(|d| d == address) {
                return up().map(|p| format!("{p}/{address}"));
            }
        }
        Some(format!("pci{}/{address}", &address[..7]))
    }

    /// The bridges to lay out, parents first: each root port named by a
    /// switch, GPU or PF `behind`, then each switch's ports. Address,
    /// parent directory (relative to `sys/devices`), NUMA node, whether it
    /// is a switch port.
    pub fn bridges(&self) -> Vec<(String, String, i32, bool)> {
        let switch_port = |a: &str| {
            self.switches
                .iter()
                .any(|s| s.upstream == a || s.downstream.iter().any(|d| d == a))
        };
        let mut out: Vec<(String, String, i32, bool)> = Vec::new();
        let behinds = self
            .switches
            .iter()
            .map(|s| (s.behind.as_str(), s.numa))
            .chain(
                self.gpus
                    .iter()
                    .filter_map(|g| Some((g.behind.as_deref()?, g.numa))),
            )
            .chain(
                self.pfs
                    .iter()
                    .filter_map(|p| Some((p.behind.as_deref()?, p.numa))),
            );
        for (b, numa) in behinds {
            if !switch_port(b) && !out.iter().any(|(a, ..)| a == b) {
                out.push((b.to_string(), format!("pci{}", &b[..7]), numa, false));
            }
        }
        // Switches in nesting order: a switch after the one it sits under.
        let mut placed: Vec<&SwitchSpec> = Vec::new();
        while placed.len() < self.switches.len() {
            let before = placed.len();
            for s in &self.switches {
                let ready = !switch_port(&s.behind)
                    || placed.iter().any(|p| p.downstream.contains(&s.behind));
                if ready && !placed.iter().any(|p| std::ptr::eq(*p, s)) {
                    placed.push(s);
                }
            }
            if placed.len() == before {
                break; // a cycle; validate() reports it
            }
        }
        for s in placed {
            let Some(parent) = self.bridge_dir(&s.behind) else {
                continue;
            };
            let up_dir = format!("{parent}/{}", s.upstream);
            out.push((s.upstream.clone(), parent, s.numa, true));
            for d in &s.downstream {
                out.push((d.clone(), up_dir.clone(), s.numa, true));
            }
        }
        out
    }

    fn validate_topology(&self) -> Result<(), NodeError> {
        let invalid = |message: String| NodeError::Invalid {
            node: self.name.clone(),
            message,
        };
        let mut seen: std::collections::BTreeSet<&str> =
            self.pfs.iter().map(|p| p.address.as_str()).collect();
        let downstream: std::collections::BTreeSet<&str> = self
            .switches
            .iter()
            .flat_map(|s| s.downstream.iter().map(String::as_str))
            .collect();
        let upstream: std::collections::BTreeSet<&str> =
            self.switches.iter().map(|s| s.upstream.as_str()).collect();
        let check_behind = |what: &str, b: &str| -> Result<(), NodeError> {
            if !valid_pci_address(b) {
                return Err(invalid(format!(
                    "{what}: behind {b:?} is not a PCI address"
                )));
            }
            if upstream.contains(b) {
                return Err(invalid(format!(
                    "{what}: behind {b} is a switch's upstream port; use one of its downstream ports"
                )));
            }
            Ok(())
        };
        for s in &self.switches {
            if s.downstream.is_empty() {
                return Err(invalid(format!(
                    "switch {}: no downstream ports",
                    s.upstream
                )));
            }
            check_behind(&format!("switch {}", s.upstream), &s.behind)?;
            for a in std::iter::once(&s.upstream).chain(&s.downstream) {
                if !valid_pci_address(a) {
                    return Err(invalid(format!("switch port {a:?} is not a PCI address")));
                }
                if !seen.insert(a) {
                    return Err(invalid(format!("address {a} appears twice")));
                }
            }
            if self.bridge_dir(&s.upstream).is_none() {
                return Err(invalid(format!(
                    "switch {} sits below itself (behind cycle)",
                    s.upstream
                )));
            }
        }
        for g in &self.gpus {
            if catalog::gpu_model(&g.model).is_none() {
                let known: Vec<&str> = catalog::gpu_catalog().iter().map(|m| m.name).collect();
                return Err(invalid(format!(
                    "GPU {}: unknown model {:?} (known: {})",
                    g.address,
                    g.model,
                    known.join(", ")
                )));
            }
            if !valid_pci_address(&g.address) {
                return Err(invalid(format!(
                    "GPU address {:?} is not a PCI address",
                    g.address
                )));
            }
            if !seen.insert(&g.address) {
                return Err(invalid(format!("address {} appears twice", g.address)));
            }
            if let Some(b) = &g.behind {
                check_behind(&format!("GPU {}", g.address), b)?;
            }
        }
        for p in &self.pfs {
            if let Some(b) = &p.behind {
                check_behind(&format!("PF {}", p.address), b)?;
            }
        }
        // A root port named by `behind` must not also be a device.
        for b in self
            .switches
            .iter()
            .map(|s| &s.behind)
            .chain(self.gpus.iter().filter_map(|g| g.behind.as_ref()))
            .chain(self.pfs.iter().filter_map(|p| p.behind.as_ref()))
        {
            if !downstream.contains(b.as_str())
                && (self.pfs.iter().any(|p| &p.address == b)
                    || self.gpus.iter().any(|g| &g.address == b))
            {
                return Err(invalid(format!(
                    "behind {b} names a PF or GPU, not a bridge"
                )));
            }
        }
        Ok(())
    }

    /// Checks models, addresses, names, counts and drivers.
    pub fn validate(&self) -> Result<(), NodeError> {
        self.validate_topology()?;
        let invalid = |message: String| NodeError::Invalid {
            node: self.name.clone(),
            message,
        };
        let mut seen_addr = std::collections::BTreeSet::new();
        let mut seen_if = std::collections::BTreeSet::new();
        for pf in &self.pfs {
            let Some(nic) = catalog::model(&pf.model) else {
                let known: Vec<&str> = catalog::catalog().iter().map(|m| m.name).collect();
                return Err(invalid(format!(
                    "PF {}: unknown model {:?} (known: {})",
                    pf.address,
                    pf.model,
                    known.join(", ")
                )));
            };
            if !valid_pci_address(&pf.address) {
                return Err(invalid(format!(
                    "PF address {:?} is not a PCI address like 0000:3b:00.0",
                    pf.address
                )));
            }
            if !seen_addr.insert(pf.address.clone()) {
                return Err(invalid(format!("PF address {} appears twice", pf.address)));
            }
            if pf.ifname.is_empty() || pf.ifname.len() > 15 || pf.ifname.contains('/') {
                return Err(invalid(format!(
                    "PF {}: interface name {:?} must be 1..=15 characters without '/'",
                    pf.address, pf.ifname
                )));
            }
            if !seen_if.insert(pf.ifname.clone()) {
                return Err(invalid(format!(
                    "interface name {} appears twice",
                    pf.ifname
                )));
            }
            let total = pf.total_vfs();
            if !nic.has_sriov() && (pf.vfs > 0 || pf.totalvfs.unwrap_or(0) > 0) {
                return Err(invalid(format!(
                    "PF {}: model {} has no SR-IOV, so vfs must be 0",
                    pf.address, nic.name
                )));
            }
            if total > nic.totalvfs || pf.vfs > total {
                return Err(invalid(format!(
                    "PF {}: vfs {} must be at most sriov_totalvfs {total}",
                    pf.address, pf.vfs
                )));
            }
            if pf.ifname.len() + 1 + digits(total.saturating_sub(1)) > 15 {
                return Err(invalid(format!(
                    "PF {}: VF interface names {}v<index> would exceed 15 characters",
                    pf.address, pf.ifname
                )));
            }
            let (offset, stride) = nic.offset_stride(pf.function());
            if total > 0
                && crate::tree::vf_address(&pf.address, offset, stride, total - 1).is_none()
            {
                return Err(invalid(format!(
                    "PF {}: its {total} VFs do not fit below bus ff",
                    pf.address
                )));
            }
            if pf.sfs > 0 && nic.pf_driver != "mlx5_core" {
                return Err(invalid(format!(
                    "PF {}: sfs needs an mlx5 model (cx6dx), not {}",
                    pf.address, nic.name
                )));
            }
            if pf.sfs > 1000 {
                return Err(invalid(format!(
                    "PF {}: sfs {} is more than 1000",
                    pf.address, pf.sfs
                )));
            }
            for (idx, t) in &pf.vdpa {
                if *idx >= pf.vfs {
                    return Err(invalid(format!(
                        "PF {}: vdpa names VF {idx} but only {} VFs are enabled",
                        pf.address, pf.vfs
                    )));
                }
                if t != "vhost" && t != "virtio" {
                    return Err(invalid(format!(
                        "PF {}: vdpa type {t:?} of VF {idx}: use vhost or virtio",
                        pf.address
                    )));
                }
            }
            if pf.ddp_profile.is_some() && !matches!(nic.pf_driver, "i40e" | "ice") {
                return Err(invalid(format!(
                    "PF {}: ddp_profile needs an Intel i40e/ice model (e810, x710), not {}",
                    pf.address, nic.name
                )));
            }
            for idx in pf.vf_drivers.keys() {
                if *idx >= pf.vfs {
                    return Err(invalid(format!(
                        "PF {}: vf_drivers names VF {idx} but only {} VFs are enabled",
                        pf.address, pf.vfs
                    )));
                }
            }
        }
        Ok(())
    }
}

fn digits(n: u32) -> usize {
    n.to_string().len()
}

/// Whether `s` is a full PCI address `DDDD:BB:DD.F`.
pub fn valid_pci_address(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 12
        && b[4] == b':'
        && b[7] == b':'
        && b[10] == b'.'
        && s[..4].chars().all(|c| c.is_ascii_hexdigit())
        && s[5..7].chars().all(|c| c.is_ascii_hexdigit())
        && u8::from_str_radix(&s[8..10], 16).is_ok_and(|d| d < 32)
        && matches!(b[11], b'0'..=b'7')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_is_valid() {
        let m = NodeSpec::resolve("mixed").unwrap();
        m.validate().unwrap();
        assert_eq!(m.pfs.len(), 6);
        assert_eq!(m.pfs[0].vfs, 4);
        assert_eq!(m.pfs[3].numa, 1);
    }

    #[test]
    fn scale_nodes() {
        let s = NodeSpec::resolve("scale:4:128").unwrap();
        s.validate().unwrap();
        assert_eq!(s.pfs.len(), 4);
        assert_eq!(s.name, "scale:4:128");
        assert!(NodeSpec::resolve("scale:1:129").is_err());
        assert!(NodeSpec::resolve("scale:x").is_err());
        assert!(matches!(
            NodeSpec::resolve("nonsense"),
            Err(NodeError::UnknownName(_))
        ));
    }

    #[test]
    fn parses_yaml_with_defaults_and_faults() {
        let yaml = r#"
name: small
pfs:
  - model: e810
    address: "0000:3b:00.0"
    ifname: ens1f0
    numa: 0
    vfs: 3
    vf_drivers: { 1: vfio-pci, 2: none }
    faults:
      numvfs_delay_ms: 50
      vfs_late_ms: 10
      write_delay_ms: {mtu: 20, drivers_probe: 30}
  - model: virtio
    address: "0000:00:03.0"
    ifname: enp0s3
"#;
        let n = NodeSpec::from_yaml(yaml, "test").unwrap();
        assert_eq!(n.pfs[0].vf_drivers[&1], "vfio-pci");
        assert_eq!(n.pfs[0].faults.numvfs_delay_ms, 50);
        assert_eq!(n.pfs[0].faults.write_delay_ms["drivers_probe"], 30);
        assert!(n.iommu);
        assert_eq!(n.pfs[1].numa, -1);
        assert_eq!(n.pfs[0].sfs, 0, "old YAML stays valid");
    }

    #[test]
    fn parses_sfs_vdpa_and_ddp() {
        let yaml = r#"
pfs:
  - {model: cx6dx, address: "0000:af:00.0", ifname: ens3f0np0, vfs: 2, sfs: 3, vdpa: {0: vhost, 1: virtio}}
  - {model: x710, address: "0000:5e:00.0", ifname: ens2f0, ddp_profile: "GTPv1-C/U IPv4/IPv6 payload"}
"#;
        let n = NodeSpec::from_yaml(yaml, "test").unwrap();
        assert_eq!(n.pfs[0].sfs, 3);
        assert_eq!(n.pfs[0].vdpa[&1], "virtio");
        assert_eq!(
            n.pfs[1].ddp_profile.as_deref(),
            Some("GTPv1-C/U IPv4/IPv6 payload")
        );
    }

    #[test]
    fn rejects_bad_nodes() {
        let bad = [
            "pfs: [{model: nope, address: '0000:3b:00.0', ifname: a}]",
            "pfs: [{model: e810, address: '3b:00.0', ifname: a}]",
            "pfs: [{model: e810, address: '0000:3b:00.0', ifname: a, vfs: 129}]",
            "pfs: [{model: virtio, address: '0000:3b:00.0', ifname: a, vfs: 1}]",
            "pfs: [{model: e810, address: '0000:3b:00.0', ifname: a, color: red}]",
            "pfs: [{model: e810, address: '0000:3b:00.0', ifname: a}, {model: e810, address: '0000:3b:00.0', ifname: b}]",
            "pfs: [{model: e810, address: '0000:3b:00.0', ifname: a, sfs: 2}]",
            "pfs: [{model: cx6dx, address: '0000:3b:00.0', ifname: a, vfs: 1, vdpa: {1: vhost}}]",
            "pfs: [{model: cx6dx, address: '0000:3b:00.0', ifname: a, vfs: 1, vdpa: {0: gpu}}]",
            "pfs: [{model: cx6dx, address: '0000:3b:00.0', ifname: a, ddp_profile: x}]",
        ];
        for y in bad {
            assert!(NodeSpec::from_yaml(y, "test").is_err(), "{y}");
        }
    }
}
