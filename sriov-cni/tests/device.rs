//! VF resolution against a static simulated sysfs tree (no root needed).

use sriov_cni::device::{self, Mode};
use sriov_cni::error::Code;
use sriov_host::{HostRoot, PciAddress};
use sriov_sim::node::NodeSpec;

fn tree() -> (tempfile::TempDir, HostRoot) {
    let d = tempfile::tempdir().unwrap();
    let yaml = "name: t\npfs:\n  - model: e810\n    address: \"0000:3b:00.0\"\n    ifname: ens1f0\n    vfs: 4\n    vf_drivers: {3: vfio-pci}\n  - model: 82576\n    address: \"0000:d8:00.0\"\n    ifname: ens4f0\n    vfs: 3\n    vf_drivers: {1: none}\n";
    let spec = NodeSpec::from_yaml(yaml, "t").unwrap();
    sriov_sim::kernel::write_static_tree(d.path(), &spec).unwrap();
    let root = HostRoot::new(d.path());
    (d, root)
}

fn vf_addr(root: &HostRoot, pf: &str, i: u32) -> PciAddress {
    let vf = sriov_sim::check::vf_address(root.path(), pf, i).unwrap();
    PciAddress::parse(&vf).unwrap()
}

#[test]
fn resolves_vf_index_pf_and_mode() {
    let (_d, root) = tree();
    for i in 0..4 {
        let a = vf_addr(&root, "0000:3b:00.0", i);
        let vf = device::resolve(&root, &a).unwrap();
        assert_eq!(vf.index, i);
        assert_eq!(vf.pf_name, "ens1f0");
        assert_eq!(vf.pf_pci.to_string(), "0000:3b:00.0");
        if i == 3 {
            assert_eq!(vf.mode, Mode::Userspace);
            assert!(vf.netdevs.is_empty());
        } else {
            assert_eq!(vf.mode, Mode::Netdev);
            assert_eq!(vf.netdevs, vec![format!("ens1f0v{i}")]);
        }
    }
    // 82576: VFs interleaved (offset 128, stride 2)
    let a = vf_addr(&root, "0000:d8:00.0", 2);
    assert_eq!(device::resolve(&root, &a).unwrap().index, 2);
}

#[test]
fn refuses_pf_unknown_and_unbound() {
    let (_d, root) = tree();
    let e = device::resolve(&root, &"0000:3b:00.0".parse().unwrap()).unwrap_err();
    assert_eq!(e.code, Code::NotAVf);
    assert!(e.msg.contains("physical function"), "{e}");
    let e = device::resolve(&root, &"0000:99:00.0".parse().unwrap()).unwrap_err();
    assert_eq!(e.code, Code::DeviceNotFound);
    let a = vf_addr(&root, "0000:d8:00.0", 1);
    let e = device::resolve(&root, &a).unwrap_err();
    assert_eq!(e.code, Code::VfNetdevMissing);
    assert!(e.msg.contains("no driver"), "{e}");
}
