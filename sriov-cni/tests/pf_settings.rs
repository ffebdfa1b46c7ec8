//! PF-side VF settings through the whole plugin (ADD, CHECK, DEL, undo,
//! Go cache files), with `RecordingLinkOps` as the PF and a static
//! simulated sysfs tree; the VF is on vfio-pci (userspace mode), so nothing
//! moves between namespaces and no root is needed.

mod static_node;

use std::path::Path;

use nix::errno::Errno;
use serde_json::{Value, json};
use sriov_cni::config::NetConf;
use sriov_cni::env::Command;
use sriov_cni::error::Code;
use sriov_cni::plugin::Plugin;
use sriov_host::PciAddress;
use sriov_host::netlink::{
    Call, Failure, LinkOps, RecordingLinkOps, VfInfo, VfLinkState, VfSetting,
};
use static_node::{StaticNode, env};

struct Setup {
    _dir: tempfile::TempDir,
    state: tempfile::TempDir,
    fake: RecordingLinkOps,
    plugin: Plugin,
    vf: PciAddress,
}

fn setup() -> Setup {
    let StaticNode {
        tree,
        fake,
        plugin,
        vf,
    } = StaticNode::new();
    Setup {
        _dir: tree,
        state: tempfile::tempdir().unwrap(),
        fake,
        plugin,
        vf,
    }
}

fn conf(s: &Setup, extra: Value) -> (NetConf, Vec<u8>) {
    let mut c = json!({"cniVersion": "1.0.0", "name": "n", "type": "sriov",
        "deviceID": s.vf.to_string(), "dataDir": s.state.path()});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    let bytes = serde_json::to_vec(&c).unwrap();
    (NetConf::parse(&bytes, None).unwrap(), bytes)
}

fn files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .count()
}

#[test]
fn add_applies_configured_settings_check_sees_them_del_restores() {
    let s = setup();
    let (c, b) = conf(
        &s,
        json!({"vlan": 100, "vlanQoS": 2, "spoofchk": "off", "trust": "on",
               "link_state": "enable", "max_tx_rate": 500, "mac": "02:00:00:00:00:42"}),
    );
    let r = s.plugin.add(&env(Command::Add, "c1"), &c, &b).unwrap();
    assert_eq!(r.interfaces[0].pci_id, s.vf.to_string());
    assert_eq!(r.interfaces[0].mac, "02:00:00:00:00:42");
    let st = s.fake.vf_state("ens1f0", 2).unwrap();
    assert_eq!((st.vlan.vlan, st.vlan.qos), (100, 2));
    assert_eq!((st.spoofchk, st.trust), (Some(false), Some(true)));
    assert_eq!(st.link_state, VfLinkState::Enable);
    assert_eq!((st.min_tx_rate, st.max_tx_rate), (0, 500));
    assert_eq!(st.mac.to_string(), "02:00:00:00:00:42");
    // one request per setting, only for the configured ones
    let sets = s
        .fake
        .changes()
        .into_iter()
        .filter(|c| matches!(c, Call::SetVf { vf: 2, .. }))
        .count();
    assert_eq!(sets, 6);
    s.plugin.check(&env(Command::Check, "c1"), &c, &b).unwrap();
    // CHECK notices a drift
    s.fake
        .set_vf_trust("ens1f0".into(), 2, false)
        .map_err(|e| e.to_string())
        .unwrap();
    let e = s
        .plugin
        .check(&env(Command::Check, "c1"), &c, &b)
        .unwrap_err();
    assert_eq!(e.code, Code::CheckFailed);
    assert!(e.msg.contains("VF trust"), "{e}");
    // DEL restores every setting
    s.plugin.del(&env(Command::Del, "c1"), &c, &b).unwrap();
    assert_eq!(s.fake.vf_state("ens1f0", 2).unwrap(), VfInfo::fresh(2));
    assert_eq!(files(s.state.path()), 0);
    // other VFs untouched
    assert_eq!(s.fake.vf_state("ens1f0", 1).unwrap(), VfInfo::fresh(1));
}

#[test]
fn unsupported_setting_fails_with_104_and_changes_nothing() {
    let s = setup();
    s.fake.fail(Failure::vf_setting(Errno::EOPNOTSUPP, |v| {
        matches!(v, VfSetting::LinkState(_))
    }));
    let (c, b) = conf(
        &s,
        json!({"vlan": 7, "trust": "on", "link_state": "disable"}),
    );
    let e = s.plugin.add(&env(Command::Add, "c2"), &c, &b).unwrap_err();
    assert_eq!(e.code, Code::VfSettingUnsupported);
    assert!(e.msg.contains("VF link state"), "{e}");
    assert_eq!(s.fake.vf_state("ens1f0", 2).unwrap(), VfInfo::fresh(2));
    assert_eq!(files(s.state.path()), 0);
    assert!(!s.state.path().join("pci").join(s.vf.to_string()).exists());
}

#[test]
fn del_of_a_go_cache_file_restores_pf_side_settings() {
    let s = setup();
    // The Go plugin's ADD: vlan 100, spoofchk off, trust on, MAC set.
    for set in [
        VfSetting::Vlan(sriov_host::netlink::VfVlan::new(100)),
        VfSetting::SpoofCheck(false),
        VfSetting::Trust(true),
        VfSetting::Mac("02:00:00:00:00:77".parse().unwrap()),
    ] {
        s.fake.set_vf("ens1f0".into(), 2, &[set]).unwrap();
    }
    let cache = json!({
        "cniVersion": "0.4.0", "name": "n", "type": "sriov",
        "OrigVfState": {"HostIFName": "", "SpoofChk": true, "Trust": false,
            "AdminMAC": "00:00:00:00:00:00", "EffectiveMAC": "", "Vlan": 0, "VlanQoS": 0,
            "VlanProto": 33024, "MinTxRate": 0, "MaxTxRate": 0, "LinkState": 0},
        "DPDKMode": true, "Master": "ens1f0", "MAC": "02:00:00:00:00:77", "VFID": 2,
        "ContIFNames": "net1", "HostIFNames": "", "deviceID": s.vf.to_string(),
        "vlan": 100, "spoofchk": "off", "trust": "on", "DeviceInfo": null
    });
    std::fs::write(s.state.path().join("go1-net1"), cache.to_string()).unwrap();
    std::fs::create_dir_all(s.state.path().join("pci")).unwrap();
    std::fs::write(
        s.state.path().join("pci").join(s.vf.to_string()),
        "/proc/self/ns/net",
    )
    .unwrap();
    let (c, b) = conf(&s, json!({}));
    s.plugin.del(&env(Command::Del, "go1"), &c, &b).unwrap();
    assert_eq!(s.fake.vf_state("ens1f0", 2).unwrap(), VfInfo::fresh(2));
    assert_eq!(files(s.state.path()), 0);
}

#[test]
fn vf_in_use_by_a_live_netns_is_refused() {
    let s = setup();
    let (c, b) = conf(&s, json!({"trust": "on"}));
    s.plugin.add(&env(Command::Add, "a"), &c, &b).unwrap();
    let e = s.plugin.add(&env(Command::Add, "b"), &c, &b).unwrap_err();
    assert_eq!(e.code, Code::VfInUse);
    let e = s.plugin.add(&env(Command::Add, "a"), &c, &b).unwrap_err();
    assert_eq!(e.code, Code::VfInUse, "same attachment twice");
    s.plugin.del(&env(Command::Del, "a"), &c, &b).unwrap();
    assert_eq!(s.fake.vf_state("ens1f0", 2).unwrap(), VfInfo::fresh(2));
}

/// With no PF-side setting configured nothing is changed on the PF and DEL
/// restores nothing there. (A userspace VF's ADD reads the PF's VF table
/// once, for the admin MAC its result reports, as the Go plugin; a netdev
/// VF's does not read it at all, see the e2e tests.)
#[test]
fn no_pf_side_setting_means_no_pf_change() {
    let s = setup();
    let (c, b) = conf(&s, json!({}));
    s.plugin.add(&env(Command::Add, "c0"), &c, &b).unwrap();
    let calls = s.fake.calls();
    assert_eq!(
        calls.iter().filter(|c| matches!(c, Call::Vfs(_))).count(),
        1,
        "PF read: {calls:?}"
    );
    assert!(s.fake.changes().is_empty(), "{:?}", s.fake.changes());
    let before = s.fake.calls().len();
    s.plugin.del(&env(Command::Del, "c0"), &c, &b).unwrap();
    assert!(s.fake.changes().is_empty(), "{:?}", s.fake.changes());
    assert!(
        !s.fake.calls()[before..]
            .iter()
            .any(|c| matches!(c, Call::Vfs(_)))
    );
    // A PF-side setting makes ADD read it (to restore it on DEL).
    let (c, b) = conf(&s, json!({"spoofchk": "off"}));
    s.plugin.add(&env(Command::Add, "c1"), &c, &b).unwrap();
    assert!(s.fake.calls().iter().any(|c| matches!(c, Call::Vfs(_))));
    s.plugin.del(&env(Command::Del, "c1"), &c, &b).unwrap();
    assert_eq!(s.fake.vf_state("ens1f0", 2).unwrap(), VfInfo::fresh(2));
}

/// Issue 12 item 15: a userspace (DPDK) VF's result as the Go plugin's:
/// the pod's sandbox, the configured MAC or else the VF's admin MAC on the
/// PF (none when it is zero), and the PF's MTU.
#[test]
fn dpdk_result_fields_as_upstream() {
    let s = setup();
    let (c, b) = conf(&s, json!({}));
    let r = s.plugin.add(&env(Command::Add, "d0"), &c, &b).unwrap();
    let i = &r.interfaces[0];
    assert_eq!(i.sandbox, "/proc/self/ns/net");
    assert_eq!(i.mac, "", "zero admin MAC is not reported");
    assert_eq!(i.mtu, Some(1500), "the PF's MTU");
    let out = r.to_json("1.0.0");
    assert_eq!(out["interfaces"][0]["sandbox"], "/proc/self/ns/net");
    assert_eq!(out["interfaces"][0]["mtu"], 1500);
    s.plugin.del(&env(Command::Del, "d0"), &c, &b).unwrap();

    // An admin MAC set on the PF beforehand (by the operator) is reported.
    s.fake
        .set_vf_mac("ens1f0".into(), 2, "02:00:00:00:00:55".parse().unwrap())
        .unwrap();
    s.fake.set_mtu("ens1f0".into(), 9000).unwrap();
    let r = s.plugin.add(&env(Command::Add, "d1"), &c, &b).unwrap();
    assert_eq!(r.interfaces[0].mac, "02:00:00:00:00:55");
    assert_eq!(r.interfaces[0].mtu, Some(9000));
    s.plugin.del(&env(Command::Del, "d1"), &c, &b).unwrap();

    // A configured MAC wins.
    let (c, b) = conf(&s, json!({"mac": "02:00:00:00:00:66"}));
    let r = s.plugin.add(&env(Command::Add, "d2"), &c, &b).unwrap();
    assert_eq!(r.interfaces[0].mac, "02:00:00:00:00:66");
    s.plugin.del(&env(Command::Del, "d2"), &c, &b).unwrap();
}

/// Issue 12 item 11: DEL works from the saved state and never re-validates
/// the config. The Go plugin ADDed with values it tolerates (and its cache
/// holds them); the DEL's config has since become one ADD would refuse
/// (the NAD was edited). DEL restores what the cache says and succeeds.
#[test]
fn del_never_revalidates_the_config() {
    let s = setup();
    for set in [VfSetting::SpoofCheck(false), VfSetting::Trust(false)] {
        s.fake.set_vf("ens1f0".into(), 2, &[set]).unwrap();
    }
    let cache = json!({
        "cniVersion": "0.4.0", "name": "n", "type": "sriov",
        "OrigVfState": {"HostIFName": "", "SpoofChk": true, "Trust": false,
            "AdminMAC": "00:00:00:00:00:00", "EffectiveMAC": "", "Vlan": 0, "VlanQoS": 0,
            "VlanProto": 33024, "MinTxRate": 0, "MaxTxRate": 0, "LinkState": 0},
        "DPDKMode": true, "Master": "ens1f0", "MAC": "", "VFID": 2,
        "ContIFNames": "net1", "HostIFNames": "", "deviceID": s.vf.to_string(),
        "spoofchk": "yes", "Trust": "Off", "logLevel": "verbose", "DeviceInfo": null
    });
    std::fs::write(s.state.path().join("go2-net1"), cache.to_string()).unwrap();
    let del_conf = json!({"cniVersion": "0.4.0", "name": "n", "type": "sriov",
        "deviceID": "not-a-pci-address", "vlan": 5000, "mac": "zz", "spoofchk": "yes",
        "dataDir": s.state.path()});
    let b = serde_json::to_vec(&del_conf).unwrap();
    // ADD's parse refuses it: without the lenient DEL parse, DEL failed here.
    assert_eq!(
        NetConf::parse(&b, None).unwrap_err().code,
        Code::InvalidConfig
    );
    let c = NetConf::parse_lenient(&b, None).unwrap();
    s.plugin.del(&env(Command::Del, "go2"), &c, &b).unwrap();
    // spoofchk restored (its cached value "yes" still counts as set); trust
    // ("Off", matched case-insensitively) too.
    assert_eq!(s.fake.vf_state("ens1f0", 2).unwrap(), VfInfo::fresh(2));
    assert_eq!(files(s.state.path()), 0);
}
