//! The topology reader over a simulated node's sysfs tree (`gpu` node:
//! GPUs and NICs behind PCIe switches, see `sriov_sim::node::NodeSpec::gpu`).

use sriov_host::topology::{Distance, PcieSwitch, Topology};
use sriov_host::{HostRoot, PciAddress};
use sriov_sim::kernel::write_static_tree;
use sriov_sim::node::NodeSpec;

fn a(s: &str) -> PciAddress {
    s.parse().unwrap()
}

fn gpu_node() -> (tempfile::TempDir, Topology) {
    let tmp = tempfile::tempdir().unwrap();
    write_static_tree(tmp.path(), &NodeSpec::gpu()).unwrap();
    let t = Topology::read(&HostRoot::new(tmp.path())).unwrap();
    (tmp, t)
}

#[test]
fn locations_of_the_gpu_node() {
    let (_tmp, t) = gpu_node();
    assert_eq!(
        t.gpus(),
        &[a("0000:19:00.0"), a("0000:1a:00.0"), a("0000:9a:00.0")]
    );
    // A VF of the ConnectX under the first switch.
    let vf = t.location(&a("0000:1b:00.2")).unwrap();
    assert_eq!(vf.root.to_string(), "pci0000:16");
    assert_eq!(vf.root_port, Some(a("0000:16:01.0")));
    assert_eq!(
        vf.switch,
        Some(PcieSwitch {
            upstream: a("0000:17:00.0"),
            downstream: a("0000:18:02.0")
        })
    );
    assert_eq!(vf.numa_node, Some(0));
    // E810 on a root port of the same root, no switch.
    let e810 = t.location(&a("0000:1c:00.0")).unwrap();
    assert_eq!(e810.root_port, Some(a("0000:16:02.0")));
    assert_eq!(e810.switch, None);
    // numa_node -1 is None.
    assert_eq!(t.location(&a("0000:d8:00.0")).unwrap().numa_node, None);
    // Bridges are functions too (class 0x0604), not GPUs.
    assert_eq!(t.location(&a("0000:17:00.0")).unwrap().class, 0x060400);
}

#[test]
fn every_distance_class_on_the_gpu_node() {
    let (_tmp, t) = gpu_node();
    let gpu0 = a("0000:19:00.0");
    let d = |x: &str| t.distance(&a(x), &gpu0).unwrap();
    assert_eq!(d("0000:1b:00.0"), Distance::SameSwitch); // PF
    assert_eq!(d("0000:1b:00.3"), Distance::SameSwitch); // its VF
    assert_eq!(d("0000:1c:00.0"), Distance::SameRoot);
    assert_eq!(d("0000:1c:02.0"), Distance::SameRoot); // E810 VF 0 (offset 16)
    assert_eq!(d("0000:31:00.0"), Distance::SameNuma);
    assert_eq!(d("0000:9b:00.0"), Distance::Other);
    assert_eq!(d("0000:d8:00.0"), Distance::Other);
    // Nearest GPUs.
    let (dist, gpus) = t.nearest_gpus(&a("0000:9b:00.2")).unwrap();
    assert_eq!(
        (dist, gpus),
        (Distance::SameSwitch, vec![a("0000:9a:00.0")])
    );
    let (dist, gpus) = t.nearest_gpus(&a("0000:b1:00.0")).unwrap();
    assert_eq!((dist, gpus), (Distance::SameNuma, vec![a("0000:9a:00.0")]));
    let (dist, gpus) = t.nearest_gpus(&a("0000:d8:00.0")).unwrap();
    assert_eq!(dist, Distance::Other);
    assert_eq!(gpus.len(), 3);
}

#[test]
fn the_mixed_node_has_roots_but_no_gpus() {
    let tmp = tempfile::tempdir().unwrap();
    write_static_tree(tmp.path(), &NodeSpec::mixed()).unwrap();
    let t = Topology::read(&HostRoot::new(tmp.path())).unwrap();
    assert!(t.gpus().is_empty());
    assert_eq!(t.locations().count(), 12);
    let virtio = t.location(&a("0000:00:03.0")).unwrap();
    assert_eq!(
        (virtio.root.to_string(), virtio.root_port),
        ("pci0000:00".into(), None)
    );
    assert_eq!(t.nearest_gpus(&a("0000:3b:02.0")), None);
}
