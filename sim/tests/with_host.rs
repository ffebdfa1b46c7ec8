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
