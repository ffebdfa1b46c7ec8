//! The `host` crate's netlink code against the kernel's real VF handling:
//! VF settings written with [`LinkOps::set_vf`] are read back from the
//! kernel and compared with `ip -d link show`; a setting the driver does
//! not support gives the project's clear error; a VF netdev moves into a
//! network namespace, is renamed there and comes back.

use sriov_host::netlink::{
    LinkId, LinkOps, MacAddr, Netlink, NetlinkError, VfInfo, VfLinkState, VfSetting, VfVlan,
    VlanProto,
};
use sriov_host::netns::{NamedNetns, Netns};
use sriov_hw_tests::{NumVfsGuard, iproute, pf, sysfs, unique_name};

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

/// The project's view of the PF's VFs equals iproute2's.
fn assert_same_as_ip(nl: &Netlink, pf: &str) -> Vec<VfInfo> {
    let ours = nl.vfs(LinkId::from(pf)).unwrap();
    let ip = iproute::vfs(pf).unwrap();
    assert_eq!(ours.len(), ip.len(), "VF count: ours {ours:?}, ip {ip:?}");
    for (o, i) in ours.iter().zip(&ip) {
        assert_eq!(o.index, i.vf);
        assert_eq!(o.mac.to_string(), i.mac, "VF {} MAC", o.index);
        assert_eq!(u32::from(o.vlan.vlan), i.vlan, "VF {} vlan", o.index);
        assert_eq!(u32::from(o.vlan.qos), i.qos, "VF {} qos", o.index);
        // ip prints spoofchk/trust only when the driver reports them: ours
        // is unknown (None) exactly when ip leaves them out.
        assert_eq!(o.spoofchk, i.spoofchk, "VF {} spoofchk", o.index);
        assert_eq!(o.trust, i.trust, "VF {} trust", o.index);
        if let Some(ls) = &i.link_state {
            assert_eq!(o.link_state.to_string(), *ls, "VF {} link state", o.index);
        }
    }
    ours
}

#[test]
fn vf_settings_through_netlink_match_the_kernel_and_ip() {
    let Some(pf) = pf("vf_settings_through_netlink_match_the_kernel_and_ip") else {
        return;
    };
    let _restore = NumVfsGuard::new(&pf).unwrap();
    pf.set_numvfs(0).unwrap();
    pf.set_numvfs(pf.totalvfs.min(2)).unwrap();
    let nl = Netlink::open().unwrap();
    let id = || LinkId::from(pf.ifname.as_str());
    let link = nl.link(id()).unwrap();
    assert_eq!(link.name, pf.ifname);
    assert_eq!(
        link.mac.map(|m| m.to_string()),
        Some(sysfs::read(format!("/sys/class/net/{}/address", pf.ifname)).unwrap())
    );
    let before = assert_same_as_ip(&nl, &pf.ifname);
    assert_eq!(before.len() as u32, pf.numvfs().unwrap());

    // Write through the project's code, read back through it and through ip.
    let vlan = VfVlan {
        vlan: 100,
        qos: 3,
        proto: VlanProto::Dot1Q,
    };
    nl.set_vf(
        id(),
        0,
        &[
            VfSetting::Mac(mac("02:11:22:33:44:55")),
            VfSetting::Vlan(vlan),
            VfSetting::SpoofCheck(false),
            VfSetting::Trust(true),
        ],
    )
    .unwrap();
    let vf0 = nl.vf(id(), 0).unwrap();
    assert_eq!(vf0.mac, mac("02:11:22:33:44:55"));
    assert_eq!((vf0.vlan.vlan, vf0.vlan.qos), (100, 3));
    assert_eq!((vf0.spoofchk, vf0.trust), (Some(false), Some(true)));
    let after = assert_same_as_ip(&nl, &pf.ifname);
    iproute::assert_vf_line(
        &pf.ifname,
        0,
        &[
            "02:11:22:33:44:55",
            "vlan 100",
            "qos 3",
            "spoof checking off",
            "trust on",
        ],
    );
    // Only VF 0 changed.
    if before.len() > 1 {
        assert_eq!(after[1], before[1], "VF 1 changed");
    }

    // One setting at a time, through the trait's helpers.
    nl.set_vf_vlan(id(), 0, VfVlan::new(0)).unwrap();
    nl.set_vf_spoofchk(id(), 0, true).unwrap();
    nl.set_vf_trust(id(), 0, false).unwrap();
    let vf0 = nl.vf(id(), 0).unwrap();
    assert_eq!(
        (vf0.vlan.vlan, vf0.vlan.qos, vf0.spoofchk, vf0.trust),
        (0, 0, Some(true), Some(false))
    );
    assert_eq!(vf0.mac, mac("02:11:22:33:44:55"));

    // Written by ip, read by the project's code.
    if before.len() > 1 {
        iproute::ip(&[
            "link",
            "set",
            "dev",
            &pf.ifname,
            "vf",
            "1",
            "mac",
            "02:aa:bb:cc:dd:01",
            "vlan",
            "200",
            "qos",
            "5",
            "trust",
            "on",
        ])
        .unwrap();
        let vf1 = nl.vf(id(), 1).unwrap();
        assert_eq!(vf1.mac, mac("02:aa:bb:cc:dd:01"));
        assert_eq!(
            (vf1.vlan.vlan, vf1.vlan.qos, vf1.trust),
            (200, 5, Some(true))
        );
        assert_same_as_ip(&nl, &pf.ifname);
    }

    // A VF index beyond sriov_numvfs is the project's error, not a panic.
    let n = pf.numvfs().unwrap();
    let err = nl.vf(id(), n).unwrap_err();
    assert!(
        matches!(err, NetlinkError::NoSuchVf { vf, .. } if vf == n),
        "{err}"
    );
}

#[test]
fn unsupported_vf_setting_is_a_clear_error() {
    let Some(pf) = pf("unsupported_vf_setting_is_a_clear_error") else {
        return;
    };
    if pf.driver != "igb" {
        eprintln!(
            "SKIP unsupported_vf_setting_is_a_clear_error: VF link state is supported by {}",
            pf.driver
        );
        return;
    }
    let _restore = NumVfsGuard::new(&pf).unwrap();
    pf.set_numvfs(1).unwrap();
    let nl = Netlink::open().unwrap();
    let id = LinkId::from(pf.ifname.as_str());
    let before = nl.vf(id.clone(), 0).unwrap();
    let err = nl
        .set_vf_link_state(id.clone(), 0, VfLinkState::Enable)
        .unwrap_err();
    assert!(err.is_not_supported(), "{err:?}");
    assert_eq!(err.errno(), Some(nix::errno::Errno::EOPNOTSUPP));
    let msg = err.to_string();
    for want in [
        pf.ifname.as_str(),
        "VF link state",
        "vf 0 state enable",
        "not support",
    ] {
        assert!(msg.contains(want), "`{want}` missing from: {msg}");
    }
    // iproute2 says the same.
    let ip_err = iproute::ip(&[
        "link", "set", "dev", &pf.ifname, "vf", "0", "state", "enable",
    ])
    .unwrap_err()
    .to_string();
    assert!(ip_err.contains("Operation not supported"), "{ip_err}");
    // Nothing changed.
    assert_eq!(nl.vf(id, 0).unwrap(), before);
}

#[test]
fn vf_netdev_moves_into_a_netns_and_back_through_netlink() {
    let Some(pf) = pf("vf_netdev_moves_into_a_netns_and_back_through_netlink") else {
        return;
    };
    let _restore = NumVfsGuard::new(&pf).unwrap();
    pf.set_numvfs(1).unwrap();
    let vf_pci = pf.vf_pci(0).unwrap();
    let name = pf.wait_vf_netdev(0).unwrap();
    let host = Netns::current().unwrap();
    let ns = NamedNetns::create(&unique_name("hwnl")).unwrap();
    let nl = Netlink::open().unwrap();

    nl.set_netns(LinkId::from(name.as_str()), ns.netns())
        .unwrap();
    assert!(
        !iproute::link_exists(None, &name),
        "{name} still in the host netns"
    );
    assert!(
        sysfs::netdevs(&vf_pci).is_empty(),
        "sysfs of the host netns still shows it"
    );
    let inside = nl.in_netns(ns.netns()).unwrap();
    let link = inside.link(LinkId::from(name.as_str())).unwrap();
    assert_eq!(link.name, name);
    inside.rename(LinkId::from(name.as_str()), "net1").unwrap();
    assert!(iproute::link_exists(Some(ns.name()), "net1"));
    inside.set_mtu(LinkId::from("net1"), 1400).unwrap();
    inside.set_up(LinkId::from("net1"), true).unwrap();
    let link = inside.link(LinkId::from("net1")).unwrap();
    assert!(link.admin_up);
    assert_eq!(link.mtu, 1400);
    let text = iproute::ip(&["-n", ns.name(), "link", "show", "dev", "net1"]).unwrap();
    assert!(text.contains("mtu 1400") && text.contains("UP"), "{text}");
    // Renaming an up link is the kernel's EBUSY, explained.
    let err = inside.rename(LinkId::from("net1"), "net2").unwrap_err();
    assert_eq!(err.errno(), Some(nix::errno::Errno::EBUSY), "{err}");

    // Back, under its old name.
    inside.set_up(LinkId::from("net1"), false).unwrap();
    inside.set_mtu(LinkId::from("net1"), 1500).unwrap();
    inside.rename(LinkId::from("net1"), &name).unwrap();
    inside
        .set_netns(LinkId::from(name.as_str()), &host)
        .unwrap();
    assert!(iproute::link_exists(None, &name));
    assert!(!iproute::link_exists(Some(ns.name()), &name));
    assert_eq!(sysfs::netdevs(&vf_pci), vec![name.clone()]);
    ns.delete().unwrap();
}
