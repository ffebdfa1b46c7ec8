//! The kubelet's PodResources API (v1) and, from it, the GPUs of the pod
//! the kubelet is admitting, for GPU-aware `GetPreferredAllocation`
//! ([`crate::affinity`]).
//!
//! A `GetPreferredAllocation` request names no pod. What makes the pod
//! findable (kubelet 1.34, `pkg/kubelet`; docs/device-plugin.md, "GPU-aware
//! preferred allocation"):
//!
//! - the kubelet admits pods one at a time (`HandlePodAdditions`), adding
//!   each to its pod manager before admitting it, so `List` (active pods)
//!   already shows the pod being admitted;
//! - within a pod it allocates the init containers, then the containers, in
//!   order, and records each resource's devices right after that resource's
//!   `Allocate` (`devicemanager.allocateContainerResources`), so `List`
//!   shows the devices the pod got so far;
//! - it releases its device manager lock while it calls
//!   `GetPreferredAllocation`, so a `List` from inside the call is answered.
//!
//! The plugin keeps the last few `List` answers it saw ([`Snapshot`]s,
//! taken at every `GetPreferredAllocation` and every
//! [`REFRESH_INTERVAL`]). The pod being admitted is the one pod that
//! appeared, or gained devices, since the newest snapshot that shows any
//! change ([`admitting_pod_since`]): pods already admitted do not gain
//! devices, and no other pod is admitted meanwhile. When more than one pod
//! qualifies (two pods admitted since that snapshot) or none does (no
//! snapshot yet, PodResources unreachable), the plugin cannot tell and uses
//! its plain policy.
//!
//! The GPUs are the pod's devices of the GPU resources
//! (`--gpu-resources`): an ID that is a PCI address is placed in the PCIe
//! tree; any other ID (NVIDIA's plugin uses GPU UUIDs or indexes) only
//! contributes the NUMA nodes `List` reports for it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sriov_host::PciAddress;

use crate::pod_resources_api::ListPodResourcesRequest;
use crate::pod_resources_api::ListPodResourcesResponse;
use crate::pod_resources_api::pod_resources_lister_client::PodResourcesListerClient;

/// The kubelet's PodResources socket (under the host root).
pub const DEFAULT_SOCKET: &str = "/var/lib/kubelet/pod-resources/kubelet.sock";
/// The resources whose devices count as GPUs by default.
pub const DEFAULT_GPU_RESOURCES: &str = "nvidia.com/gpu,amd.com/gpu";
/// How long one `List` may take before the plugin gives up on it.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the plugin takes a snapshot besides those at
/// `GetPreferredAllocation`.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(2);

/// A pod as PodResources names it (it gives no UID).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodKey {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for PodKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One device a pod holds: its resource and its ID.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HeldDevice {
    pub resource: String,
    pub id: String,
}

/// What one `List` answer says about one pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodEntry {
    /// Every device of every container listed.
    pub devices: BTreeSet<HeldDevice>,
    /// The NUMA nodes `List` reports for a device (its plugin's topology).
    pub numa: BTreeMap<HeldDevice, BTreeSet<u32>>,
    /// How many pods of the answer have this namespace and name (more than
    /// one while a pod is replaced by one of the same name).
    pub occurrences: usize,
}

/// One `List` answer, by pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub pods: BTreeMap<PodKey, PodEntry>,
}

impl Snapshot {
    /// The snapshot of a `List` answer.
    pub fn from_response(resp: &ListPodResourcesResponse) -> Snapshot {
        let mut pods: BTreeMap<PodKey, PodEntry> = BTreeMap::new();
        for p in &resp.pod_resources {
            let e = pods
                .entry(PodKey {
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                })
                .or_default();
            e.occurrences += 1;
            for c in &p.containers {
                for d in &c.devices {
                    let numa: BTreeSet<u32> = d
                        .topology
                        .iter()
                        .flat_map(|t| &t.nodes)
                        .filter_map(|n| u32::try_from(n.id).ok())
                        .collect();
                    for id in &d.device_ids {
                        let h = HeldDevice {
                            resource: d.resource_name.clone(),
                            id: id.clone(),
                        };
                        if !numa.is_empty() {
                            e.numa.entry(h.clone()).or_default().extend(&numa);
                        }
                        e.devices.insert(h);
                    }
                }
            }
        }
        Snapshot { pods }
    }
}

/// One GPU of the pod being admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpu {
    pub resource: String,
    pub id: String,
    /// The ID read as a PCI address (AMD's plugin, the lane's fake GPU
    /// plugin); `None` for UUIDs and indexes (NVIDIA's plugin).
    pub address: Option<PciAddress>,
    /// NUMA nodes from `List`.
    pub numa: BTreeSet<u32>,
}

/// Which pod the kubelet is admitting, from two snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admitting {
    /// Exactly one pod appeared or gained devices: this one, with its GPUs
    /// (empty when it holds none).
    Pod { pod: PodKey, gpus: Vec<Gpu> },
    /// No earlier snapshot to compare with.
    NoBaseline,
    /// No pod appeared or gained devices.
    NoCandidate,
    /// More than one pod did (or one whose name two pods share).
    Ambiguous(Vec<PodKey>),
}

/// The pods of `now` that are not in `prev`, or hold a device they did not
/// hold in `prev`.
pub fn changed_pods(prev: &Snapshot, now: &Snapshot) -> Vec<PodKey> {
    now.pods
        .iter()
        .filter(|(k, e)| {
            prev.pods
                .get(*k)
                .is_none_or(|p| !e.devices.is_subset(&p.devices))
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// The GPUs a pod holds: its devices of `gpu_resources`.
pub fn gpus_of(entry: &PodEntry, gpu_resources: &[String]) -> Vec<Gpu> {
    entry
        .devices
        .iter()
        .filter(|d| gpu_resources.contains(&d.resource))
        .map(|d| Gpu {
            resource: d.resource.clone(),
            id: d.id.clone(),
            address: PciAddress::parse(&d.id),
            numa: entry.numa.get(d).cloned().unwrap_or_default(),
        })
        .collect()
}

/// The pod being admitted: the one pod of `now` that is new or gained
/// devices since `prev` (see the module docs), with its GPUs.
pub fn admitting_pod(
    prev: Option<&Snapshot>,
    now: &Snapshot,
    gpu_resources: &[String],
) -> Admitting {
    let Some(prev) = prev else {
        return Admitting::NoBaseline;
    };
    let changed = changed_pods(prev, now);
    match changed.as_slice() {
        [] => Admitting::NoCandidate,
        [one] => {
            let e = &now.pods[one];
            if e.occurrences > 1 {
                return Admitting::Ambiguous(changed);
            }
            Admitting::Pod {
                pod: one.clone(),
                gpus: gpus_of(e, gpu_resources),
            }
        }
        _ => Admitting::Ambiguous(changed),
    }
}

/// [`admitting_pod`] against earlier snapshots, newest first: the first
/// that shows a changed pod decides. An older baseline is as sound as a
/// newer one (only the pod being admitted can appear or gain devices, so
/// whenever any pod changed since a baseline, that pod is among them); the
/// newest is only the least likely to hold other new pods. Going back helps
/// when the newest snapshot was taken in the middle of this pod's admission
/// (after its GPU, before this call), where it shows no change.
pub fn admitting_pod_since(
    history: &[Snapshot],
    now: &Snapshot,
    gpu_resources: &[String],
) -> Admitting {
    let mut out = Admitting::NoBaseline;
    for prev in history {
        out = admitting_pod(Some(prev), now, gpu_resources);
        if out != Admitting::NoCandidate {
            break;
        }
    }
    out
}

/// How many snapshots the plugin keeps to compare with.
pub const HISTORY: usize = 3;

/// Parses `--gpu-resources`: comma-separated resource names, blanks
/// dropped; empty turns GPU-aware allocation off.
pub fn parse_gpu_resources(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect()
}

/// Why a `List` failed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("cannot connect to the kubelet's PodResources socket {path}: {source}")]
    Connect {
        path: PathBuf,
        source: tonic::transport::Error,
    },
    #[error("PodResources List at {path} failed: {status}")]
    Call {
        path: PathBuf,
        status: tonic::Status,
    },
    #[error("PodResources List at {path} took more than {timeout_ms} ms")]
    Timeout { path: PathBuf, timeout_ms: u128 },
}

/// One `List` call to the kubelet's PodResources socket.
pub async fn list(socket: &Path) -> Result<ListPodResourcesResponse, ListError> {
    let call = async {
        let ch = crate::kubelet::unix_channel(socket)
            .await
            .map_err(|source| ListError::Connect {
                path: socket.to_path_buf(),
                source,
            })?;
        PodResourcesListerClient::new(ch)
            .list(ListPodResourcesRequest {})
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| ListError::Call {
                path: socket.to_path_buf(),
                status,
            })
    };
    tokio::time::timeout(LIST_TIMEOUT, call)
        .await
        .map_err(|_| ListError::Timeout {
            path: socket.to_path_buf(),
            timeout_ms: LIST_TIMEOUT.as_millis(),
        })?
}

/// GPU pairing state shared by every pool's server: the PodResources
/// socket, the GPU resources, and the last snapshots.
#[derive(Debug)]
pub struct GpuPairing {
    socket: PathBuf,
    gpu_resources: Vec<String>,
    refresh_interval: Duration,
    /// Earlier snapshots, newest first, at most [`HISTORY`].
    history: tokio::sync::Mutex<std::collections::VecDeque<Snapshot>>,
}

impl GpuPairing {
    /// Pairing through the PodResources socket at `socket` (a path as the
    /// plugin sees it, i.e. under the host root already).
    /// Snapshots are refreshed every [`REFRESH_INTERVAL`].
    pub fn new(socket: PathBuf, gpu_resources: Vec<String>) -> GpuPairing {
        GpuPairing {
            socket,
            gpu_resources,
            refresh_interval: REFRESH_INTERVAL,
            history: tokio::sync::Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// With another refresh period (tests).
    pub fn with_refresh_interval(mut self, every: Duration) -> GpuPairing {
        self.refresh_interval = every.max(Duration::from_millis(10));
        self
    }

    /// How often [`crate::manager::Manager::run`] refreshes the snapshot.
    pub fn refresh_interval(&self) -> Duration {
        self.refresh_interval
    }

    /// The socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The GPU resources.
    pub fn gpu_resources(&self) -> &[String] {
        &self.gpu_resources
    }

    /// Takes a snapshot and keeps it as the newest baseline; a failed
    /// `List` drops every baseline (what happened meanwhile is unknown).
    pub async fn refresh(&self) {
        let mut history = self.history.lock().await;
        match list(&self.socket).await {
            Ok(r) => push(&mut history, Snapshot::from_response(&r)),
            Err(e) => {
                // logged once per outage, not every period
                if !history.is_empty() {
                    tracing::debug!(error = %e, "PodResources snapshot failed");
                }
                history.clear();
            }
        }
    }

    /// For a `GetPreferredAllocation` of `resource`: the pod being
    /// admitted and its GPUs, or `None` (logged at debug level with the
    /// reason) when the plugin cannot tell or the pod holds none. The new
    /// snapshot becomes the newest baseline.
    pub async fn admitting_gpus(&self, resource: &str) -> Option<(PodKey, Vec<Gpu>)> {
        let mut history = self.history.lock().await;
        let now = match list(&self.socket).await {
            Ok(r) => Snapshot::from_response(&r),
            Err(e) => {
                tracing::debug!(%resource, error = %e, "no GPU pairing: PodResources unavailable");
                history.clear();
                return None;
            }
        };
        let baselines: Vec<Snapshot> = history.iter().cloned().collect();
        push(&mut history, now.clone());
        drop(history);
        let found = admitting_pod_since(&baselines, &now, &self.gpu_resources);
        match found {
            Admitting::Pod { pod, gpus } if !gpus.is_empty() => Some((pod, gpus)),
            Admitting::Pod { pod, .. } => {
                tracing::debug!(%resource, %pod, "no GPU pairing: the pod being admitted holds no GPU");
                None
            }
            Admitting::NoBaseline => {
                tracing::debug!(%resource, "no GPU pairing: no earlier PodResources snapshot to compare with");
                None
            }
            Admitting::NoCandidate => {
                tracing::debug!(%resource, "no GPU pairing: no pod appeared or gained devices since the last snapshot");
                None
            }
            Admitting::Ambiguous(pods) => {
                let pods: Vec<String> = pods.iter().map(ToString::to_string).collect();
                tracing::debug!(%resource, ?pods, "no GPU pairing: more than one pod appeared or gained devices since the last snapshot");
                None
            }
        }
    }
}

/// Adds `s` as the newest snapshot, keeping at most [`HISTORY`].
fn push(history: &mut std::collections::VecDeque<Snapshot>, s: Snapshot) {
    history.push_front(s);
    history.truncate(HISTORY);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_resources_api::{
        ContainerDevices, ContainerResources, NumaNode, PodResources, TopologyInfo,
    };

    fn gpu_res() -> Vec<String> {
        parse_gpu_resources("nvidia.com/gpu, amd.com/gpu,")
    }

    fn key(ns: &str, name: &str) -> PodKey {
        PodKey {
            namespace: ns.into(),
            name: name.into(),
        }
    }

    /// `(resource, ids, NUMA nodes)` of one container.
    type Held<'a> = (&'a str, &'a [&'a str], &'a [i64]);

    /// A pod whose containers hold `(resource, ids, numa)` each.
    fn pod(ns: &str, name: &str, containers: &[&[Held]]) -> PodResources {
        PodResources {
            name: name.into(),
            namespace: ns.into(),
            containers: containers
                .iter()
                .enumerate()
                .map(|(i, devs)| ContainerResources {
                    name: format!("c{i}"),
                    devices: devs
                        .iter()
                        .map(|(r, ids, numa)| ContainerDevices {
                            resource_name: r.to_string(),
                            device_ids: ids.iter().map(|s| s.to_string()).collect(),
                            topology: (!numa.is_empty()).then(|| TopologyInfo {
                                nodes: numa.iter().map(|&id| NumaNode { id }).collect(),
                            }),
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn snap(pods: Vec<PodResources>) -> Snapshot {
        Snapshot::from_response(&ListPodResourcesResponse {
            pod_resources: pods,
        })
    }

    #[test]
    fn gpu_resources_flag() {
        assert_eq!(gpu_res(), ["nvidia.com/gpu", "amd.com/gpu"]);
        assert!(parse_gpu_resources("").is_empty());
        assert!(parse_gpu_resources(" , ").is_empty());
        assert_eq!(
            parse_gpu_resources(DEFAULT_GPU_RESOURCES),
            ["nvidia.com/gpu", "amd.com/gpu"]
        );
    }

    #[test]
    fn snapshot_collects_devices_and_numa_of_every_container() {
        let s = snap(vec![pod(
            "ns",
            "p",
            &[
                &[("nvidia.com/gpu", &["GPU-aa"], &[1])],
                &[
                    ("intel.com/vf", &["0000:3b:02.0"], &[0]),
                    ("amd.com/gpu", &["0000:19:00.0", "0000:1a:00.0"], &[]),
                ],
            ],
        )]);
        let e = &s.pods[&key("ns", "p")];
        assert_eq!(e.devices.len(), 4);
        assert_eq!(e.occurrences, 1);
        let gpus = gpus_of(e, &gpu_res());
        assert_eq!(
            gpus.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
            ["0000:19:00.0", "0000:1a:00.0", "GPU-aa"]
        );
        assert_eq!(gpus[0].address, "0000:19:00.0".parse().ok());
        assert!(gpus[0].numa.is_empty());
        assert_eq!(gpus[2].address, None);
        assert_eq!(gpus[2].numa, BTreeSet::from([1]));
    }

    #[test]
    fn the_new_pod_with_a_gpu_is_found() {
        let running = pod(
            "a",
            "train",
            &[&[("nvidia.com/gpu", &["0000:9a:00.0"], &[])]],
        );
        let prev = snap(vec![running.clone(), pod("a", "idle", &[&[]])]);
        let admitting = pod(
            "b",
            "job",
            &[&[("nvidia.com/gpu", &["0000:19:00.0"], &[])], &[]],
        );
        let now = snap(vec![running, pod("a", "idle", &[&[]]), admitting]);
        match admitting_pod(Some(&prev), &now, &gpu_res()) {
            Admitting::Pod { pod, gpus } => {
                assert_eq!(pod, key("b", "job"));
                assert_eq!(gpus.len(), 1);
                assert_eq!(gpus[0].id, "0000:19:00.0");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_pod_that_gained_devices_is_the_one() {
        // The same pod, seen by an earlier call of this admission (its first
        // VF container), has since got another resource's device.
        let prev = snap(vec![pod(
            "b",
            "job",
            &[&[("nvidia.com/gpu", &["0000:19:00.0"], &[])], &[]],
        )]);
        let now = snap(vec![pod(
            "b",
            "job",
            &[
                &[("nvidia.com/gpu", &["0000:19:00.0"], &[])],
                &[("intel.com/vf", &["0000:1b:00.2"], &[])],
            ],
        )]);
        assert!(matches!(
            admitting_pod(Some(&prev), &now, &gpu_res()),
            Admitting::Pod { gpus, .. } if gpus.len() == 1
        ));
    }

    #[test]
    fn a_new_pod_without_gpu_is_found_and_has_none() {
        // A GPU pod runs; the pod being admitted holds nothing yet: it is
        // the new one, and it has no GPU (the running pod's GPU is not
        // taken for it).
        let running = pod(
            "a",
            "train",
            &[&[("nvidia.com/gpu", &["0000:9a:00.0"], &[])]],
        );
        let prev = snap(vec![running.clone()]);
        let now = snap(vec![running, pod("b", "net", &[&[]])]);
        assert_eq!(
            admitting_pod(Some(&prev), &now, &gpu_res()),
            Admitting::Pod {
                pod: key("b", "net"),
                gpus: vec![]
            }
        );
    }

    #[test]
    fn two_changed_pods_are_ambiguous() {
        // A GPU pod and the pod being admitted (no devices yet) both arrived
        // since the last snapshot: which one is being admitted is unknown.
        let prev = snap(vec![]);
        let now = snap(vec![
            pod(
                "a",
                "gpu-only",
                &[&[("nvidia.com/gpu", &["0000:9a:00.0"], &[])]],
            ),
            pod("b", "net", &[&[]]),
        ]);
        assert_eq!(
            admitting_pod(Some(&prev), &now, &gpu_res()),
            Admitting::Ambiguous(vec![key("a", "gpu-only"), key("b", "net")])
        );
    }

    #[test]
    fn no_baseline_no_candidate_and_shared_names_fall_back() {
        let p = pod("b", "job", &[&[("nvidia.com/gpu", &["0000:19:00.0"], &[])]]);
        let now = snap(vec![p.clone()]);
        assert_eq!(admitting_pod(None, &now, &gpu_res()), Admitting::NoBaseline);
        // Seen already with the same devices (a snapshot taken in the middle
        // of its admission): not recognisable.
        assert_eq!(
            admitting_pod(Some(&now), &now, &gpu_res()),
            Admitting::NoCandidate
        );
        // A pod going away changes nothing.
        let prev = snap(vec![p.clone(), pod("x", "gone", &[&[]])]);
        assert_eq!(
            admitting_pod(Some(&prev), &now, &gpu_res()),
            Admitting::NoCandidate
        );
        // Two pods of one name (one being replaced): not trusted.
        let twice = snap(vec![p.clone(), pod("b", "job", &[&[]])]);
        assert_eq!(twice.pods[&key("b", "job")].occurrences, 2);
        assert_eq!(
            admitting_pod(Some(&snap(vec![])), &twice, &gpu_res()),
            Admitting::Ambiguous(vec![key("b", "job")])
        );
    }

    #[test]
    fn an_older_baseline_finds_the_pod_a_mid_admission_snapshot_hides() {
        let running = pod(
            "a",
            "train",
            &[&[("nvidia.com/gpu", &["0000:9a:00.0"], &[])]],
        );
        let before = snap(vec![running.clone()]);
        let job = pod(
            "b",
            "job",
            &[&[("nvidia.com/gpu", &["0000:19:00.0"], &[])], &[]],
        );
        // Taken after the job's GPU was allocated, before this call.
        let mid = snap(vec![running.clone(), job.clone()]);
        let now = snap(vec![running, job]);
        assert_eq!(
            admitting_pod(Some(&mid), &now, &gpu_res()),
            Admitting::NoCandidate
        );
        assert!(matches!(
            admitting_pod_since(&[mid.clone(), before.clone()], &now, &gpu_res()),
            Admitting::Pod { pod, gpus } if pod == key("b", "job") && gpus.len() == 1
        ));
        assert_eq!(
            admitting_pod_since(&[], &now, &gpu_res()),
            Admitting::NoBaseline
        );
        assert_eq!(
            admitting_pod_since(&[mid.clone(), now.clone()], &now, &gpu_res()),
            Admitting::NoCandidate
        );
        // An ambiguous newest baseline is not overruled by an older one.
        let other = pod("c", "other", &[&[]]);
        let now2 = snap(vec![pod("b", "job", &[&[]]), other]);
        assert!(matches!(
            admitting_pod_since(&[before], &now2, &gpu_res()),
            Admitting::Ambiguous(p) if p.len() == 2
        ));
    }

    #[test]
    fn history_keeps_the_newest_few() {
        let mut h = std::collections::VecDeque::new();
        for i in 0..5 {
            push(&mut h, snap(vec![pod("n", &format!("p{i}"), &[&[]])]));
        }
        assert_eq!(h.len(), HISTORY);
        assert!(h[0].pods.contains_key(&key("n", "p4")));
        assert!(h[2].pods.contains_key(&key("n", "p2")));
    }

    #[test]
    fn only_the_configured_resources_are_gpus() {
        let prev = snap(vec![]);
        let now = snap(vec![pod(
            "b",
            "job",
            &[&[
                ("example.com/gpu", &["0000:19:00.0"], &[]),
                ("intel.com/qat", &["0000:3d:00.1"], &[]),
            ]],
        )]);
        assert!(matches!(
            admitting_pod(Some(&prev), &now, &gpu_res()),
            Admitting::Pod { gpus, .. } if gpus.is_empty()
        ));
        match admitting_pod(Some(&prev), &now, &["example.com/gpu".to_string()]) {
            Admitting::Pod { gpus, .. } => {
                assert_eq!(gpus.len(), 1);
                assert_eq!(gpus[0].resource, "example.com/gpu");
            }
            other => panic!("{other:?}"),
        }
    }
}
