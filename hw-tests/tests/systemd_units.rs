//! The systemd units in `deploy/systemd` on a real PF: each unit's own
//! `ExecStart` command line and `Environment`, run as systemd would run it,
//! with its absolute paths (policies, state directory, device plugin
//! config) moved under a temporary root so that a run on a real host never
//! touches the host's own `/etc/sriov` or `/etc/pcidp`.
//!
//! - `sriov-config-daemon.service` (boot time, `apply --once`): creates the
//!   VFs, writes the device plugin config, exits 0; the next run (the next
//!   boot, or `systemctl restart` after the policies changed) applies a new
//!   VF count in place, with no reboot asked for, and a run with nothing to
//!   change changes nothing.
//! - `sriov-config-daemon-watch.service` (`apply --watch`): converges, stays
//!   up, and applies an edit of the policies file without being restarted.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sriov_hw_tests::{HwPf, NumVfsGuard, TempDir, pf, wait_for};

const BOOT_UNIT: &str = include_str!("../../deploy/systemd/sriov-config-daemon.service");
const WATCH_UNIT: &str = include_str!("../../deploy/systemd/sriov-config-daemon-watch.service");

/// What a unit's `[Service]` section says to run.
#[derive(Debug)]
struct Unit {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    state_directory: Option<String>,
}

/// Reads `ExecStart=` (with `\` continuations), `Environment=` and
/// `StateDirectory=` from a unit file. The units quote nothing, so words
/// are split on whitespace; a quote would be a new case for this reader.
fn parse_unit(text: &str) -> Unit {
    let mut lines = Vec::new();
    let mut cont = String::new();
    for l in text.lines() {
        let l = l.trim();
        if l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if let Some(head) = l.strip_suffix('\\') {
            cont.push_str(head);
            cont.push(' ');
        } else {
            cont.push_str(l);
            lines.push(std::mem::take(&mut cont));
        }
    }
    let value = |key: &str| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix('=').map(str::to_owned))
            .collect()
    };
    let exec = value("ExecStart");
    assert_eq!(exec.len(), 1, "one ExecStart: {exec:?}");
    assert!(
        !exec[0].contains('"') && !exec[0].contains('\''),
        "{exec:?}"
    );
    Unit {
        argv: exec[0].split_whitespace().map(str::to_owned).collect(),
        env: value("Environment")
            .iter()
            .flat_map(|e| e.split_whitespace())
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        state_directory: value("StateDirectory").into_iter().next(),
    }
}

/// The unit's command for `bin` with every absolute path moved under
/// `root`; returns it with the moved `--policies` path.
fn command(unit: &Unit, bin: &Path, root: &Path) -> (Command, PathBuf) {
    assert!(
        unit.argv[0].ends_with("/sriov-config-daemon"),
        "{:?}",
        unit.argv
    );
    let mut cmd = Command::new(bin);
    let mut policies = None;
    let mut prev = "";
    for a in &unit.argv[1..] {
        if a.starts_with('/') {
            let moved = root.join(a.trim_start_matches('/'));
            if prev == "--policies" {
                policies = Some(moved.clone());
            }
            cmd.arg(moved);
        } else {
            cmd.arg(a);
        }
        prev = a;
    }
    cmd.envs(unit.env.iter().map(|(k, v)| (k, v)));
    // What systemd does for StateDirectory= before ExecStart.
    if let Some(d) = &unit.state_directory {
        std::fs::create_dir_all(root.join("var/lib").join(d)).unwrap();
    }
    let policies = policies.expect("the unit names --policies");
    std::fs::create_dir_all(policies.parent().unwrap()).unwrap();
    (cmd, policies)
}

/// A policy for `pf` as an admin would put it in /etc/sriov/policies.yaml;
/// the node selector is the label the boot unit passes with --node-labels.
fn policies(pf: &HwPf, num_vfs: u32, selector: &str) -> String {
    format!(
        r#"apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {{name: boot-net, namespace: sriov-network-operator}}
spec:
  resourceName: boot_net
  nodeSelector: {selector}
  numVfs: {num_vfs}
  nicSelector: {{pfNames: ["{pf}"]}}
  deviceType: netdevice
"#,
        pf = pf.ifname
    )
}

fn binary(test: &str) -> Option<PathBuf> {
    sriov_hw_tests::binary_for(
        test,
        "SRIOV_HW_CONFIG_DAEMON",
        "sriov-config-daemon",
        "sriov-config-daemon",
    )
}

/// Runs the boot unit's command once; exit code and stdout.
fn run_boot(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "boot unit run: exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-9), stdout)
}

#[test]
fn boot_unit_applies_before_kubelet_and_reapplies_a_change_without_reboot() {
    let test = "boot_unit_applies_before_kubelet_and_reapplies_a_change_without_reboot";
    let Some(lock) = pf(test) else {
        return;
    };
    let Some(bin) = binary(test) else {
        return;
    };
    let unit = parse_unit(BOOT_UNIT);
    assert!(unit.argv.iter().any(|a| a == "--once"), "{unit:?}");
    let label = unit
        .argv
        .iter()
        .skip_while(|a| *a != "--node-labels")
        .nth(1)
        .expect("the boot unit passes --node-labels")
        .clone();
    let (key, value) = label.split_once('=').unwrap();
    let selector = format!("{{\"{key}\": \"{value}\"}}");
    let a = lock.pf.clone();
    let _restore = NumVfsGuard::new(&a).unwrap();
    a.set_numvfs(0).unwrap();
    let root = TempDir::new("hwunit").unwrap();
    let (mut cmd, policy_file) = command(&unit, &bin, root.path());
    let dp_config = root.path().join("etc/pcidp/config.json");
    let (n1, n2) = (a.totalvfs.min(2), a.totalvfs.min(3));

    // First boot: VFs created, device plugin config written.
    std::fs::write(&policy_file, policies(&a, n1, &selector)).unwrap();
    let (code, out) = run_boot(&mut cmd);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("syncStatus: Succeeded"), "{out}");
    assert_eq!(a.numvfs().unwrap(), n1);
    let dp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&dp_config).unwrap()).unwrap();
    let pool = &dp["resourceList"][0];
    assert_eq!(pool["resourceName"], "boot_net", "{dp}");
    // `selectors` is one object or a list of them (both are upstream's).
    let sel = match &pool["selectors"] {
        serde_json::Value::Array(l) => l[0].clone(),
        o => o.clone(),
    };
    assert_eq!(sel["pfNames"][0], a.ifname.as_str(), "{dp}");
    for i in 0..n1 {
        a.wait_vf_netdev(i).unwrap();
    }

    // Nothing changed: the next boot changes nothing.
    let vfs_before = a.vf_pcis();
    let (code, out) = run_boot(&mut cmd);
    assert_eq!(code, 0, "{out}");
    assert_eq!(a.vf_pcis(), vfs_before);

    // The admin edits the policies; the unit's next run applies the new
    // count in place: no reboot asked for, none needed.
    if n2 > n1 {
        std::fs::write(&policy_file, policies(&a, n2, &selector)).unwrap();
        let (code, out) = run_boot(&mut cmd);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("syncStatus: Succeeded"), "{out}");
        assert!(!out.to_lowercase().contains("reboot"), "{out}");
        assert_eq!(a.numvfs().unwrap(), n2);
    }

    // A node without the label: the policy does not select it, so the
    // boot unit leaves the PF alone and points nothing at it.
    std::fs::write(
        &policy_file,
        policies(&a, n1, "{\"sriov-rs.test/other-label\": \"true\"}"),
    )
    .unwrap();
    let (code, out) = run_boot(&mut cmd);
    assert_eq!(code, 0, "{out}");
    let dp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&dp_config).unwrap()).unwrap();
    assert!(
        dp["resourceList"].as_array().is_none_or(|l| l.is_empty()),
        "{dp}"
    );
}

/// Kills the watch unit's process on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn watch_unit_converges_and_applies_an_edited_policy_file_without_restart() {
    let test = "watch_unit_converges_and_applies_an_edited_policy_file_without_restart";
    let Some(lock) = pf(test) else {
        return;
    };
    let Some(bin) = binary(test) else {
        return;
    };
    let unit = parse_unit(WATCH_UNIT);
    assert!(unit.argv.iter().any(|a| a == "--watch"), "{unit:?}");
    let a = lock.pf.clone();
    let _restore = NumVfsGuard::new(&a).unwrap();
    a.set_numvfs(0).unwrap();
    let root = TempDir::new("hwunitw").unwrap();
    let (mut cmd, policy_file) = command(&unit, &bin, root.path());
    let (n1, n2) = (a.totalvfs.min(1), a.totalvfs.min(2));
    std::fs::write(&policy_file, policies(&a, n1, "{}")).unwrap();

    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut running = Running(child);
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("watch unit: {l}");
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let next_run = |what: &str| -> String {
        loop {
            let l = lines
                .recv_timeout(Duration::from_secs(90))
                .unwrap_or_else(|e| panic!("no run line for {what}: {e}"));
            if l.contains("syncStatus=") {
                return l;
            }
        }
    };

    let first = next_run("the first apply");
    assert!(first.contains("syncStatus=Succeeded"), "{first}");
    assert_eq!(a.numvfs().unwrap(), n1);

    if n2 > n1 {
        std::fs::write(&policy_file, policies(&a, n2, "{}")).unwrap();
        wait_for("the edited VF count", 60.0, || {
            (a.numvfs().ok() == Some(n2)).then_some(())
        })
        .unwrap();
    }
    // Still running: the unit is Type=simple and must stay up.
    assert!(
        running.0.try_wait().unwrap().is_none(),
        "the watch unit exited"
    );
}
