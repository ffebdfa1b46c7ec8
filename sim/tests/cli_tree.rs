//! `sriov-sim tree`: the static tree from the command line (no root needed).

use std::process::Command;

fn sriov_sim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sriov-sim"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn tree_writes_a_scale_node() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("host");
    let out = sriov_sim(&["tree", root.to_str().unwrap(), "--node", "scale:3:5"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "no stdout noise");
    let devices: Vec<String> = std::fs::read_dir(root.join("sys/bus/pci/devices"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(devices.len(), 3 + 3 * 5);
    let pf = root.join("sys/bus/pci/devices/0000:12:00.0");
    assert_eq!(
        std::fs::read_to_string(pf.join("numa_node")).unwrap(),
        "1\n"
    );
    assert_eq!(
        std::fs::read_to_string(pf.join("sriov_numvfs")).unwrap(),
        "5\n"
    );
    assert!(root.join("sys/class/net/ens2f0v4").exists());
    assert!(root.join("sys/class/net/ens1f1v0").exists());
    assert!(root.join("dev/vfio/vfio").exists());
    assert!(root.join("proc/net/route").exists());
}

#[test]
fn tree_reads_a_yaml_node_and_rejects_bad_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("node.yaml");
    std::fs::write(
        &yaml,
        "name: one\npfs:\n  - {model: 82576, address: '0000:01:00.0', ifname: eno1, vfs: 7}\n",
    )
    .unwrap();
    let root = tmp.path().join("host");
    let out = sriov_sim(&[
        "tree",
        root.to_str().unwrap(),
        "--node",
        yaml.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pf = root.join("sys/bus/pci/devices/0000:01:00.0");
    assert_eq!(
        std::fs::read_to_string(pf.join("sriov_offset")).unwrap(),
        "128\n"
    );
    assert_eq!(
        std::fs::read_to_string(pf.join("sriov_stride")).unwrap(),
        "2\n"
    );
    // 82576: VF n at RID 0x100 + 128 + 2n.
    let vf6 = std::fs::read_link(pf.join("virtfn6")).unwrap();
    assert_eq!(vf6.to_str().unwrap(), "../0000:01:11.4");
    assert!(root.join("sys/class/net/eno1v6").exists());

    std::fs::write(
        &yaml,
        "pfs:\n  - {model: e810, address: '0000:01:00.0', ifname: a, vfs: 500}\n",
    )
    .unwrap();
    let out = sriov_sim(&[
        "tree",
        tmp.path().join("h2").to_str().unwrap(),
        "--node",
        yaml.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("0000:01:00.0") && err.contains("sriov_totalvfs"),
        "{err}"
    );
    let out = sriov_sim(&[
        "tree",
        tmp.path().join("h3").to_str().unwrap(),
        "--node",
        "bogus",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("scale:PFS:VFS"));
}
