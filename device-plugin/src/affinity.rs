//! GPU-aware preferred allocation: among the available devices, prefer
//! those nearest to given GPUs in the PCIe tree — under the same PCIe
//! switch, then the same PCIe root, then the same NUMA node, then the
//! rest (the distance classes of [`sriov_host::topology`]).
//!
//! [`preferred_near`] is a pure function over the pool, the node's
//! [`Topology`] and the GPUs ([`GpuHint`]): must-include devices come
//! first, then each distance class in turn is filled by
//! [`crate::preferred::preferred`] (so NUMA grouping and the spread/pack PF
//! policy still apply within a class). Without GPUs it is exactly
//! [`crate::preferred::preferred`].
//!
//! A GPU is placed by its PCI address when the topology knows it; a GPU
//! known only by NUMA node (an ID that is no PCI address, such as an NVIDIA
//! UUID, with the NUMA nodes PodResources reports) makes the devices on its
//! NUMA nodes [`Distance::SameNuma`]. An auxiliary device (a scalable
//! function) is placed where its parent function is. A device the topology
//! does not know counts as [`Distance::Other`] unless its NUMA node matches.

use std::collections::{BTreeMap, BTreeSet};

use sriov_host::PciAddress;
use sriov_host::topology::{Distance, Topology};

use crate::device::DeviceId;
use crate::podresources::Gpu;
use crate::pools::Pool;
use crate::preferred::{AllocationPolicy, preferred};

/// Where the GPUs to be near are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuHint {
    /// GPUs placed in the PCIe tree (their addresses, known to the topology).
    pub located: Vec<PciAddress>,
    /// NUMA nodes of GPUs that could not be placed.
    pub numa: BTreeSet<u32>,
}

impl GpuHint {
    /// The hint for `gpus` on a node with `topology`: a GPU whose ID is a
    /// PCI address the topology knows is placed; any other contributes its
    /// NUMA nodes.
    pub fn from_gpus(topology: &Topology, gpus: &[Gpu]) -> GpuHint {
        let mut h = GpuHint::default();
        for g in gpus {
            match g.address.filter(|a| topology.location(a).is_some()) {
                Some(a) => h.located.push(a),
                None => h.numa.extend(&g.numa),
            }
        }
        h
    }

    /// No GPU to be near.
    pub fn is_empty(&self) -> bool {
        self.located.is_empty() && self.numa.is_empty()
    }
}

/// The distance class of one pooled device to the nearest GPU of `hint`;
/// `None` when the ID is not in the pool.
pub fn hint_distance(
    pool: &Pool,
    topology: &Topology,
    hint: &GpuHint,
    id: &str,
) -> Option<Distance> {
    let pd = DeviceId::parse(id).and_then(|d| pool.devices.get(&d))?;
    let by_tree = topology.best_distance(&pd.device.address, &hint.located);
    let by_numa = pd
        .device
        .numa_node
        .filter(|n| hint.numa.contains(n))
        .map(|_| Distance::SameNuma);
    Some(
        [by_tree, by_numa]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(Distance::Other),
    )
}

/// The distance class of one pooled device to the nearest of `gpus`;
/// `None` when the ID is not in the pool.
pub fn device_distance(
    pool: &Pool,
    topology: &Topology,
    gpus: &[PciAddress],
    id: &str,
) -> Option<Distance> {
    let pd = DeviceId::parse(id).and_then(|d| pool.devices.get(&d))?;
    Some(
        topology
            .best_distance(&pd.device.address, gpus)
            .unwrap_or(Distance::Other),
    )
}

/// The preferred IDs for one container request, nearest to the GPUs of
/// `hint` first (see the module docs).
pub fn preferred_near(
    pool: &Pool,
    topology: &Topology,
    hint: &GpuHint,
    available: &[String],
    must_include: &[String],
    size: usize,
    policy: AllocationPolicy,
) -> Vec<String> {
    if hint.is_empty() {
        return preferred(pool, available, must_include, size, policy);
    }
    let mut out: Vec<String> = preferred(
        pool,
        must_include,
        must_include,
        size.min(must_include.len()),
        policy,
    );
    let mut by_class: BTreeMap<Distance, Vec<String>> = BTreeMap::new();
    for id in available {
        if out.contains(id) {
            continue;
        }
        if let Some(d) = hint_distance(pool, topology, hint, id) {
            by_class.entry(d).or_default().push(id.clone());
        }
    }
    for ids in by_class.values() {
        let left = size.saturating_sub(out.len());
        if left == 0 {
            break;
        }
        out.extend(preferred(pool, ids, &[], left.min(ids.len()), policy));
    }
    out
}

/// [`preferred_near`] for GPUs given by PCI address (those the topology
/// does not know are ignored).
pub fn preferred_near_gpus(
    pool: &Pool,
    topology: &Topology,
    gpus: &[PciAddress],
    available: &[String],
    must_include: &[String],
    size: usize,
    policy: AllocationPolicy,
) -> Vec<String> {
    let hint = GpuHint {
        located: gpus
            .iter()
            .filter(|g| topology.location(g).is_some())
            .copied()
            .collect(),
        numa: BTreeSet::new(),
    };
    preferred_near(pool, topology, &hint, available, must_include, size, policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use sriov_host::HostRoot;
    use sriov_sim::kernel::write_static_tree;
    use sriov_sim::node::NodeSpec;

    /// The simulated `gpu` node (GPUs and NICs behind PCIe switches), with
    /// one pool of every VF.
    fn gpu_node() -> (tempfile::TempDir, Pool, Topology) {
        let tmp = tempfile::tempdir().unwrap();
        write_static_tree(tmp.path(), &NodeSpec::gpu()).unwrap();
        let root = HostRoot::new(tmp.path());
        let cfg = Config::parse(
            r#"{"resourceList":[{"resourceName":"vfs","selectors":{"devices":["101e","1889","154c","10ca"]}}]}"#,
            "t",
            "nvidia.com",
        )
        .unwrap();
        let node = sriov_host::scan(&root).unwrap();
        let (devices, env) = crate::pools::discover(&root, &cfg, &node);
        let mut pools = crate::pools::build(&root, &cfg, &devices, &env, &Default::default());
        let pool = pools.remove("nvidia.com/vfs").unwrap();
        let topology = Topology::read(&root).unwrap();
        (tmp, pool, topology)
    }

    fn a(s: &str) -> PciAddress {
        s.parse().unwrap()
    }

    fn all_ids(pool: &Pool) -> Vec<String> {
        pool.devices.keys().map(|d| d.to_string()).collect()
    }

    fn classes(pool: &Pool, t: &Topology, gpus: &[PciAddress], ids: &[String]) -> Vec<Distance> {
        ids.iter()
            .map(|id| device_distance(pool, t, gpus, id).unwrap())
            .collect()
    }

    #[test]
    fn switch_then_root_then_numa_then_other() {
        let (_tmp, pool, t) = gpu_node();
        // 4 + 4 + 4 + 4 + 2 + 2 VFs.
        assert_eq!(pool.devices.len(), 20);
        let gpu0 = [a("0000:19:00.0")];
        let got = preferred_near_gpus(
            &pool,
            &t,
            &gpu0,
            &all_ids(&pool),
            &[],
            14,
            AllocationPolicy::Spread,
        );
        assert_eq!(got.len(), 14);
        let c = classes(&pool, &t, &gpu0, &got);
        // 4 VFs of the ConnectX under the GPU's switch, then the 4 E810 VFs
        // on the same root, then the 4 on NUMA 0, then 2 others.
        assert_eq!(&c[..4], &[Distance::SameSwitch; 4]);
        assert_eq!(&c[4..8], &[Distance::SameRoot; 4]);
        assert_eq!(&c[8..12], &[Distance::SameNuma; 4]);
        assert_eq!(&c[12..], &[Distance::Other; 2]);
        assert!(
            got[..4].iter().all(|id| id.starts_with("0000:1b:")),
            "{got:?}"
        );
        // The GPU on NUMA 1: its switch's ConnectX VFs first.
        let gpu2 = [a("0000:9a:00.0")];
        let got = preferred_near_gpus(
            &pool,
            &t,
            &gpu2,
            &all_ids(&pool),
            &[],
            2,
            AllocationPolicy::Pack,
        );
        assert!(got.iter().all(|id| id.starts_with("0000:9b:")), "{got:?}");
    }

    #[test]
    fn the_best_of_several_gpus_counts() {
        let (_tmp, pool, t) = gpu_node();
        let gpus = [a("0000:19:00.0"), a("0000:9a:00.0")];
        let got = preferred_near_gpus(
            &pool,
            &t,
            &gpus,
            &all_ids(&pool),
            &[],
            8,
            AllocationPolicy::Spread,
        );
        assert_eq!(
            classes(&pool, &t, &gpus, &got),
            vec![Distance::SameSwitch; 8]
        );
    }

    #[test]
    fn must_include_first_and_only_available_ids() {
        let (_tmp, pool, t) = gpu_node();
        let gpu0 = [a("0000:19:00.0")];
        // Only two of the switch VFs are available.
        let available: Vec<String> = all_ids(&pool)
            .into_iter()
            .filter(|id| !matches!(id.as_str(), "0000:1b:00.2" | "0000:1b:00.3"))
            .collect();
        let must = vec!["0000:d8:10.0".to_string()];
        let got = preferred_near_gpus(
            &pool,
            &t,
            &gpu0,
            &available,
            &must,
            4,
            AllocationPolicy::Spread,
        );
        assert_eq!(got[0], "0000:d8:10.0");
        assert_eq!(
            classes(&pool, &t, &gpu0, &got[1..]),
            vec![
                Distance::SameSwitch,
                Distance::SameSwitch,
                Distance::SameRoot
            ]
        );
        assert!(
            got.iter()
                .all(|id| id == "0000:d8:10.0" || available.contains(id))
        );
        let mut dedup = got.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), got.len());
    }

    #[test]
    fn without_known_gpus_it_is_the_plain_policy() {
        let (_tmp, pool, t) = gpu_node();
        let ids = all_ids(&pool);
        for gpus in [vec![], vec![a("0000:ee:00.0")]] {
            assert_eq!(
                preferred_near_gpus(&pool, &t, &gpus, &ids, &[], 5, AllocationPolicy::Spread),
                preferred(&pool, &ids, &[], 5, AllocationPolicy::Spread)
            );
        }
    }

    fn gpu(id: &str, numa: &[u32]) -> Gpu {
        Gpu {
            resource: "nvidia.com/gpu".into(),
            id: id.into(),
            address: PciAddress::parse(id),
            numa: numa.iter().copied().collect(),
        }
    }

    #[test]
    fn hint_places_pci_ids_and_keeps_numa_of_the_others() {
        let (_tmp, _pool, t) = gpu_node();
        let h = GpuHint::from_gpus(
            &t,
            &[
                gpu("0000:19:00.0", &[0]),
                gpu("GPU-8f3c", &[1]),
                // a PCI address the node does not have: its NUMA node counts
                gpu("0000:ee:00.0", &[0]),
                gpu("3", &[]),
            ],
        );
        assert_eq!(h.located, vec![a("0000:19:00.0")]);
        assert_eq!(h.numa, BTreeSet::from([0, 1]));
        assert!(GpuHint::from_gpus(&t, &[gpu("GPU-x", &[])]).is_empty());
    }

    #[test]
    fn a_gpu_known_by_numa_only_prefers_its_numa_node() {
        let (_tmp, pool, t) = gpu_node();
        let hint = GpuHint {
            located: vec![],
            numa: BTreeSet::from([1]),
        };
        let ids = all_ids(&pool);
        // Plain spread would start on NUMA node 0 (it has the most VFs).
        let plain = preferred(&pool, &ids, &[], 6, AllocationPolicy::Spread);
        let numa_of = |id: &String| pool.devices[&DeviceId::parse(id).unwrap()].device.numa_node;
        assert!(plain.iter().all(|id| numa_of(id) == Some(0)), "{plain:?}");
        let got = preferred_near(&pool, &t, &hint, &ids, &[], 6, AllocationPolicy::Spread);
        assert_eq!(got.len(), 6);
        assert!(got.iter().all(|id| numa_of(id) == Some(1)), "{got:?}");
        for id in &got {
            assert_eq!(
                hint_distance(&pool, &t, &hint, id),
                Some(Distance::SameNuma)
            );
        }
        // The PCIe tree beats NUMA: a located GPU's switch first.
        let both = GpuHint {
            located: vec![a("0000:9a:00.0")],
            numa: BTreeSet::from([1]),
        };
        let got = preferred_near(&pool, &t, &both, &ids, &[], 4, AllocationPolicy::Spread);
        assert!(got.iter().all(|id| id.starts_with("0000:9b:")), "{got:?}");
    }
}
