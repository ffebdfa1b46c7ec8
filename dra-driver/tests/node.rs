//! The driver over the simulated `gpu` node (GPUs and NICs behind PCIe
//! switches) and `scale` nodes: devices, attributes, slices, prepare.

use sriov_dra_driver::attributes::{self, Selection, Value};
use sriov_dra_driver::config::VfConfig;
use sriov_dra_driver::pools::PoolConfig;
use sriov_dra_driver::prepare::{AllocatedDevice, PrepareError, Preparer};
use sriov_dra_driver::slices::{self, MemoryStore};
use std::time::Duration;

use sriov_host::driver::{self, DriverState};
use sriov_host::topology::Topology;
use sriov_host::{HostRoot, PciFunction};
use sriov_sim::kernel::write_static_tree;
use sriov_sim::node::NodeSpec;

fn tree(spec: &NodeSpec) -> (tempfile::TempDir, HostRoot) {
    let tmp = tempfile::tempdir().unwrap();
    write_static_tree(tmp.path(), spec).unwrap();
    let root = HostRoot::new(tmp.path());
    (tmp, root)
}

fn devices(root: &HostRoot, sel: &Selection) -> Vec<attributes::PublishedDevice> {
    let node = sriov_host::scan(root).unwrap();
    let t = Topology::read(root).unwrap();
    attributes::devices(&node, &t, sel)
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

#[test]
fn attributes_of_a_vf_under_a_gpu_switch() {
    let (_tmp, root) = tree(&NodeSpec::gpu());
    let d = devices(&root, &Selection::default());
    assert_eq!(d.len(), 20);
    let vf = d.iter().find(|d| d.name == "0000-1b-00-2").unwrap();
    let a = &vf.attributes;
    assert_eq!(a["resource.kubernetes.io/pcieRoot"], s("pci0000:16"));
    assert_eq!(a["resource.kubernetes.io/pciBusID"], s("0000:1b:00.2"));
    assert_eq!(a["resource.kubernetes.io/numaNode"], Value::Int(0));
    assert_eq!(a["dra.net/numaNode"], Value::Int(0));
    assert_eq!(a["sriovnetwork.k8snetworkplumbingwg.io/vendor"], s("15b3"));
    assert_eq!(
        a["sriovnetwork.k8snetworkplumbingwg.io/deviceID"],
        s("101e")
    );
    assert_eq!(
        a["sriovnetwork.k8snetworkplumbingwg.io/pfDeviceID"],
        s("101d")
    );
    assert_eq!(
        a["sriovnetwork.k8snetworkplumbingwg.io/pfPciAddress"],
        s("0000:1b:00.0")
    );
    assert_eq!(
        a["sriovnetwork.k8snetworkplumbingwg.io/PFName"],
        s("ens1f0np0")
    );
    assert_eq!(
        a["sriovnetwork.k8snetworkplumbingwg.io/vfID"],
        Value::Int(0)
    );
    assert_eq!(a["sriovnetwork.k8snetworkplumbingwg.io/linkType"], s("eth"));
    assert_eq!(
        a["sriovnetwork.k8snetworkplumbingwg.io/rdmaCapable"],
        Value::Bool(true)
    );
    assert_eq!(a["k8s.cni.cncf.io/deviceID"], s("0000:1b:00.2"));
    assert_eq!(a["sriov-rs.io/rootPort"], s("0000:16:01.0"));
    assert_eq!(a["sriov-rs.io/pcieSwitch"], s("0000:17:00.0"));
    assert_eq!(a["sriov-rs.io/gpuDistance"], s("switch"));
    assert_eq!(a["sriov-rs.io/nearestGpus"], s("0000:19:00.0,0000:1a:00.0"));
    assert!(a.len() <= 32, "API limit of attributes per device");
    // The 82576 VF: no NUMA node, so no numaNode attributes; no switch.
    let igb = d.iter().find(|d| d.name == "0000-d8-10-0").unwrap();
    assert!(
        !igb.attributes
            .contains_key("resource.kubernetes.io/numaNode")
    );
    assert!(!igb.attributes.contains_key("dra.net/numaNode"));
    assert!(!igb.attributes.contains_key("sriov-rs.io/pcieSwitch"));
    assert_eq!(igb.attributes["sriov-rs.io/gpuDistance"], s("other"));
    // All three GPUs are equally far: 38 characters, within the 64 of a
    // string attribute (longer lists are cut at a GPU boundary).
    assert_eq!(
        igb.attributes["sriov-rs.io/nearestGpus"],
        s("0000:19:00.0,0000:1a:00.0,0000:9a:00.0")
    );
    // Every string value fits the API limit.
    for dev in &d {
        for v in dev.attributes.values() {
            if let Value::String(x) = v {
                assert!(x.len() <= attributes::MAX_STRING_LEN, "{x}");
            }
        }
    }
    // A selection by PF name.
    let only = devices(
        &root,
        &Selection {
            pf_names: vec!["ens4f0np0".into()],
            ..Default::default()
        },
    );
    assert_eq!(only.len(), 4);
    assert!(only.iter().all(|d| d.name.starts_with("0000-9b-")));
    // A selection by the device plugin's config: the served pool's VFs,
    // each with its pool's full name for Multus.
    let cfg = tmp_config(
        r#"{"resourceList": [{"resourceName": "cx6", "resourcePrefix": "nvidia.com",
            "selectors": {"pfNames": ["ens4f0np0"]}}]}"#,
    );
    let node = sriov_host::scan(&root).unwrap();
    let pools = PoolConfig {
        path: cfg.path().join("config.json"),
        default_prefix: "intel.com".into(),
        served: vec!["cx6".into()],
    }
    .load(None)
    .unwrap()
    .assign(&root, &node);
    let by_pool = devices(
        &root,
        &Selection {
            pools: Some(pools),
            ..Default::default()
        },
    );
    assert_eq!(
        by_pool.iter().map(|d| &d.name).collect::<Vec<_>>(),
        only.iter().map(|d| &d.name).collect::<Vec<_>>()
    );
    for d in &by_pool {
        assert_eq!(
            d.attributes["k8s.cni.cncf.io/resourceName"],
            s("nvidia.com/cx6")
        );
    }
    assert!(
        !only[0]
            .attributes
            .contains_key("k8s.cni.cncf.io/resourceName"),
        "no pool, no resource name"
    );
}

fn tmp_config(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), text).unwrap();
    dir
}

#[tokio::test]
async fn a_thousand_vfs_publish_in_eight_slices() {
    let (_tmp, root) = tree(&NodeSpec::scale(8, 128).unwrap());
    let d = devices(&root, &Selection::default());
    assert_eq!(d.len(), 1024);
    let store = MemoryStore::default();
    let p = slices::publish(&store, "sriovnetwork.k8snetworkplumbingwg.io", "node-a", &d)
        .await
        .unwrap();
    assert_eq!((p.slices, p.generation), (8, 1));
    let all = store.slices.lock().unwrap();
    let mut names: Vec<String> = all
        .values()
        .flat_map(|s| s.spec.devices.iter().flatten().map(|d| d.name.clone()))
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 1024, "every VF once");
    assert!(
        all.values()
            .all(|s| s.spec.devices.as_ref().unwrap().len() == 128)
    );
}

#[test]
fn prepare_is_idempotent_checkpointed_and_survives_a_restart() {
    let (tmp, root) = tree(&NodeSpec::gpu());
    let plugin = tmp.path().join("plugin");
    let cdi = tmp.path().join("cdi");
    let dev = |name: &str| AllocatedDevice {
        request: "vf".into(),
        pool: "node-a".into(),
        device: name.into(),
        config: VfConfig::default(),
    };
    let mut p = Preparer::open(root.clone(), "node-a", &plugin, &cdi).unwrap();
    let got = p
        .prepare("uid-1", "ns", "claim", &[dev("0000-1b-00-2")])
        .unwrap();
    assert_eq!(
        got[0].cdi_ids,
        vec!["sriovnetwork.k8snetworkplumbingwg.io/vf=0000:1b:00.2".to_string()]
    );
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.spec_path("uid-1")).unwrap()).unwrap();
    assert_eq!(spec["kind"], "sriovnetwork.k8snetworkplumbingwg.io/vf");
    assert_eq!(spec["devices"][0]["name"], "0000:1b:00.2");
    assert_eq!(
        spec["devices"][0]["containerEdits"]["env"][0],
        "SRIOVNETWORK_VF_DEVICE_0000_1b_00_2=0000:1b:00.2"
    );
    // Again: same answer.
    assert_eq!(
        p.prepare("uid-1", "ns", "claim", &[dev("0000-1b-00-2")])
            .unwrap(),
        got
    );
    // Another claim cannot take the same VF; wrong pool and names are refused.
    assert!(matches!(
        p.prepare("uid-2", "ns", "c2", &[dev("0000-1b-00-2")]),
        Err(PrepareError::InUse { .. })
    ));
    let mut wrong = dev("0000-1b-00-3");
    wrong.pool = "node-b".into();
    assert!(matches!(
        p.prepare("uid-2", "ns", "c2", &[wrong]),
        Err(PrepareError::WrongPool { .. })
    ));
    assert!(matches!(
        p.prepare("uid-2", "ns", "c2", &[dev("eth0")]),
        Err(PrepareError::UnknownDevice(_))
    ));
    // A PF is not a device of this driver.
    assert!(matches!(
        p.prepare("uid-2", "ns", "c2", &[dev("0000-1b-00-0")]),
        Err(PrepareError::UnknownDevice(_))
    ));
    assert!(matches!(
        p.prepare("uid-2", "ns", "c2", &[dev("0000-ee-00-0")]),
        Err(PrepareError::Gone { .. })
    ));
    assert!(
        !p.spec_path("uid-2").exists(),
        "a refused claim leaves no spec"
    );
    drop(p);
    // A restart: the checkpoint knows the claim; unprepare by UID only.
    let mut p = Preparer::open(root.clone(), "node-a", &plugin, &cdi).unwrap();
    assert!(p.checkpoint().claims.contains_key("uid-1"));
    assert_eq!(
        p.prepare("uid-1", "ns", "claim", &[dev("0000-1b-00-2")])
            .unwrap(),
        got
    );
    p.unprepare("uid-1").unwrap();
    assert!(!p.spec_path("uid-1").exists());
    p.unprepare("uid-1").unwrap();
    p.unprepare("never-seen").unwrap();
    drop(p);
    let p = Preparer::open(root, "node-a", &plugin, &cdi).unwrap();
    assert!(p.checkpoint().claims.is_empty());
}

#[test]
fn a_vfio_vf_gets_its_group_device_nodes() {
    let mut spec = NodeSpec::gpu();
    spec.pfs[1].vf_drivers.insert(1, "vfio-pci".into());
    let (tmp, root) = tree(&spec);
    let mut p = Preparer::open(
        root.clone(),
        "n",
        &tmp.path().join("p"),
        &tmp.path().join("c"),
    )
    .unwrap();
    let vf = sriov_host::scan(&root)
        .unwrap()
        .vfs_of(&"0000:1c:00.0".parse().unwrap())[1]
        .clone();
    assert_eq!(vf.driver.as_deref(), Some("vfio-pci"));
    let name = attributes::device_name(&vf.address);
    p.prepare(
        "u",
        "ns",
        "c",
        &[AllocatedDevice {
            request: "r".into(),
            pool: "n".into(),
            device: name,
            config: VfConfig::default(),
        }],
    )
    .unwrap();
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.spec_path("u")).unwrap()).unwrap();
    let nodes = &spec["devices"][0]["containerEdits"]["deviceNodes"];
    assert_eq!(
        nodes[0]["path"],
        format!("/dev/vfio/{}", vf.iommu_group.unwrap())
    );
    assert_eq!(nodes[1]["path"], "/dev/vfio/vfio");
}

/// A node whose sysfs writes the simulated kernel carries out.
fn live(spec: &NodeSpec) -> (tempfile::TempDir, HostRoot) {
    let tmp = tempfile::tempdir().unwrap();
    let root = sriov_sim::live::live_root(tmp.path(), spec).unwrap();
    (tmp, root)
}

fn configured(name: &str, config: serde_json::Value) -> AllocatedDevice {
    let mut params = serde_json::json!({
        "apiVersion": sriov_dra_driver::config::API_VERSION,
        "kind": sriov_dra_driver::config::KIND,
    });
    for (k, v) in config.as_object().unwrap() {
        params[k] = v.clone();
    }
    AllocatedDevice {
        request: "vf".into(),
        pool: "n".into(),
        device: name.into(),
        config: VfConfig::parse(&params).unwrap(),
    }
}

fn binding(root: &HostRoot, addr: &str) -> DriverState {
    driver::driver_state(root, &addr.parse().unwrap()).unwrap()
}

fn spec_of(p: &Preparer, uid: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p.spec_path(uid)).unwrap()).unwrap()
}

#[test]
fn vfio_config_rebinds_and_unprepare_restores_after_a_restart() {
    let (tmp, root) = live(&NodeSpec::gpu());
    let (plugin, cdi) = (tmp.path().join("p"), tmp.path().join("c"));
    let vf = "0000:1b:00.2";
    assert_eq!(
        binding(&root, vf),
        DriverState {
            driver: Some("mlx5_core".into()),
            driver_override: None
        }
    );
    let netdev = std::fs::read_dir(root.pci_device(&vf.parse().unwrap()).join("net"))
        .unwrap()
        .count();
    assert_eq!(netdev, 1, "the VF has its netdev on mlx5_core");
    let dev = configured(
        "0000-1b-00-2",
        serde_json::json!({"driver": "vfio-pci", "ifName": "net1",
            "netAttachDefName": "vf-net", "addVhostMount": true}),
    );
    let mut p = Preparer::open(root.clone(), "n", &plugin, &cdi).unwrap();
    let got = p
        .prepare("uid-v", "ns", "claim", std::slice::from_ref(&dev))
        .unwrap();
    // On vfio-pci, the override kept so a re-probe keeps it there.
    assert_eq!(
        binding(&root, vf),
        DriverState {
            driver: Some("vfio-pci".into()),
            driver_override: Some("vfio-pci".into())
        }
    );
    assert!(!root.pci_device(&vf.parse().unwrap()).join("net").exists());
    let group = PciFunction::read(&root, &vf.parse().unwrap())
        .unwrap()
        .iommu_group
        .unwrap();
    assert!(
        root.vfio_group_dev(group).exists(),
        "vfio-pci made the group device"
    );
    let edits = &spec_of(&p, "uid-v")["devices"][0]["containerEdits"];
    let paths: Vec<_> = edits["deviceNodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        paths,
        [
            format!("/dev/vfio/{group}"),
            "/dev/vfio/vfio".into(),
            "/dev/vhost-net".into(),
            "/dev/net/tun".into()
        ]
    );
    assert_eq!(
        edits["env"],
        serde_json::json!([
            "SRIOVNETWORK_VF_DEVICE_0000_1b_00_2=0000:1b:00.2",
            format!("SRIOVNETWORK_0000_1b_00_2_VFIO_DEVICE=/dev/vfio/{group}"),
            "SRIOVNETWORK_NET_ATTACH_DEF_NAME=vf-net",
        ])
    );
    // The checkpoint has the config and the binding to restore.
    assert_eq!(got[0].config, dev.config);
    assert_eq!(
        got[0].original.as_ref().unwrap().driver.as_deref(),
        Some("mlx5_core")
    );
    // Prepared again (the kubelet retrying): nothing moves.
    assert_eq!(
        p.prepare("uid-v", "ns", "claim", std::slice::from_ref(&dev))
            .unwrap(),
        got
    );
    drop(p);
    // A restart: the checkpoint alone drives the restore.
    let mut p = Preparer::open(root.clone(), "n", &plugin, &cdi).unwrap();
    assert_eq!(p.prepared("uid-v").unwrap(), got);
    p.unprepare("uid-v").unwrap();
    assert_eq!(
        binding(&root, vf),
        DriverState {
            driver: Some("mlx5_core".into()),
            driver_override: None
        }
    );
    assert!(root.pci_device(&vf.parse().unwrap()).join("net").exists());
    assert!(!root.vfio_group_dev(group).exists());
    assert!(!p.spec_path("uid-v").exists());
    assert!(p.checkpoint().claims.is_empty());
    // Idempotent.
    p.unprepare("uid-v").unwrap();
    assert_eq!(binding(&root, vf).driver.as_deref(), Some("mlx5_core"));
}

#[test]
fn default_driver_config_takes_a_vfio_vf_back_to_its_kernel_driver() {
    let mut spec = NodeSpec::gpu();
    spec.pfs[1].vf_drivers.insert(1, "vfio-pci".into());
    let (tmp, root) = live(&spec);
    let vf = sriov_host::scan(&root)
        .unwrap()
        .vfs_of(&"0000:1c:00.0".parse().unwrap())[1]
        .clone();
    let addr = vf.address.to_string();
    let before = binding(&root, &addr);
    assert_eq!(before.driver.as_deref(), Some("vfio-pci"));
    let mut p = Preparer::open(
        root.clone(),
        "n",
        &tmp.path().join("p"),
        &tmp.path().join("c"),
    )
    .unwrap();
    let name = attributes::device_name(&vf.address);
    p.prepare(
        "u",
        "ns",
        "c",
        &[configured(&name, serde_json::json!({"driver": "default"}))],
    )
    .unwrap();
    // The second PF is an E810: its VFs' driver is iavf.
    let now = binding(&root, &addr);
    assert_eq!(now.driver.as_deref(), Some("iavf"));
    assert_eq!(now.driver_override, None);
    // A kernel VF: no VFIO nodes.
    assert!(spec_of(&p, "u")["devices"][0]["containerEdits"]["deviceNodes"].is_null());
    p.unprepare("u").unwrap();
    assert_eq!(binding(&root, &addr), before);
}

#[test]
fn a_failed_rebind_rolls_back_the_claim() {
    let mut spec = NodeSpec::gpu();
    // vfio-pci's probe fails for the VFs of the second ConnectX PF.
    spec.pfs[1].faults.bind_fail = vec!["vfio-pci".into()];
    let (tmp, root) = live(&spec);
    let mut p = Preparer::open(
        root.clone(),
        "n",
        &tmp.path().join("p"),
        &tmp.path().join("c"),
    )
    .unwrap()
    .with_bind_timeout(Duration::from_millis(200));
    let ok = "0000:1b:00.2";
    let bad = sriov_host::scan(&root)
        .unwrap()
        .vfs_of(&"0000:1c:00.0".parse().unwrap())[0]
        .address;
    let before = (binding(&root, ok), binding(&root, &bad.to_string()));
    let vfio = serde_json::json!({"driver": "vfio-pci"});
    let e = p
        .prepare(
            "u",
            "ns",
            "c",
            &[
                configured("0000-1b-00-2", vfio.clone()),
                configured(&attributes::device_name(&bad), vfio),
            ],
        )
        .unwrap_err();
    assert!(matches!(e, PrepareError::Bind { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("cannot bind driver \"vfio-pci\""), "{msg}");
    // The first VF went to vfio-pci and came back; the second never moved.
    assert_eq!(
        (binding(&root, ok), binding(&root, &bad.to_string())),
        before
    );
    assert!(!p.spec_path("u").exists());
    assert!(p.checkpoint().claims.is_empty());
    // A driver that is not loaded is refused before anything changes.
    let e = p
        .prepare(
            "u",
            "ns",
            "c",
            &[configured(
                "0000-1b-00-2",
                serde_json::json!({"driver": "igb_uio"}),
            )],
        )
        .unwrap_err();
    assert!(e.to_string().contains("igb_uio"), "{e}");
    assert_eq!(binding(&root, ok), before.0);
}

#[test]
fn a_prepare_cut_short_is_undone_before_the_next() {
    let (tmp, root) = live(&NodeSpec::gpu());
    let (plugin, cdi) = (tmp.path().join("p"), tmp.path().join("c"));
    let vf = "0000:1b:00.2";
    // What a crash right after the rebind leaves: the VF on vfio-pci, the
    // claim pending in the checkpoint with the binding before.
    driver::bind(&root, &vf.parse().unwrap(), "vfio-pci", &Default::default()).unwrap();
    std::fs::create_dir_all(&plugin).unwrap();
    std::fs::write(
        plugin.join("checkpoint.json"),
        serde_json::json!({"version": 1, "claims": {"u": {
            "namespace": "ns", "name": "c", "pending": true,
            "devices": [{"request": "vf", "pool": "n", "device": "0000-1b-00-2",
                "address": vf, "cdi_ids": [], "config": {"driver": "vfio-pci"},
                "original": {"driver": "mlx5_core", "driver_override": null}}]}}})
        .to_string(),
    )
    .unwrap();
    let mut p = Preparer::open(root.clone(), "n", &plugin, &cdi).unwrap();
    assert_eq!(p.prepared("u"), None, "a pending claim is not prepared");
    // The kubelet retries with the claim's (now empty) config.
    let got = p
        .prepare(
            "u",
            "ns",
            "c",
            &[configured("0000-1b-00-2", serde_json::json!({}))],
        )
        .unwrap();
    assert_eq!(got[0].original, None);
    assert_eq!(binding(&root, vf).driver.as_deref(), Some("mlx5_core"));
    assert_eq!(binding(&root, vf).driver_override, None);
    p.unprepare("u").unwrap();
}

#[test]
fn an_rdma_vf_gets_its_character_devices() {
    let (tmp, root) = tree(&NodeSpec::gpu());
    let vf = PciFunction::read(&root, &"0000:1b:00.2".parse().unwrap()).unwrap();
    let rdma = vf
        .rdma
        .first()
        .expect("a ConnectX VF with an RDMA device")
        .clone();
    let n = rdma.rsplit('_').next().unwrap().to_string();
    let mut p = Preparer::open(
        root,
        "node-a",
        &tmp.path().join("plugin"),
        &tmp.path().join("cdi"),
    )
    .unwrap();
    let dev = AllocatedDevice {
        request: "vf".into(),
        pool: "node-a".into(),
        device: "0000-1b-00-2".into(),
        config: VfConfig::default(),
    };
    p.prepare("uid-r", "ns", "claim", &[dev]).unwrap();
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.spec_path("uid-r")).unwrap()).unwrap();
    let edits = &spec["devices"][0]["containerEdits"];
    let nodes: Vec<&str> = edits["deviceNodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["path"].as_str().unwrap())
        .collect();
    let (uverbs, umad, issm) = (
        format!("/dev/infiniband/uverbs{n}"),
        format!("/dev/infiniband/umad{n}"),
        format!("/dev/infiniband/issm{n}"),
    );
    assert_eq!(nodes, [&*uverbs, &*umad, &*issm, "/dev/infiniband/rdma_cm"]);
    let env: Vec<&str> = edits["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    for want in [
        format!("SRIOVNETWORK_0000_1b_00_2_RDMA_UVERB={uverbs}"),
        format!("SRIOVNETWORK_0000_1b_00_2_RDMA_UMAD={umad}"),
        format!("SRIOVNETWORK_0000_1b_00_2_RDMA_ISSM={issm}"),
        "SRIOVNETWORK_0000_1b_00_2_RDMA_CM=/dev/infiniband/rdma_cm".to_string(),
        format!("SRIOVNETWORK_0000_1b_00_2_RDMA_DEVICE={rdma}"),
    ] {
        assert!(env.contains(&want.as_str()), "{want} not in {env:?}");
    }
}
