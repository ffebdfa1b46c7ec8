//! GPU-aware preferred allocation: among the available devices, prefer
//! those nearest to given GPUs in the PCIe tree — under the same PCIe
//! switch, then the same PCIe root, then the same NUMA node, then the
//! rest (the distance classes of [`sriov_host::topology`]).
//!
//! [`preferred_near_gpus`] is a pure function over the pool, the node's
//! [`Topology`] and the GPUs: must-include devices come first, then each
//! distance class in turn is filled by [`crate::preferred::preferred`]
//! (so NUMA grouping and the spread/pack PF policy still apply within a
//! class). Without GPUs (or when the topology knows none of them) it is
//! exactly [`crate::preferred::preferred`].
//!
//! An auxiliary device (a scalable function) is placed where its parent
//! function is. A device the topology does not know counts as
//! [`Distance::Other`].

use std::collections::BTreeMap;

use sriov_host::PciAddress;
use sriov_host::topology::{Distance, Topology};

use crate::device::DeviceId;
use crate::pools::Pool;
use crate::preferred::{AllocationPolicy, preferred};

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

/// The preferred IDs for one container request, nearest to `gpus` first
/// (see the module docs).
pub fn preferred_near_gpus(
    pool: &Pool,
    topology: &Topology,
    gpus: &[PciAddress],
    available: &[String],
    must_include: &[String],
    size: usize,
    policy: AllocationPolicy,
) -> Vec<String> {
    let known: Vec<PciAddress> = gpus
        .iter()
        .filter(|g| topology.location(g).is_some())
        .copied()
        .collect();
    if known.is_empty() {
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
        if let Some(d) = device_distance(pool, topology, &known, id) {
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
}
