//! The devices a node publishes and their attributes.
//!
//! One DRA device per SR-IOV VF. Attribute names:
//!
//! - Standard (`resource.kubernetes.io/`): `pcieRoot` (`pci0000:16`),
//!   `pciBusID` (the VF's address), `numaNode` (only when the VF has one;
//!   never `-1`).
//! - The upstream SR-IOV DRA driver's (`sriovnetwork.k8snetworkplumbingwg.io/`):
//!   `vendor`, `deviceID`, `pfDeviceID` (lower-case hex, no `0x`),
//!   `pciAddress`, `pfPciAddress`, `PFName`, `vfID`, `linkType` (`eth`,
//!   `infiniband`), `rdmaCapable`; plus `k8s.cni.cncf.io/deviceID` (the VF
//!   address, for Multus), `k8s.cni.cncf.io/resourceName` (the VF's pool,
//!   with `--config-file`: [`crate::pools`]) and `dra.net/numaNode` (when
//!   known).
//! - Ours (`sriov-rs.io/`): `rootPort`, `pcieSwitch` (the nearest switch's
//!   upstream port), `gpuDistance` (`switch`, `root`, `numa`, `other`: the
//!   class of the nearest GPU) and `nearestGpus` (their addresses, comma
//!   separated, as many as fit the 64-character limit of a string
//!   attribute). The GPU attributes are absent on a node without GPUs.

use std::collections::BTreeMap;

use sriov_host::topology::Topology;
use sriov_host::{LinkType, Node, PciAddress, PciFunction};

/// The upstream SR-IOV DRA driver's name and attribute domain.
pub const UPSTREAM_DOMAIN: &str = "sriovnetwork.k8snetworkplumbingwg.io";
/// The domain of the standard attributes.
pub const STANDARD_DOMAIN: &str = "resource.kubernetes.io";
/// The domain of the attributes Multus reads (`deviceID`, `resourceName`).
pub const MULTUS_DOMAIN: &str = "k8s.cni.cncf.io";
/// Our own attribute domain.
pub const OUR_DOMAIN: &str = "sriov-rs.io";
/// Longest value of a string attribute (API validation).
pub const MAX_STRING_LEN: usize = 64;

/// A device attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    String(String),
    Int(i64),
    Bool(bool),
}

/// One published device: its DRA name, the VF behind it, and its
/// attributes by fully qualified name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedDevice {
    pub name: String,
    pub address: PciAddress,
    pub attributes: BTreeMap<String, Value>,
}

/// The DRA device name of a VF: its address with `:` and `.` made `-`
/// (`0000-3b-02-0`), a DNS label, as upstream.
pub fn device_name(address: &PciAddress) -> String {
    address.to_string().replace([':', '.'], "-")
}

/// The address behind a device name made by [`device_name`].
pub fn address_of(name: &str) -> Option<PciAddress> {
    let mut parts = name.split('-');
    let (d, b, s, f) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let a = PciAddress::parse(&format!("{d}:{b}:{s}.{f}"))?;
    (device_name(&a) == name).then_some(a)
}

/// Which VFs to publish: all, those of the named PF netdevs, and/or those
/// the device plugin's config puts in a pool served here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// PF netdev names; empty means every PF.
    pub pf_names: Vec<String>,
    /// With `--config-file`: the served pool of each VF to publish, by
    /// address ([`crate::pools::Pools::assign`]); published as
    /// `k8s.cni.cncf.io/resourceName`. `None`: no pools, every VF.
    pub pools: Option<BTreeMap<PciAddress, String>>,
}

impl Selection {
    fn takes(&self, pf: &PciFunction) -> bool {
        self.pf_names.is_empty()
            || pf
                .netdevs
                .iter()
                .any(|n| self.pf_names.iter().any(|p| p == &n.name))
    }
}

/// The devices of a node, in address order: every VF of a selected PF.
pub fn devices(node: &Node, topology: &Topology, selection: &Selection) -> Vec<PublishedDevice> {
    let mut out = Vec::new();
    for vf in node.vfs() {
        let Some(pf) = node.pf_of(&vf.address) else {
            continue;
        };
        if !selection.takes(pf) {
            continue;
        }
        let mut attributes = attributes(node, topology, vf, pf);
        if let Some(pools) = &selection.pools {
            let Some(resource) = pools.get(&vf.address) else {
                continue;
            };
            attributes.insert(
                format!("{MULTUS_DOMAIN}/resourceName"),
                Value::String(resource.clone()),
            );
        }
        out.push(PublishedDevice {
            name: device_name(&vf.address),
            address: vf.address,
            attributes,
        });
    }
    out
}

fn hex(v: u16) -> String {
    format!("{v:04x}")
}

/// The attributes of one VF (see the module docs).
pub fn attributes(
    node: &Node,
    topology: &Topology,
    vf: &PciFunction,
    pf: &PciFunction,
) -> BTreeMap<String, Value> {
    let mut a = BTreeMap::new();
    let mut put = |domain: &str, name: &str, v: Value| {
        a.insert(format!("{domain}/{name}"), v);
    };
    let s = |v: String| Value::String(v);
    let loc = topology
        .location(&vf.address)
        .or_else(|| topology.location(&pf.address));
    if let Some(l) = loc {
        put(STANDARD_DOMAIN, "pcieRoot", s(l.root.to_string()));
        if let Some(rp) = l.root_port {
            put(OUR_DOMAIN, "rootPort", s(rp.to_string()));
        }
        if let Some(sw) = l.switch {
            put(OUR_DOMAIN, "pcieSwitch", s(sw.upstream.to_string()));
        }
    }
    put(STANDARD_DOMAIN, "pciBusID", s(vf.address.to_string()));
    if let Some(n) = vf.numa_node.or(pf.numa_node) {
        put(STANDARD_DOMAIN, "numaNode", Value::Int(i64::from(n)));
        put("dra.net", "numaNode", Value::Int(i64::from(n)));
    }
    put(UPSTREAM_DOMAIN, "vendor", s(hex(pf.vendor)));
    put(UPSTREAM_DOMAIN, "deviceID", s(hex(vf.device)));
    put(UPSTREAM_DOMAIN, "pfDeviceID", s(hex(pf.device)));
    put(UPSTREAM_DOMAIN, "pciAddress", s(vf.address.to_string()));
    put(UPSTREAM_DOMAIN, "pfPciAddress", s(pf.address.to_string()));
    put(MULTUS_DOMAIN, "deviceID", s(vf.address.to_string()));
    if let Some(n) = node.pf_netdev_of(&vf.address) {
        put(UPSTREAM_DOMAIN, "PFName", s(n.name.clone()));
        let link = match n.link_type {
            LinkType::Infiniband => "infiniband",
            _ => "eth",
        };
        put(UPSTREAM_DOMAIN, "linkType", s(link.into()));
    }
    if let Some(info) = vf.vf {
        put(UPSTREAM_DOMAIN, "vfID", Value::Int(i64::from(info.index)));
    }
    put(
        UPSTREAM_DOMAIN,
        "rdmaCapable",
        Value::Bool(!vf.rdma.is_empty()),
    );
    if let Some((dist, gpus)) = topology.nearest_gpus(&vf.address) {
        put(OUR_DOMAIN, "gpuDistance", s(dist.as_str().into()));
        let mut list = String::new();
        for g in gpus {
            let g = g.to_string();
            let extra = if list.is_empty() { 0 } else { 1 };
            if list.len() + extra + g.len() > MAX_STRING_LEN {
                break;
            }
            if extra == 1 {
                list.push(',');
            }
            list.push_str(&g);
        }
        put(OUR_DOMAIN, "nearestGpus", s(list));
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_round_trip() {
        let a: PciAddress = "0000:3b:02.1".parse().unwrap();
        assert_eq!(device_name(&a), "0000-3b-02-1");
        assert_eq!(address_of("0000-3b-02-1"), Some(a));
        assert_eq!(address_of("0000-3b-02"), None);
        assert_eq!(address_of("0000-3b-02-1-x"), None);
        assert_eq!(address_of("0000-3B-02-1"), None, "not a name we make");
    }
}
