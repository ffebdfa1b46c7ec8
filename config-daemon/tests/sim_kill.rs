//! `kill -9` of the standalone daemon at each kind of apply step, then a
//! restart, against the FUSE-simulated node (FUSE lane).
//!
//! Each test starts `sriov-config-daemon apply` as a process on a node whose
//! writes of one attribute block for a while (`write_delay_ms`), waits until
//! the node is half-way through the step (the journal names the step and
//! the node shows part of it done), sends SIGKILL, lets the blocked write
//! land (the kernel finishes a write the caller no longer waits for), and
//! checks that: the journal still names the interrupted step; a restart
//! (`run_once`, same state dir) reports it as resumed, ends `Succeeded` with
//! the node exactly as the policies ask (every VF, driver and MTU); the
//! journal is clean; and one more run plans nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sriov_config_daemon::apply::ApplyOptions;
use sriov_config_daemon::policies::parse_node_labels;
use sriov_config_daemon::standalone::{RunReport, StandaloneConfig, run_once};
use sriov_host::HostRoot;
use sriov_sim::check;
use sriov_sim::lanes::{self, Lane};
use sriov_sim::{SimNode, SimOptions};

const PF: &str = "0000:3b:00.0";
/// How long a delayed write blocks.
const DELAY_MS: u64 = 700;

struct Env {
    sim: SimNode,
    dir: tempfile::TempDir,
}

/// Kills the daemon process on drop (a failing test leaves nothing behind).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Env {
    /// A node with one E810 PF `ens1f0` (more of its YAML fields in
    /// `fields`, e.g. `vfs: 4`) whose writes of `attr` block for
    /// [`DELAY_MS`].
    fn start(fields: &str, attr: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("node.yaml");
        std::fs::write(
            &node,
            format!(
                "pfs:\n  - {{model: e810, address: \"{PF}\", ifname: ens1f0, {fields}, \
                 faults: {{write_delay_ms: {{{attr}: {DELAY_MS}}}}}}}\n"
            ),
        )
        .unwrap();
        let sim =
            SimNode::start(node.to_str().unwrap(), SimOptions::default()).expect("sim starts");
        Env { sim, dir }
    }

    fn root(&self) -> &Path {
        self.sim.root()
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn journal(&self) -> String {
        std::fs::read_to_string(self.state_dir().join("journal.json")).unwrap_or_default()
    }

    fn cfg(&self, policies: &str) -> StandaloneConfig {
        let path = self.dir.path().join("policies.yaml");
        std::fs::write(&path, policies).unwrap();
        StandaloneConfig {
            host_root: HostRoot::new(self.root()),
            policies: path,
            node_name: "test-node".into(),
            node_labels: parse_node_labels("").unwrap(),
            dry_run: false,
            device_plugin_config: None,
            state_dir: self.state_dir(),
            apply: ApplyOptions {
                vf_timeout: Duration::from_secs(20),
                bind_timeout: Duration::from_secs(10),
            },
            allow_disruption: false,
        }
    }

    /// Starts `sriov-config-daemon apply` on `policies` as a process.
    fn spawn(&self, policies: &str) -> Daemon {
        let cfg = self.cfg(policies);
        let child = Command::new(env!("CARGO_BIN_EXE_sriov-config-daemon"))
            .arg("apply")
            .arg("--host-root")
            .arg(self.root())
            .arg("--state-dir")
            .arg(&cfg.state_dir)
            .arg("--vf-timeout")
            .arg("20")
            .arg("-p")
            .arg(&cfg.policies)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Daemon(child)
    }

    fn numvfs(&self) -> u32 {
        check::numvfs(self.root(), PF)
    }

    /// VF `i`'s PCI address, while it exists.
    fn vf(&self, i: u32) -> Option<String> {
        check::vf_address(self.root(), PF, i)
    }

    fn driver(&self, addr: &str) -> Option<String> {
        check::driver(self.root(), addr)
    }

    fn vf_driver(&self, i: u32) -> Option<String> {
        self.driver(&self.vf(i)?)
    }

    /// The MTU of a function's netdev.
    fn mtu(&self, addr: &str) -> Option<u32> {
        let net = check::pci_device(self.root(), addr).join("net");
        let name = std::fs::read_dir(&net).ok()?.flatten().next()?.file_name();
        std::fs::read_to_string(net.join(name).join("mtu"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Starts the daemon, waits until `midway` holds while the journal names
    /// a step starting with `step`, kills it with SIGKILL and lets the
    /// blocked write land. Returns the journal as the crash left it.
    fn kill_midway(&self, policies: &str, step: &str, midway: impl Fn(&Env) -> bool) -> String {
        let mut daemon = self.spawn(policies);
        let start = Instant::now();
        loop {
            let j = self.journal();
            if j.contains(&format!("\"{step}")) && midway(self) {
                break;
            }
            if let Ok(Some(status)) = daemon.0.try_wait() {
                panic!("the daemon ended ({status}) before the step {step:?}; journal: {j}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "never half-way through {step:?}; journal: {j}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(daemon.0.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let status = daemon.0.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "{status}"
        );
        // The write the daemon was blocked in is still carried out.
        std::thread::sleep(Duration::from_millis(DELAY_MS + 300));
        let journal = self.journal();
        assert!(
            journal.contains("inProgress") && journal.contains(&format!("\"{step}")),
            "the journal does not name the interrupted step {step:?}: {journal}"
        );
        journal
    }

    /// Restarts (in process, same state dir) and checks it converges: the
    /// interrupted step reported as resumed, `Succeeded`, a clean journal,
    /// and nothing left to plan on a further run.
    fn restart_converges(&self, policies: &str, step: &str) -> RunReport {
        let cfg = self.cfg(policies);
        let r = run_once(&cfg).expect("restart");
        let resumed = r.resumed.get(PF).cloned().unwrap_or_default();
        assert!(resumed.starts_with(step), "resumed: {:?}", r.resumed);
        let st = r.state.status.as_ref().unwrap();
        assert_eq!(
            (st.sync_status.as_str(), st.last_sync_error.as_str()),
            ("Succeeded", "")
        );
        let journal = self.journal();
        assert!(!journal.contains(step), "{journal}");
        let again = run_once(&cfg).expect("third run");
        let steps: Vec<String> = again
            .plan
            .pfs
            .iter()
            .flat_map(|p| p.steps.iter().map(|s| s.action.to_string()))
            .collect();
        assert!(steps.is_empty(), "not converged, still planned: {steps:?}");
        assert!(again.resumed.is_empty());
        r
    }

    /// Every VF of ens1f0 as `want`: count, driver, VF netdev MTU.
    fn assert_vfs(&self, n: u32, driver: &str, mtu: Option<u32>) {
        assert_eq!(self.numvfs(), n);
        for i in 0..n {
            let vf = self.vf(i).unwrap_or_else(|| panic!("VF {i} missing"));
            assert_eq!(self.driver(&vf).as_deref(), Some(driver), "VF {i}");
            if let Some(m) = mtu {
                assert_eq!(self.mtu(&vf), Some(m), "MTU of VF {i}");
            }
        }
        assert!(self.vf(n).is_none(), "VF {n} should not exist");
    }
}

fn policy(num_vfs: u32, device_type: &str, mtu: Option<u32>, pf_names: &str) -> String {
    let mtu = mtu.map(|m| format!("  mtu: {m}\n")).unwrap_or_default();
    format!(
        r#"apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {{name: net}}
spec:
  resourceName: net
  nodeSelector: {{}}
  numVfs: {num_vfs}
{mtu}  nicSelector: {{vendor: "8086", pfNames: ["{pf_names}"]}}
  deviceType: {device_type}
"#
    )
}

fn fuse(test: &str) -> bool {
    lanes::require(test, &[Lane::Fuse])
}

/// Killed while the PF MTU write is in flight (no VF created yet).
#[test]
fn kill_9_during_the_pf_mtu_step() {
    if !fuse("kill_9_during_the_pf_mtu_step") {
        return;
    }
    let env = Env::start("vfs: 0", "mtu");
    let p = policy(4, "netdevice", Some(9000), "ens1f0");
    env.kill_midway(&p, "set the MTU of ens1f0", |_| true);
    assert_eq!(env.numvfs(), 0, "killed before the VF count step");
    env.restart_converges(&p, "set the MTU of ens1f0");
    assert_eq!(env.mtu(PF), Some(9000));
    env.assert_vfs(4, "iavf", Some(9000));
    // The MTU recorded as the PF's own is the one before the crash.
    assert!(
        env.journal().contains("\"originalMtu\": 1500"),
        "{}",
        env.journal()
    );
}

/// Killed between the two writes of `2 -> 4` (`0`, then `4`): the node has
/// no VF at all when the daemon dies.
#[test]
fn kill_9_between_the_zero_and_the_new_vf_count() {
    if !fuse("kill_9_between_the_zero_and_the_new_vf_count") {
        return;
    }
    let env = Env::start("vfs: 2", "sriov_numvfs");
    let p = policy(4, "netdevice", None, "ens1f0");
    env.kill_midway(&p, "set sriov_numvfs from 2 to 4", |e| e.numvfs() == 0);
    env.restart_converges(&p, "set sriov_numvfs from 2 to 4");
    env.assert_vfs(4, "iavf", None);
    assert!(env.journal().contains("\"originalNumVfs\": 2"));
}

/// Killed after some VFs got their MTU and before the others did.
#[test]
fn kill_9_half_way_through_the_vf_mtus() {
    if !fuse("kill_9_half_way_through_the_vf_mtus") {
        return;
    }
    // The PF is already at 9000: only the VF MTU step runs.
    let env = Env::start("vfs: 4, mtu: 9000", "mtu");
    let p = policy(4, "netdevice", Some(9000), "ens1f0");
    env.kill_midway(&p, "set the MTU of VFs 0-3", |e| {
        e.vf(0).and_then(|v| e.mtu(&v)) == Some(9000)
    });
    let set = (0..4)
        .filter(|&i| env.vf(i).and_then(|v| env.mtu(&v)) == Some(9000))
        .count();
    assert!((1..4).contains(&set), "{set} of 4 VFs at 9000 when killed");
    env.restart_converges(&p, "set the MTU of VFs 0-3");
    env.assert_vfs(4, "iavf", Some(9000));
}

/// Killed while a VF is unbound from iavf and not yet bound to vfio-pci
/// (its `drivers_probe` in flight), earlier VFs already on vfio-pci.
#[test]
fn kill_9_half_way_through_a_bind_to_vfio_pci() {
    if !fuse("kill_9_half_way_through_a_bind_to_vfio_pci") {
        return;
    }
    let env = Env::start("vfs: 4", "drivers_probe");
    let p = policy(4, "vfio-pci", None, "ens1f0");
    env.kill_midway(&p, "bind VFs 0-3 to vfio-pci", |e| {
        e.vf_driver(0).as_deref() == Some("vfio-pci") && e.vf_driver(1).is_none()
    });
    let on = (0..4)
        .filter(|&i| env.vf_driver(i).as_deref() == Some("vfio-pci"))
        .count();
    assert!(
        (1..4).contains(&on),
        "{on} of 4 VFs on vfio-pci when killed"
    );
    env.restart_converges(&p, "bind VFs 0-3 to vfio-pci");
    env.assert_vfs(4, "vfio-pci", None);
}

/// Killed while a VF is unbound from vfio-pci and not yet back on its
/// kernel driver, the way back from vfio-pci to netdevice.
#[test]
fn kill_9_half_way_through_a_bind_back_to_the_kernel_driver() {
    if !fuse("kill_9_half_way_through_a_bind_back_to_the_kernel_driver") {
        return;
    }
    let env = Env::start(
        "vfs: 4, vf_drivers: {0: vfio-pci, 1: vfio-pci, 2: vfio-pci, 3: vfio-pci}",
        "drivers_probe",
    );
    let p = policy(4, "netdevice", None, "ens1f0");
    env.kill_midway(&p, "bind VFs 0-3 to", |e| {
        e.vf_driver(0).as_deref() == Some("iavf") && e.vf_driver(1).is_none()
    });
    env.restart_converges(&p, "bind VFs 0-3 to");
    env.assert_vfs(4, "iavf", None);
    for i in 0..4 {
        let vf = env.vf(i).unwrap();
        let over =
            std::fs::read_to_string(check::pci_device(env.root(), &vf).join("driver_override"))
                .unwrap();
        assert_eq!(over.trim(), "(null)", "VF {i} keeps no override");
    }
}

/// Killed while a PF that left the spec is being reset (its VFs being
/// removed): the restart finishes the reset and forgets the PF.
#[test]
fn kill_9_during_the_reset_of_a_pf_that_left_the_spec() {
    if !fuse("kill_9_during_the_reset_of_a_pf_that_left_the_spec") {
        return;
    }
    let env = Env::start("vfs: 0", "sriov_numvfs");
    let configured = policy(3, "netdevice", Some(9000), "ens1f0");
    let r = run_once(&env.cfg(&configured)).unwrap();
    assert!(!r.failed(), "{}", r.error_text());
    env.assert_vfs(3, "iavf", Some(9000));
    // A policy that no longer selects ens1f0.
    let gone = policy(1, "netdevice", None, "ens9f9");
    env.kill_midway(&gone, "set sriov_numvfs from 3 to 0", |_| true);
    let r = env.restart_converges(&gone, "set sriov_numvfs from 3 to 0");
    assert!(r.plan.pfs.iter().any(|p| p.pci_address == PF));
    assert_eq!(env.numvfs(), 0);
    assert_eq!(env.mtu(PF), Some(1500), "the MTU it had before");
    assert!(!env.journal().contains(PF), "{}", env.journal());
}
