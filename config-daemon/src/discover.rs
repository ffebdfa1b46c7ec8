//! What the node has: a host scan turned into the `SriovNetworkNodeState`
//! status interfaces (the upstream shape: one entry per SR-IOV PF, its VFs
//! under `Vfs`).

use sriov_crds::{InterfaceExt, VirtualFunction};
use sriov_host::netdev::{LinkType, Netdev, OperState};
use sriov_host::{HostRoot, Node, PciFunction};

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
