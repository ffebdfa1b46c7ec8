//! `sriov-config-daemon apply` (standalone mode) on the two real PFs: one
//! policy per PF (netdevice VFs on one, vfio-pci VFs on the other), applied
//! by the kernel's real drivers, reported, and idempotent on a second run.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sriov_hw_tests::{NumVfsGuard, pf2, project_binary, sysfs, unique_name, wait_for};

fn binary(test: &str) -> Option<PathBuf> {
    match project_binary("SRIOV_HW_CONFIG_DAEMON", "sriov-config-daemon") {
        Some(b) => Some(b),
        None if std::env::var("SRIOV_HW_REQUIRED").is_ok_and(|v| v == "1") => panic!(
            "{test}: no sriov-config-daemon binary (set SRIOV_HW_CONFIG_DAEMON or cargo build -p sriov-config-daemon)"
        ),
        None => {
            eprintln!(
                "SKIP {test}: no sriov-config-daemon binary (cargo build -p sriov-config-daemon)"
            );
            None
        }
    }
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `sriov-config-daemon apply … --json [extra]`; exit code and JSON.
fn apply(bin: &Path, dir: &Path, extra: &[&str]) -> (i32, Value) {
    let out = Command::new(bin)
        .arg("apply")
        .arg("--policies")
        .arg(dir.join("policies.yaml"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--device-plugin-config")
        .arg(dir.join("device-plugin.json"))
        .args(["--node-name", "hw-node", "--json"])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "apply {extra:?}: exit {:?}\nstdout: {stdout}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code().unwrap_or(-9),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
    )
}

#[test]
fn config_daemon_applies_policies_on_two_pfs() {
    let test = "config_daemon_applies_policies_on_two_pfs";
    let Some(lock) = pf2(test) else {
        return;
    };
    let Some(bin) = binary(test) else {
        return;
    };
    if !Path::new("/sys/bus/pci/drivers/vfio-pci").exists() {
        let _ = Command::new("modprobe").arg("vfio-pci").status();
    }
    let (a, b) = (lock.pf.clone(), lock.pf2.clone().unwrap());
    let _restore_a = NumVfsGuard::new(&a).unwrap();
    let _restore_b = NumVfsGuard::new(&b).unwrap();
    a.set_numvfs(0).unwrap();
    b.set_numvfs(0).unwrap();
    let (na, nb) = (a.totalvfs.min(3), b.totalvfs.min(2));
    let dir = TempDir(std::env::temp_dir().join(unique_name("hwcd")));
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(
        dir.0.join("policies.yaml"),
        format!(
            r#"apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {{name: hw-net}}
spec:
  resourceName: hw_net
  nodeSelector: {{}}
  numVfs: {na}
  nicSelector: {{pfNames: ["{pa}"]}}
  deviceType: netdevice
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {{name: hw-dpdk}}
spec:
  resourceName: hw_dpdk
  nodeSelector: {{}}
  numVfs: {nb}
  nicSelector: {{pfNames: ["{pb}"]}}
  deviceType: vfio-pci
"#,
            pa = a.ifname,
            pb = b.ifname
        ),
    )
    .unwrap();

    // A dry run changes nothing and plans both PFs.
    let (code, plan) = apply(&bin, &dir.0, &["--dry-run"]);
    assert_eq!(code, 0, "{plan}");
    let planned: Vec<&str> = plan["pfs"]
        .as_array()
        .unwrap_or_else(|| panic!("no pfs in the plan: {plan}"))
        .iter()
        .filter(|p| !p["steps"].as_array().is_none_or(|s| s.is_empty()))
        .filter_map(|p| p["pciAddress"].as_str())
        .collect();
    assert!(
        planned.contains(&a.pci.as_str()) && planned.contains(&b.pci.as_str()),
        "{plan}"
    );
    assert_eq!((a.numvfs().unwrap(), b.numvfs().unwrap()), (0, 0));

    // Apply.
    let (code, state) = apply(&bin, &dir.0, &[]);
    assert_eq!(code, 0, "{state}");
    assert_eq!(state["status"]["syncStatus"], "Succeeded", "{state}");
    assert_eq!(a.numvfs().unwrap(), na);
    assert_eq!(b.numvfs().unwrap(), nb);
    for vf in a.vf_pcis() {
        let d = wait_for(&format!("{vf} driver"), 10.0, || sysfs::driver(&vf)).unwrap();
        if a.driver == "igb" {
            assert_eq!(d, "igbvf", "{vf}");
        }
        assert_ne!(d, "vfio-pci", "{vf}");
    }
    for vf in b.vf_pcis() {
        assert_eq!(sysfs::driver(&vf).as_deref(), Some("vfio-pci"), "{vf}");
        let group = sysfs::iommu_group(&vf).unwrap();
        assert!(
            Path::new("/dev/vfio").join(&group).exists(),
            "{vf}: /dev/vfio/{group}"
        );
    }
    // The status reports what the kernel shows.
    let ifaces = state["status"]["interfaces"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (pf, n) in [(&a, na), (&b, nb)] {
        let i = ifaces
            .iter()
            .find(|i| i["pciAddress"] == pf.pci.as_str())
            .unwrap_or_else(|| panic!("{} missing from the status: {state}", pf.pci));
        assert_eq!(i["numVfs"].as_u64(), Some(u64::from(n)), "{i}");
        assert_eq!(i["name"], pf.ifname.as_str(), "{i}");
    }
    // The device plugin config has both resources.
    let dp: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.0.join("device-plugin.json")).unwrap())
            .unwrap();
    let names: Vec<&str> = dp["resourceList"]
        .as_array()
        .unwrap_or_else(|| panic!("no resourceList: {dp}"))
        .iter()
        .filter_map(|r| r["resourceName"].as_str())
        .collect();
    assert!(
        names.contains(&"hw_net") && names.contains(&"hw_dpdk"),
        "{dp}"
    );

    // A second run has nothing to do and keeps everything.
    let (code, plan) = apply(&bin, &dir.0, &["--dry-run"]);
    assert_eq!(code, 0, "{plan}");
    let pending: Vec<&Value> = plan["pfs"]
        .as_array()
        .map(|pfs| {
            pfs.iter()
                .filter(|p| !p["steps"].as_array().is_none_or(|s| s.is_empty()))
                .collect()
        })
        .unwrap_or_default();
    assert!(pending.is_empty(), "a second run would change: {pending:?}");
    let (code, state) = apply(&bin, &dir.0, &[]);
    assert_eq!(code, 0, "{state}");
    assert_eq!((a.numvfs().unwrap(), b.numvfs().unwrap()), (na, nb));
}
