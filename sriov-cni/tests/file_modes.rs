//! Least privilege of the files the plugin writes: with a umask of 0 (a
//! runtime that does not set one), state and allocation files are 0600,
//! their directories 0700 and the VF lock 0600, as the Go plugin creates
//! them; nothing the plugin creates is world-writable. One `#[test]` in
//! this binary: the umask is per process.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use sriov_cni::config::NetConf;
use sriov_cni::env::{CniArgs, CniEnv, Command};
use sriov_cni::plugin::Plugin;
use sriov_host::netlink::RecordingLinkOps;
use sriov_host::netns::Netns;
use sriov_host::{HostRoot, PciAddress};
use sriov_sim::node::NodeSpec;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn env(cmd: Command) -> CniEnv {
    CniEnv {
        command: cmd,
        container_id: Some("c1".into()),
        netns: Some("/proc/self/ns/net".into()),
        ifname: Some("net1".into()),
        args: CniArgs::default(),
        path: vec![],
    }
}

#[test]
fn state_allocation_and_lock_files_are_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "name: t\npfs:\n  - model: e810\n    address: \"0000:3b:00.0\"\n    ifname: ens1f0\n    vfs: 4\n    vf_drivers: {2: vfio-pci}\n";
    sriov_sim::kernel::write_static_tree(dir.path(), &NodeSpec::from_yaml(yaml, "t").unwrap())
        .unwrap();
    let root = HostRoot::new(dir.path());
    let l = std::fs::read_link(
        root.pci_device(&"0000:3b:00.0".parse().unwrap())
            .join("virtfn2"),
    )
    .unwrap();
    let vf = PciAddress::parse(&l.file_name().unwrap().to_string_lossy()).unwrap();
    let fake = RecordingLinkOps::new();
    fake.add_pf("ens1f0", "b4:96:91:00:3b:00".parse().unwrap(), 4);
    let plugin = Plugin {
        root,
        host: Arc::new(fake),
        host_ns: Netns::current().unwrap(),
    };
    let base = tempfile::tempdir().unwrap();
    let data = base.path().join("sriov");
    let c = json!({"cniVersion": "1.0.0", "name": "n", "type": "sriov",
        "deviceID": vf.to_string(), "dataDir": data, "vlan": 10});
    let b = serde_json::to_vec(&c).unwrap();
    let conf = NetConf::parse(&b, None).unwrap();

    // The only test in the binary: no other thread creates files meanwhile.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let add = plugin.add(&env(Command::Add), &conf, &b);
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
    plugin.del(&env(Command::Del), &conf, &b).unwrap();
}
