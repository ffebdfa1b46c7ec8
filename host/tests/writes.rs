//! Checked writes on static trees: what is written, in which order, what is
//! refused before writing, and the errors when the kernel does not react.
//! A [`Recorder`] records writes and, where a test needs it, plays the
//! kernel's part (creates VFs, moves driver links).

mod fake_kernel;

use std::time::{Duration, Instant};

use fake_kernel::{Recorder, TestNode, add_e810_vf, binding_kernel, mixed_node};
use sriov_host::driver::{self, BindOptions, DriverState};
use sriov_host::error::Error;
use sriov_host::pci::PciAddress;
use sriov_host::sriov::{self, set_num_vfs};

fn a(s: &str) -> PciAddress {
    s.parse().unwrap()
}

const PF0: &str = "sys/bus/pci/devices/0000:3b:00.0";
const SHORT: Duration = Duration::from_millis(150);

fn w(path: &str, value: &str) -> (String, String) {
    (path.to_string(), value.to_string())
}

/// A kernel stand-in for `sriov_numvfs`: writing N creates N VFs (links,
/// functions), writing 0 removes them; writing N while VFs exist is EBUSY
/// in a real kernel, which this stand-in asserts never happens.
fn numvfs_kernel(node: &TestNode) -> std::sync::Arc<Recorder> {
    let tree = node.tree.clone();
    Recorder::reacting(node.path(), move |rel, value| {
        if rel != format!("{PF0}/sriov_numvfs") {
            return;
        }
        let mut t = tree.lock().unwrap();
        let n: u32 = value.trim().parse().unwrap();
        let existing: Vec<u32> = (0..64)
            .filter(|i| {
                sriov_sim::tree::vf_address("0000:3b:00.0", 16, 1, *i)
                    .is_some_and(|v| t.device_dir(&v).is_some())
            })
            .collect();
        if n == 0 {
            for i in existing {
                let v = sriov_sim::tree::vf_address("0000:3b:00.0", 16, 1, i).unwrap();
                t.unlink_vf("0000:3b:00.0", i).unwrap();
                t.remove_function(&v).unwrap();
            }
        } else {
            assert!(existing.is_empty(), "kernel: EBUSY, VFs exist");
            for i in 0..n {
                add_e810_vf(&mut t, "0000:3b:00.0", "ens1f0", i, Some("iavf"), 200 + i);
            }
        }
    })
}

#[test]
fn changing_a_nonzero_vf_count_writes_zero_first_and_waits_for_the_links() {
    let node = mixed_node();
    let rec = numvfs_kernel(&node);
    let root = node.root().with_writer(rec.clone());
    let change = set_num_vfs(&root, &a("3b:00.0"), 5, Duration::from_secs(2)).unwrap();
    assert_eq!((change.previous, change.current), (3, 5));
    assert_eq!(
        rec.writes(),
        [
            w(&format!("{PF0}/sriov_numvfs"), "0"),
            w(&format!("{PF0}/sriov_numvfs"), "5")
        ]
    );
    let links = sriov::read_vf_links(&node.path().join(PF0)).unwrap();
    assert_eq!(links.len(), 5);

    // Down to zero: a single write of 0.
    let change = set_num_vfs(&root, &a("3b:00.0"), 0, Duration::from_secs(2)).unwrap();
    assert_eq!((change.previous, change.current), (5, 0));
    assert_eq!(rec.writes().len(), 3);
    assert!(
        sriov::read_vf_links(&node.path().join(PF0))
            .unwrap()
            .is_empty()
    );

    // From zero: a single write of N; the same count again writes nothing.
    set_num_vfs(&root, &a("3b:00.0"), 2, Duration::from_secs(2)).unwrap();
    let c = set_num_vfs(&root, &a("3b:00.0"), 2, Duration::from_secs(2)).unwrap();
    assert!(!c.changed());
    assert_eq!(rec.writes()[3..], [w(&format!("{PF0}/sriov_numvfs"), "2")]);
}

#[test]
fn vfs_that_never_appear_time_out_with_a_clear_error() {
    let node = mixed_node();
    let rec = Recorder::new(node.path());
    let root = node.root().with_writer(rec.clone());
    // From 0 on PF 3b:00.1: the static tree accepts the value, no VF shows up.
    let start = Instant::now();
    let err = set_num_vfs(&root, &a("3b:00.1"), 4, SHORT).unwrap_err();
    assert!(start.elapsed() >= SHORT && start.elapsed() < Duration::from_secs(2));
    let msg = err.to_string();
    assert!(matches!(err, Error::Timeout { .. }), "{msg}");
    assert!(msg.contains("VF 0 of 4"), "{msg}");
    assert!(msg.contains("0000:3b:00.1/virtfn0"), "{msg}");
    assert_eq!(
        rec.writes(),
        [w("sys/bus/pci/devices/0000:3b:00.1/sriov_numvfs", "4")]
    );
    // Disabling VFs whose links stay (the static PF 3b:00.0 keeps its 3).
    let err = set_num_vfs(&root, &a("3b:00.0"), 0, SHORT).unwrap_err();
    assert!(err.to_string().contains("virtfn0"), "{err}");
}

#[test]
fn bad_counts_and_non_pfs_are_refused_before_any_write() {
    let node = mixed_node();
    let rec = Recorder::new(node.path());
    let root = node.root().with_writer(rec.clone());
    let e = set_num_vfs(&root, &a("3b:00.0"), 65, SHORT).unwrap_err();
    assert!(
        matches!(
            e,
            Error::TooManyVfs {
                total: 64,
                requested: 65,
                ..
            }
        ),
        "{e}"
    );
    let e = set_num_vfs(&root, &a("af:00.0"), 1, SHORT).unwrap_err();
    assert!(matches!(e, Error::NotSriovPf { .. }), "{e}");
    assert!(e.to_string().contains("af:00.0/sriov_totalvfs"));
    let e = set_num_vfs(&root, &a("99:00.0"), 1, SHORT).unwrap_err();
    assert!(matches!(e, Error::NoSuchDevice { .. }), "{e}");
    assert!(rec.writes().is_empty());
    assert_eq!(node.read(&format!("{PF0}/sriov_numvfs")), "3");
}

#[test]
fn a_kernel_errno_is_reported_with_the_path() {
    let node = mixed_node();
    let rec = Recorder::new(node.path());
    rec.fail("0000:3b:00.1/sriov_numvfs", libc::ENOMEM);
    let root = node.root().with_writer(rec.clone());
    let e = set_num_vfs(&root, &a("3b:00.1"), 4, SHORT).unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.errno(), Some(libc::ENOMEM));
    assert!(msg.contains("ENOMEM"), "{msg}");
    assert!(msg.contains("0000:3b:00.1/sriov_numvfs"), "{msg}");
    assert!(msg.contains("\"4\""), "{msg}");
}

#[test]
fn drivers_autoprobe_is_written_and_read_back() {
    let node = mixed_node();
    let root = node.root();
    sriov::set_drivers_autoprobe(&root, &a("3b:00.0"), false).unwrap();
    assert_eq!(node.read(&format!("{PF0}/sriov_drivers_autoprobe")), "0");
    let e = sriov::set_drivers_autoprobe(&root, &a("af:00.0"), false).unwrap_err();
    assert!(matches!(e, Error::NotSriovPf { .. }));
}

const VF0: &str = "sys/bus/pci/devices/0000:3b:02.0";

#[test]
fn binding_writes_override_unbind_and_probe_in_order() {
    let node = mixed_node();
    let rec = binding_kernel(&node, "iavf");
    let root = node.root().with_writer(rec.clone());
    let out = driver::bind(&root, &a("3b:02.0"), "vfio-pci", &BindOptions::default()).unwrap();
    assert_eq!(out.previous.as_deref(), Some("iavf"));
    assert_eq!(out.current.as_deref(), Some("vfio-pci"));
    assert!(out.changed());
    assert_eq!(
        rec.writes(),
        [
            w(&format!("{VF0}/driver_override"), "vfio-pci"),
            w("sys/bus/pci/drivers/iavf/unbind", "0000:3b:02.0"),
            w("sys/bus/pci/drivers_probe", "0000:3b:02.0"),
        ]
    );
    let st = driver::driver_state(&root, &a("3b:02.0")).unwrap();
    assert_eq!(
        st,
        DriverState {
            driver: Some("vfio-pci".into()),
            driver_override: Some("vfio-pci".into())
        },
        "a userspace driver keeps its override"
    );

    // Back to the default driver: clear the override, unbind, probe.
    let out = driver::bind_default(&root, &a("3b:02.0"), SHORT).unwrap();
    assert_eq!(out.current.as_deref(), Some("iavf"));
    assert_eq!(
        rec.writes()[3..],
        [
            w(&format!("{VF0}/driver_override"), "\n"),
            w("sys/bus/pci/drivers/vfio-pci/unbind", "0000:3b:02.0"),
            w("sys/bus/pci/drivers_probe", "0000:3b:02.0"),
        ]
    );
    assert_eq!(
        driver::driver_state(&root, &a("3b:02.0"))
            .unwrap()
            .driver_override,
        None
    );
    // Already on the default driver: nothing to write.
    let out = driver::bind_default(&root, &a("3b:02.0"), SHORT).unwrap();
    assert!(!out.changed());
    assert_eq!(rec.writes().len(), 6);
}

#[test]
fn binding_a_kernel_driver_clears_the_override_afterwards() {
    let node = mixed_node();
    node.with(|t| t.add_driver("iavf").unwrap());
    let rec = binding_kernel(&node, "none-default");
    let root = node.root().with_writer(rec.clone());
    let opts = BindOptions {
        keep_override: false,
        timeout: SHORT,
    };
    let out = driver::bind(&root, &a("3b:02.1"), "iavf", &opts).unwrap();
    assert_eq!(out.previous.as_deref(), Some("vfio-pci"));
    assert_eq!(
        rec.writes(),
        [
            w("sys/bus/pci/devices/0000:3b:02.1/driver_override", "iavf"),
            w("sys/bus/pci/drivers/vfio-pci/unbind", "0000:3b:02.1"),
            w("sys/bus/pci/drivers_probe", "0000:3b:02.1"),
            w("sys/bus/pci/devices/0000:3b:02.1/driver_override", "\n"),
        ]
    );
    // Binding to the driver it is on writes nothing (override already clear).
    driver::bind(&root, &a("3b:02.1"), "iavf", &opts).unwrap();
    assert_eq!(rec.writes().len(), 4);
}

#[test]
fn a_missing_driver_is_refused_before_any_write_and_says_modprobe() {
    let node = mixed_node();
    let rec = Recorder::new(node.path());
    let root = node.root().with_writer(rec.clone());
    let e = driver::bind(
        &root,
        &a("3b:02.0"),
        "uio_pci_generic",
        &BindOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::DriverNotLoaded { .. }));
    assert!(e.to_string().contains("modprobe uio_pci_generic"), "{e}");
    let e = driver::bind(&root, &a("3b:0f.0"), "vfio-pci", &BindOptions::default()).unwrap_err();
    assert!(matches!(e, Error::NoSuchDevice { .. }), "{e}");
    assert!(rec.writes().is_empty());
}

#[test]
fn a_static_tree_fails_verification_and_the_override_is_restored() {
    let node = mixed_node();
    let rec = Recorder::new(node.path());
    let root = node.root().with_writer(rec.clone());
    // Bound device: unbind is written, the driver link stays.
    let e = driver::bind(&root, &a("3b:02.0"), "vfio-pci", &BindOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::NotApplied { .. }), "{msg}");
    assert!(msg.contains("unbinding 0000:3b:02.0 from iavf"), "{msg}");
    assert!(msg.contains("0000:3b:02.0/driver"), "{msg}");
    assert_eq!(
        rec.writes(),
        [
            w(&format!("{VF0}/driver_override"), "vfio-pci"),
            w("sys/bus/pci/drivers/iavf/unbind", "0000:3b:02.0"),
            w(&format!("{VF0}/driver_override"), "\n"),
        ],
        "the override is put back"
    );

    // Unbound device: probe is written, no driver claims it.
    let opts = BindOptions {
        keep_override: true,
        timeout: SHORT,
    };
    let e = driver::bind(&root, &a("3b:02.2"), "vfio-pci", &opts).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("binding 0000:3b:02.2 to vfio-pci"), "{msg}");
    assert!(msg.contains("expected \"vfio-pci\""), "{msg}");
    assert!(msg.contains("dmesg"), "{msg}");
    assert_eq!(
        rec.writes()[3..],
        [
            w(
                "sys/bus/pci/devices/0000:3b:02.2/driver_override",
                "vfio-pci"
            ),
            w("sys/bus/pci/drivers_probe", "0000:3b:02.2"),
            w("sys/bus/pci/devices/0000:3b:02.2/driver_override", "\n"),
        ]
    );
}

#[test]
fn a_failed_probe_restores_the_previous_driver() {
    let node = mixed_node();
    // The kernel stand-in unbinds, but vfio-pci "refuses" the device: probe
    // fails with EINVAL. The VF must end up on iavf again.
    let rec = binding_kernel(&node, "iavf");
    rec.fail("sys/bus/pci/drivers_probe", libc::EINVAL);
    let root = node.root().with_writer(rec.clone());
    let e = driver::bind(&root, &a("3b:02.0"), "vfio-pci", &BindOptions::default()).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EINVAL), "{e}");
    assert!(e.to_string().contains("drivers_probe"), "{e}");
    // Restoring needs a working probe.
    rec.failures.lock().unwrap().clear();
    let before = DriverState {
        driver: Some("iavf".into()),
        driver_override: None,
    };
    driver::restore(&root, &a("3b:02.0"), &before, SHORT).unwrap();
    assert_eq!(driver::driver_state(&root, &a("3b:02.0")).unwrap(), before);
}

#[test]
fn unbind_and_rebind() {
    let node = mixed_node();
    let rec = binding_kernel(&node, "iavf");
    let root = node.root().with_writer(rec.clone());
    let out = driver::rebind(&root, &a("3b:02.0"), SHORT).unwrap();
    assert_eq!(
        (out.previous.as_deref(), out.current.as_deref()),
        (Some("iavf"), Some("iavf"))
    );
    let out = driver::unbind(&root, &a("3b:02.0")).unwrap();
    assert_eq!(out.previous.as_deref(), Some("iavf"));
    assert_eq!(driver::current_driver(&root, &a("3b:02.0")).unwrap(), None);
    let out = driver::unbind(&root, &a("3b:02.0")).unwrap();
    assert!(!out.changed(), "unbinding an unbound device is a no-op");
    assert_eq!(
        rec.writes(),
        [
            w("sys/bus/pci/drivers/iavf/unbind", "0000:3b:02.0"),
            w("sys/bus/pci/drivers_probe", "0000:3b:02.0"),
            w("sys/bus/pci/drivers/iavf/unbind", "0000:3b:02.0"),
        ]
    );
}

/// A driver that probes asynchronously: the probe write returns before the
/// driver link exists; the link appears when the waiter settles (as a
/// uevent-driven waiter would be woken by the `bind` uevent).
#[test]
fn binding_waits_with_the_given_settle_for_an_asynchronous_probe() {
    struct AsyncProbe {
        tree: std::sync::Arc<std::sync::Mutex<fake_kernel::Tree>>,
        calls: u32,
    }
    impl sriov::Settle for AsyncProbe {
        fn settle(&mut self, max: Duration) {
            assert!(max > Duration::ZERO && max <= Duration::from_secs(30));
            self.calls += 1;
            let mut t = self.tree.lock().unwrap();
            t.bind("0000:3b:02.1", "iavf").unwrap();
        }
    }
    let node = mixed_node();
    node.with(|t| t.add_driver("iavf").unwrap());
    let unbinds = {
        let tree = node.tree.clone();
        Recorder::reacting(node.path(), move |rel, value| {
            if rel.ends_with("/unbind") {
                tree.lock().unwrap().unbind(value.trim()).unwrap();
            }
        })
    };
    let root = node.root().with_writer(unbinds.clone());
    let mut settle = AsyncProbe {
        tree: node.tree.clone(),
        calls: 0,
    };
    let start = Instant::now();
    let out =
        driver::bind_default_settled_by(&root, &a("3b:02.1"), Duration::from_secs(30), &mut settle)
            .unwrap();
    assert_eq!(out.previous.as_deref(), Some("vfio-pci"));
    assert_eq!(out.current.as_deref(), Some("iavf"));
    assert_eq!(settle.calls, 1, "one wait, then the check passed");
    assert!(start.elapsed() < Duration::from_secs(5));
}
