//! Faults, end to end against a static `sriov-sim` tree (no root needed):
//! a config file edited in place that is half-written, empty or garbage
//! keeps the last good pools (and `/metrics` says so); a config with one
//! bad pool keeps the others; the kubelet socket removed and created again
//! (the plugin's own sockets left in place, or cleared as a kubelet does at
//! start) makes every pool register again and serve.

mod harness;

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use harness::{Harness, T, ids, node_tree};
use sriov_device_plugin::test_kubelet::Watch;

const NODE: &str = r#"
name: dp-faults
pfs:
  - {model: e810, address: "0000:3b:00.0", ifname: ens1f0, vfs: 4, vf_drivers: {3: vfio-pci}}
  - {model: e810, address: "0000:3b:00.1", ifname: ens1f1}
"#;

const GOOD: &str = r#"{"resourceList":[
  {"resourceName":"intel_netdev","selectors":{"vendors":["8086"],"drivers":["iavf"]}},
  {"resourceName":"intel_dpdk","selectors":{"drivers":["vfio-pci"]}}
]}"#;

/// The next config: the netdev pool narrowed to VFs 0-1 of ens1f0, the
/// dpdk pool unchanged, one bad entry (unknown deviceType), one new pool
/// taking VF 2.
const NEXT_WITH_A_BAD_POOL: &str = r#"{"resourceList":[
  {"resourceName":"intel_netdev","selectors":{"pfNames":["ens1f0#0-1"],"drivers":["iavf"]}},
  {"resourceName":"intel_dpdk","selectors":{"drivers":["vfio-pci"]}},
  {"resourceName":"broken","deviceType":"gpu","selectors":{"vendors":["8086"]}},
  {"resourceName":"intel_rest","selectors":{"rootDevices":["0000:3b:00.0#2"]}}
]}"#;

/// The value of a metric line (`name value`) in the plugin's `/metrics`.
fn metric(h: &Harness, name: &str) -> String {
    let text = sriov_device_plugin::metrics::render(&h.status);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .to_string()
}

/// Waits until `sriov_dp_config_errors_total` reaches `n`.
async fn errors_reach(h: &Harness, n: u64) {
    let start = Instant::now();
    while h.status.config_errors.load(Relaxed) < n {
        assert!(
            start.elapsed() < T,
            "config errors stay at {}, want {n}",
            h.status.config_errors.load(Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.status.config_errors.load(Relaxed), n);
}

/// Waits until `sriov_dp_registrations_total` is `n` (the plugin counts a
/// registration once the kubelet has answered it).
async fn registrations_reach(h: &Harness, n: &str) {
    let start = Instant::now();
    while metric(h, "sriov_dp_registrations_total") != n {
        assert!(
            start.elapsed() < T,
            "registrations_total {}, want {n}",
            metric(h, "sriov_dp_registrations_total")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_file_keeps_the_last_good_pools_and_says_so() {
    let root = node_tree(NODE);
    // A plain file edited in place (a hostPath config, an editor), not a
    // ConfigMap symlink swap.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.json");
    std::fs::write(&file, GOOD).unwrap();
    let f2 = file.clone();
    let mut h = Harness::builder(root.path(), GOOD)
        .options(|o| o.config_file = f2)
        .start()
        .await;
    h.registered("intel.com/intel_netdev").await;
    h.registered("intel.com/intel_dpdk").await;
    let mut c = h.client("intel.com_intel_netdev.sock").await;
    let mut w = Watch::open(&mut c).await.unwrap();
    assert_eq!(ids(&w.next(T).await.unwrap()).len(), 3);
    assert_eq!(metric(&h, "sriov_dp_config_stale"), "0");

    // Half-written (the writer died mid-file), empty (truncated, not yet
    // written), binary garbage: each rejected once, counted, flagged; the
    // pools do not move.
    let half = &NEXT_WITH_A_BAD_POOL[..NEXT_WITH_A_BAD_POOL.len() / 2];
    let garbage: Vec<u8> = (0..512u32).map(|i| (i * 151 % 251) as u8 | 0x80).collect();
    for (n, bytes) in [half.as_bytes(), b"", garbage.as_slice()]
        .into_iter()
        .enumerate()
    {
        std::fs::write(&file, bytes).unwrap();
        errors_reach(&h, n as u64 + 1).await;
        assert_eq!(metric(&h, "sriov_dp_config_stale"), "1");
        assert_eq!(metric(&h, "sriov_dp_config_reloads_total"), "0");
        assert!(
            w.next(Duration::from_millis(150)).await.is_none(),
            "the pool changed after a rejected config ({n})"
        );
    }
    // The same garbage written again is not counted twice.
    std::fs::write(&file, &garbage).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(h.status.config_errors.load(Relaxed), 3);
    // Every pool still served, with its devices.
    // (A new stream, as a restarted kubelet opens; it replaces the old.)
    let mut w = Watch::open(&mut c).await.unwrap();
    let m = w.next(T).await.unwrap();
    assert_eq!(ids(&m).len(), 3, "netdev pool kept");
    let mut d = h.client("intel.com_intel_dpdk.sock").await;
    let m = Watch::open(&mut d).await.unwrap().next(T).await.unwrap();
    assert_eq!(ids(&m), ["0000:3b:02.3"], "dpdk pool kept");
    assert_eq!(
        metric(
            &h,
            "sriov_dp_pool_devices{resource=\"intel.com/intel_netdev\",health=\"healthy\"}"
        ),
        "3"
    );

    // The whole file lands, with one bad pool: the others are used (the
    // netdev pool narrows in place, the new pool registers), the bad one
    // is skipped and counted, and the config is no longer stale.
    h.kubelet.clear();
    std::fs::write(&file, NEXT_WITH_A_BAD_POOL).unwrap();
    let m = w
        .until(T, |m| m.devices.len() == 2)
        .await
        .unwrap_or_else(|| {
            panic!(
                "the netdev pool narrows; metrics:\n{}",
                sriov_device_plugin::metrics::render(&h.status)
            )
        });
    assert_eq!(ids(&m), ["0000:3b:02.0", "0000:3b:02.1"]);
    let m = h.first_list("intel.com/intel_rest").await;
    assert_eq!(ids(&m), ["0000:3b:02.2"]);
    assert_eq!(metric(&h, "sriov_dp_config_reloads_total"), "1");
    assert_eq!(metric(&h, "sriov_dp_config_stale"), "0");
    assert_eq!(h.status.config_errors.load(Relaxed), 4, "the bad pool");
    assert!(
        !h.kubelet
            .registrations()
            .iter()
            .any(|r| r.resource.contains("broken")),
        "{:?}",
        h.kubelet.registrations()
    );
    let m = Watch::open(&mut d).await.unwrap().next(T).await.unwrap();
    assert_eq!(ids(&m), ["0000:3b:02.3"], "dpdk pool still served");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_socket_removed_then_created_again_re_registers_and_serves() {
    let root = node_tree(NODE);
    let mut h = Harness::start(root.path(), GOOD).await;
    h.registered("intel.com/intel_netdev").await;
    h.registered("intel.com/intel_dpdk").await;
    registrations_reach(&h, "2").await;

    // The kubelet goes away (its socket removed) and comes back a moment
    // later; the plugin's sockets are still there.
    h.kubelet.shutdown().await;
    h.kubelet.clear();
    assert!(!h.kubelet.socket().exists());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(h.plugin_dir.join("intel.com_intel_netdev.sock").exists());
    let t = Instant::now();
    h.kubelet.serve_again().unwrap();
    for r in ["intel.com/intel_netdev", "intel.com/intel_dpdk"] {
        let reg = h
            .kubelet
            .wait_for(Duration::from_secs(1), |x| x.resource == r)
            .await
            .unwrap_or_else(|| panic!("{r} not re-registered within 1 s"));
        assert!(reg.at.duration_since(t) < Duration::from_secs(1));
    }
    registrations_reach(&h, "4").await;
    let m = h.first_list("intel.com/intel_netdev").await;
    assert_eq!(ids(&m).len(), 3);

    // And again the way a starting kubelet does it: every socket in the
    // directory deleted, then kubelet.sock created.
    h.kubelet.clear();
    h.kubelet.restart().await.unwrap();
    for r in ["intel.com/intel_netdev", "intel.com/intel_dpdk"] {
        h.kubelet
            .wait_for(Duration::from_secs(1), |x| x.resource == r)
            .await
            .unwrap_or_else(|| panic!("{r} not re-registered within 1 s"));
    }
    let m = h.first_list("intel.com/intel_dpdk").await;
    assert_eq!(ids(&m), ["0000:3b:02.3"]);
    // The registration shows in /metrics once the kubelet answered it.
    let start = Instant::now();
    while metric(
        &h,
        "sriov_dp_pool_registered{resource=\"intel.com/intel_dpdk\"}",
    ) != "1"
    {
        assert!(start.elapsed() < T, "intel_dpdk not shown registered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.stop().await;
}
