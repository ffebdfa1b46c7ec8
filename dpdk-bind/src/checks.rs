//! Refusals, decided before anything is written: interfaces in use, IOMMU
//! groups that vfio-pci cannot take, missing drivers.

use sriov_host::driver::{DriverKind, VFIO_GROUP_COMPATIBLE_DRIVERS};
use sriov_host::pci::{self, PciFunction};
use sriov_host::root::HostRoot;
use sriov_host::routes::RouteTable;
use sriov_host::scan::Node;

/// Interfaces of `f` that are up and carry routes: taking their driver away
/// would cut the node's traffic. One message per interface.
pub fn active_interfaces(f: &PciFunction, routes: &RouteTable) -> Vec<String> {
    f.netdevs
        .iter()
        .filter(|n| n.is_up())
        .filter_map(|n| {
            let c = routes.count(&n.name);
            c.any().then(|| {
                format!(
                    "{} ({}) is up with {} IPv4 and {} IPv6 routes: take it down first \
                     (ip link set {} down) or pass --force",
                    f.address, n.name, c.ipv4, c.ipv6, n.name
                )
            })
        })
        .collect()
}

/// For vfio-pci: every other member of each target's IOMMU group must be
/// unbound, on vfio-pci, or on a driver vfio tolerates (pci-stub,
/// pcieport), or be bound in the same command.
pub fn iommu_groups(
    root: &HostRoot,
    node: &Node,
    targets: &[&PciFunction],
) -> Result<Vec<String>, sriov_host::error::Error> {
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for t in targets {
        let Some(group) = t.iommu_group else {
            continue;
        };
        if seen.contains(&group) {
            continue;
        }
        seen.push(group);
        let mut blocking = Vec::new();
        for member in pci::iommu_group_devices(root, group)? {
            if targets.iter().any(|t| t.address == member) {
                continue;
            }
            let driver = node.get(&member).and_then(|f| f.driver.clone());
            let ok = match driver.as_deref() {
                None => true,
                Some(d) => VFIO_GROUP_COMPATIBLE_DRIVERS.contains(&d),
            };
            if !ok {
                let d = driver.unwrap_or_default();
                let kind = match DriverKind::of(Some(&d)) {
                    DriverKind::Userspace => "a userspace driver",
                    _ => "a kernel driver",
                };
                blocking.push(format!("{member} ({kind}: {d})"));
            }
        }
        if !blocking.is_empty() {
            problems.push(format!(
                "IOMMU group {group} of {} also holds {}, which would stay on its driver: \
                 vfio-pci needs the whole group; bind them in the same command or unbind them",
                t.address,
                blocking.join(", ")
            ));
        }
    }
    Ok(problems)
}
