//! Turning `DEV` arguments (PCI addresses, short or full, or interface
//! names) into the functions of a scanned node.

use sriov_host::netdev;
use sriov_host::pci::{PciAddress, PciFunction};
use sriov_host::root::HostRoot;
use sriov_host::scan::Node;

/// Resolves every argument; all problems are reported together. Duplicates
/// (the same device named twice) are dropped, first mention wins.
pub fn resolve<'n>(
    root: &HostRoot,
    node: &'n Node,
    args: &[String],
) -> Result<Vec<&'n PciFunction>, Vec<String>> {
    let mut found: Vec<&PciFunction> = Vec::new();
    let mut problems = Vec::new();
    for arg in args {
        match resolve_one(root, node, arg) {
            Ok(f) => {
                if !found.iter().any(|g| g.address == f.address) {
                    found.push(f);
                }
            }
            Err(p) => problems.push(p),
        }
    }
    if problems.is_empty() {
        Ok(found)
    } else {
        Err(problems)
    }
}

fn resolve_one<'n>(root: &HostRoot, node: &'n Node, arg: &str) -> Result<&'n PciFunction, String> {
    if let Some(addr) = PciAddress::parse(arg) {
        return node
            .get(&addr)
            .ok_or_else(|| format!("{arg}: no PCI device {addr} on this node"));
    }
    if let Some(f) = node.by_ifname(arg) {
        return Ok(f);
    }
    // Not seen by the scan: ask sysfs why (no such interface, or virtual).
    match netdev::pci_address_of(root, arg) {
        Ok(addr) => node
            .get(&addr)
            .ok_or_else(|| format!("{arg}: interface of PCI device {addr}, which is gone")),
        Err(e) => Err(format!(
            "{arg}: not a PCI address (DDDD:BB:DD.F or BB:DD.F) nor a PCI network interface: {e}"
        )),
    }
}
