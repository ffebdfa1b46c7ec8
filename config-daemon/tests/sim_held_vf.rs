//! The disruption rule "a VF netdev not in the host network namespace is
//! held by a pod", against a simulated node whose VF netdevs are real veths
//! (`--veth`, FUSE + netns lanes): one VF's netdev is moved into a network
//! namespace made by the test, as the CNI does for a pod. Plans that remove
//! or rebind that VF are disruptive and standalone apply refuses them;
//! plans that leave it alone are not and apply.

use std::path::Path;
use std::time::{Duration, Instant};

use sriov_config_daemon::apply::ApplyOptions;
use sriov_config_daemon::plan::Action;
use sriov_config_daemon::standalone::{RunReport, StandaloneConfig, run_once};
use sriov_host::HostRoot;
use sriov_host::netlink::{LinkOps, Netlink};
use sriov_host::netns::{NamedNetns, Netns};
use sriov_sim::check;
use sriov_sim::lanes::{self, Lane};
use sriov_sim::node::NodeSpec;
use sriov_sim::{SimNode, SimOptions};

const PF_PCI: &str = "0000:3b:00.0";

/// The test's world; dropped in order: the namespace (and the VF netdev in
/// it), then the simulated node, then the temp dir.
struct World {
    netns: Option<NamedNetns>,
    sim: SimNode,
    dir: tempfile::TempDir,
    pf: String,
}

impl Drop for World {
    fn drop(&mut self) {
        self.netns.take();
        self.sim.stop();
    }
}

impl World {
    fn start(test: &str) -> Option<World> {
        if !lanes::require(test, &[Lane::Fuse, Lane::Netns]) {
            return None;
        }
        // Unique interface names: veths live in this test's namespace.
        let pf = format!("h{:x}", std::process::id() & 0xff_ffff);
        let yaml = format!(
            "name: held\npfs:\n  - model: e810\n    address: \"{PF_PCI}\"\n    ifname: {pf}\n    vfs: 4\n"
        );
        let spec = NodeSpec::from_yaml(&yaml, "held").unwrap();
        let sim = SimNode::start(
            spec,
            SimOptions {
                veth: true,
                root: None,
            },
        )
        .expect("simulated node starts");
        Some(World {
            netns: None,
            sim,
            dir: tempfile::tempdir().unwrap(),
            pf,
        })
    }

    fn cfg(&self, policies: &str, dry_run: bool) -> StandaloneConfig {
        let path = self.dir.path().join("policies.yaml");
        std::fs::write(&path, policies).unwrap();
        StandaloneConfig {
            host_root: HostRoot::new(self.sim.root()),
            policies: path,
            node_name: "held".into(),
            node_labels: Default::default(),
            dry_run,
            device_plugin_config: None,
            state_dir: self.dir.path().join("state"),
            apply: ApplyOptions {
                vf_timeout: Duration::from_secs(10),
                bind_timeout: Duration::from_secs(5),
            },
            allow_disruption: false,
        }
    }

    fn run(&self, policies: &str, dry_run: bool) -> RunReport {
        run_once(&self.cfg(policies, dry_run)).expect("run")
    }

    fn vf(&self, i: u32) -> String {
        check::vf_address(self.sim.root(), PF_PCI, i).unwrap()
    }

    fn driver(&self, i: u32) -> Option<String> {
        check::driver(self.sim.root(), &self.vf(i))
    }

    fn netdevs(&self, i: u32) -> usize {
        std::fs::read_dir(
            self.sim
                .root()
                .join(format!("sys/bus/pci/devices/{}/net", self.vf(i))),
        )
        .map(|d| d.count())
        .unwrap_or(0)
    }

    /// Moves VF `i`'s netdev into a new namespace, as a CNI ADD does, and
    /// waits until the simulated sysfs shows it gone.
    fn give_to_pod(&mut self, i: u32) -> String {
        let name = format!("{}v{i}", self.pf);
        let ns = NamedNetns::create(&format!("cdheld{}", self.pf)).unwrap();
        Netlink::open()
            .unwrap()
            .set_netns(name.as_str().into(), ns.netns())
            .unwrap();
        self.netns = Some(ns);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.netdevs(i) != 0 {
            assert!(Instant::now() < deadline, "sysfs still shows {name}");
            std::thread::sleep(Duration::from_millis(50));
        }
        name
    }

    fn in_pod(&self, name: &str) -> bool {
        let ns = Netns::open(self.netns.as_ref().unwrap().path()).unwrap();
        Netlink::open_in(&ns).unwrap().link(name.into()).is_ok()
    }
}

/// Two groups on the PF: VFs 0-1 and 2-3, each netdevice or vfio-pci.
fn policies(pf: &str, num_vfs: u32, low: &str, high: Option<&str>) -> String {
    let mut out = format!(
        r#"apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {{name: low}}
spec:
  resourceName: low
  nodeSelector: {{}}
  numVfs: {num_vfs}
  nicSelector: {{pfNames: ["{pf}#0-1"]}}
  deviceType: {low}
"#
    );
    if let Some(high) = high {
        out.push_str(&format!(
            r#"---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {{name: high}}
spec:
  resourceName: high
  nodeSelector: {{}}
  numVfs: {num_vfs}
  nicSelector: {{pfNames: ["{pf}#2-3"]}}
  deviceType: {high}
"#
        ));
    }
    out
}

fn status(r: &RunReport) -> (String, String) {
    let st = r.state.status.as_ref().unwrap();
    (st.sync_status.clone(), st.last_sync_error.clone())
}

#[test]
fn a_vf_whose_netdev_is_in_a_pod_namespace_makes_removing_or_rebinding_it_disruptive() {
    let Some(mut w) = World::start(
        "a_vf_whose_netdev_is_in_a_pod_namespace_makes_removing_or_rebinding_it_disruptive",
    ) else {
        return;
    };
    let pf = w.pf.clone();
    let both_netdev = policies(&pf, 4, "netdevice", Some("netdevice"));
    let r = w.run(&both_netdev, false);
    assert_eq!(status(&r), ("Succeeded".into(), String::new()));
    assert!(w.run(&both_netdev, true).plan.is_empty());

    let name = w.give_to_pod(3);
    let held = w.vf(3);
    // Nothing planned touches VF 3: not disruptive (the held VF alone
    // changes nothing).
    let r = w.run(&both_netdev, true);
    assert!(r.plan.is_empty(), "{}", r.plan.render());

    // Rebinding VFs 2-3 to vfio-pci rebinds the held VF: disruptive.
    let high_vfio = policies(&pf, 4, "netdevice", Some("vfio-pci"));
    let r = w.run(&high_vfio, true);
    assert!(r.plan.disruptive(), "{}", r.plan.render());
    let step = r.plan.pfs[0]
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::BindVfs { first: 2, .. }))
        .unwrap();
    assert!(step.disruptive);
    assert_eq!(step.held_vfs, std::slice::from_ref(&held));
    let text = r.plan.render();
    assert!(
        text.contains(&format!("DISRUPTIVE (VFs held by pods: {held})")),
        "{text}"
    );
    // Standalone apply refuses the PF, names the VF and what to do, and
    // changes nothing.
    let r = w.run(&high_vfio, false);
    let (s, e) = status(&r);
    assert_eq!(s, "Failed");
    assert!(e.contains(&held) && e.contains("--allow-disruption"), "{e}");
    assert_eq!(w.driver(2).as_deref(), Some("iavf"));
    assert_eq!(w.driver(3).as_deref(), Some("iavf"));
    assert!(w.in_pod(&name));

    // Removing VFs (4 -> 2) removes the held VF: disruptive.
    let fewer = policies(&pf, 2, "netdevice", None);
    let r = w.run(&fewer, true);
    let step = r.plan.pfs[0]
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::SetNumVfs { from: 4, to: 2 }))
        .unwrap_or_else(|| panic!("{}", r.plan.render()));
    assert!(step.disruptive);
    assert_eq!(step.held_vfs, std::slice::from_ref(&held));

    // Rebinding only VFs 0-1 leaves the held VF alone: not disruptive, and
    // it applies.
    let low_vfio = policies(&pf, 4, "vfio-pci", Some("netdevice"));
    let r = w.run(&low_vfio, true);
    assert!(
        !r.plan.is_empty() && !r.plan.disruptive(),
        "{}",
        r.plan.render()
    );
    let r = w.run(&low_vfio, false);
    assert_eq!(status(&r), ("Succeeded".into(), String::new()));
    assert_eq!(w.driver(0).as_deref(), Some("vfio-pci"));
    assert_eq!(w.driver(1).as_deref(), Some("vfio-pci"));
    assert_eq!(w.driver(3).as_deref(), Some("iavf"));
    assert!(w.in_pod(&name), "the pod's VF netdev stays in the pod");
    assert!(!Path::new(&format!("/sys/class/net/{name}")).exists());
}
