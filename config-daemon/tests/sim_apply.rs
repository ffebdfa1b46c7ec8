//! The standalone apply against simulated nodes (FUSE lane).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sriov_config_daemon::apply::ApplyOptions;
use sriov_config_daemon::plan::Action;
use sriov_config_daemon::policies::parse_node_labels;
use sriov_config_daemon::standalone::{RunReport, StandaloneConfig, run_once};
use sriov_host::HostRoot;
use sriov_sim::check;
use sriov_sim::lanes::{self, Lane};
use sriov_sim::{SimNode, SimOptions};

struct Env {
    sim: SimNode,
    dir: tempfile::TempDir,
}

impl Env {
    fn start(node: &str) -> Env {
        let sim = SimNode::start(node, SimOptions::default()).expect("sim starts");
        Env {
            sim,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> &Path {
        self.sim.root()
    }

    fn cfg(&self, policies: &str) -> StandaloneConfig {
        let path = self.dir.path().join("policies.yaml");
        std::fs::write(&path, policies).unwrap();
        StandaloneConfig {
            host_root: HostRoot::new(self.root()),
            policies: path,
            node_name: "test-node".into(),
            node_labels: parse_node_labels("sriov=true").unwrap(),
            dry_run: false,
            device_plugin_config: Some(self.dir.path().join("dp/config.json")),
            state_dir: self.dir.path().join("state"),
            apply: ApplyOptions {
                vf_timeout: Duration::from_secs(10),
                bind_timeout: Duration::from_secs(5),
            },
            allow_disruption: false,
        }
    }

    fn run(&self, policies: &str) -> RunReport {
        run_once(&self.cfg(policies)).expect("run")
    }

    fn sys(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root().join("sys").join(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
            .trim()
            .to_string()
    }

    fn numvfs(&self, pf: &str) -> u32 {
        check::numvfs(self.root(), pf)
    }

    fn vf_addr(&self, pf: &str, i: u32) -> String {
        check::vf_address(self.root(), pf, i).unwrap()
    }

    fn vf_driver(&self, pf: &str, i: u32) -> Option<String> {
        check::driver(self.root(), &self.vf_addr(pf, i))
    }
}

const PF: &str = "0000:3b:00.1";

/// ens1f1: VFs 0..split-1 netdevice, split..n-1 as `second` driver type.
fn policies(n: u32, split: u32, second: &str, mtu: Option<u32>) -> String {
    let mtu = mtu.map(|m| format!("  mtu: {m}\n")).unwrap_or_default();
    format!(
        r#"apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {{name: net}}
spec:
  resourceName: net
  nodeSelector: {{sriov: "true"}}
  numVfs: {n}
{mtu}  nicSelector: {{vendor: "8086", pfNames: ["ens1f1#0-{a}"]}}
  deviceType: netdevice
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {{name: other}}
spec:
  resourceName: other
  nodeSelector: {{sriov: "true"}}
  numVfs: {n}
  nicSelector: {{vendor: "8086", pfNames: ["ens1f1#{split}-{b}"]}}
  deviceType: {second}
"#,
        a = split - 1,
        b = n - 1
    )
}

fn has_numvfs_step(r: &RunReport) -> bool {
    r.plan.pfs.iter().any(|p| {
        p.steps
            .iter()
            .any(|s| matches!(s.action, Action::SetNumVfs { .. }))
    })
}

fn sync_status(r: &RunReport) -> (String, String) {
    let st = r.state.status.as_ref().unwrap();
    (st.sync_status.clone(), st.last_sync_error.clone())
}

#[test]
fn zero_to_n_then_n_to_m_and_a_second_run_writes_nothing() {
    if !lanes::require(
        "zero_to_n_then_n_to_m_and_a_second_run_writes_nothing",
        &[Lane::Fuse],
    ) {
        return;
    }
    let env = Env::start("mixed");
    let p8 = policies(8, 4, "vfio-pci", None);
    let r = env.run(&p8);
    assert_eq!(sync_status(&r), ("Succeeded".into(), String::new()));
    assert_eq!(env.numvfs(PF), 8);
    assert_eq!(env.vf_driver(PF, 0).as_deref(), Some("iavf"));
    assert_eq!(env.vf_driver(PF, 7).as_deref(), Some("vfio-pci"));
    assert!(r.device_plugin_config_written);
    let st = r.state.status.as_ref().unwrap();
    let iface = st.interfaces.iter().find(|i| i.pci_address == PF).unwrap();
    assert_eq!(iface.num_vfs, 8);
    assert_eq!(iface.vfs.len(), 8);
    // Untouched PFs keep what they had (ens1f0 starts with 4 VFs).
    assert_eq!(env.numvfs("0000:3b:00.0"), 4);

    // Idempotent: nothing planned, no journal write, no config write.
    let journal_before = std::fs::read(env.dir.path().join("state/journal.json")).unwrap();
    let r2 = env.run(&p8);
    assert!(r2.plan.is_empty(), "{}", r2.plan.render());
    assert!(!r2.device_plugin_config_written);
    assert_eq!(r2.outcomes.len(), 0);
    assert_eq!(
        std::fs::read(env.dir.path().join("state/journal.json")).unwrap(),
        journal_before
    );

    // N -> M.
    let r3 = env.run(&policies(6, 2, "vfio-pci", None));
    assert_eq!(sync_status(&r3).0, "Succeeded");
    assert_eq!(env.numvfs(PF), 6);
    assert_eq!(env.vf_driver(PF, 1).as_deref(), Some("iavf"));
    assert_eq!(env.vf_driver(PF, 2).as_deref(), Some("vfio-pci"));
    assert!(env.run(&policies(6, 2, "vfio-pci", None)).plan.is_empty());
}

#[test]
fn driver_switch_both_ways_keeps_the_vfs() {
    if !lanes::require("driver_switch_both_ways_keeps_the_vfs", &[Lane::Fuse]) {
        return;
    }
    let env = Env::start("mixed");
    env.run(&policies(8, 4, "vfio-pci", None));
    let addrs: Vec<String> = (0..8).map(|i| env.vf_addr(PF, i)).collect();
    // vfio-pci -> netdevice: no numvfs change, VFs stay.
    let r = env.run(&policies(8, 4, "netdevice", None));
    assert_eq!(sync_status(&r).0, "Succeeded");
    assert!(!has_numvfs_step(&r), "{}", r.plan.render());
    for i in 4..8 {
        assert_eq!(env.vf_driver(PF, i).as_deref(), Some("iavf"), "VF {i}");
        let ov = env.sys(&format!(
            "bus/pci/devices/{}/driver_override",
            addrs[i as usize]
        ));
        assert_eq!(ov, "(null)");
    }
    // No loop: the next run has nothing to do.
    assert!(env.run(&policies(8, 4, "netdevice", None)).plan.is_empty());
    // netdevice -> vfio-pci.
    let r = env.run(&policies(8, 4, "vfio-pci", None));
    assert!(!has_numvfs_step(&r));
    for i in 4..8 {
        assert_eq!(env.vf_driver(PF, i).as_deref(), Some("vfio-pci"));
    }
    assert!(env.run(&policies(8, 4, "vfio-pci", None)).plan.is_empty());
    let after: Vec<String> = (0..8).map(|i| env.vf_addr(PF, i)).collect();
    assert_eq!(addrs, after);
}

#[test]
fn mtu_raises_the_pf_and_sets_the_vfs_without_touching_the_count() {
    if !lanes::require(
        "mtu_raises_the_pf_and_sets_the_vfs_without_touching_the_count",
        &[Lane::Fuse],
    ) {
        return;
    }
    let env = Env::start("mixed");
    env.run(&policies(8, 4, "vfio-pci", None));
    let r = env.run(&policies(8, 4, "vfio-pci", Some(9000)));
    assert_eq!(sync_status(&r).0, "Succeeded");
    assert!(!has_numvfs_step(&r));
    assert_eq!(env.sys("class/net/ens1f1/mtu"), "9000");
    for i in 0..4 {
        assert_eq!(env.sys(&format!("class/net/ens1f1v{i}/mtu")), "9000");
    }
    assert!(
        env.run(&policies(8, 4, "vfio-pci", Some(9000)))
            .plan
            .is_empty()
    );
    // An MTU the driver refuses: Failed, naming the PF, the step and the errno.
    let r = env.run(&policies(8, 4, "vfio-pci", Some(20000)));
    let (s, e) = sync_status(&r);
    assert_eq!(s, "Failed");
    assert!(e.contains("ens1f1 (0000:3b:00.1)"), "{e}");
    assert!(
        e.contains("set the MTU of ens1f1 from 9000 to 20000"),
        "{e}"
    );
    assert!(e.contains("EINVAL"), "{e}");
}

#[test]
fn externally_managed_pfs_are_verified_not_changed() {
    if !lanes::require(
        "externally_managed_pfs_are_verified_not_changed",
        &[Lane::Fuse],
    ) {
        return;
    }
    let env = Env::start("mixed");
    let ext = |n: u32| {
        format!(
            r#"apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {{name: ext}}
spec:
  resourceName: ext
  nodeSelector: {{}}
  numVfs: {n}
  nicSelector: {{pfNames: [ens1f0]}}
  externallyManaged: true
"#
        )
    };
    // ens1f0 has 4 VFs: asking for 8 fails and changes nothing.
    let r = env.run(&ext(8));
    let (s, e) = sync_status(&r);
    assert_eq!(s, "Failed");
    assert!(e.contains("ens1f0 (0000:3b:00.0)"), "{e}");
    assert!(
        e.contains("externallyManaged: the spec needs 8 VFs but the PF has 4"),
        "{e}"
    );
    assert_eq!(env.numvfs("0000:3b:00.0"), 4);
    // Asking for 2 is fine and writes nothing.
    let r = env.run(&ext(2));
    assert_eq!(sync_status(&r).0, "Succeeded");
    assert!(r.plan.is_empty(), "{}", r.plan.render());
    assert_eq!(env.numvfs("0000:3b:00.0"), 4);
    assert!(
        !env.dir.path().join("state/journal.json").exists()
            || !std::fs::read_to_string(env.dir.path().join("state/journal.json"))
                .unwrap()
                .contains("0000:3b:00.0")
    );
}

#[test]
fn a_pf_that_leaves_the_spec_is_reset_and_untouched_pfs_are_left_alone() {
    if !lanes::require(
        "a_pf_that_leaves_the_spec_is_reset_and_untouched_pfs_are_left_alone",
        &[Lane::Fuse],
    ) {
        return;
    }
    let env = Env::start("mixed");
    env.run(&policies(8, 4, "vfio-pci", Some(9000)));
    assert_eq!(env.numvfs(PF), 8);
    // Only a policy for ens2f0 now: ens1f1 is reset, ens1f0 (never touched) keeps its 4 VFs.
    let only_x710 = r#"apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {name: x}
spec:
  resourceName: x
  nodeSelector: {}
  numVfs: 2
  nicSelector: {pfNames: [ens2f0]}
"#;
    let r = env.run(only_x710);
    assert_eq!(sync_status(&r).0, "Succeeded", "{}", r.error_text());
    assert_eq!(env.numvfs(PF), 0);
    assert_eq!(env.sys("class/net/ens1f1/mtu"), "1500");
    assert_eq!(env.numvfs("0000:3b:00.0"), 4);
    assert_eq!(env.numvfs("0000:5e:00.0"), 2);
    let journal = std::fs::read_to_string(env.dir.path().join("state/journal.json")).unwrap();
    assert!(!journal.contains(PF), "{journal}");
    assert!(env.run(only_x710).plan.is_empty());
}

const FAULTY: &str = r#"
name: faulty
pfs:
  - {model: e810, address: "0000:3b:00.0", ifname: ens1f0, faults: {numvfs_enomem: true}}
  - {model: e810, address: "0000:3b:00.1", ifname: ens1f1, faults: {vfs_late_ms: 1500}}
  - {model: e810, address: "0000:5e:00.0", ifname: ens2f0, faults: {numvfs_delay_ms: 300}}
"#;

const HEALTHY: &str = r#"
name: healthy
pfs:
  - {model: e810, address: "0000:3b:00.0", ifname: ens1f0}
  - {model: e810, address: "0000:3b:00.1", ifname: ens1f1}
  - {model: e810, address: "0000:5e:00.0", ifname: ens2f0}
"#;

const ALL4: &str = r#"apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {name: all}
spec:
  resourceName: all
  nodeSelector: {}
  numVfs: 4
  nicSelector: {vendor: "8086", deviceID: "159b"}
"#;

fn write_node(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, yaml).unwrap();
    p
}

#[test]
fn faults_give_failed_with_the_kernel_error_then_recover() {
    if !lanes::require(
        "faults_give_failed_with_the_kernel_error_then_recover",
        &[Lane::Fuse],
    ) {
        return;
    }
    let specs = tempfile::tempdir().unwrap();
    let faulty = write_node(specs.path(), "faulty.yaml", FAULTY);
    let healthy = write_node(specs.path(), "healthy.yaml", HEALTHY);
    let mut env = Env::start(faulty.to_str().unwrap());
    let mut cfg = env.cfg(ALL4);
    cfg.apply.vf_timeout = Duration::from_millis(500);
    let r = run_once(&cfg).unwrap();
    let (s, e) = sync_status(&r);
    assert_eq!(s, "Failed");
    // ENOMEM, named with PF and step.
    assert!(
        e.contains("PF ens1f0 (0000:3b:00.0): set sriov_numvfs from 0 to 4: writing \"4\""),
        "{e}"
    );
    assert!(e.contains("ENOMEM"), "{e}");
    // Late VFs: the bounded wait runs out and says which VF is missing.
    assert!(
        e.contains("PF ens1f1 (0000:3b:00.1): set sriov_numvfs from 0 to 4: timed out"),
        "{e}"
    );
    assert!(e.contains("VF 0 of 4 to appear"), "{e}");
    // The slow PF is fine (slow, not broken), and PFs did not wait for each other.
    assert_eq!(env.numvfs("0000:5e:00.0"), 4);
    assert!(!e.contains("0000:5e:00.0"), "{e}");
    // Late VFs arrive: the next run converges.
    std::thread::sleep(Duration::from_millis(1600));
    let r = run_once(&cfg).unwrap();
    assert!(!r.error_text().contains("ens1f1"), "{}", r.error_text());
    assert_eq!(env.numvfs("0000:3b:00.1"), 4);
    // The ENOMEM PF recovers once the platform can place the VFs (a node
    // without the fault, same root, same journal).
    let root = env.root().to_path_buf();
    env.sim.stop();
    let sim = SimNode::start(
        healthy.to_str().unwrap(),
        SimOptions {
            root: Some(root),
            ..Default::default()
        },
    )
    .unwrap();
    env.sim = sim;
    let r = run_once(&cfg).unwrap();
    assert_eq!(sync_status(&r), ("Succeeded".into(), String::new()));
    assert_eq!(env.numvfs("0000:3b:00.0"), 4);
}

#[test]
fn kill_9_mid_apply_then_restart_converges() {
    if !lanes::require("kill_9_mid_apply_then_restart_converges", &[Lane::Fuse]) {
        return;
    }
    let specs = tempfile::tempdir().unwrap();
    let slow = write_node(
        specs.path(),
        "slow.yaml",
        r#"
pfs:
  - {model: e810, address: "0000:3b:00.0", ifname: ens1f0, vfs: 2, faults: {numvfs_delay_ms: 1500}}
"#,
    );
    let env = Env::start(slow.to_str().unwrap());
    let cfg = env.cfg(ALL4);
    let state = cfg.state_dir.clone();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sriov-config-daemon"))
        .arg("apply")
        .arg("--host-root")
        .arg(env.root())
        .arg("--state-dir")
        .arg(&state)
        .arg("-p")
        .arg(&cfg.policies)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    // Wait until the journal shows the numvfs step in progress, then kill -9.
    let journal = state.join("journal.json");
    let mut seen = false;
    for _ in 0..200 {
        if std::fs::read_to_string(&journal).is_ok_and(|j| j.contains("set sriov_numvfs")) {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(seen, "the journal never showed the step");
    std::thread::sleep(Duration::from_millis(200));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = child.wait();
    let _guard = Kill(child);
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(
        text.contains("inProgress") && text.contains("set sriov_numvfs from 2 to 4"),
        "{text}"
    );
    // Restart: resumes from the current state and converges.
    let r = run_once(&cfg).unwrap();
    assert_eq!(
        r.resumed.get("0000:3b:00.0").map(String::as_str),
        Some("set sriov_numvfs from 2 to 4")
    );
    assert_eq!(sync_status(&r), ("Succeeded".into(), String::new()));
    assert_eq!(env.numvfs("0000:3b:00.0"), 4);
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(!text.contains("set sriov_numvfs"), "{text}");
    // The original VF count was recorded before the crash.
    assert!(text.contains("\"originalNumVfs\": 2"), "{text}");
}

#[test]
fn rebinding_a_vf_held_by_a_pod_is_refused_unless_allowed() {
    if !lanes::require(
        "rebinding_a_vf_held_by_a_pod_is_refused_unless_allowed",
        &[Lane::Fuse],
    ) {
        return;
    }
    let env = Env::start("mixed");
    env.run(&policies(8, 4, "vfio-pci", None));
    // The device plugin gave VF 5 (vfio-pci group) to a pod.
    let held = env.vf_addr(PF, 5);
    let devinfo = env.root().join("var/run/k8s.cni.cncf.io/devinfo/dp");
    std::fs::create_dir_all(&devinfo).unwrap();
    std::fs::write(
        devinfo.join(format!("openshift.io-other-{held}-device.json")),
        "{}",
    )
    .unwrap();
    let to_netdev = policies(8, 4, "netdevice", None);
    let mut dry = env.cfg(&to_netdev);
    dry.dry_run = true;
    let r = run_once(&dry).unwrap();
    assert!(r.plan.disruptive(), "{}", r.plan.render());
    let r = env.run(&to_netdev);
    let (s, e) = sync_status(&r);
    assert_eq!(s, "Failed");
    assert!(e.contains(&held) && e.contains("--allow-disruption"), "{e}");
    assert_eq!(env.vf_driver(PF, 5).as_deref(), Some("vfio-pci"));
    let mut allow = env.cfg(&to_netdev);
    allow.allow_disruption = true;
    let r = run_once(&allow).unwrap();
    assert_eq!(sync_status(&r).0, "Succeeded", "{}", r.error_text());
    assert_eq!(env.vf_driver(PF, 5).as_deref(), Some("iavf"));
}

#[test]
fn waits_end_on_uevents_and_simulated_pfs_skip_netlink_steps() {
    if !lanes::require(
        "waits_end_on_uevents_and_simulated_pfs_skip_netlink_steps",
        &[Lane::Fuse],
    ) {
        return;
    }
    let specs = tempfile::tempdir().unwrap();
    let late = write_node(
        specs.path(),
        "late.yaml",
        r#"
pfs:
  - {model: e810, address: "0000:3b:00.0", ifname: ens1f0, faults: {vfs_late_ms: 1000}}
"#,
    );
    let env = Env::start(late.to_str().unwrap());
    let cfg = env.cfg(ALL4);
    assert!(
        sriov_config_daemon::events::UeventWait::open(env.root()).is_event_driven(),
        "the simulator's uevent directory is used"
    );
    // The VFs show up 1 s after the write: the wait ends on their
    // uevents (well within the 10 s bound), not on a poll.
    let r = run_once(&cfg).unwrap();
    assert_eq!(sync_status(&r), ("Succeeded".into(), String::new()));
    assert_eq!(env.numvfs("0000:3b:00.0"), 4);
    let o = &r.outcomes[0];
    assert!(o.event_wakeups >= 1, "{o:?}");
    assert!(o.elapsed < Duration::from_secs(10), "{o:?}");
    // The simulated PF has no kernel netdev: PF up and VF admin MACs are
    // skipped with the reason, and the run still succeeds.
    let pf = &r.plan.pfs[0];
    assert!(
        pf.skipped
            .iter()
            .any(|s| s.contains("ens1f0 is not visible over netlink")),
        "{:?}",
        pf.skipped
    );
    assert!(
        !pf.steps.iter().any(|s| matches!(
            s.action,
            Action::SetPfUp { .. } | Action::SetVfAdminMacs { .. }
        )),
        "{}",
        r.plan.render()
    );

    // Polling (the fallback without an event source) converges the same
    // way, without event wake-ups.
    let reset = env.cfg("");
    assert_eq!(sync_status(&run_once(&reset).unwrap()).0, "Succeeded");
    assert_eq!(env.numvfs("0000:3b:00.0"), 0);
    let why = "no netlink in this test";
    let r = sriov_config_daemon::standalone::run_once_in_env(
        &env.cfg(ALL4),
        &sriov_config_daemon::standalone::RunEnv {
            links: Err(why),
            waits: sriov_config_daemon::apply::WaitMode::Poll,
        },
    )
    .unwrap();
    assert_eq!(sync_status(&r), ("Succeeded".into(), String::new()));
    assert_eq!(r.outcomes[0].event_wakeups, 0);
    assert!(r.plan.pfs[0].skipped.iter().any(|s| s.contains(why)));
}
