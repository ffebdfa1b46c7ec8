//! Simulator faults beyond `sriov_numvfs` (those are in `mount.rs`,
//! `fault_injection_enomem_delay_and_late_vfs`): a driver bind that fails,
//! and a `sriov-sim` killed with SIGKILL whose dead mounts and veths the
//! next start removes.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use sriov_sim::check::{driver, pci_device, vf_address, wait_until};
use sriov_sim::lanes::{self, Lane};
use sriov_sim::mount::mounts_under;
use sriov_sim::node::NodeSpec;
use sriov_sim::{SimNode, SimOptions};

fn bash(cmd: &str) -> Result<(), String> {
    let out = Command::new("bash").arg("-c").arg(cmd).output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn echo(value: &str, path: &Path) -> Result<(), String> {
    bash(&format!("echo '{value}' > '{}'", path.display()))
}

#[test]
fn driver_bind_that_fails() {
    if !lanes::require("driver_bind_that_fails", &[Lane::Fuse]) {
        return;
    }
    let spec = NodeSpec::from_yaml(
        "name: faults\npfs:\n  - {model: e810, address: '0000:3b:00.0', ifname: f0, numa: 0, faults: {bind_fail: [vfio-pci]}}\n",
        "test",
    )
    .unwrap();
    let mut sim = SimNode::start(spec, SimOptions::default()).unwrap();
    let root = sim.root().to_path_buf();
    echo("2", &pci_device(&root, "0000:3b:00.0").join("sriov_numvfs")).unwrap();
    let vf = vf_address(&root, "0000:3b:00.0", 0).unwrap();
    assert_eq!(driver(&root, &vf).as_deref(), Some("iavf"));
    let drivers = root.join("sys/bus/pci/drivers");
    echo(&vf, &drivers.join("iavf/unbind")).unwrap();
    echo("vfio-pci", &pci_device(&root, &vf).join("driver_override")).unwrap();
    // An explicit bind reports the probe's failure ...
    let e = echo(&vf, &drivers.join("vfio-pci/bind")).unwrap_err();
    assert!(e.contains("Input/output error"), "{e}");
    assert_eq!(driver(&root, &vf), None);
    // ... a probe leaves the device unbound ...
    echo(&vf, &root.join("sys/bus/pci/drivers_probe")).unwrap();
    assert_eq!(driver(&root, &vf), None);
    // ... and other drivers still bind.
    echo("", &pci_device(&root, &vf).join("driver_override")).unwrap();
    echo(&vf, &drivers.join("iavf/bind")).unwrap();
    assert_eq!(driver(&root, &vf).as_deref(), Some("iavf"));
    sim.stop();
    assert!(mounts_under(&root).is_empty());
}

/// Deletes the named links on drop (whatever the test's outcome).
struct Links(Vec<String>);

impl Drop for Links {
    fn drop(&mut self) {
        for l in &self.0 {
            if Path::new("/sys/class/net").join(l).exists() {
                let _ = Command::new("ip").args(["link", "del", l]).status();
            }
        }
    }
}

#[test]
fn sigkilled_simulator_leaves_nothing_after_the_next_start() {
    if !lanes::require(
        "sigkilled_simulator_leaves_nothing_after_the_next_start",
        &[Lane::Fuse, Lane::Netns],
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("host");
    let pf = format!("k{:x}", std::process::id() & 0xfffff);
    let yaml = format!(
        "name: killed\npfs:\n  - {{model: e810, address: '0000:3b:00.0', ifname: {pf}, numa: 0}}\n"
    );
    let node = tmp.path().join("node.yaml");
    std::fs::write(&node, &yaml).unwrap();
    let vfs: Vec<String> = (0..2).map(|i| format!("{pf}v{i}")).collect();
    let _links = Links(vfs.clone());

    let mut child = Command::new(env!("CARGO_BIN_EXE_sriov-sim"))
        .args(["mount", root.to_str().unwrap(), "--veth", "--node"])
        .arg(&node)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    echo("2", &pci_device(&root, "0000:3b:00.0").join("sriov_numvfs")).unwrap();
    for v in &vfs {
        assert!(Path::new("/sys/class/net").join(v).exists(), "veth {v}");
    }
    child.kill().unwrap(); // SIGKILL: no cleanup runs
    child.wait().unwrap();
    // The mounts stay dead (ENOTCONN) until fusermount3's auto_unmount
    // watcher, which outlives the simulator, notices the daemon is gone and
    // unmounts them: either state is what a SIGKILL can leave.
    let dead = mounts_under(&root);
    match dead.len() {
        2 => {
            if let Err(e) = std::fs::metadata(root.join("sys/bus")) {
                // ENOENT: the watcher unmounted it between the two reads.
                assert!(
                    matches!(e.raw_os_error(), Some(libc::ENOTCONN | libc::ENOENT)),
                    "{e}"
                );
            }
        }
        n => assert!(n < 2, "more mounts than the simulator made: {dead:?}"),
    }
    assert!(Path::new("/sys/class/net").join(&vfs[0]).exists());

    // The next start on the same root cleans up and works.
    let mut sim = SimNode::start(
        NodeSpec::from_yaml(&yaml, "test").unwrap(),
        SimOptions {
            veth: true,
            root: Some(root.clone()),
        },
    )
    .unwrap();
    for v in &vfs {
        assert!(
            !Path::new("/sys/class/net").join(v).exists(),
            "stale veth {v} deleted"
        );
    }
    let live = mounts_under(&root);
    assert_eq!(live.len(), 2, "only the new mounts: {live:?}");
    assert_eq!(
        std::fs::read_to_string(pci_device(&root, "0000:3b:00.0").join("sriov_numvfs"))
            .unwrap()
            .trim(),
        "0"
    );
    echo("1", &pci_device(&root, "0000:3b:00.0").join("sriov_numvfs")).unwrap();
    wait_until("new veth", Duration::from_secs(3), || {
        Path::new("/sys/class/net").join(&vfs[0]).exists()
    });
    sim.stop();
    assert!(mounts_under(&root).is_empty(), "{:?}", mounts_under(&root));
    assert!(!Path::new("/sys/class/net").join(&vfs[0]).exists());
}
