//! Kernel uevents through the `host` crate's listener, for what the kernel
//! really emits on SR-IOV changes: VFs added and removed, drivers bound and
//! unbound, VF netdevs appearing and going away.

use std::time::{Duration, Instant};

use sriov_host::uevent::{Action, Uevent, UeventSocket};
use sriov_hw_tests::{NumVfsGuard, pf, sysfs};

/// A named expectation on one uevent.
type Want<'a> = (&'a str, &'a dyn Fn(&Uevent) -> bool);

/// Receives events until every expectation matched one, or 15 s passed.
/// Returns everything received (for the failure message).
fn expect_events(sock: &mut UeventSocket, what: &str, wants: &[Want<'_>]) -> Vec<Uevent> {
    let end = Instant::now() + Duration::from_secs(15);
    let mut seen: Vec<Uevent> = Vec::new();
    let mut met = vec![false; wants.len()];
    while met.iter().any(|m| !m) {
        let left = end.saturating_duration_since(Instant::now());
        let Some(ev) = sock.recv(Some(left)).unwrap() else {
            let missing: Vec<&str> = wants
                .iter()
                .zip(&met)
                .filter(|(_, m)| !**m)
                .map(|((name, _), _)| *name)
                .collect();
            let got: Vec<String> = seen
                .iter()
                .map(|e| {
                    format!(
                        "{} {} {} {:?} {:?}",
                        e.action, e.subsystem, e.devpath, e.interface, e.driver
                    )
                })
                .collect();
            panic!(
                "{what}: no uevent for {missing:?} within 15 s; received:\n{}",
                got.join("\n")
            );
        };
        for (i, (_, pred)) in wants.iter().enumerate() {
            if !met[i] && pred(&ev) {
                met[i] = true;
            }
        }
        seen.push(ev);
    }
    seen
}

fn pci_event(ev: &Uevent, action: Action, pci: &str) -> bool {
    ev.action == action && ev.subsystem == "pci" && ev.pci_slot.as_deref() == Some(pci)
}

#[test]
fn uevents_for_vf_creation_driver_changes_and_removal() {
    let Some(pf) = pf("uevents_for_vf_creation_driver_changes_and_removal") else {
        return;
    };
    if !std::path::Path::new("/sys/bus/pci/drivers/vfio-pci").exists() {
        let _ = std::process::Command::new("modprobe")
            .arg("vfio-pci")
            .status();
    }
    let _restore = NumVfsGuard::new(&pf).unwrap();
    pf.set_numvfs(0).unwrap();
    let mut sock = UeventSocket::open().unwrap();

    // VF creation: a pci add per VF, the VF driver's bind, the netdev.
    pf.write_numvfs(2).unwrap();
    let vf0 = pf.wait_vf_netdev(0).map(|_| pf.vf_pci(0).unwrap()).unwrap();
    let vf1 = pf.vf_pci(1).unwrap();
    let netdev0 = sysfs::netdevs(&vf0).remove(0);
    let kernel_driver = sysfs::driver(&vf0).unwrap();
    let seen = expect_events(
        &mut sock,
        "VF creation",
        &[
            ("pci add VF 0", &|e| pci_event(e, Action::Add, &vf0)),
            ("pci add VF 1", &|e| pci_event(e, Action::Add, &vf1)),
            ("bind VF 0", &|e| {
                pci_event(e, Action::Bind, &vf0)
                    && e.driver.as_deref() == Some(kernel_driver.as_str())
            }),
            ("net add VF 0", &|e| {
                e.action == Action::Add
                    && e.subsystem == "net"
                    && e.interface.as_deref() == Some(netdev0.as_str())
            }),
        ],
    );
    let add = seen
        .iter()
        .find(|e| pci_event(e, Action::Add, &vf0))
        .unwrap();
    assert!(add.devpath.ends_with(&format!("/{vf0}")), "{}", add.devpath);
    assert!(add.seqnum > 0);
    assert!(add.get("PCI_ID").is_some(), "{add:?}");

    // Driver change: VF 0 to vfio-pci and back.
    sysfs::override_bind(&vf0, Some("vfio-pci")).unwrap();
    expect_events(
        &mut sock,
        "bind to vfio-pci",
        &[
            ("net remove VF 0", &|e| {
                e.action == Action::Remove
                    && e.subsystem == "net"
                    && e.interface.as_deref() == Some(netdev0.as_str())
            }),
            ("unbind VF 0", &|e| pci_event(e, Action::Unbind, &vf0)),
            ("bind VF 0 vfio-pci", &|e| {
                pci_event(e, Action::Bind, &vf0) && e.driver.as_deref() == Some("vfio-pci")
            }),
        ],
    );
    sysfs::override_bind(&vf0, None).unwrap();
    expect_events(
        &mut sock,
        "bind back",
        &[
            ("unbind VF 0", &|e| pci_event(e, Action::Unbind, &vf0)),
            ("bind VF 0 kernel driver", &|e| {
                pci_event(e, Action::Bind, &vf0)
                    && e.driver.as_deref() == Some(kernel_driver.as_str())
            }),
            ("net add", &|e| {
                e.action == Action::Add && e.subsystem == "net" && e.devpath.contains(&vf0)
            }),
        ],
    );

    // Removal.
    pf.write_numvfs(0).unwrap();
    expect_events(
        &mut sock,
        "VF removal",
        &[
            ("pci remove VF 0", &|e| pci_event(e, Action::Remove, &vf0)),
            ("pci remove VF 1", &|e| pci_event(e, Action::Remove, &vf1)),
        ],
    );
}
