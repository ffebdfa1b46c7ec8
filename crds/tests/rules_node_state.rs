//! Table tests: rules of a SriovNetworkNodeState spec.

use sriov_crds::rules::node_state::check_node_state_spec;
use sriov_crds::{Interface, SriovNetworkNodeStateSpec, VfGroup};

fn group(policy: &str, range: &str, device_type: &str) -> VfGroup {
    VfGroup {
        resource_name: format!("r_{policy}"),
        device_type: device_type.into(),
        vf_range: range.into(),
        policy_name: policy.into(),
        ..Default::default()
    }
}

fn spec(num_vfs: i32, groups: Vec<VfGroup>) -> SriovNetworkNodeStateSpec {
    SriovNetworkNodeStateSpec {
        interfaces: vec![Interface {
            pci_address: "0000:3b:00.0".into(),
            num_vfs,
            vf_groups: groups,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn messages(s: &SriovNetworkNodeStateSpec) -> Vec<String> {
    check_node_state_spec(s)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn accepted_node_states() {
    assert!(messages(&SriovNetworkNodeStateSpec::default()).is_empty());
    assert!(
        messages(&spec(
            8,
            vec![
                group("a", "0-3", "vfio-pci"),
                group("b", "4-7", "netdevice")
            ]
        ))
        .is_empty()
    );
    assert!(messages(&spec(0, vec![])).is_empty(), "a PF reset to 0 VFs");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/sriovnetworknodestate.yaml"
    ))
    .unwrap();
    let state: sriov_crds::SriovNetworkNodeState = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(messages(&state.spec), Vec::<String>::new());
}

#[test]
fn rejected_node_states() {
    let cases: Vec<(&str, SriovNetworkNodeStateSpec, Vec<&str>)> = vec![
        (
            "range beyond numVfs",
            spec(4, vec![group("a", "0-4", "netdevice")]),
            vec![
                "spec.interfaces[0].vfGroups[0].vfRange: VF range 0-4 of policy a does not fit numVfs 4 of PF 0000:3b:00.0 (VF indexes 0-3); raise numVfs or shrink the range",
            ],
        ),
        (
            "overlap",
            spec(
                8,
                vec![
                    group("a", "0-3", "netdevice"),
                    group("b", "3-7", "vfio-pci"),
                ],
            ),
            vec![
                "spec.interfaces[0].vfGroups[1].vfRange: VF range 3-7 of policy b overlaps VF range 0-3 of policy a on PF 0000:3b:00.0; each VF belongs to one group",
            ],
        ),
        (
            "bad range",
            spec(8, vec![group("a", "7-0", "netdevice")]),
            vec![
                "spec.interfaces[0].vfGroups[0].vfRange: VF range in \"7-0\": first index 7 is above last index 0; write 0-7",
            ],
        ),
        (
            "bad device type",
            spec(8, vec![group("a", "0-1", "uio")]),
            vec![
                "spec.interfaces[0].vfGroups[0].deviceType: \"uio\" is not allowed; use one of netdevice, vfio-pci",
            ],
        ),
        (
            "negative",
            spec(-1, vec![]),
            vec!["spec.interfaces[0].numVfs: -1 is negative"],
        ),
        (
            "duplicate PF and bad address",
            {
                let mut s = spec(2, vec![]);
                s.interfaces.push(s.interfaces[0].clone());
                s.interfaces.push(Interface {
                    pci_address: "3b:00.0".into(),
                    ..Default::default()
                });
                s
            },
            vec![
                "spec.interfaces[1].pciAddress: PF 0000:3b:00.0 is listed twice; merge its VF groups into one entry",
                "spec.interfaces[2].pciAddress: \"3b:00.0\" is not a PCI address; write it as the kernel does, domain:bus:device.function, e.g. 0000:86:00.0",
            ],
        ),
    ];
    for (name, s, expected) in cases {
        assert_eq!(messages(&s), expected, "case {name:?}");
    }
}
