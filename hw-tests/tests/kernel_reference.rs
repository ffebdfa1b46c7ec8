//! The kernel behaviour the project relies on, checked with plain sysfs
//! writes and iproute2 only (no project code): VF counts and their errors,
//! VF settings through `ip link set … vf …`, a VF netdev's trip through a
//! network namespace, and vfio-pci binding by `driver_override`. When one of
//! these fails, the kernel (or the NIC) is not what the rest of hw-tests
//! assumes.

use sriov_hw_tests::{NumVfsGuard, iproute, netns::NetnsGuard, pf, sysfs, wait_for};

#[test]
fn numvfs_0_to_4_to_0_creates_and_removes_vfs() {
    let Some(pf) = pf("numvfs_0_to_4_to_0_creates_and_removes_vfs") else {
        return;
    };
    let _restore = NumVfsGuard::new(&pf).unwrap();
    let n = pf.totalvfs.min(4);
    pf.set_numvfs(0).unwrap();
    assert!(pf.vf_pcis().is_empty(), "virtfn links left with 0 VFs");

    pf.write_numvfs(n).unwrap();
    assert_eq!(pf.numvfs().unwrap(), n);
    let vfs = wait_for("the VFs' virtfn links", 10.0, || {
        let v = pf.vf_pcis();
        (v.len() == n as usize).then_some(v)
    })
    .unwrap();
    for (i, vf) in vfs.iter().enumerate() {
        let physfn = sysfs::link_name(sysfs::pci_dir(vf).join("physfn"));
        assert_eq!(
            physfn.as_deref(),
            Some(pf.pci.as_str()),
            "VF {i} ({vf}) physfn"
        );
        let dev = sysfs::read(sysfs::pci_dir(vf).join("device")).unwrap();
        let vf_dev = sysfs::read(pf.dir().join("sriov_vf_device")).unwrap();
        assert_eq!(
            dev.trim_start_matches("0x"),
            vf_dev.trim_start_matches("0x")
        );
    }
    if pf.driver == "igb" {
        // The emulated 82576: VF 8086:10ca on igbvf, each with a netdev.
        for (i, vf) in vfs.iter().enumerate() {
            assert_eq!(
                sysfs::read(sysfs::pci_dir(vf).join("device")).unwrap(),
                "0x10ca"
            );
            let driver = wait_for(&format!("VF {i} driver"), 10.0, || sysfs::driver(vf)).unwrap();
            assert_eq!(driver, "igbvf", "VF {i} ({vf})");
            pf.wait_vf_netdev(i as u32).unwrap();
        }
    }

    pf.write_numvfs(0).unwrap();
    assert_eq!(pf.numvfs().unwrap(), 0);
    for vf in &vfs {
        wait_for(&format!("{vf} to disappear"), 10.0, || {
            (!sysfs::pci_dir(vf).exists()).then_some(())
        })
        .unwrap();
    }
    assert!(pf.vf_pcis().is_empty());
}

#[test]
fn numvfs_change_without_zero_is_ebusy() {
    let Some(pf) = pf("numvfs_change_without_zero_is_ebusy") else {
        return;
    };
    if pf.totalvfs < 2 {
        eprintln!(
            "SKIP numvfs_change_without_zero_is_ebusy: {} has < 2 VFs",
            pf.ifname
        );
        return;
    }
    let _restore = NumVfsGuard::new(&pf).unwrap();
    let n = pf.totalvfs.min(4);
    pf.set_numvfs(n).unwrap();
    let err = pf
        .write_numvfs(n + 1 - (n == pf.totalvfs) as u32 * 2)
        .unwrap_err();
    assert_eq!(err.errno(), Some(libc::EBUSY), "{err}");
    assert_eq!(
        pf.numvfs().unwrap(),
        n,
        "a refused write changed the VF count"
    );
    // Writing the same count again is accepted and changes nothing.
    pf.write_numvfs(n).unwrap();
    assert_eq!(pf.vf_pcis().len(), n as usize);
}

#[test]
fn numvfs_above_total_is_erange() {
    let Some(pf) = pf("numvfs_above_total_is_erange") else {
        return;
    };
    let _restore = NumVfsGuard::new(&pf).unwrap();
    pf.set_numvfs(0).unwrap();
    if pf.driver == "igb" {
        assert_eq!(pf.totalvfs, 7, "the 82576 has 7 VFs per PF");
    }
    let err = pf.write_numvfs(pf.totalvfs + 1).unwrap_err();
    assert_eq!(err.errno(), Some(libc::ERANGE), "{err}");
    assert_eq!(pf.numvfs().unwrap(), 0);
    assert!(pf.vf_pcis().is_empty());
}

#[test]
fn ip_link_vf_settings_show_in_ip_link_show() {
    let Some(pf) = pf("ip_link_vf_settings_show_in_ip_link_show") else {
        return;
    };
    let _restore = NumVfsGuard::new(&pf).unwrap();
    pf.set_numvfs(pf.totalvfs.min(2)).unwrap();
    iproute::ip(&[
        "link",
        "set",
        "dev",
        &pf.ifname,
        "vf",
        "0",
        "mac",
        "02:11:22:33:44:55",
        "vlan",
        "100",
        "qos",
        "3",
        "spoofchk",
        "off",
        "trust",
        "on",
    ])
    .unwrap();
    let vfs = iproute::vfs(&pf.ifname).unwrap();
    let vf0 = vfs
        .iter()
        .find(|v| v.vf == 0)
        .expect("vf 0 in ip -j link show");
    assert_eq!(vf0.mac, "02:11:22:33:44:55");
    assert_eq!((vf0.vlan, vf0.qos), (100, 3));
    assert_eq!(vf0.spoofchk, Some(false));
    assert_eq!(vf0.trust, Some(true));
    // The plain text form says the same.
    iproute::assert_vf_line(
        &pf.ifname,
        0,
        &[
            "02:11:22:33:44:55",
            "vlan 100",
            "qos 3",
            "spoof checking off",
            "trust on",
        ],
    );
    // The other VF is untouched.
    if let Some(vf1) = vfs.iter().find(|v| v.vf == 1) {
        assert_eq!((vf1.vlan, vf1.qos, vf1.trust), (0, 0, Some(false)));
    }
    // Back to defaults.
    iproute::ip(&[
        "link", "set", "dev", &pf.ifname, "vf", "0", "vlan", "0", "spoofchk", "on", "trust", "off",
    ])
    .unwrap();
    let vf0 = iproute::vfs(&pf.ifname).unwrap().remove(0);
    assert_eq!(
        (vf0.vlan, vf0.qos, vf0.spoofchk, vf0.trust),
        (0, 0, Some(true), Some(false))
    );
}

#[test]
fn ip_link_vf_state_is_unsupported_on_igb() {
    let Some(pf) = pf("ip_link_vf_state_is_unsupported_on_igb") else {
        return;
    };
    if pf.driver != "igb" {
        eprintln!(
            "SKIP ip_link_vf_state_is_unsupported_on_igb: {} is on {}",
            pf.ifname, pf.driver
        );
        return;
    }
    let _restore = NumVfsGuard::new(&pf).unwrap();
    pf.set_numvfs(1).unwrap();
    let err = iproute::ip(&[
        "link", "set", "dev", &pf.ifname, "vf", "0", "state", "enable",
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("Operation not supported"), "{err}");
}

#[test]
fn vf_netdev_moves_into_a_netns_renamed_and_back() {
    let Some(pf) = pf("vf_netdev_moves_into_a_netns_renamed_and_back") else {
        return;
    };
    let _restore = NumVfsGuard::new(&pf).unwrap();
    pf.set_numvfs(1).unwrap();
    let vf_pci = pf.vf_pci(0).unwrap();
    let name = pf.wait_vf_netdev(0).unwrap();
    let ns = NetnsGuard::new("hwns").unwrap();
    iproute::ip(&["link", "set", "dev", &name, "netns", ns.name()]).unwrap();
    assert!(
        !iproute::link_exists(None, &name),
        "{name} still in the host netns"
    );
    iproute::ip(&[
        "-n",
        ns.name(),
        "link",
        "set",
        "dev",
        &name,
        "name",
        "hwvf0",
    ])
    .unwrap();
    assert!(iproute::link_exists(Some(ns.name()), "hwvf0"));
    iproute::ip(&["-n", ns.name(), "link", "set", "dev", "hwvf0", "up"]).unwrap();
    // Back home under its old name.
    iproute::ip(&["-n", ns.name(), "link", "set", "dev", "hwvf0", "down"]).unwrap();
    iproute::ip(&[
        "-n",
        ns.name(),
        "link",
        "set",
        "dev",
        "hwvf0",
        "name",
        &name,
    ])
    .unwrap();
    iproute::ip(&["-n", ns.name(), "link", "set", "dev", &name, "netns", "1"]).unwrap();
    assert!(iproute::link_exists(None, &name));
    assert_eq!(sysfs::netdevs(&vf_pci), vec![name.clone()]);
}

#[test]
fn vf_binds_to_vfio_pci_by_driver_override_and_back() {
    let Some(pf) = pf("vf_binds_to_vfio_pci_by_driver_override_and_back") else {
        return;
    };
    let vfio = std::path::Path::new("/sys/bus/pci/drivers/vfio-pci");
    if !vfio.exists() {
        let _ = std::process::Command::new("modprobe")
            .arg("vfio-pci")
            .status();
    }
    assert!(vfio.exists(), "vfio-pci is not loaded (modprobe vfio-pci)");
    let _restore = NumVfsGuard::new(&pf).unwrap();
    pf.set_numvfs(1).unwrap();
    let vf = pf.vf_pci(0).unwrap();
    let dir = sysfs::pci_dir(&vf);
    let kernel_driver = wait_for("the VF's kernel driver", 10.0, || sysfs::driver(&vf)).unwrap();
    let group = sysfs::iommu_group(&vf).expect("VF has an IOMMU group (intel_iommu=on?)");

    sysfs::write(dir.join("driver_override"), "vfio-pci").unwrap();
    sysfs::write(dir.join("driver/unbind"), &vf).unwrap();
    sysfs::write("/sys/bus/pci/drivers_probe", &vf).unwrap();
    assert_eq!(sysfs::driver(&vf).as_deref(), Some("vfio-pci"));
    assert!(
        sysfs::netdevs(&vf).is_empty(),
        "a vfio-pci VF has no netdev"
    );
    let dev = std::path::Path::new("/dev/vfio").join(&group);
    wait_for(&format!("{}", dev.display()), 5.0, || {
        dev.exists().then_some(())
    })
    .unwrap();

    sysfs::write(dir.join("driver_override"), "\n").unwrap();
    sysfs::write(dir.join("driver/unbind"), &vf).unwrap();
    sysfs::write("/sys/bus/pci/drivers_probe", &vf).unwrap();
    assert_eq!(sysfs::driver(&vf), Some(kernel_driver));
    assert_eq!(sysfs::read(dir.join("driver_override")).unwrap(), "(null)");
    pf.wait_vf_netdev(0).unwrap();
}
