//! `dpdk-bind status`: network devices (class 0x02, and anything on a
//! userspace driver) grouped by driver kind.

use std::io::Write;

use serde::Serialize;
use sriov_host::driver::DriverKind;
use sriov_host::pci::PciFunction;
use sriov_host::root::HostRoot;
use sriov_host::routes::RouteTable;
use sriov_host::scan::{Node, scan};

/// One device, as printed by `status --json`.
#[derive(Debug, Serialize)]
pub struct Row {
    pub pci: String,
    pub vendor: String,
    pub device: String,
    pub driver: Option<String>,
    pub ifname: Option<String>,
    pub numa: Option<u32>,
    pub iommu_group: Option<u32>,
    pub pf: Option<String>,
    pub vf_index: Option<u32>,
    pub sriov_numvfs: Option<u32>,
    pub sriov_totalvfs: Option<u32>,
}

impl Row {
    fn of(f: &PciFunction) -> Row {
        Row {
            pci: f.address.to_string(),
            vendor: format!("{:04x}", f.vendor),
            device: format!("{:04x}", f.device),
            driver: f.driver.clone(),
            ifname: f.primary_netdev().map(|n| n.name.clone()),
            numa: f.numa_node,
            iommu_group: f.iommu_group,
            pf: f.vf.map(|v| v.pf.to_string()),
            vf_index: f.vf.map(|v| v.index),
            sriov_numvfs: f.sriov.as_ref().map(|s| s.num_vfs),
            sriov_totalvfs: f.sriov.as_ref().map(|s| s.total_vfs),
        }
    }
}

/// The devices `status` shows, in address order.
pub fn shown(node: &Node) -> Vec<&PciFunction> {
    node.functions()
        .filter(|f| f.is_network() || DriverKind::of(f.driver.as_deref()) == DriverKind::Userspace)
        .collect()
}

pub fn run(root: &HostRoot, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let node = scan(root)?;
    let devices = shown(&node);
    if json {
        let rows: Vec<Row> = devices.iter().map(|f| Row::of(f)).collect();
        serde_json::to_writer_pretty(&mut *out, &rows)?;
        writeln!(out)?;
        return Ok(());
    }
    let routes = RouteTable::read(root)?;
    let groups = [
        (DriverKind::Kernel, "Network devices using a kernel driver"),
        (
            DriverKind::Userspace,
            "Network devices using a userspace driver",
        ),
        (DriverKind::None, "Network devices without a driver"),
    ];
    for (i, (kind, title)) in groups.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(out, "{title}")?;
        writeln!(out, "{}", "=".repeat(title.len()))?;
        let mine: Vec<&&PciFunction> = devices
            .iter()
            .filter(|f| DriverKind::of(f.driver.as_deref()) == *kind)
            .collect();
        if mine.is_empty() {
            writeln!(out, "<none>")?;
        }
        for f in mine {
            writeln!(out, "{}", line(f, &routes))?;
        }
    }
    Ok(())
}

/// `0000:3b:00.0 8086:1593 drv=ice if=ens1f0 *Active* numa=0 iommu=10 vfs=3/64`
fn line(f: &PciFunction, routes: &RouteTable) -> String {
    let mut s = format!("{} {:04x}:{:04x}", f.address, f.vendor, f.device);
    if let Some(d) = &f.driver {
        s += &format!(" drv={d}");
    }
    if !f.netdevs.is_empty() {
        let names: Vec<&str> = f.netdevs.iter().map(|n| n.name.as_str()).collect();
        s += &format!(" if={}", names.join(","));
        if f.netdevs
            .iter()
            .any(|n| n.is_up() && routes.count(&n.name).any())
        {
            s += " *Active*";
        }
    }
    s += &match f.numa_node {
        Some(n) => format!(" numa={n}"),
        None => " numa=-".to_string(),
    };
    s += &match f.iommu_group {
        Some(g) => format!(" iommu={g}"),
        None => " iommu=-".to_string(),
    };
    if let Some(cap) = &f.sriov {
        s += &format!(" vfs={}/{}", cap.num_vfs, cap.total_vfs);
    }
    if let Some(vf) = &f.vf {
        s += &format!(" vf={} pf={}", vf.index, vf.pf);
    }
    s
}
