//! PF link up and VF admin MACs: planned from what netlink shows
//! (`RecordingLinkOps`) and the node's sysfs (a static simulated tree, no
//! root needed), applied through `LinkOps`, idempotent, and skipped with a
//! reason when the PF is not visible over netlink.

use std::collections::BTreeMap;
use std::time::Duration;

use nix::errno::Errno;
use sriov_config_daemon::apply::{ApplyEnv, ApplyOptions, WaitMode, apply_plan_in_env};
use sriov_config_daemon::discover;
use sriov_config_daemon::discover::PfLink;
use sriov_config_daemon::journal::Journal;
use sriov_config_daemon::plan::{Action, DEVICE_INFO_DIR, Plan, plan_node_given_links};
use sriov_crds::{Interface, VfGroup};
use sriov_host::netlink::{Call, Failure, LinkOps, MacAddr, RecordingLinkOps, VfSetting};
use sriov_host::{HostRoot, Node, PciAddress};
use sriov_sim::node::NodeSpec;

/// `mixed`: ens1f0 (0000:3b:00.0) has 4 VFs on iavf with netdevs.
const PF: &str = "0000:3b:00.0";

struct World {
    dir: tempfile::TempDir,
    node: Node,
    fake: RecordingLinkOps,
}

impl World {
    /// The static tree of `mixed`, and a fake netlink that shows ens1f0 as
    /// the same device (ifindex and MAC) with its 4 VFs, down, no admin MACs.
    fn new() -> World {
        World::listing(4)
    }

    /// [`new`](Self::new) with a PF that lists `listed` VFs over netlink.
    fn listing(listed: u32) -> World {
        let dir = tempfile::tempdir().unwrap();
        sriov_sim::kernel::write_static_tree(dir.path(), &NodeSpec::mixed()).unwrap();
        let root = HostRoot::new(dir.path());
        let node = sriov_host::scan(&root).unwrap();
        let fake = RecordingLinkOps::new();
        let pf = node.get(&PciAddress::parse(PF).unwrap()).unwrap();
        let nd = pf.primary_netdev().unwrap().clone();
        // The fake numbers links in order (lo is 1): pad up to the sysfs ifindex.
        let want = nd.ifindex.unwrap();
        let next = || fake.all_links().iter().map(|l| l.link.index).max().unwrap() + 1;
        assert!(next() <= want, "ifindex {want} already taken");
        while next() < want {
            fake.add_link(&format!("pad{}", next()), None);
        }
        let mac: MacAddr = nd.mac.as_deref().unwrap().parse().unwrap();
        let idx = fake.add_pf(&nd.name, mac, listed);
        assert_eq!(idx, want);
        World { dir, node, fake }
    }

    fn root(&self) -> HostRoot {
        HostRoot::new(self.dir.path())
    }

    fn rescan(&mut self) {
        self.node = sriov_host::scan(&self.root()).unwrap();
    }

    fn plan(&self, spec: &[Interface]) -> Plan {
        let links = discover::pf_links(&self.fake, &self.node, spec);
        plan_node_given_links(&self.root(), spec, &self.node, &BTreeMap::new(), &links)
    }

    fn vf_addr(&self, i: u32) -> String {
        sriov_sim::check::vf_address(self.dir.path(), PF, i).unwrap()
    }

    fn vf_mac(&self, i: u32) -> MacAddr {
        let vf = self.node.get(&PciAddress::parse(&self.vf_addr(i)).unwrap());
        vf.unwrap()
            .primary_netdev()
            .unwrap()
            .mac
            .as_deref()
            .unwrap()
            .parse()
            .unwrap()
    }

    fn apply(&self, plan: &Plan) -> Vec<String> {
        let journal = Journal::in_memory();
        let env = ApplyEnv {
            links: Some(&self.fake),
            waits: WaitMode::Poll,
        };
        let opts = ApplyOptions {
            vf_timeout: Duration::from_secs(1),
            bind_timeout: Duration::from_millis(200),
        };
        apply_plan_in_env(&self.root(), plan, &journal, &opts, &env)
            .into_iter()
            .filter_map(|o| o.result.err().map(|e| e.to_string()))
            .collect()
    }
}

fn group(range: &str, device_type: &str) -> VfGroup {
    VfGroup {
        resource_name: format!("r{}", range.replace('-', "_")),
        device_type: device_type.into(),
        vf_range: range.into(),
        policy_name: format!("p{}", range.replace('-', "_")),
        ..Default::default()
    }
}

fn iface(num_vfs: i32, groups: Vec<VfGroup>) -> Interface {
    Interface {
        pci_address: PF.into(),
        name: "ens1f0".into(),
        num_vfs,
        vf_groups: groups,
        ..Default::default()
    }
}

fn actions(plan: &Plan) -> Vec<Action> {
    plan.pfs
        .iter()
        .flat_map(|p| p.steps.iter().map(|s| s.action.clone()))
        .collect()
}

#[test]
fn pf_up_and_admin_macs_are_planned_applied_and_then_nothing_is_left() {
    let mut w = World::new();
    let spec = [iface(4, vec![group("0-3", "netdevice")])];
    let plan = w.plan(&spec);
    let vfs: Vec<String> = (0..4).map(|i| w.vf_addr(i)).collect();
    assert_eq!(
        actions(&plan),
        [
            Action::SetPfUp {
                ifname: "ens1f0".into()
            },
            Action::SetVfAdminMacs {
                ifname: "ens1f0".into(),
                first: 0,
                last: 3,
                vfs: vfs.clone(),
                wait_netdevs: false,
            },
        ]
    );
    assert!(!plan.disruptive());
    let text = plan.render();
    assert!(text.contains("  - set ens1f0 up: non-disruptive"), "{text}");
    assert!(
        text.contains("set the admin MAC of VFs 0-3 to their netdev's MAC (4 to set)"),
        "{text}"
    );

    w.fake.clear_calls();
    assert_eq!(w.apply(&plan), Vec::<String>::new());
    let mut want = vec![Call::SetUp {
        link: "ens1f0".into(),
        up: true,
    }];
    for i in 0..4 {
        want.push(Call::SetVf {
            pf: "ens1f0".into(),
            vf: i,
            settings: vec![VfSetting::Mac(w.vf_mac(i))],
        });
    }
    assert_eq!(w.fake.changes(), want);
    for i in 0..4 {
        assert_eq!(w.fake.vf_state("ens1f0", i).unwrap().mac, w.vf_mac(i));
    }

    // Idempotent: the next plan has nothing, and applying it changes nothing.
    w.rescan();
    let again = w.plan(&spec);
    assert!(again.is_empty(), "{}", again.render());
    w.fake.clear_calls();
    assert_eq!(w.apply(&again), Vec::<String>::new());
    assert_eq!(w.fake.changes(), []);
}

#[test]
fn only_vfs_without_admin_mac_and_not_held_are_set_and_vfio_vfs_before_their_bind() {
    let w = World::new();
    // VF 1 has an admin MAC already (e.g. from the CNI); VF 0 is held by a
    // pod (device-info file).
    let set: MacAddr = "02:00:00:00:01:01".parse().unwrap();
    w.fake.set_vf_mac("ens1f0".into(), 1, set).unwrap();
    let devinfo = w.dir.path().join(DEVICE_INFO_DIR);
    std::fs::create_dir_all(&devinfo).unwrap();
    std::fs::write(
        devinfo.join(format!("openshift.io-net-{}-device.json", w.vf_addr(0))),
        "{}",
    )
    .unwrap();
    // VFs 0-1 stay netdevice, 2-3 go to vfio-pci.
    let spec = [iface(
        4,
        vec![group("0-1", "netdevice"), group("2-3", "vfio-pci")],
    )];
    let got = actions(&w.plan(&spec));
    // VFs 0-1: one held, one already set: no step for that group.
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(matches!(&got[0], Action::SetPfUp { .. }), "{got:?}");
    // The vfio-pci group: MACs from the kernel netdevs first, then the bind.
    assert_eq!(
        got[1],
        Action::SetVfAdminMacs {
            ifname: "ens1f0".into(),
            first: 2,
            last: 3,
            vfs: vec![w.vf_addr(2), w.vf_addr(3)],
            wait_netdevs: false,
        },
        "{got:?}"
    );
    assert!(
        matches!(
            &got[2],
            Action::BindVfs {
                first: 2,
                last: 3,
                ..
            }
        ),
        "{got:?}"
    );
}

#[test]
fn a_pf_already_up_with_stable_macs_and_a_pf_without_vfs_plan_nothing() {
    let w = World::new();
    w.fake.set_up("ens1f0".into(), true).unwrap();
    for i in 0..4 {
        w.fake.set_vf_mac("ens1f0".into(), i, w.vf_mac(i)).unwrap();
    }
    let plan = w.plan(&[iface(4, vec![group("0-3", "netdevice")])]);
    assert!(plan.is_empty(), "{}", plan.render());

    // numVfs 0: the PF is not brought up for the spec.
    let w = World::new();
    let plan = w.plan(&[iface(0, vec![])]);
    assert!(
        !actions(&plan)
            .iter()
            .any(|a| matches!(a, Action::SetPfUp { .. })),
        "{}",
        plan.render()
    );
}

#[test]
fn new_vfs_get_their_macs_after_creation_with_a_bounded_wait_for_netdevs() {
    let w = World::new();
    // 4 -> 6 VFs: the MAC step covers every VF of the group, waiting for
    // netdevs of VFs that are created by the numvfs step.
    let plan = w.plan(&[iface(6, vec![group("0-5", "netdevice")])]);
    let got = actions(&plan);
    assert!(
        matches!(got[1], Action::SetNumVfs { from: 4, to: 6 }),
        "{got:?}"
    );
    assert_eq!(
        got.last().unwrap(),
        &Action::SetVfAdminMacs {
            ifname: "ens1f0".into(),
            first: 0,
            last: 5,
            vfs: (0..6).map(|i| format!("VF {i}")).collect(),
            wait_netdevs: true,
        }
    );
}

#[test]
fn a_pf_not_visible_over_netlink_skips_link_steps_with_the_reason() {
    let w = World::new();
    let spec = [iface(4, vec![group("0-3", "netdevice")])];
    // No such link in the namespace (a simulated node's PF).
    let empty = RecordingLinkOps::new();
    let links = discover::pf_links(&empty, &w.node, &spec);
    match links.get(PF) {
        Some(PfLink::NotVisible(why)) => {
            assert!(why.contains("ens1f0 is not visible over netlink"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    let plan = plan_node_given_links(&w.root(), &spec, &w.node, &BTreeMap::new(), &links);
    assert!(plan.is_empty(), "{}", plan.render());
    assert!(plan.pfs[0].skipped[0].contains("not visible over netlink"));

    // A link of that name that is another device (other MAC): not touched.
    let other = RecordingLinkOps::new();
    other.add_pf("ens1f0", "02:11:22:33:44:55".parse().unwrap(), 4);
    let links = discover::pf_links(&other, &w.node, &spec);
    match links.get(PF) {
        Some(PfLink::NotVisible(why)) => {
            assert!(why.contains("is not the PF's in sysfs"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    // Netlink unavailable altogether: skipped with that reason, and a plan
    // with other steps shows it.
    let links = discover::pf_links_unavailable(&spec, "netlink is not available: EPERM");
    let plan = plan_node_given_links(
        &w.root(),
        &[iface(4, vec![group("0-3", "vfio-pci")])],
        &w.node,
        &BTreeMap::new(),
        &links,
    );
    let text = plan.render();
    assert!(
        text.contains("(skipped: PF link up and VF admin MACs: netlink is not available: EPERM)"),
        "{text}"
    );
    assert!(text.contains("bind VFs 0-3 to vfio-pci"), "{text}");
}

#[test]
fn a_netlink_failure_names_the_pf_the_step_and_the_errno() {
    let w = World::new();
    w.fake.fail(Failure::vf_setting(Errno::EOPNOTSUPP, |s| {
        matches!(s, VfSetting::Mac(_))
    }));
    let plan = w.plan(&[iface(4, vec![group("0-3", "netdevice")])]);
    let errors = w.apply(&plan);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert!(e.contains("PF ens1f0 (0000:3b:00.0)"), "{e}");
    assert!(e.contains("set the admin MAC of VFs 0-3"), "{e}");
    assert!(e.contains("EOPNOTSUPP"), "{e}");
    // The PF was set up before (its own step).
    assert!(w.fake.find("ens1f0").unwrap().link.admin_up);
}

#[test]
fn without_netlink_the_link_steps_fail_saying_so() {
    let w = World::new();
    let plan = w.plan(&[iface(4, vec![group("0-3", "netdevice")])]);
    let journal = Journal::in_memory();
    let out = apply_plan_in_env(
        &w.root(),
        &plan,
        &journal,
        &ApplyOptions::default(),
        &ApplyEnv {
            links: None,
            waits: WaitMode::Poll,
        },
    );
    let e = out[0].result.as_ref().unwrap_err().to_string();
    assert!(e.contains("set ens1f0 up"), "{e}");
    assert!(e.contains("netlink is not available"), "{e}");
}

/// A PF netdev that lists no VFs over netlink while sysfs shows them (the
/// simulator's veth-backed PF; a driver without ndo_get_vf_config): the
/// admin MAC step sets nothing and does not fail the PF.
#[test]
fn admin_macs_are_skipped_when_the_pf_lists_no_vfs() {
    let w = World::new();
    let spec = [iface(4, vec![group("0-3", "netdevice")])];
    let plan = w.plan(&spec);
    assert!(
        actions(&plan)
            .iter()
            .any(|a| matches!(a, Action::SetVfAdminMacs { .. })),
        "{:?}",
        actions(&plan)
    );
    let bare = World::listing(0);
    let errors = bare.apply(&plan);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        !bare
            .fake
            .changes()
            .iter()
            .any(|c| matches!(c, Call::SetVf { .. })),
        "{:?}",
        bare.fake.changes()
    );
}
