//! End-to-end: the real `sriov` binary through the CNI protocol, against a
//! simulated node with veth-backed VFs (`sriov-sim`, FUSE), in real network
//! namespaces, with Debian's `host-local` IPAM from /usr/lib/cni.
//!
//! The simulated PF is a veth: it has no VF table over netlink, so configs
//! here carry no PF-side VF settings; that logic is tested against
//! `RecordingLinkOps` in `src/vf_settings.rs` and on real igb PFs in the
//! QEMU lane. A config with a PF-side setting is checked to fail cleanly.
//!
//! Tests run one at a time (a process-wide lock): two simulated nodes in one
//! process would pick the same veth peer names.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use serde_json::{Value, json};
use sriov_host::netlink::{LinkId, LinkOps, Netlink};
use sriov_host::netns::NamedNetns;
use sriov_sim::lanes::{self, Lane};
use sriov_sim::node::NodeSpec;
use sriov_sim::{SimNode, SimOptions};

static SERIAL: Mutex<()> = Mutex::new(());

const CNI_PATH: &str = "/usr/lib/cni";

/// One test's world: a simulated node, a state dir, an IPAM dir.
struct World {
    sim: SimNode,
    tmp: tempfile::TempDir,
    pf: String,
    tag: String,
    spaces: Vec<NamedNetns>,
    /// Held until everything above is cleaned up (dropped last).
    _serial: std::sync::MutexGuard<'static, ()>,
}

const PF_PCI: &str = "0000:3b:00.0";

impl World {
    fn new(name: &str) -> Option<World> {
        if !lanes::require(name, &[Lane::Fuse, Lane::Netns]) {
            return None;
        }
        if !Path::new(CNI_PATH).join("host-local").exists() {
            panic!(
                "{CNI_PATH}/host-local is missing: run scripts/setup.sh (containernetworking-plugins)"
            );
        }
        let guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        // Names unique per test: a stopped node's cleanup must not race
        // the next node's veths of the same name.
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tag = format!("{:x}t{n}", std::process::id() & 0xff_ffff);
        let pf = format!("k{tag}");
        delete_links_with_prefix(&format!("{pf}v"));
        let yaml = format!(
            "name: cni\npfs:\n  - model: e810\n    address: \"{PF_PCI}\"\n    ifname: {pf}\n    vfs: 3\n    vf_drivers: {{2: vfio-pci}}\n"
        );
        let spec = NodeSpec::from_yaml(&yaml, "e2e").expect("node spec");
        let sim = SimNode::start(
            spec,
            SimOptions {
                veth: true,
                root: None,
            },
        )
        .expect("simulated node starts");
        Some(World {
            sim,
            tmp: tempfile::tempdir().unwrap(),
            pf,
            tag,
            spaces: Vec::new(),
            _serial: guard,
        })
    }

    /// Waits until the simulated sysfs shows VF `i`'s netdev again (it
    /// caches entries for up to a second; a real sysfs needs no wait).
    fn wait_sysfs(&self, i: u32) {
        let net = self.sim.root().join(format!(
            "sys/bus/pci/devices/{}/net/{}",
            self.vf(i),
            self.vf_name(i)
        ));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while !net.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(net.exists(), "{}", net.display());
    }

    /// PCI address of VF `i`.
    fn vf(&self, i: u32) -> String {
        sriov_sim::check::vf_address(self.sim.root(), PF_PCI, i).unwrap()
    }

    fn vf_name(&self, i: u32) -> String {
        format!("{}v{i}", self.pf)
    }

    fn netns(&mut self, n: &str) -> PathBuf {
        let ns = NamedNetns::create(&format!("cni{}-{n}", self.tag)).unwrap();
        let p = ns.path().to_path_buf();
        self.spaces.push(ns);
        p
    }

    fn drop_netns(&mut self, p: &Path) {
        self.spaces.retain(|n| n.path() != p);
    }

    fn state_dir(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    fn conf(&self, vf: u32, extra: Value) -> Value {
        let mut c = json!({
            "cniVersion": "1.0.0",
            "name": "sriov-net",
            "type": "sriov",
            "deviceID": self.vf(vf),
            "dataDir": self.state_dir(),
            "logLevel": "debug",
        });
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    fn ipam(&self) -> Value {
        json!({"type": "host-local", "subnet": "10.77.0.0/24", "gateway": "10.77.0.1",
               "routes": [{"dst": "0.0.0.0/0"}],
               "dataDir": self.tmp.path().join("ipam")})
    }

    fn cni(&self, cmd: &str, cid: &str, netns: Option<&Path>, conf: &Value) -> (i32, Value) {
        self.cni_env(cmd, cid, netns, conf, &[])
    }

    fn cni_env(
        &self,
        cmd: &str,
        cid: &str,
        netns: Option<&Path>,
        conf: &Value,
        extra_env: &[(&str, &str)],
    ) -> (i32, Value) {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sriov"));
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CNI_COMMAND", cmd)
            .env("CNI_CONTAINERID", cid)
            .env("CNI_IFNAME", "net1")
            .env("CNI_PATH", CNI_PATH)
            .env("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=p")
            .env(sriov_host::root::HOST_ROOT_ENV, self.sim.root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(n) = netns {
            c.env("CNI_NETNS", n);
        }
        for (k, v) in extra_env {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(conf.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        eprintln!(
            "{cmd} {cid}: exit {:?}\nstdout: {stdout}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        let v = if stdout.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&stdout).expect("stdout is one JSON document")
        };
        (out.status.code().unwrap_or(-9), v)
    }

    fn state_files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.state_dir())
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_type().unwrap().is_file())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn alloc(&self, vf: u32) -> Option<String> {
        std::fs::read_to_string(self.state_dir().join("pci").join(self.vf(vf))).ok()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.spaces.clear();
        self.sim.stop();
        delete_links_with_prefix(&format!("{}v", self.pf));
        delete_links_with_prefix(&sim_peer_prefix());
    }
}

/// The simulator's veth peers of this process (`sv<pid hex>x<n>`): tests
/// run one at a time, so any left when a node has stopped are stale.
fn sim_peer_prefix() -> String {
    format!("sv{:x}x", std::process::id() & 0xff_ffff)
}

/// Deletes links left in this namespace by an earlier failed test.
fn delete_links_with_prefix(prefix: &str) {
    let Ok(nl) = Netlink::open() else { return };
    for l in nl.links().unwrap_or_default() {
        if l.name.starts_with(prefix) {
            let _ = Command::new("ip").args(["link", "del", &l.name]).status();
        }
    }
}

fn host() -> Netlink {
    Netlink::open().unwrap()
}

fn in_ns(p: &Path) -> Box<dyn LinkOps> {
    let ns = sriov_host::netns::Netns::open(p).unwrap();
    Box::new(Netlink::open_in(&ns).unwrap())
}

fn addrs(ns: &Path, dev: &str) -> String {
    let name = ns.file_name().unwrap().to_string_lossy().into_owned();
    let out = Command::new("ip")
        .args(["-n", &name, "-o", "addr", "show", "dev", dev])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn routes(ns: &Path) -> String {
    let name = ns.file_name().unwrap().to_string_lossy().into_owned();
    let out = Command::new("ip")
        .args(["-n", &name, "route", "show"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn add_check_del_round_trip_with_host_local() {
    let Some(mut w) = World::new("add_check_del_round_trip_with_host_local") else {
        return;
    };
    let ns = w.netns("a");
    let vfname = w.vf_name(0);
    let before = host().link(LinkId::from(&vfname)).unwrap();
    let conf = w.conf(0, json!({"ipam": w.ipam()}));
    let (code, res) = w.cni("ADD", "ctr-a", Some(&ns), &conf);
    assert_eq!(code, 0, "{res}");
    assert_eq!(res["cniVersion"], "1.0.0");
    assert_eq!(res["interfaces"][0]["name"], "net1");
    assert_eq!(res["interfaces"][0]["sandbox"], ns.display().to_string());
    assert_eq!(res["interfaces"][0]["pciID"], w.vf(0));
    assert_eq!(res["interfaces"][0]["mac"], before.mac.unwrap().to_string());
    assert_eq!(res["ips"][0]["address"], "10.77.0.2/24");
    assert_eq!(res["ips"][0]["interface"], 0);
    // the VF is in the pod, up, addressed, routed; gone from the host
    let pod = in_ns(&ns);
    let l = pod.link(LinkId::from("net1")).unwrap();
    assert!(l.admin_up);
    assert!(addrs(&ns, "net1").contains("10.77.0.2/24"));
    assert!(
        routes(&ns).contains("default via 10.77.0.1 dev net1"),
        "{}",
        routes(&ns)
    );
    assert!(host().link(LinkId::from(&vfname)).is_err());
    // the kernel announces the addresses (gratuitous ARP, unsolicited NA)
    let nsname = ns.file_name().unwrap().to_str().unwrap().to_owned();
    let notify = Command::new("ip")
        .args([
            "netns",
            "exec",
            &nsname,
            "cat",
            "/proc/sys/net/ipv4/conf/net1/arp_notify",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&notify.stdout).trim(), "1");
    assert_eq!(w.state_files(), vec!["ctr-a-net1"]);
    assert_eq!(w.alloc(0).as_deref(), Some(ns.to_str().unwrap()));

    // CHECK with prevResult (strictCheck: the attachment is verified)
    let mut check = conf.clone();
    check["prevResult"] = res.clone();
    check["strictCheck"] = json!(true);
    let (code, out) = w.cni("CHECK", "ctr-a", Some(&ns), &check);
    assert_eq!(code, 0, "{out}");
    // strictCheck notices a changed MTU
    pod.set_mtu(LinkId::from("net1"), 1400).unwrap();
    let mut check_mtu = check.clone();
    check_mtu["mtu"] = json!(1500);
    check_mtu["setMtu"] = json!(true);
    let (code, out) = w.cni("CHECK", "ctr-a", Some(&ns), &check_mtu);
    assert_eq!((code, out["code"].as_u64()), (1, Some(110)), "{out}");
    // The Go plugin's CHECK (the default) verifies nothing: success.
    check_mtu.as_object_mut().unwrap().remove("strictCheck");
    let (code, out) = w.cni("CHECK", "ctr-a", Some(&ns), &check_mtu);
    assert_eq!(code, 0, "{out}");
    pod.set_mtu(LinkId::from("net1"), before.mtu).unwrap();
    drop(pod);

    // DEL: back in the host with its name, MAC and MTU; state gone; lease gone
    let (code, out) = w.cni("DEL", "ctr-a", Some(&ns), &conf);
    assert_eq!(code, 0, "{out}");
    let after = host().link(LinkId::from(&vfname)).unwrap();
    assert_eq!((after.mac, after.mtu), (before.mac, before.mtu));
    assert!(in_ns(&ns).link(LinkId::from("net1")).is_err());
    assert!(w.state_files().is_empty());
    assert_eq!(w.alloc(0), None);
    let leases = w.tmp.path().join("ipam/sriov-net/10.77.0.2");
    assert!(!leases.exists(), "host-local lease released");
    // DEL twice is fine
    let (code, out) = w.cni("DEL", "ctr-a", Some(&ns), &conf);
    assert_eq!(code, 0, "{out}");
    // and sysfs shows the VF's netdev again under its name
    w.wait_sysfs(0);
}

#[test]
fn mac_mtu_runtime_config_and_cni_1_1_0() {
    let Some(mut w) = World::new("mac_mtu_runtime_config_and_cni_1_1_0") else {
        return;
    };
    let ns = w.netns("b");
    let vfname = w.vf_name(1);
    let before = host().link(LinkId::from(&vfname)).unwrap();
    // Issue 12 item 14: `mtu` alone is not applied, as the Go plugin; the
    // result reports the VF's own MTU.
    let conf = w.conf(1, json!({"mtu": 9000}));
    let (code, res) = w.cni("ADD", "ctr-m", Some(&ns), &conf);
    assert_eq!(code, 0, "{res}");
    assert_eq!(res["interfaces"][0]["mtu"], before.mtu, "{res}");
    assert_eq!(
        in_ns(&ns).link(LinkId::from("net1")).unwrap().mtu,
        before.mtu
    );
    let (code, out) = w.cni("DEL", "ctr-m", Some(&ns), &conf);
    assert_eq!(code, 0, "{out}");
    w.wait_sysfs(1);
    // With setMtu it is.
    let mut conf = w.conf(
        1,
        json!({"mac": "02:11:22:33:44:55", "mtu": 9000, "setMtu": true, "ipam": w.ipam(),
               "runtimeConfig": {"mac": "02:aa:bb:cc:dd:ee"}}),
    );
    conf["cniVersion"] = json!("1.1.0");
    let (code, res) = w.cni("ADD", "ctr-b", Some(&ns), &conf);
    assert_eq!(code, 0, "{res}");
    assert_eq!(res["cniVersion"], "1.1.0");
    assert_eq!(res["interfaces"][0]["mac"], "02:aa:bb:cc:dd:ee");
    assert_eq!(res["interfaces"][0]["mtu"], 9000);
    let l = in_ns(&ns).link(LinkId::from("net1")).unwrap();
    assert_eq!(l.mac.unwrap().to_string(), "02:aa:bb:cc:dd:ee");
    assert_eq!(l.mtu, 9000);
    let mut check = conf.clone();
    check["prevResult"] = res.clone();
    let (code, out) = w.cni("CHECK", "ctr-b", Some(&ns), &check);
    assert_eq!(code, 0, "{out}");
    let (code, out) = w.cni("DEL", "ctr-b", Some(&ns), &conf);
    assert_eq!(code, 0, "{out}");
    let after = host().link(LinkId::from(&vfname)).unwrap();
    assert_eq!(after.mac, before.mac, "MAC restored");
    assert_eq!(after.mtu, before.mtu, "MTU restored");
    w.wait_sysfs(1);
    // 0.4.0 results carry "version"
    let mut conf = w.conf(1, json!({"ipam": w.ipam()}));
    conf["cniVersion"] = json!("0.4.0");
    let (code, res) = w.cni("ADD", "ctr-c", Some(&ns), &conf);
    assert_eq!(code, 0, "{res}");
    assert_eq!(res["ips"][0]["version"], "4");
    let (code, _) = w.cni("DEL", "ctr-c", Some(&ns), &conf);
    assert_eq!(code, 0);
}

#[test]
fn del_after_netns_deleted_and_del_without_state() {
    let Some(mut w) = World::new("del_after_netns_deleted_and_del_without_state") else {
        return;
    };
    let ns = w.netns("c");
    let conf = w.conf(0, json!({"ipam": w.ipam()}));
    let (code, res) = w.cni("ADD", "ctr-d", Some(&ns), &conf);
    assert_eq!(code, 0, "{res}");
    w.drop_netns(&ns);
    assert!(!ns.exists());
    // the runtime may pass the stale path or none at all
    let (code, out) = w.cni("DEL", "ctr-d", Some(&ns), &conf);
    assert_eq!(code, 0, "{out}");
    assert!(w.state_files().is_empty());
    assert_eq!(w.alloc(0), None);
    assert!(!w.tmp.path().join("ipam/sriov-net/10.77.0.2").exists());
    let (code, out) = w.cni("DEL", "ctr-d", None, &conf);
    assert_eq!(code, 0, "{out}");
    // DEL of an attachment that never existed
    let (code, out) = w.cni("DEL", "never", None, &conf);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn add_killed_or_failing_half_way_then_del_restores() {
    let Some(mut w) = World::new("add_killed_or_failing_half_way_then_del_restores") else {
        return;
    };
    let ns = w.netns("d");
    let vfname = w.vf_name(0);
    let before = host().link(LinkId::from(&vfname)).unwrap();
    let conf = w.conf(0, json!({"ipam": w.ipam(), "mac": "02:00:00:00:aa:01"}));

    // killed right after the move into the pod: nothing undone
    let (code, _) = w.cni_env(
        "ADD",
        "ctr-e",
        Some(&ns),
        &conf,
        &[("SRIOV_CNI_TEST_CRASH_AFTER", "move")],
    );
    assert_eq!(code, -9, "killed by SIGKILL");
    assert!(
        in_ns(&ns).link(LinkId::from("net1")).is_ok(),
        "VF left in the pod"
    );
    assert_eq!(w.state_files(), vec!["ctr-e-net1"]);
    let (code, out) = w.cni("DEL", "ctr-e", Some(&ns), &conf);
    assert_eq!(code, 0, "{out}");
    let after = host().link(LinkId::from(&vfname)).unwrap();
    assert_eq!((after.mac, after.mtu), (before.mac, before.mtu));
    assert!(w.state_files().is_empty());
    w.wait_sysfs(0);

    // an error after IPAM: ADD undoes everything itself
    for step in ["state", "move", "link", "ipam", "addresses"] {
        let (code, out) = w.cni_env(
            "ADD",
            "ctr-f",
            Some(&ns),
            &conf,
            &[("SRIOV_CNI_TEST_FAIL_AFTER", step)],
        );
        assert_eq!((code, out["code"].as_u64()), (1, Some(11)), "{step}: {out}");
        let after = host().link(LinkId::from(&vfname)).unwrap();
        assert_eq!((after.mac, after.mtu), (before.mac, before.mtu), "{step}");
        assert!(in_ns(&ns).link(LinkId::from("net1")).is_err(), "{step}");
        assert!(w.state_files().is_empty(), "{step}");
        assert_eq!(w.alloc(0), None, "{step}");
        assert!(
            !w.tmp.path().join("ipam/sriov-net/10.77.0.2").exists(),
            "{step}: lease released"
        );
        w.wait_sysfs(0);
    }
    // and a normal ADD works afterwards
    let (code, res) = w.cni("ADD", "ctr-g", Some(&ns), &conf);
    assert_eq!(code, 0, "{res}");
    let (code, _) = w.cni("DEL", "ctr-g", Some(&ns), &conf);
    assert_eq!(code, 0);
}

#[test]
fn bad_configs_get_their_codes_and_change_nothing() {
    let Some(mut w) = World::new("bad_configs_get_their_codes_and_change_nothing") else {
        return;
    };
    let ns = w.netns("e");
    let vfname = w.vf_name(0);
    let before = host().link(LinkId::from(&vfname)).unwrap();
    let cases: Vec<(Value, u64)> = vec![
        (json!({"vlan": 5000}), 7),
        (json!({"deviceID": "eth0"}), 7),
        (json!({"link_state": "up"}), 7),
        (json!({"vlanQoS": 3}), 7),
        (json!({"min_tx_rate": 100, "max_tx_rate": 10}), 7),
        (json!({"mac": "01:00:5e:00:00:01"}), 7),
        (json!({"cniVersion": "9.0.0"}), 1),
        (json!({"deviceID": PF_PCI}), 100),
        (json!({"deviceID": "0000:99:00.0"}), 102),
        (json!({"ipam": {"type": "no-such-ipam"}}), 107),
        // the simulated PF (a veth) lists no VFs: PF-side settings fail
        (json!({"trust": "on"}), 105),
        (json!({"ipam": {"type": "host-local"}}), 107),
    ];
    for (extra, want) in cases {
        let conf = w.conf(0, extra.clone());
        let (code, out) = w.cni("ADD", "ctr-h", Some(&ns), &conf);
        assert_eq!(
            (code, out["code"].as_u64()),
            (1, Some(want)),
            "{extra}: {out}"
        );
        assert!(out["msg"].as_str().is_some_and(|m| !m.is_empty()));
        let now = host().link(LinkId::from(&vfname)).unwrap();
        assert_eq!((now.mac, now.mtu), (before.mac, before.mtu), "{extra}");
        assert!(in_ns(&ns).link(LinkId::from("net1")).is_err(), "{extra}");
        assert!(w.state_files().is_empty(), "{extra}");
        assert_eq!(w.alloc(0), None, "{extra}");
    }
    // missing deviceID
    let mut conf = w.conf(0, json!({}));
    conf.as_object_mut().unwrap().remove("deviceID");
    let (code, out) = w.cni("ADD", "ctr-h", Some(&ns), &conf);
    assert_eq!((code, out["code"].as_u64()), (1, Some(7)), "{out}");
    // missing netns
    let conf = w.conf(0, json!({}));
    let (code, out) = w.cni(
        "ADD",
        "ctr-h",
        Some(Path::new("/run/netns/nonexistent-cni")),
        &conf,
    );
    assert_eq!((code, out["code"].as_u64()), (1, Some(3)), "{out}");
}

/// The pod already has a `net1`: the kernel moves the VF before it refuses
/// the name, so ADD must bring the VF home again. The error names the
/// interface, the pod's own `net1` is untouched, nothing is left behind,
/// and an ADD with a free name then works.
#[test]
fn add_into_a_pod_whose_ifname_is_taken_leaves_the_vf_home() {
    let sh = |args: &[&str]| {
        let st = Command::new("ip").args(args).status().unwrap();
        assert!(st.success(), "ip {args:?}");
    };
    let Some(mut w) = World::new("add_into_a_pod_whose_ifname_is_taken_leaves_the_vf_home") else {
        return;
    };
    let ns = w.netns("x");
    let nsname = ns.file_name().unwrap().to_string_lossy().into_owned();
    let vfname = w.vf_name(0);
    let before = host().link(LinkId::from(&vfname)).unwrap();
    sh(&[
        "-n", &nsname, "link", "add", "net1", "type", "veth", "peer", "name", "net1p",
    ]);
    let theirs = in_ns(&ns).link(LinkId::from("net1")).unwrap();
    let conf = w.conf(0, json!({}));
    let (code, out) = w.cni("ADD", "ctr-x", Some(&ns), &conf);
    assert_eq!((code, out["code"].as_u64()), (1, Some(105)), "{out}");
    assert!(
        out["msg"].as_str().unwrap().contains("net1 already exists"),
        "{out}"
    );
    let now = host().link(LinkId::from(&vfname)).unwrap();
    assert_eq!(
        (now.index, now.mac, now.mtu, now.admin_up),
        (before.index, before.mac, before.mtu, before.admin_up)
    );
    assert!(in_ns(&ns).link(LinkId::from(&vfname)).is_err());
    let still = in_ns(&ns).link(LinkId::from("net1")).unwrap();
    assert_eq!(
        (still.index, still.kind.as_deref()),
        (theirs.index, Some("veth"))
    );
    assert!(w.state_files().is_empty());
    assert_eq!(w.alloc(0), None);
    // The same pod with the name freed.
    sh(&["-n", &nsname, "link", "del", "net1"]);
    w.wait_sysfs(0);
    let (code, out) = w.cni("ADD", "ctr-x", Some(&ns), &conf);
    assert_eq!(code, 0, "{out}");
    let (code, out) = w.cni("DEL", "ctr-x", Some(&ns), &conf);
    assert_eq!(code, 0, "{out}");
}

/// A VF with altnames (as udev's `AlternativeNamesPolicy` gives them)
/// keeps them in the pod and gets them back on DEL: they move with the
/// link, and the kernel adds none for the renames.
#[test]
fn vf_altnames_move_with_it() {
    let Some(mut w) = World::new("vf_altnames_move_with_it") else {
        return;
    };
    let ns = w.netns("alt");
    let vfname = w.vf_name(1);
    let alt = format!("{}alt", w.tag);
    let added = Command::new("ip")
        .args(["link", "property", "add", "dev", &vfname, "altname", &alt])
        .output()
        .unwrap();
    if !added.status.success() {
        eprintln!(
            "SKIP vf_altnames_move_with_it: no altnames on this kernel: {}",
            String::from_utf8_lossy(&added.stderr)
        );
        return;
    }
    let conf = w.conf(1, json!({}));
    let (code, out) = w.cni("ADD", "ctr-alt", Some(&ns), &conf);
    assert_eq!(code, 0, "{out}");
    let l = in_ns(&ns).link(LinkId::from("net1")).unwrap();
    assert_eq!(l.alt_names, std::slice::from_ref(&alt));
    let (code, out) = w.cni("DEL", "ctr-alt", Some(&ns), &conf);
    assert_eq!(code, 0, "{out}");
    let back = host().link(LinkId::from(&vfname)).unwrap();
    assert_eq!(back.alt_names, [alt]);
}

#[test]
fn userspace_vf_add_del() {
    let Some(mut w) = World::new("userspace_vf_add_del") else {
        return;
    };
    let ns = w.netns("f");
    let conf = w.conf(2, json!({}));
    let (code, res) = w.cni("ADD", "ctr-u", Some(&ns), &conf);
    assert_eq!(code, 0, "{res}");
    assert_eq!(res["interfaces"][0]["pciID"], w.vf(2));
    // Issue 12 item 15: the sandbox as the Go plugin reports it (the
    // simulated PF is not on netlink: no admin MAC or PF MTU to report).
    assert_eq!(res["interfaces"][0]["sandbox"], ns.to_str().unwrap());
    let saved: Value =
        serde_json::from_slice(&std::fs::read(w.state_dir().join("ctr-u-net1")).unwrap()).unwrap();
    assert_eq!(saved["DPDKMode"], true);
    let (code, out) = w.cni("DEL", "ctr-u", Some(&ns), &conf);
    assert_eq!(code, 0, "{out}");
    assert!(w.state_files().is_empty());
}

#[test]
fn del_of_go_sriov_cni_cache_restores() {
    let Some(mut w) = World::new("del_of_go_sriov_cni_cache_restores") else {
        return;
    };
    let ns = w.netns("g");
    let vfname = w.vf_name(1);
    let before = host().link(LinkId::from(&vfname)).unwrap();
    // What the Go plugin's ADD left: the VF in the pod as net1 with a new
    // MAC and MTU, its cache file and allocation record.
    let nsname = ns.file_name().unwrap().to_str().unwrap().to_owned();
    let sh = |args: &[&str]| {
        let st = Command::new("ip").args(args).status().unwrap();
        assert!(st.success(), "ip {args:?}");
    };
    sh(&["link", "set", &vfname, "netns", &nsname]);
    sh(&["-n", &nsname, "link", "set", &vfname, "name", "net1"]);
    sh(&[
        "-n",
        &nsname,
        "link",
        "set",
        "net1",
        "address",
        "02:00:00:00:99:01",
        "mtu",
        "1400",
        "up",
    ]);
    let cache = json!({
        "cniVersion": "0.4.0", "name": "sriov-net", "type": "sriov",
        "OrigVfState": {"HostIFName": vfname, "SpoofChk": true, "Trust": false,
            "AdminMAC": "00:00:00:00:00:00", "EffectiveMAC": before.mac.unwrap().to_string(),
            "Vlan": 0, "VlanQoS": 0, "VlanProto": 33024, "MinTxRate": 0, "MaxTxRate": 0,
            "LinkState": 0},
        "DPDKMode": false, "Master": w.pf, "MAC": "", "MTU": before.mtu, "VFID": 1,
        "ContIFNames": "net1", "HostIFNames": vfname, "deviceID": w.vf(1),
        "DeviceInfo": null, "runtimeConfig": {}, "logLevel": "info"
    });
    std::fs::create_dir_all(w.state_dir().join("pci")).unwrap();
    std::fs::write(w.state_dir().join("ctr-go-net1"), cache.to_string()).unwrap();
    std::fs::write(
        w.state_dir().join("pci").join(w.vf(1)),
        ns.to_str().unwrap(),
    )
    .unwrap();
    // Issue 12 item 11: the DEL's config is one ADD refuses (the NAD was
    // edited since, or holds values only the Go plugin tolerates); DEL
    // works from the cache and succeeds.
    let conf = w.conf(
        1,
        json!({"cniVersion": "0.4.0", "vlan": 5000, "mac": "zz", "link_state": "up",
               "min_tx_rate": 9, "max_tx_rate": 1}),
    );
    let (code, out) = w.cni("ADD", "ctr-x", Some(&ns), &conf);
    assert_eq!((code, out["code"].as_u64()), (1, Some(7)), "{out}");
    let (code, out) = w.cni("DEL", "ctr-go", Some(&ns), &conf);
    assert_eq!(code, 0, "{out}");
    let after = host().link(LinkId::from(&vfname)).unwrap();
    assert_eq!((after.mac, after.mtu), (before.mac, before.mtu));
    assert!(w.state_files().is_empty());
    assert_eq!(w.alloc(1), None);
}

/// Issue 12 item 13: ADD waits for the Go plugin's lock on the VF
/// (`<dataDir>/pci/vf_lock/<pci>.lock`, flock), here held by util-linux
/// `flock` in another process as the Go plugin would hold it.
#[test]
fn add_waits_for_the_go_plugins_vf_lock() {
    let Some(mut w) = World::new("add_waits_for_the_go_plugins_vf_lock") else {
        return;
    };
    if Command::new("flock").arg("--version").output().is_err() {
        eprintln!("SKIP add_waits_for_the_go_plugins_vf_lock: util-linux flock not installed");
        return;
    }
    let ns = w.netns("l");
    let lock = w
        .state_dir()
        .join("pci/vf_lock")
        .join(format!("{}.lock", w.vf(0)));
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "1.5"])
        .spawn()
        .unwrap();
    // until flock holds it
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline
        && Command::new("flock")
            .args(["-n", "-E", "75"])
            .arg(&lock)
            .arg("true")
            .status()
            .unwrap()
            .code()
            == Some(0)
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let start = std::time::Instant::now();
    let conf = w.conf(0, json!({}));
    let (code, res) = w.cni("ADD", "ctr-l", Some(&ns), &conf);
    let waited = start.elapsed();
    holder.wait().unwrap();
    assert_eq!(code, 0, "{res}");
    assert!(
        waited >= std::time::Duration::from_millis(800),
        "ADD did not wait for the lock: {waited:?}"
    );
    let (code, out) = w.cni("DEL", "ctr-l", Some(&ns), &conf);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn late_del_leaves_the_new_owner_alone() {
    let Some(mut w) = World::new("late_del_leaves_the_new_owner_alone") else {
        return;
    };
    let ns_a = w.netns("old");
    let ns_b = w.netns("new");
    let vfname = w.vf_name(0);
    let conf = w.conf(0, json!({}));
    let (code, res) = w.cni("ADD", "ctr-old", Some(&ns_a), &conf);
    assert_eq!(code, 0, "{res}");
    // Pod A goes away without a DEL; the kernel returns a real VF to the
    // host (done here by hand: a veth would die with the namespace).
    let a_name = ns_a.file_name().unwrap().to_str().unwrap().to_owned();
    for args in [
        vec!["-n", &a_name, "link", "set", "net1", "down"],
        vec!["-n", &a_name, "link", "set", "net1", "netns", "1"],
        vec!["link", "set", "net1", "name", &vfname],
    ] {
        assert!(
            Command::new("ip").args(&args).status().unwrap().success(),
            "{args:?}"
        );
    }
    w.drop_netns(&ns_a);
    w.wait_sysfs(0);
    // B gets the same VF (A's allocation record names a dead netns).
    let (code, res) = w.cni("ADD", "ctr-new", Some(&ns_b), &conf);
    assert_eq!(code, 0, "{res}");
    // A's late DEL must not touch B's VF.
    let (code, out) = w.cni("DEL", "ctr-old", Some(&ns_a), &conf);
    assert_eq!(code, 0, "{out}");
    assert!(
        in_ns(&ns_b).link(LinkId::from("net1")).is_ok(),
        "B keeps its VF"
    );
    assert_eq!(w.alloc(0).as_deref(), Some(ns_b.to_str().unwrap()));
    assert_eq!(w.state_files(), vec!["ctr-new-net1"]);
    let (code, _) = w.cni("DEL", "ctr-new", Some(&ns_b), &conf);
    assert_eq!(code, 0);
    assert!(host().link(LinkId::from(&vfname)).is_ok());
}

#[test]
fn two_adds_racing_for_one_vf() {
    let Some(mut w) = World::new("two_adds_racing_for_one_vf") else {
        return;
    };
    let ns1 = w.netns("r1");
    let ns2 = w.netns("r2");
    let conf = w.conf(0, json!({"ipam": w.ipam()}));
    let (a, b) = std::thread::scope(|s| {
        let t1 = s.spawn(|| w.cni("ADD", "race-1", Some(&ns1), &conf));
        let t2 = s.spawn(|| w.cni("ADD", "race-2", Some(&ns2), &conf));
        (t1.join().unwrap(), t2.join().unwrap())
    });
    let mut codes = vec![(a.0, a.1["code"].as_u64()), (b.0, b.1["code"].as_u64())];
    codes.sort();
    assert_eq!(codes, vec![(0, None), (1, Some(101))], "{a:?} {b:?}");
    let (winner, ns) = if a.0 == 0 {
        ("race-1", &ns1)
    } else {
        ("race-2", &ns2)
    };
    assert_eq!(w.state_files(), vec![format!("{winner}-net1")]);
    let (code, _) = w.cni("DEL", winner, Some(ns), &conf);
    assert_eq!(code, 0);
    assert!(w.state_files().is_empty());
}

#[test]
fn gc_releases_attachments_not_listed() {
    let Some(mut w) = World::new("gc_releases_attachments_not_listed") else {
        return;
    };
    let ns1 = w.netns("g1");
    let ns2 = w.netns("g2");
    let conf = w.conf(0, json!({"ipam": w.ipam()}));
    let (code, _) = w.cni("ADD", "keep", Some(&ns1), &conf);
    assert_eq!(code, 0);
    let conf1 = w.conf(1, json!({"ipam": w.ipam()}));
    let (code, _) = w.cni("ADD", "stale", Some(&ns2), &conf1);
    assert_eq!(code, 0);
    let mut gc = w.conf(
        0,
        json!({"ipam": w.ipam(), "cniVersion": "1.1.0",
        "cni.dev/valid-attachments": [{"containerID": "keep", "ifname": "net1"}]}),
    );
    gc.as_object_mut().unwrap().remove("deviceID");
    let (code, out) = w.cni("GC", "", None, &gc);
    assert_eq!(code, 0, "{out}");
    assert_eq!(w.state_files(), vec!["keep-net1"]);
    assert!(
        in_ns(&ns2).link(LinkId::from("net1")).is_err(),
        "stale VF returned"
    );
    assert!(host().link(LinkId::from(&w.vf_name(1))).is_ok());
    assert!(
        in_ns(&ns1).link(LinkId::from("net1")).is_ok(),
        "valid one kept"
    );
    // STATUS
    let (code, out) = w.cni("STATUS", "", None, &gc);
    assert_eq!(code, 0, "{out}");
    let (code, _) = w.cni("DEL", "keep", Some(&ns1), &conf);
    assert_eq!(code, 0);
}

#[test]
fn del_finds_a_vf_the_kernel_returned_under_its_pod_name() {
    let Some(mut w) = World::new("del_finds_a_vf_the_kernel_returned_under_its_pod_name") else {
        return;
    };
    let ns = w.netns("k");
    let vfname = w.vf_name(1);
    let before = host().link(LinkId::from(&vfname)).unwrap();
    let conf = w.conf(1, json!({"mac": "02:00:00:00:bb:01"}));
    let (code, res) = w.cni("ADD", "ctr-k", Some(&ns), &conf);
    assert_eq!(code, 0, "{res}");
    // What the kernel does to a physical VF when the pod's netns dies: it
    // comes back to the host under its pod name (done by hand: a veth
    // would be destroyed with the namespace).
    let nsname = ns.file_name().unwrap().to_str().unwrap().to_owned();
    for args in [
        vec!["-n", &nsname, "link", "set", "net1", "down"],
        vec!["-n", &nsname, "link", "set", "net1", "netns", "1"],
    ] {
        assert!(
            Command::new("ip").args(&args).status().unwrap().success(),
            "{args:?}"
        );
    }
    w.drop_netns(&ns);
    let net = w
        .sim
        .root()
        .join(format!("sys/bus/pci/devices/{}/net/net1", w.vf(1)));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !net.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(net.exists(), "sysfs lists the VF as net1");
    let (code, out) = w.cni("DEL", "ctr-k", Some(&ns), &conf);
    assert_eq!(code, 0, "{out}");
    let after = host().link(LinkId::from(&vfname)).expect("renamed back");
    assert_eq!((after.mac, after.mtu), (before.mac, before.mtu));
    assert!(host().link(LinkId::from("net1")).is_err());
    assert!(w.state_files().is_empty());
}

/// `runtimeConfig.CNIDeviceInfoFile` (device-info-spec 1.1.0): a file
/// Multus copied from the device plugin gives the VF when the config has no
/// deviceID and is left alone; an absent file is written by ADD (type pci,
/// the VF's and PF's addresses) and removed by DEL, all under the host
/// root. A failed ADD leaves no file behind.
#[test]
fn device_info_file_read_written_and_removed() {
    let Some(mut w) = World::new("device_info_file_read_written_and_removed") else {
        return;
    };
    let root = w.sim.root().to_path_buf();
    let dir = "/var/run/k8s.cni.cncf.io/devinfo/cni";
    let under = |p: &str| root.join(p.trim_start_matches('/'));

    // 1. Multus' copy of the device plugin's file names VF 1; no deviceID.
    let ns = w.netns("di1");
    let copied = format!("{dir}/sriov-net-ctr-di1_net1");
    std::fs::create_dir_all(under(dir)).unwrap();
    let dp_json = format!(
        r#"{{"type":"pci","version":"1.1.0","pci":{{"pci-address":"{}","rdma-device":""}}}}"#,
        w.vf(1)
    );
    std::fs::write(under(&copied), &dp_json).unwrap();
    let mut conf = w.conf(1, json!({"runtimeConfig": {"CNIDeviceInfoFile": copied}}));
    conf.as_object_mut().unwrap().remove("deviceID");
    let (code, res) = w.cni("ADD", "ctr-di1", Some(&ns), &conf);
    assert_eq!(code, 0, "{res}");
    assert_eq!(res["interfaces"][0]["pciID"], w.vf(1));
    assert!(in_ns(&ns).link(LinkId::from("net1")).is_ok());
    assert!(host().link(LinkId::from(&w.vf_name(1))).is_err());
    // Not ours: unchanged by ADD and by DEL (Multus removes it).
    assert_eq!(std::fs::read_to_string(under(&copied)).unwrap(), dp_json);
    let (code, res) = w.cni("DEL", "ctr-di1", Some(&ns), &conf);
    assert_eq!(code, 0, "{res}");
    assert_eq!(std::fs::read_to_string(under(&copied)).unwrap(), dp_json);
    assert!(host().link(LinkId::from(&w.vf_name(1))).is_ok());
    std::fs::remove_file(under(&copied)).unwrap();

    // 2. No file yet: ADD writes it, DEL removes it.
    w.wait_sysfs(0);
    let ns0 = w.netns("di0");
    let ours = format!("{dir}/sriov-net-ctr-di0_net1");
    let conf = w.conf(0, json!({"runtimeConfig": {"CNIDeviceInfoFile": ours}}));
    let (code, res) = w.cni("ADD", "ctr-di0", Some(&ns0), &conf);
    assert_eq!(code, 0, "{res}");
    let written: Value =
        serde_json::from_slice(&std::fs::read(under(&ours)).expect("device-info file written"))
            .unwrap();
    assert_eq!(
        written,
        json!({"type": "pci", "version": "1.1.0",
               "pci": {"pci-address": w.vf(0), "pf-pci-address": PF_PCI}})
    );
    // Not left in the host's real /var/run (it is under the host root).
    assert!(!Path::new(&ours).exists());
    let (code, res) = w.cni("DEL", "ctr-di0", Some(&ns0), &conf);
    assert_eq!(code, 0, "{res}");
    assert!(!under(&ours).exists(), "DEL removes the file ADD wrote");
    assert!(w.state_files().is_empty());

    // 3. No deviceID, no file: a clear config error, nothing written.
    let missing = format!("{dir}/sriov-net-ctr-di2_net1");
    let mut conf = w.conf(0, json!({"runtimeConfig": {"CNIDeviceInfoFile": missing}}));
    conf.as_object_mut().unwrap().remove("deviceID");
    let (code, res) = w.cni("ADD", "ctr-di2", Some(&ns0), &conf);
    assert_eq!((code, res["code"].as_u64()), (1, Some(7)), "{res}");
    assert!(res["msg"].as_str().unwrap().contains("deviceID"), "{res}");
    assert!(!under(&missing).exists());

    // 4. A failing ADD (after the move) leaves no file and no state.
    w.wait_sysfs(0);
    let conf = w.conf(0, json!({"runtimeConfig": {"CNIDeviceInfoFile": ours}}));
    let (code, res) = w.cni_env(
        "ADD",
        "ctr-di3",
        Some(&ns0),
        &conf,
        &[("SRIOV_CNI_TEST_FAIL_AFTER", "move")],
    );
    assert_eq!(code, 1, "{res}");
    assert!(!under(&ours).exists());
    assert!(w.state_files().is_empty());

    // 5. A path that would leave the host root is refused (code 7).
    let conf = w.conf(
        0,
        json!({"runtimeConfig": {"CNIDeviceInfoFile": "/var/run/../../etc/x"}}),
    );
    let (code, res) = w.cni("ADD", "ctr-di4", Some(&ns0), &conf);
    assert_eq!((code, res["code"].as_u64()), (1, Some(7)), "{res}");
    w.drop_netns(&ns);
}

/// The veth peer (in the host) of VF `i`'s netdev, from `ip -o link`
/// (`<vf>@<peer>:`).
fn veth_peer(vf_name: &str) -> String {
    let out = Command::new("ip")
        .args(["-o", "link", "show", "dev", vf_name])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.split(':')
        .nth(1)
        .and_then(|n| n.trim().split('@').nth(1))
        .unwrap_or_else(|| panic!("no veth peer in {s:?}"))
        .to_owned()
}

/// IPv6 from host-local: when ADD returns, the addresses (the assigned
/// one and the link-local one) have finished duplicate address detection
/// (no `tentative` flag), as the CNI's `ipam.ConfigureIface` settles them;
/// the IPv6 default route is in place. Without carrier (the veth's peer
/// down) DAD cannot run: ADD does not stall for the 10 s bound.
#[test]
fn ipv6_addresses_are_not_tentative_when_add_returns() {
    let Some(mut w) = World::new("ipv6_addresses_are_not_tentative_when_add_returns") else {
        return;
    };
    let ipam = json!({"type": "host-local",
        "ranges": [[{"subnet": "fd00:77::/64", "gateway": "fd00:77::1"}]],
        "routes": [{"dst": "::/0"}],
        "dataDir": w.tmp.path().join("ipam6")});
    // Carrier for the VF end: its peer stays in the host; bring it up.
    let peer = veth_peer(&w.vf_name(0));
    let up = |state: &str| {
        let st = Command::new("ip")
            .args(["link", "set", "dev", &peer, state])
            .status()
            .unwrap();
        assert!(st.success(), "ip link set {peer} {state}");
    };
    up("up");
    let ns = w.netns("v6");
    let conf = w.conf(0, json!({"ipam": ipam}));
    let t = std::time::Instant::now();
    let (code, res) = w.cni("ADD", "ctr-v6", Some(&ns), &conf);
    let took = t.elapsed();
    assert_eq!(code, 0, "{res}");
    assert_eq!(res["ips"][0]["address"], "fd00:77::2/64", "{res}");
    let a = addrs(&ns, "net1");
    assert!(a.contains("fd00:77::2/64"), "{a}");
    assert!(a.contains("fe80::"), "link-local address: {a}");
    assert!(
        !a.contains("tentative"),
        "tentative after ADD ({took:?}): {a}"
    );
    assert!(!a.contains("dadfailed"), "{a}");
    let r = Command::new("ip")
        .args([
            "-n",
            ns.file_name().unwrap().to_str().unwrap(),
            "-6",
            "route",
            "show",
        ])
        .output()
        .unwrap();
    let r = String::from_utf8_lossy(&r.stdout).into_owned();
    assert!(r.contains("default via fd00:77::1 dev net1"), "{r}");
    let (code, out) = w.cni("DEL", "ctr-v6", Some(&ns), &conf);
    assert_eq!(code, 0, "{out}");

    // No carrier: DAD cannot complete; ADD returns after a short grace.
    w.wait_sysfs(0);
    up("down");
    let t = std::time::Instant::now();
    let (code, res) = w.cni("ADD", "ctr-v6b", Some(&ns), &conf);
    let took = t.elapsed();
    assert_eq!(code, 0, "{res}");
    let a = addrs(&ns, "net1");
    assert!(a.contains("tentative"), "no carrier, DAD pending: {a}");
    // Not the 10 s bound (a behaviour check with a wide margin, not a
    // speed target).
    assert!(took < std::time::Duration::from_secs(9), "{took:?}");
    let (code, out) = w.cni("DEL", "ctr-v6b", Some(&ns), &conf);
    assert_eq!(code, 0, "{out}");
}

/// Issue 12 item 12: a config without `cniVersion` (0.1.0, as the Go CNI
/// library reads it) works end to end with host-local: the legacy result
/// (`ip4`), the address in the pod, and DEL.
#[test]
fn no_cni_version_gets_a_legacy_result() {
    let Some(mut w) = World::new("no_cni_version_gets_a_legacy_result") else {
        return;
    };
    let ns = w.netns("v");
    let mut conf = w.conf(0, json!({"ipam": w.ipam()}));
    conf.as_object_mut().unwrap().remove("cniVersion");
    let (code, res) = w.cni("ADD", "ctr-v", Some(&ns), &conf);
    assert_eq!(code, 0, "{res}");
    assert_eq!(res["cniVersion"], "0.1.0", "{res}");
    assert_eq!(res["ip4"]["ip"], "10.77.0.2/24", "{res}");
    assert_eq!(res["ip4"]["gateway"], "10.77.0.1", "{res}");
    assert!(res.get("interfaces").is_none(), "{res}");
    assert!(addrs(&ns, "net1").contains("10.77.0.2/24"));
    let (code, out) = w.cni("DEL", "ctr-v", Some(&ns), &conf);
    assert_eq!(code, 0, "{out}");
    assert!(w.state_files().is_empty());
}
