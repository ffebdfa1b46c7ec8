//! Render benchmark (harness = false, prints figures):
//! - full render of 5,000 nodes × 50 policies, 4 PFs reported per node
//!   (node state specs + the device-plugin ConfigMap data), target < 1 s;
//! - one policy changed: only the nodes its selector matches are rendered;
//! - RSS with 5,000 node states (4 PFs × 16 VFs in status each) cached.
//!
//! `cargo bench -p sriov-network-operator --bench render`

use std::collections::BTreeMap;
use std::time::Instant;

use kube::ResourceExt;
use serde_json::json;
use sriov_crds::nic_ids::NicIdList;
use sriov_crds::{SriovNetworkNodePolicy, SriovNetworkNodeState};
use sriov_operator::render::node::{NodeContext, NodeRender, render_node};

const NODES: usize = 5_000;
const POLICIES: usize = 50;
const GROUPS: usize = 10;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn policy(i: usize, mtu: i32) -> SriovNetworkNodePolicy {
    let pf = (i / GROUPS) % 4;
    let start = (i / (GROUPS * 4)) * 8;
    serde_json::from_value(json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodePolicy",
        "metadata": {"name": format!("policy-{i:02}"), "namespace": "sriov-network-operator"},
        "spec": {
            "resourceName": format!("res_{i:02}"),
            "numVfs": 16, "mtu": mtu, "priority": (i % 3) as i32,
            "nodeSelector": {"group": format!("g{}", i % GROUPS)},
            "nicSelector": {"pfNames": [format!("ens{pf}f0#{start}-{}", start + 7)]},
            "deviceType": if i.is_multiple_of(2) { "netdevice" } else { "vfio-pci" }
        }
    }))
    .unwrap()
}

fn state(n: usize) -> SriovNetworkNodeState {
    let pfs: Vec<_> = (0..4)
        .map(|p| {
            let vfs: Vec<_> = (0..16)
                .map(|v| json!({"name": format!("ens{p}f0v{v}"), "pciAddress": format!("0000:{:02x}:02.{v}", 0x3b + p),
                    "vendor": "8086", "deviceID": "154c", "driver": "iavf", "mtu": 1500, "vfID": v,
                    "mac": "02:00:00:00:00:01"}))
                .collect();
            json!({"name": format!("ens{p}f0"), "pciAddress": format!("0000:{:02x}:00.0", 0x3b + p),
                "vendor": "8086", "deviceID": "158b", "driver": "i40e", "mtu": 1500, "numVfs": 16,
                "totalvfs": 64, "linkType": "ETH", "linkSpeed": "25000 Mb/s", "mac": "3c:fd:fe:00:00:00",
                "Vfs": vfs})
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeState",
        "metadata": {"name": format!("node-{n:05}"), "namespace": "sriov-network-operator"},
        "spec": {},
        "status": {"syncStatus": "Succeeded", "interfaces": pfs}
    }))
    .unwrap()
}

fn labels(n: usize) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("group".to_string(), format!("g{}", n % GROUPS)),
        ("node-role.kubernetes.io/worker".to_string(), String::new()),
    ])
}

fn main() {
    let rss0 = rss_kib();
    // Cached as the operator caches them (VF lists dropped: slim_node_state).
    let states: Vec<SriovNetworkNodeState> = (0..NODES)
        .map(|n| {
            let mut s = state(n);
            sriov_operator::controllers::run::slim_node_state(&mut s);
            s
        })
        .collect();
    let node_labels: Vec<BTreeMap<String, String>> = (0..NODES).map(labels).collect();
    let rss1 = rss_kib();
    let mut policies: Vec<SriovNetworkNodePolicy> =
        (0..POLICIES).map(|i| policy(i, 1500)).collect();
    let nics = NicIdList::builtin();

    let mut best = f64::MAX;
    let mut renders: BTreeMap<String, NodeRender> = BTreeMap::new();
    for _ in 0..3 {
        let t = Instant::now();
        let ctx = NodeContext {
            policies: &policies,
            pools: &[],
            nics: &nics,
        };
        renders = states
            .iter()
            .zip(&node_labels)
            .map(|(s, l)| {
                let name = s.name_any();
                let r = render_node(ctx, &name, l, Some(s));
                (name, r)
            })
            .collect();
        let data: BTreeMap<&String, &String> = renders
            .iter()
            .map(|(k, r)| (k, &r.device_plugin_json))
            .collect();
        std::hint::black_box(&data);
        best = best.min(t.elapsed().as_secs_f64());
    }
    let groups: usize = renders
        .values()
        .map(|r| {
            r.spec
                .interfaces
                .iter()
                .map(|i| i.vf_groups.len())
                .sum::<usize>()
        })
        .sum();
    println!(
        "full render: {NODES} nodes x {POLICIES} policies x 4 PFs: {:.0} ms (best of 3; {groups} VF groups, target < 1000 ms)",
        best * 1e3
    );
    let rss2 = rss_kib();

    // One policy changes (mtu): only the nodes its nodeSelector matches are rendered again.
    policies[7] = policy(7, 9000);
    let t = Instant::now();
    let sel = policies[7].spec.node_selector.clone();
    let ctx = NodeContext {
        policies: &policies,
        pools: &[],
        nics: &nics,
    };
    let mut touched = 0;
    let mut changed = 0;
    for (s, l) in states.iter().zip(&node_labels) {
        if !sel.iter().all(|(k, v)| l.get(k) == Some(v)) {
            continue;
        }
        touched += 1;
        let name = s.name_any();
        let r = render_node(ctx, &name, l, Some(s));
        if renders.get(&name).map(|o| &o.spec) != Some(&r.spec) {
            changed += 1;
        }
        renders.insert(name, r);
    }
    let one = t.elapsed();
    println!(
        "one policy changed: {touched} of {NODES} nodes re-rendered ({changed} specs differ, {} ms)",
        one.as_secs_f64() * 1e3
    );
    println!(
        "RSS: {} MiB at start, {} MiB with {NODES} node states (4 PFs x 16 VFs reported, VF lists dropped as the operator caches them) (+{} MiB), {} MiB with their renders (target < 150 MiB)",
        rss0 / 1024,
        rss1 / 1024,
        (rss1 - rss0) / 1024,
        rss2 / 1024
    );
}
