//! Kernel uevents: parsing of captured real datagrams (everywhere), and
//! live `add`/`remove` of a veth in the initial network namespace (root).

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use sriov_host::netlink::{LinkOps, Netlink};
use sriov_host::uevent::{self, Action, UeventSocket, UeventStream};
use sriov_sim::lanes::{self, Lane};

fn captured() -> Vec<(String, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/uevents.txt");
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (label, hex) = l.split_once('\t').unwrap();
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (label.to_owned(), bytes)
        })
        .collect()
}

#[test]
fn captured_kernel_uevents_parse() {
    let all = captured();
    assert!(all.len() >= 10);
    let events: Vec<_> = all.iter().map(|(_, b)| uevent::parse(b).unwrap()).collect();
    // Sequence numbers increase.
    assert!(events.windows(2).all(|w| w[0].seqnum < w[1].seqnum));

    let net_add: Vec<_> = events
        .iter()
        .filter(|e| e.action == Action::Add && e.subsystem == "net")
        .collect();
    assert_eq!(net_add.len(), 2, "both veth ends");
    for e in &net_add {
        let ifname = e.interface.as_deref().unwrap();
        assert!(e.devpath.ends_with(&format!("/net/{ifname}")), "{e:?}");
        assert!(e.get("IFINDEX").unwrap().parse::<u32>().is_ok());
    }
    let mv = events.iter().find(|e| e.action == Action::Move).unwrap();
    assert!(mv.get("DEVPATH_OLD").is_some());
    assert!(mv.devpath.ends_with(mv.interface.as_deref().unwrap()));

    let net_remove = events
        .iter()
        .filter(|e| e.action == Action::Remove && e.subsystem == "net")
        .count();
    assert_eq!(net_remove, 2);
    // Queue events carry no INTERFACE.
    assert!(
        events
            .iter()
            .filter(|e| e.subsystem == "queues")
            .all(|e| e.interface.is_none())
    );

    let pci: Vec<_> = events.iter().filter(|e| e.subsystem == "pci").collect();
    assert!(pci.iter().any(|e| e.action == Action::Change));
    assert!(pci.iter().any(|e| e.action == Action::Bind));
    for e in pci {
        let slot = e.pci_slot.as_deref().unwrap();
        assert!(e.devpath.ends_with(slot), "{e:?}");
        assert!(e.driver.is_some());
    }
}

#[test]
fn captured_uevents_round_trip_through_the_simulator_format() {
    for (label, bytes) in captured() {
        let ev = uevent::parse(&bytes).unwrap();
        let again = uevent::parse(&ev.to_bytes()).unwrap();
        assert_eq!(ev, again, "{label}");
    }
}

/// A link in the initial namespace deleted on drop.
struct LinkGuard<'a>(&'a Netlink, String);

impl Drop for LinkGuard<'_> {
    fn drop(&mut self) {
        let _ = self.0.delete(self.1.as_str().into());
    }
}

#[test]
fn veth_add_and_remove_are_seen_with_their_interface() {
    if !lanes::require("veth_add_and_remove_uevents", &[Lane::Netns]) {
        return;
    }
    // Net device uevents go to listeners in the device's namespace: this
    // test uses the initial one, with a name unique to this process.
    let mut sock = UeventSocket::open().unwrap();
    let nl = Netlink::open().unwrap();
    let name = format!("uev{}a", std::process::id());
    let peer = format!("uev{}b", std::process::id());
    nl.add_veth(&name, &peer).unwrap();
    let guard = LinkGuard(&nl, name.clone());
    let add = sock
        .wait_for(Duration::from_secs(10), |e| {
            e.subsystem == "net" && e.interface.as_deref() == Some(name.as_str())
        })
        .unwrap()
        .expect("an add uevent for the veth");
    assert_eq!(add.action, Action::Add);
    let index = nl.link(name.as_str().into()).unwrap().index;
    assert_eq!(add.get("IFINDEX"), Some(index.to_string().as_str()));

    nl.delete(name.as_str().into()).unwrap();
    std::mem::forget(guard);
    let remove = sock
        .wait_for(Duration::from_secs(10), |e| {
            e.action == Action::Remove && e.interface.as_deref() == Some(name.as_str())
        })
        .unwrap()
        .expect("a remove uevent for the veth");
    assert_eq!(remove.subsystem, "net");
    assert!(remove.seqnum > add.seqnum);
    // Nothing more about it within a short while.
    assert!(
        sock.wait_for(Duration::from_millis(200), |e| e.interface.as_deref()
            == Some(name.as_str()))
            .unwrap()
            .is_none()
    );
}

#[test]
fn async_stream_sees_veth_add() {
    if !lanes::require("async_stream_sees_veth_add", &[Lane::Netns]) {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let nl = Netlink::open().unwrap();
    let name = format!("uev{}s", std::process::id());
    let peer = format!("uev{}t", std::process::id());
    let _guard = LinkGuard(&nl, name.clone());
    rt.block_on(async {
        let mut stream = UeventStream::open().unwrap();
        let nl2 = nl.clone();
        let (n, p) = (name.clone(), peer.clone());
        tokio::task::spawn_blocking(move || nl2.add_veth(&n, &p))
            .await
            .unwrap()
            .unwrap();
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(ev) = stream.next().await {
                let ev = ev.unwrap();
                if ev.subsystem == "net" && ev.interface.as_deref() == Some(name.as_str()) {
                    return ev;
                }
            }
            panic!("stream ended");
        })
        .await
        .expect("an add uevent within 10 s");
        assert_eq!(found.action, Action::Add);
    });
}

#[test]
fn net_device_uevents_stay_in_their_namespace() {
    if !lanes::require("net_device_uevents_stay_in_their_namespace", &[Lane::Netns]) {
        return;
    }
    let ns = sriov_host::netns::NamedNetns::create(&format!("uev-{}", std::process::id())).unwrap();
    let mut inside = UeventSocket::open_in(ns.netns()).unwrap();
    let mut outside = UeventSocket::open().unwrap();
    let nl = Netlink::open_in(ns.netns()).unwrap();
    let name = format!("uev{}n", std::process::id());
    nl.add_veth(&name, &format!("uev{}m", std::process::id()))
        .unwrap();
    let add = inside
        .wait_for(Duration::from_secs(10), |e| {
            e.interface.as_deref() == Some(name.as_str())
        })
        .unwrap()
        .expect("the namespace's listener sees the add");
    assert_eq!(add.action, Action::Add);
    assert!(
        outside
            .wait_for(Duration::from_millis(300), |e| e.interface.as_deref()
                == Some(name.as_str()))
            .unwrap()
            .is_none(),
        "a listener in the initial namespace must not see it"
    );
}
