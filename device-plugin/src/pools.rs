//! Pools: the devices of each resource, with their health.
//!
//! [`build`] assigns every candidate device to the first resource (in config
//! order) with a selector set it matches; a resource without devices gets
//! no pool. A device that was in a pool and now matches no resource at all,
//! but still exists (its driver was changed by hand, or is being changed),
//! stays in its pool as Unhealthy until it matches something again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sriov_host::{HostRoot, PciAddress};

use crate::config::{Config, DeviceType, ResourceConfig};
use crate::device::Device;
use crate::selectors::MatchEnv;

/// A device in a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolDevice {
    pub device: Device,
    /// `None` when healthy, else why not.
    pub unhealthy: Option<String>,
}

impl PoolDevice {
    /// Healthy.
    pub fn healthy(&self) -> bool {
        self.unhealthy.is_none()
    }
}

/// One pool: a resource and its devices.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub config: Arc<ResourceConfig>,
    pub devices: BTreeMap<PciAddress, PoolDevice>,
}

impl Pool {
    /// What the kubelet sees: (ID, healthy, NUMA node) per device.
    pub fn kubelet_view(&self) -> Vec<(PciAddress, bool, Option<u32>)> {
        self.devices
            .values()
            .map(|d| {
                let numa = if self.config.exclude_topology {
                    None
                } else {
                    d.device.numa_node
                };
                (d.device.address, d.healthy(), numa)
            })
            .collect()
    }

    /// Number of healthy devices.
    pub fn healthy_count(&self) -> usize {
        self.devices.values().filter(|d| d.healthy()).count()
    }
}

/// All pools by full resource name (`intel.com/sriov_netdevice`).
pub type Pools = BTreeMap<String, Pool>;

fn accepts(t: DeviceType, d: &Device) -> bool {
    match t {
        DeviceType::NetDevice => d.is_network(),
        DeviceType::Accelerator => d.is_accelerator(),
        DeviceType::AuxNetDevice => false,
    }
}

/// The first resource claiming `d`.
pub fn claim<'a>(
    resources: &'a [Arc<ResourceConfig>],
    d: &Device,
    env: &MatchEnv,
) -> Option<&'a Arc<ResourceConfig>> {
    resources
        .iter()
        .find(|r| accepts(r.device_type, d) && r.selectors.iter().any(|s| s.matches(d, env)))
}

/// Builds the pools of `config` from `devices`; `previous` keeps devices
/// that matched before and now match nothing (see the module docs).
pub fn build(
    root: &HostRoot,
    config: &Config,
    devices: &[Device],
    env: &MatchEnv,
    previous: &Pools,
) -> Pools {
    let resources: Vec<Arc<ResourceConfig>> = config
        .resources
        .iter()
        .map(|r| {
            // Reuse the previous Arc when the config entry is unchanged.
            match previous.get(&r.resource_name()) {
                Some(p) if *p.config == *r => p.config.clone(),
                _ => Arc::new(r.clone()),
            }
        })
        .collect();
    let mut pools: Pools = BTreeMap::new();
    let mut was_in: HashMap<PciAddress, &str> = HashMap::new();
    for (name, p) in previous {
        for a in p.devices.keys() {
            was_in.insert(*a, name.as_str());
        }
    }
    let mut carrier = CarrierCache::default();
    for d in devices {
        let (rc, sticky) = match claim(&resources, d, env) {
            Some(rc) => (rc, false),
            None => {
                let Some(rc) = was_in
                    .get(&d.address)
                    .and_then(|name| resources.iter().find(|r| r.resource_name() == *name))
                else {
                    continue;
                };
                (rc, true)
            }
        };
        let mut unhealthy = check_health(root, d, &mut carrier);
        if sticky && unhealthy.is_none() {
            unhealthy = Some(match &d.driver {
                Some(drv) => format!("driver {drv} is not selected by the pool any more"),
                None => "no driver bound".to_string(),
            });
        }
        pools
            .entry(rc.resource_name())
            .or_insert_with(|| Pool {
                config: rc.clone(),
                devices: BTreeMap::new(),
            })
            .devices
            .insert(
                d.address,
                PoolDevice {
                    device: d.clone(),
                    unhealthy,
                },
            );
    }
    pools
}

/// PF carrier lookups, once per PF netdev.
#[derive(Debug, Default)]
pub struct CarrierCache {
    by_ifname: HashMap<String, Option<String>>,
}

impl CarrierCache {
    /// Why the link of `ifname` is down, or `None` when it is up (or
    /// cannot be told).
    fn link_problem(&mut self, root: &HostRoot, ifname: &str) -> Option<String> {
        self.by_ifname
            .entry(ifname.to_string())
            .or_insert_with(|| {
                let dir = root.class_net(ifname);
                let read = |n: &str| {
                    std::fs::read_to_string(dir.join(n))
                        .ok()
                        .map(|s| s.trim().to_string())
                };
                match read("carrier").as_deref() {
                    Some("0") => Some(format!("PF {ifname} has no carrier")),
                    Some(_) => None,
                    // carrier is unreadable while the link is admin down
                    None => match read("operstate").as_deref() {
                        Some("down") => Some(format!("PF {ifname} is down")),
                        _ => None,
                    },
                }
            })
            .clone()
    }
}

/// The health of one pool device right now: `None` when healthy.
///
/// Unhealthy when the device vanished, its driver is not the one it had when
/// it was pooled, (vfio-pci) its `/dev/vfio/<group>` is missing, or its PF
/// (for a PF without VFs: itself) has no carrier.
pub fn check_health(root: &HostRoot, d: &Device, carrier: &mut CarrierCache) -> Option<String> {
    let dir = root.pci_device(&d.address);
    if std::fs::symlink_metadata(&dir).is_err() || !dir.join("vendor").exists() {
        return Some("device vanished".into());
    }
    let driver = std::fs::read_link(dir.join("driver"))
        .ok()
        .and_then(|t| t.file_name().and_then(|n| n.to_str()).map(str::to_string));
    if driver != d.driver {
        return Some(format!(
            "driver changed from {} to {}",
            d.driver.as_deref().unwrap_or("none"),
            driver.as_deref().unwrap_or("none")
        ));
    }
    if d.is_vfio()
        && let Some(g) = d.iommu_group
        && !root.vfio_group_dev(g).exists()
    {
        return Some(format!("/dev/vfio/{g} is missing"));
    }
    if d.is_network()
        && let Some(pf) = &d.pf_ifname
        && let Some(problem) = carrier.link_problem(root, pf)
    {
        return Some(problem);
    }
    None
}

/// Re-checks the health of every device of every pool in place; returns
/// the names of the pools whose health changed.
pub fn recheck(root: &HostRoot, pools: &mut Pools) -> Vec<String> {
    let mut carrier = CarrierCache::default();
    let mut changed = Vec::new();
    for (name, pool) in pools.iter_mut() {
        let selected: Vec<&str> = pool
            .config
            .selectors
            .iter()
            .flat_map(|s| s.drivers.iter().map(String::as_str))
            .collect();
        let mut any = false;
        for pd in pool.devices.values_mut() {
            let mut now = check_health(root, &pd.device, &mut carrier);
            // A sticky device (its driver left the pool's selection) stays
            // unhealthy until a rescan finds it matching again.
            if now.is_none()
                && !selected.is_empty()
                && !pd
                    .device
                    .driver
                    .as_deref()
                    .is_some_and(|d| selected.contains(&d))
            {
                now = pd.unhealthy.clone();
            }
            if now != pd.unhealthy {
                match &now {
                    Some(why) => {
                        tracing::warn!(pool = %name, device = %pd.device.address, reason = %why, "device unhealthy")
                    }
                    None => {
                        tracing::info!(pool = %name, device = %pd.device.address, "device healthy again")
                    }
                }
                pd.unhealthy = now;
                any = true;
            }
        }
        if any {
            changed.push(name.clone());
        }
    }
    changed
}
