//! GPU-aware GetPreferredAllocation end to end (no root needed): the
//! plugin's real gRPC server on the simulated `gpu` node (GPUs and NICs
//! behind PCIe switches, `sriov_sim` `NodeSpec::gpu()`), and a fake kubelet
//! PodResources server on a unix socket whose `List` answer the test sets
//! as the kubelet would show it while it admits a pod.

mod harness;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::{Harness, T};
use sriov_device_plugin::api::{ContainerPreferredAllocationRequest, PreferredAllocationRequest};
use sriov_device_plugin::config::Config;
use sriov_device_plugin::pod_resources_api::pod_resources_lister_server::{
    PodResourcesLister, PodResourcesListerServer,
};
use sriov_device_plugin::pod_resources_api::{
    AllocatableResourcesRequest, AllocatableResourcesResponse, ContainerDevices,
    ContainerResources, GetPodResourcesRequest, GetPodResourcesResponse, ListPodResourcesRequest,
    ListPodResourcesResponse, NumaNode, PodResources, TopologyInfo,
};
use sriov_device_plugin::podresources::GpuPairing;
use sriov_device_plugin::preferred::{AllocationPolicy, preferred};
use sriov_host::HostRoot;
use sriov_sim::node::NodeSpec;
use tonic::{Request, Response, Status};

const CONFIG: &str = r#"{"resourceList":[{"resourceName":"vfs","selectors":{"devices":["101e","1889","154c","10ca"]}}]}"#;
const RES: &str = "intel.com/vfs";
const GPU: &str = "nvidia.com/gpu";

/// The kubelet's PodResources service as the test sets it.
#[derive(Clone, Default)]
struct FakePodResources {
    pods: Arc<Mutex<Vec<PodResources>>>,
    lists: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl PodResourcesLister for FakePodResources {
    async fn list(
        &self,
        _: Request<ListPodResourcesRequest>,
    ) -> Result<Response<ListPodResourcesResponse>, Status> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(ListPodResourcesResponse {
            pod_resources: self.pods.lock().unwrap().clone(),
        }))
    }

    async fn get_allocatable_resources(
        &self,
        _: Request<AllocatableResourcesRequest>,
    ) -> Result<Response<AllocatableResourcesResponse>, Status> {
        Err(Status::unimplemented("not used by the plugin"))
    }

    async fn get(
        &self,
        _: Request<GetPodResourcesRequest>,
    ) -> Result<Response<GetPodResourcesResponse>, Status> {
        Err(Status::unimplemented("not used by the plugin"))
    }
}

impl FakePodResources {
    fn set(&self, pods: Vec<PodResources>) {
        *self.pods.lock().unwrap() = pods;
    }

    fn lists(&self) -> usize {
        self.lists.load(Ordering::SeqCst)
    }
}

/// A pod whose containers hold `(resource, ids)` each.
fn pod(ns: &str, name: &str, containers: &[&[(&str, &[&str])]]) -> PodResources {
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
                    .map(|(r, ids)| ContainerDevices {
                        resource_name: r.to_string(),
                        device_ids: ids.iter().map(|s| s.to_string()).collect(),
                        topology: None,
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
    }
}

struct Setup {
    _tree: tempfile::TempDir,
    _sock_dir: tempfile::TempDir,
    fake: FakePodResources,
    h: Harness,
    pool: sriov_device_plugin::pools::Pool,
    socket: std::path::PathBuf,
}

async fn setup(initial: Vec<PodResources>) -> Setup {
    let tree = tempfile::Builder::new().prefix("dpgpu").tempdir().unwrap();
    sriov_sim::kernel::write_static_tree(tree.path(), &NodeSpec::gpu()).unwrap();
    // The pool as the plugin builds it, for the plain policy's answers.
    let root = HostRoot::new(tree.path());
    let cfg = Config::parse(CONFIG, "t", "intel.com").unwrap();
    let node = sriov_host::scan(&root).unwrap();
    let (devices, env) = sriov_device_plugin::pools::discover(&root, &cfg, &node);
    let pool = sriov_device_plugin::pools::build(&root, &cfg, &devices, &env, &Default::default())
        .remove(RES)
        .unwrap();
    assert_eq!(pool.devices.len(), 20);

    let sock_dir = tempfile::Builder::new().prefix("podres").tempdir().unwrap();
    let socket = sock_dir.path().join("kubelet.sock");
    let fake = FakePodResources::default();
    fake.set(initial);
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let svc = PodResourcesListerServer::new(fake.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
    );

    // Refreshed only at start (the interval's first tick) and at each
    // GetPreferredAllocation: the test decides what each List shows.
    let pairing = Arc::new(
        GpuPairing::new(socket.clone(), vec![GPU.to_string()])
            .with_refresh_interval(Duration::from_secs(3600)),
    );
    let h = Harness::builder(tree.path(), CONFIG)
        .manager(|m| m.with_gpu_pairing(pairing))
        .start()
        .await;
    h.registered(RES).await;
    let end = Instant::now() + T;
    while fake.lists() == 0 {
        assert!(Instant::now() < end, "the plugin never listed PodResources");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Setup {
        _tree: tree,
        _sock_dir: sock_dir,
        fake,
        h,
        pool,
        socket,
    }
}

impl Setup {
    fn ids_except(&self, held: &[&str]) -> Vec<String> {
        self.pool
            .devices
            .keys()
            .map(|d| d.to_string())
            .filter(|id| !held.contains(&id.as_str()))
            .collect()
    }

    async fn preferred(&self, available: &[String], size: i32) -> Vec<String> {
        let mut c = self.h.client("intel.com_vfs.sock").await;
        let r = c
            .get_preferred_allocation(PreferredAllocationRequest {
                container_requests: vec![ContainerPreferredAllocationRequest {
                    available_device_i_ds: available.to_vec(),
                    must_include_device_i_ds: vec![],
                    allocation_size: size,
                }],
            })
            .await
            .expect("GetPreferredAllocation")
            .into_inner();
        r.container_responses[0].device_i_ds.clone()
    }

    fn plain(&self, available: &[String], size: usize) -> Vec<String> {
        preferred(&self.pool, available, &[], size, AllocationPolicy::Spread)
    }
}

fn all_under(ids: &[String], bus: &str) -> bool {
    ids.iter().all(|id| id.starts_with(bus))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vfs_near_the_gpus_of_the_pod_being_admitted() {
    // A training pod runs with a GPU and a VF.
    let train = pod(
        "ml",
        "train",
        &[&[(GPU, &["0000:1a:00.0"]), (RES, &["0000:9b:00.2"])]],
    );
    let s = setup(vec![train.clone()]).await;
    let available = s.ids_except(&["0000:9b:00.2"]);

    // The plain policy starts on NUMA node 0 with the fullest PF, spreading
    // across PFs: not two VFs under one switch.
    let plain = s.plain(&available, 2);
    assert!(!all_under(&plain, "0000:1b:"), "{plain:?}");
    assert!(!all_under(&plain, "0000:9b:"), "{plain:?}");

    // Pod a/job is being admitted: its first container got the GPU at
    // 0000:19:00.0, its second asks for 2 VFs: the ConnectX VFs under that
    // GPU's switch.
    let job = pod("a", "job", &[&[(GPU, &["0000:19:00.0"])], &[]]);
    s.fake.set(vec![train.clone(), job.clone()]);
    let got = s.preferred(&available, 2).await;
    assert_eq!(got.len(), 2);
    assert!(all_under(&got, "0000:1b:"), "{got:?}");

    // The kubelet records a/job's VFs after their Allocate; then pod b/job2
    // is admitted. With no List in between, two pods changed since the
    // plugin's last one (a/job gained its VFs, b/job2 is new): it cannot
    // tell which is being admitted and answers with its plain policy.
    let vf_ids: Vec<&str> = got.iter().map(String::as_str).collect();
    let job = pod(
        "a",
        "job",
        &[&[(GPU, &["0000:19:00.0"])], &[(RES, &vf_ids)]],
    );
    let job2 = pod("b", "job2", &[&[(GPU, &["0000:9a:00.0"])], &[]]);
    s.fake.set(vec![train.clone(), job.clone(), job2]);
    let mut held: Vec<&str> = vec!["0000:9b:00.2"];
    held.extend(vf_ids.iter().copied());
    let available = s.ids_except(&held);
    assert_eq!(s.preferred(&available, 3).await, s.plain(&available, 3));

    // b/job2 went away; b/job3 with the NUMA-1 GPU 0000:9a:00.0 is
    // admitted: the 3 VFs left under that GPU's switch.
    let job3 = pod("b", "job3", &[&[(GPU, &["0000:9a:00.0"])], &[]]);
    s.fake.set(vec![train.clone(), job.clone(), job3]);
    let got2 = s.preferred(&available, 3).await;
    assert_eq!(got2.len(), 3);
    assert!(all_under(&got2, "0000:9b:"), "{got2:?}");
    assert!(!all_under(&s.plain(&available, 3), "0000:9b:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_policy_when_the_pod_cannot_be_told() {
    let train = pod("ml", "train", &[&[(GPU, &["0000:9a:00.0"])]]);
    let s = setup(vec![train.clone()]).await;
    let available = s.ids_except(&[]);
    let plain = s.plain(&available, 2);

    // Nothing changed since the last List: no pod to pair with (the running
    // pod's GPU is not taken).
    assert_eq!(s.preferred(&available, 2).await, plain);

    // Two pods arrived since: a GPU-only pod and the one being admitted.
    s.fake.set(vec![
        train.clone(),
        pod("x", "gpu-only", &[&[(GPU, &["0000:19:00.0"])]]),
        pod("y", "net", &[&[]]),
    ]);
    assert_eq!(s.preferred(&available, 2).await, plain);

    // The pod being admitted holds no GPU.
    let before = s.fake.lists();
    s.fake.set(vec![
        train.clone(),
        pod("x", "gpu-only", &[&[(GPU, &["0000:19:00.0"])]]),
        pod("y", "net", &[&[]]),
        pod("z", "net2", &[&[("intel.com/other", &["0000:3d:00.1"])]]),
    ]);
    assert_eq!(s.preferred(&available, 2).await, plain);
    assert_eq!(
        s.fake.lists(),
        before + 1,
        "one List per GetPreferredAllocation"
    );

    // PodResources gone (kubelet restarting): plain policy, no error.
    std::fs::remove_file(&s.socket).unwrap();
    s.fake.set(vec![
        train,
        pod("w", "job", &[&[(GPU, &["0000:19:00.0"])], &[]]),
    ]);
    assert_eq!(s.preferred(&available, 2).await, plain);
}

/// How long GetPreferredAllocation takes with the PodResources List and
/// the topology read, over the plugin's socket (printed; the bound is
/// loose, for a loaded CI machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_aware_answer_time() {
    let s = setup(vec![]).await;
    let available = s.ids_except(&[]);
    let mut times = Vec::new();
    for i in 0..20 {
        let p = pod("t", &format!("job{i}"), &[&[(GPU, &["0000:19:00.0"])], &[]]);
        s.fake.set(vec![p]);
        let t = Instant::now();
        let got = s.preferred(&available, 1).await;
        times.push(t.elapsed());
        assert!(all_under(&got, "0000:1b:"), "{got:?}");
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "GPU-aware GetPreferredAllocation (List + topology + answer, 20 calls): median {median:?}, max {:?}",
        times[times.len() - 1]
    );
    assert!(median < Duration::from_secs(1), "{times:?}");
}

/// A GPU whose ID is no PCI address (NVIDIA's plugin: a UUID) counts by
/// the NUMA node PodResources reports for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uuid_gpu_counts_by_its_numa_node() {
    let s = setup(vec![]).await;
    let available = s.ids_except(&[]);
    let numa_of = |id: &String| {
        s.pool.devices[&sriov_device_plugin::device::DeviceId::parse(id).unwrap()]
            .device
            .numa_node
    };
    // The plain policy takes NUMA node 0 (it has the most VFs).
    assert!(
        s.plain(&available, 4)
            .iter()
            .all(|id| numa_of(id) == Some(0))
    );
    let mut job = pod(
        "a",
        "cuda",
        &[&[(GPU, &["GPU-5a3c7f0e-0000-4000-8000-000000000001"])], &[]],
    );
    job.containers[0].devices[0].topology = Some(TopologyInfo {
        nodes: vec![NumaNode { id: 1 }],
    });
    s.fake.set(vec![job]);
    let got = s.preferred(&available, 4).await;
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|id| numa_of(id) == Some(1)), "{got:?}");
}
