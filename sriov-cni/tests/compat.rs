//! The compatibility corpus (`tests/compat/`, see its README): upstream
//! example configs, NAD configs as the Go operator renders them, and Go
//! sriov-cni cache files, fed to this plugin (issue 12). No root needed:
//! a static simulated sysfs tree and `RecordingLinkOps` as the PF.

mod static_node;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sriov_cni::config::NetConf;
use sriov_cni::env::{CniArgs, CniEnv, Command};
use sriov_cni::state::StateDir;
use sriov_host::netlink::{LinkOps, VfInfo, VfLinkState, VfSetting, VfVlan};
use static_node::StaticNode;

fn corpus(dir: &str) -> Vec<(String, Vec<u8>)> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/compat")
        .join(dir);
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(&d)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "{} is empty", d.display());
    v
}

fn with_device(bytes: &[u8]) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(bytes).unwrap();
    if v.get("deviceID").is_none() {
        v["deviceID"] = json!("0000:3b:02.2");
    }
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn upstream_example_configs_are_accepted() {
    for (name, bytes) in corpus("upstream-examples") {
        let c =
            NetConf::parse(&with_device(&bytes), None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(c.kind, "sriov", "{name}");
        assert!(c.warnings.is_empty(), "{name}: {:?}", c.warnings);
    }
    let all = corpus("upstream-examples")
        .into_iter()
        .find(|(n, _)| n == "configuration-reference-all-fields.json")
        .unwrap()
        .1;
    let c = NetConf::parse(&all, None).unwrap();
    assert_eq!(c.mac.unwrap().to_string(), "ca:fe:c0:ff:ee:00");
    assert_eq!(c.vf.to_settings().len(), 5);
}

#[test]
fn operator_rendered_nads_are_accepted_with_exactly_their_settings() {
    for (name, bytes) in corpus("operator-nads") {
        let c =
            NetConf::parse(&with_device(&bytes), None).unwrap_or_else(|e| panic!("{name}: {e}"));
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        let has = |k: &str| v.get(k).is_some();
        assert_eq!(c.vf.vlan.is_some(), has("vlan"), "{name}");
        assert_eq!(c.vf.spoofchk.is_some(), has("spoofchk"), "{name}");
        assert_eq!(c.vf.trust.is_some(), has("trust"), "{name}");
        assert_eq!(c.vf.link_state.is_some(), has("link_state"), "{name}");
        assert_eq!(
            c.vf.rate.is_some(),
            has("min_tx_rate") || has("max_tx_rate"),
            "{name}"
        );
        // "ipam":{} is no IPAM, as the Go plugin's `IPAM.Type != ""`.
        assert_eq!(c.ipam.is_some(), v["ipam"].get("type").is_some(), "{name}");
    }
}

/// Every Go cache file: DEL (with a config ADD would refuse) restores the
/// PF-side settings the cache names, leaves the others alone, and removes
/// the file.
#[test]
fn go_cache_files_are_released_by_del() {
    for (name, bytes) in corpus("go-cache") {
        let n = StaticNode::new();
        let state = tempfile::tempdir().unwrap();
        let text = String::from_utf8(bytes)
            .unwrap()
            .replace("\"@VFID@\"", "2")
            .replace("@VF@", &n.vf.to_string())
            .replace("@PF@", "ens1f0");
        let cache: Value = serde_json::from_str(&text).unwrap();
        std::fs::write(state.path().join("goctr-net1"), &text).unwrap();
        // What the Go ADD left on the PF: every setting changed.
        let dirty = [
            VfSetting::Vlan(VfVlan::new(77)),
            VfSetting::SpoofCheck(false),
            VfSetting::Trust(true),
            VfSetting::LinkState(VfLinkState::Disable),
            VfSetting::Rate {
                min_mbps: 1,
                max_mbps: 2,
            },
        ];
        for s in dirty {
            n.fake.set_vf("ens1f0".into(), 2, &[s]).unwrap();
        }
        let dirty_state = n.fake.vf_state("ens1f0", 2).unwrap();
        let has_ipam = cache["ipam"].get("type").is_some();
        if has_ipam && !Path::new("/usr/lib/cni/host-local").exists() {
            eprintln!("SKIP {name}: needs /usr/lib/cni/host-local (containernetworking-plugins)");
            continue;
        }
        let del = json!({"cniVersion": "1.0.0", "name": "edited", "type": "sriov",
            "vlan": 9999, "mac": "not-a-mac", "dataDir": state.path(),
            "ipam": {"type": "host-local", "subnet": "10.56.217.0/24",
                     "dataDir": state.path().join("ipam")}});
        let b = serde_json::to_vec(&del).unwrap();
        let c = NetConf::parse_lenient(&b, None).unwrap();
        let env = CniEnv {
            command: Command::Del,
            container_id: Some("goctr".into()),
            netns: Some("/proc/self/ns/net".into()),
            ifname: Some("net1".into()),
            args: CniArgs::default(),
            path: vec![PathBuf::from("/usr/lib/cni")],
        };
        n.plugin
            .del(&env, &c, &b)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let now = n.fake.vf_state("ens1f0", 2).unwrap();
        let fresh = VfInfo::fresh(2);
        let named = |k: &str| {
            cache
                .get(k)
                .is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
        };
        let pick = |restored: bool, f: &dyn Fn(&VfInfo) -> String| {
            if restored { f(&fresh) } else { f(&dirty_state) }
        };
        assert_eq!(
            format!("{:?}", now.vlan),
            pick(named("vlan"), &|v| format!("{:?}", v.vlan)),
            "{name}: vlan"
        );
        assert_eq!(
            now.spoofchk,
            Some(named("spoofchk") || dirty_state.spoofchk == Some(true)),
            "{name}: spoofchk"
        );
        assert_eq!(
            now.trust,
            Some(!named("trust") && dirty_state.trust == Some(true)),
            "{name}: trust"
        );
        assert_eq!(
            format!("{:?}", now.link_state),
            pick(named("link_state"), &|v| format!("{:?}", v.link_state)),
            "{name}: link_state"
        );
        assert_eq!(
            (now.min_tx_rate, now.max_tx_rate),
            if named("min_tx_rate") || named("max_tx_rate") {
                (0, 0)
            } else {
                (1, 2)
            },
            "{name}: rates"
        );
        assert!(
            StateDir::new(state.path()).list().unwrap().is_empty(),
            "{name}: state file left"
        );
    }
}

/// GC releases a Go v2.8+ cache file (no `ContIFNames`: the interface name
/// comes from the file name) of its network that is not listed.
#[test]
fn gc_releases_a_go_v2_10_cache_file() {
    let n = StaticNode::new();
    let state = tempfile::tempdir().unwrap();
    let (_, bytes) = corpus("go-cache")
        .into_iter()
        .find(|(f, _)| f == "v2.10-netdev-vlan-mac.json")
        .unwrap();
    let text = String::from_utf8(bytes)
        .unwrap()
        .replace("\"@VFID@\"", "2")
        .replace("@VF@", &n.vf.to_string())
        .replace("@PF@", "ens1f0");
    std::fs::write(state.path().join("0123abcd-net1"), &text).unwrap();
    n.fake
        .set_vf("ens1f0".into(), 2, &[VfSetting::Vlan(VfVlan::new(1000))])
        .unwrap();
    let gc = json!({"cniVersion": "1.1.0", "name": "sriov-net", "type": "sriov",
        "dataDir": state.path(), "cni.dev/valid-attachments": []});
    let b = serde_json::to_vec(&gc).unwrap();
    let c = NetConf::parse(&b, None).unwrap();
    let env = CniEnv {
        command: Command::Gc,
        container_id: None,
        netns: None,
        ifname: None,
        args: CniArgs::default(),
        path: vec![],
    };
    n.plugin.gc(&env, &c, &b).unwrap();
    assert!(StateDir::new(state.path()).list().unwrap().is_empty());
    assert_eq!(
        n.fake.vf_state("ens1f0", 2).unwrap().vlan,
        VfVlan::default()
    );
}
