//! The node most plugin tests share, no root needed: a static simulated
//! sysfs tree (an E810, `ens1f0`, with 4 VFs; VF 2 on vfio-pci, so
//! userspace mode and nothing moves between namespaces) and
//! `RecordingLinkOps` as the PF; and the CNI environment of a call.

// Each test binary uses part of it.
#![allow(dead_code)]

use std::sync::Arc;

use sriov_cni::env::{CniArgs, CniEnv, Command};
use sriov_cni::plugin::Plugin;
use sriov_host::netlink::RecordingLinkOps;
use sriov_host::netns::Netns;
use sriov_host::{HostRoot, PciAddress};
use sriov_sim::node::NodeSpec;

/// The PF's netdev.
pub const PF: &str = "ens1f0";
/// The VF the tests hand to the plugin.
pub const VF_INDEX: u32 = 2;

const NODE_YAML: &str = "name: t\npfs:\n  - model: e810\n    address: \"0000:3b:00.0\"\n    ifname: ens1f0\n    vfs: 4\n    vf_drivers: {2: vfio-pci}\n";

pub struct StaticNode {
    pub tree: tempfile::TempDir,
    /// The PF, shared with `plugin`.
    pub fake: RecordingLinkOps,
    pub plugin: Plugin,
    /// VF `VF_INDEX`'s PCI address.
    pub vf: PciAddress,
}

impl StaticNode {
    pub fn new() -> StaticNode {
        let tree = tempfile::tempdir().unwrap();
        let spec = NodeSpec::from_yaml(NODE_YAML, "t").unwrap();
        sriov_sim::kernel::write_static_tree(tree.path(), &spec).unwrap();
        let vf = sriov_sim::check::vf_address(tree.path(), "0000:3b:00.0", VF_INDEX).unwrap();
        let fake = RecordingLinkOps::new();
        fake.add_pf(PF, "b4:96:91:00:3b:00".parse().unwrap(), 4);
        let plugin = Plugin {
            root: HostRoot::new(tree.path()),
            host: Arc::new(fake.clone()),
            host_ns: Netns::current().unwrap(),
        };
        StaticNode {
            tree,
            fake,
            plugin,
            vf: vf.parse().unwrap(),
        }
    }
}

/// A call of `cmd` for `container_id`, its `net1` in this process's netns.
pub fn env(cmd: Command, container_id: &str) -> CniEnv {
    CniEnv {
        command: cmd,
        container_id: Some(container_id.into()),
        netns: Some("/proc/self/ns/net".into()),
        ifname: Some("net1".into()),
        args: CniArgs::default(),
        path: vec![],
    }
}
