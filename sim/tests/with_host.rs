//! The mounted simulated node read and driven through the `host` crate.
//! Lane: fuse.

use std::time::Duration;

use sriov_host::uevent::{self, Action};
use sriov_sim::lanes::{self, Lane};
use sriov_sim::mount::mounts_under;
use sriov_sim::uevent::UeventListener;
use sriov_sim::{SimNode, SimOptions};

/// The simulator's uevents parse with the host crate's kernel-format parser,
/// with the fields a consumer uses.
#[test]
fn host_parses_the_simulated_uevents() {
    if !lanes::require("host_parses_the_simulated_uevents", &[Lane::Fuse]) {
        return;
    }
    let sim = SimNode::start("mixed", SimOptions::default()).unwrap();
    let root = sim.root().to_path_buf();
    let listener = UeventListener::bind(&root, "host").unwrap();
    std::fs::write(
        root.join("sys/bus/pci/devices/0000:3b:00.1/sriov_numvfs"),
        "2\n",
    )
    .unwrap();
    let mut events = Vec::new();
    while let Ok(b) = listener.recv(Duration::from_millis(500)) {
        events.push(uevent::parse(&b).expect("a kernel-format uevent"));
    }
    // Per VF: pci add, net add, pci bind; then the PF change.
    assert_eq!(events.len(), 7, "{events:#?}");
    let adds: Vec<_> = events
        .iter()
        .filter(|e| e.action == Action::Add && e.subsystem == "pci")
        .map(|e| e.pci_slot.clone().unwrap())
        .collect();
    assert_eq!(adds, ["0000:3b:12.0", "0000:3b:12.1"]);
    let nets: Vec<_> = events
        .iter()
        .filter(|e| e.subsystem == "net")
        .map(|e| e.interface.clone().unwrap())
        .collect();
    assert_eq!(nets, ["ens1f1v0", "ens1f1v1"]);
    let binds: Vec<_> = events
        .iter()
        .filter(|e| e.action == Action::Bind)
        .map(|e| e.driver.clone().unwrap())
        .collect();
    assert_eq!(binds, ["iavf", "iavf"]);
    let last = events.last().unwrap();
    assert_eq!(last.action, Action::Change);
    assert!(last.devpath.ends_with("/0000:3b:00.1"));
    assert!(events.windows(2).all(|w| w[0].seqnum < w[1].seqnum));
    drop(listener);
    drop(sim);
    assert!(mounts_under(&root).is_empty());
    assert!(!root.exists());
}

mod host_flows {
    use std::time::Duration;

    use sriov_host::driver::{self, BindOptions};
    use sriov_host::pci::{PciAddress, PciFunction};
    use sriov_host::root::HostRoot;
    use sriov_host::{scan, sriov};
    use sriov_sim::lanes::{self, Lane};
    use sriov_sim::mount::mounts_under;
    use sriov_sim::node::NodeSpec;
    use sriov_sim::{SimNode, SimOptions};

    const T: Duration = Duration::from_secs(5);

    fn addr(s: &str) -> PciAddress {
        PciAddress::parse(s).unwrap()
    }

    /// Checks after the node is gone that nothing is left mounted.
    struct Unmounted(std::path::PathBuf);
    impl Drop for Unmounted {
        fn drop(&mut self) {
            let m = mounts_under(&self.0);
            if !std::thread::panicking() {
                assert!(m.is_empty(), "left mounted: {m:?}");
            }
        }
    }

    fn start(node: impl sriov_sim::mount::IntoNodeSpec) -> (Unmounted, SimNode, HostRoot) {
        let sim = SimNode::start(node, SimOptions::default()).unwrap();
        let root = HostRoot::new(sim.root());
        (Unmounted(sim.root().to_path_buf()), sim, root)
    }

    #[test]
    fn host_scan_sees_the_mixed_node() {
        if !lanes::require("host_scan_sees_the_mixed_node", &[Lane::Fuse]) {
            return;
        }
        let (_u, _sim, root) = start("mixed");
        let node = scan::scan(&root).unwrap();
        assert_eq!(node.len(), 12);
        assert_eq!(node.pfs().count(), 5, "virtio has no SR-IOV");
        let pf = node.get(&addr("0000:3b:00.0")).unwrap();
        let cap = pf.sriov.as_ref().unwrap();
        assert_eq!((cap.total_vfs, cap.num_vfs), (128, 4));
        assert_eq!((cap.offset, cap.stride), (Some(16), Some(1)));
        assert_eq!(cap.vf_device, Some(0x1889));
        assert_eq!(pf.numa_node, Some(0));
        assert_eq!(pf.driver.as_deref(), Some("ice"));
        assert_eq!(pf.netdevs[0].name, "ens1f0");
        let vfs = node.vfs_of(&addr("0000:3b:00.0"));
        assert_eq!(vfs.len(), 4);
        assert_eq!(vfs[3].vf.as_ref().unwrap().index, 3);
        assert_eq!(vfs[3].netdevs[0].name, "ens1f0v3");
        assert_eq!(node.pf_netdev_of(&vfs[0].address).unwrap().name, "ens1f0");
        let cx = node.get(&addr("0000:af:00.0")).unwrap();
        assert_eq!(cx.numa_node, Some(1));
        assert_eq!(cx.rdma.len(), 1);
        assert_eq!(node.vfs_of(&cx.address).len(), 2);
        let v = node.get(&addr("0000:00:03.0")).unwrap();
        assert_eq!(v.numa_node, None);
        assert!(v.sriov.is_none());
    }

    #[test]
    fn host_sets_vf_counts_through_the_mount() {
        if !lanes::require("host_sets_vf_counts_through_the_mount", &[Lane::Fuse]) {
            return;
        }
        let (_u, _sim, root) = start("mixed");
        let pf = addr("0000:3b:00.1");
        let c = sriov::set_num_vfs(&root, &pf, 4, T).unwrap();
        assert_eq!((c.previous, c.current), (0, 4));
        let f = PciFunction::read(&root, &pf).unwrap();
        assert_eq!(f.sriov.as_ref().unwrap().vfs.len(), 4);
        // 4 -> 2 goes through 0, as the kernel requires.
        let c = sriov::set_num_vfs(&root, &pf, 2, T).unwrap();
        assert_eq!((c.previous, c.current), (4, 2));
        let node = scan::scan(&root).unwrap();
        assert_eq!(node.vfs_of(&pf).len(), 2);
        assert!(node.get(&addr("0000:3b:12.2")).is_none());
        assert!(!sriov::set_num_vfs(&root, &pf, 2, T).unwrap().changed());
        assert!(sriov::set_num_vfs(&root, &pf, 129, T).is_err());
        let c = sriov::set_num_vfs(&root, &pf, 0, T).unwrap();
        assert_eq!(c.current, 0);
        assert_eq!(scan::scan(&root).unwrap().vfs_of(&pf).len(), 0);
        // Without a PF driver the kernel says ENOENT, with the path.
        driver::unbind(&root, &pf).unwrap();
        let e = sriov::set_num_vfs(&root, &pf, 1, T).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENOENT), "{e}");
        assert!(e.to_string().contains("sriov_numvfs"), "{e}");
    }

    #[test]
    fn host_sees_injected_faults() {
        if !lanes::require("host_sees_injected_faults", &[Lane::Fuse]) {
            return;
        }
        let spec = |faults: &str| {
            NodeSpec::from_yaml(
                &format!(
                    "pfs: [{{model: e810, address: '0000:3b:00.0', ifname: f0, faults: {faults}}}]"
                ),
                "test",
            )
            .unwrap()
        };
        let pf = addr("0000:3b:00.0");
        {
            let (_u, _sim, root) = start(spec("{numvfs_enomem: true}"));
            let e = sriov::set_num_vfs(&root, &pf, 2, T).unwrap_err();
            assert_eq!(e.errno(), Some(libc::ENOMEM), "{e}");
        }
        {
            // The write returns before the VFs exist; the host waits for them.
            let (_u, _sim, root) = start(spec("{vfs_late_ms: 300}"));
            let t = std::time::Instant::now();
            sriov::set_num_vfs(&root, &pf, 3, T).unwrap();
            assert!(t.elapsed() >= Duration::from_millis(300));
            assert_eq!(scan::scan(&root).unwrap().vfs_of(&pf).len(), 3);
            // A bound shorter than the delay times out.
            sriov::set_num_vfs(&root, &pf, 0, T).unwrap();
            assert!(sriov::set_num_vfs(&root, &pf, 3, Duration::from_millis(50)).is_err());
        }
    }

    #[test]
    fn host_binds_a_vf_to_vfio_and_back() {
        if !lanes::require("host_binds_a_vf_to_vfio_and_back", &[Lane::Fuse]) {
            return;
        }
        let (_u, sim, root) = start("mixed");
        let vf = addr("0000:3b:02.1");
        let before = driver::driver_state(&root, &vf).unwrap();
        assert_eq!(before.driver.as_deref(), Some("iavf"));
        let group = PciFunction::read(&root, &vf).unwrap().iommu_group.unwrap();
        let out = driver::bind(&root, &vf, "vfio-pci", &BindOptions::default()).unwrap();
        assert_eq!(out.previous.as_deref(), Some("iavf"));
        assert_eq!(out.current.as_deref(), Some("vfio-pci"));
        assert!(root.vfio_group_dev(group).exists());
        assert!(sim.root().join(format!("dev/vfio/{group}")).exists());
        let f = PciFunction::read(&root, &vf).unwrap();
        assert_eq!(f.driver_override.as_deref(), Some("vfio-pci"));
        assert!(f.netdevs.is_empty());
        // Back to the kernel driver: netdev returns, vfio group goes.
        driver::restore(&root, &vf, &before, T).unwrap();
        let f = PciFunction::read(&root, &vf).unwrap();
        assert_eq!(f.driver.as_deref(), Some("iavf"));
        assert_eq!(f.driver_override, None);
        assert_eq!(f.netdevs[0].name, "ens1f0v1");
        assert!(!root.vfio_group_dev(group).exists());
        // And with bind(): to vfio-pci, then to iavf without keeping an override.
        driver::bind(&root, &vf, "vfio-pci", &BindOptions::default()).unwrap();
        let opts = BindOptions {
            keep_override: false,
            ..BindOptions::default()
        };
        let out = driver::bind(&root, &vf, "iavf", &opts).unwrap();
        assert_eq!(out.current.as_deref(), Some("iavf"));
        assert_eq!(
            driver::driver_state(&root, &vf).unwrap().driver_override,
            None
        );
        // A driver that does not handle the device: the kernel's ENODEV
        // comes back and the previous binding stays.
        let e = driver::bind(&root, &vf, "ice", &opts).unwrap_err();
        assert!(e.to_string().contains("0000:3b:02.1"), "{e}");
        assert_eq!(
            driver::current_driver(&root, &vf).unwrap().as_deref(),
            Some("iavf")
        );
    }
}
