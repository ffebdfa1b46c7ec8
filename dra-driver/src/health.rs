//! Device health for the kubelet: `v1alpha1.DRAResourceHealth`
//! (KEP-4680, kubelet feature gate `ResourceHealthStatus`), served on the
//! DRA plugin socket next to `DRAPlugin`.
//!
//! - [`check`] reads one VF through `host`: unhealthy when it is gone from
//!   the node, bound to no driver (neither a netdev nor a VFIO group), or
//!   on vfio-pci without its `/dev/vfio` group node. A driver change alone
//!   is not a fault here: a claim's configuration may rebind the VF.
//! - A [`Monitor`] holds the current health of every device the driver
//!   knows (published, or prepared for a claim); `main` re-checks them
//!   every few seconds and [`Monitor::update`] logs each transition.
//! - [`HealthService`] streams the whole snapshot to each watcher at once,
//!   on every change, and every [`HEARTBEAT`] (the kubelet turns a device
//!   not updated for 30 s into `Unknown`). The kubelet then sets
//!   `allocatedResourcesStatus` in the status of the pods whose claims
//!   hold a changed device.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sriov_host::{HostRoot, PciAddress, PciFunction};
use tokio::sync::{mpsc, watch};
use tonic::{Request, Response, Status};

/// Generated DRA resource health API v1alpha1.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1alpha1 {
    tonic::include_proto!("v1alpha1");
}

use v1alpha1::{DeviceHealth, DeviceIdentifier, HealthStatus, NodeWatchResourcesResponse};

/// How often a watcher gets the snapshot again when nothing changed: well
/// inside the kubelet's 30 s health timeout.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// Why the VF at `address` is unhealthy right now; `None` when healthy.
pub fn check(root: &HostRoot, address: &PciAddress) -> Option<String> {
    let f = match PciFunction::read(root, address) {
        Ok(f) => f,
        Err(e) => return Some(format!("gone from the node: {e}")),
    };
    match f.driver.as_deref() {
        None => Some("bound to no driver".into()),
        Some("vfio-pci") => {
            let group = f.iommu_group?;
            let node = sriov_host::devnodes::vfio_group_node(root, group);
            (!node.exists(root)).then(|| format!("on vfio-pci but {} is missing", node.host_path))
        }
        Some(_) => None,
    }
}

/// Device name → why it is unhealthy (`None`: healthy).
pub type Snapshot = BTreeMap<String, Option<String>>;

/// The current health of the driver's devices in one pool (the node).
#[derive(Clone)]
pub struct Monitor {
    pool: String,
    tx: Arc<watch::Sender<Arc<Snapshot>>>,
}

impl Monitor {
    /// An empty monitor for `pool` (the node name, as in the slices).
    pub fn new(pool: &str) -> Self {
        Self {
            pool: pool.to_string(),
            tx: Arc::new(watch::Sender::new(Arc::new(Snapshot::new()))),
        }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.tx.borrow().clone()
    }

    /// Replaces the snapshot; returns the devices whose health changed
    /// (added and removed ones included), each transition logged.
    /// Watchers hear of it only when something changed.
    pub fn update(&self, next: Snapshot) -> Vec<String> {
        let before = self.snapshot();
        let mut changed = Vec::new();
        for (name, problem) in &next {
            match before.get(name) {
                Some(p) if p == problem => {}
                old => {
                    match (old, problem) {
                        (_, Some(why)) => {
                            tracing::warn!(device = %name, reason = %why, "device unhealthy")
                        }
                        (Some(Some(_)), None) => {
                            tracing::info!(device = %name, "device healthy again")
                        }
                        _ => {}
                    }
                    changed.push(name.clone());
                }
            }
        }
        changed.extend(before.keys().filter(|n| !next.contains_key(*n)).cloned());
        if !changed.is_empty() {
            self.tx.send_replace(Arc::new(next));
        }
        changed
    }

    /// Re-checks `devices` (name, address) through `host` and updates.
    pub fn recheck(&self, root: &HostRoot, devices: &[(String, PciAddress)]) -> Vec<String> {
        self.update(
            devices
                .iter()
                .map(|(n, a)| (n.clone(), check(root, a)))
                .collect(),
        )
    }

    /// The gRPC service streaming this monitor's snapshots.
    pub fn service(&self, heartbeat: Duration) -> HealthService {
        HealthService {
            monitor: self.clone(),
            heartbeat,
            stop: None,
        }
    }
}

/// The wire form of a snapshot of `pool`, stamped `now`.
fn response(pool: &str, snap: &Snapshot, now: i64) -> NodeWatchResourcesResponse {
    NodeWatchResourcesResponse {
        devices: snap
            .iter()
            .map(|(name, problem)| DeviceHealth {
                device: Some(DeviceIdentifier {
                    pool_name: pool.to_string(),
                    device_name: name.clone(),
                }),
                health: if problem.is_none() {
                    HealthStatus::Healthy
                } else {
                    HealthStatus::Unhealthy
                } as i32,
                last_updated_time: now,
            })
            .collect(),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `v1alpha1.DRAResourceHealth` over a [`Monitor`].
#[derive(Clone)]
pub struct HealthService {
    monitor: Monitor,
    heartbeat: Duration,
    stop: Option<watch::Receiver<bool>>,
}

impl HealthService {
    /// Ends every stream once `stop` turns true: a server shutting down
    /// gracefully waits for its open streams, and the kubelet never ends
    /// its watch.
    pub fn stop_on(mut self, stop: watch::Receiver<bool>) -> Self {
        self.stop = Some(stop);
        self
    }
}

type WatchStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<NodeWatchResourcesResponse, Status>> + Send>>;

#[tonic::async_trait]
impl v1alpha1::dra_resource_health_server::DraResourceHealth for HealthService {
    type NodeWatchResourcesStream = WatchStream;

    async fn node_watch_resources(
        &self,
        _req: Request<v1alpha1::NodeWatchResourcesRequest>,
    ) -> Result<Response<Self::NodeWatchResourcesStream>, Status> {
        // The task holds a receiver only: dropping the monitor ends it.
        let pool = self.monitor.pool.clone();
        let mut rx = self.monitor.tx.subscribe();
        let heartbeat = self.heartbeat;
        let mut stop = self.stop.clone();
        let (out, stream) = mpsc::channel(4);
        tokio::spawn(async move {
            let stopped = async {
                match stop.as_mut() {
                    Some(s) => {
                        let _ = s.wait_for(|s| *s).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(stopped);
            let mut tick = tokio::time::interval(heartbeat);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                // The first tick is immediate: the snapshot at once.
                tokio::select! {
                    () = &mut stopped => return,
                    _ = tick.tick() => {}
                    r = rx.changed() => {
                        if r.is_err() {
                            return; // the monitor is gone: end the stream
                        }
                        tick.reset();
                    }
                }
                let snap = rx.borrow_and_update().clone();
                if out
                    .send(Ok(response(&pool, &snap, unix_now())))
                    .await
                    .is_err()
                {
                    return; // the watcher went away
                }
            }
        });
        tracing::debug!("health watcher connected");
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(stream),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::v1alpha1::dra_resource_health_server::DraResourceHealth;
    use super::*;
    use tokio_stream::StreamExt;

    fn snap(entries: &[(&str, Option<&str>)]) -> Snapshot {
        entries
            .iter()
            .map(|(n, p)| (n.to_string(), p.map(str::to_string)))
            .collect()
    }

    /// The simulated `gpu` node with VF 1 of its second PF on vfio-pci.
    fn node() -> (tempfile::TempDir, HostRoot, PciFunction, PciFunction) {
        let mut spec = sriov_sim::node::NodeSpec::gpu();
        spec.pfs[1].vf_drivers.insert(1, "vfio-pci".into());
        let tmp = tempfile::tempdir().unwrap();
        sriov_sim::kernel::write_static_tree(tmp.path(), &spec).unwrap();
        let root = HostRoot::new(tmp.path());
        let vfs = sriov_host::scan(&root)
            .unwrap()
            .vfs_of(&"0000:1c:00.0".parse().unwrap())
            .into_iter()
            .cloned()
            .collect::<Vec<_>>();
        (tmp, root, vfs[0].clone(), vfs[1].clone())
    }

    #[test]
    fn check_finds_gone_driverless_and_vfio_without_group_node() {
        let (_tmp, root, netdev, vfio) = node();
        assert_eq!(vfio.driver.as_deref(), Some("vfio-pci"));
        assert_eq!(check(&root, &netdev.address), None);
        // The simulated node has the group node; remove it, then put it back.
        let group = vfio.iommu_group.unwrap();
        assert_eq!(check(&root, &vfio.address), None);
        let node = root.join(format!("dev/vfio/{group}"));
        let kept = std::fs::read(&node).unwrap();
        std::fs::remove_file(&node).unwrap();
        let why = check(&root, &vfio.address).unwrap();
        assert!(
            why.contains(&format!("/dev/vfio/{group} is missing")),
            "{why}"
        );
        std::fs::write(&node, kept).unwrap();
        assert_eq!(check(&root, &vfio.address), None);
        // Unbound: no driver link.
        std::fs::remove_file(root.pci_device(&netdev.address).join("driver")).unwrap();
        assert_eq!(
            check(&root, &netdev.address).as_deref(),
            Some("bound to no driver")
        );
        // Gone from the node.
        let gone: PciAddress = "0000:1c:0f.7".parse().unwrap();
        assert!(
            check(&root, &gone)
                .unwrap()
                .starts_with("gone from the node")
        );
        // The monitor over all three.
        let m = Monitor::new("n");
        let names = [
            ("a".to_string(), netdev.address),
            ("b".to_string(), vfio.address),
            ("c".to_string(), gone),
        ];
        assert_eq!(m.recheck(&root, &names).len(), 3);
        let snap = m.snapshot();
        assert!(snap["a"].is_some() && snap["b"].is_none() && snap["c"].is_some());
    }

    #[test]
    fn update_reports_transitions_additions_and_removals() {
        let m = Monitor::new("node-a");
        assert_eq!(
            m.update(snap(&[("a", None), ("b", None)])),
            vec!["a".to_string(), "b".to_string()]
        );
        assert!(m.update(snap(&[("a", None), ("b", None)])).is_empty());
        assert_eq!(
            m.update(snap(&[("a", Some("gone")), ("b", None)])),
            vec!["a".to_string()]
        );
        // Another reason is another state (logged again).
        assert_eq!(
            m.update(snap(&[("a", Some("no driver")), ("b", None)])),
            vec!["a".to_string()]
        );
        assert_eq!(
            m.update(snap(&[("a", None)])),
            vec!["a".to_string(), "b".to_string()]
        );
    }

    #[test]
    fn responses_name_the_pool_and_map_health() {
        let r = response("node-a", &snap(&[("x", None), ("y", Some("gone"))]), 42);
        assert_eq!(r.devices.len(), 2);
        let d = &r.devices[1];
        assert_eq!(d.device.as_ref().unwrap().pool_name, "node-a");
        assert_eq!(d.device.as_ref().unwrap().device_name, "y");
        assert_eq!(d.health, HealthStatus::Unhealthy as i32);
        assert_eq!(d.last_updated_time, 42);
        assert_eq!(r.devices[0].health, HealthStatus::Healthy as i32);
    }

    #[tokio::test]
    async fn the_stream_sends_at_once_on_change_and_on_heartbeat() {
        let m = Monitor::new("n");
        m.update(snap(&[("a", None)]));
        let svc = m.service(Duration::from_millis(300));
        let mut s = svc
            .node_watch_resources(Request::new(v1alpha1::NodeWatchResourcesRequest {}))
            .await
            .unwrap()
            .into_inner();
        let first = s.next().await.unwrap().unwrap();
        assert_eq!(first.devices[0].health, HealthStatus::Healthy as i32);
        // A change is sent without waiting for the heartbeat.
        m.update(snap(&[("a", Some("bound to no driver"))]));
        let t0 = tokio::time::Instant::now();
        let second = s.next().await.unwrap().unwrap();
        assert_eq!(second.devices[0].health, HealthStatus::Unhealthy as i32);
        assert!(t0.elapsed() < Duration::from_millis(250));
        // Nothing changes: the same snapshot again after the heartbeat.
        let third = s.next().await.unwrap().unwrap();
        assert_eq!(
            third.devices,
            second
                .devices
                .clone()
                .into_iter()
                .map(|mut d| {
                    d.last_updated_time = third.devices[0].last_updated_time;
                    d
                })
                .collect::<Vec<_>>()
        );
        assert!(t0.elapsed() >= Duration::from_millis(290));
        // The monitor gone: the stream ends.
        drop(svc);
        drop(m);
        assert!(s.next().await.is_none());
    }
}
