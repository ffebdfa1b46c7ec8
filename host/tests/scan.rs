//! Reading a node from sysfs trees with the kernel's exact layout.

mod fake_kernel;

use fake_kernel::{TestNode, add_e810_vf, add_uevents, e810_caps, mixed_node};
use sriov_host::netdev::{self, LinkType, OperState};
use sriov_host::pci::{self, PciAddress, PciFunction};
use sriov_host::root::HostRoot;
use sriov_host::scan::scan;
use sriov_host::sriov::{VfInfo, VfLink};

fn a(s: &str) -> PciAddress {
    s.parse().unwrap()
}

#[test]
fn reads_a_pf_with_its_identity_sriov_and_netdev() {
    let node = mixed_node();
    let n = scan(&node.root()).unwrap();
    let pf = n.get(&a("3b:00.0")).unwrap();
    assert_eq!((pf.vendor, pf.device, pf.class), (0x8086, 0x1593, 0x020000));
    assert_eq!(
        (pf.subsystem_vendor, pf.subsystem_device),
        (Some(0x8086), Some(2))
    );
    assert_eq!(pf.driver.as_deref(), Some("ice"));
    assert_eq!(pf.driver_override, None, "(null) is no override");
    assert_eq!(pf.numa_node, Some(0));
    assert_eq!(pf.iommu_group, Some(10));
    assert_eq!(pf.acpi_index, Some(1));
    assert!(pf.is_network() && pf.is_pf() && !pf.is_vf());
    let cap = pf.sriov.as_ref().unwrap();
    assert_eq!((cap.total_vfs, cap.num_vfs), (64, 3));
    assert_eq!((cap.offset, cap.stride), (Some(16), Some(1)));
    assert_eq!(cap.vf_device, Some(0x1889));
    assert_eq!(cap.drivers_autoprobe, Some(true));
    assert_eq!(
        cap.vfs,
        vec![
            VfLink {
                index: 0,
                address: a("3b:02.0")
            },
            VfLink {
                index: 1,
                address: a("3b:02.1")
            },
            VfLink {
                index: 2,
                address: a("3b:02.2")
            },
        ]
    );
    assert_eq!(pf.netdevs.len(), 1);
    let nd = &pf.netdevs[0];
    assert_eq!(nd.name, "ens1f0");
    assert_eq!(
        nd.mac.as_deref(),
        Some("b4:96:91:00:00:01"),
        "MAC is lower-cased"
    );
    assert_eq!(nd.mtu, Some(1500));
    assert_eq!(nd.operstate, OperState::Up);
    assert_eq!(nd.carrier, Some(true));
    assert_eq!(nd.speed_mbps, Some(25000));
    assert_eq!(nd.link_type, LinkType::Ether);
    assert_eq!(nd.ifindex, Some(4));
    assert!(pf.rdma.is_empty());
}

#[test]
fn vfs_have_their_pf_and_index_and_come_in_index_order() {
    let node = mixed_node();
    let n = scan(&node.root()).unwrap();
    let vfs: Vec<(String, u32)> = n
        .vfs_of(&a("3b:00.0"))
        .iter()
        .map(|f| (f.address.to_string(), f.vf.unwrap().index))
        .collect();
    assert_eq!(
        vfs,
        [
            ("0000:3b:02.0".to_string(), 0),
            ("0000:3b:02.1".to_string(), 1),
            ("0000:3b:02.2".to_string(), 2)
        ]
    );
    let vf0 = n.get(&a("3b:02.0")).unwrap();
    assert_eq!(
        vf0.vf,
        Some(VfInfo {
            pf: a("3b:00.0"),
            index: 0
        })
    );
    assert_eq!(vf0.driver.as_deref(), Some("iavf"));
    assert_eq!(vf0.netdevs[0].name, "ens1f0v0");
    assert_eq!(n.pf_of(&a("3b:02.0")).unwrap().address, a("3b:00.0"));
    assert_eq!(n.pf_netdev_of(&a("3b:02.2")).unwrap().name, "ens1f0");
    assert_eq!(n.vfs().count(), 3);
    assert_eq!(
        n.pfs().map(|p| p.address.to_string()).collect::<Vec<_>>(),
        ["0000:3b:00.0", "0000:3b:00.1", "0000:5e:00.0"]
    );
}

#[test]
fn a_vf_on_vfio_pci_has_no_netdev_and_an_unbound_vf_no_driver() {
    let node = mixed_node();
    let n = scan(&node.root()).unwrap();
    let vfio = n.get(&a("3b:02.1")).unwrap();
    assert_eq!(vfio.driver.as_deref(), Some("vfio-pci"));
    assert!(vfio.netdevs.is_empty());
    assert_eq!(vfio.iommu_group, Some(21));
    assert!(node.root().vfio_group_dev(21).exists());
    let none = n.get(&a("3b:02.2")).unwrap();
    assert_eq!(none.driver, None);
    assert!(none.netdevs.is_empty());
    assert_eq!(none.vf.unwrap().index, 2);
}

#[test]
fn numa_minus_one_zero_vfs_and_a_down_link() {
    let node = mixed_node();
    let n = scan(&node.root()).unwrap();
    let pf1 = n.get(&a("3b:00.1")).unwrap();
    assert_eq!(pf1.numa_node, None, "numa_node -1 is no node");
    let cap = pf1.sriov.as_ref().unwrap();
    assert_eq!(cap.num_vfs, 0);
    assert!(cap.vfs.is_empty());
    assert!(n.vfs_of(&a("3b:00.1")).is_empty());
    let nd = &pf1.netdevs[0];
    assert_eq!(nd.operstate, OperState::Down);
    assert_eq!(nd.carrier, None, "no carrier file");
    assert_eq!(nd.speed_mbps, None, "speed -1 is unknown");
    assert!(!nd.is_up());
}

#[test]
fn two_netdevs_on_one_function_and_rdma() {
    let node = mixed_node();
    let n = scan(&node.root()).unwrap();
    let cx = n.get(&a("5e:00.0")).unwrap();
    let names: Vec<&str> = cx.netdevs.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["ens2f0np0", "eth4"]);
    assert_eq!(cx.netdevs[0].phys_port_name.as_deref(), Some("p0"));
    assert_eq!(cx.netdevs[1].phys_port_name.as_deref(), Some("pf0vf0"));
    assert_eq!(
        cx.netdevs[1].phys_switch_id.as_deref(),
        Some("01a2b3fffec4d5e6")
    );
    assert_eq!(cx.primary_netdev().unwrap().name, "ens2f0np0");
    assert_eq!(cx.rdma, ["mlx5_0"]);
    assert_eq!(n.by_ifname("eth4").unwrap().address, a("5e:00.0"));
    assert_eq!(n.by_ifname("ens2f0np0").unwrap().address, a("5e:00.0"));
}

#[test]
fn an_infiniband_netdev_has_link_type_32() {
    let node = mixed_node();
    let n = scan(&node.root()).unwrap();
    let ib = n.get(&a("af:00.0")).unwrap();
    assert!(ib.is_network() && !ib.is_pf());
    assert_eq!(ib.netdevs[0].link_type, LinkType::Infiniband);
    assert_eq!(ib.netdevs[0].mtu, Some(2044));
    assert_eq!(
        ib.netdevs[0].mac.as_deref(),
        Some("00:00:10:87:fe:80:00:00:00:00:00:00:0c:42:a1:03:00:6b:2a:9c")
    );
    assert_eq!(ib.rdma, ["mlx5_1"]);
    let sata = n.get(&a("00:17.0")).unwrap();
    assert!(!sata.is_network());
    assert_eq!(sata.driver.as_deref(), Some("ahci"));
}

#[test]
fn a_device_removed_mid_scan_is_skipped() {
    let node = mixed_node();
    // The bus link is listed, but the device directory is gone: what a scan
    // sees when a device is hot-removed between readdir and reading it.
    let gone = node.path().join("sys/bus/pci/devices/0000:d8:00.0");
    std::os::unix::fs::symlink(
        "../../../devices/pci0000:d7/0000:d7:00.0/0000:d8:00.0",
        &gone,
    )
    .unwrap();
    assert!(std::fs::symlink_metadata(&gone).is_ok() && !gone.exists());
    // A VF whose PF already dropped its virtfn link (VFs being disabled:
    // the kernel removes them from index 0 up).
    node.with(|t| t.unlink_vf("0000:3b:00.0", 0).unwrap());
    // A device whose directory exists but whose attributes are gone.
    let vf2 = node.dev_dir("0000:3b:02.2");
    for f in ["uevent", "vendor", "device", "class"] {
        std::fs::remove_file(vf2.join(f)).unwrap();
    }

    let n = scan(&node.root()).unwrap();
    assert!(n.get(&a("d8:00.0")).is_none());
    assert!(
        n.get(&a("3b:02.0")).is_none(),
        "VF not listed by its PF is skipped"
    );
    assert!(n.get(&a("3b:02.2")).is_none());
    let left: Vec<(String, u32)> = n
        .vfs_of(&a("3b:00.0"))
        .iter()
        .map(|f| (f.address.to_string(), f.vf.unwrap().index))
        .collect();
    assert_eq!(
        left,
        [("0000:3b:02.1".to_string(), 1)],
        "gaps in virtfnN keep indexes"
    );
    assert_eq!(n.len(), 6);

    let err = PciFunction::read(&node.root(), &a("d8:00.0")).unwrap_err();
    assert!(
        matches!(err, sriov_host::error::Error::NoSuchDevice { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("0000:d8:00.0"));
}

#[test]
fn reading_one_function_resolves_its_vf_index() {
    let node = mixed_node();
    let f = PciFunction::read(&node.root(), &a("3b:02.1")).unwrap();
    assert_eq!(
        f.vf,
        Some(VfInfo {
            pf: a("3b:00.0"),
            index: 1
        })
    );
    let scanned = scan(&node.root()).unwrap();
    assert_eq!(scanned.get(&a("3b:02.1")), Some(&f));
}

#[test]
fn interfaces_resolve_to_their_pci_function() {
    let node = mixed_node();
    let root = node.root();
    assert_eq!(
        netdev::pci_address_of(&root, "ens1f0v0").unwrap(),
        a("3b:02.0")
    );
    assert_eq!(netdev::pci_address_of(&root, "ib0").unwrap(), a("af:00.0"));
    let e = netdev::pci_address_of(&root, "nope0").unwrap_err();
    assert!(
        e.to_string().contains("no network interface \"nope0\""),
        "{e}"
    );
    // A virtual interface: class/net/lo -> ../../devices/virtual/net/lo
    std::fs::create_dir_all(node.path().join("sys/devices/virtual/net/lo")).unwrap();
    std::os::unix::fs::symlink(
        "../../devices/virtual/net/lo",
        node.path().join("sys/class/net/lo"),
    )
    .unwrap();
    let e = netdev::pci_address_of(&root, "lo").unwrap_err();
    assert!(e.to_string().contains("not a PCI device"), "{e}");
    let nd = netdev::Netdev::read(&root, "ens1f1").unwrap();
    assert_eq!(nd.operstate, OperState::Down);
    assert!(
        netdev::interface_names(&root)
            .unwrap()
            .contains(&"ib0".to_string())
    );
}

#[test]
fn iommu_group_members_come_from_the_group_directory() {
    let node = mixed_node();
    // A second function in group 20 (a multi-function group).
    node.with(|t| {
        let mut f = sriov_sim::tree::PciFunction::ethernet("0000:3b:00.2", 0x8086, 0x1593);
        f.iommu_group = Some(20);
        t.add_function(&f).unwrap();
    });
    let root = node.root();
    assert_eq!(
        pci::iommu_group_devices(&root, 20).unwrap(),
        vec![a("3b:00.2"), a("3b:02.0")]
    );
    assert!(pci::iommu_group_devices(&root, 999).unwrap().is_empty());
    let n = scan(&root).unwrap();
    assert_eq!(n.iommu_group(20).len(), 2);
}

#[test]
fn an_empty_node_and_a_missing_sysfs() {
    let node = TestNode::empty();
    assert!(scan(&node.root()).unwrap().is_empty());
    let e = scan(&HostRoot::new(node.path().join("nothing"))).unwrap_err();
    assert!(e.to_string().contains("nothing/sys/bus/pci/devices"), "{e}");
    assert!(e.to_string().contains("ENOENT"), "{e}");
}

#[test]
fn a_large_node_scans_in_parallel_with_the_same_result() {
    // Enough functions to take the parallel path; compare with per-function reads.
    let node = TestNode::empty();
    node.with(|t| {
        for p in 0..2u32 {
            let pf = format!("0000:{:02x}:00.0", 0x3b + p * 2);
            let mut f = sriov_sim::tree::PciFunction::ethernet(&pf, 0x8086, 0x1593);
            f.numa_node = p as i32;
            t.add_function(&f).unwrap();
            t.set_sriov(&pf, &e810_caps(40)).unwrap();
            t.bind(&pf, "ice").unwrap();
            for i in 0..40 {
                add_e810_vf(
                    t,
                    &pf,
                    &format!("p{p}"),
                    i,
                    Some(if i % 2 == 0 { "iavf" } else { "vfio-pci" }),
                    100 + p * 50 + i,
                );
            }
        }
    });
    let root = node.root();
    let n = scan(&root).unwrap();
    assert_eq!(n.len(), 82);
    for f in n.functions() {
        assert_eq!(&PciFunction::read(&root, &f.address).unwrap(), f);
    }
    let vfs = n.vfs_of(&a("3d:00.0"));
    assert_eq!(vfs.len(), 40);
    assert!(
        vfs.iter()
            .enumerate()
            .all(|(i, v)| v.vf.unwrap().index == i as u32)
    );
}

#[test]
fn ids_from_uevent_match_the_single_files() {
    let node = mixed_node();
    let plain = scan(&node.root()).unwrap();
    add_uevents(&node);
    assert!(
        node.path()
            .join("sys/bus/pci/devices/0000:3b:02.0/uevent")
            .exists()
    );
    // Remove the single id files of one VF: its ids must now come from uevent.
    let vf = node.dev_dir("0000:3b:02.0");
    for f in [
        "vendor",
        "device",
        "class",
        "subsystem_vendor",
        "subsystem_device",
    ] {
        std::fs::remove_file(vf.join(f)).unwrap();
    }
    let with_uevent = scan(&node.root()).unwrap();
    assert_eq!(with_uevent, plain);
    let ib = with_uevent.get(&a("af:00.0")).unwrap();
    assert_eq!(ib.class, 0x020700);
    // A uevent without the ids (another bus's layout) falls back to the files.
    std::fs::write(node.dev_dir("0000:3b:00.1").join("uevent"), "DRIVER=ice\n").unwrap();
    assert_eq!(scan(&node.root()).unwrap(), plain);
}

#[test]
fn a_virtio_net_interface_belongs_to_its_pci_function() {
    let node = mixed_node();
    node.with(|t| {
        let mut f = sriov_sim::tree::PciFunction::ethernet("0000:00:03.0", 0x1af4, 0x1000);
        f.parent = "pci0000:00".into();
        t.add_function(&f).unwrap();
        t.bind("0000:00:03.0", "virtio-pci").unwrap();
    });
    // The kernel puts the netdev under the virtio device:
    // .../0000:00:03.0/virtio0/net/eth0, class/net/eth0 -> ../../devices/.../virtio0/net/eth0
    let vdir = node.dev_dir("0000:00:03.0").join("virtio0/net/eth0");
    std::fs::create_dir_all(&vdir).unwrap();
    for (f, v) in [
        ("type", "1"),
        ("address", "52:54:00:12:34:56"),
        ("operstate", "up"),
        ("mtu", "1500"),
    ] {
        std::fs::write(vdir.join(f), format!("{v}\n")).unwrap();
    }
    std::os::unix::fs::symlink(
        "../../devices/pci0000:00/0000:00:03.0/virtio0/net/eth0",
        node.path().join("sys/class/net/eth0"),
    )
    .unwrap();
    let root = node.root();
    assert_eq!(netdev::pci_address_of(&root, "eth0").unwrap(), a("00:03.0"));
    let n = scan(&root).unwrap();
    let f = n.get(&a("00:03.0")).unwrap();
    assert_eq!(f.netdevs.len(), 1);
    assert_eq!(f.netdevs[0].name, "eth0");
    assert_eq!(n.by_ifname("eth0").unwrap().address, a("00:03.0"));
}

#[test]
fn a_selection_scan_reads_identity_and_links_but_not_netdev_state() {
    use sriov_host::scan::{Detail, scan_detail};
    let node = mixed_node();
    let full = scan(&node.root()).unwrap();
    let sel = scan_detail(&node.root(), Detail::Selection).unwrap();
    assert_eq!(
        sel.functions().map(|f| f.address).collect::<Vec<_>>(),
        full.functions().map(|f| f.address).collect::<Vec<_>>()
    );
    for (s, f) in sel.functions().zip(full.functions()) {
        // Everything but driver_override and the netdev state is the same.
        assert_eq!(
            (s.vendor, s.device, s.class, &s.driver, s.numa_node),
            (f.vendor, f.device, f.class, &f.driver, f.numa_node)
        );
        assert_eq!((s.iommu_group, s.acpi_index), (f.iommu_group, f.acpi_index));
        assert_eq!((&s.sriov, s.vf, &s.rdma), (&f.sriov, f.vf, &f.rdma));
        assert_eq!(s.driver_override, None);
        assert_eq!(s.netdevs.len(), f.netdevs.len(), "{}", s.address);
        for (sn, fnd) in s.netdevs.iter().zip(&f.netdevs) {
            assert_eq!(
                (&sn.name, sn.link_type, &sn.phys_port_name),
                (&fnd.name, fnd.link_type, &fnd.phys_port_name)
            );
            assert_eq!((&sn.mac, sn.mtu, sn.speed_mbps), (&None, None, None));
            assert_eq!(sn.operstate, OperState::Unknown);
        }
        assert_eq!(
            s.primary_netdev().map(|n| &n.name),
            f.primary_netdev().map(|n| &n.name)
        );
    }
    // The full scan did read the state it skips.
    assert!(
        full.functions()
            .flat_map(|f| &f.netdevs)
            .any(|n| n.mac.is_some())
    );
    assert_eq!(
        sel.by_ifname("eth4").unwrap().address,
        full.by_ifname("eth4").unwrap().address
    );
}

/// The small readers other crates use instead of reading sysfs themselves.
#[test]
fn single_attribute_readers() {
    let node = mixed_node();
    let root = node.root();
    let pf = a("3b:00.0");
    assert_eq!(netdev::names_of(&root, &pf), ["ens1f0"]);
    // VF 2 has no driver, so no netdev; a function that is not there has none.
    assert!(netdev::names_of(&root, &a("3b:02.2")).is_empty());
    assert!(netdev::names_of(&root, &a("3b:1f.7")).is_empty());
    assert_eq!(netdev::link_type(&root, "ens1f0"), Some(LinkType::Ether));
    assert_eq!(netdev::link_type(&root, "nope0"), None);
    assert!(pci::present(&root, &pf));
    assert!(!pci::present(&root, &a("3b:1f.7")));
    assert_eq!(netdev::link_down_reason(&root, "ens1f0"), None);
    assert_eq!(netdev::link_down_reason(&root, "nope0"), None);
    let ens = root.class_net("ens1f0");
    std::fs::write(ens.join("carrier"), "0\n").unwrap();
    assert_eq!(
        netdev::link_down_reason(&root, "ens1f0").as_deref(),
        Some("ens1f0 has no carrier")
    );
    // carrier unreadable (admin down): operstate says why.
    std::fs::remove_file(ens.join("carrier")).unwrap();
    std::fs::write(ens.join("operstate"), "down\n").unwrap();
    assert_eq!(
        netdev::link_down_reason(&root, "ens1f0").as_deref(),
        Some("ens1f0 is down")
    );
    let mtu = root.class_net("ens1f0").join("mtu");
    assert_eq!(root.read_attr(&mtu).unwrap(), "1500");
    let missing = root.class_net("nope0").join("mtu");
    let e = root.read_attr(&missing).unwrap_err().to_string();
    assert!(e.contains("nope0/mtu"), "{e}");
}
