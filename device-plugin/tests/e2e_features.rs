//! End to end against static `sriov-sim` trees (no root needed):
//! scalable functions (`auxNetDevice`, `auxTypes`) and vDPA devices
//! (`vdpaType`), from pools to Allocate.

mod harness;

use harness::{Harness, T, health, ids, node_tree};
use sriov_device_plugin::test_kubelet::Watch;

/// A ConnectX-6 Dx PF on NUMA 1 with 3 SFs (sfnum 0..2) and 1 VF, and an
/// E810 PF.
const SF_NODE: &str = r#"
pfs:
  - {model: cx6dx, address: "0000:af:00.0", ifname: ens3f0np0, numa: 1, vfs: 1, sfs: 3}
  - {model: e810, address: "0000:3b:00.0", ifname: ens1f0, numa: 0}
"#;

const SF_CONFIG: &str = r#"{"resourceList":[
  {"resourceName":"mlnx_sf_a","resourcePrefix":"nvidia.com","deviceType":"auxNetDevice",
   "selectors":{"vendors":["15b3"],"pfNames":["ens3f0np0#0-1"],"auxTypes":["sf"]},
   "additionalInfo":{"0000:af:00.0":{"uplink":"p0"}}},
  {"resourceName":"mlnx_sf_b","resourcePrefix":"nvidia.com","deviceType":"auxNetDevice",
   "selectors":{"rootDevices":["0000:af:00.0"],"auxTypes":["sf"],"linkTypes":["ether"],"isRdma":true}},
  {"resourceName":"mlnx_netdev","resourcePrefix":"nvidia.com","selectors":{"vendors":["15b3"]}}
]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scalable_functions_are_pooled_by_aux_type_and_allocated_by_name() {
    let root = node_tree(SF_NODE);
    // the layout the plugin reads, as the kernel has it
    let sf1 = root.path().join("sys/bus/auxiliary/devices/mlx5_core.sf.1");
    assert_eq!(
        std::fs::read_to_string(sf1.join("sfnum")).unwrap().trim(),
        "0"
    );
    assert!(sf1.join("net/ens3f0s0").is_dir());
    assert!(
        root.path()
            .join("sys/bus/pci/devices/0000:af:00.0/mlx5_core.eth.0")
            .is_dir()
    );

    let h = Harness::start(root.path(), SF_CONFIG).await;
    let ep = h.registered("nvidia.com/mlnx_sf_a").await;
    assert_eq!(ep, "nvidia.com_mlnx_sf_a.sock");
    let mut c = h.client(&ep).await;
    let m = Watch::open(&mut c).await.unwrap().next(T).await.unwrap();
    // sfnum 0 and 1 (the `#0-1` range selects SF numbers); the Ethernet
    // auxiliary device of the PF is not an SF
    assert_eq!(ids(&m), ["mlx5_core.sf.1", "mlx5_core.sf.2"]);
    assert!(
        m.devices
            .iter()
            .all(|d| d.topology.as_ref().unwrap().nodes[0].id == 1),
        "NUMA node of the parent: {m:?}"
    );
    let m = h.first_list("nvidia.com/mlnx_sf_b").await;
    assert_eq!(
        ids(&m),
        ["mlx5_core.sf.3"],
        "first matching resource claims"
    );
    // the netDevice pool has the VF, never an SF
    let m = h.first_list("nvidia.com/mlnx_netdev").await;
    assert_eq!(ids(&m), ["0000:af:00.2"]);

    // Allocate: the env names the SF, INFO by SF name with extra info of
    // its parent PF, no device-info file (as upstream)
    let cr = h
        .allocate("nvidia.com_mlnx_sf_a.sock", &["mlx5_core.sf.2"])
        .await
        .unwrap();
    assert_eq!(cr.envs["PCIDEVICE_NVIDIA_COM_MLNX_SF_A"], "mlx5_core.sf.2");
    let info: serde_json::Value =
        serde_json::from_str(&cr.envs["PCIDEVICE_NVIDIA_COM_MLNX_SF_A_INFO"]).unwrap();
    assert_eq!(
        info["mlx5_core.sf.2"]["generic"]["deviceID"],
        "mlx5_core.sf.2"
    );
    assert_eq!(info["mlx5_core.sf.2"]["extra"]["uplink"], "p0");
    assert!(cr.devices.is_empty(), "{:?}", cr.devices);
    assert_eq!(
        std::fs::read_dir(&h.devinfo_dir)
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
    // an SF with its RDMA device (isRdma)
    let cr = h
        .allocate("nvidia.com_mlnx_sf_b.sock", &["mlx5_core.sf.3"])
        .await
        .unwrap();
    let info: serde_json::Value =
        serde_json::from_str(&cr.envs["PCIDEVICE_NVIDIA_COM_MLNX_SF_B_INFO"]).unwrap();
    let rdma = info["mlx5_core.sf.3"]["rdma"]["rdma_dev"].as_str().unwrap();
    assert!(
        root.path()
            .join("sys/bus/auxiliary/devices/mlx5_core.sf.3/infiniband")
            .join(rdma)
            .is_dir(),
        "{info}"
    );
    assert!(
        cr.devices
            .iter()
            .any(|d| d.host_path == "/dev/infiniband/rdma_cm")
    );
    // an SF of another pool, or a PCI address: InvalidArgument
    for bad in ["mlx5_core.sf.3", "0000:af:00.0"] {
        let e = h
            .allocate("nvidia.com_mlnx_sf_a.sock", &[bad])
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{bad}");
        assert!(e.message().contains(bad), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scalable_functions_follow_their_pf_carrier_with_pf_link_health() {
    let root = node_tree(SF_NODE);
    let h = Harness::builder(root.path(), SF_CONFIG)
        .options(|o| o.health.pf_link = true)
        .start()
        .await;
    let mut w = h.watch("nvidia.com/mlnx_sf_a").await;
    let m = w.next(T).await.unwrap();
    assert!(m.devices.iter().all(|d| d.health == "Healthy"), "{m:?}");
    let carrier = root.path().join("sys/class/net/ens3f0np0/carrier");
    std::fs::write(&carrier, "0\n").unwrap();
    w.until(T, |m| m.devices.iter().all(|d| d.health == "Unhealthy"))
        .await
        .expect("SFs Unhealthy when the PF loses carrier");
    std::fs::write(&carrier, "1\n").unwrap();
    w.until(T, |m| m.devices.iter().all(|d| d.health == "Healthy"))
        .await
        .expect("Healthy again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aux_net_device_needs_sf_aux_types() {
    let root = node_tree(SF_NODE);
    let tmp = tempfile::tempdir().unwrap();
    for (cfg, want) in [
        (
            r#"{"resourceList":[{"resourceName":"x","deviceType":"auxNetDevice","selectors":{"vendors":["15b3"]}}]}"#,
            "auxTypes",
        ),
        (
            r#"{"resourceList":[{"resourceName":"x","deviceType":"auxNetDevice","selectors":{"auxTypes":["eth"]}}]}"#,
            "\"eth\"",
        ),
    ] {
        // as upstream the entry is not used; here it is skipped, not fatal
        let c =
            sriov_device_plugin::config::Config::parse(cfg, "config.json", "intel.com").unwrap();
        assert!(c.resources.is_empty());
        let e = &c.skipped[0];
        assert!(e.contains("resourceList[0]") && e.contains(want), "{e}");
    }
    drop(tmp);
    drop(root);
}

/// A ConnectX-6 Dx PF with 3 VFs: VF 0 has a vhost vDPA device, VF 1 a
/// virtio one, VF 2 none.
const VDPA_NODE: &str = r#"
pfs:
  - {model: cx6dx, address: "0000:af:00.0", ifname: ens3f0np0, numa: 1, vfs: 3, vdpa: {0: vhost, 1: virtio}}
"#;

const VDPA_CONFIG: &str = r#"{"resourceList":[
  {"resourceName":"vdpa_vhost","resourcePrefix":"nvidia.com","selectors":{"vendors":["15b3"],"vdpaType":"vhost"}},
  {"resourceName":"vdpa_virtio","resourcePrefix":"nvidia.com","selectors":{"vendors":["15b3"],"vdpaType":"virtio"}},
  {"resourceName":"plain","resourcePrefix":"nvidia.com","selectors":{"vendors":["15b3"],"devices":["101e"]}}
]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vdpa_types_select_vfs_and_vhost_gets_its_char_device() {
    let root = node_tree(VDPA_NODE);
    let vdpa0 = root.path().join("sys/bus/vdpa/devices/vdpa0");
    assert!(vdpa0.join("vhost-vdpa-0").is_dir());
    assert!(
        std::fs::read_link(vdpa0.join("driver"))
            .unwrap()
            .ends_with("vhost_vdpa")
    );

    let h = Harness::start(root.path(), VDPA_CONFIG).await;
    for (res, want) in [
        ("nvidia.com/vdpa_vhost", "0000:af:00.2"),
        ("nvidia.com/vdpa_virtio", "0000:af:00.3"),
        ("nvidia.com/plain", "0000:af:00.4"),
    ] {
        let m = h.first_list(res).await;
        assert_eq!(
            health(&m),
            [(want.to_string(), "Healthy".to_string())],
            "{res}"
        );
    }

    // vhost: /dev/vhost-vdpa-0 (rw, as upstream), INFO vdpa.mount, device-info type vdpa
    let cr = h
        .allocate("nvidia.com_vdpa_vhost.sock", &["0000:af:00.2"])
        .await
        .unwrap();
    let spec = cr
        .devices
        .iter()
        .find(|d| d.host_path == "/dev/vhost-vdpa-0")
        .unwrap_or_else(|| panic!("no vhost-vdpa spec: {:?}", cr.devices));
    assert_eq!(spec.container_path, "/dev/vhost-vdpa-0");
    assert_eq!(spec.permissions, "rw");
    let info: serde_json::Value =
        serde_json::from_str(&cr.envs["PCIDEVICE_NVIDIA_COM_VDPA_VHOST_INFO"]).unwrap();
    assert_eq!(info["0000:af:00.2"]["vdpa"]["mount"], "/dev/vhost-vdpa-0");
    let di: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            h.devinfo_dir
                .join("nvidia.com-vdpa_vhost-0000:af:00.2-device.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(di["type"], "vdpa");
    assert_eq!(di["version"], "1.1.0");
    assert_eq!(di["vdpa"]["parent-device"], "vdpa0");
    assert_eq!(di["vdpa"]["driver"], "vhost");
    assert_eq!(di["vdpa"]["path"], "/dev/vhost-vdpa-0");
    assert_eq!(di["vdpa"]["pci-address"], "0000:af:00.2");
    assert_eq!(di["vdpa"]["pf-pci-address"], "0000:af:00.0");

    // virtio: no char device; device-info type vdpa, driver virtio, no path
    let cr = h
        .allocate("nvidia.com_vdpa_virtio.sock", &["0000:af:00.3"])
        .await
        .unwrap();
    assert!(
        !cr.devices
            .iter()
            .any(|d| d.host_path.starts_with("/dev/vhost-vdpa")),
        "{:?}",
        cr.devices
    );
    let info: serde_json::Value =
        serde_json::from_str(&cr.envs["PCIDEVICE_NVIDIA_COM_VDPA_VIRTIO_INFO"]).unwrap();
    // upstream's vdpa info provider is there, with no mount for virtio
    assert_eq!(
        info["0000:af:00.3"]["vdpa"],
        serde_json::json!({}),
        "{info}"
    );
    let di: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            h.devinfo_dir
                .join("nvidia.com-vdpa_virtio-0000:af:00.3-device.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(di["type"], "vdpa");
    assert_eq!(di["vdpa"]["parent-device"], "vdpa1");
    assert_eq!(di["vdpa"]["driver"], "virtio");
    assert!(di["vdpa"].get("path").is_none(), "{di}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_without_vdpa_type_hands_out_the_vf_as_pci() {
    let root = node_tree(VDPA_NODE);
    // vDPA types are read (a resource selects on them), but the VF with
    // the vhost device lands in a pool that does not
    let cfg = r#"{"resourceList":[
      {"resourceName":"first","resourcePrefix":"nvidia.com","selectors":{"pciAddresses":["0000:af:00.2"]}},
      {"resourceName":"virtio","resourcePrefix":"nvidia.com","selectors":{"vdpaType":"virtio"}}
    ]}"#;
    let h = Harness::start(root.path(), cfg).await;
    h.registered("nvidia.com/first").await;
    let cr = h
        .allocate("nvidia.com_first.sock", &["0000:af:00.2"])
        .await
        .unwrap();
    assert!(cr.devices.is_empty(), "{:?}", cr.devices);
    let di: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            h.devinfo_dir
                .join("nvidia.com-first-0000:af:00.2-device.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(di["type"], "pci", "{di}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdi_names_scalable_functions_net_sf() {
    let root = node_tree(SF_NODE);
    let cdi = tempfile::tempdir().unwrap();
    let dir = cdi.path().to_path_buf();
    let h = Harness::builder(root.path(), SF_CONFIG)
        .options(|o| o.cdi_dir = Some(dir))
        .start()
        .await;
    h.registered("nvidia.com/mlnx_sf_a").await;
    let cr = h
        .allocate("nvidia.com_mlnx_sf_a.sock", &["mlx5_core.sf.1"])
        .await
        .unwrap();
    // as upstream: the CDI annotation, no device specs, no CDI field
    assert!(cr.cdi_devices.is_empty() && cr.devices.is_empty(), "{cr:?}");
    assert_eq!(
        cr.annotations["cdi.k8s.io/nvidia.com_net-sf"],
        "nvidia.com/net-sf=mlx5_core.sf.1"
    );
    let spec: serde_json::Value = serde_json::from_slice(
        &std::fs::read(cdi.path().join("sriov-dp-nvidia.com-net-sf-mlnx_sf_a.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(spec["kind"], "nvidia.com/net-sf");
    assert_eq!(spec["devices"][0]["name"], "mlx5_core.sf.1");
}
