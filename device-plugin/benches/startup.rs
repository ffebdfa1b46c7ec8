//! Benchmark of the real binary against a simulated node of 1,024 VFs on 8
//! PFs (`scale:8:128`, static tree), in 3 pools, with the test kubelet:
//!
//! - start to first ListAndWatch: from spawning the process until all 3
//!   pools have registered and each has sent its first device list
//!   (target < 100 ms; median of 5 runs);
//! - Allocate latency of one device, 2,000 calls (target p99 < 1 ms);
//! - the process's RSS with 1,024 VFs pooled (target < 15 MB).
//!
//! Device-info files are written to a tmpfs (`/dev/shm`), as on a node
//! (`/var/run`).
//!
//! `cargo bench -p sriov-device-plugin --bench startup`

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sriov_device_plugin::api::{AllocateRequest, ContainerAllocateRequest};
use sriov_device_plugin::test_kubelet::{TestKubelet, Watch};

const POOLS: [&str; 3] = ["pool_a", "pool_b", "pool_c"];

const CONFIG: &str = r#"{"resourceList":[
  {"resourceName":"pool_a","selectors":{"pfNames":["ens1f0","ens1f1","ens2f0"]}},
  {"resourceName":"pool_b","selectors":{"pfNames":["ens2f1","ens3f0","ens3f1"]}},
  {"resourceName":"pool_c","selectors":{"vendors":["8086"],"drivers":["iavf"]}}
]}"#;

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn spawn(root: &Path, config: &Path) -> Kill {
    Kill(
        Command::new(env!("CARGO_BIN_EXE_sriov-device-plugin"))
            .arg("--host-root")
            .arg(root)
            .args(["--device-plugin-dir", "kp", "--devinfo-dir", "devinfo"])
            .arg("--config-file")
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn sriov-device-plugin"),
    )
}

async fn one_run(
    root: &Path,
    config: &Path,
    measure_more: bool,
) -> (Duration, Option<(Vec<Duration>, u64)>) {
    let kp = root.join("kp");
    std::fs::create_dir_all(&kp).unwrap();
    let kubelet = TestKubelet::start(&kp).unwrap();
    let t0 = Instant::now();
    let child = spawn(root, config);
    let mut total = 0;
    for p in POOLS {
        let r = kubelet
            .wait_for(Duration::from_secs(10), |r| {
                r.resource == format!("intel.com/{p}")
            })
            .await
            .expect("registered");
        let mut c = kubelet.client(&r.endpoint).await.unwrap();
        let m = Watch::open(&mut c)
            .await
            .unwrap()
            .next(Duration::from_secs(10))
            .await
            .unwrap();
        total += m.devices.len();
    }
    let startup = t0.elapsed();
    assert_eq!(total, 1024, "all VFs pooled");
    let more = if measure_more {
        let mut c = kubelet.client("intel.com_pool_c.sock").await.unwrap();
        let m = Watch::open(&mut c)
            .await
            .unwrap()
            .next(Duration::from_secs(5))
            .await
            .unwrap();
        let ids: Vec<String> = m.devices.iter().map(|d| d.id.clone()).collect();
        let mut lat = Vec::with_capacity(2000);
        for i in 0..2000 {
            let req = AllocateRequest {
                container_requests: vec![ContainerAllocateRequest {
                    devices_ids: vec![ids[i % ids.len()].clone()],
                }],
            };
            let t = Instant::now();
            c.allocate(req).await.unwrap();
            lat.push(t.elapsed());
        }
        lat.sort();
        Some((lat, rss_kb(child.0.id())))
    } else {
        None
    };
    drop(child);
    drop(kubelet);
    let _ = std::fs::remove_dir_all(&kp);
    (startup, more)
}

/// The plugin's own Allocate work (response, INFO JSON, device-info file)
/// in process, without gRPC and the client: per-call latencies, sorted.
fn in_process_allocate(root: &Path, devinfo: &Path) -> (Vec<Duration>, Duration) {
    use sriov_device_plugin::{allocate, config::Config, device, pools, selectors::MatchEnv};
    let host = sriov_host::HostRoot::new(root);
    let t = Instant::now();
    let node = sriov_host::scan(&host).unwrap();
    let scan = t.elapsed();
    let cfg = Config::parse(CONFIG, "bench", "intel.com").unwrap();
    let devs = device::candidates(&host, &node, false);
    let p = pools::build(
        &host,
        &cfg,
        &devs,
        &MatchEnv::default(),
        &pools::Pools::new(),
    );
    let pool = &p["intel.com/pool_c"];
    let ctx = allocate::AllocateContext {
        root: host.clone(),
        devinfo_dir: devinfo.to_path_buf(),
        cdi_dir: None,
    };
    let ids: Vec<String> = pool.devices.keys().map(|a| a.to_string()).collect();
    let mut lat = Vec::with_capacity(2000);
    for i in 0..2000 {
        let one = [ids[i % ids.len()].clone()];
        let t = Instant::now();
        allocate::container_response(&ctx, pool, &one).unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    (lat, scan)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::Builder::new()
        .prefix("dpbench")
        .tempdir()
        .unwrap();
    let root = tmp.path().join("r");
    let spec = sriov_sim::node::NodeSpec::scale(8, 128).unwrap();
    sriov_sim::kernel::write_static_tree(&root, &spec).unwrap();
    // Device-info files go to /var/run on a node, a tmpfs: keep them on
    // one here too (ext4 flushes data when a rename replaces a file).
    let shm = tempfile::Builder::new()
        .prefix("dpbench-devinfo")
        .tempdir_in("/dev/shm")
        .unwrap();
    for d in ["devinfo", "devinfo-inproc"] {
        std::fs::create_dir_all(shm.path().join(d)).unwrap();
        std::os::unix::fs::symlink(shm.path().join(d), root.join(d)).unwrap();
    }
    let config = tmp.path().join("config.json");
    std::fs::write(&config, CONFIG).unwrap();
    rt.block_on(async {
        // warm the page cache once
        let _ = one_run(&root, &config, false).await;
        let mut starts = Vec::new();
        let mut more = None;
        for i in 0..5 {
            let (s, m) = one_run(&root, &config, i == 4).await;
            starts.push(s);
            if m.is_some() {
                more = m;
            }
        }
        starts.sort();
        let (lat, rss) = more.unwrap();
        let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
        println!("sriov-device-plugin, scale:8:128 (1,024 VFs, 8 PFs, 3 pools), static tree");
        println!(
            "start to first ListAndWatch (all 3 pools): median {:.1} ms (min {:.1}, max {:.1}; target < 100 ms)",
            starts[2].as_secs_f64() * 1e3,
            starts[0].as_secs_f64() * 1e3,
            starts[4].as_secs_f64() * 1e3
        );
        println!(
            "Allocate (1 device, 2,000 calls): p50 {:.0} us, p99 {:.0} us, max {:.0} us (target p99 < 1 ms)",
            pct(0.50).as_secs_f64() * 1e6,
            pct(0.99).as_secs_f64() * 1e6,
            lat[lat.len() - 1].as_secs_f64() * 1e6
        );
        let (own, scan) = in_process_allocate(&root, &root.join("devinfo-inproc"));
        let p = |v: &[Duration], q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
        println!(
            "  of which the plugin's own work (in process, no gRPC): p50 {:.0} us, p99 {:.0} us",
            p(&own, 0.50).as_secs_f64() * 1e6,
            p(&own, 0.99).as_secs_f64() * 1e6
        );
        println!(
            "host scan of the node alone (sriov_host::scan, in process): {:.1} ms",
            scan.as_secs_f64() * 1e3
        );
        println!(
            "RSS with 1,024 VFs pooled: {:.1} MB (target < 15 MB)",
            rss as f64 / 1024.0
        );
    });
}
