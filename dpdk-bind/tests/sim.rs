//! `dpdk-bind` against the simulated node (FUSE sysfs with kernel
//! semantics): real binds, and the undo of a multi-device bind that fails
//! half way. Lane: fuse.

use std::path::Path;
use std::process::{Command, Output};

use sriov_sim::lanes::{self, Lane};
use sriov_sim::{SimNode, SimOptions};

fn run(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dpdk-bind"))
        .arg("--host-root")
        .arg(root)
        .args(args)
        .env_remove(sriov_host::root::HOST_ROOT_ENV)
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// pci -> (driver, ifname) from `status --json`.
fn drivers(root: &Path) -> std::collections::BTreeMap<String, (Option<String>, Option<String>)> {
    let o = run(root, &["status", "--json"]);
    assert!(o.status.success(), "{}", err(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["pci"].as_str().unwrap().to_string(),
                (
                    r["driver"].as_str().map(str::to_string),
                    r["ifname"].as_str().map(str::to_string),
                ),
            )
        })
        .collect()
}

#[test]
fn binds_vfs_to_vfio_and_back_and_undoes_a_half_done_bind() {
    if !lanes::require("dpdk_bind_on_the_simulated_node", &[Lane::Fuse]) {
        return;
    }
    let sim = SimNode::start("mixed", SimOptions::default()).unwrap();
    let root = sim.root().to_path_buf();
    let before = drivers(&root);
    assert_eq!(before["0000:3b:02.0"].0.as_deref(), Some("iavf"));

    // Two VFs, one named by interface, to vfio-pci.
    let o = run(&root, &["bind", "vfio-pci", "ens1f0v0", "3b:02.1"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        "0000:3b:02.0: iavf -> vfio-pci\n0000:3b:02.1: iavf -> vfio-pci\n"
    );
    let now = drivers(&root);
    assert_eq!(now["0000:3b:02.0"], (Some("vfio-pci".into()), None));
    assert_eq!(now["0000:3b:02.1"], (Some("vfio-pci".into()), None));
    let group = |pci: &str| {
        let link = std::fs::read_link(root.join(format!("sys/bus/pci/devices/{pci}/iommu_group")))
            .unwrap();
        link.file_name().unwrap().to_string_lossy().to_string()
    };
    assert!(root.join("dev/vfio").join(group("0000:3b:02.0")).exists());
    let o = run(&root, &["status"]);
    assert!(out(&o).contains("Network devices using a userspace driver\n========================================\n0000:3b:02.0 8086:1889 drv=vfio-pci"), "{}", out(&o));

    // Back to iavf together with a PF that iavf will not take: the PF is
    // restored by the library, the VF already moved is put back by dpdk-bind.
    let o = run(
        &root,
        &["bind", "iavf", "3b:02.0", "5e:00.0", "--timeout", "1"],
    );
    assert!(!o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("0000:3b:02.0: vfio-pci -> iavf\n"),
        "{}",
        out(&o)
    );
    assert!(
        out(&o).contains("0000:3b:02.0: put back on vfio-pci\n"),
        "{}",
        out(&o)
    );
    assert!(
        err(&o).contains("binding 0000:5e:00.0 to iavf"),
        "{}",
        err(&o)
    );
    let now = drivers(&root);
    assert_eq!(now["0000:3b:02.0"].0.as_deref(), Some("vfio-pci"));
    assert_eq!(now["0000:5e:00.0"], before["0000:5e:00.0"]);

    // Both VFs back to iavf: their netdevs return, the override is cleared.
    let o = run(&root, &["bind", "iavf", "3b:02.0", "3b:02.1"]);
    assert!(o.status.success(), "{}", err(&o));
    let now = drivers(&root);
    assert_eq!(now["0000:3b:02.0"], before["0000:3b:02.0"]);
    assert_eq!(now["0000:3b:02.1"], before["0000:3b:02.1"]);
    let ov = std::fs::read_to_string(root.join("sys/bus/pci/devices/0000:3b:02.0/driver_override"))
        .unwrap();
    assert_eq!(ov.trim(), "(null)");

    // Unbind, then bind again.
    let o = run(&root, &["unbind", "3b:02.2"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "0000:3b:02.2: unbound from iavf\n");
    assert_eq!(drivers(&root)["0000:3b:02.2"].0, None);
    let o = run(&root, &["bind", "iavf", "3b:02.2"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "0000:3b:02.2: bound to iavf\n");
    drop(sim);
}
