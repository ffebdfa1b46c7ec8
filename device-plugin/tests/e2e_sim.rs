//! End to end against a FUSE-mounted simulated node (root, FUSE): the
//! simulated kernel creates VFs and rebinds drivers, the plugin hears the
//! uevents and updates its pools over ListAndWatch.

mod harness;

use std::time::Duration;

use harness::{Harness, T, health, ids};
use sriov_host::{BindOptions, HostRoot, PciAddress};
use sriov_sim::lanes::{self, Lane};
use sriov_sim::{SimNode, SimOptions};

const CONFIG: &str = r#"{"resourceList":[
  {"resourceName":"intel_netdev","selectors":{"vendors":["8086"],"drivers":["iavf"]}},
  {"resourceName":"intel_dpdk","selectors":{"vendors":["8086"],"drivers":["vfio-pci"]}}
]}"#;

fn set_numvfs(root: &std::path::Path, pf: &str, n: u32) {
    sriov_host::sriov::set_num_vfs(
        &HostRoot::new(root),
        &pf.parse().unwrap(),
        n,
        Duration::from_secs(5),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescans_when_vfs_appear_and_when_one_moves_to_vfio() {
    if !lanes::require(
        "rescans_when_vfs_appear_and_when_one_moves_to_vfio",
        &[Lane::Fuse],
    ) {
        return;
    }
    let sim = SimNode::start("mixed", SimOptions::default()).unwrap();
    let root = sim.root().to_path_buf();
    let h = Harness::builder(&root, CONFIG)
        .options(|o| o.health_interval = Duration::from_secs(60))
        .start()
        .await;
    let mut w = h.watch("intel.com/intel_netdev").await;
    // mixed: 4 iavf VFs on 3b:00.0; 3b:00.1 and 5e:00.0 have no VFs and
    // no driver match (ice, i40e)
    let m = w.next(T).await.unwrap();
    assert_eq!(
        ids(&m),
        [
            "0000:3b:02.0",
            "0000:3b:02.1",
            "0000:3b:02.2",
            "0000:3b:02.3"
        ]
    );

    // the simulated kernel creates 2 VFs on 3b:00.1: uevents -> rescan
    let t = std::time::Instant::now();
    let blocking_root = root.clone();
    tokio::task::spawn_blocking(move || set_numvfs(&blocking_root, "0000:3b:00.1", 2))
        .await
        .unwrap();
    let m = w
        .until(T, |m| m.devices.len() == 6)
        .await
        .expect("new VFs listed");
    eprintln!("VFs listed {:?} after the numvfs write", t.elapsed());
    assert!(ids(&m).iter().filter(|i| i.starts_with("0000:3b:")).count() == 6);

    // rebind one VF to vfio-pci: it leaves the netdev pool and the dpdk
    // pool appears with it
    let vf: PciAddress = "0000:3b:02.1".parse().unwrap();
    let r2 = root.clone();
    tokio::task::spawn_blocking(move || {
        sriov_host::driver::bind(
            &HostRoot::new(&r2),
            &vf,
            "vfio-pci",
            &BindOptions::default(),
        )
        .unwrap()
    })
    .await
    .unwrap();
    let m = w
        .until(T, |m| m.devices.len() == 5)
        .await
        .expect("VF left the netdev pool");
    assert!(!ids(&m).contains(&"0000:3b:02.1".to_string()));
    let m = h.first_list("intel.com/intel_dpdk").await;
    assert_eq!(health(&m), [("0000:3b:02.1".into(), "Healthy".into())]);
    let cr = h
        .allocate("intel.com_intel_dpdk.sock", &["0000:3b:02.1"])
        .await
        .unwrap();
    let dev = &cr.devices[1].host_path;
    assert!(dev.starts_with("/dev/vfio/"), "{dev}");
    assert!(root.join(dev.trim_start_matches('/')).exists());

    // VFs removed: the uevent rescan lists them Unhealthy (they are
    // dropped after a grace, at a health check: see
    // vanished_vfs_are_unhealthy_then_dropped)
    let r3 = root.clone();
    tokio::task::spawn_blocking(move || set_numvfs(&r3, "0000:3b:00.1", 0))
        .await
        .unwrap();
    let m = w
        .until(T, |m| {
            m.devices.iter().filter(|d| d.health == "Unhealthy").count() == 2
        })
        .await
        .expect("removed VFs listed Unhealthy");
    assert!(
        m.devices
            .iter()
            .filter(|d| d.health == "Unhealthy")
            .all(|d| d.id.starts_with("0000:3b:12.")),
        "{m:?}"
    );
    drop(h);
    drop(sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_vfio_device_stays_listed_unhealthy_until_rebound() {
    if !lanes::require(
        "unbound_vfio_device_stays_listed_unhealthy_until_rebound",
        &[Lane::Fuse],
    ) {
        return;
    }
    let sim = SimNode::start("mixed", SimOptions::default()).unwrap();
    let root = sim.root().to_path_buf();
    let vf: PciAddress = "0000:3b:02.0".parse().unwrap();
    let r = root.clone();
    tokio::task::spawn_blocking(move || {
        sriov_host::driver::bind(&HostRoot::new(&r), &vf, "vfio-pci", &BindOptions::default())
            .unwrap()
    })
    .await
    .unwrap();
    let h = Harness::builder(&root, CONFIG)
        .options(|o| o.health_interval = Duration::from_millis(100))
        .start()
        .await;
    let mut w = h.watch("intel.com/intel_dpdk").await;
    let m = w.next(T).await.unwrap();
    assert_eq!(health(&m), [("0000:3b:02.0".into(), "Healthy".into())]);
    // unbinding by hand (no new driver): the device stays listed in its
    // pool as Unhealthy (its driver changed away from vfio-pci)
    let unbind = root.join("sys/bus/pci/drivers/vfio-pci/unbind");
    tokio::task::spawn_blocking(move || std::fs::write(unbind, "0000:3b:02.0").unwrap())
        .await
        .unwrap();
    let m = w
        .until(T, |m| m.devices.iter().all(|d| d.health == "Unhealthy"))
        .await
        .expect("Unhealthy after unbind");
    assert_eq!(ids(&m), ["0000:3b:02.0"]);
    // bound back: Healthy again
    let r = root.clone();
    tokio::task::spawn_blocking(move || {
        sriov_host::driver::bind(&HostRoot::new(&r), &vf, "vfio-pci", &BindOptions::default())
            .unwrap()
    })
    .await
    .unwrap();
    w.until(T, |m| m.devices.iter().all(|d| d.health == "Healthy"))
        .await
        .expect("Healthy after rebinding");
    drop(h);
    drop(sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_vfs_are_unhealthy_then_dropped() {
    if !lanes::require("vanished_vfs_are_unhealthy_then_dropped", &[Lane::Fuse]) {
        return;
    }
    // iavf VFs and ice PFs without VFs, so the pool never empties
    const CFG: &str = r#"{"resourceList":[
      {"resourceName":"intel_netdev","selectors":{"vendors":["8086"],"drivers":["iavf","ice"]}}
    ]}"#;
    let sim = SimNode::start("mixed", SimOptions::default()).unwrap();
    let root = sim.root().to_path_buf();
    let h = Harness::builder(&root, CFG)
        .options(|o| o.health_interval = Duration::from_millis(200))
        .start()
        .await;
    let mut w = h.watch("intel.com/intel_netdev").await;
    let m = w.next(T).await.unwrap();
    let vfs = [
        "0000:3b:02.0",
        "0000:3b:02.1",
        "0000:3b:02.2",
        "0000:3b:02.3",
    ];
    let mut want: Vec<&str> = vfs.to_vec();
    want.push("0000:3b:00.1");
    want.sort();
    assert_eq!(ids(&m), want);
    // VFs removed: each is reported Unhealthy over ListAndWatch before it
    // is dropped; the PF without VFs joins the pool
    let r = root.clone();
    tokio::task::spawn_blocking(move || set_numvfs(&r, "0000:3b:00.0", 0))
        .await
        .unwrap();
    let t = std::time::Instant::now();
    let m = w
        .until(T, |m| {
            vfs.iter().all(|v| {
                m.devices
                    .iter()
                    .any(|d| d.id == *v && d.health == "Unhealthy")
            })
        })
        .await
        .expect("vanished VFs listed Unhealthy");
    eprintln!("Unhealthy after {:?}: {:?}", t.elapsed(), health(&m));
    let m = w
        .until(T, |m| {
            !m.devices.iter().any(|d| vfs.contains(&d.id.as_str()))
        })
        .await
        .expect("vanished VFs dropped after the grace");
    let gone = t.elapsed();
    assert!(
        gone >= sriov_device_plugin::pools::VANISHED_GRACE - Duration::from_millis(300),
        "dropped after {gone:?}: {m:?}"
    );
    assert_eq!(
        health(&m),
        [
            ("0000:3b:00.0".into(), "Healthy".into()),
            ("0000:3b:00.1".into(), "Healthy".into())
        ]
    );
    // VFs back: listed Healthy; the PF (no longer offered) goes the same way
    let r = root.clone();
    tokio::task::spawn_blocking(move || set_numvfs(&r, "0000:3b:00.0", 2))
        .await
        .unwrap();
    let m = w
        .until(T, |m| {
            ids(m) == ["0000:3b:00.1", "0000:3b:02.0", "0000:3b:02.1"]
        })
        .await
        .expect("new VFs listed, the PF dropped");
    assert!(m.devices.iter().all(|d| d.health == "Healthy"), "{m:?}");
    drop(h);
    drop(sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scalable_functions_go_and_come_back_with_their_pf_driver() {
    if !lanes::require(
        "scalable_functions_go_and_come_back_with_their_pf_driver",
        &[Lane::Fuse],
    ) {
        return;
    }
    const NODE: &str = r#"
pfs:
  - {model: cx6dx, address: "0000:af:00.0", ifname: ens3f0np0, numa: 1, sfs: 2}
"#;
    const CFG: &str = r#"{"resourceList":[
      {"resourceName":"sf","resourcePrefix":"nvidia.com","deviceType":"auxNetDevice",
       "selectors":{"auxTypes":["sf"]}}
    ]}"#;
    let spec = sriov_sim::node::NodeSpec::from_yaml(NODE, "test").unwrap();
    let sim = SimNode::start(spec, SimOptions::default()).unwrap();
    let root = sim.root().to_path_buf();
    let h = Harness::builder(&root, CFG)
        .options(|o| o.health_interval = Duration::from_millis(200))
        .start()
        .await;
    let mut w = h.watch("nvidia.com/sf").await;
    let m = w.next(T).await.unwrap();
    assert_eq!(
        health(&m),
        [
            ("mlx5_core.sf.1".into(), "Healthy".into()),
            ("mlx5_core.sf.2".into(), "Healthy".into())
        ]
    );
    // unbinding the PF driver removes its SFs (auxiliary uevents): first
    // Unhealthy, then dropped, and the empty pool goes away
    let drivers = root.join("sys/bus/pci/drivers/mlx5_core");
    let d = drivers.clone();
    tokio::task::spawn_blocking(move || std::fs::write(d.join("unbind"), "0000:af:00.0").unwrap())
        .await
        .unwrap();
    w.until(T, |m| {
        !m.devices.is_empty() && m.devices.iter().all(|d| d.health == "Unhealthy")
    })
    .await
    .expect("SFs Unhealthy once gone");
    w.until(T, |m| m.devices.is_empty())
        .await
        .expect("SFs dropped");
    // bound again: the SFs come back (same names: the ids are reused) and
    // the pool registers again
    let t = std::time::Instant::now();
    tokio::task::spawn_blocking(move || {
        std::fs::write(drivers.join("bind"), "0000:af:00.0").unwrap()
    })
    .await
    .unwrap();
    h.kubelet
        .wait_for(T, |r| r.resource == "nvidia.com/sf" && r.at > t)
        .await
        .expect("pool registered again");
    let m = h.first_list("nvidia.com/sf").await;
    assert_eq!(ids(&m), ["mlx5_core.sf.1", "mlx5_core.sf.2"]);
    drop(h);
    drop(sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vdpa_devices_come_with_vfs_created_at_run_time() {
    if !lanes::require(
        "vdpa_devices_come_with_vfs_created_at_run_time",
        &[Lane::Fuse],
    ) {
        return;
    }
    const NODE: &str = r#"
pfs:
  - {model: cx6dx, address: "0000:af:00.0", ifname: ens3f0np0, numa: 1, vfs: 2, vdpa: {1: vhost}}
"#;
    const CFG: &str = r#"{"resourceList":[
      {"resourceName":"vhost","resourcePrefix":"nvidia.com","selectors":{"vdpaType":"vhost"}}
    ]}"#;
    let spec = sriov_sim::node::NodeSpec::from_yaml(NODE, "test").unwrap();
    let sim = SimNode::start(spec, SimOptions::default()).unwrap();
    let root = sim.root().to_path_buf();
    let h = Harness::builder(&root, CFG)
        .options(|o| o.health_interval = Duration::from_millis(200))
        .start()
        .await;
    let mut w = h.watch("nvidia.com/vhost").await;
    assert_eq!(ids(&w.next(T).await.unwrap()), ["0000:af:00.3"]);
    // VFs disabled: the vDPA device goes with its VF (vdpa + pci uevents)
    let r = root.clone();
    tokio::task::spawn_blocking(move || set_numvfs(&r, "0000:af:00.0", 0))
        .await
        .unwrap();
    w.until(T, |m| m.devices.is_empty())
        .await
        .expect("VF with its vDPA device dropped");
    // enabled again: the probe creates the vDPA device; the pool is back
    let t = std::time::Instant::now();
    let r = root.clone();
    tokio::task::spawn_blocking(move || set_numvfs(&r, "0000:af:00.0", 2))
        .await
        .unwrap();
    h.kubelet
        .wait_for(T, |r| r.resource == "nvidia.com/vhost" && r.at > t)
        .await
        .expect("pool registered again");
    let m = h.first_list("nvidia.com/vhost").await;
    assert_eq!(ids(&m), ["0000:af:00.3"]);
    let cr = h
        .allocate("nvidia.com_vhost.sock", &["0000:af:00.3"])
        .await
        .unwrap();
    assert!(
        cr.devices
            .iter()
            .any(|d| d.host_path == "/dev/vhost-vdpa-0" && d.permissions == "rw"),
        "{cr:?}"
    );
    drop(h);
    drop(sim);
}
