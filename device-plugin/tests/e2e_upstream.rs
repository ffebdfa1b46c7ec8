//! Drop-in fidelity (issue 12), end to end against static `sriov-sim`
//! trees: the config the Go operator writes and the answers upstream's
//! plugin gives (env and `_INFO` keys, device specs, device-info files,
//! health, default-route exclusion, no-IOMMU VFIO, UIO).

mod harness;

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::{Harness, T, ids, node_tree};
use sriov_device_plugin::api::ContainerAllocateResponse;

const NODE: &str = r#"
name: up
pfs:
  - model: e810
    address: "0000:3b:00.0"
    ifname: ens1f0
    numa: 0
    vfs: 4
    vf_drivers: {2: igb_uio, 3: vfio-pci}
  - model: cx6dx
    address: "0000:af:00.0"
    ifname: ens3f0np0
    numa: 1
    vfs: 2
"#;

fn dev_dir(root: &Path, pci: &str) -> PathBuf {
    root.join("sys/bus/pci/devices").join(pci)
}

fn first_netdev(root: &Path, pci: &str) -> String {
    std::fs::read_dir(dev_dir(root, pci).join("net"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .next()
        .unwrap()
}

fn iommu_group(root: &Path, pci: &str) -> String {
    std::fs::read_link(dev_dir(root, pci).join("iommu_group"))
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The VFs of the cx6dx PF (with RDMA devices).
fn mlx_vfs(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dev_dir(root, "0000:af:00.0"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("virtfn"))
        .map(|e| {
            std::fs::read_link(e.path())
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

async fn list(h: &Harness, resource: &str) -> Vec<String> {
    ids(&h.first_list(resource).await)
}

fn info(cr: &ContainerAllocateResponse, env: &str) -> serde_json::Value {
    serde_json::from_str(&cr.envs[&format!("{env}_INFO")]).unwrap()
}

fn specs(cr: &ContainerAllocateResponse) -> Vec<(String, String, String)> {
    cr.devices
        .iter()
        .map(|d| {
            (
                d.host_path.clone(),
                d.container_path.clone(),
                d.permissions.clone(),
            )
        })
        .collect()
}

/// Item 1: the Go operator writes `"IsRdma":false,"NeedVhostNet":false`
/// for every pool; Mellanox VFs with RDMA devices stay in such a pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_operator_is_rdma_false_keeps_rdma_vfs() {
    let root = node_tree(NODE);
    let vfs = mlx_vfs(root.path());
    assert!(
        dev_dir(root.path(), &vfs[0]).join("infiniband").exists(),
        "the cx6dx VFs have RDMA devices"
    );
    let cfg = r#"{"resourceList":[{"resourceName":"mlnx_sriov","selectors":{"vendors":["15b3"],"IsRdma":false,"NeedVhostNet":false},"SelectorObj":null}]}"#;
    let h = Harness::start(root.path(), cfg).await;
    assert_eq!(list(&h, "intel.com/mlnx_sriov").await, vfs);
    // no RDMA char devices or info without isRdma: true (upstream)
    let cr = h
        .allocate("intel.com_mlnx_sriov.sock", &[&vfs[0]])
        .await
        .unwrap();
    assert!(cr.devices.is_empty(), "{:?}", cr.devices);
    assert!(
        info(&cr, "PCIDEVICE_INTEL_COM_MLNX_SRIOV")[&vfs[0]]
            .get("rdma")
            .is_none()
    );
}

/// Item 9: upstream reports every device Healthy; PF carrier loss does not
/// change that unless `pf_link` health is asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pf_carrier_loss_keeps_devices_healthy_by_default() {
    let root = node_tree(NODE);
    let cfg = r#"{"resourceList":[{"resourceName":"netdev","selectors":{"drivers":["iavf"]}}]}"#;
    let h = Harness::start(root.path(), cfg).await;
    let mut w = h.watch("intel.com/netdev").await;
    let m = w.next(T).await.unwrap();
    assert_eq!(m.devices.len(), 2);
    std::fs::write(root.path().join("sys/class/net/ens1f0/carrier"), "0\n").unwrap();
    std::fs::write(root.path().join("sys/class/net/ens1f0/operstate"), "down\n").unwrap();
    // several health intervals (100 ms): no new list
    assert!(
        w.next(Duration::from_millis(700)).await.is_none(),
        "the list changed on PF carrier loss"
    );
}

/// Item 10: every default route is looked at, and any function (a VF
/// too) with a netdev carrying one is not offered, as upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_default_route_excludes_its_function() {
    let root = node_tree(NODE);
    let vf0 = first_netdev(root.path(), "0000:3b:02.0");
    let route = format!(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
         eno1\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
         {vf0}\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n\
         {vf0}\t00000000\t0103A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0\n"
    );
    std::fs::create_dir_all(root.path().join("proc/net")).unwrap();
    std::fs::write(root.path().join("proc/net/route"), route).unwrap();
    let cfg = r#"{"resourceList":[{"resourceName":"netdev","selectors":{"drivers":["iavf"]}}]}"#;
    let h = Harness::start(root.path(), cfg).await;
    assert_eq!(list(&h, "intel.com/netdev").await, ["0000:3b:02.1"]);
}

/// Items 4 and 8: the env name as upstream builds it (`-` kept), `_INFO`
/// keys as upstream's info providers (`vhost.net-mount`/`tun-mount`), a
/// needVhostNet device kept without `/dev/vhost-net`, `/dev/net/tun` only
/// when the node has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vhost_net_info_and_env_name_as_upstream() {
    let root = node_tree(NODE);
    let cfg = r#"{"resourceList":[{"resourceName":"sriov-vhost","selectors":{"pciAddresses":["0000:3b:02.0"],"needVhostNet":true}}]}"#;
    let h = Harness::start(root.path(), cfg).await;
    assert_eq!(list(&h, "intel.com/sriov-vhost").await, ["0000:3b:02.0"]);
    let ep = "intel.com_sriov-vhost.sock";
    let env = "PCIDEVICE_INTEL_COM_SRIOV-VHOST";
    let cr = h.allocate(ep, &["0000:3b:02.0"]).await.unwrap();
    assert_eq!(cr.envs[env], "0000:3b:02.0");
    assert!(cr.devices.is_empty(), "{:?}", cr.devices);
    assert!(info(&cr, env)["0000:3b:02.0"].get("vhost").is_none());
    // vhost-net appears, tun does not
    std::fs::create_dir_all(root.path().join("dev/net")).unwrap();
    std::fs::write(root.path().join("dev/vhost-net"), "").unwrap();
    let cr = h.allocate(ep, &["0000:3b:02.0"]).await.unwrap();
    assert_eq!(
        specs(&cr),
        [(
            "/dev/vhost-net".into(),
            "/dev/vhost-net".into(),
            "rw".into()
        )]
    );
    let i = info(&cr, env);
    assert_eq!(
        i["0000:3b:02.0"]["vhost"],
        serde_json::json!({"net-mount": "/dev/vhost-net", "tun-mount": "/dev/net/tun"})
    );
    assert!(i["0000:3b:02.0"].get("tun").is_none());
    assert_eq!(i["0000:3b:02.0"]["generic"]["deviceID"], "0000:3b:02.0");
    std::fs::write(root.path().join("dev/net/tun"), "").unwrap();
    let cr = h.allocate(ep, &["0000:3b:02.0"]).await.unwrap();
    let paths: Vec<String> = specs(&cr).into_iter().map(|s| s.0).collect();
    assert_eq!(paths, ["/dev/vhost-net", "/dev/net/tun"]);
}

/// Item 8: isRdma applies to the devices its selector set claimed, as
/// upstream; `rdma.rdma_dev` in `_INFO`; `rdma-device` in the device-info
/// file lists every RDMA device of the function, comma joined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdma_needs_per_selector_set() {
    let root = node_tree(NODE);
    let vfs = mlx_vfs(root.path());
    let ib = dev_dir(root.path(), &vfs[0]).join("infiniband");
    let mut rdma: Vec<String> = std::fs::read_dir(&ib)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    std::fs::create_dir_all(ib.join("mlx5_99")).unwrap();
    rdma.push("mlx5_99".into());
    rdma.sort();
    let cfg = format!(
        r#"{{"resourceList":[{{"resourceName":"mixed","selectors":[
            {{"pciAddresses":["{}"],"isRdma":true}},
            {{"vendors":["15b3"]}}]}}]}}"#,
        vfs[0]
    );
    let h = Harness::start(root.path(), &cfg).await;
    assert_eq!(list(&h, "intel.com/mixed").await, vfs);
    let env = "PCIDEVICE_INTEL_COM_MIXED";
    let cr = h
        .allocate("intel.com_mixed.sock", &[&vfs[0], &vfs[1]])
        .await
        .unwrap();
    let i = info(&cr, env);
    assert_eq!(i[&vfs[0]]["rdma"]["rdma_dev"], rdma[0].as_str(), "{i}");
    assert!(i[&vfs[0]]["rdma"].get("device").is_none());
    assert!(i[&vfs[1]].get("rdma").is_none(), "{i}");
    assert!(
        cr.devices
            .iter()
            .any(|d| d.host_path == "/dev/infiniband/rdma_cm" && d.permissions == "rw")
    );
    let di = |pci: &str| -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(
                h.devinfo_dir
                    .join(format!("intel.com-mixed-{pci}-device.json")),
            )
            .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(di(&vfs[0])["pci"]["rdma-device"], rdma.join(","));
    assert!(di(&vfs[1])["pci"].get("rdma-device").is_none());
}

/// Item 5: a vfio-pci VF in no-IOMMU mode (`/dev/vfio/noiommu-N` on the
/// node) is Healthy and mapped to `/dev/vfio/N` in the container.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vfio_noiommu_maps_to_the_group_path() {
    let root = node_tree(NODE);
    let pci = "0000:3b:02.3";
    let g = iommu_group(root.path(), pci);
    std::fs::write(
        root.path()
            .join("sys/kernel/iommu_groups")
            .join(&g)
            .join("name"),
        "vfio-noiommu\n",
    )
    .unwrap();
    let vfio = root.path().join("dev/vfio");
    std::fs::rename(vfio.join(&g), vfio.join(format!("noiommu-{g}"))).unwrap();
    let cfg = r#"{"resourceList":[{"resourceName":"dpdk","selectors":{"drivers":["vfio-pci"]}}]}"#;
    let h = Harness::start(root.path(), cfg).await;
    let ep = h.registered("intel.com/dpdk").await;
    let mut w = h.watch("intel.com/dpdk").await;
    let m = w.next(T).await.unwrap();
    assert_eq!(ids(&m), [pci]);
    assert_eq!(m.devices[0].health, "Healthy");
    // still healthy after health checks
    assert!(w.next(Duration::from_millis(500)).await.is_none());
    let cr = h.allocate(&ep, &[pci]).await.unwrap();
    assert_eq!(
        specs(&cr),
        [
            (
                "/dev/vfio/vfio".into(),
                "/dev/vfio/vfio".into(),
                "rw".into()
            ),
            (
                format!("/dev/vfio/noiommu-{g}"),
                format!("/dev/vfio/{g}"),
                "rw".into()
            ),
        ]
    );
    let i = info(&cr, "PCIDEVICE_INTEL_COM_DPDK");
    assert_eq!(
        i[pci]["vfio"],
        serde_json::json!({"mount": "/dev/vfio/vfio", "dev-mount": format!("/dev/vfio/{g}")})
    );
}

/// Item 6: a VF on igb_uio gets its `/dev/uioN` and the `uio` mount.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uio_devices_get_their_uio_node() {
    let root = node_tree(NODE);
    let pci = "0000:3b:02.2";
    std::fs::create_dir_all(dev_dir(root.path(), pci).join("uio/uio0")).unwrap();
    let cfg = r#"{"resourceList":[{"resourceName":"uio","selectors":{"drivers":["igb_uio"]}}]}"#;
    let h = Harness::start(root.path(), cfg).await;
    assert_eq!(list(&h, "intel.com/uio").await, [pci]);
    let cr = h.allocate("intel.com_uio.sock", &[pci]).await.unwrap();
    assert_eq!(
        specs(&cr),
        [("/dev/uio0".into(), "/dev/uio0".into(), "rw".into())]
    );
    let i = info(&cr, "PCIDEVICE_INTEL_COM_UIO");
    assert_eq!(i[pci]["uio"], serde_json::json!({"mount": "/dev/uio0"}));
}

/// Item 7: old `sriov-dp-*` CDI specs are removed at start; each pool's
/// spec is written when it is served, under upstream's file name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdi_specs_cleaned_and_written_as_upstream() {
    let root = node_tree(NODE);
    let cdi = root.path().join("var/run/cdi");
    std::fs::create_dir_all(&cdi).unwrap();
    let old = cdi.join("sriov-dp-intel.com-net-pci-gone.yaml");
    std::fs::write(&old, "{}").unwrap();
    let other = cdi.join("vendor-gpu.yaml");
    std::fs::write(&other, "{}").unwrap();
    let c2 = cdi.clone();
    let cfg = r#"{"resourceList":[{"resourceName":"dpdk","selectors":{"drivers":["vfio-pci"]}}]}"#;
    let h = Harness::builder(root.path(), cfg)
        .options(|o| o.cdi_dir = Some(c2))
        .start()
        .await;
    h.registered("intel.com/dpdk").await;
    assert!(!old.exists(), "old spec left");
    assert!(other.exists(), "another vendor's spec removed");
    let spec: serde_json::Value = serde_json::from_slice(
        &std::fs::read(cdi.join("sriov-dp-intel.com-net-pci-dpdk.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(spec["kind"], "intel.com/net-pci");
    let node = &spec["devices"][0]["containerEdits"]["deviceNodes"][1];
    assert!(node["hostPath"].as_str().unwrap().starts_with("/dev/vfio/"));
    assert_eq!(node["permissions"], "rw");
}

/// Item 8: `pKeys` selects InfiniBand VFs by the partition key at index 0
/// of port 1 (upstream reads it for devices of link type infiniband).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p_keys_select_infiniband_vfs() {
    let root = node_tree(NODE);
    let vfs = mlx_vfs(root.path());
    for (vf, key) in vfs.iter().zip(["0x7fff", "0x0066"]) {
        let ifname = first_netdev(root.path(), vf);
        std::fs::write(
            root.path().join("sys/class/net").join(&ifname).join("type"),
            "32\n",
        )
        .unwrap();
        let ib = dev_dir(root.path(), vf).join("infiniband");
        let dev = std::fs::read_dir(&ib)
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .path();
        std::fs::create_dir_all(dev.join("ports/1/pkeys")).unwrap();
        std::fs::write(dev.join("ports/1/pkeys/0"), format!("{key}\n")).unwrap();
    }
    let cfg = r#"{"resourceList":[{"resourceName":"ib","selectors":{"pKeys":["0x66"],"linkTypes":["infiniband"]}}]}"#;
    let h = Harness::start(root.path(), cfg).await;
    assert_eq!(list(&h, "intel.com/ib").await, [vfs[1].clone()]);
}
