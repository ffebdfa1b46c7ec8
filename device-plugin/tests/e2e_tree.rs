//! End to end against static `sriov-sim` trees (no root needed): the plugin
//! and a test kubelet talk over real unix sockets.

mod harness;

use std::time::Duration;

use harness::{Harness, T, health, ids, node_tree};
use sriov_device_plugin::api::{
    AllocateRequest, ContainerAllocateRequest, ContainerPreferredAllocationRequest, Empty,
    PreferredAllocationRequest,
};
use sriov_device_plugin::test_kubelet::Watch;

const NODE: &str = r#"
name: dp
pfs:
  - model: e810
    address: "0000:3b:00.0"
    ifname: ens1f0
    numa: 0
    vfs: 4
    vf_drivers: {3: vfio-pci}
  - model: e810
    address: "0000:3b:00.1"
    ifname: ens1f1
    numa: 0
  - model: cx6dx
    address: "0000:af:00.0"
    ifname: ens3f0np0
    numa: 1
    vfs: 2
"#;

const CONFIG: &str = r#"{"resourceList":[
  {"resourceName":"intel_netdev","selectors":{"vendors":["8086"],"devices":["1889"],"drivers":["iavf"]},
   "additionalInfo":{"*":{"token":"abc"}}},
  {"resourceName":"intel_dpdk","selectors":[{"drivers":["vfio-pci"]}]},
  {"resourceName":"intel_pf","selectors":{"pciAddresses":["0000:3b:00.1"]}},
  {"resourceName":"mlnx_rdma","resourcePrefix":"nvidia.com","excludeTopology":true,
   "selectors":{"Vendors":["15b3"],"IsRdma":true}},
  {"resourceName":"unused","selectors":{"vendors":["abcd"]}}
]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_pools_and_lists_devices() {
    let root = node_tree(NODE);
    let h = Harness::start(root.path(), CONFIG).await;
    let ep = h.registered("intel.com/intel_netdev").await;
    assert_eq!(ep, "intel.com_intel_netdev.sock");
    h.registered("intel.com/intel_dpdk").await;
    h.registered("intel.com/intel_pf").await;
    h.registered("nvidia.com/mlnx_rdma").await;
    let regs = h.kubelet.registrations();
    assert!(
        regs.iter()
            .all(|r| r.version == "v1beta1" && r.preferred_allocation),
        "{regs:?}"
    );
    assert!(
        !regs.iter().any(|r| r.resource == "intel.com/unused"),
        "an empty pool must not be advertised: {regs:?}"
    );
    assert!(!h.plugin_dir.join("intel.com_unused.sock").exists());

    let mut c = h.client(&ep).await;
    let opts = c
        .get_device_plugin_options(Empty {})
        .await
        .unwrap()
        .into_inner();
    assert!(opts.get_preferred_allocation_available);
    assert!(!opts.pre_start_required);
    let mut w = Watch::open(&mut c).await.unwrap();
    let m = w.next(T).await.expect("first list");
    assert_eq!(ids(&m), ["0000:3b:02.0", "0000:3b:02.1", "0000:3b:02.2"]);
    for d in &m.devices {
        assert_eq!(d.health, "Healthy");
        assert_eq!(d.topology.as_ref().unwrap().nodes[0].id, 0);
    }

    // the vfio VF is in the dpdk pool; the PF with VFs is offered nowhere
    let m = h.first_list("intel.com/intel_dpdk").await;
    assert_eq!(ids(&m), ["0000:3b:02.3"]);
    // the PF without VFs is offered
    let m = h.first_list("intel.com/intel_pf").await;
    assert_eq!(ids(&m), ["0000:3b:00.1"]);
    // excludeTopology: no NUMA
    let m = h.first_list("nvidia.com/mlnx_rdma").await;
    assert_eq!(ids(&m).len(), 2);
    assert!(m.devices.iter().all(|d| d.topology.is_none()), "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocate_answers_env_devices_and_writes_device_info() {
    let root = node_tree(NODE);
    let h = Harness::start(root.path(), CONFIG).await;
    let ep = h.registered("intel.com/intel_dpdk").await;
    let cr = h.allocate(&ep, &["0000:3b:02.3"]).await.unwrap();
    assert_eq!(
        cr.envs
            .get("PCIDEVICE_INTEL_COM_INTEL_DPDK")
            .map(String::as_str),
        Some("0000:3b:02.3")
    );
    let info: serde_json::Value =
        serde_json::from_str(&cr.envs["PCIDEVICE_INTEL_COM_INTEL_DPDK_INFO"]).unwrap();
    let group = std::fs::read_link(
        root.path()
            .join("sys/bus/pci/devices/0000:3b:02.3/iommu_group"),
    )
    .unwrap()
    .file_name()
    .unwrap()
    .to_str()
    .unwrap()
    .to_string();
    let dev = format!("/dev/vfio/{group}");
    assert_eq!(info["0000:3b:02.3"]["generic"]["deviceID"], "0000:3b:02.3");
    assert_eq!(info["0000:3b:02.3"]["vfio"]["mount"], "/dev/vfio/vfio");
    assert_eq!(info["0000:3b:02.3"]["vfio"]["dev-mount"], dev.as_str());
    let paths: Vec<(&str, &str, &str)> = cr
        .devices
        .iter()
        .map(|d| {
            (
                d.host_path.as_str(),
                d.container_path.as_str(),
                d.permissions.as_str(),
            )
        })
        .collect();
    assert_eq!(
        paths,
        [
            ("/dev/vfio/vfio", "/dev/vfio/vfio", "rw"),
            (dev.as_str(), dev.as_str(), "rw")
        ]
    );
    let f = h
        .devinfo_dir
        .join("intel.com-intel_dpdk-0000:3b:02.3-device.json");
    let di: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
    assert_eq!(di["type"], "pci");
    assert_eq!(di["version"], "1.1.0");
    assert_eq!(di["pci"]["pci-address"], "0000:3b:02.3");
    assert_eq!(di["pci"]["pf-pci-address"], "0000:3b:00.0");

    // netdevice pool: two devices, extra info, no device specs
    let cr = h
        .allocate(
            "intel.com_intel_netdev.sock",
            &["0000:3b:02.0", "0000:3b:02.2"],
        )
        .await
        .unwrap();
    assert_eq!(
        cr.envs["PCIDEVICE_INTEL_COM_INTEL_NETDEV"],
        "0000:3b:02.0,0000:3b:02.2"
    );
    let info: serde_json::Value =
        serde_json::from_str(&cr.envs["PCIDEVICE_INTEL_COM_INTEL_NETDEV_INFO"]).unwrap();
    assert_eq!(info["0000:3b:02.2"]["extra"]["token"], "abc");
    assert!(info["0000:3b:02.2"].get("vfio").is_none());
    assert!(cr.devices.is_empty());

    // RDMA pool: rdma device named in the info and the device-info file
    let m = h.first_list("nvidia.com/mlnx_rdma").await;
    let id = m.devices[0].id.clone();
    let cr = h
        .allocate("nvidia.com_mlnx_rdma.sock", &[&id])
        .await
        .unwrap();
    let info: serde_json::Value =
        serde_json::from_str(&cr.envs["PCIDEVICE_NVIDIA_COM_MLNX_RDMA_INFO"]).unwrap();
    let rdma = info[&id]["rdma"]["rdma_dev"].as_str().unwrap().to_string();
    assert!(rdma.starts_with("mlx5_"), "{info}");
    assert!(
        cr.devices
            .iter()
            .any(|d| d.host_path == "/dev/infiniband/rdma_cm")
    );
    let di: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            h.devinfo_dir
                .join(format!("nvidia.com-mlnx_rdma-{id}-device.json")),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(di["pci"]["rdma-device"], rdma.as_str());

    // unknown ID: InvalidArgument, nothing written
    let e = h
        .allocate(
            "intel.com_intel_netdev.sock",
            &["0000:3b:02.1", "0000:99:00.0"],
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("0000:99:00.0"), "{e}");
    assert!(
        !h.devinfo_dir
            .join("intel.com-intel_netdev-0000:3b:02.1-device.json")
            .exists()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferred_allocation_spreads_and_honours_must_include() {
    let root = node_tree(NODE);
    let h = Harness::start(root.path(), CONFIG).await;
    let ep = h.registered("intel.com/intel_netdev").await;
    let mut c = h.client(&ep).await;
    let all: Vec<String> = ["0000:3b:02.0", "0000:3b:02.1", "0000:3b:02.2"]
        .map(String::from)
        .to_vec();
    let r = c
        .get_preferred_allocation(PreferredAllocationRequest {
            container_requests: vec![ContainerPreferredAllocationRequest {
                available_device_i_ds: all.clone(),
                must_include_device_i_ds: vec!["0000:3b:02.2".into()],
                allocation_size: 2,
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.container_responses[0].device_i_ds,
        ["0000:3b:02.2", "0000:3b:02.0"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_flips_on_pf_carrier_loss_and_back_with_pf_link_health() {
    let root = node_tree(NODE);
    let h = Harness::builder(root.path(), CONFIG)
        .options(|o| o.health.pf_link = true)
        .start()
        .await;
    let mut w = h.watch("intel.com/intel_netdev").await;
    let m = w.next(T).await.unwrap();
    assert!(m.devices.iter().all(|d| d.health == "Healthy"));
    let carrier = root.path().join("sys/class/net/ens1f0/carrier");
    std::fs::write(&carrier, "0\n").unwrap();
    let m = w
        .until(T, |m| m.devices.iter().all(|d| d.health == "Unhealthy"))
        .await
        .unwrap_or_else(|| panic!("no Unhealthy list after carrier loss"));
    assert_eq!(m.devices.len(), 3);
    std::fs::write(&carrier, "1\n").unwrap();
    w.until(T, |m| m.devices.iter().all(|d| d.health == "Healthy"))
        .await
        .expect("Healthy again after carrier is back");
    // a pool on another PF was never affected
    let m = h.first_list("intel.com/intel_pf").await;
    assert_eq!(health(&m), [("0000:3b:00.1".into(), "Healthy".into())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_restart_re_registers_within_a_second() {
    let root = node_tree(NODE);
    let mut h = Harness::start(root.path(), CONFIG).await;
    h.registered("intel.com/intel_netdev").await;
    h.registered("nvidia.com/mlnx_rdma").await;
    h.kubelet.clear();
    let t = std::time::Instant::now();
    h.kubelet.restart().await.unwrap();
    for r in [
        "intel.com/intel_netdev",
        "intel.com/intel_dpdk",
        "intel.com/intel_pf",
        "nvidia.com/mlnx_rdma",
    ] {
        let reg = h
            .kubelet
            .wait_for(Duration::from_secs(1), |x| x.resource == r)
            .await
            .unwrap_or_else(|| panic!("{r} not re-registered within 1 s"));
        assert!(reg.at.duration_since(t) < Duration::from_secs(1));
    }
    // the sockets the kubelet deleted are served again
    let m = h.first_list("intel.com/intel_netdev").await;
    assert_eq!(ids(&m).len(), 3);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_reload_updates_pools_and_bad_config_keeps_them() {
    let root = node_tree(NODE);
    let mut h = Harness::start(root.path(), CONFIG).await;
    let ep = h.registered("intel.com/intel_netdev").await;
    let mut c = h.client(&ep).await;
    let mut w = Watch::open(&mut c).await.unwrap();
    assert_eq!(ids(&w.next(T).await.unwrap()).len(), 3);
    let mut dpdk = h.client("intel.com_intel_dpdk.sock").await;
    let mut wd = Watch::open(&mut dpdk).await.unwrap();
    assert_eq!(ids(&wd.next(T).await.unwrap()), ["0000:3b:02.3"]);

    // a bad config: nothing changes
    h.config
        .update(r#"{"resourceList":[{"resourceName":"x","deviceType":"gpu","#);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        h.status
            .config_errors
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert!(w.next(Duration::from_millis(200)).await.is_none());
    let m = Watch::open(&mut c).await.unwrap().next(T).await.unwrap();
    assert_eq!(ids(&m).len(), 3, "pool kept after a bad config");

    // a good config: the netdev pool narrows in place (pfNames range), the
    // dpdk pool is removed (its stream gets an empty list), a new one starts
    h.kubelet.clear();
    h.config.update(
        r#"{"resourceList":[
          {"resourceName":"intel_netdev","selectors":{"pfNames":["ens1f0#0-1"],"drivers":["iavf"]}},
          {"resourceName":"intel_rest","selectors":{"rootDevices":["0000:3b:00.0#2-3"]}}
        ]}"#,
    );
    let m = w
        .until(T, |m| m.devices.len() == 2)
        .await
        .expect("narrowed");
    assert_eq!(ids(&m), ["0000:3b:02.0", "0000:3b:02.1"]);
    let m = wd.next(T).await.expect("removed pool sends an empty list");
    assert!(m.devices.is_empty());
    h.registered("intel.com/intel_rest").await;
    let mut c2 = h.client("intel.com_intel_rest.sock").await;
    let m = Watch::open(&mut c2).await.unwrap().next(T).await.unwrap();
    assert_eq!(ids(&m), ["0000:3b:02.2", "0000:3b:02.3"]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!h.plugin_dir.join("intel.com_intel_dpdk.sock").exists());

    // shutdown removes sockets and keeps device-info files
    let r = c2
        .allocate(AllocateRequest {
            container_requests: vec![ContainerAllocateRequest {
                devices_ids: vec!["0000:3b:02.2".into()],
            }],
        })
        .await;
    assert!(r.is_ok());
    h.stop().await;
    let socks: Vec<_> = std::fs::read_dir(&h.plugin_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "kubelet.sock")
        .collect();
    assert!(socks.is_empty(), "sockets left: {socks:?}");
    assert!(
        h.devinfo_dir
            .join("intel.com-intel_rest-0000:3b:02.2-device.json")
            .exists()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vfio_device_unhealthy_while_its_group_node_is_missing() {
    let root = node_tree(NODE);
    let h = Harness::start(root.path(), CONFIG).await;
    let mut w = h.watch("intel.com/intel_dpdk").await;
    assert_eq!(
        health(&w.next(T).await.unwrap()),
        [("0000:3b:02.3".into(), "Healthy".into())]
    );
    let group = std::fs::read_link(
        root.path()
            .join("sys/bus/pci/devices/0000:3b:02.3/iommu_group"),
    )
    .unwrap();
    let node = root
        .path()
        .join("dev/vfio")
        .join(group.file_name().unwrap());
    let saved = node.with_extension("saved");
    std::fs::rename(&node, &saved).unwrap();
    w.until(T, |m| {
        health(m) == [("0000:3b:02.3".into(), "Unhealthy".into())]
    })
    .await
    .expect("Unhealthy without /dev/vfio/<group>");
    std::fs::rename(&saved, &node).unwrap();
    w.until(T, |m| {
        health(m) == [("0000:3b:02.3".into(), "Healthy".into())]
    })
    .await
    .expect("Healthy again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdi_mode_answers_cdi_names_and_writes_the_spec() {
    let root = node_tree(NODE);
    let cdi = root.path().join("cdi");
    let c2 = cdi.clone();
    let h = Harness::builder(root.path(), CONFIG)
        .options(|o| o.cdi_dir = Some(c2))
        .start()
        .await;
    let ep = h.registered("intel.com/intel_dpdk").await;
    let cr = h.allocate(&ep, &["0000:3b:02.3"]).await.unwrap();
    assert!(cr.devices.is_empty(), "CDI mode: no device specs");
    // as upstream: the annotation (every kubelet passes it on), no CDI field
    assert!(cr.cdi_devices.is_empty());
    assert_eq!(
        cr.annotations["cdi.k8s.io/intel.com_net-pci"],
        "intel.com/net-pci=0000:3b:02.3"
    );
    assert_eq!(cr.envs["PCIDEVICE_INTEL_COM_INTEL_DPDK"], "0000:3b:02.3");
    let spec: serde_json::Value = serde_json::from_slice(
        &std::fs::read(cdi.join("sriov-dp-intel.com-net-pci-intel_dpdk.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(spec["cdiVersion"], "0.5.0");
    assert_eq!(spec["kind"], "intel.com/net-pci");
    let dev = &spec["devices"][0];
    assert_eq!(dev["name"], "0000:3b:02.3");
    let nodes: Vec<&str> = dev["containerEdits"]["deviceNodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["path"].as_str().unwrap())
        .collect();
    assert_eq!(nodes[0], "/dev/vfio/vfio");
    assert!(nodes[1].starts_with("/dev/vfio/"));
}
