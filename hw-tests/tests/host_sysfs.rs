//! The `host` crate's sysfs model and checked writes against the kernel's
//! real SR-IOV stack: discovery matches what sysfs and iproute2 show, VF
//! counts change (and refuse) as the kernel does, and driver binding moves a
//! VF to vfio-pci and back.

use std::time::Duration;

use sriov_host::driver::{self, BindOptions, DriverKind};
use sriov_host::error::Error;
use sriov_host::sriov::set_num_vfs;
use sriov_host::{HostRoot, PciAddress, scan};
use sriov_hw_tests::{HwPf, NumVfsGuard, iproute, pf, sysfs};

const WAIT: Duration = Duration::from_secs(10);

fn addr(pci: &str) -> PciAddress {
    PciAddress::parse(pci).unwrap_or_else(|| panic!("{pci} is not a PCI address"))
}

fn hex(path: std::path::PathBuf) -> u16 {
    let s = sysfs::read(&path).unwrap();
    u16::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

/// Everything `scan` says about one PF and its VFs, checked against sysfs
/// read by hand and against `ip link show`.
fn check_discovery(root: &HostRoot, pf: &HwPf, numvfs: u32) {
    let node = scan(root).unwrap();
    let f = node
        .get(&addr(&pf.pci))
        .unwrap_or_else(|| panic!("scan did not find PF {}", pf.pci));
    let dir = pf.dir();
    assert_eq!(f.vendor, hex(dir.join("vendor")));
    assert_eq!(f.device, hex(dir.join("device")));
    assert_eq!(f.driver.as_deref(), Some(pf.driver.as_str()));
    assert_eq!(
        f.iommu_group.map(|g| g.to_string()),
        sysfs::iommu_group(&pf.pci)
    );
    assert!(f.is_network(), "class {:#x}", f.class);
    let cap = f.sriov.as_ref().expect("PF without SR-IOV capability");
    assert_eq!(cap.total_vfs, pf.totalvfs);
    assert_eq!(cap.num_vfs, numvfs);
    assert_eq!(cap.vf_device, Some(hex(dir.join("sriov_vf_device"))));
    let want: Vec<String> = pf.vf_pcis();
    let got: Vec<String> = cap.vfs.iter().map(|l| l.address.to_string()).collect();
    assert_eq!(got, want, "virtfn links");
    assert_eq!(
        cap.vfs.iter().map(|l| l.index).collect::<Vec<_>>(),
        (0..numvfs).collect::<Vec<_>>()
    );
    // The PF's netdev, as sysfs and iproute2 show it.
    let nd = f.primary_netdev().expect("PF netdev");
    assert_eq!(nd.name, pf.ifname);
    assert_eq!(
        nd.mac.as_deref(),
        Some(
            sysfs::read(format!("/sys/class/net/{}/address", pf.ifname))
                .unwrap()
                .as_str()
        )
    );
    let ip = iproute::ip(&["-j", "link", "show", "dev", &pf.ifname]).unwrap();
    let ip: serde_json::Value = serde_json::from_str(&ip).unwrap();
    assert_eq!(nd.mac.as_deref(), ip[0]["address"].as_str());
    assert_eq!(nd.mtu.map(u64::from), ip[0]["mtu"].as_u64());
    assert_eq!(nd.ifindex.map(u64::from), ip[0]["ifindex"].as_u64());
    assert_eq!(
        node.by_ifname(&pf.ifname).map(|f| f.address),
        Some(f.address)
    );
    // The VFs.
    let vfs = node.vfs_of(&f.address);
    assert_eq!(vfs.len() as u32, numvfs);
    for (i, vf) in vfs.iter().enumerate() {
        let pci = vf.address.to_string();
        let info = vf.vf.expect("VF without VF info");
        assert_eq!((info.pf, info.index), (f.address, i as u32), "{pci}");
        assert_eq!(vf.device, hex(sysfs::pci_dir(&pci).join("device")));
        assert_eq!(vf.driver, sysfs::driver(&pci), "{pci} driver");
        assert_eq!(
            vf.iommu_group.map(|g| g.to_string()),
            sysfs::iommu_group(&pci)
        );
        let names: Vec<String> = vf.netdevs.iter().map(|n| n.name.clone()).collect();
        assert_eq!(names, sysfs::netdevs(&pci), "{pci} netdevs");
        assert_eq!(node.pf_of(&vf.address).map(|p| p.address), Some(f.address));
        assert_eq!(
            node.pf_netdev_of(&vf.address).map(|n| n.name.as_str()),
            Some(pf.ifname.as_str())
        );
        if pf.driver == "igb" {
            assert_eq!((vf.vendor, vf.device), (0x8086, 0x10ca));
            assert_eq!(vf.driver.as_deref(), Some("igbvf"));
        }
    }
    if pf.driver == "igb" {
        assert_eq!((f.vendor, f.device, cap.total_vfs), (0x8086, 0x10c9, 7));
    }
}

#[test]
fn discovery_matches_the_kernel() {
    let Some(pf) = pf("discovery_matches_the_kernel") else {
        return;
    };
    let _restore = NumVfsGuard::new(&pf).unwrap();
    let root = HostRoot::new("/");
    pf.set_numvfs(0).unwrap();
    check_discovery(&root, &pf, 0);
    let n = pf.totalvfs.min(3);
    pf.set_numvfs(n).unwrap();
    for i in 0..n {
        if pf.driver == "igb" {
            pf.wait_vf_netdev(i).unwrap();
        }
    }
    check_discovery(&root, &pf, n);
    if let Some(pf2) = &pf2_of(&pf) {
        let _restore2 = NumVfsGuard::new(pf2).unwrap();
        pf2.set_numvfs(0).unwrap();
        check_discovery(&root, pf2, 0);
    }
}

fn pf2_of(lock: &sriov_hw_tests::PfLock) -> Option<HwPf> {
    lock.pf2.clone()
}

#[test]
fn set_num_vfs_0_4_2_0() {
    let Some(pf) = pf("set_num_vfs_0_4_2_0") else {
        return;
    };
    let _restore = NumVfsGuard::new(&pf).unwrap();
    let root = HostRoot::new("/");
    let a = addr(&pf.pci);
    pf.set_numvfs(0).unwrap();
    let n = pf.totalvfs.min(4);
    let ch = set_num_vfs(&root, &a, n, WAIT).unwrap();
    assert_eq!((ch.previous, ch.current, ch.changed()), (0, n, true));
    assert_eq!(pf.numvfs().unwrap(), n);
    assert_eq!(pf.vf_pcis().len() as u32, n);
    // Non-zero to another non-zero count: the kernel alone says EBUSY; the
    // host crate goes through 0.
    let m = n.saturating_sub(2).max(1);
    let ch = set_num_vfs(&root, &a, m, WAIT).unwrap();
    assert_eq!((ch.previous, ch.current), (n, m));
    assert_eq!(pf.numvfs().unwrap(), m);
    assert_eq!(pf.vf_pcis().len() as u32, m);
    // Same count: nothing written.
    assert!(!set_num_vfs(&root, &a, m, WAIT).unwrap().changed());
    let ch = set_num_vfs(&root, &a, 0, WAIT).unwrap();
    assert_eq!((ch.previous, ch.current), (m, 0));
    assert!(pf.vf_pcis().is_empty());
}

#[test]
fn set_num_vfs_above_total_is_refused_before_writing() {
    let Some(pf) = pf("set_num_vfs_above_total_is_refused_before_writing") else {
        return;
    };
    let _restore = NumVfsGuard::new(&pf).unwrap();
    let root = HostRoot::new("/");
    pf.set_numvfs(1).unwrap();
    let err = set_num_vfs(&root, &addr(&pf.pci), pf.totalvfs + 1, WAIT).unwrap_err();
    assert!(
        matches!(err, Error::TooManyVfs { requested, total, .. } if requested == pf.totalvfs + 1 && total == pf.totalvfs),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&pf.pci) && msg.contains("sriov_numvfs"),
        "{msg}"
    );
    // Refused before writing: the existing VF is still there.
    assert_eq!(pf.numvfs().unwrap(), 1);
    assert_eq!(pf.vf_pcis().len(), 1);
}

#[test]
fn kernel_write_errors_carry_errno_and_path() {
    let Some(pf) = pf("kernel_write_errors_carry_errno_and_path") else {
        return;
    };
    let _restore = NumVfsGuard::new(&pf).unwrap();
    let root = HostRoot::new("/");
    let path = pf.dir().join("sriov_numvfs");
    pf.set_numvfs(0).unwrap();
    // ERANGE straight from the kernel, through the host crate's writer.
    let err = root
        .write_attr(&path, &(pf.totalvfs + 1).to_string())
        .unwrap_err();
    assert_eq!(err.errno(), Some(libc::ERANGE), "{err}");
    assert_eq!(err.path(), Some(path.as_path()));
    let msg = err.to_string();
    assert!(
        msg.contains("ERANGE") && msg.contains(&path.display().to_string()),
        "{msg}"
    );
    // EBUSY: a non-zero count changed without going through 0.
    if pf.totalvfs >= 2 {
        pf.set_numvfs(1).unwrap();
        let err = root.write_attr(&path, "2").unwrap_err();
        assert_eq!(err.errno(), Some(libc::EBUSY), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("EBUSY") && msg.contains(&path.display().to_string()),
            "{msg}"
        );
        assert_eq!(pf.numvfs().unwrap(), 1);
    }
}

#[test]
fn driver_bind_to_vfio_pci_and_back() {
    let Some(pf) = pf("driver_bind_to_vfio_pci_and_back") else {
        return;
    };
    let root = HostRoot::new("/");
    if !driver::driver_loaded(&root, "vfio-pci") {
        let _ = std::process::Command::new("modprobe")
            .arg("vfio-pci")
            .status();
    }
    driver::require_driver(&root, "vfio-pci").unwrap();
    let _restore = NumVfsGuard::new(&pf).unwrap();
    pf.set_numvfs(2).unwrap();
    let vf = addr(&pf.vf_pci(0).unwrap());
    let other = pf.vf_pci(1).unwrap();
    let vf_s = vf.to_string();
    let kernel = sriov_hw_tests::wait_for("VF 0 driver", 10.0, || sysfs::driver(&vf_s)).unwrap();
    let before = driver::driver_state(&root, &vf).unwrap();
    assert_eq!(before.driver.as_deref(), Some(kernel.as_str()));
    assert_eq!(before.driver_override, None);

    let out = driver::bind(&root, &vf, "vfio-pci", &BindOptions::default()).unwrap();
    assert_eq!(out.previous.as_deref(), Some(kernel.as_str()));
    assert_eq!(out.current.as_deref(), Some("vfio-pci"));
    assert_eq!(sysfs::driver(&vf_s).as_deref(), Some("vfio-pci"));
    assert_eq!(
        sysfs::read(sysfs::pci_dir(&vf_s).join("driver_override")).unwrap(),
        "vfio-pci"
    );
    assert_eq!(
        DriverKind::of(sysfs::driver(&vf_s).as_deref()),
        DriverKind::Userspace
    );
    assert!(sysfs::netdevs(&vf_s).is_empty());
    let group = sysfs::iommu_group(&vf_s).expect("IOMMU group");
    assert!(std::path::Path::new("/dev/vfio").join(&group).exists());
    // The other VF is untouched.
    assert_eq!(sysfs::driver(&other).as_deref(), Some(kernel.as_str()));
    // Binding again is a no-op.
    assert!(
        !driver::bind(&root, &vf, "vfio-pci", &BindOptions::default())
            .unwrap()
            .changed()
    );

    let out = driver::bind_default(&root, &vf, WAIT).unwrap();
    assert_eq!(out.previous.as_deref(), Some("vfio-pci"));
    assert_eq!(out.current.as_deref(), Some(kernel.as_str()));
    assert_eq!(driver::driver_state(&root, &vf).unwrap(), before);
    pf.wait_vf_netdev(0).unwrap();

    // A driver that is not loaded: refused, nothing changed.
    let err = driver::bind(&root, &vf, "no-such-driver", &BindOptions::default()).unwrap_err();
    assert!(matches!(err, Error::DriverNotLoaded { .. }), "{err}");
    assert_eq!(driver::driver_state(&root, &vf).unwrap(), before);
}
