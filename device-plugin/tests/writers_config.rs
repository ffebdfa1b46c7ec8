//! One config model end to end: the device plugin config the config daemon
//! writes (`render_device_plugin_config`, then `to_json`, as
//! `config-daemon/src/standalone.rs`) and the one the operator puts into its
//! ConfigMap (the same render, then `to_upstream_json`, as
//! `operator/src/render/node.rs`), for a realistic set of policies, written
//! to a file and loaded by the plugin's loader (`Config::load`). The pools
//! and selectors the plugin ends up with are what the policies asked for.

use std::collections::{BTreeMap, BTreeSet};

use sriov_crds::InterfaceExt;
use sriov_crds::device_plugin_config::DevicePluginConfig;
use sriov_crds::manifests::policies_from_manifests;
use sriov_crds::nic_ids::NicIdList;
use sriov_crds::policy_merge::{merge_node, render_device_plugin_config};
use sriov_device_plugin::config::{Config, DEFAULT_PREFIX, DeviceType, ResourceConfig};
use sriov_device_plugin::device::{Device, VdpaType};
use sriov_device_plugin::selectors::{MatchEnv, PfRange, Selectors};
use sriov_host::{LinkType, PciAddress};

const NET_ID: &str = "openstack/NetworkID:3e1a55a4-2f0c-4b1d-9c64-5e5a1f0b8a11";

/// The documented example policies, and one more that shares
/// `intel_netdevice` (so two policies merge into one resource).
fn policies() -> Vec<sriov_crds::SriovNetworkNodePolicy> {
    let examples = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/sriovnetworknodepolicies.yaml"
    ))
    .unwrap();
    let extra = r#"
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {name: intel-x710, namespace: sriov-network-operator}
spec:
  resourceName: intel_netdevice
  nodeSelector: {feature.node.kubernetes.io/network-sriov.capable: "true"}
  priority: 20
  numVfs: 4
  nicSelector: {vendor: "8086", deviceID: "1572", pfNames: ["ens2f0"]}
  deviceType: netdevice
  linkType: eth
"#;
    let text = format!("{examples}\n---\n{extra}");
    let p = policies_from_manifests(&text, "policies.yaml").unwrap();
    assert!(p.unknown_fields.is_empty(), "{:?}", p.unknown_fields);
    assert_eq!(p.policies.len(), 7);
    p.policies
}

/// A node every example policy selects: the simulator's `mixed` node's
/// PFs, a ConnectX-7 for InfiniBand, and a VM PF on the example network.
fn node() -> (BTreeMap<String, String>, Vec<InterfaceExt>) {
    let labels = [
        "feature.node.kubernetes.io/network-sriov.capable",
        "sriov-infiniband",
        "sriov-switchdev",
        "external-vfs",
    ]
    .map(|k| (k.to_string(), "true".to_string()))
    .into();
    let pf = |name: &str, pci: &str, vendor: &str, device: &str| InterfaceExt {
        name: name.into(),
        pci_address: pci.into(),
        vendor: vendor.into(),
        device_id: device.into(),
        total_vfs: 8,
        ..Default::default()
    };
    let mut cx6 = pf("ens3f0np0", "0000:af:00.0", "15b3", "101d");
    cx6.alt_names = vec!["ens3f0".into()];
    let mut vm = pf("ens6", "0000:00:06.0", "15b3", "101e");
    vm.net_filter = NET_ID.into();
    let pfs = vec![
        pf("ens1f0", "0000:3b:00.0", "8086", "159b"),
        pf("ens1f1", "0000:3b:00.1", "8086", "159b"),
        pf("ens2f0", "0000:5e:00.0", "8086", "1572"),
        cx6,
        pf("ibp1s0", "0000:d9:00.0", "15b3", "1021"),
        vm,
    ];
    (labels, pfs)
}

fn render() -> DevicePluginConfig {
    let policies = policies();
    let (labels, pfs) = node();
    let merge = merge_node(&policies, &labels, &pfs);
    render_device_plugin_config(&policies, &labels, &pfs, &merge, &NicIdList::builtin())
}

fn load(text: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(&path, text).unwrap();
    Config::load(&path, DEFAULT_PREFIX).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn pci(s: &str) -> PciAddress {
    s.parse().unwrap()
}

fn range<T>(pf: T, r: Option<std::ops::RangeInclusive<u32>>) -> PfRange<T> {
    PfRange {
        pf,
        indexes: r.map(|r| r.collect::<BTreeSet<u32>>()),
    }
}

/// What each policy asked for, in the plugin's terms (one selector set
/// per resource, as the operator renders).
fn wanted() -> BTreeMap<&'static str, (bool, Selectors)> {
    let s = |f: fn(&mut Selectors)| {
        let mut s = Selectors::default();
        f(&mut s);
        s
    };
    [
        // intel-x710 (priority 20, so first; linkType eth) and
        // intel-netdevice (E810) share the resource: one selector set, so
        // each list is the union (a set ANDs its selectors, as upstream).
        (
            "intel_netdevice",
            (
                false,
                s(|s| {
                    s.vendors = vec![0x8086];
                    s.devices = vec![0x154c, 0x1889];
                    s.pf_names = vec![
                        range("ens2f0".to_string(), None),
                        range("ens1f0".to_string(), Some(4..=7)),
                        range("ens1f1".to_string(), None),
                    ];
                    s.link_types = vec!["ether".into()];
                }),
            ),
        ),
        // vfio-pci: selected by driver; vhost-net; excludeTopology.
        (
            "intel_dpdk",
            (
                true,
                s(|s| {
                    s.vendors = vec![0x8086];
                    s.drivers = vec!["vfio-pci".into()];
                    s.pf_names = vec![range("ens1f0".to_string(), Some(0..=3))];
                    s.need_vhost_net = true;
                }),
            ),
        ),
        (
            "mlx_rdma",
            (
                false,
                s(|s| {
                    s.vendors = vec![0x15b3];
                    s.devices = vec![0x101e];
                    s.root_devices = vec![range(pci("0000:af:00.0"), None)];
                    s.link_types = vec!["ether".into()];
                    s.is_rdma = true;
                }),
            ),
        ),
        (
            "mlx_ib",
            (
                false,
                s(|s| {
                    s.vendors = vec![0x15b3];
                    s.devices = vec![0x101e];
                    s.link_types = vec!["infiniband".into()];
                    s.is_rdma = true;
                }),
            ),
        ),
        // pfNames by altName, resolved to the netdev name.
        (
            "mlx_vdpa",
            (
                false,
                s(|s| {
                    s.pf_names = vec![range("ens3f0np0".to_string(), None)];
                    s.vdpa_type = Some(VdpaType::Virtio);
                }),
            ),
        ),
        // netFilter: the PCI address of the PF on that network.
        (
            "external_vfs",
            (
                false,
                s(|s| {
                    s.pci_addresses = vec![pci("0000:00:06.0")];
                }),
            ),
        ),
    ]
    .into()
}

fn check(c: &Config, model: &DevicePluginConfig, form: &str) {
    assert!(c.skipped.is_empty(), "{form}: {:?}", c.skipped);
    // The plugin keeps the file's order (the first matching pool wins).
    let names: Vec<&str> = c.resources.iter().map(|r| r.name.as_str()).collect();
    let model_names: Vec<&str> = model
        .resource_list
        .iter()
        .map(|r| r.resource_name.as_str())
        .collect();
    assert_eq!(names, model_names, "{form}");
    let wanted = wanted();
    assert_eq!(
        names.iter().copied().collect::<BTreeSet<_>>(),
        wanted.keys().copied().collect::<BTreeSet<_>>(),
        "{form}"
    );
    for r in &c.resources {
        let (exclude_topology, selectors) = &wanted[r.name.as_str()];
        assert_eq!(
            r,
            &ResourceConfig {
                name: r.name.clone(),
                prefix: "intel.com".into(),
                device_type: DeviceType::NetDevice,
                exclude_topology: *exclude_topology,
                selectors: vec![selectors.clone()],
                additional_info: BTreeMap::new(),
            },
            "{form}: {}",
            r.name
        );
    }
}

#[test]
fn daemon_written_config_loads_as_the_policies_asked() {
    let model = render();
    check(&load(&model.to_json()), &model, "daemon (to_json)");
}

#[test]
fn operator_rendered_config_loads_as_the_policies_asked() {
    let model = render();
    let text = model.to_upstream_json();
    assert!(text.contains("\"IsRdma\":true") && text.contains("\"SelectorObj\":null"));
    let c = load(&text);
    check(&c, &model, "operator (to_upstream_json)");
    assert_eq!(c, load(&model.to_json()), "both forms load the same");
}

/// The loaded pools claim the devices the policies meant: the first
/// resource in config order whose selectors match takes a device.
#[test]
fn loaded_pools_claim_the_devices_the_policies_meant() {
    let c = load(&render().to_json());
    let vf = |pf: &str, pf_name: &str, index: u32, ids: (u16, u16), driver: &str| Device {
        address: pci("0000:99:00.0"),
        vendor: ids.0,
        device_id: ids.1,
        class: 0x020000,
        driver: Some(driver.into()),
        numa_node: Some(0),
        iommu_group: None,
        acpi_index: None,
        pf: Some(pci(pf)),
        vf_index: Some(index),
        pf_ifname: Some(pf_name.into()),
        ifname: None,
        link_type: Some(LinkType::Ether),
        rdma: vec![],
        pkey: None,
        vdpa: None,
        aux: None,
    };
    let env = MatchEnv::default();
    let claimed_by = |d: &Device| {
        c.resources
            .iter()
            .find(|r| r.selectors.iter().any(|s| s.matches(d, &env)))
            .map(|r| r.name.as_str())
    };
    let e810 = (0x8086, 0x1889);
    assert_eq!(
        claimed_by(&vf("0000:3b:00.0", "ens1f0", 2, e810, "vfio-pci")),
        Some("intel_dpdk")
    );
    assert_eq!(
        claimed_by(&vf("0000:3b:00.0", "ens1f0", 2, e810, "iavf")),
        None,
        "VF 2 belongs to the DPDK range, and only bound to vfio-pci"
    );
    assert_eq!(
        claimed_by(&vf("0000:3b:00.0", "ens1f0", 5, e810, "iavf")),
        Some("intel_netdevice")
    );
    assert_eq!(
        claimed_by(&vf("0000:3b:00.1", "ens1f1", 7, e810, "iavf")),
        Some("intel_netdevice")
    );
    assert_eq!(
        claimed_by(&vf("0000:5e:00.0", "ens2f0", 0, (0x8086, 0x154c), "iavf")),
        Some("intel_netdevice"),
        "the merged second policy's PF"
    );
    let mut mlx = vf(
        "0000:af:00.0",
        "ens3f0np0",
        1,
        (0x15b3, 0x101e),
        "mlx5_core",
    );
    assert_eq!(
        claimed_by(&mlx),
        None,
        "no RDMA device and no vDPA device: neither mlx pool"
    );
    mlx.rdma = vec!["mlx5_1".into()];
    assert_eq!(claimed_by(&mlx), Some("mlx_rdma"));
    let mut ib = vf("0000:d9:00.0", "ibp1s0", 0, (0x15b3, 0x101e), "mlx5_core");
    ib.link_type = Some(LinkType::Infiniband);
    ib.rdma = vec!["mlx5_4".into()];
    assert_eq!(claimed_by(&ib), Some("mlx_ib"));
}
