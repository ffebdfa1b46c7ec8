//! The recording fake: state like the kernel, a call log, and injected
//! failures. No root needed.

use nix::errno::Errno;
use sriov_host::netlink::{
    Call, Failure, LinkId, LinkOps, MacAddr, NetlinkError, RecordingLinkOps, VfInfo, VfLinkState,
    VfSetting, VfVlan, VlanProto,
};
use sriov_host::netns::Netns;

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

#[test]
fn pf_reports_fresh_vfs_and_applies_settings() {
    let fake = RecordingLinkOps::new();
    let pf = fake.add_pf("ens1f0", mac("02:00:00:00:00:01"), 4);
    assert_eq!(fake.link(pf.into()).unwrap().num_vfs, Some(4));
    let vfs = fake.vfs("ens1f0".into()).unwrap();
    assert_eq!(vfs, (0..4).map(VfInfo::fresh).collect::<Vec<_>>());

    let v = VfVlan {
        vlan: 100,
        qos: 3,
        proto: VlanProto::Dot1Ad,
    };
    fake.set_vf(
        "ens1f0".into(),
        2,
        &[
            VfSetting::Mac(mac("02:00:00:00:02:02")),
            VfSetting::Vlan(v),
            VfSetting::Trust(true),
            VfSetting::SpoofCheck(false),
        ],
    )
    .unwrap();
    fake.set_vf_link_state("ens1f0".into(), 2, VfLinkState::Enable)
        .unwrap();
    fake.set_vf_rate("ens1f0".into(), 2, 10, 100).unwrap();

    let vf = fake.vf("ens1f0".into(), 2).unwrap();
    assert_eq!(vf.mac, mac("02:00:00:00:02:02"));
    assert_eq!(vf.vlan, v);
    assert_eq!((vf.trust, vf.spoofchk), (Some(true), Some(false)));
    assert_eq!(vf.link_state, VfLinkState::Enable);
    assert_eq!((vf.min_tx_rate, vf.max_tx_rate), (10, 100));
    // Other VFs untouched.
    assert_eq!(fake.vf_state("ens1f0", 1), Some(VfInfo::fresh(1)));
    // Beyond numvfs: EINVAL like drivers; unknown index via vf(): NoSuchVf.
    let err = fake.set_vf_trust("ens1f0".into(), 4, true).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EINVAL));
    assert!(matches!(
        fake.vf("ens1f0".into(), 9),
        Err(NetlinkError::NoSuchVf { num_vfs: 4, .. })
    ));
}

#[test]
fn records_calls_in_order() {
    let fake = RecordingLinkOps::new();
    fake.add_pf("pf0", mac("02:00:00:00:00:01"), 2);
    fake.set_vf_spoofchk("pf0".into(), 1, false).unwrap();
    fake.vfs("pf0".into()).unwrap();
    fake.set_vf_vlan_list("pf0".into(), 0, VfVlan::new(7))
        .unwrap();
    assert_eq!(
        fake.calls(),
        vec![
            Call::SetVf {
                pf: "pf0".into(),
                vf: 1,
                settings: vec![VfSetting::SpoofCheck(false)]
            },
            Call::Vfs("pf0".into()),
            Call::SetVf {
                pf: "pf0".into(),
                vf: 0,
                settings: vec![VfSetting::VlanList(VfVlan::new(7))]
            },
        ]
    );
    assert_eq!(fake.changes().len(), 2);
    fake.clear_calls();
    assert!(fake.calls().is_empty());
}

#[test]
fn injected_failures_fail_the_matching_calls_only_and_change_nothing() {
    let fake = RecordingLinkOps::new();
    fake.add_pf("igb0", mac("02:00:00:00:00:01"), 2);
    // igb: no VF link state.
    fake.fail(Failure::vf_setting(Errno::EOPNOTSUPP, |s| {
        matches!(s, VfSetting::LinkState(_))
    }));
    let err = fake
        .set_vf(
            "igb0".into(),
            0,
            &[
                VfSetting::Trust(true),
                VfSetting::LinkState(VfLinkState::Disable),
            ],
        )
        .unwrap_err();
    assert!(err.is_not_supported());
    assert!(err.to_string().contains("igb0"), "{err}");
    // The whole request failed: trust was not applied either (one message).
    assert_eq!(fake.vf_state("igb0", 0), Some(VfInfo::fresh(0)));
    fake.set_vf_trust("igb0".into(), 0, true).unwrap();
    assert_eq!(fake.vf_state("igb0", 0).unwrap().trust, Some(true));

    // A failure that fires once.
    fake.fail(Failure::when(Errno::EBUSY, |c| matches!(c, Call::SetMtu { .. })).times(1));
    let e = fake.set_mtu("igb0".into(), 9000).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EBUSY));
    fake.set_mtu("igb0".into(), 9000).unwrap();
    assert_eq!(fake.link("igb0".into()).unwrap().mtu, 9000);
    // Failed calls are recorded too.
    assert_eq!(
        fake.calls()
            .iter()
            .filter(|c| matches!(c, Call::SetMtu { .. }))
            .count(),
        2
    );
    fake.clear_failures();
    fake.set_vf_link_state("igb0".into(), 1, VfLinkState::Auto)
        .unwrap();
}

#[test]
fn links_move_between_namespace_views() {
    let fake = RecordingLinkOps::new();
    let idx = fake.add_link("ens1f0v3", Some(mac("02:00:00:00:00:33")));
    fake.set_up(idx.into(), true).unwrap();
    let pod_ns = Netns::current().unwrap();
    fake.set_netns("ens1f0v3".into(), &pod_ns).unwrap();
    // Gone from the root view, present (and down) in the pod view.
    assert!(matches!(
        fake.link("ens1f0v3".into()),
        Err(NetlinkError::NotFound { .. })
    ));
    let pod = fake.in_netns(&pod_ns).unwrap();
    let l = pod.link(LinkId::Index(idx)).unwrap();
    assert!(!l.admin_up);
    pod.rename("ens1f0v3".into(), "net1").unwrap();
    pod.set_mac("net1".into(), mac("02:00:00:00:99:99"))
        .unwrap();
    pod.set_mtu("net1".into(), 1450).unwrap();
    pod.set_up("net1".into(), true).unwrap();
    assert_eq!(
        pod.links()
            .unwrap()
            .iter()
            .map(|l| l.name.as_str())
            .collect::<Vec<_>>(),
        ["net1"]
    );
    let found = fake.find("net1").unwrap();
    assert_eq!(found.netns.as_deref(), Some(pod_ns.path()));
    assert_eq!(found.link.mtu, 1450);
    // Kernel rules: bad MACs, MTUs and names are refused.
    assert_eq!(
        pod.set_mac("net1".into(), mac("01:00:5e:00:00:01"))
            .unwrap_err()
            .errno(),
        Some(Errno::EADDRNOTAVAIL)
    );
    assert_eq!(
        pod.set_mtu("net1".into(), 20).unwrap_err().errno(),
        Some(Errno::EINVAL)
    );
    assert!(matches!(
        pod.rename("net1".into(), "a-name-longer-than-15"),
        Err(NetlinkError::InvalidArgument { .. })
    ));
    // Moving to the namespace it is in is a no-op, like the kernel's.
    pod.set_netns("net1".into(), &pod_ns).unwrap();
    // A name clash in the target namespace: EEXIST, nothing moves.
    fake.add_link("dup0", None);
    fake.set_netns("dup0".into(), &pod_ns).unwrap();
    fake.add_link("dup0", None);
    assert_eq!(
        fake.set_netns("dup0".into(), &pod_ns).unwrap_err().errno(),
        Some(Errno::EEXIST)
    );
    assert!(fake.link("dup0".into()).is_ok());
    // The call log tells which view each call was made on.
    let rec = fake.recorded();
    let renamed = rec
        .iter()
        .find(|r| matches!(r.call, Call::Rename { .. }))
        .unwrap();
    assert_eq!(renamed.netns.as_deref(), Some(pod_ns.path()));
}

#[test]
fn move_link_in_one_request_and_back_home() {
    use sriov_host::netlink::MoveLink;
    let fake = RecordingLinkOps::new();
    let idx = fake.add_link("ens1f0v3", Some(mac("02:00:00:00:00:33")));
    // The fake keys namespace views by namespace id; without root the
    // test's own namespace stands for the pod's, as above.
    let pod_ns = Netns::current().unwrap();
    fake.add_link("net1", None);
    fake.set_netns("net1".into(), &pod_ns).unwrap();
    let req = MoveLink {
        index: idx,
        to: &pod_ns,
        name: "net1",
        mac: Some(mac("02:00:00:00:99:01")),
        mtu: Some(9000),
        up: true,
    };
    // The name is taken in the target: EEXIST, and, as the kernel moves
    // before it renames, the link is in the target under its own name (a
    // second fake, so this one keeps its link at home).
    let taken = RecordingLinkOps::new();
    let t_idx = taken.add_link("ens1f0v3", None);
    taken.add_link("net1", None);
    taken.set_netns("net1".into(), &pod_ns).unwrap();
    assert_eq!(
        taken
            .move_link(&MoveLink {
                index: t_idx,
                ..req
            })
            .unwrap_err()
            .errno(),
        Some(Errno::EEXIST)
    );
    assert!(taken.link(t_idx.into()).is_err());
    let t_pod = taken.in_netns(&pod_ns).unwrap();
    assert_eq!(t_pod.link(t_idx.into()).unwrap().name, "ens1f0v3");
    // When its own name is taken there too, nothing moves.
    let both = RecordingLinkOps::new();
    let b_idx = both.add_link("ens1f0v3", None);
    for n in ["net1", "ens1f0v3"] {
        let i = both.add_link(n, None);
        both.set_netns(i.into(), &pod_ns).unwrap();
    }
    assert_eq!(
        both.move_link(&MoveLink {
            index: b_idx,
            ..req
        })
        .unwrap_err()
        .errno(),
        Some(Errno::EEXIST)
    );
    assert!(both.link(b_idx.into()).is_ok());
    // A multicast MAC is refused as the kernel refuses it.
    let bad = MoveLink {
        name: "net2",
        mac: Some(mac("01:00:5e:00:00:01")),
        ..req
    };
    assert_eq!(
        fake.move_link(&bad).unwrap_err().errno(),
        Some(Errno::EADDRNOTAVAIL)
    );
    fake.move_link(&MoveLink {
        name: "net2",
        ..req
    })
    .unwrap();
    let pod = fake.in_netns(&pod_ns).unwrap();
    let l = pod.link("net2".into()).unwrap();
    assert_eq!(
        (l.index, l.mac, l.mtu, l.admin_up),
        (idx, Some(mac("02:00:00:00:99:01")), 9000, true)
    );
    assert!(fake.link(idx.into()).is_err());
    assert!(fake.calls().contains(&Call::MoveLink {
        index: idx,
        netns: pod_ns.path().to_path_buf(),
        name: "net2".into(),
        mac: Some(mac("02:00:00:00:99:01")),
        mtu: Some(9000),
        up: true,
    }));
    // No such altname: the kernel's "none" answer; one given is removed.
    assert!(!pod.del_alt_name("net2", "ens1f0v3").unwrap());
    fake.add_alt_name(idx, "ens1f0v3");
    assert_eq!(pod.link("net2".into()).unwrap().alt_names, ["ens1f0v3"]);
    assert!(pod.del_alt_name("net2", "ens1f0v3").unwrap());
    assert!(pod.link("net2".into()).unwrap().alt_names.is_empty());

    // A fake whose own view stands for a namespace: a move there (a CNI
    // DEL moving the VF back to the host namespace it holds) lands in the
    // fake's own view, renamed.
    let host = RecordingLinkOps::new().with_home(&pod_ns);
    let i2 = host.add_link("net1", None);
    host.move_link(&MoveLink {
        index: i2,
        to: &pod_ns,
        name: "ens1f0v7",
        mac: None,
        mtu: None,
        up: false,
    })
    .unwrap();
    assert_eq!(host.link(i2.into()).unwrap().name, "ens1f0v7");
    assert_eq!(host.find("ens1f0v7").unwrap().netns, None);
}
