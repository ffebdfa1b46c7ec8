//! Table tests: the policy merge and the device plugin config it renders.

use std::collections::BTreeMap;

use serde_json::json;
use sriov_crds::device_plugin_config::{DevicePluginConfig, Selectors};
use sriov_crds::nic_ids::NicIdList;
use sriov_crds::policy_merge::{merge_node, policies_for_node, render_device_plugin_config};
use sriov_crds::{
    InterfaceExt, SriovNetworkNicSelector, SriovNetworkNodePolicy, SriovNetworkNodePolicySpec,
};

fn labels() -> BTreeMap<String, String> {
    [
        ("sriov".to_string(), "true".to_string()),
        ("zone".to_string(), "a".to_string()),
    ]
    .into()
}

fn pfs() -> Vec<InterfaceExt> {
    let pf = |name: &str, pci: &str, vendor: &str, device: &str| InterfaceExt {
        name: name.into(),
        pci_address: pci.into(),
        vendor: vendor.into(),
        device_id: device.into(),
        total_vfs: 64,
        ..Default::default()
    };
    vec![
        pf("ens1f0", "0000:86:00.0", "8086", "158b"),
        pf("ens1f1", "0000:86:00.1", "8086", "158b"),
        pf("ens2f0", "0000:3b:00.0", "15b3", "101d"),
    ]
}

fn policy(
    name: &str,
    priority: Option<i32>,
    resource: &str,
    num_vfs: i32,
    sel: SriovNetworkNicSelector,
) -> SriovNetworkNodePolicy {
    SriovNetworkNodePolicy::new(
        name,
        SriovNetworkNodePolicySpec {
            resource_name: resource.into(),
            node_selector: [("sriov".to_string(), "true".to_string())].into(),
            priority,
            num_vfs,
            nic_selector: sel,
            ..Default::default()
        },
    )
}

fn vendor(v: &str, d: &str) -> SriovNetworkNicSelector {
    SriovNetworkNicSelector {
        vendor: v.into(),
        device_id: d.into(),
        ..Default::default()
    }
}

fn pf_names(names: &[&str]) -> SriovNetworkNicSelector {
    SriovNetworkNicSelector {
        pf_names: names.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// (policy, range, resource, deviceType) of a VF group.
type Group = (String, String, String, String);
/// (pci, numVfs, mtu, groups) of a PF.
type Pf = (String, i32, i32, Vec<Group>);
/// (case, policies, expected PFs, expected conflict messages).
type MergeCase = (
    &'static str,
    Vec<SriovNetworkNodePolicy>,
    Vec<Pf>,
    Vec<&'static str>,
);

/// The merged PFs in a comparable form.
fn summary(m: &sriov_crds::policy_merge::NodeMerge) -> Vec<Pf> {
    m.interfaces
        .iter()
        .map(|i| {
            (
                i.pci_address.clone(),
                i.num_vfs,
                i.mtu,
                i.vf_groups
                    .iter()
                    .map(|g| {
                        (
                            g.policy_name.clone(),
                            g.vf_range.clone(),
                            g.resource_name.clone(),
                            g.device_type.clone(),
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

fn g(policy: &str, range: &str, resource: &str, dt: &str) -> Group {
    (policy.into(), range.into(), resource.into(), dt.into())
}

#[test]
fn order_is_priority_then_name_and_skips_unselected_nodes() {
    let mut other_node = policy("x-other", Some(1), "r", 1, vendor("8086", ""));
    other_node
        .spec
        .node_selector
        .insert("zone".into(), "b".into());
    let default = policy("default", Some(0), "r", 1, vendor("8086", ""));
    let policies = vec![
        policy("b", None, "rb", 1, vendor("8086", "")),
        policy("c", Some(10), "rc", 1, vendor("8086", "")),
        policy("a", Some(10), "ra", 1, vendor("8086", "")),
        other_node,
        default,
    ];
    let order: Vec<String> = policies_for_node(&policies, &labels())
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    // Equal priority: the later name comes first (wins), as upstream.
    assert_eq!(order, ["c", "a", "b"]);
}

#[test]
fn single_policy_all_matching_pfs() {
    let mut p = policy("intel", None, "intel", 8, vendor("8086", "158b"));
    p.spec.mtu = Some(9000);
    p.spec.device_type = "vfio-pci".into();
    let m = merge_node(&[p], &labels(), &pfs());
    assert!(m.conflicts.is_empty());
    assert_eq!(
        summary(&m),
        [
            (
                "0000:86:00.0".into(),
                8,
                9000,
                vec![g("intel", "0-7", "intel", "vfio-pci")]
            ),
            (
                "0000:86:00.1".into(),
                8,
                9000,
                vec![g("intel", "0-7", "intel", "vfio-pci")]
            ),
        ]
    );
    assert_eq!(m.interfaces[0].name, "ens1f0");
    assert_eq!(m.applied_policies, ["intel"]);
}

#[test]
fn partitions_of_one_pf_and_max_numvfs_mtu() {
    let mut dpdk = policy("dpdk", Some(10), "dpdk", 8, pf_names(&["ens1f0#0-3"]));
    dpdk.spec.device_type = "vfio-pci".into();
    let mut net = policy("net", Some(20), "net", 16, pf_names(&["ens1f0#4-15"]));
    net.spec.mtu = Some(9000);
    let m = merge_node(&[net, dpdk], &labels(), &pfs());
    assert!(m.conflicts.is_empty(), "{:?}", m.conflicts);
    assert_eq!(
        summary(&m),
        [(
            "0000:86:00.0".into(),
            16,
            9000,
            vec![
                g("dpdk", "0-3", "dpdk", "vfio-pci"),
                g("net", "4-15", "net", "netdevice")
            ]
        )]
    );
}

#[test]
fn conflicts_are_won_by_priority_then_name_and_reported() {
    let cases: Vec<MergeCase> = vec![
        (
            "overlapping ranges: lower priority number wins",
            vec![
                policy("high", Some(5), "rh", 8, pf_names(&["ens1f0#0-3"])),
                policy("low", Some(50), "rl", 8, pf_names(&["ens1f0#2-7"])),
            ],
            vec![(
                "0000:86:00.0".into(),
                8,
                0,
                vec![g("high", "0-3", "rh", "netdevice")],
            )],
            vec![
                "policy low lost VFs 2-7 on PF ens1f0 (0000:86:00.0) to policy high (VFs 0-3), which wins (lower priority number; on equal priority the name that sorts later); give the policies disjoint pfNames ranges",
            ],
        ),
        (
            "equal priority: name decides",
            vec![
                policy("zeta", Some(10), "rz", 4, pf_names(&["ens1f0"])),
                policy("alpha", Some(10), "ra", 4, pf_names(&["ens1f0"])),
            ],
            vec![(
                "0000:86:00.0".into(),
                4,
                0,
                vec![g("zeta", "0-3", "rz", "netdevice")],
            )],
            vec![
                "policy alpha lost VFs 0-3 on PF ens1f0 (0000:86:00.0) to policy zeta (VFs 0-3), which wins (lower priority number; on equal priority the name that sorts later); give the policies disjoint pfNames ranges",
            ],
        ),
        (
            "same resource name on one PF",
            vec![
                policy("a", Some(1), "same", 8, pf_names(&["ens1f0#0-3"])),
                policy("b", Some(2), "same", 8, pf_names(&["ens1f0#4-7"])),
            ],
            vec![(
                "0000:86:00.0".into(),
                8,
                0,
                vec![g("a", "0-3", "same", "netdevice")],
            )],
            vec![
                "policy b lost PF ens1f0 (0000:86:00.0) to policy a, which already puts VFs of this PF into resource same; use a different resourceName or one policy",
            ],
        ),
        (
            "whole-PF policy loses only where it overlaps",
            vec![
                policy("range", Some(1), "r1", 4, pf_names(&["ens1f0#0-3"])),
                policy("all-intel", Some(99), "r2", 4, vendor("8086", "158b")),
            ],
            vec![
                (
                    "0000:86:00.0".into(),
                    4,
                    0,
                    vec![g("range", "0-3", "r1", "netdevice")],
                ),
                (
                    "0000:86:00.1".into(),
                    4,
                    0,
                    vec![g("all-intel", "0-3", "r2", "netdevice")],
                ),
            ],
            vec![
                "policy all-intel lost VFs 0-3 on PF ens1f0 (0000:86:00.0) to policy range (VFs 0-3), which wins (lower priority number; on equal priority the name that sorts later); give the policies disjoint pfNames ranges",
            ],
        ),
        (
            "different eSwitchMode on one PF",
            vec![
                {
                    let mut p = policy("sw", Some(1), "r1", 8, pf_names(&["ens2f0#0-3"]));
                    p.spec.eswitch_mode = "switchdev".into();
                    p
                },
                {
                    let mut p = policy("legacy", Some(2), "r2", 8, pf_names(&["ens2f0#4-7"]));
                    p.spec.eswitch_mode = "legacy".into();
                    p
                },
            ],
            vec![(
                "0000:3b:00.0".into(),
                8,
                0,
                vec![g("sw", "0-3", "r1", "netdevice")],
            )],
            vec![
                "policy legacy lost PF ens2f0 (0000:3b:00.0) to policy sw: it wants eSwitchMode \"legacy\" but the winner set \"switchdev\"; make the policies agree",
            ],
        ),
        (
            "externallyManaged mismatch on one PF",
            vec![
                policy("managed", Some(1), "r1", 8, pf_names(&["ens2f0#0-3"])),
                {
                    let mut p = policy("external", Some(2), "r2", 8, pf_names(&["ens2f0#4-7"]));
                    p.spec.externally_managed = Some(true);
                    p
                },
            ],
            vec![(
                "0000:3b:00.0".into(),
                8,
                0,
                vec![g("managed", "0-3", "r1", "netdevice")],
            )],
            vec![
                "policy external lost PF ens2f0 (0000:3b:00.0) to policy managed: it wants externallyManaged \"true\" but the winner set \"false\"; make the policies agree",
            ],
        ),
        (
            "numVfs 0 and empty selectors contribute nothing",
            vec![
                policy("zero", Some(1), "r1", 0, pf_names(&["ens1f0"])),
                policy(
                    "empty",
                    Some(1),
                    "r2",
                    4,
                    SriovNetworkNicSelector::default(),
                ),
                policy("nomatch", Some(1), "r3", 4, pf_names(&["ens9f9"])),
            ],
            vec![],
            vec![],
        ),
    ];
    for (name, policies, expected, conflicts) in cases {
        let m = merge_node(&policies, &labels(), &pfs());
        assert_eq!(summary(&m), expected, "case {name:?}");
        let msgs: Vec<String> = m.conflicts.iter().map(ToString::to_string).collect();
        assert_eq!(msgs, conflicts, "case {name:?}");
    }
}

#[test]
fn pf_attributes_from_the_winner() {
    let mut a = policy("a", Some(1), "r1", 4, pf_names(&["ens2f0#0-1"]));
    a.spec.link_type = "eth".into();
    a.spec.is_rdma = Some(true);
    a.spec.vdpa_type = "virtio".into();
    a.spec.eswitch_mode = "switchdev".into();
    let mut b = policy("b", Some(2), "r2", 8, pf_names(&["ens2f0#2-7"]));
    b.spec.mtu = Some(4000);
    let m = merge_node(&[b, a], &labels(), &pfs());
    assert!(m.conflicts.is_empty());
    let iface = &m.interfaces[0];
    assert_eq!(
        serde_json::to_value(iface).unwrap(),
        json!({
            "pciAddress": "0000:3b:00.0", "name": "ens2f0", "numVfs": 8, "mtu": 4000,
            "linkType": "eth", "eSwitchMode": "switchdev",
            "vfGroups": [
                {"resourceName": "r1", "deviceType": "netdevice", "vfRange": "0-1", "policyName": "a", "isRdma": true, "vdpaType": "virtio"},
                {"resourceName": "r2", "deviceType": "netdevice", "vfRange": "2-7", "policyName": "b", "mtu": 4000}
            ]
        })
    );
}

#[test]
fn device_plugin_config_upstream_format() {
    let mut dpdk = policy(
        "dpdk",
        Some(10),
        "intel_dpdk",
        8,
        SriovNetworkNicSelector {
            vendor: "8086".into(),
            device_id: "158b".into(),
            pf_names: vec!["ens1f0#0-3".into()],
            ..Default::default()
        },
    );
    dpdk.spec.device_type = "vfio-pci".into();
    dpdk.spec.need_vhost_net = Some(true);
    dpdk.spec.link_type = "eth".into();
    let mut net = policy("net", Some(20), "intel_net", 8, pf_names(&["ens1f0#4-7"]));
    net.spec.link_type = "eth".into();
    let mut net2 = policy(
        "net2",
        Some(20),
        "intel_net",
        8,
        SriovNetworkNicSelector {
            root_devices: vec!["0000:86:00.1".into()],
            ..Default::default()
        },
    );
    net2.spec.exclude_topology = Some(false);
    let mut mlx = policy("mlx", Some(30), "mlx_ib", 4, vendor("15b3", "101d"));
    mlx.spec.link_type = "IB".into();
    mlx.spec.is_rdma = Some(true);
    mlx.spec.exclude_topology = Some(true);
    let loser = policy("loser", Some(99), "lost", 8, pf_names(&["ens1f0#0-7"]));
    let policies = vec![mlx, net2, loser, net, dpdk];
    let m = merge_node(&policies, &labels(), &pfs());
    assert_eq!(m.conflicts.len(), 1, "{:?}", m.conflicts);
    let config =
        render_device_plugin_config(&policies, &labels(), &pfs(), &m, &NicIdList::builtin());
    assert_eq!(
        serde_json::to_value(&config).unwrap(),
        json!({"resourceList": [
            {"resourceName": "lost", "selectors": {
                "pfNames": ["ens1f0#0-7"], "IsRdma": false, "NeedVhostNet": false}},
            {"resourceName": "mlx_ib", "excludeTopology": true, "selectors": {
                "vendors": ["15b3"], "devices": ["101e"], "linkTypes": ["infiniband"],
                "IsRdma": true, "NeedVhostNet": false}},
            {"resourceName": "intel_net", "selectors": {
                "pfNames": ["ens1f0#4-7"], "rootDevices": ["0000:86:00.1"], "linkTypes": ["ether"],
                "IsRdma": false, "NeedVhostNet": false}},
            {"resourceName": "intel_dpdk", "selectors": {
                "vendors": ["8086"], "devices": ["154c"], "drivers": ["vfio-pci"],
                "pfNames": ["ens1f0#0-3"], "IsRdma": false, "NeedVhostNet": true}}
        ]}),
        "upstream order (priority number descending, then name), every selecting policy \
         (the merge loser too), drivers only for vfio-pci, excludeTopology of the last policy"
    );
    // Byte for byte what Go's json.Marshal writes (field order, SelectorObj).
    assert_eq!(
        config.to_upstream_json(),
        concat!(
            r#"{"resourceList":[{"resourceName":"lost","selectors":{"pfNames":["ens1f0#0-7"],"IsRdma":false,"NeedVhostNet":false},"SelectorObj":null},"#,
            r#"{"resourceName":"mlx_ib","excludeTopology":true,"selectors":{"vendors":["15b3"],"devices":["101e"],"linkTypes":["infiniband"],"IsRdma":true,"NeedVhostNet":false},"SelectorObj":null},"#,
            r#"{"resourceName":"intel_net","selectors":{"pfNames":["ens1f0#4-7"],"rootDevices":["0000:86:00.1"],"linkTypes":["ether"],"IsRdma":false,"NeedVhostNet":false},"SelectorObj":null},"#,
            r#"{"resourceName":"intel_dpdk","selectors":{"vendors":["8086"],"devices":["154c"],"drivers":["vfio-pci"],"pfNames":["ens1f0#0-3"],"IsRdma":false,"NeedVhostNet":true},"SelectorObj":null}]}"#
        )
    );
    assert_eq!(
        DevicePluginConfig::default().to_upstream_json(),
        r#"{"resourceList":null}"#
    );
    // The text round-trips through the strict parser, and through the
    // lenient reader the device plugin uses (both forms).
    assert_eq!(
        DevicePluginConfig::from_json(&config.to_json()).unwrap(),
        config
    );
    for text in [config.to_json(), config.to_upstream_json()] {
        let read: Vec<_> = sriov_crds::device_plugin_config::read(&text, "config.json")
            .unwrap()
            .into_iter()
            .map(|e| e.unwrap().resource)
            .collect();
        assert_eq!(read, config.resource_list, "{text}");
    }
}

#[test]
fn device_plugin_config_net_filter_and_pf_device_without_vendor() {
    let mut vm_pfs = pfs();
    vm_pfs[1].net_filter = "openstack/NetworkID:3e1a55a4-2f0c-4b1d-9c64-5e5a1f0b8a11".into();
    let nf = policy(
        "nf",
        None,
        "vmnet",
        1,
        SriovNetworkNicSelector {
            net_filter: "openstack/NetworkID:3e1a55a4-2f0c-4b1d-9c64-5e5a1f0b8a11".into(),
            ..Default::default()
        },
    );
    let dev = policy("dev", None, "bydev", 2, vendor("", "1017"));
    let mut node = vm_pfs.clone();
    node.push(InterfaceExt {
        name: "ens5".into(),
        pci_address: "0000:5e:00.0".into(),
        vendor: "15b3".into(),
        device_id: "1017".into(),
        ..Default::default()
    });
    let policies = vec![nf, dev];
    let m = merge_node(&policies, &labels(), &node);
    let c = render_device_plugin_config(&policies, &labels(), &node, &m, &NicIdList::builtin());
    assert_eq!(c.resource_list.len(), 2);
    let by = |n: &str| {
        c.resource_list
            .iter()
            .find(|r| r.resource_name == n)
            .unwrap()
            .selectors
            .clone()
            .unwrap()
    };
    let Selectors::One(s) = by("vmnet") else {
        panic!()
    };
    assert_eq!(s.pci_addresses, ["0000:86:00.1"]);
    let Selectors::One(s) = by("bydev") else {
        panic!()
    };
    assert_eq!(s.devices, ["1018"], "VF id looked up by PF device id alone");
}

#[test]
fn device_plugin_config_reads_user_written_files() {
    let text = r#"{
      "resourceList": [
        {"resourcePrefix": "example.com", "resourceName": "pool_a", "deviceType": "netDevice",
         "selectors": [{"vendors": ["8086"], "pfNames": ["ens1f0#0-3,5"], "isRdma": true, "needVhostNet": true},
                       {"pciAddresses": ["0000:86:02.7"], "acpiIndexes": ["101"], "ddpProfiles": ["GTPv1"]}],
         "additionalInfo": {"*": {"token": "3e49019f"}}},
        {"resourceName": "sf", "deviceType": "auxNetDevice",
         "selectors": {"rootDevices": ["0000:3b:00.0#1-4"], "auxTypes": ["sf"], "vdpaType": "vhost", "drivers": ["mlx5_core"], "linkTypes": ["ether"]}}
      ]
    }"#;
    let c = DevicePluginConfig::from_json(text).unwrap();
    assert_eq!(c.resource_list[0].resource_prefix, "example.com");
    let Some(Selectors::Many(list)) = &c.resource_list[0].selectors else {
        panic!("list form")
    };
    assert!(
        list[0].is_rdma && list[0].need_vhost_net,
        "lower-case isRdma/needVhostNet accepted"
    );
    assert_eq!(list[1].ddp_profiles, ["GTPv1"]);
    assert_eq!(c.resource_list[0].additional_info["*"]["token"], "3e49019f");
    let Some(Selectors::One(sf)) = &c.resource_list[1].selectors else {
        panic!("object form")
    };
    assert_eq!(sf.aux_types, ["sf"]);
    let again = serde_json::to_value(&c).unwrap();
    assert_eq!(
        again["resourceList"][0]["selectors"][0]["IsRdma"], true,
        "written capitalized like the Go operator"
    );
    assert_eq!(
        DevicePluginConfig::from_json(&again.to_string()).unwrap(),
        c
    );
    let err = DevicePluginConfig::from_json("{\"resourceList\": [{}]}")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("device plugin config is not valid: missing field `resourceName`"),
        "{err}"
    );
}

#[test]
fn example_policies_merge_on_a_mixed_node() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/sriovnetworknodepolicies.yaml"
    ))
    .unwrap();
    let policies: Vec<SriovNetworkNodePolicy> = serde_saphyr::from_multiple(&text).unwrap();
    let node_labels: BTreeMap<String, String> = [(
        "feature.node.kubernetes.io/network-sriov.capable".to_string(),
        "true".to_string(),
    )]
    .into();
    // The PFs of the simulator's `mixed` node.
    let pf = |name: &str, pci: &str, vendor: &str, device: &str, total: i32| InterfaceExt {
        name: name.into(),
        pci_address: pci.into(),
        vendor: vendor.into(),
        device_id: device.into(),
        total_vfs: total,
        ..Default::default()
    };
    let mixed = vec![
        pf("ens1f0", "0000:3b:00.0", "8086", "159b", 128),
        pf("ens1f1", "0000:3b:00.1", "8086", "159b", 128),
        pf("ens2f0", "0000:5e:00.0", "8086", "1572", 64),
        pf("ens3f0np0", "0000:af:00.0", "15b3", "101d", 8),
        pf("ens4f0", "0000:d8:00.0", "8086", "10c9", 7),
        pf("enp0s3", "0000:00:03.0", "1af4", "1000", 0),
    ];
    let m = merge_node(&policies, &node_labels, &mixed);
    assert_eq!(
        m.applied_policies,
        ["intel-dpdk", "intel-netdevice", "mlx-rdma"]
    );
    assert!(m.conflicts.is_empty(), "{:?}", m.conflicts);
    assert_eq!(
        summary(&m),
        [
            (
                "0000:3b:00.0".into(),
                8,
                9000,
                vec![
                    g("intel-dpdk", "0-3", "intel_dpdk", "vfio-pci"),
                    g("intel-netdevice", "4-7", "intel_netdevice", "netdevice")
                ]
            ),
            (
                "0000:3b:00.1".into(),
                8,
                9000,
                vec![g("intel-netdevice", "0-7", "intel_netdevice", "netdevice")]
            ),
            (
                "0000:af:00.0".into(),
                8,
                0,
                vec![g("mlx-rdma", "0-7", "mlx_rdma", "netdevice")]
            ),
        ]
    );
    // The merged spec passes the node state rules the daemon checks.
    let state = sriov_crds::SriovNetworkNodeStateSpec {
        interfaces: m.interfaces.clone(),
        ..Default::default()
    };
    assert_eq!(
        sriov_crds::rules::node_state::check_node_state_spec(&state),
        vec![]
    );
    // Every policy also passes the node and cross-policy rules there.
    let nics = NicIdList::builtin();
    let applied = policies_for_node(&policies, &node_labels);
    for p in &applied {
        sriov_crds::rules::node::check_policy_on_node(
            "mixed",
            &p.spec,
            &mixed,
            &nics,
            sriov_crds::rules::policy::NicCheck::KnownOnly,
        )
        .unwrap_or_else(|e| panic!("{:?}: {e:?}", p.metadata.name));
        let others: Vec<SriovNetworkNodePolicy> = applied.iter().map(|p| (*p).clone()).collect();
        assert_eq!(
            sriov_crds::rules::cross_policy::check_against_policies(p, &others),
            vec![],
            "{:?}",
            p.metadata.name
        );
    }
}
