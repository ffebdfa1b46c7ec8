//! Selectors: which devices a resource claims.
//!
//! A device matches a selector set when it matches every selector given in
//! it (an absent or empty selector matches everything). Values of one
//! selector are alternatives (`"drivers": ["iavf", "vfio-pci"]`).
//!
//! As upstream, the boolean selectors filter only when true: `"isRdma":
//! false` (which the Go operator always writes) and `"needVhostNet": false`
//! mean "no filter", not "must not". `needVhostNet` does not filter at all:
//! it asks Allocate for `/dev/vhost-net` (a device is kept when the node
//! has none, with a warning, as upstream).

use std::collections::BTreeSet;

use serde_json::Value;
use sriov_crds::device_plugin_config::{DeviceType, NetDeviceSelectors, read_selectors};
use sriov_host::PciAddress;

use crate::device::{Device, VdpaType, parse_vdpa_type};

/// Why a selector set was rejected (the model's reader and the runtime
/// conversion below report the same way).
pub use sriov_crds::device_plugin_config::SelectorError;

/// A PF named with an optional VF index range: `ens1f0#0-3,5` (pfNames) or
/// `0000:3b:00.0#0-3` (rootDevices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PfRange<T> {
    pub pf: T,
    /// VF indexes; `None` means all VFs (and the PF itself).
    pub indexes: Option<BTreeSet<u32>>,
}

impl<T> PfRange<T> {
    /// Whether a device with this PF key and VF index matches. A PF device
    /// itself (no index) matches only without a range.
    fn matches(&self, index: Option<u32>) -> bool {
        match (&self.indexes, index) {
            (None, _) => true,
            (Some(set), Some(i)) => set.contains(&i),
            (Some(_), None) => false,
        }
    }
}

/// Parses `NAME` or `NAME#RANGES` where RANGES is `0-3,5,7-9` (the
/// project's one grammar: [`sriov_crds::pf_names::PfVfList`]).
pub fn parse_pf_range(s: &str) -> Result<(String, Option<BTreeSet<u32>>), String> {
    sriov_crds::pf_names::PfVfList::parse(s)
        .map(|p| (p.name, p.indexes))
        .map_err(|e| e.to_string())
}

/// One selector set, parsed and normalised.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selectors {
    pub vendors: Vec<u16>,
    pub devices: Vec<u16>,
    pub drivers: Vec<String>,
    pub pci_addresses: Vec<PciAddress>,
    pub acpi_indexes: Vec<u32>,
    pub pf_names: Vec<PfRange<String>>,
    pub root_devices: Vec<PfRange<PciAddress>>,
    /// Lower case: `ether`, `infiniband`, or an ARPHRD number.
    pub link_types: Vec<String>,
    pub ddp_profiles: Vec<String>,
    /// `pKeys`: the InfiniBand partition key at index 0 of the device's
    /// port 1 (`0x7fff`), compared as numbers.
    pub p_keys: Vec<String>,
    /// `isRdma: true`: only devices with an RDMA device (false: no filter).
    pub is_rdma: bool,
    /// `needVhostNet: true`: Allocate adds `/dev/vhost-net` (no filter).
    pub need_vhost_net: bool,
    pub vdpa_type: Option<VdpaType>,
    pub aux_types: Vec<String>,
}

/// The values of a list selector, trimmed.
fn trimmed(v: &[String]) -> impl Iterator<Item = String> + '_ {
    v.iter().map(|s| s.trim().to_string())
}

fn hex_ids(key: &'static str, v: &[String]) -> Result<Vec<u16>, SelectorError> {
    trimmed(v)
        .map(|s| {
            let h = s
                .strip_prefix("0x")
                .or_else(|| s.strip_prefix("0X"))
                .unwrap_or(&s);
            if h.is_empty() || h.len() > 4 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(SelectorError::Invalid {
                    key,
                    message: format!("{s:?} is not a 4-digit hex id such as \"8086\""),
                });
            }
            Ok(u16::from_str_radix(h, 16).expect("checked hex"))
        })
        .collect()
}

fn pf_ranges(key: &'static str, v: &[String]) -> Result<Vec<PfRange<String>>, SelectorError> {
    trimmed(v)
        .map(|p| {
            let (pf, indexes) =
                parse_pf_range(&p).map_err(|message| SelectorError::Invalid { key, message })?;
            Ok(PfRange { pf, indexes })
        })
        .collect()
}

impl Selectors {
    /// Parses one selector object (keys case-insensitive) through the
    /// typed model: [`read_selectors`], then [`Selectors::from_model`].
    pub fn from_json(v: &Value, device_type: DeviceType) -> Result<Selectors, SelectorError> {
        Selectors::from_model(&read_selectors(v, device_type, "selectors")?, device_type)
    }

    /// The runtime form of one selector set of the model: ids as numbers,
    /// PCI addresses, ACPI indexes and VF ranges parsed, values trimmed,
    /// link types lower case. Selectors `device_type` does not take are
    /// left out (the model's reader has already dropped them from a file).
    pub fn from_model(
        m: &NetDeviceSelectors,
        device_type: DeviceType,
    ) -> Result<Selectors, SelectorError> {
        let takes = |key: &str| device_type.takes(key);
        let list = |key: &str, v: &'_ Vec<String>| -> Vec<String> {
            if takes(key) { v.clone() } else { Vec::new() }
        };
        let mut s = Selectors {
            vendors: hex_ids("vendors", &list("vendors", &m.vendors))?,
            devices: hex_ids("devices", &list("devices", &m.devices))?,
            drivers: trimmed(&list("drivers", &m.drivers)).collect(),
            ..Default::default()
        };
        s.pci_addresses = trimmed(&list("pciAddresses", &m.pci_addresses))
            .map(|a| {
                PciAddress::parse(&a).ok_or_else(|| SelectorError::Invalid {
                    key: "pciAddresses",
                    message: format!("{a:?} is not a PCI address (0000:3b:02.0)"),
                })
            })
            .collect::<Result<_, _>>()?;
        s.acpi_indexes = trimmed(&list("acpiIndexes", &m.acpi_indexes))
            .map(|a| {
                a.parse::<u32>().map_err(|_| SelectorError::Invalid {
                    key: "acpiIndexes",
                    message: format!("{a:?} is not a number"),
                })
            })
            .collect::<Result<_, _>>()?;
        s.pf_names = pf_ranges("pfNames", &list("pfNames", &m.pf_names))?;
        let roots = list("rootDevices", &m.root_devices);
        s.root_devices = pf_ranges("rootDevices", &roots)?
            .into_iter()
            .zip(&roots)
            .map(|(r, p)| {
                let pf = PciAddress::parse(&r.pf).ok_or_else(|| SelectorError::Invalid {
                    key: "rootDevices",
                    message: format!("{:?}: {:?} is not a PCI address", p.trim(), r.pf),
                })?;
                Ok(PfRange {
                    pf,
                    indexes: r.indexes,
                })
            })
            .collect::<Result<_, _>>()?;
        s.link_types = trimmed(&list("linkTypes", &m.link_types))
            .map(|l| l.to_ascii_lowercase())
            .collect();
        s.ddp_profiles = trimmed(&list("ddpProfiles", &m.ddp_profiles)).collect();
        s.p_keys = trimmed(&list("pKeys", &m.p_keys)).collect();
        s.aux_types = trimmed(&list("auxTypes", &m.aux_types)).collect();
        s.is_rdma = takes("isRdma") && m.is_rdma;
        s.need_vhost_net = takes("needVhostNet") && m.need_vhost_net;
        s.vdpa_type = match m.vdpa_type.as_str() {
            _ if !takes("vdpaType") => None,
            "" => None,
            t => Some(parse_vdpa_type(t).ok_or_else(|| SelectorError::Invalid {
                key: "vdpaType",
                message: format!("{t:?}: use \"vhost\" or \"virtio\""),
            })?),
        };
        Ok(s)
    }

    /// Whether a device matches every selector of this set. `env` answers
    /// node-wide questions (vhost-net present, DDP profiles).
    pub fn matches(&self, d: &Device, env: &MatchEnv) -> bool {
        if !self.vendors.is_empty() && !self.vendors.contains(&d.vendor) {
            return false;
        }
        if !self.devices.is_empty() && !self.devices.contains(&d.device_id) {
            return false;
        }
        if !self.drivers.is_empty()
            && !d
                .driver
                .as_ref()
                .is_some_and(|drv| self.drivers.iter().any(|s| s == drv))
        {
            return false;
        }
        if !self.pci_addresses.is_empty() && !self.pci_addresses.contains(&d.address) {
            return false;
        }
        if !self.acpi_indexes.is_empty()
            && !d.acpi_index.is_some_and(|i| self.acpi_indexes.contains(&i))
        {
            return false;
        }
        if !self.pf_names.is_empty() {
            let Some(name) = d.pf_ifname.as_deref() else {
                return false;
            };
            // upstream compares PF names case-insensitively
            if !self
                .pf_names
                .iter()
                .any(|r| r.pf.eq_ignore_ascii_case(name) && r.matches(d.vf_index))
            {
                return false;
            }
        }
        if !self.root_devices.is_empty() {
            // as upstream, a device without a PF (a PF without VFs) has no
            // root device
            let Some(root) = d.pf else {
                return false;
            };
            if !self
                .root_devices
                .iter()
                .any(|r| r.pf == root && r.matches(d.vf_index))
            {
                return false;
            }
        }
        if !self.link_types.is_empty() {
            let Some(lt) = d.link_type else {
                return false;
            };
            let name = lt.name();
            let num = lt.arphrd().to_string();
            if !self.link_types.iter().any(|l| *l == name || *l == num) {
                return false;
            }
        }
        if self.is_rdma && d.rdma.is_empty() {
            return false;
        }
        if let Some(t) = self.vdpa_type
            && d.vdpa_type() != Some(t)
        {
            return false;
        }
        if !self.ddp_profiles.is_empty() {
            let Some(p) = env.ddp_profile_of(d) else {
                return false;
            };
            if !self.ddp_profiles.iter().any(|s| s == p) {
                return false;
            }
        }
        if !self.p_keys.is_empty()
            && !d
                .pkey
                .as_deref()
                .is_some_and(|k| self.p_keys.iter().any(|s| same_pkey(s, k)))
        {
            return false;
        }
        if !self.aux_types.is_empty()
            && !d
                .aux
                .as_ref()
                .is_some_and(|a| self.aux_types.contains(&a.aux_type))
        {
            return false;
        }
        true
    }
}

/// Whether two partition keys are the same: as numbers when both are hex
/// (`0x7fff`, `7FFF`), else as text.
fn same_pkey(a: &str, b: &str) -> bool {
    let num = |s: &str| {
        let h = s
            .trim()
            .strip_prefix("0x")
            .or_else(|| s.trim().strip_prefix("0X"))
            .unwrap_or(s.trim());
        u16::from_str_radix(h, 16).ok()
    };
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.trim() == b.trim(),
    }
}

/// Node-wide facts selectors need.
#[derive(Debug, Clone, Default)]
pub struct MatchEnv {
    /// `<root>/dev/vhost-net` exists (for a warning when a `needVhostNet`
    /// pool cannot get it; it does not filter, as upstream).
    pub vhost_net_present: bool,
    /// The DDP profile of each PF that has one (filled only when a
    /// resource selects on `ddpProfiles`; see [`crate::ddp`]).
    pub ddp_profiles: std::collections::HashMap<PciAddress, String>,
}

impl MatchEnv {
    fn ddp_profile_of(&self, d: &Device) -> Option<&str> {
        self.ddp_profiles
            .get(&d.pf.unwrap_or(d.address))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sriov_host::LinkType;

    fn vf() -> Device {
        Device {
            address: "0000:3b:02.3".parse().unwrap(),
            vendor: 0x8086,
            device_id: 0x1889,
            class: 0x020000,
            driver: Some("iavf".into()),
            numa_node: Some(0),
            iommu_group: Some(42),
            acpi_index: None,
            pf: Some("0000:3b:00.0".parse().unwrap()),
            vf_index: Some(3),
            pf_ifname: Some("ens1f0".into()),
            ifname: Some("ens1f0v3".into()),
            link_type: Some(LinkType::Ether),
            rdma: vec![],
            pkey: None,
            vdpa: None,
            aux: None,
        }
    }

    fn sel(v: serde_json::Value) -> Selectors {
        Selectors::from_json(&v, DeviceType::NetDevice).unwrap()
    }

    fn env() -> MatchEnv {
        MatchEnv::default()
    }

    #[test]
    fn empty_selectors_match_everything() {
        assert!(sel(json!({})).matches(&vf(), &env()));
    }

    #[test]
    fn ids_and_drivers() {
        let d = vf();
        assert!(sel(json!({"vendors":["8086"],"devices":["1889","154c"]})).matches(&d, &env()));
        assert!(sel(json!({"vendors":["0x8086"]})).matches(&d, &env()));
        assert!(!sel(json!({"vendors":["15b3"]})).matches(&d, &env()));
        assert!(!sel(json!({"devices":["154c"]})).matches(&d, &env()));
        assert!(sel(json!({"drivers":["vfio-pci","iavf"]})).matches(&d, &env()));
        assert!(!sel(json!({"drivers":["vfio-pci"]})).matches(&d, &env()));
        let mut unbound = vf();
        unbound.driver = None;
        assert!(!sel(json!({"drivers":["iavf"]})).matches(&unbound, &env()));
    }

    #[test]
    fn addresses_and_acpi() {
        let d = vf();
        assert!(sel(json!({"pciAddresses":["3b:02.3"]})).matches(&d, &env()));
        assert!(!sel(json!({"pciAddresses":["0000:3b:02.4"]})).matches(&d, &env()));
        assert!(!sel(json!({"acpiIndexes":["101"]})).matches(&d, &env()));
        let mut a = vf();
        a.acpi_index = Some(101);
        assert!(sel(json!({"acpiIndexes":["101"]})).matches(&a, &env()));
    }

    #[test]
    fn pf_names_with_ranges() {
        let d = vf(); // index 3
        assert!(sel(json!({"pfNames":["ens1f0"]})).matches(&d, &env()));
        assert!(sel(json!({"pfNames":["ens1f0#0-3,5"]})).matches(&d, &env()));
        assert!(sel(json!({"pfNames":["ens1f0#5,3"]})).matches(&d, &env()));
        assert!(!sel(json!({"pfNames":["ens1f0#0-2,4-7"]})).matches(&d, &env()));
        assert!(!sel(json!({"pfNames":["ens1f1"]})).matches(&d, &env()));
        assert!(sel(json!({"pfNames":["ens9", "ens1f0#3"]})).matches(&d, &env()));
    }

    #[test]
    fn root_devices_with_ranges() {
        let d = vf();
        assert!(sel(json!({"rootDevices":["0000:3b:00.0"]})).matches(&d, &env()));
        assert!(sel(json!({"rootDevices":["3b:00.0#2-4"]})).matches(&d, &env()));
        assert!(!sel(json!({"rootDevices":["0000:3b:00.0#0-2"]})).matches(&d, &env()));
        assert!(!sel(json!({"rootDevices":["0000:3b:00.1"]})).matches(&d, &env()));
        // As upstream, a PF without VFs has no root device (nor PF name).
        let mut pf = vf();
        pf.address = "0000:5e:00.0".parse().unwrap();
        pf.pf = None;
        pf.vf_index = None;
        pf.pf_ifname = None;
        pf.ifname = Some("ens5".into());
        assert!(!sel(json!({"rootDevices":["0000:5e:00.0"]})).matches(&pf, &env()));
        assert!(!sel(json!({"rootDevices":["0000:5e:00.0#0"]})).matches(&pf, &env()));
        assert!(!sel(json!({"pfNames":["ens5"]})).matches(&pf, &env()));
        assert!(sel(json!({"pciAddresses":["0000:5e:00.0"]})).matches(&pf, &env()));
    }

    #[test]
    fn range_syntax_errors() {
        assert_eq!(
            parse_pf_range("ens1#0-3,5").unwrap().1.unwrap(),
            [0, 1, 2, 3, 5].into_iter().collect()
        );
        assert_eq!(parse_pf_range("ens1").unwrap(), ("ens1".into(), None));
        for bad in [
            "ens1#",
            "ens1#a",
            "ens1#3-1",
            "#1",
            "ens1#1-",
            "ens1#0-99999",
        ] {
            assert!(parse_pf_range(bad).is_err(), "{bad}");
        }
        let e = Selectors::from_json(&json!({"rootDevices":["eth0#1"]}), DeviceType::NetDevice)
            .unwrap_err();
        assert!(e.to_string().starts_with("rootDevices:"), "{e}");
    }

    #[test]
    fn link_types_rdma_vdpa() {
        let d = vf();
        assert!(sel(json!({"linkTypes":["ETHER"]})).matches(&d, &env()));
        assert!(sel(json!({"linkTypes":["1"]})).matches(&d, &env()));
        assert!(!sel(json!({"linkTypes":["infiniband"]})).matches(&d, &env()));
        assert!(sel(json!({"isRdma":false})).matches(&d, &env()));
        assert!(!sel(json!({"isRdma":true})).matches(&d, &env()));
        let mut r = vf();
        r.rdma = vec!["mlx5_3".into()];
        assert!(sel(json!({"IsRdma":true})).matches(&r, &env()));
        // false is "no filter" (upstream; the Go operator always writes it)
        assert!(sel(json!({"IsRdma":false})).matches(&r, &env()));
        assert!(!sel(json!({"vdpaType":"vhost"})).matches(&d, &env()));
        let mut v = vf();
        v.vdpa = Some(crate::device::VdpaInfo {
            name: "vdpa0".into(),
            kind: VdpaType::Vhost,
            vhost_path: Some("/dev/vhost-vdpa-0".into()),
        });
        assert!(sel(json!({"vdpaType":"vhost"})).matches(&v, &env()));
        assert!(!sel(json!({"vdpaType":"virtio"})).matches(&v, &env()));
        assert!(Selectors::from_json(&json!({"vdpaType":"gpu"}), DeviceType::NetDevice).is_err());
    }

    /// Upstream keeps a needVhostNet device when the node has no
    /// /dev/vhost-net (with a warning); `false` is no filter either.
    #[test]
    fn vhost_net_does_not_filter_and_ddp_needs_the_node() {
        let d = vf();
        for v in [true, false] {
            let s = sel(json!({"NeedVhostNet": v}));
            assert!(s.matches(&d, &env()), "{v}");
            assert_eq!(s.need_vhost_net, v);
        }
        let ddp = sel(json!({"ddpProfiles":["GTP"]}));
        assert!(!ddp.matches(&d, &env()));
        let mut e = MatchEnv::default();
        e.ddp_profiles.insert(d.pf.unwrap(), "GTP".into());
        assert!(ddp.matches(&d, &e));
    }

    /// Upstream's auxNetDevice selectors include needVhostNet.
    #[test]
    fn aux_net_device_takes_need_vhost_net() {
        let s = Selectors::from_json(
            &json!({"auxTypes":["sf"],"needVhostNet":true}),
            DeviceType::AuxNetDevice,
        )
        .unwrap();
        assert!(s.need_vhost_net);
    }

    #[test]
    fn pf_names_match_case_insensitively() {
        let d = vf();
        assert!(sel(json!({"pfNames":["ENS1F0"]})).matches(&d, &env()));
        assert!(sel(json!({"pfNames":["Ens1f0#3"]})).matches(&d, &env()));
        assert!(!sel(json!({"pfNames":["ENS1F1"]})).matches(&d, &env()));
    }

    #[test]
    fn p_keys_select_infiniband_partitions() {
        let mut d = vf();
        let s = sel(json!({"pKeys":["0x7fff","0x66"]}));
        assert!(!s.matches(&d, &env()), "no pkey: not selected");
        d.pkey = Some("0x0066".into());
        assert!(s.matches(&d, &env()));
        d.pkey = Some("0x7FFF".into());
        assert!(s.matches(&d, &env()));
        d.pkey = Some("0xffff".into());
        assert!(!s.matches(&d, &env()));
        // not a netDevice selector elsewhere
        let a = Selectors::from_json(&json!({"pKeys":["0x1"]}), DeviceType::AuxNetDevice).unwrap();
        assert!(a.p_keys.is_empty());
    }

    #[test]
    fn type_errors_name_the_selector() {
        for (v, key) in [
            (json!({"vendors":"8086"}), "vendors"),
            (json!({"devices":["12345"]}), "devices"),
            (json!({"isRdma":"yes"}), "isRdma"),
            (json!({"pciAddresses":["nope"]}), "pciAddresses"),
            (json!({"acpiIndexes":["x"]}), "acpiIndexes"),
            (json!({"drivers":[1]}), "drivers"),
        ] {
            let e = Selectors::from_json(&v, DeviceType::NetDevice).unwrap_err();
            assert!(e.to_string().starts_with(key), "{v}: {e}");
        }
        assert_eq!(
            Selectors::from_json(&json!([1]), DeviceType::NetDevice).unwrap_err(),
            SelectorError::NotObject
        );
    }

    #[test]
    fn aux_types_match_auxiliary_devices_only() {
        let s = Selectors::from_json(
            &json!({"auxTypes":["sf"],"pfNames":["ens1f0#88-90"]}),
            DeviceType::AuxNetDevice,
        )
        .unwrap();
        assert!(!s.matches(&vf(), &env()), "a PCI device has no aux type");
        let mut sf = vf();
        sf.aux = Some(crate::device::AuxInfo {
            name: "mlx5_core.sf.4".into(),
            aux_type: "sf".into(),
            sfnum: Some(88),
        });
        sf.vf_index = Some(88);
        assert!(s.matches(&sf, &env()));
        sf.vf_index = Some(91);
        assert!(!s.matches(&sf, &env()), "sfnum outside the range");
        let mut eth = sf.clone();
        eth.vf_index = Some(88);
        eth.aux.as_mut().unwrap().aux_type = "eth".into();
        assert!(!s.matches(&eth, &env()));
    }

    #[test]
    fn accelerator_ignores_net_selectors() {
        let s = Selectors::from_json(
            &json!({"vendors":["8086"],"pfNames":["x"]}),
            DeviceType::Accelerator,
        )
        .unwrap();
        assert!(s.pf_names.is_empty());
        assert_eq!(s.vendors, vec![0x8086]);
    }
}
