//! The FUSE-mounted simulated node, driven with shell commands and plain
//! file writes, for every kernel semantic it reproduces. Lane: fuse (root,
//! /dev/fuse, fusermount3); the veth test also needs netns.
//!
//! Every test checks, even when it fails, that nothing stays mounted under
//! its root and that no veth it created is left.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sriov_sim::check::{pci_device, wait_until};
use sriov_sim::lanes::{self, Lane};
use sriov_sim::mount::mounts_under;
use sriov_sim::node::NodeSpec;
use sriov_sim::uevent::UeventListener;
use sriov_sim::{SimNode, SimOptions};

/// Checks on drop (after the node it guards is dropped) that nothing is
/// mounted under the root and that the given interfaces are gone.
struct LeakCheck {
    root: PathBuf,
    ifnames: Vec<String>,
}

impl Drop for LeakCheck {
    fn drop(&mut self) {
        let mounts = mounts_under(&self.root);
        let links: Vec<&String> = self
            .ifnames
            .iter()
            .filter(|n| Path::new("/sys/class/net").join(n).exists())
            .collect();
        let msg = format!(
            "left behind: mounts {mounts:?}, interfaces {links:?}, root exists {}",
            self.root.exists()
        );
        // Clean up whatever leaked so that other tests are not affected.
        for m in &mounts {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        for l in &links {
            let _ = Command::new("ip").args(["link", "del", l]).status();
        }
        let clean = mounts.is_empty() && links.is_empty() && !self.root.exists();
        if std::thread::panicking() {
            if !clean {
                eprintln!("{msg}");
            }
        } else {
            assert!(clean, "{msg}");
        }
    }
}

/// Starts a node; the returned guard must be declared BEFORE the node so it
/// is dropped after it.
fn start(node: impl sriov_sim::mount::IntoNodeSpec, opts: SimOptions) -> (LeakCheck, SimNode) {
    let sim = SimNode::start(node, opts).expect("simulated node starts");
    let guard = LeakCheck {
        root: sim.root().to_path_buf(),
        ifnames: Vec::new(),
    };
    (guard, sim)
}

/// `bash -c CMD`: (success, stderr).
fn bash(cmd: &str) -> (bool, String) {
    let out = Command::new("bash").arg("-c").arg(cmd).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `echo VALUE > PATH` in bash; Ok or the shell's error message.
fn echo(value: &str, path: &Path) -> Result<(), String> {
    match bash(&format!("echo {value} > '{}'", path.display())) {
        (true, _) => Ok(()),
        (false, e) => Err(e),
    }
}

/// A plain write(2): Ok or the errno.
fn write(path: &Path, data: &str) -> Result<(), i32> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| e.raw_os_error().unwrap())?;
    f.write_all(data.as_bytes())
        .map_err(|e| e.raw_os_error().unwrap())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim_end()
        .to_string()
}

fn link(path: &Path) -> String {
    std::fs::read_link(path)
        .unwrap_or_else(|e| panic!("readlink {}: {e}", path.display()))
        .to_string_lossy()
        .into_owned()
}

fn driver_dir(root: &Path, driver: &str) -> PathBuf {
    root.join("sys/bus/pci/drivers").join(driver)
}

fn group_of(root: &Path, addr: &str) -> String {
    Path::new(&link(&pci_device(root, addr).join("iommu_group")))
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

const PF: &str = "0000:3b:00.1"; // mixed: E810 port 1, no VFs, NUMA 0

#[test]
fn numvfs_creates_and_removes_vfs_with_kernel_errnos() {
    if !lanes::require(
        "numvfs_creates_and_removes_vfs_with_kernel_errnos",
        &[Lane::Fuse],
    ) {
        return;
    }
    let (_guard, sim) = start("mixed", SimOptions::default());
    let root = sim.root();
    let pf = pci_device(root, PF);
    assert_eq!(read(&pf.join("sriov_totalvfs")), "128");
    assert_eq!(read(&pf.join("sriov_numvfs")), "0");
    let offset: u32 = read(&pf.join("sriov_offset")).parse().unwrap();
    let stride: u32 = read(&pf.join("sriov_stride")).parse().unwrap();
    assert_eq!((offset, stride), (143, 1));
    let pf_group = group_of(root, PF);

    echo("4", &pf.join("sriov_numvfs")).unwrap();
    assert_eq!(read(&pf.join("sriov_numvfs")), "4");
    let mut groups = std::collections::BTreeSet::new();
    for i in 0..4u32 {
        let want = sriov_sim::tree::vf_address(PF, offset, stride, i).unwrap();
        let target = link(&pf.join(format!("virtfn{i}")));
        assert_eq!(target, format!("../{want}"));
        let vf = pci_device(root, &want);
        assert_eq!(link(&vf.join("physfn")), format!("../{PF}"));
        assert_eq!(read(&vf.join("numa_node")), "0");
        assert_eq!(read(&vf.join("device")), "0x1889");
        assert!(link(&vf.join("driver")).ends_with("/iavf"));
        let name = format!("ens1f1v{i}");
        assert!(vf.join("net").join(&name).join("address").exists());
        assert!(root.join("sys/class/net").join(&name).exists());
        let g = group_of(root, &want);
        assert_ne!(g, pf_group);
        assert!(
            root.join("sys/kernel/iommu_groups")
                .join(&g)
                .join("devices")
                .join(&want)
                .exists()
        );
        groups.insert(g);
    }
    assert_eq!(groups.len(), 4, "each VF gets its own IOMMU group");
    assert_eq!(
        sriov_sim::tree::vf_address(PF, offset, stride, 0).unwrap(),
        "0000:3b:12.0"
    );

    // The same count again is a no-op success.
    echo("4", &pf.join("sriov_numvfs")).unwrap();
    // Non-zero to a different non-zero: EBUSY.
    let e = echo("8", &pf.join("sriov_numvfs")).unwrap_err();
    assert!(e.contains("Device or resource busy"), "{e}");
    assert_eq!(write(&pf.join("sriov_numvfs"), "2\n"), Err(libc::EBUSY));
    // Above sriov_totalvfs: ERANGE.
    assert_eq!(write(&pf.join("sriov_numvfs"), "129"), Err(libc::ERANGE));
    // Not a number: EINVAL.
    let e = echo("many", &pf.join("sriov_numvfs")).unwrap_err();
    assert!(e.contains("Invalid argument"), "{e}");
    assert_eq!(write(&pf.join("sriov_numvfs"), "-1"), Err(libc::EINVAL));
    assert_eq!(read(&pf.join("sriov_numvfs")), "4");

    // 0 removes them, their links, netdevs and groups.
    echo("0", &pf.join("sriov_numvfs")).unwrap();
    assert_eq!(read(&pf.join("sriov_numvfs")), "0");
    assert!(!pf.join("virtfn0").exists());
    assert!(!pci_device(root, "0000:3b:12.0").exists());
    assert!(std::fs::symlink_metadata(root.join("sys/class/net/ens1f1v0")).is_err());
    for g in &groups {
        assert!(!root.join("sys/kernel/iommu_groups").join(g).exists());
    }
    // Read-only attributes refuse writes (kernfs: EACCES).
    let e = echo("1", &pf.join("sriov_totalvfs")).unwrap_err();
    assert!(e.contains("Permission denied"), "{e}");
    // sysfs has no file creation.
    let e = bash(&format!("echo 1 > '{}'", pf.join("nonexistent").display()));
    assert!(!e.0 && e.1.contains("Permission denied"), "{e:?}");
}

#[test]
fn autoprobe_and_drivers_probe() {
    if !lanes::require("autoprobe_and_drivers_probe", &[Lane::Fuse]) {
        return;
    }
    let (_guard, sim) = start("mixed", SimOptions::default());
    let root = sim.root();
    let pf = pci_device(root, PF);
    assert_eq!(read(&pf.join("sriov_drivers_autoprobe")), "1");
    echo("0", &pf.join("sriov_drivers_autoprobe")).unwrap();
    assert_eq!(read(&pf.join("sriov_drivers_autoprobe")), "0");
    assert_eq!(
        write(&pf.join("sriov_drivers_autoprobe"), "maybe"),
        Err(libc::EINVAL)
    );
    echo("2", &pf.join("sriov_numvfs")).unwrap();
    let vf = pci_device(root, "0000:3b:12.0");
    assert!(vf.exists());
    assert!(
        std::fs::symlink_metadata(vf.join("driver")).is_err(),
        "autoprobe 0 leaves VFs unbound"
    );
    assert!(!vf.join("net").exists());
    // drivers_probe binds it to the matching driver.
    echo("0000:3b:12.0", &root.join("sys/bus/pci/drivers_probe")).unwrap();
    assert!(link(&vf.join("driver")).ends_with("/iavf"));
    assert!(vf.join("net/ens1f1v0").exists());
    // A bound device: no-op success. Unknown device: ENODEV.
    echo("0000:3b:12.0", &root.join("sys/bus/pci/drivers_probe")).unwrap();
    assert_eq!(
        write(&root.join("sys/bus/pci/drivers_probe"), "0000:99:00.0"),
        Err(libc::ENODEV)
    );
    // Autoprobe back on: new VFs bind.
    echo("0", &pf.join("sriov_numvfs")).unwrap();
    echo("1", &pf.join("sriov_drivers_autoprobe")).unwrap();
    echo("1", &pf.join("sriov_numvfs")).unwrap();
    assert!(link(&pci_device(root, "0000:3b:12.0").join("driver")).ends_with("/iavf"));
}

#[test]
fn bind_unbind_override_and_vfio() {
    if !lanes::require("bind_unbind_override_and_vfio", &[Lane::Fuse]) {
        return;
    }
    let (_guard, sim) = start("mixed", SimOptions::default());
    let root = sim.root();
    let vf = "0000:3b:02.0"; // mixed: VF 0 of ens1f0 on iavf
    let d = pci_device(root, vf);
    let group = group_of(root, vf);
    assert_eq!(read(&d.join("driver_override")), "(null)");
    assert!(d.join("net/ens1f0v0").exists());

    // unbind from a driver it is not bound to: ENODEV.
    assert_eq!(
        write(&driver_dir(root, "ice").join("unbind"), vf),
        Err(libc::ENODEV)
    );
    // bind while bound: EBUSY.
    let e = echo(vf, &driver_dir(root, "iavf").join("bind")).unwrap_err();
    assert!(e.contains("Device or resource busy"), "{e}");
    echo(vf, &driver_dir(root, "iavf").join("unbind")).unwrap();
    assert!(std::fs::symlink_metadata(d.join("driver")).is_err());
    assert!(!d.join("net").exists(), "unbinding removes the netdev");
    assert!(std::fs::symlink_metadata(root.join("sys/class/net/ens1f0v0")).is_err());
    assert!(!driver_dir(root, "iavf").join(vf).exists());

    // vfio-pci does not handle the device without an override: ENODEV.
    let e = echo(vf, &driver_dir(root, "vfio-pci").join("bind")).unwrap_err();
    assert!(e.contains("No such device"), "{e}");
    // An override naming another driver makes iavf refuse it too.
    echo("vfio-pci", &d.join("driver_override")).unwrap();
    assert_eq!(read(&d.join("driver_override")), "vfio-pci");
    assert_eq!(
        write(&driver_dir(root, "iavf").join("bind"), vf),
        Err(libc::ENODEV)
    );
    // Binding to vfio-pci creates dev/vfio/<group>.
    assert!(!root.join("dev/vfio").join(&group).exists());
    echo(vf, &driver_dir(root, "vfio-pci").join("bind")).unwrap();
    assert!(link(&d.join("driver")).ends_with("/vfio-pci"));
    assert!(root.join("dev/vfio").join(&group).exists());
    assert!(root.join("dev/vfio/vfio").exists());
    assert!(driver_dir(root, "vfio-pci").join(vf).exists());
    assert!(!d.join("net").exists());
    assert_eq!(
        write(&driver_dir(root, "vfio-pci").join("bind"), vf),
        Err(libc::EBUSY)
    );
    echo(vf, &driver_dir(root, "vfio-pci").join("unbind")).unwrap();
    assert!(!root.join("dev/vfio").join(&group).exists());

    // Clearing the override and probing returns it to iavf with its netdev.
    bash(&format!("echo > '{}'", d.join("driver_override").display()));
    assert_eq!(read(&d.join("driver_override")), "(null)");
    echo(vf, &root.join("sys/bus/pci/drivers_probe")).unwrap();
    assert!(link(&d.join("driver")).ends_with("/iavf"));
    assert!(d.join("net/ens1f0v0/address").exists());

    // new_id: vfio-pci takes every unbound device with that id.
    echo(vf, &driver_dir(root, "iavf").join("unbind")).unwrap();
    echo("8086 1889", &driver_dir(root, "vfio-pci").join("new_id")).unwrap();
    assert!(link(&d.join("driver")).ends_with("/vfio-pci"));
    assert_eq!(
        write(&driver_dir(root, "vfio-pci").join("new_id"), "8086 1889"),
        Err(libc::EEXIST)
    );
    assert_eq!(
        write(&driver_dir(root, "vfio-pci").join("new_id"), "zz"),
        Err(libc::EINVAL)
    );
    echo("8086 1889", &driver_dir(root, "vfio-pci").join("remove_id")).unwrap();
    assert_eq!(
        write(&driver_dir(root, "vfio-pci").join("remove_id"), "8086 1889"),
        Err(libc::ENODEV)
    );
    // An override longer than a page: EINVAL.
    assert_eq!(
        write(&d.join("driver_override"), &"x".repeat(5000)),
        Err(libc::EINVAL)
    );
    // An override naming a hardware driver that cannot drive the device:
    // matched, but its probe fails (ENODEV) and the device stays unbound.
    echo(vf, &driver_dir(root, "vfio-pci").join("unbind")).unwrap();
    echo("ice", &d.join("driver_override")).unwrap();
    assert_eq!(
        write(&driver_dir(root, "ice").join("bind"), vf),
        Err(libc::ENODEV)
    );
    echo(vf, &root.join("sys/bus/pci/drivers_probe")).unwrap();
    assert!(std::fs::symlink_metadata(d.join("driver")).is_err());
    // bind of a device that does not exist: ENODEV.
    assert_eq!(
        write(&driver_dir(root, "iavf").join("bind"), "0000:99:00.0"),
        Err(libc::ENODEV)
    );
}

#[test]
fn pf_driver_unbind_disables_sriov_and_rdma_follows_mlx5() {
    if !lanes::require(
        "pf_driver_unbind_disables_sriov_and_rdma_follows_mlx5",
        &[Lane::Fuse],
    ) {
        return;
    }
    let (_guard, sim) = start("mixed", SimOptions::default());
    let root = sim.root();
    let cx = pci_device(root, "0000:af:00.0");
    assert_eq!(read(&cx.join("sriov_numvfs")), "2");
    assert_eq!(read(&cx.join("numa_node")), "1");
    let rdma_before = std::fs::read_dir(root.join("sys/class/infiniband"))
        .unwrap()
        .count();
    assert_eq!(rdma_before, 3, "PF and two VFs each have an RDMA device");
    let vf = pci_device(root, "0000:af:00.2");
    assert_eq!(read(&vf.join("numa_node")), "1");
    assert!(vf.join("infiniband").read_dir().unwrap().next().is_some());
    // Unbinding the PF driver disables SR-IOV first.
    echo(
        "0000:af:00.0",
        &driver_dir(root, "mlx5_core").join("unbind"),
    )
    .unwrap();
    assert_eq!(read(&cx.join("sriov_numvfs")), "0");
    assert!(!vf.exists());
    assert_eq!(
        std::fs::read_dir(root.join("sys/class/infiniband"))
            .unwrap()
            .count(),
        0
    );
    assert!(std::fs::symlink_metadata(root.join("sys/class/net/ens3f0np0")).is_err());
    // Without a PF driver, sriov_numvfs refuses (ENOENT, as the kernel).
    assert_eq!(write(&cx.join("sriov_numvfs"), "1"), Err(libc::ENOENT));
    echo("0000:af:00.0", &driver_dir(root, "mlx5_core").join("bind")).unwrap();
    echo("3", &cx.join("sriov_numvfs")).unwrap();
    assert_eq!(
        std::fs::read_dir(root.join("sys/class/infiniband"))
            .unwrap()
            .count(),
        4
    );
    // virtio-net: netdev under virtio0, no SR-IOV files.
    let v = pci_device(root, "0000:00:03.0");
    assert!(v.join("virtio0/net/enp0s3/address").exists());
    assert!(!v.join("sriov_numvfs").exists());
    assert!(read(&root.join("proc/net/route")).contains("enp0s3\t00000000"));
}

#[test]
fn netdev_attributes_and_mtu() {
    if !lanes::require("netdev_attributes_and_mtu", &[Lane::Fuse]) {
        return;
    }
    let (_guard, sim) = start("mixed", SimOptions::default());
    let root = sim.root();
    let n = root.join("sys/class/net/ens1f0");
    assert_eq!(read(&n.join("address")), "b4:96:91:00:3b:00");
    assert_eq!(read(&n.join("mtu")), "1500");
    assert_eq!(read(&n.join("operstate")), "up");
    assert_eq!(read(&n.join("carrier")), "1");
    assert_eq!(read(&n.join("speed")), "25000");
    assert_eq!(read(&n.join("type")), "1");
    let idx: u32 = read(&n.join("ifindex")).parse().unwrap();
    assert!(idx >= 2);
    assert!(link(&n.join("device")).ends_with("0000:3b:00.0"));
    echo("9000", &n.join("mtu")).unwrap();
    assert_eq!(read(&n.join("mtu")), "9000");
    assert_eq!(write(&n.join("mtu"), "20"), Err(libc::EINVAL));
    assert_eq!(write(&n.join("mtu"), "100000"), Err(libc::EINVAL));
    let e = echo("big", &n.join("mtu")).unwrap_err();
    assert!(e.contains("Invalid argument"), "{e}");
    assert_eq!(read(&n.join("mtu")), "9000");
    assert_eq!(
        write(&n.join("address"), "00:11:22:33:44:55"),
        Err(libc::EACCES)
    );
    let vf = root.join("sys/class/net/ens1f0v1");
    assert_eq!(read(&vf.join("operstate")), "down");
    assert_eq!(read(&vf.join("speed")), "25000");
    assert!(read(&vf.join("address")).starts_with("02:"));
}

fn fault_node(faults: &str) -> NodeSpec {
    NodeSpec::from_yaml(
        &format!(
            "name: faults\npfs:\n  - {{model: e810, address: '0000:3b:00.0', ifname: f0, numa: 0, faults: {faults}}}\n"
        ),
        "test",
    )
    .unwrap()
}

#[test]
fn fault_injection_enomem_delay_and_late_vfs() {
    if !lanes::require("fault_injection_enomem_delay_and_late_vfs", &[Lane::Fuse]) {
        return;
    }
    {
        let (_guard, sim) = start(fault_node("{numvfs_enomem: true}"), SimOptions::default());
        let p = pci_device(sim.root(), "0000:3b:00.0").join("sriov_numvfs");
        let e = echo("2", &p).unwrap_err();
        assert!(e.contains("Cannot allocate memory"), "{e}");
        assert_eq!(write(&p, "1"), Err(libc::ENOMEM));
        assert_eq!(read(&p), "0");
    }
    {
        let (_guard, sim) = start(fault_node("{numvfs_delay_ms: 1000}"), SimOptions::default());
        let p = pci_device(sim.root(), "0000:3b:00.0").join("sriov_numvfs");
        let t = Instant::now();
        echo("2", &p).unwrap();
        assert!(
            t.elapsed() >= Duration::from_millis(1000),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(read(&p), "2");
        // Other requests are served while a write waits.
        let root = sim.root().to_path_buf();
        let writer = std::thread::spawn(move || {
            write(&pci_device(&root, "0000:3b:00.0").join("sriov_numvfs"), "0")
        });
        std::thread::sleep(Duration::from_millis(50));
        read(&pci_device(sim.root(), "0000:3b:00.0").join("vendor"));
        assert!(
            !writer.is_finished(),
            "a read completes while the delayed write still waits"
        );
        assert_eq!(writer.join().unwrap(), Ok(()));
    }
    {
        let (_guard, sim) = start(fault_node("{vfs_late_ms: 1000}"), SimOptions::default());
        let pf = pci_device(sim.root(), "0000:3b:00.0");
        echo("3", &pf.join("sriov_numvfs")).unwrap();
        assert_eq!(read(&pf.join("sriov_numvfs")), "3");
        assert!(
            std::fs::symlink_metadata(pf.join("virtfn0")).is_err(),
            "VFs appear late"
        );
        wait_until("late VFs", Duration::from_secs(3), || {
            pf.join("virtfn2").exists() && sim.root().join("sys/class/net/f0v2").exists()
        });
    }
}

#[test]
fn uevents_for_vf_creation_binding_and_removal() {
    if !lanes::require("uevents_for_vf_creation_binding_and_removal", &[Lane::Fuse]) {
        return;
    }
    let (_guard, sim) = start("mixed", SimOptions::default());
    let root = sim.root();
    let listener = UeventListener::bind(root, "test").unwrap();
    let recv_all = |n: usize| -> Vec<String> {
        (0..n)
            .map(|_| {
                let b = listener.recv(Duration::from_secs(2)).expect("a uevent");
                String::from_utf8(b).unwrap()
            })
            .collect()
    };
    echo("1", &pci_device(root, PF).join("sriov_numvfs")).unwrap();
    // pci add, net add, pci bind, PF change.
    let ev = recv_all(4);
    let vfpath = "/devices/pci0000:3a/0000:3a:00.0/0000:3b:12.0";
    assert!(
        ev[0].starts_with(&format!(
            "add@{vfpath}\0ACTION=add\0DEVPATH={vfpath}\0SUBSYSTEM=pci\0"
        )),
        "{:?}",
        ev[0]
    );
    assert!(ev[0].contains("PCI_ID=8086:1889\0") && ev[0].contains("PCI_SLOT_NAME=0000:3b:12.0\0"));
    assert!(
        ev[1].starts_with(&format!("add@{vfpath}/net/ens1f1v0\0"))
            && ev[1].contains("INTERFACE=ens1f1v0\0"),
        "{:?}",
        ev[1]
    );
    assert!(
        ev[2].starts_with(&format!("bind@{vfpath}\0")) && ev[2].contains("DRIVER=iavf\0"),
        "{:?}",
        ev[2]
    );
    assert!(
        ev[3].starts_with("change@/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.1\0"),
        "{:?}",
        ev[3]
    );
    let seq = |e: &str| -> u64 {
        e.split('\0')
            .find_map(|kv| kv.strip_prefix("SEQNUM="))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(seq(&ev[0]) < seq(&ev[1]) && seq(&ev[1]) < seq(&ev[2]));
    echo("0", &pci_device(root, PF).join("sriov_numvfs")).unwrap();
    // net remove, pci unbind, pci remove, PF change.
    let ev = recv_all(4);
    assert!(
        ev[0].starts_with(&format!("remove@{vfpath}/net/ens1f1v0\0")),
        "{:?}",
        ev[0]
    );
    assert!(
        ev[1].starts_with(&format!("unbind@{vfpath}\0")),
        "{:?}",
        ev[1]
    );
    assert!(
        ev[2].starts_with(&format!("remove@{vfpath}\0")),
        "{:?}",
        ev[2]
    );
    // vfio group add/remove.
    let vf = "0000:3b:02.0";
    let g = group_of(root, vf);
    echo(vf, &driver_dir(root, "iavf").join("unbind")).unwrap();
    echo("vfio-pci", &pci_device(root, vf).join("driver_override")).unwrap();
    echo(vf, &driver_dir(root, "vfio-pci").join("bind")).unwrap();
    let ev = recv_all(4);
    assert!(
        ev[2].starts_with(&format!("add@/devices/virtual/vfio/{g}\0")),
        "{ev:?}"
    );
    assert!(ev[2].contains(&format!("DEVNAME=vfio/{g}\0")));
    assert!(ev[3].starts_with("bind@") && ev[3].contains("DRIVER=vfio-pci\0"));
}

#[test]
fn drop_during_a_panic_unmounts() {
    if !lanes::require("drop_during_a_panic_unmounts", &[Lane::Fuse]) {
        return;
    }
    let root = std::sync::Mutex::new(PathBuf::new());
    let r = std::panic::catch_unwind(|| {
        let sim = SimNode::start("mixed", SimOptions::default()).unwrap();
        *root.lock().unwrap() = sim.root().to_path_buf();
        // Hold a file open in the mount while panicking.
        let _f = std::fs::File::open(sim.root().join("sys/bus/pci/drivers_probe")).unwrap();
        panic!("test panic while mounted");
    });
    assert!(r.is_err());
    let root = root.into_inner().unwrap();
    assert!(!root.as_os_str().is_empty());
    assert!(mounts_under(&root).is_empty(), "{:?}", mounts_under(&root));
    assert!(!root.exists());
}

#[test]
fn cli_mount_prints_ready_and_cleans_up_on_sigterm() {
    if !lanes::require(
        "cli_mount_prints_ready_and_cleans_up_on_sigterm",
        &[Lane::Fuse],
    ) {
        return;
    }
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("host");
    let _guard = LeakCheck {
        root: root.clone(),
        ifnames: vec![],
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_sriov-sim"))
        .args(["mount", root.to_str().unwrap(), "--node", "mixed"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    echo(
        "2",
        &root.join("sys/bus/pci/devices/0000:3b:00.1/sriov_numvfs"),
    )
    .unwrap();
    assert!(root.join("sys/bus/pci/devices/0000:3b:12.1").exists());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(mounts_under(&root).is_empty());
    assert!(!root.exists(), "the root it created is removed");
}

#[test]
fn veth_backed_vf_netdevs() {
    if !lanes::require("veth_backed_vf_netdevs", &[Lane::Fuse, Lane::Netns]) {
        return;
    }
    // Interface names unique to this process.
    let pf = format!("t{:x}", std::process::id() & 0xfffff);
    let spec = NodeSpec::from_yaml(
        &format!("pfs: [{{model: e810, address: '0000:3b:00.0', ifname: {pf}, numa: 0}}]"),
        "test",
    )
    .unwrap();
    let names: Vec<String> = (0..3).map(|i| format!("{pf}v{i}")).collect();
    let (mut guard, sim) = start(
        spec,
        SimOptions {
            veth: true,
            root: None,
        },
    );
    guard.ifnames = names.clone();
    guard.ifnames.push(pf.clone());
    let root = sim.root();
    let p = pci_device(root, "0000:3b:00.0");
    // The PF is a veth too, up with carrier, the same device in both views.
    let host_pf = Path::new("/sys/class/net").join(&pf);
    wait_until("the PF veth up", Duration::from_secs(3), || {
        std::fs::read_to_string(host_pf.join("operstate")).is_ok_and(|s| s.trim() == "up")
    });
    let sim_pf = root.join("sys/class/net").join(&pf);
    assert_eq!(
        read(&host_pf.join("ifindex")),
        read(&sim_pf.join("ifindex"))
    );
    assert_eq!(
        read(&host_pf.join("address")),
        read(&sim_pf.join("address"))
    );
    assert_eq!(
        (
            read(&sim_pf.join("operstate")),
            read(&sim_pf.join("carrier"))
        ),
        ("up".into(), "1".into())
    );
    echo("3", &p.join("sriov_numvfs")).unwrap();
    for (i, n) in names.iter().enumerate() {
        let host = Path::new("/sys/class/net").join(n);
        assert!(host.exists(), "veth {n} created");
        let sim_nd = root.join("sys/class/net").join(n);
        assert_eq!(read(&host.join("address")), read(&sim_nd.join("address")));
        assert_eq!(
            read(&host.join("ifindex")),
            read(&sim_nd.join("ifindex")),
            "VF {i}"
        );
    }
    echo(
        "9000",
        &root.join("sys/class/net").join(&names[0]).join("mtu"),
    )
    .unwrap();
    assert_eq!(
        read(&Path::new("/sys/class/net").join(&names[0]).join("mtu")),
        "9000"
    );
    // Renamed where it is: one `move` uevent with DEVPATH_OLD, sysfs under
    // the new name; set up: operstate follows the veth (its peer is down,
    // so no carrier: `lowerlayerdown`, carrier 0), with no uevent.
    let listener = UeventListener::bind(root, "veth-test").unwrap();
    let renamed = format!("{pf}n1");
    let ip_ok = |args: &[&str]| Command::new("ip").args(args).status().unwrap().success();
    assert!(ip_ok(&["link", "set", &names[1], "name", &renamed]));
    guard.ifnames.push(renamed.clone());
    let ev = String::from_utf8(listener.recv(Duration::from_secs(3)).expect("a uevent")).unwrap();
    let vf1 = "/devices/pci0000:3a/0000:3a:00.0/0000:3b:02.1";
    assert!(
        ev.starts_with(&format!("move@{vf1}/net/{renamed}\0")),
        "{ev:?}"
    );
    assert!(
        ev.contains(&format!("\0DEVPATH_OLD={vf1}/net/{}\0", names[1])),
        "{ev:?}"
    );
    assert!(ev.contains(&format!("\0INTERFACE={renamed}\0")), "{ev:?}");
    let sim1 = root.join("sys/class/net").join(&renamed);
    assert!(sim1.exists() && !root.join("sys/class/net").join(&names[1]).exists());
    assert!(ip_ok(&["link", "set", &renamed, "up"]));
    wait_until(
        "operstate of the link set up",
        Duration::from_secs(3),
        || std::fs::read_to_string(sim1.join("operstate")).is_ok_and(|s| s.trim() != "down"),
    );
    assert_eq!(read(&sim1.join("operstate")), "lowerlayerdown");
    assert_eq!(read(&sim1.join("carrier")), "0");
    assert!(
        listener.recv(Duration::from_millis(300)).is_err(),
        "no uevent for operstate"
    );
    assert!(ip_ok(&["link", "set", &renamed, "down", "name", &names[1]]));
    guard.ifnames.pop();
    wait_until("renamed back", Duration::from_secs(3), || {
        root.join("sys/class/net").join(&names[1]).exists()
    });
    // A VF netdev moved into another namespace is still deleted with the VF.
    let ns = format!("simt{}", std::process::id());
    assert!(
        Command::new("ip")
            .args(["netns", "add", &ns])
            .status()
            .unwrap()
            .success()
    );
    struct Ns(String);
    impl Drop for Ns {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _ns = Ns(ns.clone());
    assert!(
        Command::new("ip")
            .args(["link", "set", &names[2], "netns", &ns])
            .status()
            .unwrap()
            .success()
    );
    // Sysfs follows it: gone from the host view while in the pod's
    // namespace, back (renamed, with its new MTU) when it returns.
    let vf2 = pci_device(root, "0000:3b:02.2");
    wait_until("moved netdev hidden", Duration::from_secs(3), || {
        std::fs::symlink_metadata(root.join("sys/class/net").join(&names[2])).is_err()
            && vf2.join("net").read_dir().unwrap().next().is_none()
    });
    let back = format!("{pf}r2");
    let ok = Command::new("ip")
        .args([
            "-n", &ns, "link", "set", &names[2], "name", &back, "mtu", "1400", "netns", "1",
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    guard.ifnames.push(back.clone());
    wait_until("returned netdev shown", Duration::from_secs(3), || {
        vf2.join("net").join(&back).join("mtu").exists()
    });
    assert_eq!(read(&vf2.join("net").join(&back).join("mtu")), "1400");
    assert!(root.join("sys/class/net").join(&back).exists());
    echo("1500", &vf2.join("net").join(&back).join("mtu")).unwrap();
    assert_eq!(
        read(&Path::new("/sys/class/net").join(&back).join("mtu")),
        "1500"
    );
    assert!(
        Command::new("ip")
            .args(["link", "set", &back, "netns", &ns])
            .status()
            .unwrap()
            .success()
    );
    // Unbind deletes the veth.
    echo("0000:3b:02.0", &driver_dir(root, "iavf").join("unbind")).unwrap();
    assert!(!Path::new("/sys/class/net").join(&names[0]).exists());
    echo("0000:3b:02.0", &driver_dir(root, "iavf").join("bind")).unwrap();
    assert!(Path::new("/sys/class/net").join(&names[0]).exists());
    // VF removal deletes them all, including the one in the other netns.
    echo("0", &p.join("sriov_numvfs")).unwrap();
    for n in &names[..2] {
        assert!(!Path::new("/sys/class/net").join(n).exists(), "{n} deleted");
    }
    let out = Command::new("ip")
        .args(["-n", &ns, "-o", "link", "show"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !listed.contains(&back) && !listed.contains(&names[2]),
        "{listed}"
    );
    // Leave some for drop to delete.
    echo("2", &p.join("sriov_numvfs")).unwrap();
    assert!(Path::new("/sys/class/net").join(&names[1]).exists());
}

#[test]
fn remove_rescan_and_carrier_through_the_mount() {
    if !lanes::require("remove_rescan_and_carrier_through_the_mount", &[Lane::Fuse]) {
        return;
    }
    let (_guard, sim) = start("mixed", SimOptions::default());
    let root = sim.root();
    let listener = UeventListener::bind(root, "test").unwrap();
    let recv =
        || String::from_utf8(listener.recv(Duration::from_secs(2)).expect("a uevent")).unwrap();
    let pf_path = "/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.1";
    let pf_dir = std::fs::canonicalize(pci_device(root, PF)).unwrap();
    // Pull the cable on the PF, put it back: operstate and carrier follow.
    let net = root.join("sys/class/net/ens1f1");
    echo("0", &net.join("carrier")).unwrap();
    assert_eq!(
        (read(&net.join("carrier")), read(&net.join("operstate"))),
        ("0".into(), "down".into())
    );
    echo("1", &net.join("carrier")).unwrap();
    assert_eq!(read(&net.join("operstate")), "up");
    assert_eq!(write(&net.join("carrier"), "x"), Err(libc::EINVAL));

    // Remove the PF: the driver lets go (net remove, unbind), then the
    // function goes (pci remove).
    echo("1", &pf_dir.join("remove")).unwrap();
    let ev = [recv(), recv(), recv()];
    assert!(
        ev[0].starts_with(&format!("remove@{pf_path}/net/ens1f1\0")),
        "{ev:?}"
    );
    assert!(ev[1].starts_with(&format!("unbind@{pf_path}\0")), "{ev:?}");
    assert!(ev[2].starts_with(&format!("remove@{pf_path}\0")), "{ev:?}");
    assert!(!pci_device(root, PF).exists());
    assert!(!net.exists());
    assert!(!pf_dir.exists());

    // Rescan: back, bound to ice, SR-IOV off, usable.
    echo("1", &root.join("sys/bus/pci/rescan")).unwrap();
    let ev = [recv(), recv(), recv()];
    assert!(ev[0].starts_with(&format!("add@{pf_path}\0")), "{ev:?}");
    assert!(
        ev[1].starts_with(&format!("add@{pf_path}/net/ens1f1\0")),
        "{ev:?}"
    );
    assert!(ev[2].starts_with(&format!("bind@{pf_path}\0")), "{ev:?}");
    assert!(link(&pci_device(root, PF).join("driver")).ends_with("/ice"));
    assert_eq!(read(&pci_device(root, PF).join("sriov_numvfs")), "0");
    assert_eq!(read(&net.join("operstate")), "up");
    echo("2", &pci_device(root, PF).join("sriov_numvfs")).unwrap();
    assert!(pci_device(root, "0000:3b:12.1").exists());

    // A PF with VFs: all of them go with it; a VF removed alone is gone
    // for good (a rescan does not find VFs).
    let pf0 = "0000:3b:00.0";
    let vf3 = std::fs::canonicalize(pci_device(root, "0000:3b:02.3")).unwrap();
    echo("1", &vf3.join("remove")).unwrap();
    assert!(!pci_device(root, "0000:3b:02.3").exists());
    assert!(!pci_device(root, pf0).join("virtfn3").exists());
    echo(
        "1",
        &std::fs::canonicalize(pci_device(root, pf0))
            .unwrap()
            .join("remove"),
    )
    .unwrap();
    assert!(!pci_device(root, pf0).exists() && !pci_device(root, "0000:3b:02.0").exists());
    echo("1", &root.join("sys/bus/pci/rescan")).unwrap();
    assert!(pci_device(root, pf0).exists());
    assert!(!pci_device(root, "0000:3b:02.3").exists());
    assert_eq!(read(&pci_device(root, pf0).join("sriov_numvfs")), "0");
}
