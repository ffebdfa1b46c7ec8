//! The device plugin's pools and health on real VFs: which VFs a config's
//! selectors pick, health following the PF's carrier, a VF moving from
//! the netdevice pool to the vfio-pci pool when its driver changes, and
//! Allocate answers for a kernel-driver VF and a vfio-pci VF (env, INFO
//! JSON, the VF's real `/dev/vfio/<group>`, device-info files), and
//! removed VFs listed Unhealthy before they are dropped.

use std::time::Duration;

use serde_json::Value;
use sriov_device_plugin::allocate::{self, AllocateContext};
use sriov_device_plugin::config::Config;
use sriov_device_plugin::device::DeviceId;
use sriov_device_plugin::pools::{self, Pools};
use sriov_host::{HostRoot, PciAddress, driver, scan};
use sriov_hw_tests::{NumVfsGuard, TempDir, iproute, pf, sysfs, wait_for};

const NETDEV: &str = "intel.com/hw_netdev";
const VFIO: &str = "intel.com/hw_vfio";

fn addr(pci: &str) -> PciAddress {
    PciAddress::parse(pci).unwrap()
}

fn id(pci: &str) -> DeviceId {
    DeviceId::Pci(addr(pci))
}

fn build(root: &HostRoot, config: &Config, previous: &Pools) -> Pools {
    let node = scan(root).unwrap();
    let (devices, env) = pools::discover(root, config, &node);
    pools::build(root, config, &devices, &env, previous)
}

fn members(pools: &Pools, name: &str) -> Vec<PciAddress> {
    pools
        .get(name)
        .map(|p| {
            p.devices
                .keys()
                .filter_map(|k| match k {
                    DeviceId::Pci(a) => Some(*a),
                    DeviceId::Aux(_) => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn carrier_up(ifname: &str) -> bool {
    sysfs::read(format!("/sys/class/net/{ifname}/carrier")).is_ok_and(|c| c == "1")
}

#[test]
fn device_plugin_pools_and_health_on_real_vfs() {
    let Some(pf) = pf("device_plugin_pools_and_health_on_real_vfs") else {
        return;
    };
    let root = HostRoot::new("/");
    if !driver::driver_loaded(&root, "vfio-pci") {
        let _ = std::process::Command::new("modprobe")
            .arg("vfio-pci")
            .status();
    }
    let _restore = NumVfsGuard::new(&pf).unwrap();
    pf.set_numvfs(0).unwrap();
    pf.set_numvfs(pf.totalvfs.min(3)).unwrap();
    let vfs: Vec<String> = pf.vf_pcis();
    assert!(vfs.len() >= 3, "{vfs:?}");
    let kernel = wait_for("VF 0 driver", 10.0, || sysfs::driver(&vfs[0])).unwrap();
    for i in 0..3 {
        pf.wait_vf_netdev(i).unwrap();
    }
    let config = Config::parse(
        &format!(
            r#"{{"resourceList": [
                {{"resourceName": "hw_netdev",
                  "selectors": {{"pfNames": ["{pf}#0-1"], "drivers": ["{kernel}"]}}}},
                {{"resourceName": "hw_vfio", "deviceType": "netDevice",
                  "selectors": {{"pfNames": ["{pf}"], "drivers": ["vfio-pci"]}}}}
            ]}}"#,
            pf = pf.ifname
        ),
        "hw-test config",
        "intel.com",
    )
    .unwrap();

    // The PF's link up: the VFs are healthy.
    let pf_up = iproute::LinkUpGuard::new(&pf.ifname).unwrap();
    if wait_for("PF carrier", 15.0, || carrier_up(&pf.ifname).then_some(())).is_err() {
        if pf.driver == "igb" {
            panic!("{}: no carrier after link up in the VM", pf.ifname);
        }
        eprintln!(
            "SKIP device_plugin_pools_and_health_on_real_vfs: {} has no carrier",
            pf.ifname
        );
        return;
    }
    let mut pools = build(&root, &config, &Pools::new());
    assert_eq!(
        members(&pools, NETDEV),
        vec![addr(&vfs[0]), addr(&vfs[1])],
        "{pools:?}"
    );
    assert!(
        !pools.contains_key(VFIO),
        "an empty pool was made: {pools:?}"
    );
    let netdev = &pools[NETDEV];
    assert_eq!(netdev.healthy_count(), 2, "{netdev:?}");
    let d0 = &netdev.devices[&id(&vfs[0])].device;
    assert_eq!(d0.pf, Some(addr(&pf.pci)));
    assert_eq!(d0.vf_index, Some(0));
    assert_eq!(d0.pf_ifname.as_deref(), Some(pf.ifname.as_str()));
    assert_eq!(d0.ifname, sysfs::netdevs(&vfs[0]).into_iter().next());
    assert_eq!(d0.driver.as_deref(), Some(kernel.as_str()));

    // PF down: every VF of the pool unhealthy, saying why.
    iproute::ip(&["link", "set", "dev", &pf.ifname, "down"]).unwrap();
    let changed = pools::recheck(&root, &mut pools);
    assert_eq!(changed, vec![NETDEV.to_string()]);
    for d in pools[NETDEV].devices.values() {
        let why = d
            .unhealthy
            .as_deref()
            .unwrap_or_else(|| panic!("healthy with PF down: {d:?}"));
        assert!(why.contains(&pf.ifname), "{why}");
    }
    // Up again: healthy again once the carrier is back.
    iproute::ip(&["link", "set", "dev", &pf.ifname, "up"]).unwrap();
    wait_for("healthy VFs after PF up", 15.0, || {
        pools::recheck(&root, &mut pools);
        (pools[NETDEV].healthy_count() == 2).then_some(())
    })
    .unwrap();

    // VF 1 to vfio-pci: unhealthy in its pool at once, then in the vfio pool.
    let vf1 = addr(&vfs[1]);
    driver::bind(&root, &vf1, "vfio-pci", &driver::BindOptions::default()).unwrap();
    pools::recheck(&root, &mut pools);
    let why = pools[NETDEV].devices[&DeviceId::Pci(vf1)]
        .unhealthy
        .clone()
        .expect("VF 1 still healthy");
    assert!(why.contains("vfio-pci"), "{why}");
    let pools = build(&root, &config, &pools);
    assert_eq!(members(&pools, NETDEV), vec![addr(&vfs[0])], "{pools:?}");
    assert_eq!(members(&pools, VFIO), vec![vf1], "{pools:?}");
    let v = &pools[VFIO].devices[&DeviceId::Pci(vf1)];
    assert!(v.healthy(), "{v:?}");
    assert!(v.device.is_vfio());
    assert_eq!(
        v.device.iommu_group.map(|g| g.to_string()),
        sysfs::iommu_group(&vfs[1])
    );

    allocate_on_real_vfs(&root, &pools, &pf.pci, &vfs[0], &vfs[1]);

    driver::bind_default(&root, &vf1, Duration::from_secs(10)).unwrap();
    wait_for("VF 1 back on its driver", 10.0, || {
        (sysfs::driver(&vfs[1]).as_deref() == Some(kernel.as_str())).then_some(())
    })
    .unwrap();
    let pools = build(&root, &config, &pools);
    assert_eq!(
        members(&pools, NETDEV),
        vec![addr(&vfs[0]), vf1],
        "{pools:?}"
    );

    // VFs removed by the kernel: the next scan lists them Unhealthy
    // ("device vanished"), the first health check after the grace drops
    // them (and the pool, now empty).
    pf.set_numvfs(0).unwrap();
    let mut pools = build(&root, &config, &pools);
    let netdev = &pools[NETDEV];
    assert_eq!(netdev.devices.len(), 2, "{pools:?}");
    for d in netdev.devices.values() {
        assert_eq!(d.unhealthy.as_deref(), Some("device vanished"), "{d:?}");
    }
    std::thread::sleep(pools::VANISHED_GRACE);
    let changed = pools::recheck(&root, &mut pools);
    assert_eq!(changed, vec![NETDEV.to_string()]);
    assert!(pools.is_empty(), "{pools:?}");
    drop(pf_up);
}

/// Allocate of `netdev_vf` from the netdevice pool and `vfio_vf` from the
/// vfio pool, as the kubelet would ask: env, INFO JSON, device specs and
/// device-info files name the real devices.
fn allocate_on_real_vfs(
    root: &HostRoot,
    pools: &Pools,
    pf_pci: &str,
    netdev_vf: &str,
    vfio_vf: &str,
) {
    let devinfo = TempDir::new("hwdpinfo").unwrap();
    let ctx = AllocateContext {
        root: root.clone(),
        devinfo_dir: devinfo.path().to_path_buf(),
        cdi_dir: None,
    };

    let r = allocate::container_response(&ctx, &pools[NETDEV], &[netdev_vf.to_string()]).unwrap();
    assert_eq!(r.envs["PCIDEVICE_INTEL_COM_HW_NETDEV"], netdev_vf, "{r:?}");
    let info: Value = serde_json::from_str(&r.envs["PCIDEVICE_INTEL_COM_HW_NETDEV_INFO"]).unwrap();
    assert_eq!(info[netdev_vf]["generic"]["deviceID"], netdev_vf, "{info}");
    assert!(info[netdev_vf].get("vfio").is_none(), "{info}");
    assert!(
        r.devices.is_empty(),
        "a kernel-driver VF needs no device node: {r:?}"
    );
    let file = allocate::device_info_file(devinfo.path(), "intel.com", "hw_netdev", netdev_vf);
    let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(doc["type"], "pci", "{doc}");
    assert_eq!(doc["pci"]["pci-address"], netdev_vf, "{doc}");
    assert_eq!(doc["pci"]["pf-pci-address"], pf_pci, "{doc}");

    let group = sysfs::iommu_group(vfio_vf).expect("vfio-pci VF without an IOMMU group");
    let dev = format!("/dev/vfio/{group}");
    assert!(std::path::Path::new(&dev).exists(), "{dev} missing");
    let r = allocate::container_response(&ctx, &pools[VFIO], &[vfio_vf.to_string()]).unwrap();
    assert_eq!(r.envs["PCIDEVICE_INTEL_COM_HW_VFIO"], vfio_vf, "{r:?}");
    let info: Value = serde_json::from_str(&r.envs["PCIDEVICE_INTEL_COM_HW_VFIO_INFO"]).unwrap();
    assert_eq!(info[vfio_vf]["vfio"]["mount"], "/dev/vfio/vfio", "{info}");
    assert_eq!(info[vfio_vf]["vfio"]["dev-mount"], dev.as_str(), "{info}");
    let specs: Vec<(&str, &str, &str)> = r
        .devices
        .iter()
        .map(|d| {
            (
                d.host_path.as_str(),
                d.container_path.as_str(),
                d.permissions.as_str(),
            )
        })
        .collect();
    assert_eq!(
        specs,
        vec![
            ("/dev/vfio/vfio", "/dev/vfio/vfio", "rw"),
            (dev.as_str(), dev.as_str(), "rw")
        ]
    );
    let file = allocate::device_info_file(devinfo.path(), "intel.com", "hw_vfio", vfio_vf);
    let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(doc["pci"]["pci-address"], vfio_vf, "{doc}");
    assert_eq!(doc["pci"]["pf-pci-address"], pf_pci, "{doc}");

    // A device of another pool is refused, and nothing is written for it.
    let err =
        allocate::container_response(&ctx, &pools[VFIO], &[netdev_vf.to_string()]).unwrap_err();
    assert!(err.to_string().contains(netdev_vf), "{err}");
    assert!(
        !allocate::device_info_file(devinfo.path(), "intel.com", "hw_vfio", netdev_vf).exists()
    );
}
