//! VFs of DRA claims, as the DRA driver's checkpoint records them: the
//! config daemon counts them as held by pods (a VF count change is
//! disruptive), and the driver a claim's `VfConfig` gave a VF is the
//! claim's while it holds the VF, not drift to repair. The checkpoint is written by the DRA
//! driver's own `Preparer`, which rebinds the VF in the simulated kernel.

use std::collections::BTreeMap;

use sriov_config_daemon::discover::PfLinks;
use sriov_config_daemon::plan::{Action, DRA_CHECKPOINT, Plan, Step, plan_node_given_links};
use sriov_crds::{Interface, VfGroup};
use sriov_dra_driver::attributes::device_name;
use sriov_dra_driver::config::VfConfig;
use sriov_dra_driver::prepare::{AllocatedDevice, Preparer};
use sriov_host::{HostRoot, PciAddress};
use sriov_sim::node::NodeSpec;

/// `mixed`: ens1f0 (0000:3b:00.0) has 4 VFs on iavf.
const PF: &str = "0000:3b:00.0";

fn spec(num_vfs: i32) -> Vec<Interface> {
    vec![Interface {
        pci_address: PF.into(),
        name: "ens1f0".into(),
        num_vfs,
        vf_groups: vec![VfGroup {
            resource_name: "dra_vfs".into(),
            device_type: "netdevice".into(),
            vf_range: format!("0-{}", num_vfs - 1),
            policy_name: "dra".into(),
            ..Default::default()
        }],
        ..Default::default()
    }]
}

fn plan(root: &HostRoot, num_vfs: i32) -> Plan {
    let node = sriov_host::scan(root).unwrap();
    plan_node_given_links(
        root,
        &spec(num_vfs),
        &node,
        &BTreeMap::new(),
        &PfLinks::new(),
    )
}

fn binds(plan: &Plan) -> Vec<Vec<String>> {
    plan.pfs
        .iter()
        .flat_map(|p| &p.steps)
        .filter_map(|s| match &s.action {
            Action::BindVfs { vfs, .. } => Some(vfs.clone()),
            _ => None,
        })
        .collect()
}

/// The plan's VF count step.
fn num_vfs_step(plan: &Plan) -> &Step {
    plan.pfs
        .iter()
        .flat_map(|p| &p.steps)
        .find(|s| matches!(s.action, Action::SetNumVfs { .. }))
        .expect("a VF count step")
}

fn driver_of(root: &HostRoot, vf: &str) -> Option<String> {
    sriov_host::PciFunction::read(root, &PciAddress::parse(vf).unwrap())
        .unwrap()
        .driver
}

#[test]
fn a_vf_a_dra_claim_holds_is_held_and_its_binding_is_not_drift() {
    let tmp = tempfile::tempdir().unwrap();
    let root = sriov_sim::live::live_root(tmp.path(), &NodeSpec::mixed()).unwrap();
    let vf = sriov_sim::check::vf_address(tmp.path(), PF, 1).unwrap();
    assert_eq!(driver_of(&root, &vf).as_deref(), Some("iavf"));
    assert!(binds(&plan(&root, 4)).is_empty(), "nothing to do before");

    // The DRA driver prepares a claim whose VfConfig asks for vfio-pci,
    // with its checkpoint where the daemon looks (under the host root).
    let plugin_dir = tmp
        .path()
        .join(DRA_CHECKPOINT)
        .parent()
        .unwrap()
        .to_path_buf();
    let mut p = Preparer::open(root.clone(), "n", &plugin_dir, &tmp.path().join("cdi")).unwrap();
    let address = PciAddress::parse(&vf).unwrap();
    p.prepare(
        "uid-1",
        "ns",
        "vf-claim",
        &[AllocatedDevice {
            request: "vf".into(),
            pool: "n".into(),
            device: device_name(&address),
            config: VfConfig {
                driver: "vfio-pci".into(),
                ..Default::default()
            },
        }],
    )
    .unwrap();
    assert_eq!(driver_of(&root, &vf).as_deref(), Some("vfio-pci"));

    // The daemon leaves the claim's binding alone and says why.
    let with_claim = plan(&root, 4);
    assert!(binds(&with_claim).is_empty(), "{with_claim:?}");
    let skipped: Vec<&String> = with_claim.pfs.iter().flat_map(|p| &p.skipped).collect();
    assert!(
        skipped.iter().any(|s| s.contains(&vf)
            && s.contains("vfio-pci")
            && s.contains("DRA claim ns/vf-claim")),
        "{skipped:?}"
    );
    // Fewer VFs would take the claim's VF away: disruptive, naming it.
    let shrink = plan(&root, 2);
    let step = num_vfs_step(&shrink);
    assert!(step.disruptive);
    assert_eq!(step.held_vfs, vec![vf.clone()]);

    // Without the checkpoint (no DRA driver on the node), the same binding
    // is drift: the daemon would bind the VF back to iavf.
    let saved = std::fs::read(tmp.path().join(DRA_CHECKPOINT)).unwrap();
    std::fs::remove_file(tmp.path().join(DRA_CHECKPOINT)).unwrap();
    assert_eq!(binds(&plan(&root, 4)), vec![vec![vf.clone()]]);
    std::fs::write(tmp.path().join(DRA_CHECKPOINT), saved).unwrap();

    // A VF of a claim without a VfConfig driver that lost its driver (the
    // DRA driver reports it Unhealthy): not rebound under the pod either.
    let vf2 = sriov_sim::check::vf_address(tmp.path(), PF, 2).unwrap();
    let address2 = PciAddress::parse(&vf2).unwrap();
    p.prepare(
        "uid-2",
        "ns",
        "plain",
        &[AllocatedDevice {
            request: "vf".into(),
            pool: "n".into(),
            device: device_name(&address2),
            config: VfConfig::default(),
        }],
    )
    .unwrap();
    sriov_host::driver::unbind(&root, &address2).unwrap();
    assert_eq!(driver_of(&root, &vf2), None);
    assert!(binds(&plan(&root, 4)).is_empty());
    p.unprepare("uid-2").unwrap();
    assert_eq!(
        binds(&plan(&root, 4)),
        vec![vec![vf2.clone()]],
        "released: an unbound VF is drift again"
    );

    // The claim released: the DRA driver restores iavf, nothing is held.
    p.unprepare("uid-1").unwrap();
    assert_eq!(driver_of(&root, &vf).as_deref(), Some("iavf"));
    sriov_host::driver::bind_default(&root, &address2, std::time::Duration::from_secs(5)).unwrap();
    let after = plan(&root, 2);
    let step = num_vfs_step(&after);
    assert!(!step.disruptive, "{step:?}");
}

#[test]
fn an_unreadable_checkpoint_holds_nothing_and_plans_as_before() {
    let tmp = tempfile::tempdir().unwrap();
    let root = sriov_sim::live::live_root(tmp.path(), &NodeSpec::mixed()).unwrap();
    let path = tmp.path().join(DRA_CHECKPOINT);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"{not json").unwrap();
    let p = plan(&root, 2);
    let step = num_vfs_step(&p);
    assert!(!step.disruptive);
}
