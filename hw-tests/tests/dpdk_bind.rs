//! The `dpdk-bind` binary on the kernel's real SR-IOV stack: status before
//! and after binding a VF to vfio-pci and back, and its refusals.

use std::path::PathBuf;

use serde_json::Value;
use sriov_hw_tests::{NumVfsGuard, dpdk_bind, iproute, pf, sysfs, wait_for};

fn binary(test: &str) -> Option<PathBuf> {
    sriov_hw_tests::binary_for(test, "SRIOV_HW_DPDK_BIND", "dpdk-bind", "dpdk-bind")
}

fn hex_id(v: &Value) -> String {
    v.as_str()
        .map(|s| s.trim_start_matches("0x").to_ascii_lowercase())
        .unwrap_or_else(|| panic!("not a hex id string: {v}"))
}

fn sysfs_id(pci: &str, attr: &str) -> String {
    sysfs::read(sysfs::pci_dir(pci).join(attr))
        .unwrap()
        .trim_start_matches("0x")
        .to_string()
}

/// `status --json` says what sysfs says about one function.
fn check_entry(list: &[Value], pci: &str) -> Value {
    let e = dpdk_bind::entry(list, pci)
        .unwrap_or_else(|| panic!("{pci} missing from dpdk-bind status --json"))
        .clone();
    assert_eq!(hex_id(&e["vendor"]), sysfs_id(pci, "vendor"), "{e}");
    assert_eq!(hex_id(&e["device"]), sysfs_id(pci, "device"), "{e}");
    assert_eq!(
        e["driver"].as_str().map(str::to_string),
        sysfs::driver(pci),
        "{e}"
    );
    assert_eq!(
        e["ifname"].as_str().map(str::to_string),
        sysfs::netdevs(pci).into_iter().next(),
        "{e}"
    );
    let group = e["iommu_group"]
        .as_u64()
        .map(|g| g.to_string())
        .or_else(|| e["iommu_group"].as_str().map(str::to_string));
    assert_eq!(group, sysfs::iommu_group(pci), "{e}");
    e
}

#[test]
fn dpdk_bind_vf_to_vfio_pci_and_back_with_status() {
    let test = "dpdk_bind_vf_to_vfio_pci_and_back_with_status";
    let Some(pf) = pf(test) else {
        return;
    };
    let Some(bin) = binary(test) else {
        return;
    };
    if !std::path::Path::new("/sys/bus/pci/drivers/vfio-pci").exists() {
        let _ = std::process::Command::new("modprobe")
            .arg("vfio-pci")
            .status();
    }
    let _restore = NumVfsGuard::new(&pf).unwrap();
    pf.set_numvfs(0).unwrap();
    pf.set_numvfs(pf.totalvfs.min(2)).unwrap();
    let vf = pf.vf_pci(0).unwrap();
    let ifname = pf.wait_vf_netdev(0).unwrap();
    let kernel_driver = sysfs::driver(&vf).unwrap();

    // Before: the PF with its VF counts, the VF on its kernel driver.
    let before = dpdk_bind::status(&bin).unwrap();
    let p = check_entry(&before, &pf.pci);
    assert_eq!(
        p["sriov_numvfs"].as_u64(),
        Some(u64::from(pf.numvfs().unwrap())),
        "{p}"
    );
    assert_eq!(
        p["sriov_totalvfs"].as_u64(),
        Some(u64::from(pf.totalvfs)),
        "{p}"
    );
    assert_eq!(p["ifname"].as_str(), Some(pf.ifname.as_str()));
    let v = check_entry(&before, &vf);
    assert_eq!(v["pf"].as_str(), Some(pf.pci.as_str()), "{v}");
    assert_eq!(v["vf_index"].as_u64(), Some(0), "{v}");
    assert_eq!(v["ifname"].as_str(), Some(ifname.as_str()), "{v}");
    assert!(v["sriov_numvfs"].is_null(), "{v}");
    // The text form names the VF and its driver too.
    let text = dpdk_bind::ok(&bin, &["status"]).unwrap();
    assert!(
        text.contains(&vf) && text.contains(&kernel_driver),
        "{text}"
    );

    // Bind by interface name.
    dpdk_bind::ok(&bin, &["bind", "vfio-pci", &ifname]).unwrap();
    assert_eq!(sysfs::driver(&vf).as_deref(), Some("vfio-pci"));
    let group = sysfs::iommu_group(&vf).unwrap();
    assert!(std::path::Path::new("/dev/vfio").join(&group).exists());
    let during = dpdk_bind::status(&bin).unwrap();
    let v = check_entry(&during, &vf);
    assert_eq!(v["driver"].as_str(), Some("vfio-pci"));
    assert!(v["ifname"].is_null(), "{v}");
    assert_eq!(v["vf_index"].as_u64(), Some(0), "{v}");

    // And back, by short PCI address (bus:dev.fn, no domain).
    let short = vf.split_once(':').map(|(_, s)| s).unwrap();
    dpdk_bind::ok(&bin, &["bind", &kernel_driver, short]).unwrap();
    assert_eq!(sysfs::driver(&vf).as_deref(), Some(kernel_driver.as_str()));
    pf.wait_vf_netdev(0).unwrap();
    let after = dpdk_bind::status(&bin).unwrap();
    let v = check_entry(&after, &vf);
    assert_eq!(v["driver"].as_str(), Some(kernel_driver.as_str()));
    let override_now = sysfs::read(sysfs::pci_dir(&vf).join("driver_override")).unwrap();
    assert_eq!(
        override_now, "(null)",
        "driver_override left set after binding back"
    );
}

#[test]
fn dpdk_bind_refuses_an_up_interface_with_routes_and_unknown_drivers() {
    let test = "dpdk_bind_refuses_an_up_interface_with_routes_and_unknown_drivers";
    let Some(pf) = pf(test) else {
        return;
    };
    let Some(bin) = binary(test) else {
        return;
    };
    let _restore = NumVfsGuard::new(&pf).unwrap();
    pf.set_numvfs(0).unwrap();
    pf.set_numvfs(1).unwrap();
    let vf = pf.vf_pci(0).unwrap();
    let ifname = pf.wait_vf_netdev(0).unwrap();
    let driver = sysfs::driver(&vf).unwrap();

    // A driver that does not exist: refused, nothing changed.
    let out = dpdk_bind::run(&bin, &["bind", "no-such-driver", &vf]).unwrap();
    assert!(!out.status.success());
    assert_eq!(sysfs::driver(&vf).as_deref(), Some(driver.as_str()));

    // Up with an address (so a route): unbind is refused without --force.
    // The VF's link follows the PF's, so the PF goes up for this (and back
    // down after). TEST-NET-1 on the VF: nothing is sent anywhere.
    let _pf_up = iproute::LinkUpGuard::new(&pf.ifname).unwrap();
    let _vf_up = iproute::LinkUpGuard::new(&ifname).unwrap();
    iproute::ip(&["addr", "add", "192.0.2.10/24", "dev", &ifname]).unwrap();
    let up = wait_for("the VF's operstate up", 15.0, || {
        (sysfs::read(format!("/sys/class/net/{ifname}/operstate")).ok()? == "up").then_some(())
    });
    if let Err(e) = up {
        // A real PF without a cable never gets the VF's link up.
        if pf.driver == "igb" {
            panic!("{e}");
        }
        eprintln!("SKIP the refusal check on {}: {e}", pf.ifname);
        return;
    }
    let out = dpdk_bind::run(&bin, &["unbind", &ifname]).unwrap();
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !out.status.success(),
        "unbind of an up interface with routes succeeded: {msg}"
    );
    assert!(msg.contains(&ifname), "{msg}");
    assert_eq!(sysfs::driver(&vf).as_deref(), Some(driver.as_str()));
    // With --force it goes through.
    dpdk_bind::ok(&bin, &["unbind", "--force", &ifname]).unwrap();
    assert_eq!(sysfs::driver(&vf), None);
    sysfs::override_bind(&vf, None).unwrap();
    assert_eq!(sysfs::driver(&vf).as_deref(), Some(driver.as_str()));
}
