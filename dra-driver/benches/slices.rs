//! Benchmark of publishing a node of 1,024 VFs (`scale:8:128`, static
//! tree) as ResourceSlices, from nothing: PCI scan + PCIe topology read +
//! attributes + 8 slices built and handed to an in-memory store (target
//! for the whole path to the API server: < 2 s; the API server's own time
//! is not measured here), and the latency of `NodePrepareResources` (v1)
//! for one VF claim over the plugin's unix socket, with the claim read from
//! an in-memory claim source instead of the API server (checkpoint + CDI
//! spec written on a tmpfs when `/dev/shm` exists; target p99 < 50 ms).
//! Median and p99 over `DRA_BENCH_RUNS` (default 11) publishes and 500
//! prepare/unprepare pairs after 50 warm-up pairs.
//!
//! With `DRA_BENCH_KUBECONFIG` naming a kubeconfig, the whole path is also
//! timed against that API server (`scripts/cluster.sh up --no-node` starts
//! one): from nothing (the bench node's slices deleted) to 8 slices written
//! through the driver's own store (server-side apply), and to the API
//! server listing all 1,024 devices; the slices are deleted at the end.
//! They belong to node `sriov-rs-dra-bench`, which need not exist. Then
//! `NodePrepareResources` is timed again with the claim read from that
//! API server and `status.devices` written to it, as on a node: a
//! ResourceClaim `bench-vf` allocated and reserved for a pod by hand in
//! namespace `default` (deleted at the end).
//!
//! `cargo bench -p sriov-dra-driver --bench slices`

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tonic::transport::{Endpoint, Uri};

use sriov_dra_driver::attributes::{self, Selection};
use sriov_dra_driver::plugin::{self, ClaimSource, Driver, KubeClaims, v1};
use sriov_dra_driver::prepare::{AllocatedDevice, Preparer};
use sriov_dra_driver::slices::{self, KubeStore, MemoryStore, SliceStore};
use sriov_host::HostRoot;
use sriov_host::topology::Topology;
use sriov_sim::kernel::write_static_tree;
use sriov_sim::node::NodeSpec;

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let runs: usize = std::env::var("DRA_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(11);
    let tmp = tempfile::tempdir().unwrap();
    write_static_tree(tmp.path(), &NodeSpec::scale(8, 128).unwrap()).unwrap();
    let root = HostRoot::new(tmp.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    let mut publish = Vec::new();
    let mut phases = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let node = sriov_host::scan(&root).unwrap();
        let t1 = Instant::now();
        let topo = Topology::read(&root).unwrap();
        let t2 = Instant::now();
        let devs = attributes::devices(&node, &topo, &Selection::default());
        let store = MemoryStore::default();
        let p = rt
            .block_on(slices::publish(
                &store,
                "sriovnetwork.k8snetworkplumbingwg.io",
                "n",
                &devs,
            ))
            .unwrap();
        let t3 = Instant::now();
        assert_eq!((devs.len(), p.slices), (1024, 8));
        publish.push(t3 - t0);
        phases.push((t1 - t0, t2 - t1, t3 - t2));
    }
    let median = pct(&mut publish, 0.5);
    let max = *publish.iter().max().unwrap();
    let (s, t, b) = phases[phases.len() / 2];
    println!(
        "publish 1,024 VFs (scan + topology + 8 slices): median {:.1} ms, max {:.1} ms \
         (one run: scan {:.1} ms, topology {:.1} ms, attributes+slices {:.1} ms) over {runs} runs",
        median.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        s.as_secs_f64() * 1e3,
        t.as_secs_f64() * 1e3,
        b.as_secs_f64() * 1e3,
    );

    if let Some(kc) = std::env::var_os("DRA_BENCH_KUBECONFIG") {
        let io = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        io.block_on(api_server_publish(&root, std::path::Path::new(&kc), runs));
    }

    let shm = std::path::Path::new("/dev/shm");
    let state = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fs = if shm.is_dir() { "tmpfs" } else { "temp dir" };
    let memory = (String::from("ns"), String::from("c"), None);
    let (p50, p99, n) = rt.block_on(prepare_latency(
        root.clone(),
        &state.path().join("memory"),
        Arc::new(OneVf),
        memory,
    ));
    println!(
        "NodePrepareResources v1, one VF over the unix socket (claim from memory, {fs}): \
         p50 {:.2} ms, p99 {:.2} ms over {n} calls",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
    );
    if let Some(kc) = std::env::var_os("DRA_BENCH_KUBECONFIG") {
        let (p50, p99, n) = rt.block_on(async {
            let client = bench_client(std::path::Path::new(&kc)).await;
            let claim = BenchClaim::create(client.clone()).await;
            let id = (
                BENCH_NS.to_string(),
                BENCH_CLAIM.to_string(),
                Some(claim.uid.clone()),
            );
            let r = prepare_latency(
                root,
                &state.path().join("api"),
                Arc::new(KubeClaims::new(client)),
                id,
            )
            .await;
            assert_eq!(
                claim.status_devices().await,
                1,
                "the driver wrote no status.devices entry"
            );
            claim.delete().await;
            r
        });
        println!(
            "NodePrepareResources v1, one VF over the unix socket (the claim read from the API \
             server, status.devices written to it, {fs}): p50 {:.2} ms, p99 {:.2} ms over {n} calls",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
        );
    }
}

const BENCH_NS: &str = "default";

const BENCH_CLAIM: &str = "bench-vf";

async fn bench_client(kubeconfig: &std::path::Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("DRA_BENCH_KUBECONFIG");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("a usable kubeconfig");
    kube::Client::try_from(cfg).expect("a client")
}

/// A ResourceClaim as the scheduler leaves it for the kubelet: allocated
/// (the VF OneVf names, pool "n") and reserved for one pod, in namespace
/// `default`; `delete` removes it.
struct BenchClaim {
    client: kube::Client,
    uid: String,
}

impl BenchClaim {
    async fn create(client: kube::Client) -> Self {
        use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
        let claims = plugin::claims_api(&client, BENCH_NS);
        let _ = claims.delete(BENCH_CLAIM, &Default::default()).await;
        let claim: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaim",
            "metadata": {"name": BENCH_CLAIM, "namespace": BENCH_NS},
            "spec": {"devices": {"requests": [
                {"name": "vf", "exactly": {"deviceClassName": "sriovnetwork.k8snetworkplumbingwg.io"}}
            ]}}
        }))
        .unwrap();
        let mut created = None;
        for _ in 0..50 {
            match claims.create(&PostParams::default(), &claim).await {
                Ok(c) => {
                    created = Some(c);
                    break;
                }
                // The previous run's claim is still being deleted.
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("creating ResourceClaim {BENCH_NS}/{BENCH_CLAIM}: {e}"),
            }
        }
        let uid = created
            .expect("the old bench claim is gone")
            .metadata
            .uid
            .expect("a UID");
        let status = serde_json::json!({
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaim",
            "status": {
                "allocation": {"devices": {"results": [
                    {"request": "vf", "driver": "sriovnetwork.k8snetworkplumbingwg.io",
                     "pool": "n", "device": "0000-10-02-0"}
                ]}},
                "reservedFor": [{"resource": "pods", "name": "bench", "uid": "00000000-0000-0000-0000-00000000b0b0"}]
            }
        });
        claims
            .patch_status(
                BENCH_CLAIM,
                &PatchParams::apply("sriov-rs-dra-bench").force(),
                &Patch::Apply(status),
            )
            .await
            .expect("allocating the bench claim (status)");
        Self { client, uid }
    }

    /// The entries of the claim's `status.devices` (the driver's report).
    async fn status_devices(&self) -> usize {
        let claims = plugin::claims_api(&self.client, BENCH_NS);
        let c = claims
            .get(BENCH_CLAIM)
            .await
            .expect("reading the bench claim");
        c.data["status"]["devices"].as_array().map_or(0, Vec::len)
    }

    async fn delete(self) {
        let _ = plugin::claims_api(&self.client, BENCH_NS)
            .delete(BENCH_CLAIM, &Default::default())
            .await;
    }
}

/// The whole path to a real API server: scan, topology, attributes, then
/// the slices written by the driver's `KubeStore`; and until a list shows
/// every device. Each run starts from no slices.
async fn api_server_publish(root: &HostRoot, kubeconfig: &std::path::Path, runs: usize) {
    const DRIVER: &str = "sriovnetwork.k8snetworkplumbingwg.io";
    const NODE: &str = "sriov-rs-dra-bench";
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("DRA_BENCH_KUBECONFIG");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("a usable kubeconfig");
    let store = KubeStore::new(kube::Client::try_from(cfg).expect("a client"));
    let clear = async || {
        for s in store.list(DRIVER, NODE).await.expect("listing slices") {
            store
                .delete(s.metadata.name.as_deref().unwrap_or_default())
                .await
                .expect("deleting a slice");
        }
    };
    let mut written = Vec::new();
    let mut listed = Vec::new();
    for _ in 0..runs {
        clear().await;
        let t0 = Instant::now();
        let node = sriov_host::scan(root).unwrap();
        let topo = Topology::read(root).unwrap();
        let devs = attributes::devices(&node, &topo, &Selection::default());
        let p = slices::publish(&store, DRIVER, NODE, &devs)
            .await
            .expect("publishing to the API server");
        let t1 = Instant::now();
        assert_eq!((devs.len(), p.slices, p.written), (1024, 8, 8));
        loop {
            let seen: usize = store
                .list(DRIVER, NODE)
                .await
                .expect("listing slices")
                .iter()
                .map(|s| s.spec.devices.as_ref().map_or(0, Vec::len))
                .sum();
            if seen == 1024 {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "{seen} of 1,024 devices listed after 30 s"
            );
        }
        listed.push(t0.elapsed());
        written.push(t1 - t0);
    }
    clear().await;
    let w50 = pct(&mut written, 0.5);
    let wmax = *written.iter().max().unwrap();
    let l50 = pct(&mut listed, 0.5);
    let lmax = *listed.iter().max().unwrap();
    println!(
        "publish 1,024 VFs to the API server (scan + topology + 8 slices applied): median {:.1} ms, \
         max {:.1} ms; until a list shows all 1,024: median {:.1} ms, max {:.1} ms, over {runs} runs",
        w50.as_secs_f64() * 1e3,
        wmax.as_secs_f64() * 1e3,
        l50.as_secs_f64() * 1e3,
        lmax.as_secs_f64() * 1e3,
    );
}

struct OneVf;

#[tonic::async_trait]
impl ClaimSource for OneVf {
    async fn allocated(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<Vec<AllocatedDevice>, String> {
        Ok(vec![AllocatedDevice {
            request: "vf".into(),
            pool: "n".into(),
            device: "0000-10-02-0".into(),
            config: Default::default(),
        }])
    }
}

/// The claim the prepare loop asks for: namespace, name, UID (`None`: a
/// fresh UID each call, for a source that does not check it).
type ClaimId = (String, String, Option<String>);

async fn prepare_latency(
    root: HostRoot,
    dir: &std::path::Path,
    source: Arc<dyn ClaimSource>,
    claim: ClaimId,
) -> (Duration, Duration, usize) {
    let driver_name = "sriovnetwork.k8snetworkplumbingwg.io";
    let preparer = Preparer::open(root, "n", &dir.join("plugin"), &dir.join("cdi")).unwrap();
    let driver = Arc::new(Driver::new(driver_name, preparer, source));
    let dra = plugin::dra_socket(&dir.join("plugins"), driver_name, None);
    let reg = plugin::registration_socket(&dir.join("registry"), driver_name, None);
    let (tx, _rx) = tokio::sync::watch::channel(None);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (d2, r2) = (dra.clone(), reg.clone());
    let server = tokio::spawn(async move {
        let health = sriov_dra_driver::health::Monitor::new("n")
            .service(sriov_dra_driver::health::HEARTBEAT);
        plugin::serve(driver, health, &d2, &r2, tx, async move {
            let _ = stopped.await;
        })
        .await
    });
    while !reg.exists() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let path = dra.clone();
    let channel = Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let s = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(s))
            }
        }))
        .await
        .unwrap();
    let mut client = v1::dra_plugin_client::DraPluginClient::new(channel);
    let mut lat = Vec::new();
    for i in 0..550 {
        let c = v1::Claim {
            namespace: claim.0.clone(),
            uid: claim.2.clone().unwrap_or_else(|| format!("uid-{i}")),
            name: claim.1.clone(),
        };
        let t0 = Instant::now();
        let r = client
            .node_prepare_resources(v1::NodePrepareResourcesRequest {
                claims: vec![c.clone()],
            })
            .await
            .unwrap()
            .into_inner();
        let d = t0.elapsed();
        assert_eq!(r.claims[&c.uid].error, "");
        client
            .node_unprepare_resources(v1::NodeUnprepareResourcesRequest { claims: vec![c] })
            .await
            .unwrap();
        if i >= 50 {
            lat.push(d);
        }
    }
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    let n = lat.len();
    (pct(&mut lat, 0.5), pct(&mut lat, 0.99), n)
}
