//! The real `dpdk-bind` binary against sysfs trees built with the kernel's
//! layout. Refusals must change nothing (the whole tree is compared before
//! and after); binds on a static tree write the right files and then fail
//! the kernel-state check with a clear message (a static tree does not react
//! like a kernel; real binding is covered by the simulator and QEMU lanes).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use sriov_sim::tree::{DiskSink, Netdev, PciFunction, SriovCaps, SysfsTree, vf_address};

struct Node {
    dir: tempfile::TempDir,
    tree: SysfsTree<DiskSink>,
}

impl Node {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_dpdk-bind"))
            .arg("--host-root")
            .arg(self.path())
            .args(args)
            .env_remove(sriov_host::root::HOST_ROOT_ENV)
            .output()
            .unwrap()
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap()
    }

    /// Every file's content and every link's target, by path.
    fn snapshot(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        walk(self.path(), self.path(), &mut m);
        m
    }
}

fn walk(root: &Path, dir: &Path, m: &mut BTreeMap<String, String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.file_type().is_symlink() {
            m.insert(
                rel,
                format!("-> {}", std::fs::read_link(&p).unwrap().display()),
            );
        } else if meta.is_dir() {
            m.insert(rel, "<dir>".into());
            walk(root, &p, m);
        } else {
            m.insert(rel, std::fs::read_to_string(&p).unwrap());
        }
    }
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

/// An E810 PF `3b:00.0` (ice, `ens1f0`, up, NUMA 0) with 3 VFs: `3b:02.0` on
/// iavf (`ens1f0v0`, down), `3b:02.1` on vfio-pci, `3b:02.2` unbound; a
/// second PF `3b:00.1` with 0 VFs and `ens1f1` up with routes; an IB
/// function `af:00.0` (`ib0`, NUMA -1, no IOMMU); a SATA controller; and
/// vfio-pci loaded. `proc/net/route` has routes through `ens1f1`.
fn node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let mut t = SysfsTree::on_disk(dir.path()).unwrap();
    let caps = |numvfs| SriovCaps {
        totalvfs: 64,
        numvfs,
        offset: 16,
        stride: 1,
        vf_device: 0x1889,
        drivers_autoprobe: true,
    };
    let mut pf = PciFunction::ethernet("0000:3b:00.0", 0x8086, 0x1593);
    pf.numa_node = 0;
    pf.iommu_group = Some(10);
    t.add_function(&pf).unwrap();
    t.set_sriov("0000:3b:00.0", &caps(3)).unwrap();
    t.bind("0000:3b:00.0", "ice").unwrap();
    t.add_netdev(
        "0000:3b:00.0",
        &Netdev::ethernet("ens1f0", "b4:96:91:00:00:01", 4),
    )
    .unwrap();
    for (i, drv) in [(0, Some("iavf")), (1, Some("vfio-pci")), (2, None)] {
        let a = vf_address("0000:3b:00.0", 16, 1, i).unwrap();
        let mut f = PciFunction::ethernet(&a, 0x8086, 0x1889);
        f.numa_node = 0;
        f.iommu_group = Some(20 + i);
        t.add_function(&f).unwrap();
        t.link_vf("0000:3b:00.0", i, &a).unwrap();
        if let Some(d) = drv {
            t.bind(&a, d).unwrap();
        }
        if drv == Some("iavf") {
            let mut n = Netdev::ethernet("ens1f0v0", "02:00:00:00:00:00", 100);
            n.operstate = "down".into();
            n.carrier = None;
            t.add_netdev(&a, &n).unwrap();
        }
    }
    let mut pf1 = PciFunction::ethernet("0000:3b:00.1", 0x8086, 0x1593);
    pf1.numa_node = 0;
    pf1.iommu_group = Some(11);
    t.add_function(&pf1).unwrap();
    t.set_sriov("0000:3b:00.1", &caps(0)).unwrap();
    t.bind("0000:3b:00.1", "ice").unwrap();
    t.add_netdev(
        "0000:3b:00.1",
        &Netdev::ethernet("ens1f1", "b4:96:91:00:00:02", 5),
    )
    .unwrap();
    let mut ib = PciFunction::ethernet("0000:af:00.0", 0x15b3, 0x101b);
    ib.class = 0x020700;
    t.add_function(&ib).unwrap();
    t.bind("0000:af:00.0", "mlx5_core").unwrap();
    let mut n = Netdev::ethernet(
        "ib0",
        "00:00:10:87:fe:80:00:00:00:00:00:00:0c:42:a1:03:00:6b:2a:9c",
        6,
    );
    n.link_type = 32;
    t.add_netdev("0000:af:00.0", &n).unwrap();
    let mut sata = PciFunction::ethernet("0000:00:17.0", 0x8086, 0xa182);
    sata.class = 0x010601;
    t.add_function(&sata).unwrap();
    t.bind("0000:00:17.0", "ahci").unwrap();
    t.add_driver("vfio-pci").unwrap();

    let net = dir.path().join("proc/net");
    std::fs::create_dir_all(&net).unwrap();
    std::fs::write(
        net.join("route"),
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
         ens1f1\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
         ens1f1\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
    )
    .unwrap();
    std::fs::write(
        net.join("ipv6_route"),
        "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001   ens1f0\n",
    )
    .unwrap();
    Node { dir, tree: t }
}

#[test]
fn status_groups_devices_by_driver_kind() {
    let n = node();
    let o = n.run(&["status"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let kernel = out
        .split("Network devices using a userspace driver")
        .next()
        .unwrap();
    let user = out
        .split("Network devices using a userspace driver")
        .nth(1)
        .unwrap()
        .split("Network devices without a driver")
        .next()
        .unwrap();
    let none = out
        .split("Network devices without a driver")
        .nth(1)
        .unwrap();
    assert!(
        kernel.contains("0000:3b:00.0 8086:1593 drv=ice if=ens1f0 numa=0 iommu=10 vfs=3/64\n"),
        "{out}"
    );
    assert!(
        kernel.contains(
            "0000:3b:00.1 8086:1593 drv=ice if=ens1f1 *Active* numa=0 iommu=11 vfs=0/64\n"
        ),
        "{out}"
    );
    assert!(
        kernel.contains(
            "0000:3b:02.0 8086:1889 drv=iavf if=ens1f0v0 numa=0 iommu=20 vf=0 pf=0000:3b:00.0\n"
        ),
        "{out}"
    );
    assert!(
        kernel.contains("0000:af:00.0 15b3:101b drv=mlx5_core if=ib0 numa=- iommu=-\n"),
        "{out}"
    );
    assert!(
        user.contains("0000:3b:02.1 8086:1889 drv=vfio-pci numa=0 iommu=21 vf=1 pf=0000:3b:00.0\n"),
        "{out}"
    );
    assert!(
        none.contains("0000:3b:02.2 8086:1889 numa=0 iommu=22 vf=2 pf=0000:3b:00.0\n"),
        "{out}"
    );
    assert!(
        !out.contains("0000:00:17.0"),
        "a SATA controller is not listed: {out}"
    );
}

#[test]
fn status_json_has_the_documented_keys_and_nulls() {
    let n = node();
    let o = n.run(&["status", "--json"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 6);
    let keys = [
        "pci",
        "vendor",
        "device",
        "driver",
        "ifname",
        "numa",
        "iommu_group",
        "pf",
        "vf_index",
        "sriov_numvfs",
        "sriov_totalvfs",
    ];
    for r in rows {
        let mut got: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        got.sort();
        let mut want = keys.to_vec();
        want.sort();
        assert_eq!(got, want);
    }
    let by = |pci: &str| rows.iter().find(|r| r["pci"] == pci).unwrap().clone();
    assert_eq!(
        by("0000:3b:00.0"),
        serde_json::json!({"pci": "0000:3b:00.0", "vendor": "8086", "device": "1593",
            "driver": "ice", "ifname": "ens1f0", "numa": 0, "iommu_group": 10, "pf": null,
            "vf_index": null, "sriov_numvfs": 3, "sriov_totalvfs": 64})
    );
    assert_eq!(
        by("0000:3b:02.1"),
        serde_json::json!({"pci": "0000:3b:02.1", "vendor": "8086", "device": "1889",
            "driver": "vfio-pci", "ifname": null, "numa": 0, "iommu_group": 21,
            "pf": "0000:3b:00.0", "vf_index": 1, "sriov_numvfs": null, "sriov_totalvfs": null})
    );
    let ib = by("0000:af:00.0");
    assert_eq!(
        (ib["numa"].clone(), ib["iommu_group"].clone()),
        (serde_json::Value::Null, serde_json::Value::Null)
    );
    assert_eq!(by("0000:3b:02.2")["driver"], serde_json::Value::Null);
}

#[test]
fn host_root_comes_from_the_environment_too() {
    let n = node();
    let o = Command::new(env!("CARGO_BIN_EXE_dpdk-bind"))
        .args(["status", "--json"])
        .env(sriov_host::root::HOST_ROOT_ENV, n.path())
        .output()
        .unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 6);
}

#[test]
fn refuses_to_unbind_an_interface_in_use_and_changes_nothing() {
    let n = node();
    let before = n.snapshot();
    for args in [
        &["unbind", "ens1f1"][..],
        &["unbind", "3b:00.1"],
        &["bind", "vfio-pci", "3b:02.2", "ens1f1"],
    ] {
        let o = n.run(args);
        let (out, err) = text(&o);
        assert!(!o.status.success(), "{args:?}: {out}");
        assert!(err.contains("nothing was changed"), "{err}");
        assert!(
            err.contains("0000:3b:00.1 (ens1f1) is up with 2 IPv4 and 0 IPv6 routes"),
            "{err}"
        );
        assert!(err.contains("--force"), "{err}");
        assert_eq!(n.snapshot(), before, "{args:?} changed the tree");
    }
    // ens1f0 is up but only has a link-local IPv6 route: not in use, so the
    // unbind is written (and the static tree's driver link is reported).
    let o = n.run(&["unbind", "3b:00.0"]);
    let (_, err) = text(&o);
    assert!(!err.contains("nothing was changed"), "{err}");
    assert!(err.contains("unbinding 0000:3b:00.0 from ice"), "{err}");
    assert_eq!(n.read("sys/bus/pci/drivers/ice/unbind"), "0000:3b:00.0");
}

#[test]
fn refuses_vfio_when_the_iommu_group_keeps_a_kernel_driver() {
    let mut n = node();
    // Put the PF ens1f0's sibling function into VF 0's group.
    let mut f = PciFunction::ethernet("0000:3b:00.2", 0x8086, 0x1593);
    f.iommu_group = Some(20);
    n.tree.add_function(&f).unwrap();
    n.tree.bind("0000:3b:00.2", "ice").unwrap();
    let before = n.snapshot();
    let o = n.run(&["bind", "vfio-pci", "ens1f0v0"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains(
            "IOMMU group 20 of 0000:3b:02.0 also holds 0000:3b:00.2 (a kernel driver: ice)"
        ),
        "{err}"
    );
    assert_eq!(n.snapshot(), before);
}

#[test]
fn refuses_a_missing_driver_and_unknown_devices_all_at_once() {
    let n = node();
    let before = n.snapshot();
    let o = n.run(&["bind", "igb_uio", "3b:02.0"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("driver igb_uio is not loaded"), "{err}");
    assert!(err.contains("modprobe igb_uio"), "{err}");
    let o = n.run(&[
        "bind", "vfio-pci", "3b:02.0", "nosuch0", "5e:00.0", "zz:00.0",
    ]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("nosuch0: not a PCI address"), "{err}");
    assert!(err.contains("no network interface \"nosuch0\""), "{err}");
    assert!(err.contains("5e:00.0: no PCI device 0000:5e:00.0"), "{err}");
    assert!(err.contains("zz:00.0"), "{err}");
    assert_eq!(n.snapshot(), before);
}

#[test]
fn bind_writes_override_unbind_and_then_reports_the_static_tree() {
    let n = node();
    // Bound device: the override and the unbind are written; the driver link
    // stays (no kernel), which is reported, and the override is put back.
    let o = n.run(&["bind", "vfio-pci", "ens1f0v0", "--timeout", "0.2"]);
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(err.contains("binding 0000:3b:02.0 to vfio-pci"), "{err}");
    assert!(err.contains("unbinding 0000:3b:02.0 from iavf"), "{err}");
    assert!(err.contains("did not take effect"), "{err}");
    assert_eq!(n.read("sys/bus/pci/drivers/iavf/unbind"), "0000:3b:02.0");
    assert_eq!(n.read("sys/bus/pci/drivers_probe"), "");
    assert_eq!(
        n.read("sys/bus/pci/devices/0000:3b:02.0/driver_override"),
        "\n"
    );

    // Unbound device: the override and drivers_probe are written; nothing
    // claims it within the timeout.
    let o = n.run(&["bind", "vfio-pci", "3b:02.2", "--timeout", "0.2"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("binding 0000:3b:02.2 to vfio-pci"), "{err}");
    assert!(err.contains("expected \"vfio-pci\""), "{err}");
    assert_eq!(n.read("sys/bus/pci/drivers_probe"), "0000:3b:02.2");
}

#[test]
fn already_bound_devices_and_unbind_report_what_was_done() {
    let n = node();
    let o = n.run(&["bind", "vfio-pci", "0000:3b:02.1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(out, "0000:3b:02.1: already bound to vfio-pci\n");
    assert_eq!(
        n.read("sys/bus/pci/devices/0000:3b:02.1/driver_override"),
        "vfio-pci",
        "the override is aligned for a userspace driver"
    );
    let o = n.run(&["unbind", "3b:02.2"]);
    assert!(o.status.success());
    assert_eq!(text(&o).0, "0000:3b:02.2: was not bound to a driver\n");
    // A real unbind write: the static tree keeps the link, which is reported.
    let o = n.run(&["unbind", "3b:02.1"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("unbinding 0000:3b:02.1 from vfio-pci"),
        "{err}"
    );
    assert_eq!(
        n.read("sys/bus/pci/drivers/vfio-pci/unbind"),
        "0000:3b:02.1"
    );
}

#[test]
fn help_fits_a_screen_and_version_prints() {
    let n = node();
    let o = n.run(&["--help"]);
    assert!(o.status.success());
    let help = text(&o).0;
    assert!(help.lines().count() <= 24, "{help}");
    assert!(help.contains("--host-root"));
    for sub in ["status", "bind", "unbind"] {
        let o = n.run(&[sub, "--help"]);
        assert!(o.status.success());
        let h = text(&o).0;
        assert!(h.lines().count() <= 24, "{h}");
        assert!(h.contains("--host-root"), "global flag on {sub}: {h}");
    }
    let o = n.run(&["--version"]);
    assert_eq!(
        text(&o).0,
        format!("dpdk-bind {}\n", env!("CARGO_PKG_VERSION"))
    );
    let o = n.run(&["bind", "vfio-pci"]);
    assert!(!o.status.success(), "DEV is required");
}
