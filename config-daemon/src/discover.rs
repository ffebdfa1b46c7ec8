//! What the node has: a host scan turned into the `SriovNetworkNodeState`
//! status interfaces (the upstream shape: one entry per SR-IOV PF, its VFs
//! under `Vfs`).

use std::collections::BTreeMap;

use sriov_crds::{Interface, InterfaceExt, VirtualFunction};
use sriov_host::netdev::{LinkType, Netdev, OperState};
use sriov_host::netlink::{LinkOps, MacAddr, Netlink, NetlinkError};
use sriov_host::{HostRoot, Node, PciAddress, PciFunction};

/// Scans the node under `root`.
pub fn scan_node(root: &HostRoot) -> Result<Node, sriov_host::error::Error> {
    sriov_host::scan(root)
}

fn hex4(v: u16) -> String {
    format!("{v:04x}")
}

fn link_type(n: Option<&Netdev>) -> String {
    match n.map(|n| n.link_type) {
        Some(LinkType::Infiniband) => "IB".into(),
        Some(LinkType::Ether) => "ETH".into(),
        _ => String::new(),
    }
}

fn link_speed(n: Option<&Netdev>) -> String {
    match n.and_then(|n| n.speed_mbps) {
        Some(s) => format!("{s} Mb/s"),
        None => String::new(),
    }
}

fn admin_state(n: Option<&Netdev>) -> String {
    match n.map(|n| n.operstate) {
        Some(OperState::Up) | Some(OperState::Unknown) => "up".into(),
        Some(_) => "down".into(),
        None => String::new(),
    }
}

/// One VF as the status reports it.
pub fn virtual_function(vf: &PciFunction) -> VirtualFunction {
    let nd = vf.primary_netdev();
    VirtualFunction {
        name: nd.map(|n| n.name.clone()).unwrap_or_default(),
        mac: nd.and_then(|n| n.mac.clone()).unwrap_or_default(),
        driver: vf.driver.clone().unwrap_or_default(),
        pci_address: vf.address.to_string(),
        vendor: hex4(vf.vendor),
        device_id: hex4(vf.device),
        mtu: nd.and_then(|n| n.mtu).map(|m| m as i32).unwrap_or(0),
        vf_id: vf.vf.map(|v| v.index as i32).unwrap_or(0),
        ..Default::default()
    }
}

/// One PF (with its VFs) as the status reports it.
pub fn interface(node: &Node, pf: &PciFunction) -> InterfaceExt {
    let nd = pf.primary_netdev();
    let sriov = pf.sriov.as_ref();
    let mut vfs: Vec<VirtualFunction> = node
        .vfs_of(&pf.address)
        .into_iter()
        .map(virtual_function)
        .collect();
    vfs.sort_by_key(|v| v.vf_id);
    InterfaceExt {
        name: nd.map(|n| n.name.clone()).unwrap_or_default(),
        mac: nd.and_then(|n| n.mac.clone()).unwrap_or_default(),
        driver: pf.driver.clone().unwrap_or_default(),
        pci_address: pf.address.to_string(),
        vendor: hex4(pf.vendor),
        device_id: hex4(pf.device),
        mtu: nd.and_then(|n| n.mtu).map(|m| m as i32).unwrap_or(0),
        num_vfs: sriov.map(|s| s.num_vfs as i32).unwrap_or(0),
        link_speed: link_speed(nd),
        link_type: link_type(nd),
        link_admin_state: admin_state(nd),
        eswitch_mode: "legacy".into(),
        total_vfs: sriov.map(|s| s.total_vfs as i32).unwrap_or(0),
        vfs,
        ..Default::default()
    }
}

/// The status interfaces: every network-class SR-IOV PF, in address order.
pub fn interfaces(node: &Node) -> Vec<InterfaceExt> {
    node.pfs()
        .filter(|pf| pf.is_network())
        .map(|pf| interface(node, pf))
        .collect()
}

/// What netlink shows of a PF in the daemon's network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PfLink {
    /// Its netdev is there: whether it is administratively up, and the
    /// admin MAC of each VF by index ([`MacAddr::ZERO`] when none is set).
    Visible {
        ifname: String,
        admin_up: bool,
        vf_macs: BTreeMap<u32, MacAddr>,
    },
    /// It cannot be seen or is not the same device as the sysfs one (a
    /// simulated node, no netdev, netlink unavailable): why.
    NotVisible(String),
}

/// [`PfLink`] by PF PCI address. PFs missing from the map are treated as
/// [`PfLink::NotVisible`].
pub type PfLinks = BTreeMap<String, PfLink>;

/// What netlink shows of one PF: its netdev (named as in sysfs) must be in
/// this network namespace and be the same device (same ifindex and MAC as
/// sysfs under the host root says), else [`PfLink::NotVisible`] with why.
pub fn pf_link(ops: &dyn LinkOps, pf: &PciFunction) -> PfLink {
    let Some(nd) = pf.primary_netdev() else {
        return PfLink::NotVisible(
            "the PF has no netdev in sysfs (is its network driver bound?)".into(),
        );
    };
    let name = nd.name.as_str();
    let link = match ops.link(name.into()) {
        Ok(l) => l,
        Err(NetlinkError::NotFound { .. }) => {
            return PfLink::NotVisible(format!(
                "{name} is not visible over netlink in this network namespace (a simulated node's PFs have kernel netdevs only with --veth)"
            ));
        }
        Err(e) => return PfLink::NotVisible(format!("reading {name}: {e}")),
    };
    let sysfs_mac = nd.mac.as_deref().and_then(|m| m.parse::<MacAddr>().ok());
    let other_index = nd.ifindex.is_some_and(|i| i != link.index);
    let other_mac = matches!((sysfs_mac, link.mac), (Some(a), Some(b)) if a != b);
    if other_index || other_mac {
        return PfLink::NotVisible(format!(
            "the netdev {name} over netlink (ifindex {}, MAC {}) is not the PF's in sysfs (ifindex {}, MAC {}): the host root is not this kernel's sysfs",
            link.index,
            link.mac
                .map(|m| m.to_string())
                .unwrap_or_else(|| "-".into()),
            nd.ifindex
                .map(|i| i.to_string())
                .unwrap_or_else(|| "-".into()),
            nd.mac.as_deref().unwrap_or("-"),
        ));
    }
    match ops.vfs(name.into()) {
        Ok(vfs) => PfLink::Visible {
            ifname: name.to_string(),
            admin_up: link.admin_up,
            vf_macs: vfs.into_iter().map(|v| (v.index, v.mac)).collect(),
        },
        Err(e) => PfLink::NotVisible(format!("reading the VFs of {name}: {e}")),
    }
}

/// [`pf_link`] for every PF of the spec found on the node.
pub fn pf_links(ops: &dyn LinkOps, node: &Node, spec: &[Interface]) -> PfLinks {
    spec.iter()
        .filter_map(|i| {
            let addr = PciAddress::parse(&i.pci_address)?;
            let pf = node.get(&addr).filter(|f| f.is_pf())?;
            Some((i.pci_address.clone(), pf_link(ops, pf)))
        })
        .collect()
}

/// Every PF of the spec as [`PfLink::NotVisible`] for one reason.
pub fn pf_links_unavailable(spec: &[Interface], why: &str) -> PfLinks {
    spec.iter()
        .map(|i| (i.pci_address.clone(), PfLink::NotVisible(why.to_string())))
        .collect::<BTreeMap<_, _>>()
}

/// [`pf_links`] through a netlink handle opened for the call in this
/// thread's network namespace.
pub fn pf_links_now(node: &Node, spec: &[Interface]) -> PfLinks {
    match Netlink::open() {
        Ok(nl) => pf_links(&nl, node, spec),
        Err(e) => pf_links_unavailable(spec, &format!("netlink is not available: {e}")),
    }
}
