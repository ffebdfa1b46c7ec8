//! GetPreferredAllocation: which of the available devices to hand out.
//!
//! 1. Every must-include device (in the kubelet's order).
//! 2. The rest from one NUMA node when one can supply them all: the node of
//!    the must-include devices first, then the node with the most available
//!    devices. Otherwise the nodes with the most devices first.
//! 3. Within a node, `spread` takes devices round-robin across PFs (the PF
//!    with the most available devices first), so one PF going down takes
//!    out as few of a pod's devices as possible; `pack` takes all it can
//!    from one PF before the next, keeping other PFs whole.

use std::collections::BTreeMap;

use sriov_host::PciAddress;

use crate::device::DeviceId;
use crate::pools::Pool;

/// A device and its PF (for an auxiliary device: its parent).
type Candidate = (DeviceId, Option<PciAddress>);

/// How to choose among PFs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllocationPolicy {
    #[default]
    Spread,
    Pack,
}

impl std::str::FromStr for AllocationPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "spread" => Ok(AllocationPolicy::Spread),
            "pack" => Ok(AllocationPolicy::Pack),
            _ => Err(format!("{s:?}: use spread or pack")),
        }
    }
}

/// The preferred IDs for one container request. IDs that are not in the
/// pool, or unhealthy, are never preferred beyond the must-include ones.
pub fn preferred(
    pool: &Pool,
    available: &[String],
    must_include: &[String],
    size: usize,
    policy: AllocationPolicy,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(size);
    for id in must_include {
        if out.len() >= size {
            break;
        }
        if !out.contains(id) {
            out.push(id.clone());
        }
    }
    if out.len() >= size {
        return out;
    }
    // Candidates: available, healthy, pooled, not already chosen.
    let mut by_numa: BTreeMap<Option<u32>, Vec<Candidate>> = BTreeMap::new();
    for id in available {
        if out.contains(id) {
            continue;
        }
        let Some(pd) = DeviceId::parse(id).and_then(|a| pool.devices.get(&a)) else {
            continue;
        };
        if !pd.healthy() {
            continue;
        }
        by_numa
            .entry(pd.device.numa_node)
            .or_default()
            .push((pd.device.id(), pd.device.pf));
    }
    let need = size - out.len();
    let home: Option<Option<u32>> = must_include
        .iter()
        .filter_map(|id| DeviceId::parse(id).and_then(|a| pool.devices.get(&a)))
        .map(|pd| pd.device.numa_node)
        .next();
    let mut nodes: Vec<(Option<u32>, Vec<Candidate>)> = by_numa.into_iter().collect();
    // Most devices first; address order among equals (stable).
    nodes.sort_by_key(|n| std::cmp::Reverse(n.1.len()));
    let fits = |n: &Option<u32>, v: &Vec<_>| home.is_none_or(|h| h == *n) && v.len() >= need;
    if let Some(i) = nodes.iter().position(|(n, v)| fits(n, v)).or_else(|| {
        // the home node cannot supply all: any node that can
        nodes.iter().position(|(_, v)| v.len() >= need)
    }) {
        let node = nodes.remove(i);
        nodes.insert(0, node);
    }
    for (_, devs) in nodes {
        let left = size - out.len();
        if left == 0 {
            break;
        }
        out.extend(pick(devs, left, policy).into_iter().map(|a| a.to_string()));
    }
    out
}

/// Picks `n` devices from one NUMA node's list by PF policy.
fn pick(devs: Vec<Candidate>, n: usize, policy: AllocationPolicy) -> Vec<DeviceId> {
    let mut by_pf: BTreeMap<Option<PciAddress>, Vec<DeviceId>> = BTreeMap::new();
    for (a, pf) in devs {
        by_pf.entry(pf).or_default().push(a);
    }
    let mut groups: Vec<Vec<DeviceId>> = by_pf
        .into_values()
        .map(|mut v| {
            v.sort();
            v
        })
        .collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
    let mut out = Vec::with_capacity(n);
    match policy {
        AllocationPolicy::Pack => {
            // A single PF that can supply everything, the smallest such;
            // else the largest PFs first.
            if let Some(i) = groups.iter().rposition(|g| g.len() >= n) {
                let g = groups.remove(i);
                groups.insert(0, g);
            }
            for g in groups {
                for a in g {
                    if out.len() == n {
                        return out;
                    }
                    out.push(a);
                }
            }
        }
        AllocationPolicy::Spread => {
            let mut iters: Vec<std::vec::IntoIter<DeviceId>> =
                groups.into_iter().map(Vec::into_iter).collect();
            while out.len() < n {
                let mut progressed = false;
                for it in iters.iter_mut() {
                    if out.len() == n {
                        break;
                    }
                    if let Some(a) = it.next() {
                        out.push(a);
                        progressed = true;
                    }
                }
                if !progressed {
                    break;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::device::Device;
    use crate::pools::PoolDevice;
    use std::sync::Arc;

    /// Two PFs on NUMA 0 (3b:00.0 with 4 VFs, 3b:00.1 with 2), one PF on
    /// NUMA 1 (af:00.0 with 3 VFs).
    fn pool() -> Pool {
        let cfg = Config::parse(
            r#"{"resourceList":[{"resourceName":"p","selectors":{}}]}"#,
            "t",
            "intel.com",
        )
        .unwrap();
        let mut devices = BTreeMap::new();
        let mut add = |pf: &str, bus: u8, dev: u8, n: u8, numa: u32| {
            for i in 0..n {
                let a = PciAddress::new(0, bus, dev, i).unwrap();
                devices.insert(
                    DeviceId::Pci(a),
                    PoolDevice {
                        device: Device {
                            address: a,
                            vendor: 0x8086,
                            device_id: 0x1889,
                            class: 0x020000,
                            driver: Some("iavf".into()),
                            numa_node: Some(numa),
                            iommu_group: None,
                            acpi_index: None,
                            pf: Some(pf.parse().unwrap()),
                            vf_index: Some(u32::from(i)),
                            pf_ifname: None,
                            ifname: None,
                            link_type: None,
                            rdma: vec![],
                            pkey: None,
                            vdpa: None,
                            aux: None,
                        },
                        selector: 0,
                        unhealthy: None,
                        vanished_at: None,
                    },
                );
            }
        };
        add("0000:3b:00.0", 0x3b, 2, 4, 0);
        add("0000:3b:00.1", 0x3b, 0x0a, 2, 0);
        add("0000:af:00.0", 0xaf, 2, 3, 1);
        Pool {
            config: Arc::new(cfg.resources[0].clone()),
            devices,
        }
    }

    fn all(p: &Pool) -> Vec<String> {
        p.devices.keys().map(|a| a.to_string()).collect()
    }

    #[test]
    fn spread_alternates_pfs_on_one_numa_node() {
        let p = pool();
        let got = preferred(&p, &all(&p), &[], 4, AllocationPolicy::Spread);
        assert_eq!(
            got,
            [
                "0000:3b:02.0",
                "0000:3b:0a.0",
                "0000:3b:02.1",
                "0000:3b:0a.1"
            ]
        );
    }

    #[test]
    fn pack_fills_one_pf() {
        let p = pool();
        let got = preferred(&p, &all(&p), &[], 2, AllocationPolicy::Pack);
        // the smallest PF that fits on the largest NUMA node
        assert_eq!(got, ["0000:3b:0a.0", "0000:3b:0a.1"]);
        let got = preferred(&p, &all(&p), &[], 4, AllocationPolicy::Pack);
        assert_eq!(
            got,
            [
                "0000:3b:02.0",
                "0000:3b:02.1",
                "0000:3b:02.2",
                "0000:3b:02.3"
            ]
        );
    }

    #[test]
    fn must_include_comes_first_and_sets_the_numa_node() {
        let p = pool();
        let got = preferred(
            &p,
            &all(&p),
            &["0000:af:02.1".to_string()],
            3,
            AllocationPolicy::Spread,
        );
        assert_eq!(got, ["0000:af:02.1", "0000:af:02.0", "0000:af:02.2"]);
    }

    #[test]
    fn spills_over_numa_nodes_when_needed() {
        let p = pool();
        let got = preferred(&p, &all(&p), &[], 8, AllocationPolicy::Spread);
        assert_eq!(got.len(), 8);
        assert_eq!(got.iter().filter(|a| a.starts_with("0000:3b")).count(), 6);
    }

    #[test]
    fn unhealthy_and_unknown_are_skipped() {
        let mut p = pool();
        let a: PciAddress = "0000:3b:0a.0".parse().unwrap();
        p.devices.get_mut(&DeviceId::Pci(a)).unwrap().unhealthy = Some("x".into());
        let avail = vec![
            "0000:3b:0a.0".to_string(),
            "0000:3b:0a.1".to_string(),
            "0000:99:00.0".to_string(),
        ];
        let got = preferred(&p, &avail, &[], 2, AllocationPolicy::Spread);
        assert_eq!(got, ["0000:3b:0a.1"]);
    }
}
