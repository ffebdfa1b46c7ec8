//! Pools: the devices of each resource, with their health.
//!
//! [`build`] assigns every candidate device to the first resource (in config
//! order) with a selector set it matches; a resource without devices gets
//! no pool. A device that was in a pool and now matches no resource at all,
//! but still exists (its driver was changed by hand, or is being changed),
//! stays in its pool as Unhealthy until it matches something again.
//!
//! A device that vanished (a VF removed by lowering `sriov_numvfs`, an SF
//! deleted) is first kept in its pool as Unhealthy, so the kubelet hears
//! about it over ListAndWatch, and dropped once it has been gone for
//! [`VANISHED_GRACE`] (at the next rescan or health check after that).
//!
//! Health beyond that ([`HealthChecks`]): a device whose driver changed, a
//! vfio-pci device without its `/dev/vfio/<group>` node, and, only when
//! [`HealthChecks::pf_link`] is on, a device whose PF link is down.
//! Upstream reports every device Healthy; the manager's default is
//! `pf_link` off (upstream's scheduling), [`build`] and [`recheck`] check
//! everything (the library's and the hardware tests' view).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sriov_host::HostRoot;

use crate::config::{Config, DeviceType, ResourceConfig};
use crate::device::{Device, DeviceId};
use crate::selectors::MatchEnv;

/// How long a vanished device stays listed as Unhealthy before it is
/// dropped from its pool.
pub const VANISHED_GRACE: Duration = Duration::from_secs(1);

/// Which health checks run besides presence, driver and the vfio node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HealthChecks {
    /// A device is Unhealthy while its PF's link (a PF without VFs: its
    /// own) has no carrier or is down. Off by default: upstream keeps such
    /// devices Healthy, and on changes where pods are scheduled.
    pub pf_link: bool,
}

impl HealthChecks {
    /// Every check.
    pub const ALL: HealthChecks = HealthChecks { pf_link: true };
}

/// A device in a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolDevice {
    pub device: Device,
    /// The index of the pool's selector set that claimed it (the first
    /// that matches): its `isRdma`, `needVhostNet` and `vdpaType` say what
    /// Allocate adds for the device, as upstream.
    pub selector: usize,
    /// `None` when healthy, else why not.
    pub unhealthy: Option<String>,
    /// When the device was first seen gone (it is dropped
    /// [`VANISHED_GRACE`] later).
    pub vanished_at: Option<Instant>,
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
    pub devices: BTreeMap<DeviceId, PoolDevice>,
}

impl Pool {
    /// What the kubelet sees: (ID, healthy, NUMA node) per device.
    pub fn kubelet_view(&self) -> Vec<(DeviceId, bool, Option<u32>)> {
        self.devices
            .values()
            .map(|d| {
                let numa = if self.config.exclude_topology {
                    None
                } else {
                    d.device.numa_node
                };
                (d.device.id(), d.healthy(), numa)
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
        DeviceType::NetDevice => d.aux.is_none() && d.is_network(),
        DeviceType::Accelerator => d.aux.is_none() && d.is_accelerator(),
        DeviceType::AuxNetDevice => d.aux.is_some(),
    }
}

/// What a scan of `node` offers `config`: the candidate PCI devices (with
/// vDPA types when a resource selects on `vdpaType`), the auxiliary devices
/// when a resource has deviceType `auxNetDevice`, and the node facts
/// selectors need (vhost-net, DDP profiles when a resource selects on
/// `ddpProfiles`).
pub fn discover(
    root: &HostRoot,
    config: &Config,
    node: &sriov_host::Node,
) -> (Vec<Device>, MatchEnv) {
    let any_selector = |f: &dyn Fn(&crate::selectors::Selectors) -> bool| {
        config.resources.iter().any(|r| r.selectors.iter().any(f))
    };
    let want_vdpa = any_selector(&|s| s.vdpa_type.is_some());
    let mut devices = crate::device::candidates(root, node, want_vdpa);
    if config
        .resources
        .iter()
        .any(|r| r.device_type == DeviceType::AuxNetDevice)
    {
        devices.extend(crate::device::aux_candidates(root, node));
    }
    let ddp_profiles = if any_selector(&|s| !s.ddp_profiles.is_empty()) {
        crate::ddp::profiles(&crate::ddp::DdpTool::from_env(), root, node)
    } else {
        Default::default()
    };
    let env = MatchEnv {
        vhost_net_present: root.dev("vhost-net").exists(),
        ddp_profiles,
    };
    (devices, env)
}

/// The first resource claiming `d`, and the index of its first selector
/// set that matches.
pub fn claim<'a>(
    resources: &'a [Arc<ResourceConfig>],
    d: &Device,
    env: &MatchEnv,
) -> Option<(&'a Arc<ResourceConfig>, usize)> {
    resources.iter().find_map(|r| {
        if !accepts(r.device_type, d) {
            return None;
        }
        let i = r.selectors.iter().position(|s| s.matches(d, env))?;
        Some((r, i))
    })
}

/// [`build_checking`] with every health check ([`HealthChecks::ALL`]).
pub fn build(
    root: &HostRoot,
    config: &Config,
    devices: &[Device],
    env: &MatchEnv,
    previous: &Pools,
) -> Pools {
    build_checking(root, config, devices, env, previous, HealthChecks::ALL)
}

/// Builds the pools of `config` from `devices`, running only the health
/// `checks` given; `previous` keeps devices that matched before and now
/// match nothing, and devices that vanished less than [`VANISHED_GRACE`]
/// ago (see the module docs).
pub fn build_checking(
    root: &HostRoot,
    config: &Config,
    devices: &[Device],
    env: &MatchEnv,
    previous: &Pools,
    checks: HealthChecks,
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
    let mut was_in: HashMap<DeviceId, (&str, usize)> = HashMap::new();
    for (name, p) in previous {
        for (a, pd) in &p.devices {
            was_in.insert(a.clone(), (name.as_str(), pd.selector));
        }
    }
    let mut carrier = CarrierCache::default();
    let now = Instant::now();
    for d in devices {
        let id = d.id();
        let (rc, selector, sticky) = match claim(&resources, d, env) {
            Some((rc, i)) => (rc, i, false),
            None => {
                let Some((rc, i)) = was_in.get(&id).and_then(|(name, i)| {
                    resources
                        .iter()
                        .find(|r| r.resource_name() == *name)
                        .map(|r| (r, (*i).min(r.selectors.len().saturating_sub(1))))
                }) else {
                    continue;
                };
                (rc, i, true)
            }
        };
        if rc.selectors[selector].need_vhost_net
            && !env.vhost_net_present
            && !was_in.contains_key(&id)
        {
            tracing::warn!(pool = %rc.resource_name(), device = %id,
                "needVhostNet is set but the node has no /dev/vhost-net; the device is offered without it");
        }
        // Just scanned: present, with the driver it has; the links and
        // device nodes are what may be wrong.
        let mut unhealthy = check_scanned_health(root, d, &mut carrier, checks);
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
                id,
                PoolDevice {
                    device: d.clone(),
                    selector,
                    unhealthy,
                    vanished_at: None,
                },
            );
    }
    // Devices gone from the scan: listed Unhealthy for a grace period
    // first, so the kubelet stops handing them out before they disappear.
    for (name, p) in previous {
        let Some(rc) = resources.iter().find(|r| r.resource_name() == *name) else {
            continue;
        };
        for (id, pd) in &p.devices {
            if pools.values().any(|q| q.devices.contains_key(id)) {
                continue;
            }
            let since = pd.vanished_at.unwrap_or(now);
            if now.duration_since(since) >= VANISHED_GRACE {
                tracing::info!(pool = %name, device = %id, "vanished device dropped");
                continue;
            }
            let why = if present(root, &pd.device) {
                // e.g. a PF whose VFs were enabled, a VF whose PF went away
                "no longer offered by the node"
            } else {
                "device vanished"
            };
            if pd.vanished_at.is_none() {
                tracing::warn!(pool = %name, device = %id, reason = why, "listed Unhealthy until dropped");
            }
            pools
                .entry(name.clone())
                .or_insert_with(|| Pool {
                    config: rc.clone(),
                    devices: BTreeMap::new(),
                })
                .devices
                .insert(
                    id.clone(),
                    PoolDevice {
                        device: pd.device.clone(),
                        selector: pd.selector,
                        unhealthy: Some(why.into()),
                        vanished_at: Some(since),
                    },
                );
        }
    }
    pools
}

/// Whether a device's sysfs entry (and, for an auxiliary device, its bus
/// entry) is still there.
fn present(root: &HostRoot, d: &Device) -> bool {
    sriov_host::pci::present(root, &d.address)
        && d.aux
            .as_ref()
            .is_none_or(|a| sriov_host::auxiliary::exists(root, &a.name))
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
                sriov_host::netdev::link_down_reason(root, ifname).map(|why| format!("PF {why}"))
            })
            .clone()
    }
}

/// The health of one pool device right now: `None` when healthy.
///
/// Unhealthy when the device vanished, its driver is not the one it had when
/// it was pooled, (vfio-pci) its VFIO group node is missing, or (with
/// `checks.pf_link`) its PF (for a PF without VFs: itself) has no carrier.
pub fn check_health(
    root: &HostRoot,
    d: &Device,
    carrier: &mut CarrierCache,
    checks: HealthChecks,
) -> Option<String> {
    if !sriov_host::pci::present(root, &d.address) {
        return Some("device vanished".into());
    }
    if let Some(a) = &d.aux
        && !sriov_host::auxiliary::exists(root, &a.name)
    {
        return Some("device vanished".into());
    }
    let driver = sriov_host::driver::current_driver(root, &d.address)
        .ok()
        .flatten();
    if driver != d.driver {
        return Some(format!(
            "driver changed from {} to {}",
            d.driver.as_deref().unwrap_or("none"),
            driver.as_deref().unwrap_or("none")
        ));
    }
    check_scanned_health(root, d, carrier, checks)
}

/// The part of [`check_health`] a device read by a scan a moment ago still
/// needs (that it is present and has the driver it has, the scan just saw):
/// its `/dev/vfio/<group>` (vfio-pci) and its PF's link. Saves three path
/// lookups per device when pools are built after a scan.
pub fn check_scanned_health(
    root: &HostRoot,
    d: &Device,
    carrier: &mut CarrierCache,
    checks: HealthChecks,
) -> Option<String> {
    if d.is_vfio()
        && let Some(g) = d.iommu_group
    {
        // no-IOMMU mode: the node has /dev/vfio/noiommu-<group>
        let node = sriov_host::devnodes::vfio_group_node(root, g);
        if !node.exists(root) {
            return Some(format!("{} is missing", node.host_path));
        }
    }
    if checks.pf_link
        && d.is_network()
        && let Some(pf) = d.link_ifname()
        && let Some(problem) = carrier.link_problem(root, pf)
    {
        return Some(problem);
    }
    None
}

/// [`recheck_only`] with every health check ([`HealthChecks::ALL`]).
pub fn recheck(root: &HostRoot, pools: &mut Pools) -> Vec<String> {
    recheck_only(root, pools, HealthChecks::ALL)
}

/// Re-checks the health of every device of every pool in place, running
/// only the health `checks` given, and drops
/// devices that vanished more than [`VANISHED_GRACE`] ago (a pool left
/// empty is removed); returns the names of the pools that changed.
pub fn recheck_only(root: &HostRoot, pools: &mut Pools, checks: HealthChecks) -> Vec<String> {
    let mut carrier = CarrierCache::default();
    let mut changed = Vec::new();
    let now = Instant::now();
    for (name, pool) in pools.iter_mut() {
        let before = pool.devices.len();
        pool.devices.retain(|id, pd| {
            let keep = pd
                .vanished_at
                .is_none_or(|t| now.duration_since(t) < VANISHED_GRACE);
            if !keep {
                tracing::info!(pool = %name, device = %id, "vanished device dropped");
            }
            keep
        });
        if pool.devices.len() != before {
            changed.push(name.clone());
        }
    }
    pools.retain(|_, p| !p.devices.is_empty());
    for (name, pool) in pools.iter_mut() {
        let selected: Vec<&str> = pool
            .config
            .selectors
            .iter()
            .flat_map(|s| s.drivers.iter().map(String::as_str))
            .collect();
        let mut any = false;
        for pd in pool.devices.values_mut() {
            if pd.vanished_at.is_some() {
                continue;
            }
            let mut now = check_health(root, &pd.device, &mut carrier, checks);
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
        if any && !changed.contains(name) {
            changed.push(name.clone());
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use sriov_host::PciAddress;

    fn vf(a: &str) -> Device {
        Device {
            address: a.parse().unwrap(),
            vendor: 0x8086,
            device_id: 0x1889,
            class: 0x020000,
            driver: Some("iavf".into()),
            numa_node: Some(0),
            iommu_group: None,
            acpi_index: None,
            pf: Some("0000:3b:00.0".parse().unwrap()),
            vf_index: Some(0),
            pf_ifname: None,
            ifname: None,
            link_type: None,
            rdma: vec![],
            pkey: None,
            vdpa: None,
            aux: None,
        }
    }

    fn id(a: &str) -> DeviceId {
        DeviceId::Pci(a.parse::<PciAddress>().unwrap())
    }

    #[test]
    fn vanished_devices_are_unhealthy_for_the_grace_then_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let root = HostRoot::new(tmp.path());
        let config = Config::parse(
            r#"{"resourceList":[{"resourceName":"a","selectors":{"vendors":["8086"]}},
                                {"resourceName":"b","selectors":{"devices":["1889"]}}]}"#,
            "t",
            "intel.com",
        )
        .unwrap();
        let env = MatchEnv::default();
        let (x, y) = ("0000:3b:02.0", "0000:3b:02.1");
        for a in [x, y] {
            let dir = tmp.path().join("sys/bus/pci/devices").join(a);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("vendor"), "0x8086\n").unwrap();
            std::os::unix::fs::symlink("../../../bus/pci/drivers/iavf", dir.join("driver"))
                .unwrap();
        }
        let pools = build(&root, &config, &[vf(x), vf(y)], &env, &Pools::new());
        let a = "intel.com/a";
        assert_eq!(pools[a].healthy_count(), 2);
        // y gone: listed Unhealthy, also by the next build
        std::fs::remove_dir_all(tmp.path().join("sys/bus/pci/devices").join(y)).unwrap();
        let pools = build(&root, &config, &[vf(x)], &env, &pools);
        let pd = &pools[a].devices[&id(y)];
        assert_eq!(pd.unhealthy.as_deref(), Some("device vanished"));
        let since = pd.vanished_at.expect("marked");
        let mut pools = build(&root, &config, &[vf(x)], &env, &pools);
        assert_eq!(pools[a].devices[&id(y)].vanished_at, Some(since));
        assert_eq!(pools[a].kubelet_view().len(), 2);
        // a health check within the grace keeps it; after, drops it
        assert!(recheck(&root, &mut pools).is_empty());
        assert_eq!(pools[a].devices.len(), 2);
        pools
            .get_mut(a)
            .unwrap()
            .devices
            .get_mut(&id(y))
            .unwrap()
            .vanished_at = Some(Instant::now() - VANISHED_GRACE);
        assert_eq!(recheck(&root, &mut pools), vec![a.to_string()]);
        assert_eq!(pools[a].devices.keys().collect::<Vec<_>>(), [&id(x)]);
        // the last device of a pool no longer offered (still present): the
        // pool goes after the grace
        let mut pools = build(&root, &config, &[], &env, &pools);
        assert_eq!(
            pools[a].devices[&id(x)].unhealthy.as_deref(),
            Some("no longer offered by the node")
        );
        pools
            .get_mut(a)
            .unwrap()
            .devices
            .get_mut(&id(x))
            .unwrap()
            .vanished_at = Some(Instant::now() - VANISHED_GRACE);
        let pools2 = build(&root, &config, &[], &env, &pools);
        assert!(pools2.is_empty(), "{pools2:?}");
        recheck(&root, &mut pools);
        assert!(pools.is_empty(), "{pools:?}");
        // a device moving to another pool is not vanished
        let pools = build(&root, &config, &[vf(x)], &env, &Pools::new());
        let mut moved = vf(x);
        moved.vendor = 0x15b3;
        let pools = build(&root, &config, &[moved], &env, &pools);
        assert!(!pools.contains_key(a));
        assert!(pools["intel.com/b"].devices[&id(x)].healthy());
    }
}
