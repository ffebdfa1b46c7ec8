//! Fault injection in ADD: every netlink call ADD makes (each can fail),
//! each ADD checkpoint (`SRIOV_CNI_TEST_FAIL_AFTER`), and an unwritable
//! state directory. After each failed ADD and the DEL the runtime sends
//! next, the VF and the PF's VF settings are as before, and no state or
//! allocation file is left. The PF is `RecordingLinkOps`, the node a static
//! simulated sysfs tree, the VF on vfio-pci (userspace mode): no root
//! needed. The netdev path (moves into a pod namespace) is covered with
//! the same checkpoints, killed and failing, in `e2e.rs`
//! (`add_killed_or_failing_half_way_then_del_restores`, FUSE + netns lanes).
//!
//! One `#[test]` in this binary: the checkpoint hook reads the process
//! environment, so nothing may run beside it.

mod static_node;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::errno::Errno;
use serde_json::json;
use sriov_cni::config::NetConf;
use sriov_cni::env::Command;
use sriov_cni::plugin::Plugin;
use sriov_host::PciAddress;
use sriov_host::netlink::{Failure, LinkId, LinkOps, RecordingLinkOps, VfInfo, VfSetting, VfVlan};
use static_node::{PF, StaticNode, VF_INDEX, env};

struct Setup {
    _dir: tempfile::TempDir,
    state: tempfile::TempDir,
    fake: RecordingLinkOps,
    plugin: Plugin,
    vf: PciAddress,
    before: VfInfo,
}

fn setup() -> Setup {
    let StaticNode {
        tree,
        fake,
        plugin,
        vf,
    } = StaticNode::new();
    // A VF that is not fresh: an admin MAC, a VLAN and trust already set,
    // so "as before" is more than the defaults.
    fake.set_vf(
        LinkId::Name(PF.into()),
        VF_INDEX,
        &[
            VfSetting::Mac("02:00:00:00:aa:02".parse().unwrap()),
            VfSetting::Vlan(VfVlan {
                vlan: 5,
                qos: 1,
                ..Default::default()
            }),
            VfSetting::Trust(true),
        ],
    )
    .unwrap();
    let before = fake.vf_state(PF, VF_INDEX).unwrap();
    fake.clear_calls();
    Setup {
        _dir: tree,
        state: tempfile::tempdir().unwrap(),
        fake,
        plugin,
        vf,
        before,
    }
}

/// Every PF-side setting the plugin knows, so ADD makes every call it can.
fn conf(s: &Setup, data_dir: &Path) -> (NetConf, Vec<u8>) {
    let c = json!({"cniVersion": "1.0.0", "name": "n", "type": "sriov",
        "deviceID": s.vf.to_string(), "dataDir": data_dir,
        "vlan": 100, "vlanQoS": 3, "spoofchk": "off", "trust": "off",
        "link_state": "enable", "min_tx_rate": 10, "max_tx_rate": 500,
        "mac": "02:00:00:00:00:42"});
    let bytes = serde_json::to_vec(&c).unwrap();
    (NetConf::parse(&bytes, None).unwrap(), bytes)
}

/// Files left anywhere under `dir` (state files, `pci/<addr>` allocations;
/// lock files are allowed to stay, as the Go plugin's do).
fn leftovers(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else if !p.to_string_lossy().contains("vf_lock") {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// ADD (expected to fail, or to succeed when the failure was tolerable),
/// then DEL; the VF and its PF-side settings must be as before.
fn fail_then_del(s: &Setup, what: &str, data_dir: &Path) -> bool {
    let (c, b) = conf(s, data_dir);
    let add = s.plugin.add(&env(Command::Add, "c1"), &c, &b);
    s.fake.clear_failures();
    let (c, b) = conf(s, s.state.path());
    s.plugin
        .del(&env(Command::Del, "c1"), &c, &b)
        .unwrap_or_else(|e| panic!("{what}: DEL after the failed ADD failed: {e}"));
    assert_eq!(
        s.fake.vf_state(PF, VF_INDEX).unwrap(),
        s.before,
        "{what}: VF settings on the PF not restored (ADD: {add:?})"
    );
    for other in [0, 1, 3] {
        assert_eq!(
            s.fake.vf_state(PF, other).unwrap(),
            VfInfo::fresh(other),
            "{what}: VF {other} touched"
        );
    }
    assert_eq!(leftovers(s.state.path()), Vec::<String>::new(), "{what}");
    let driver = std::fs::read_link(s.plugin.root.pci_device(&s.vf).join("driver")).unwrap();
    assert!(
        driver.ends_with("vfio-pci"),
        "{what}: VF driver is now {driver:?}"
    );
    add.is_err()
}

#[test]
fn every_add_failure_point_leaves_the_vf_as_before_after_del() {
    // The golden ADD: how many netlink calls it makes.
    let golden = setup();
    let (c, b) = conf(&golden, golden.state.path());
    golden.plugin.add(&env(Command::Add, "c1"), &c, &b).unwrap();
    let calls = golden.fake.calls().len();
    assert!(calls >= 8, "ADD made only {calls} netlink calls");

    let mut tried = 0;
    let mut add_failed = 0;
    // 1. Each netlink call of ADD fails, with an errno a driver or the
    //    kernel really returns.
    for errno in [Errno::EIO, Errno::EOPNOTSUPP, Errno::EBUSY] {
        for k in 0..calls {
            let s = setup();
            let n = Arc::new(AtomicUsize::new(0));
            let n2 = n.clone();
            s.fake.fail(Failure::when(errno, move |_| {
                n2.fetch_add(1, Ordering::SeqCst) == k
            }));
            let what = format!("netlink call {k} of {calls} fails with {errno}");
            tried += 1;
            add_failed += usize::from(fail_then_del(&s, &what, s.state.path()));
        }
    }
    // 2. Each checkpoint of the userspace-mode ADD, and the ones it never
    //    reaches (then ADD succeeds and DEL restores).
    for step in ["state", "vf-settings", "move", "link", "ipam", "addresses"] {
        let s = setup();
        // SAFETY: the only test in this binary; no other thread reads the environment.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("SRIOV_CNI_TEST_FAIL_AFTER", step)
        };
        tried += 1;
        add_failed += usize::from(fail_then_del(
            &s,
            &format!("failure after {step}"),
            s.state.path(),
        ));
        #[allow(unsafe_code)] // as above
        unsafe {
            std::env::remove_var("SRIOV_CNI_TEST_FAIL_AFTER")
        };
    }
    // 3. The state directory cannot be written (a file where it should be).
    let s = setup();
    let elsewhere = tempfile::tempdir().unwrap();
    let blocked = elsewhere.path().join("blocked");
    std::fs::write(&blocked, b"").unwrap();
    tried += 1;
    assert!(fail_then_del(&s, "state dir is a file", &blocked));
    add_failed += 1;

    eprintln!(
        "fault injection: {tried} failure points tried ({calls} netlink calls x 3 errnos, \
         6 checkpoints, 1 unwritable state dir); ADD failed at {add_failed}, \
         VF restored after DEL at all"
    );
    assert!(
        add_failed >= calls * 3 / 2,
        "most injected failures must fail ADD"
    );
}
