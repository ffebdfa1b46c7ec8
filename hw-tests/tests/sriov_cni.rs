//! The `sriov` CNI plugin on a real PF: ADD moves a VF netdev into the pod's
//! network namespace and applies the VF settings on the PF; DEL brings the
//! netdev back under its name and restores the PF's VF settings.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sriov_hw_tests::{NumVfsGuard, TempDir, iproute, netns::NetnsGuard, pf, sysfs};

fn binary(test: &str) -> Option<PathBuf> {
    sriov_hw_tests::binary_for(test, "SRIOV_HW_SRIOV_CNI", "sriov", "sriov-cni")
}

/// Runs the plugin; returns its exit code and its stdout as JSON.
fn cni(bin: &Path, cmd: &str, cid: &str, netns: &Path, conf: &Value) -> (i32, Value) {
    let out = sriov_hw_tests::cni::run(bin, cmd, cid, netns, "net1", conf);
    (out.code, out.json)
}

#[test]
fn cni_add_del_moves_the_vf_and_restores_its_settings() {
    let test = "cni_add_del_moves_the_vf_and_restores_its_settings";
    let Some(pf) = pf(test) else {
        return;
    };
    let Some(bin) = binary(test) else {
        return;
    };
    let _restore = NumVfsGuard::new(&pf).unwrap();
    pf.set_numvfs(0).unwrap();
    pf.set_numvfs(pf.totalvfs.min(2)).unwrap();
    let vf = pf.vf_pci(0).unwrap();
    let name = pf.wait_vf_netdev(0).unwrap();
    let netdev_mac = sysfs::read(format!("/sys/class/net/{name}/address")).unwrap();
    let before = iproute::vfs(&pf.ifname).unwrap().remove(0);
    let ns = NetnsGuard::new("hwcni").unwrap();
    let state = TempDir::new("hwcni").unwrap();
    let cid = sriov_hw_tests::unique_name("hwcni");
    let conf = json!({
        "cniVersion": "1.0.0",
        "name": "hw-sriov",
        "type": "sriov",
        "deviceID": vf,
        "vlan": 100,
        "vlanQoS": 3,
        "mac": "02:11:22:33:44:66",
        "spoofchk": "off",
        "trust": "on",
        "dataDir": state.0,
    });

    let (code, res) = cni(&bin, "ADD", &cid, &ns.path(), &conf);
    assert_eq!(code, 0, "ADD failed: {res}");
    let ifs = res["interfaces"].as_array().cloned().unwrap_or_default();
    let net1 = ifs
        .iter()
        .find(|i| i["name"] == "net1")
        .unwrap_or_else(|| panic!("no net1 in the result: {res}"));
    assert_eq!(net1["mac"], "02:11:22:33:44:66", "{res}");
    assert_eq!(
        net1["sandbox"].as_str(),
        Some(ns.path().to_str().unwrap()),
        "{res}"
    );
    // In the pod's netns as net1 with the MAC; gone from the host.
    let shown = iproute::ip(&["-n", ns.name(), "link", "show", "dev", "net1"]).unwrap();
    assert!(shown.contains("02:11:22:33:44:66"), "{shown}");
    assert!(!iproute::link_exists(None, &name));
    // The settings on the PF.
    let vf0 = iproute::vfs(&pf.ifname).unwrap().remove(0);
    assert_eq!(vf0.mac, "02:11:22:33:44:66");
    assert_eq!((vf0.vlan, vf0.qos), (100, 3));
    assert_eq!((vf0.spoofchk, vf0.trust), (Some(false), Some(true)));

    let (code, res) = cni(&bin, "DEL", &cid, &ns.path(), &conf);
    assert_eq!(code, 0, "DEL failed: {res}");
    // Back in the host netns under its old name, with its old MAC.
    assert!(iproute::link_exists(None, &name), "{name} not back");
    assert!(!iproute::link_exists(Some(ns.name()), "net1"));
    assert_eq!(sysfs::netdevs(&vf), vec![name.clone()]);
    assert_eq!(
        sysfs::read(format!("/sys/class/net/{name}/address")).unwrap(),
        netdev_mac
    );
    // The PF's VF settings as before.
    let after = iproute::vfs(&pf.ifname).unwrap().remove(0);
    assert_eq!(after, before);
    // A second DEL is a no-op success.
    let (code, res) = cni(&bin, "DEL", &cid, &ns.path(), &conf);
    assert_eq!(code, 0, "second DEL failed: {res}");
}

/// igb has no `ndo_set_vf_link_state`: ADD with `link_state` fails with
/// code 104 naming the setting, and undoes what it did before (vlan, MAC,
/// spoofchk on the PF), so the VF and the PF are exactly as before and no
/// state is left behind.
#[test]
fn cni_add_with_unsupported_link_state_fails_and_changes_nothing() {
    let test = "cni_add_with_unsupported_link_state_fails_and_changes_nothing";
    let Some(pf) = pf(test) else {
        return;
    };
    let Some(bin) = binary(test) else {
        return;
    };
    let _restore = NumVfsGuard::new(&pf).unwrap();
    pf.set_numvfs(0).unwrap();
    pf.set_numvfs(pf.totalvfs.min(2)).unwrap();
    let vf = pf.vf_pci(1).unwrap();
    let name = pf.wait_vf_netdev(1).unwrap();
    let netdev_mac = sysfs::read(format!("/sys/class/net/{name}/address")).unwrap();
    let before = iproute::vfs(&pf.ifname).unwrap();
    let ns = NetnsGuard::new("hwcnils").unwrap();
    let state = TempDir::new("hwcnils").unwrap();
    let cid = sriov_hw_tests::unique_name("hwcnils");
    // Settings applied before the link state (MAC, vlan, spoofchk) must be
    // undone when the link state is refused.
    let conf = json!({
        "cniVersion": "1.0.0",
        "name": "hw-sriov-ls",
        "type": "sriov",
        "deviceID": vf,
        "vlan": 200,
        "mac": "02:11:22:33:44:77",
        "spoofchk": "off",
        "link_state": "enable",
        "dataDir": state.0,
    });

    let (code, res) = cni(&bin, "ADD", &cid, &ns.path(), &conf);
    assert_eq!(code, 1, "ADD should fail: {res}");
    assert_eq!(res["code"], 104, "{res}");
    let msg = res["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains("link state"),
        "message names the setting: {res}"
    );
    let details = res["details"].as_str().unwrap_or_default();
    assert!(details.contains("EOPNOTSUPP"), "{res}");

    // The VF netdev stayed in the host, same name, same MAC; nothing in the pod.
    assert!(iproute::link_exists(None, &name), "{name} left the host");
    assert!(!iproute::link_exists(Some(ns.name()), "net1"));
    assert_eq!(sysfs::netdevs(&vf), vec![name.clone()]);
    assert_eq!(
        sysfs::read(format!("/sys/class/net/{name}/address")).unwrap(),
        netdev_mac
    );
    let shown = iproute::ip(&["link", "show", "dev", &name]).unwrap();
    assert!(shown.contains(&netdev_mac), "{shown}");
    // Every VF of the PF as before (`ip link show <pf>` VF lines).
    assert_eq!(iproute::vfs(&pf.ifname).unwrap(), before);
    // No attachment state, no allocation record.
    assert!(!state.0.join(format!("{cid}-net1")).exists());
    assert!(!state.0.join("pci").join(&vf).exists());
    // DEL of the failed attachment is a no-op success.
    let (code, res) = cni(&bin, "DEL", &cid, &ns.path(), &conf);
    assert_eq!(code, 0, "DEL failed: {res}");
    assert_eq!(iproute::vfs(&pf.ifname).unwrap(), before);
}
