//! Real netlink in real network namespaces (root; lane Netns): veth pairs
//! moved between namespaces by fd, renamed, re-addressed, brought up, and
//! moved back; errors from the kernel for VF settings on a non-PF.

use std::sync::Arc;

use nix::errno::Errno;
use sriov_host::netlink::{LinkOps, MacAddr, Netlink, NetlinkError, VfLinkState, VfSetting};
use sriov_host::netns::{NamedNetns, Netns};
use sriov_sim::lanes::{self, Lane};

fn ns_name(tag: &str) -> String {
    format!("nlt-{}-{tag}", std::process::id())
}

/// A veth end deleted on drop (the namespaces' deletion would remove it
/// too; this covers a failure before they are dropped).
struct VethGuard {
    nl: Arc<dyn LinkOps>,
    real: Netlink,
    name: String,
}

impl Drop for VethGuard {
    fn drop(&mut self) {
        let _ = &self.nl;
        let _ = self.real.delete(self.name.as_str().into());
    }
}

#[test]
fn veth_moves_into_netns_renames_configures_and_comes_back() {
    if !lanes::require("veth_moves_into_netns", &[Lane::Netns]) {
        return;
    }
    let home = NamedNetns::create(&ns_name("home")).unwrap();
    let pod = NamedNetns::create(&ns_name("pod")).unwrap();
    let home_nl = Netlink::open_in(home.netns()).unwrap();
    let pid = std::process::id();
    let a = format!("nlv{pid}a");
    let b = format!("nlv{pid}b");
    home_nl.add_veth(&a, &b).unwrap();
    let _guard = VethGuard {
        nl: Arc::new(home_nl.clone()),
        real: home_nl.clone(),
        name: a.clone(),
    };

    let before = home_nl.link(a.as_str().into()).unwrap();
    assert_eq!(before.name, a);
    assert_eq!(before.kind.as_deref(), Some("veth"));
    assert!(home_nl.links().unwrap().iter().any(|l| l.name == b));

    // Move by fd into the pod namespace.
    home_nl.set_netns(b.as_str().into(), pod.netns()).unwrap();
    assert!(matches!(
        home_nl.link(b.as_str().into()),
        Err(NetlinkError::NotFound { .. })
    ));
    let pod_nl = home_nl.in_netns(pod.netns()).unwrap();
    let moved = pod_nl.link(b.as_str().into()).unwrap();

    // Rename, set MAC, MTU, up — there.
    pod_nl.rename(b.as_str().into(), "eth0").unwrap();
    let mac: MacAddr = "02:5a:00:00:12:34".parse().unwrap();
    pod_nl.set_mac("eth0".into(), mac).unwrap();
    pod_nl.set_mtu(moved.index.into(), 1400).unwrap();
    pod_nl.set_up("eth0".into(), true).unwrap();
    let there = pod_nl.link("eth0".into()).unwrap();
    assert_eq!(there.index, moved.index);
    assert_eq!(there.mac, Some(mac));
    assert_eq!(there.mtu, 1400);
    assert!(there.admin_up);

    // Renaming an up link: kernels before 6.2 refuse (EBUSY, and the
    // message says what to do); newer ones allow it.
    match pod_nl.rename("eth0".into(), "eth1") {
        Ok(()) => pod_nl.rename("eth1".into(), "eth0").unwrap(),
        Err(e) => {
            assert_eq!(e.errno(), Some(Errno::EBUSY), "{e}");
            assert!(e.to_string().contains("set it down"), "{e}");
        }
    }

    // Down, back to the home namespace under its old name.
    pod_nl.set_up("eth0".into(), false).unwrap();
    pod_nl.rename("eth0".into(), &b).unwrap();
    pod_nl.set_netns(b.as_str().into(), home.netns()).unwrap();
    assert!(pod_nl.link(b.as_str().into()).is_err());
    let back = home_nl.link(b.as_str().into()).unwrap();
    assert_eq!(back.mac, Some(mac));
    assert_eq!(back.mtu, 1400);
    assert!(!back.admin_up);

    // Clean up explicitly and check nothing is left.
    let home_path = home.path().to_path_buf();
    let pod_path = pod.path().to_path_buf();
    drop(pod_nl);
    home_nl.delete(a.as_str().into()).unwrap();
    assert!(
        home_nl.link(b.as_str().into()).is_err(),
        "peer gone with its veth"
    );
    drop(home_nl);
    pod.delete().unwrap();
    drop(home);
    assert!(!home_path.exists() && !pod_path.exists());
}

#[test]
fn vf_settings_on_a_non_pf_fail_with_the_kernel_errno() {
    if !lanes::require("vf_settings_on_a_non_pf", &[Lane::Netns]) {
        return;
    }
    let ns = NamedNetns::create(&ns_name("vf")).unwrap();
    let nl = Netlink::open_in(ns.netns()).unwrap();
    let pid = std::process::id();
    let a = format!("nlf{pid}a");
    nl.add_veth(&a, &format!("nlf{pid}b")).unwrap();

    // A veth has no VFs: reading gives none, VF N does not exist.
    assert!(nl.vfs(a.as_str().into()).unwrap().is_empty());
    match nl.vf(a.as_str().into(), 0) {
        Err(NetlinkError::NoSuchVf {
            vf: 0, num_vfs: 0, ..
        }) => {}
        other => panic!("expected NoSuchVf, got {other:?}"),
    }
    // Setting one is refused by the kernel; the error names the setting.
    let err = nl
        .set_vf_link_state(a.as_str().into(), 1, VfLinkState::Disable)
        .unwrap_err();
    assert!(err.is_not_supported(), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("VF link state") && msg.contains(&a) && msg.contains("VF 1"),
        "{msg}"
    );
    // Validation happens before anything is sent.
    let err = nl
        .set_vf(
            a.as_str().into(),
            0,
            &[VfSetting::Rate {
                min_mbps: 9,
                max_mbps: 1,
            }],
        )
        .unwrap_err();
    assert!(matches!(err, NetlinkError::InvalidArgument { .. }), "{err}");
    // Unknown links are NotFound with the namespace in the message.
    let err = nl.set_mtu("nosuchlink0".into(), 1500).unwrap_err();
    assert!(matches!(err, NetlinkError::NotFound { .. }), "{err}");
    assert!(
        err.to_string().contains(ns.path().to_str().unwrap()),
        "{err}"
    );
}

#[test]
fn run_enters_the_namespace_on_a_thread_of_its_own() {
    if !lanes::require("run_enters_the_namespace", &[Lane::Netns]) {
        return;
    }
    let ns = NamedNetns::create(&ns_name("run")).unwrap();
    let outside = Netns::current().unwrap().id();
    let (inside, thread) = ns
        .netns()
        .run(|| (Netns::current().unwrap().id(), std::thread::current().id()))
        .unwrap();
    assert_eq!(inside, ns.netns().id());
    assert_ne!(inside, outside);
    assert_ne!(thread, std::thread::current().id());
    // The calling thread never left its namespace.
    assert_eq!(Netns::current().unwrap().id(), outside);
    // A second create with the same name is refused and changes nothing.
    assert!(matches!(
        NamedNetns::create(ns.name()),
        Err(sriov_host::netns::NetnsError::Exists { .. })
    ));
    assert_eq!(Netns::open(ns.path()).unwrap().id(), inside);
}

#[test]
fn netlink_is_usable_from_async_code_via_spawn_blocking() {
    if !lanes::require("netlink_from_async", &[Lane::Netns]) {
        return;
    }
    let ns = NamedNetns::create(&ns_name("async")).unwrap();
    let nl = Netlink::open_in(ns.netns()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let links = rt
        .block_on(async move { tokio::task::spawn_blocking(move || nl.links()).await })
        .unwrap()
        .unwrap();
    // A fresh namespace holds only `lo`.
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(links[0].name, "lo");
}

#[test]
fn open_in_leaves_the_calling_thread_where_it_was_and_dumps_many_links() {
    if !lanes::require("open_in_leaves_the_calling_thread", &[Lane::Netns]) {
        return;
    }
    let ns = NamedNetns::create(&ns_name("many")).unwrap();
    let before = Netns::current().unwrap().id();
    let nl = Netlink::open_in(ns.netns()).unwrap();
    assert_eq!(
        Netns::current().unwrap().id(),
        before,
        "thread left in the namespace"
    );
    assert_ne!(before, ns.netns().id());
    // The socket answers for the namespace it was opened in: only `lo`.
    let names: Vec<String> = nl.links().unwrap().into_iter().map(|l| l.name).collect();
    assert_eq!(names, vec!["lo".to_string()]);
    // A dump spanning several reply datagrams (40 veth pairs), read whole.
    let pid = std::process::id() % 10_000;
    for i in 0..40 {
        nl.add_veth(&format!("m{pid}a{i}"), &format!("m{pid}b{i}"))
            .unwrap();
    }
    let links = nl.links().unwrap();
    assert_eq!(
        links.len(),
        81,
        "{:?}",
        links.iter().map(|l| &l.name).collect::<Vec<_>>()
    );
    assert!(links.windows(2).all(|w| w[0].index < w[1].index));
    // Clones share the socket; a refused request leaves it usable.
    let other = nl.clone();
    assert!(matches!(
        other.link("nosuchlink0".into()),
        Err(NetlinkError::NotFound { .. })
    ));
    assert_eq!(nl.link("lo".into()).unwrap().name, "lo");
}

#[test]
fn run_here_runs_in_the_namespace_on_this_thread_and_comes_back_even_after_a_panic() {
    if !lanes::require("run_here", &[Lane::Netns]) {
        return;
    }
    let ns = NamedNetns::create(&ns_name("here")).unwrap();
    let home = Netns::current().unwrap().id();
    let me = std::thread::current().id();
    let (inside, thread) = ns
        .netns()
        .run_here(|| (Netns::current().unwrap().id(), std::thread::current().id()))
        .unwrap();
    assert_eq!(inside, ns.netns().id());
    assert_eq!(thread, me, "ran on another thread");
    assert_eq!(Netns::current().unwrap().id(), home);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ns.netns().run_here(|| panic!("inside")).unwrap();
    }));
    assert!(panicked.is_err());
    assert_eq!(
        Netns::current().unwrap().id(),
        home,
        "left in the namespace by a panic"
    );
}

#[test]
fn addresses_and_routes_on_the_link_socket_as_ip_shows_them() {
    if !lanes::require("addresses_and_routes", &[Lane::Netns]) {
        return;
    }
    use sriov_host::netlink::Route;
    let ns = NamedNetns::create(&ns_name("addr")).unwrap();
    let nl = Netlink::open_in(ns.netns()).unwrap();
    let pid = std::process::id();
    let (a, b) = (format!("nla{pid}a"), format!("nla{pid}b"));
    nl.add_veth(&a, &b).unwrap();
    let index = nl.link(a.as_str().into()).unwrap().index;
    nl.set_up(index.into(), true).unwrap();
    nl.set_up(b.as_str().into(), true).unwrap();

    let v4: std::net::IpAddr = "10.77.0.5".parse().unwrap();
    let v6: std::net::IpAddr = "fd77::5".parse().unwrap();
    nl.add_address(index, v4, 24).unwrap();
    // Replace semantics: adding it again is not EEXIST (a retried ADD).
    nl.add_address(index, v4, 24).unwrap();
    nl.add_address(index, v6, 64).unwrap();
    let got = nl.addresses(index).unwrap();
    let find = |ip| got.iter().find(|x| x.addr == ip).copied();
    assert_eq!(find(v4).map(|x| x.prefix), Some(24), "{got:?}");
    assert_eq!(find(v6).map(|x| x.prefix), Some(64), "{got:?}");
    assert!(!find(v4).unwrap().tentative);

    nl.add_route(&Route {
        dst: "10.88.0.0".parse().unwrap(),
        prefix: 16,
        gateway: Some("10.77.0.1".parse().unwrap()),
        oif: index,
    })
    .unwrap();
    nl.add_route(&Route {
        dst: "0.0.0.0".parse().unwrap(),
        prefix: 0,
        gateway: Some("10.77.0.1".parse().unwrap()),
        oif: index,
    })
    .unwrap();
    let shown = std::process::Command::new("ip")
        .args(["-n", ns.name(), "-4", "route", "show", "dev", &a])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("default via 10.77.0.1"), "{shown}");
    assert!(shown.contains("10.88.0.0/16 via 10.77.0.1"), "{shown}");

    // A gateway outside every connected network: the kernel's ENETUNREACH,
    // with what to check.
    let e = nl
        .add_route(&Route {
            dst: "10.99.0.0".parse().unwrap(),
            prefix: 16,
            gateway: Some("192.0.2.1".parse().unwrap()),
            oif: index,
        })
        .unwrap_err();
    assert_eq!(e.errno(), Some(Errno::ENETUNREACH), "{e}");
    assert!(e.to_string().contains("check the IPAM routes"), "{e}");
    // A link with no such index.
    assert!(nl.addresses(999_999).unwrap().is_empty());
}

/// A link carrying the VF's host name as an altname loses it; asking again
/// is not an error, nor is the name of another link.
#[test]
fn del_alt_name_on_the_kernel() {
    if !lanes::require("del_alt_name", &[Lane::Netns]) {
        return;
    }
    let ns = NamedNetns::create(&ns_name("alt")).unwrap();
    let nl = Netlink::open_in(ns.netns()).unwrap();
    nl.add_veth("net1", "p1").unwrap();
    let added = std::process::Command::new("ip")
        .args(["-n", ns.name(), "link", "property", "add", "dev", "net1"])
        .args(["altname", "ens1f0v1"])
        .output()
        .unwrap();
    if !added.status.success() {
        eprintln!(
            "SKIP del_alt_name_on_the_kernel: no altnames on this kernel: {}",
            String::from_utf8_lossy(&added.stderr)
        );
        return;
    }
    assert!(nl.del_alt_name("net1", "ens1f0v1").unwrap());
    let shown = std::process::Command::new("ip")
        .args(["-n", ns.name(), "link", "show", "dev", "net1"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&shown.stdout).contains("altname"));
    assert!(!nl.del_alt_name("net1", "ens1f0v1").unwrap());
    assert!(!nl.del_alt_name("net1", "p1").unwrap());
}

/// One request moves a link into a namespace, renamed, with MAC, MTU and
/// up set. A name taken in the target is EEXIST after the kernel already
/// moved the link (it is there under its old name), which is why callers
/// check the target first.
#[test]
fn move_link_moves_renames_and_configures_in_one_request() {
    if !lanes::require("move_link", &[Lane::Netns]) {
        return;
    }
    use sriov_host::netlink::MoveLink;
    let home = NamedNetns::create(&ns_name("mvh")).unwrap();
    let pod = NamedNetns::create(&ns_name("mvp")).unwrap();
    let nl = Netlink::open_in(home.netns()).unwrap();
    nl.add_veth("vfx", "vfy").unwrap();
    let index = nl.link("vfx".into()).unwrap().index;
    let pod_nl = Netlink::open_in(pod.netns()).unwrap();
    let mac: MacAddr = "02:11:22:33:44:55".parse().unwrap();
    nl.move_link(&MoveLink {
        index,
        to: pod.netns(),
        name: "net1",
        mac: Some(mac),
        mtu: Some(1400),
        up: true,
    })
    .unwrap();
    let there = pod_nl.link("net1".into()).unwrap();
    assert_eq!(there.mac, Some(mac));
    assert_eq!(there.mtu, 1400);
    assert!(there.admin_up);
    assert!(nl.link("vfx".into()).is_err());

    // Back as "vfy", the name of its peer at home.
    let e = pod_nl
        .move_link(&MoveLink {
            index: there.index,
            to: home.netns(),
            name: "vfy",
            mac: None,
            mtu: None,
            up: false,
        })
        .unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EEXIST), "{e}");
    assert!(
        nl.link("net1".into()).is_ok(),
        "the kernel moves before it renames"
    );
}
