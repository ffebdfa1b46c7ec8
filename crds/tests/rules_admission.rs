//! Table tests: the whole admission check of a policy over several nodes
//! (rejections and warnings).

use std::collections::BTreeMap;

use sriov_crds::nic_ids::NicIdList;
use sriov_crds::rules::admission::{NodeView, admit_policy};
use sriov_crds::rules::policy::NicCheck;
use sriov_crds::{
    InterfaceExt, SriovNetworkNicSelector, SriovNetworkNodePolicy, SriovNetworkNodePolicySpec,
};

fn node(name: &str, zone: &str, pfs: Option<Vec<InterfaceExt>>) -> NodeView {
    NodeView {
        name: name.into(),
        labels: BTreeMap::from([
            ("sriov".into(), "true".into()),
            ("zone".into(), zone.into()),
        ]),
        pfs,
    }
}

fn intel(name: &str, pci: &str) -> InterfaceExt {
    InterfaceExt {
        name: name.into(),
        pci_address: pci.into(),
        vendor: "8086".into(),
        device_id: "159b".into(),
        total_vfs: 128,
        ..Default::default()
    }
}

fn policy(name: &str, zone: &str, pf_names: &[&str], num_vfs: i32) -> SriovNetworkNodePolicy {
    SriovNetworkNodePolicy::new(
        name,
        SriovNetworkNodePolicySpec {
            resource_name: format!("r_{name}"),
            node_selector: BTreeMap::from([("zone".into(), zone.into())]),
            num_vfs,
            nic_selector: SriovNetworkNicSelector {
                vendor: "8086".into(),
                pf_names: pf_names.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            ..Default::default()
        },
    )
}

fn admit(
    p: &SriovNetworkNodePolicy,
    nodes: &[NodeView],
    existing: &[SriovNetworkNodePolicy],
) -> (Vec<String>, Vec<String>) {
    let verdict = admit_policy(
        p,
        nodes,
        existing,
        &NicIdList::builtin(),
        NicCheck::KnownOnly,
    );
    let strings = |v: &[sriov_crds::rules::RuleError]| v.iter().map(ToString::to_string).collect();
    (strings(&verdict.errors), strings(&verdict.warnings))
}

#[test]
fn admission_cases() {
    let nodes = vec![
        node("a1", "a", Some(vec![intel("ens1f0", "0000:3b:00.0")])),
        node("a2", "a", Some(vec![intel("ens9f0", "0000:5e:00.0")])),
        node("b1", "b", None),
        node("c1", "c", Some(vec![])),
        node("d1", "d", Some(vec![intel("ens1f0", "0000:3b:00.0")])),
        node("d2", "d", None),
    ];
    let existing = vec![
        policy("other", "a", &["ens1f0#0-3"], 8),
        policy("elsewhere", "b", &["ens1f0#0-7"], 8),
    ];
    // (case, policy, rejections, warnings)
    let cases: Vec<(&str, SriovNetworkNodePolicy, Vec<&str>, Vec<&str>)> = vec![
        (
            "selects on one node of two",
            policy("p", "a", &["ens1f0#4-7"], 8),
            vec![],
            vec![],
        ),
        (
            "update of itself",
            policy("other", "a", &["ens1f0#0-5"], 8),
            vec![],
            vec![],
        ),
        (
            "static error first",
            policy("p", "a", &["ens1f0#4-9"], 8),
            vec![
                "spec.nicSelector.pfNames[0]: VF range \"ens1f0#4-9\" ends at index 9, but with numVfs 8 the VF indexes are 0-7; raise numVfs to 10 or end the range at 7",
            ],
            vec![],
        ),
        (
            "no node",
            policy("p", "z", &["ens1f0"], 8),
            vec![],
            vec![
                "spec.nodeSelector: no node has the labels \"zone=z\" yet; the policy applies once nodes are labelled (kubectl label node <node> zone=z)",
            ],
        ),
        (
            "overlap with a policy on the same node",
            policy("p", "a", &["ens1f0#2-5"], 8),
            vec![
                "spec.nicSelector.pfNames[0]: VF index range \"ens1f0#2-5\" overlaps \"ens1f0#0-3\" of policy other on PF ens1f0; give each policy its own VFs (e.g. ens1f0#4-5)",
            ],
            vec![],
        ),
        (
            "too many VFs on a node",
            policy("p", "a", &["ens9f0"], 200),
            vec![
                "spec.numVfs: numVfs 200 exceeds what PF ens9f0 (0000:5e:00.0, 8086:159b) on node a2 supports: 128 VFs (sriov_totalvfs); lower numVfs to 128 or exclude this PF in nicSelector",
            ],
            vec![],
        ),
        (
            "selects nothing anywhere",
            policy("p", "a", &["ens7f7"], 8),
            vec![
                "spec.nicSelector: no supported NIC on node a1 is selected by nicSelector; PFs on the node: ens1f0 (0000:3b:00.0, 8086:159b)",
                "spec.nicSelector: no supported NIC on node a2 is selected by nicSelector; PFs on the node: ens9f0 (0000:5e:00.0, 8086:159b)",
            ],
            vec![],
        ),
        (
            "node without state",
            policy("p", "b", &["ens1f0"], 8),
            vec![],
            vec![
                "spec.nicSelector: 1 selected node(s) have not reported their NICs yet (b1); the NIC checks run when the config daemon reports, and the policy's status shows where it applies",
            ],
        ),
        (
            "node without PFs",
            policy("p", "c", &["ens1f0"], 8),
            vec![
                "spec.nicSelector: no supported NIC on node c1 is selected by nicSelector; the node reported no SR-IOV PFs",
            ],
            vec![],
        ),
        (
            "one node reported without a match, one not reported",
            policy("p", "d", &["ens7f7"], 8),
            vec![],
            vec![
                "spec.nicSelector: no supported NIC on node d1 is selected by nicSelector; PFs on the node: ens1f0 (0000:3b:00.0, 8086:159b)",
                "spec.nicSelector: 1 selected node(s) have not reported their NICs yet (d2); the NIC checks run when the config daemon reports, and the policy's status shows where it applies",
            ],
        ),
        (
            "malformed root device: upstream accepts it, a warning",
            {
                let mut p = policy("p", "a", &["ens1f0#4-7"], 8);
                p.spec.nic_selector.root_devices = vec!["86:00.0".into()];
                p
            },
            vec![
                "spec.nicSelector: no supported NIC on node a1 is selected by nicSelector; PFs on the node: ens1f0 (0000:3b:00.0, 8086:159b)",
                "spec.nicSelector: no supported NIC on node a2 is selected by nicSelector; PFs on the node: ens9f0 (0000:5e:00.0, 8086:159b)",
            ],
            vec![
                "spec.nicSelector.rootDevices[0]: \"86:00.0\" is not a PCI address; write it as the kernel does, domain:bus:device.function, e.g. 0000:86:00.0",
            ],
        ),
    ];
    for (name, p, errors, warnings) in cases {
        let (e, w) = admit(&p, &nodes, &existing);
        assert_eq!(e, errors, "case {name:?}: rejections");
        assert_eq!(w, warnings, "case {name:?}: warnings");
    }
}
