//! A simulated node: its NICs, in YAML or by name (`mixed`, `scale:PFS:VFS`).

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
    /// The catalog model (validated by [`NodeSpec::validate`]).
    pub fn nic(&self) -> &'static NicModel {
        catalog::model(&self.model).expect("validated model")
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

    /// A named node (`mixed`, `scale:PFS:VFS`) or the YAML file at `arg`.
    pub fn resolve(arg: &str) -> Result<Self, NodeError> {
        if arg == "mixed" {
            return Ok(Self::mixed());
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
        let pf = |model: &str, address: &str, ifname: &str, numa: i32, vfs: u32| PfSpec {
            model: model.into(),
            address: address.into(),
            ifname: ifname.into(),
            numa,
            vfs,
            driver: None,
            vf_drivers: BTreeMap::new(),
            autoprobe: true,
            mtu: 1500,
            totalvfs: None,
            faults: Faults::default(),
            sfs: 0,
            vdpa: BTreeMap::new(),
            ddp_profile: None,
        };
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
                PfSpec {
                    model: "e810".into(),
                    address: format!("0000:{:02x}:00.{func}", 0x10 + card * 2),
                    ifname: format!("ens{}f{func}", card + 1),
                    numa: (card % 2) as i32,
                    vfs,
                    driver: None,
                    vf_drivers: BTreeMap::new(),
                    autoprobe: true,
                    mtu: 1500,
                    totalvfs: None,
                    faults: Faults::default(),
                    sfs: 0,
                    vdpa: BTreeMap::new(),
                    ddp_profile: None,
                }
            })
            .collect();
        Ok(NodeSpec {
            name: format!("scale:{}:{vfs}", pfs.len()),
            iommu: true,
            first_iommu_group: 10,
            pfs,
        })
    }

    /// Checks models, addresses, names, counts and drivers.
    pub fn validate(&self) -> Result<(), NodeError> {
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
  - model: virtio
    address: "0000:00:03.0"
    ifname: enp0s3
"#;
        let n = NodeSpec::from_yaml(yaml, "test").unwrap();
        assert_eq!(n.pfs[0].vf_drivers[&1], "vfio-pci");
        assert_eq!(n.pfs[0].faults.numvfs_delay_ms, 50);
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
