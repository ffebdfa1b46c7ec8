//! Benchmark of the real binary against a simulated node of 1,024 VFs on 8
//! PFs (`scale:8:128`, static tree), in 3 pools, with the test kubelet:
//!
//! - start to first ListAndWatch: from spawning the process until all 3
//!   pools have registered and each has sent its first device list
//!   (target < 100 ms; median of 11 runs, `DP_BENCH_RUNS`);
//! - Allocate latency of one device, 2,000 calls after 100 warm-up calls
//!   (target p99 < 1 ms), with the CPU time and context switches per call
//!   of the plugin and the client (robust under load, unlike latency);
//! - how the slow calls (over 1 ms) fall over the loop: bunched in a few
//!   50-ms windows (the plugin doing other work) or spread (the machine;
//!   `DP_BENCH_SLOW=1` lists them);
//! - the process's RSS with 1,024 VFs pooled (target < 15 MB).
//!
//! Device-info files are written to a tmpfs (`/dev/shm`), as on a node
//! (`/var/run`).
//!
//! Upstream's Go plugin beside it (issue 16), when `SRIOV_GO_SRIOVDP` names
//! its binary (`sriovdp`, built outside this tree: the Go module proxy
//! refuses it; docs/testing.md, "Go peers"): the same tree, config and test
//! kubelet, the same figures (root: it runs in its own mount and network
//! namespaces, `sriov_device_plugin::go_peer`). Its start is timed from
//! when that set-up is done. `DP_BENCH_GO_RUNS` sets its number of runs.
//!
//! `cargo bench -p sriov-device-plugin --bench startup`

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sriov_device_plugin::api::{AllocateRequest, ContainerAllocateRequest};
use sriov_device_plugin::go_peer::GoPlugin;
use sriov_device_plugin::test_kubelet::{TestKubelet, Watch};
use sriov_host::scan::Detail;

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

/// User + system CPU time of a process (from `/proc/<pid>/stat`).
#[allow(unsafe_code)] // sysconf, getrusage: libc only in this bench
fn proc_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is 3rd,
    // utime 14th, stime 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros((ticks(11) + ticks(12)) * 1_000_000 / hz)
}

/// Context switches (voluntary + involuntary) of all threads of a process.
fn switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .flat_map(|st| {
            st.lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// User + system CPU time of this (the client's) process so far.
#[allow(unsafe_code)]
fn self_cpu() -> Duration {
    // SAFETY: getrusage fills the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// What the Allocate loop measured.
struct AllocateFigures {
    /// Per-call latencies, sorted.
    lat: Vec<Duration>,
    /// Calls over 1 ms, and in how many of the loop's 50-ms windows.
    slow: (usize, usize, usize),
    rss_kb: u64,
    /// CPU time of the plugin process per call.
    server_cpu: Duration,
    /// CPU time of the bench process (client and test kubelet) per call.
    client_cpu: Duration,
    /// Context switches of the plugin's threads per call.
    server_switches: f64,
}

const ALLOCATE_CALLS: usize = 2000;
const ALLOCATE_WARMUP: usize = 100;

/// Calls over 1 ms in call order: how many, in how many of the loop's
/// 50-ms windows, and the number of windows. Slow calls bunched in a few
/// windows point at work in the plugin (a rescan, a health check); slow
/// calls spread over most windows at other processes or the VM's host
/// taking the CPU. `DP_BENCH_SLOW=1` lists each one.
fn slow_calls(lat: &[Duration]) -> (usize, usize, usize) {
    const WINDOW: Duration = Duration::from_millis(50);
    let list = std::env::var_os("DP_BENCH_SLOW").is_some();
    let mut at = Duration::ZERO;
    let mut windows = std::collections::BTreeSet::new();
    let mut n = 0;
    for (i, l) in lat.iter().enumerate() {
        if *l > Duration::from_millis(1) {
            n += 1;
            windows.insert(at.as_millis() / WINDOW.as_millis());
            if list {
                eprintln!(
                    "slow call {i} at {:.1} ms into the loop: {:.0} us",
                    at.as_secs_f64() * 1e3,
                    l.as_secs_f64() * 1e6
                );
            }
        }
        at += *l;
    }
    let total = (at.as_millis() / WINDOW.as_millis()) as usize + 1;
    (n, windows.len(), total)
}

/// Which plugin a run measures.
#[derive(Clone, Copy)]
enum Plugin<'a> {
    Ours,
    /// Upstream's `sriovdp` binary.
    Go(&'a Path),
}

/// The plugin process being measured.
enum Running {
    Ours(Kill),
    Go(GoPlugin),
}

impl Running {
    fn id(&self) -> u32 {
        match self {
            Running::Ours(k) => k.0.id(),
            Running::Go(g) => g.id(),
        }
    }
}

fn spawn(root: &Path, config: &Path) -> Kill {
    Kill(
        Command::new(env!("CARGO_BIN_EXE_sriov-device-plugin"))
            .arg("--host-root")
            .arg(root)
            .args(["--device-plugin-dir", "kp", "--devinfo-dir", "devinfo"])
            .arg("--config-file")
            .arg(config)
            // DP_BENCH_LOG=debug shows the plugin's start-up phases.
            .env(
                "RUST_LOG",
                std::env::var("DP_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn sriov-device-plugin"),
    )
}

async fn one_run(
    plugin: Plugin<'_>,
    root: &Path,
    config: &Path,
    measure_more: bool,
) -> (Duration, Option<AllocateFigures>) {
    let kp = root.join("kp");
    std::fs::create_dir_all(&kp).unwrap();
    let kubelet = TestKubelet::start(&kp).unwrap();
    let devinfo = root.join("devinfo");
    let (t0, child) = match plugin {
        Plugin::Ours => (Instant::now(), Running::Ours(spawn(root, config))),
        Plugin::Go(bin) => {
            let log = std::env::var_os("DP_BENCH_LOG").map(|_| root.join("go-peer.log"));
            let args = ["--resource-prefix", "intel.com"];
            let child = GoPlugin::start(bin, root, config, &kp, &devinfo, &args, log.as_deref())
                .expect("start upstream's plugin");
            (Instant::now(), Running::Go(child))
        }
    };
    let mut total = 0;
    let mut pool_c = String::new();
    for p in POOLS {
        let r = kubelet
            .wait_for(Duration::from_secs(10), |r| {
                r.resource == format!("intel.com/{p}")
            })
            .await
            .expect("registered");
        if p == "pool_c" {
            pool_c = r.endpoint.clone();
        }
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
        let mut c = kubelet.client(&pool_c).await.unwrap();
        let m = Watch::open(&mut c)
            .await
            .unwrap()
            .next(Duration::from_secs(5))
            .await
            .unwrap();
        let ids: Vec<String> = m.devices.iter().map(|d| d.id.clone()).collect();
        let req = |i: usize| AllocateRequest {
            container_requests: vec![ContainerAllocateRequest {
                devices_ids: vec![ids[i % ids.len()].clone()],
            }],
        };
        // Warm-up: first calls on a connection grow buffers and windows.
        for i in 0..ALLOCATE_WARMUP {
            c.allocate(req(i)).await.unwrap();
        }
        let pid = child.id();
        let (server0, client0, sw0) = (proc_cpu(pid), self_cpu(), switches(pid));
        // DP_BENCH_ALLOCATE_CALLS: a longer loop, to profile the plugin.
        let calls: usize = env_count("DP_BENCH_ALLOCATE_CALLS", ALLOCATE_CALLS);
        let mut lat = Vec::with_capacity(calls);
        for i in 0..calls {
            let r = req(i);
            let t = Instant::now();
            c.allocate(r).await.unwrap();
            lat.push(t.elapsed());
        }
        let slow = slow_calls(&lat);
        let server_cpu = (proc_cpu(pid) - server0) / calls as u32;
        let client_cpu = (self_cpu() - client0) / calls as u32;
        let server_switches = (switches(pid) - sw0) as f64 / calls as f64;
        lat.sort();
        Some(AllocateFigures {
            lat,
            slow,
            rss_kb: rss_kb(pid),
            server_cpu,
            client_cpu,
            server_switches,
        })
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
fn in_process_allocate(root: &Path, devinfo: &Path) -> (Vec<Duration>, (Duration, Duration)) {
    use sriov_device_plugin::{allocate, config::Config, device, pools, selectors::MatchEnv};
    let host = sriov_host::HostRoot::new(root);
    // Median of 5 scans at each detail level (the plugin uses Selection).
    let median_scan = |detail: Detail| {
        let mut t: Vec<Duration> = (0..5)
            .map(|_| {
                let t = Instant::now();
                let n = sriov_host::scan::scan_detail(&host, detail).unwrap();
                assert_eq!(n.vfs().count(), 1024);
                t.elapsed()
            })
            .collect();
        t.sort();
        t[2]
    };
    let scan = (median_scan(Detail::Full), median_scan(Detail::Selection));
    let node = sriov_host::scan::scan_detail(&host, Detail::Selection).unwrap();
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
    let rt = tokio::runtime::Builder::new_current_thread()
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
        let runs: usize = env_count("DP_BENCH_RUNS", 11);
        let (starts, a) = measure(Plugin::Ours, &root, &config, runs).await;
        println!("sriov-device-plugin, scale:8:128 (1,024 VFs, 8 PFs, 3 pools), static tree");
        println!(
            "start to first ListAndWatch (all 3 pools): median {:.1} ms (min {:.1}, max {:.1}; {runs} runs; target < 100 ms)",
            ms(starts[runs / 2]),
            ms(starts[0]),
            ms(starts[runs - 1])
        );
        print_allocate(&a, "target p99 < 1 ms");
        let (own, scan) = in_process_allocate(&root, &root.join("devinfo-inproc"));
        let p = |v: &[Duration], q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
        println!(
            "  of which the plugin's own work (in process, no gRPC): p50 {:.0} us, p99 {:.0} us",
            p(&own, 0.50).as_secs_f64() * 1e6,
            p(&own, 0.99).as_secs_f64() * 1e6
        );
        println!(
            "host scan of the node alone (in process, median of 5): {:.1} ms as the plugin reads it (Detail::Selection), {:.1} ms in full",
            ms(scan.1),
            ms(scan.0)
        );
        println!(
            "RSS with 1,024 VFs pooled: {:.1} MB (target < 15 MB)",
            a.rss_kb as f64 / 1024.0
        );
        if let Some(go) = std::env::var_os("SRIOV_GO_SRIOVDP").filter(|v| !v.is_empty()) {
            let go = std::path::PathBuf::from(go);
            let go_runs: usize = env_count("DP_BENCH_GO_RUNS", runs);
            let (gs, g) = measure(Plugin::Go(&go), &root, &config, go_runs).await;
            println!("upstream sriovdp ({}), the same tree, config and kubelet", go.display());
            println!(
                "start to first ListAndWatch (all 3 pools): median {:.1} ms (min {:.1}, max {:.1}; {go_runs} runs)",
                ms(gs[go_runs / 2]),
                ms(gs[0]),
                ms(gs[go_runs - 1])
            );
            print_allocate(&g, "upstream");
            println!(
                "RSS with 1,024 VFs pooled: {:.1} MB",
                g.rss_kb as f64 / 1024.0
            );
            println!(
                "ours vs upstream: start {:.1}x faster (target >= 5x), RSS {:.2}x (target <= 0.5x), Allocate p50 {:.2}x, plugin CPU per Allocate {:.2}x",
                ms(gs[go_runs / 2]) / ms(starts[runs / 2]),
                a.rss_kb as f64 / g.rss_kb as f64,
                ms(pct(&a.lat, 0.5)) / ms(pct(&g.lat, 0.5)),
                a.server_cpu.as_secs_f64() / g.server_cpu.as_secs_f64()
            );
        } else {
            println!("upstream sriovdp: not measured (set SRIOV_GO_SRIOVDP to its binary; docs/testing.md, \"Go peers\")");
        }
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "load average after measuring: {} (wall figures grow with other load; CPU figures less so)",
            load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        );
    });
}

/// A positive count from the environment variable `name`, else `default`.
fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn pct(lat: &[Duration], p: f64) -> Duration {
    lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)]
}

/// Two warm-up runs, then `runs` timed starts; the last one also measures
/// Allocate and RSS.
async fn measure(
    plugin: Plugin<'_>,
    root: &Path,
    config: &Path,
    runs: usize,
) -> (Vec<Duration>, AllocateFigures) {
    // warm the page cache
    for _ in 0..2 {
        let _ = one_run(plugin, root, config, false).await;
    }
    let mut starts = Vec::new();
    let mut more = None;
    for i in 0..runs {
        let (s, m) = one_run(plugin, root, config, i == runs - 1).await;
        starts.push(s);
        if m.is_some() {
            more = m;
        }
    }
    starts.sort();
    (starts, more.expect("the last run measures Allocate"))
}

fn print_allocate(a: &AllocateFigures, target: &str) {
    let lat = &a.lat;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "Allocate (1 device, {} calls after {ALLOCATE_WARMUP} warm-up): p50 {:.0} us, p90 {:.0} us, p99 {:.0} us, max {:.0} us ({target})",
        lat.len(),
        us(pct(lat, 0.50)),
        us(pct(lat, 0.90)),
        us(pct(lat, 0.99)),
        us(lat[lat.len() - 1])
    );
    println!(
        "  per call: plugin CPU {:.0} us and {:.1} context switches; bench client + test kubelet CPU {:.0} us",
        us(a.server_cpu),
        a.server_switches,
        us(a.client_cpu)
    );
    let (n, w, total) = a.slow;
    println!(
        "  calls over 1 ms: {n}, in {w} of the loop's {total} 50-ms windows (bunched: the plugin's own work; spread: the machine)"
    );
}
