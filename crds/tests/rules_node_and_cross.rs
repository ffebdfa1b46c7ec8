//! Table tests: a policy against a node's reported PFs, and against the
//! other policies on the same node.

use sriov_crds::nic_ids::NicIdList;
use sriov_crds::rules::cross_policy::check_against_policies;
use sriov_crds::rules::node::check_policy_on_node;
use sriov_crds::rules::policy::NicCheck;
use sriov_crds::{
    InterfaceExt, SriovNetworkNicSelector, SriovNetworkNodePolicy, SriovNetworkNodePolicySpec,
};

fn pf(name: &str, pci: &str, vendor: &str, device: &str, total: i32) -> InterfaceExt {
    InterfaceExt {
        name: name.into(),
        pci_address: pci.into(),
        vendor: vendor.into(),
        device_id: device.into(),
        total_vfs: total,
        mtu: 1500,
        link_type: "ETH".into(),
        ..Default::default()
    }
}

fn node_pfs() -> Vec<InterfaceExt> {
    vec![
        pf("ens1f0", "0000:86:00.0", "8086", "158b", 64),
        pf("ens1f1", "0000:86:00.1", "8086", "158b", 64),
        pf("ens2f0", "0000:3b:00.0", "15b3", "101d", 8),
        pf("eth9", "0000:00:09.0", "1234", "5678", 8),
    ]
}

fn spec(vendor: &str, device: &str, num_vfs: i32) -> SriovNetworkNodePolicySpec {
    SriovNetworkNodePolicySpec {
        resource_name: "r".into(),
        num_vfs,
        nic_selector: SriovNetworkNicSelector {
            vendor: vendor.into(),
            device_id: device.into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn check(s: &SriovNetworkNodePolicySpec, pfs: &[InterfaceExt]) -> Result<Vec<String>, Vec<String>> {
    check_policy_on_node(
        "worker-0",
        s,
        pfs,
        &NicIdList::builtin(),
        NicCheck::KnownOnly,
    )
    .map_err(|e| e.iter().map(ToString::to_string).collect())
}

#[test]
fn node_checks_accepted() {
    let pfs = node_pfs();
    assert_eq!(
        check(&spec("8086", "158b", 64), &pfs).unwrap(),
        ["0000:86:00.0", "0000:86:00.1"]
    );
    let mut by_name = spec("", "", 4);
    by_name.nic_selector.pf_names = vec!["ens1f1#0-3".into()];
    assert_eq!(check(&by_name, &pfs).unwrap(), ["0000:86:00.1"]);
    let mut by_root = spec("15b3", "", 8);
    by_root.nic_selector.root_devices = vec!["0000:3b:00.0".into()];
    assert_eq!(check(&by_root, &pfs).unwrap(), ["0000:3b:00.0"]);
    // altNames are matched too.
    let mut alt = node_pfs();
    alt[0].alt_names = vec!["enp134s0f0".into()];
    let mut by_alt = spec("", "", 2);
    by_alt.nic_selector.pf_names = vec!["enp134s0f0".into()];
    assert_eq!(check(&by_alt, &alt).unwrap(), ["0000:86:00.0"]);
    // totalvfs unknown (0) is not checked.
    let mut unknown_total = node_pfs();
    unknown_total[0].total_vfs = 0;
    assert!(check(&spec("8086", "158b", 32), &unknown_total[..1]).is_ok());
    // Externally managed within what exists.
    let mut ext_pfs = node_pfs();
    ext_pfs[2].num_vfs = 4;
    ext_pfs[2].mtu = 9000;
    let mut ext = spec("15b3", "101d", 4);
    ext.externally_managed = Some(true);
    ext.mtu = Some(9000);
    ext.link_type = "eth".into();
    assert!(check(&ext, &ext_pfs).is_ok());
    // vDPA on Mellanox.
    let mut vdpa = spec("15b3", "101d", 2);
    vdpa.vdpa_type = "virtio".into();
    assert!(check(&vdpa, &pfs).is_ok());
    // Unknown NIC in dev mode.
    let s = spec("1234", "5678", 2);
    assert!(
        check_policy_on_node(
            "worker-0",
            &s,
            &pfs,
            &NicIdList::builtin(),
            NicCheck::AnyNic
        )
        .is_ok()
    );
    // In a VM: a known VF model selected by netFilter.
    let mut vm_pf = pf("eth0", "0000:00:05.0", "8086", "154c", 0);
    vm_pf.net_filter = "openstack/NetworkID:3e1a55a4-2f0c-4b1d-9c64-5e5a1f0b8a11".into();
    let mut vm = spec("", "", 1);
    vm.nic_selector.net_filter =
        " openstack/NetworkID : 3e1a55a4-2f0c-4b1d-9c64-5e5a1f0b8a11".into();
    assert_eq!(check(&vm, &[vm_pf]).unwrap(), ["0000:00:05.0"]);
}

#[test]
fn node_checks_rejected() {
    let pfs = node_pfs();
    // numVfs over totalvfs, for every vendor (here Mellanox).
    assert_eq!(
        check(&spec("15b3", "101d", 16), &pfs).unwrap_err(),
        [
            "spec.numVfs: numVfs 16 exceeds what PF ens2f0 (0000:3b:00.0, 15b3:101d) on node worker-0 supports: 8 VFs (sriov_totalvfs); lower numVfs to 8 or exclude this PF in nicSelector"
        ]
    );
    // Nothing selected.
    let mut none = spec("", "", 2);
    none.nic_selector.pf_names = vec!["ens9f9".into()];
    assert_eq!(
        check(&none, &pfs[..1]).unwrap_err(),
        [
            "spec.nicSelector: no supported NIC on node worker-0 is selected by nicSelector; PFs on the node: ens1f0 (0000:86:00.0, 8086:158b)"
        ]
    );
    assert_eq!(
        check(&none, &[]).unwrap_err(),
        [
            "spec.nicSelector: no supported NIC on node worker-0 is selected by nicSelector; the node reported no SR-IOV PFs"
        ]
    );
    // Selected but not in the NIC list.
    let mut unknown = spec("", "", 2);
    unknown.nic_selector.pf_names = vec!["eth9".into()];
    assert_eq!(
        check(&unknown, &pfs[3..]).unwrap_err(),
        [
            "spec.nicSelector: no supported NIC on node worker-0 is selected by nicSelector; PFs on the node: eth9 (0000:00:09.0, 1234:5678); selected but not in the supported NIC list: eth9 (0000:00:09.0, 1234:5678) (add them to the supported-nic-ids list)"
        ]
    );
    // Externally managed limits.
    let mut ext_pfs = node_pfs();
    ext_pfs[2].num_vfs = 2;
    let mut ext = spec("15b3", "101d", 4);
    ext.externally_managed = Some(true);
    ext.mtu = Some(9000);
    ext.link_type = "ib".into();
    assert_eq!(
        check(&ext, &ext_pfs).unwrap_err(),
        [
            "spec.numVfs: numVfs 4 is more than the 2 VFs that exist on externally managed PF ens2f0 (0000:3b:00.0, 15b3:101d) on node worker-0; create the VFs first or lower numVfs",
            "spec.mtu: mtu 9000 is higher than the MTU 1500 of externally managed PF ens2f0 (0000:3b:00.0, 15b3:101d) on node worker-0; raise the PF MTU first or lower mtu",
            "spec.linkType: linkType ib differs from the link type \"ETH\" of externally managed PF ens2f0 (0000:3b:00.0, 15b3:101d) on node worker-0; the operator does not change it, so set linkType to eth or remove it",
        ]
    );
    // vDPA on Intel.
    let mut vdpa = spec("8086", "158b", 2);
    vdpa.nic_selector.pf_names = vec!["ens1f0".into()];
    vdpa.vdpa_type = "vhost".into();
    assert_eq!(
        check(&vdpa, &pfs).unwrap_err(),
        [
            "spec.vdpaType: vDPA is supported only on Mellanox/NVIDIA NICs (vendor 15b3), but PF ens1f0 (0000:86:00.0, 8086:158b) on node worker-0 is vendor 8086; remove vdpaType or select a Mellanox NIC"
        ]
    );
}

fn policy(
    name: &str,
    resource: &str,
    pf_names: &[&str],
    root_devices: &[&str],
) -> SriovNetworkNodePolicy {
    let mut s = spec("", "", 8);
    s.resource_name = resource.into();
    s.nic_selector.pf_names = pf_names.iter().map(|s| s.to_string()).collect();
    s.nic_selector.root_devices = root_devices.iter().map(|s| s.to_string()).collect();
    SriovNetworkNodePolicy::new(name, s)
}

fn cross(p: &SriovNetworkNodePolicy, others: &[SriovNetworkNodePolicy]) -> Vec<String> {
    check_against_policies(p, others)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn cross_policy_accepted() {
    let a = policy("a", "ra", &["ens1f0#0-3"], &[]);
    let others = vec![
        policy("b", "rb", &["ens1f0#4-7"], &[]),
        policy("c", "rc", &["ens1f1#0-7"], &[]),
        policy("d", "rd", &[], &["0000:86:00.1"]),
        // Whole-PF entry: no explicit range, resolved by priority in the merge.
        policy("e", "re", &["ens1f0"], &[]),
        // Same name = the old version of this policy.
        policy("a", "ra", &["ens1f0#0-3"], &["0000:86:00.0"]),
        // Same resource with the same excludeTopology/externallyManaged.
        policy("f", "ra", &["ens2f0"], &[]),
    ];
    assert_eq!(cross(&a, &others), Vec::<String>::new());
    let mut with_root = policy("g", "rg", &[], &["0000:af:00.0"]);
    with_root.spec.exclude_topology = Some(false);
    assert_eq!(cross(&with_root, &others), Vec::<String>::new());
}

#[test]
fn cross_policy_rejected() {
    let a = policy("a", "ra", &["ens1f0#0-3"], &["0000:86:00.0"]);
    let b = policy("b", "rb", &["ens1f0#3-5"], &[]);
    assert_eq!(
        cross(&a, std::slice::from_ref(&b)),
        [
            "spec.nicSelector.pfNames[0]: VF index range \"ens1f0#0-3\" overlaps \"ens1f0#3-5\" of policy b on PF ens1f0; give each policy its own VFs (e.g. ens1f0#6-6)"
        ]
    );
    let c = policy("c", "rc", &[], &["0000:86:00.0"]);
    assert_eq!(
        cross(&a, &[c]),
        [
            "spec.nicSelector.rootDevices[0]: root device 0000:86:00.0 is already selected by policy c; one PF can be split between policies only with pfNames ranges (<pf>#<first>-<last>)"
        ]
    );
    let mut ext = policy("d", "rd", &["ens1f0#6-7"], &[]);
    ext.spec.externally_managed = Some(true);
    assert_eq!(
        cross(&a, &[ext]),
        [
            "spec.nicSelector.pfNames[0]: externallyManaged is false but policy d selects the same PF ens1f0 with externallyManaged true; a PF is either managed by the operator or not, make both policies agree"
        ]
    );
    let mut topo = policy("e", "ra", &["ens2f0"], &[]);
    topo.spec.exclude_topology = Some(true);
    let mut ext_same_res = policy("f", "ra", &["ens3f0"], &[]);
    ext_same_res.spec.externally_managed = Some(true);
    assert_eq!(
        cross(&a, &[topo, ext_same_res]),
        [
            "spec.excludeTopology: excludeTopology false conflicts with policy e (excludeTopology true) for the same resource ra; set it the same in both",
            "spec.externallyManaged: externallyManaged false conflicts with policy f (externallyManaged true) for the same resource ra; set it the same in both",
        ]
    );
}
