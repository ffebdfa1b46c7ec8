//! The VF messages we encode are byte-identical to iproute2's
//! `ip link set DEV vf N …` (modulo sequence number, port id and ifindex).
//!
//! `fixtures/iproute2-vf.txt` holds iproute2's bytes captured with strace by
//! `fixtures/capture.sh`. The first test compares against it everywhere; the
//! second re-captures live (root, netns, strace) and compares again.

use std::path::{Path, PathBuf};

use sriov_host::netlink::message;
use sriov_host::netlink::{MacAddr, VfLinkState, VfSetting, VfVlan, VlanProto};
use sriov_sim::lanes::{self, Lane};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Parses `vf N <settings>` as iproute2 does (the subset we produce).
fn parse_words(words: &str) -> (u32, Vec<VfSetting>) {
    let w: Vec<&str> = words.split_whitespace().collect();
    assert_eq!(w[0], "vf", "{words}");
    let vf: u32 = w[1].parse().unwrap();
    let mut out = Vec::new();
    let mut rate: Option<(u32, u32)> = None;
    let mut i = 2;
    while i < w.len() {
        match w[i] {
            "mac" => {
                out.push(VfSetting::Mac(w[i + 1].parse::<MacAddr>().unwrap()));
                i += 2;
            }
            "vlan" => {
                let mut v = VfVlan::new(w[i + 1].parse().unwrap());
                i += 2;
                if w.get(i) == Some(&"qos") {
                    v.qos = w[i + 1].parse().unwrap();
                    i += 2;
                }
                if w.get(i) == Some(&"proto") {
                    v.proto = w[i + 1].parse::<VlanProto>().unwrap();
                    i += 2;
                }
                out.push(VfSetting::Vlan(v));
            }
            "spoofchk" => {
                out.push(VfSetting::SpoofCheck(w[i + 1] == "on"));
                i += 2;
            }
            "trust" => {
                out.push(VfSetting::Trust(w[i + 1] == "on"));
                i += 2;
            }
            "state" => {
                out.push(VfSetting::LinkState(
                    w[i + 1].parse::<VfLinkState>().unwrap(),
                ));
                i += 2;
            }
            "min_tx_rate" => {
                rate.get_or_insert((0, 0)).0 = w[i + 1].parse().unwrap();
                i += 2;
            }
            "max_tx_rate" => {
                rate.get_or_insert((0, 0)).1 = w[i + 1].parse().unwrap();
                i += 2;
            }
            other => panic!("unknown word {other:?} in {words:?}"),
        }
        // Keep the rate where the words put it: the encoder must move it
        // last by itself, as iproute2 does.
        if let Some((min, max)) = rate
            && !out.iter().any(|s| matches!(s, VfSetting::Rate { .. }))
            && w.get(i) != Some(&"max_tx_rate")
            && w.get(i) != Some(&"min_tx_rate")
        {
            out.push(VfSetting::Rate {
                min_mbps: min,
                max_mbps: max,
            });
        }
    }
    (vf, out)
}

/// (words, hex) pairs of a fixture file.
fn read_fixture(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (w, h) = l.split_once('\t').expect("words<TAB>hex");
            (w.to_owned(), h.trim().to_owned())
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Our bytes for the words, normalized like the fixtures.
fn ours(words: &str) -> String {
    let (vf, settings) = parse_words(words);
    let mut bytes = message::to_bytes(&message::set_vf(42, vf, &settings));
    message::normalize(&mut bytes);
    hex(&bytes)
}

fn compare_all(pairs: &[(String, String)]) {
    assert!(
        pairs.len() >= 15,
        "fixture has only {} messages",
        pairs.len()
    );
    let mut bad = Vec::new();
    for (words, theirs) in pairs {
        let mine = ours(words);
        if &mine != theirs {
            bad.push(format!(
                "ip link set DEV {words}\n  iproute2: {theirs}\n  ours:     {mine}"
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "messages differ from iproute2:\n{}",
        bad.join("\n")
    );
}

#[test]
fn vf_messages_match_iproute2_fixture() {
    compare_all(&read_fixture(&fixtures().join("iproute2-vf.txt")));
}

#[test]
fn fixture_uses_legacy_vlan_for_8021q_and_list_for_8021ad() {
    let pairs = read_fixture(&fixtures().join("iproute2-vf.txt"));
    let get = |w: &str| &pairs.iter().find(|(x, _)| x == w).unwrap().1;
    // IFLA_VF_VLAN (type 2, 12 bytes) for 802.1Q: nla header 1000 0200.
    assert!(get("vf 1 vlan 10 qos 3").contains("10000200"));
    assert!(get("vf 2 vlan 100 qos 0 proto 802.1Q").contains("10000200"));
    // IFLA_VF_VLAN_LIST (type 12) holding IFLA_VF_VLAN_INFO for 802.1ad.
    let ad = get("vf 2 vlan 100 qos 2 proto 802.1ad");
    assert!(ad.contains("18000c00140001"), "{ad}");
    assert!(ad.ends_with("88a80000"), "{ad}");
}

#[test]
fn vlan_list_fallback_is_the_8021ad_layout_with_8021q() {
    // iproute2 never sends IFLA_VF_VLAN_LIST for 802.1Q; the fallback must
    // be exactly its 802.1ad message with the protocol changed.
    let pairs = read_fixture(&fixtures().join("iproute2-vf.txt"));
    let ad = &pairs
        .iter()
        .find(|(w, _)| w == "vf 2 vlan 100 qos 2 proto 802.1ad")
        .unwrap()
        .1;
    let expected = ad.replace("88a80000", "81000000");
    let v = VfVlan {
        vlan: 100,
        qos: 2,
        proto: VlanProto::Dot1Q,
    };
    let mut bytes = message::to_bytes(&message::set_vf(9, 2, &[VfSetting::VlanList(v)]));
    message::normalize(&mut bytes);
    assert_eq!(hex(&bytes), expected);
}

#[test]
fn live_capture_matches_our_encoding() {
    if !lanes::require("live_capture_matches_our_encoding", &[Lane::Netns]) {
        return;
    }
    if lanes::find_in_path("strace").is_none() {
        if Lane::Netns.required() {
            panic!(
                "live_capture_matches_our_encoding: strace is not installed (apt-get install strace)"
            );
        }
        eprintln!("SKIP live_capture_matches_our_encoding: strace is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live.txt");
    let status = std::process::Command::new("bash")
        .arg(fixtures().join("capture.sh"))
        .arg(&out)
        .status()
        .expect("run capture.sh");
    assert!(status.success(), "capture.sh failed: {status}");
    let live = read_fixture(&out);
    compare_all(&live);
    let committed = read_fixture(&fixtures().join("iproute2-vf.txt"));
    let words = |v: &[(String, String)]| v.iter().map(|p| p.0.clone()).collect::<Vec<_>>();
    assert_eq!(
        words(&live),
        words(&committed),
        "capture.sh cases changed: regenerate the fixture"
    );
}
