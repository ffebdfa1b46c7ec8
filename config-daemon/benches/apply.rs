//! Benchmark: 4 E810 PFs x 64 VFs on the simulator (FUSE), two groups per PF
//! (VFs 0-31 netdevice, 32-63 vfio-pci), from 0 VFs to configured and back
//! (the policies removed: the PFs this daemon configured are reset), with
//! the apply's waits on uevents (the default) and, for comparison, polling
//! every 10 ms; rounds of the two modes alternate.
//! Run as root: `cargo bench -p sriov-config-daemon --bench apply`.

use std::time::{Duration, Instant};

use sriov_config_daemon::apply::{ApplyOptions, WaitMode};
use sriov_config_daemon::standalone::{RunEnv, RunReport, StandaloneConfig, run_once_in_env};
use sriov_host::HostRoot;
use sriov_host::netlink::{LinkOps, Netlink};
use sriov_sim::lanes::{self, Lane};
use sriov_sim::{SimNode, SimOptions};

const ROUNDS: usize = 5;

fn policies() -> String {
    let pfs = ["ens1f0", "ens1f1", "ens2f0", "ens2f1"];
    let list = |r: &str| {
        pfs.iter()
            .map(|p| format!("\"{p}#{r}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        r#"apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {{name: net}}
spec:
  resourceName: net
  nodeSelector: {{}}
  numVfs: 64
  mtu: 9000
  nicSelector: {{vendor: "8086", pfNames: [{a}]}}
  deviceType: netdevice
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {{name: dpdk}}
spec:
  resourceName: dpdk
  nodeSelector: {{}}
  numVfs: 64
  nicSelector: {{vendor: "8086", pfNames: [{b}]}}
  deviceType: vfio-pci
"#,
        a = list("0-31"),
        b = list("32-63")
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if !lanes::require("config-daemon apply benchmark", &[Lane::Fuse]) {
        return;
    }
    let sim = SimNode::start("scale:4:0", SimOptions::default()).expect("simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let on = dir.path().join("on.yaml");
    let off = dir.path().join("off.yaml");
    std::fs::write(&on, policies()).unwrap();
    std::fs::write(&off, "").unwrap();
    let cfg = |policies: &std::path::Path| StandaloneConfig {
        host_root: HostRoot::new(sim.root()),
        policies: policies.to_path_buf(),
        node_name: "bench".into(),
        node_labels: Default::default(),
        dry_run: false,
        device_plugin_config: Some(dir.path().join("config.json")),
        state_dir: dir.path().join("state"),
        apply: ApplyOptions::default(),
        allow_disruption: false,
    };
    let (up_cfg, down_cfg) = (cfg(&on), cfg(&off));
    // As `run_once` does: a netlink handle per run (the simulated PFs are
    // not visible over it, so no netlink steps are planned).
    let run = |cfg: &StandaloneConfig, waits: WaitMode| -> RunReport {
        let nl = Netlink::open().expect("netlink");
        let env = RunEnv {
            links: Ok(&nl as &dyn LinkOps),
            waits,
        };
        run_once_in_env(cfg, &env).expect("run")
    };
    let modes = [(WaitMode::Uevents, "uevents"), (WaitMode::Poll, "polling")];
    let mut times: Vec<[Vec<Duration>; 3]> = vec![Default::default(), Default::default()];
    for _ in 0..ROUNDS {
        for (m, (mode, _)) in modes.iter().enumerate() {
            let [up, noop, down] = &mut times[m];
            let t = Instant::now();
            let r = run(&up_cfg, *mode);
            up.push(t.elapsed());
            assert!(!r.failed(), "{}", r.error_text());
            let t = Instant::now();
            let r = run(&up_cfg, *mode);
            noop.push(t.elapsed());
            assert!(r.plan.is_empty());
            let t = Instant::now();
            let r = run(&down_cfg, *mode);
            down.push(t.elapsed());
            assert!(!r.failed(), "{}", r.error_text());
        }
    }
    println!(
        "sriov-config-daemon apply benchmark (4 E810 PFs x 64 VFs, VFs 0-31 netdevice + MTU 9000, 32-63 vfio-pci; FUSE simulator, {ROUNDS} rounds, median)"
    );
    let ms = |v: &[Duration]| median(v.to_vec()).as_secs_f64() * 1e3;
    for (m, (_, name)) in modes.iter().enumerate() {
        let [up, noop, down] = &times[m];
        println!("  waits on {name}:");
        println!(
            "    0 -> configured (256 VFs, 128 vfio-pci binds, 128 VF MTUs, scans, config): {:.0} ms",
            ms(up)
        );
        println!(
            "    configured, second run (scan + plan, nothing written):                    {:.0} ms",
            ms(noop)
        );
        println!(
            "    configured -> 0 (policies removed, PFs reset):                            {:.0} ms",
            ms(down)
        );
    }
}
