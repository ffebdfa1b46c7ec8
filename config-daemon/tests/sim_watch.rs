//! `apply --watch` against a simulated node: drift by hand is repaired
//! (from uevents, long before the resync interval), policy file changes are
//! applied.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sriov_sim::check::{self, wait_until};
use sriov_sim::lanes::{self, Lane};
use sriov_sim::{SimNode, SimOptions};

struct Daemon(Child);
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn policy(n: u32) -> String {
    format!(
        r#"apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {{name: net}}
spec:
  resourceName: net
  nodeSelector: {{}}
  numVfs: {n}
  nicSelector: {{pfNames: ["ens1f1#0-1"]}}
  deviceType: netdevice
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {{name: dpdk}}
spec:
  resourceName: dpdk
  nodeSelector: {{}}
  numVfs: {n}
  nicSelector: {{pfNames: ["ens1f1#2-{last}"]}}
  deviceType: vfio-pci
"#,
        last = n - 1
    )
}

#[test]
fn watch_repairs_drift_and_follows_the_policy_file() {
    if !lanes::require(
        "watch_repairs_drift_and_follows_the_policy_file",
        &[Lane::Fuse],
    ) {
        return;
    }
    let sim = SimNode::start("mixed", SimOptions::default()).unwrap();
    let root = sim.root().to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("p.yaml");
    std::fs::write(&policies, policy(6)).unwrap();
    let _d = Daemon(
        Command::new(env!("CARGO_BIN_EXE_sriov-config-daemon"))
            .args([
                "apply",
                "--watch",
                "--resync-interval",
                "600",
                "--host-root",
            ])
            .arg(&root)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("-p")
            .arg(&policies)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pf = "0000:3b:00.1";
    let t = Duration::from_secs(10);
    let vf = |i: u32| check::vf_address(&root, pf, i);
    let driver = |vf: &str| check::driver(&root, vf);
    let vf_on = |i: u32, want: &str| vf(i).and_then(|a| driver(&a)).as_deref() == Some(want);
    wait_until("6 VFs", t, || check::numvfs(&root, pf) == 6);
    wait_until("VF 5 on vfio-pci", t, || vf_on(5, "vfio-pci"));

    // Drift 1: VF 0 (netdevice group) moved to vfio-pci by hand.
    let vf0 = vf(0).unwrap();
    let sys = root.join("sys");
    std::fs::write(
        check::pci_device(&root, &vf0).join("driver_override"),
        "vfio-pci",
    )
    .unwrap();
    std::fs::write(sys.join("bus/pci/drivers/iavf/unbind"), &vf0).unwrap();
    std::fs::write(sys.join("bus/pci/drivers_probe"), &vf0).unwrap();
    assert_eq!(driver(&vf0).as_deref(), Some("vfio-pci"));
    wait_until("VF 0 back on iavf", t, || {
        driver(&vf0).as_deref() == Some("iavf")
    });

    // Drift 2: VFs removed by hand.
    std::fs::write(check::pci_device(&root, pf).join("sriov_numvfs"), "0").unwrap();
    wait_until("6 VFs again", t, || {
        check::numvfs(&root, pf) == 6 && vf_on(5, "vfio-pci")
    });

    // The policy file changes: applied.
    std::fs::write(&policies, policy(4)).unwrap();
    wait_until("4 VFs", t, || check::numvfs(&root, pf) == 4);
    wait_until("VF 3 on vfio-pci", t, || vf_on(3, "vfio-pci"));
}
