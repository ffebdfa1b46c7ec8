//! Least privilege of the files the plugin writes: with a umask of 0 (a
//! runtime that does not set one), state and allocation files are 0600,
//! their directories 0700 and the VF lock 0600, as the Go plugin creates
//! them; nothing the plugin creates is world-writable. One `#[test]` in
//! this binary: the umask is per process.

mod static_node;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::json;
use sriov_cni::config::NetConf;
use sriov_cni::env::Command;
use static_node::{StaticNode, env};

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn state_allocation_and_lock_files_are_private_whatever_the_umask() {
    let node = StaticNode::new();
    let (plugin, vf) = (&node.plugin, node.vf);
    let base = tempfile::tempdir().unwrap();
    let data = base.path().join("sriov");
    let c = json!({"cniVersion": "1.0.0", "name": "n", "type": "sriov",
        "deviceID": vf.to_string(), "dataDir": data, "vlan": 10});
    let b = serde_json::to_vec(&c).unwrap();
    let conf = NetConf::parse(&b, None).unwrap();

    // The only test in the binary: no other thread creates files meanwhile.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let add = plugin.add(&env(Command::Add, "c1"), &conf, &b);
    nix::sys::stat::umask(old);
    add.unwrap();

    let mut seen = 0;
    let mut stack = vec![data.clone()];
    while let Some(d) = stack.pop() {
        assert_eq!(mode(&d), 0o700, "directory {}", d.display());
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                assert_eq!(mode(&p), 0o600, "file {}", p.display());
                seen += 1;
            }
        }
    }
    // the state file, the allocation file and the VF lock
    assert!(seen >= 3, "only {seen} files under {}", data.display());
    plugin.del(&env(Command::Del, "c1"), &conf, &b).unwrap();
}
