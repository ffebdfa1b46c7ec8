//! The driver over the simulated `gpu` node (GPUs and NICs behind PCIe
//! switches) and `scale` nodes: devices, attributes, slices, prepare.

use sriov_dra_driver::attributes::{self, Selection, Value};
use sriov_dra_driver::prepare::{AllocatedDevice, PrepareError, Preparer};
use sriov_dra_driver::slices::{self, MemoryStore};
use sriov_host::HostRoot;
use sriov_host::topology::Topology;
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
        },
    );
    assert_eq!(only.len(), 4);
    assert!(only.iter().all(|d| d.name.starts_with("0000-9b-")));
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
    };
    let mut p = Preparer::open(root.clone(), "node-a", &plugin, &cdi).unwrap();
    let got = p
        .prepare("uid-1", "ns", "claim", &[dev("0000-1b-00-2")])
        .unwrap();
    assert_eq!(
        got[0].cdi_ids,
        vec!["sriovnetwork.k8snetworkplumbingwg.io/vf=uid-1-0000-1b-00-2".to_string()]
    );
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.spec_path("uid-1")).unwrap()).unwrap();
    assert_eq!(spec["kind"], "sriovnetwork.k8snetworkplumbingwg.io/vf");
    assert_eq!(spec["devices"][0]["name"], "uid-1-0000-1b-00-2");
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
