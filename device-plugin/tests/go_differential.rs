//! Ours beside upstream's Go plugin (issue 16; docs/testing.md, "Go
//! peers"): the same simulated node, the same config files (a corpus of
//! every selector, `deviceType`, per-resource `resourcePrefix`, selector
//! lists, pfName ranges, `excludeTopology`, `additionalInfo`), the same test
//! kubelet. Both must register the same resources with the same devices
//! (IDs, health, topology) and give the same Allocate answers (env vars
//! with the `_INFO` JSON, device specs, mounts, annotations) and the same
//! device-info files.
//!
//! Upstream's binary is not built here (the Go module proxy refuses
//! sriov-network-device-plugin): `SRIOV_GO_SRIOVDP` names a `sriovdp` built
//! outside this tree. Without it, or without root, the test prints `SKIP`;
//! `SRIOV_REQUIRE_LANES` with `go-dp` makes a missing binary a failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sriov_device_plugin::api::{AllocateRequest, ContainerAllocateRequest, ListAndWatchResponse};
use sriov_device_plugin::go_peer::GoPlugin;
use sriov_device_plugin::test_kubelet::{TestKubelet, Watch};
use sriov_sim::lanes::{Lane, require};

const BIN: &str = env!("CARGO_BIN_EXE_sriov-device-plugin");

/// Intel E810 VFs on iavf and vfio-pci over two ports of two cards, a
/// ConnectX-6 Dx with mlx5 VFs, NUMA 0 and 1.
const NODE: &str = r#"
name: godiff
pfs:
  - model: e810
    address: "0000:3b:00.0"
    ifname: ens1f0
    numa: 0
    vfs: 4
    vf_drivers: {2: vfio-pci, 3: vfio-pci}
  - model: e810
    address: "0000:3b:00.1"
    ifname: ens1f1
    numa: 0
    vfs: 2
  - model: e810
    address: "0000:5e:00.0"
    ifname: ens2f0
    numa: 1
    vfs: 3
  - model: cx6dx
    address: "0000:af:00.0"
    ifname: ens3f0np0
    numa: 1
    vfs: 2
"#;

/// The configs, each a whole file as the operator writes it.
fn corpus() -> Vec<(&'static str, Value)> {
    vec![
        (
            "vendors-devices-drivers",
            json!({"resourceList": [
                {"resourceName": "iavf", "selectors": {"vendors": ["8086"], "devices": ["1889"], "drivers": ["iavf"]}},
                {"resourceName": "mlx", "selectors": {"vendors": ["15b3"], "drivers": ["mlx5_core"]}}
            ]}),
        ),
        (
            "vfio",
            json!({"resourceList": [
                {"resourceName": "dpdk", "selectors": {"drivers": ["vfio-pci"]}}
            ]}),
        ),
        (
            "pfnames-ranges",
            json!({"resourceList": [
                {"resourceName": "a", "selectors": {"pfNames": ["ens1f0#0-1", "ens1f1#1"]}},
                {"resourceName": "b", "selectors": {"pfNames": ["ens2f0#0,2"]}}
            ]}),
        ),
        (
            "rootdevices-linktypes",
            json!({"resourceList": [
                {"resourceName": "root", "selectors": {"rootDevices": ["0000:3b:00.1"]}},
                {"resourceName": "eth", "selectors": {"linkTypes": ["ether"], "pfNames": ["ens2f0"]}}
            ]}),
        ),
        (
            "selector-list-prefix",
            json!({"resourceList": [
                {"resourceName": "list", "resourcePrefix": "example.com",
                 "selectors": [{"pfNames": ["ens1f1"]}, {"vendors": ["15b3"]}]}
            ]}),
        ),
        (
            "exclude-topology-additional-info",
            json!({"resourceList": [
                {"resourceName": "notopo", "excludeTopology": true,
                 "selectors": {"pfNames": ["ens2f0"]},
                 "additionalInfo": {"*": {"token": "t0"}, "0000:5e:01.0": {"mode": "special"}}}
            ]}),
        ),
    ]
}

fn go_binary(test: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SRIOV_GO_SRIOVDP").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let required = std::env::var("SRIOV_REQUIRE_LANES")
        .is_ok_and(|v| v.split(',').any(|l| l.trim() == "go-dp"));
    assert!(
        !required,
        "{test}: lane `go-dp` is required but SRIOV_GO_SRIOVDP names no binary"
    );
    eprintln!(
        "SKIP {test}: no upstream sriovdp (set SRIOV_GO_SRIOVDP; docs/testing.md, \"Go peers\")"
    );
    None
}

/// One pool as the kubelet saw it.
#[derive(Debug, PartialEq)]
struct Pool {
    /// (ID, health, NUMA nodes), sorted by ID.
    devices: Vec<(String, String, Vec<i64>)>,
    /// Allocate of each device alone, then of the first two together.
    allocations: Vec<Value>,
}

/// What a plugin served, by resource name, and the device-info files it
/// wrote.
#[derive(Debug, PartialEq)]
struct Served {
    pools: BTreeMap<String, Pool>,
    devinfo: BTreeMap<String, Value>,
}

fn response_json(r: &sriov_device_plugin::api::ContainerAllocateResponse) -> Value {
    let mut specs: Vec<Value> = r
        .devices
        .iter()
        .map(|d| json!([d.container_path, d.host_path, d.permissions]))
        .collect();
    specs.sort_by_key(|v| v.to_string());
    let mut mounts: Vec<Value> = r
        .mounts
        .iter()
        .map(|m| json!([m.container_path, m.host_path, m.read_only]))
        .collect();
    mounts.sort_by_key(|v| v.to_string());
    let envs: BTreeMap<&String, Value> = r
        .envs
        .iter()
        .map(|(k, v)| {
            // `_INFO` values are JSON: compared as JSON (key order free).
            let v = serde_json::from_str::<Value>(v)
                .ok()
                .filter(|_| k.ends_with("_INFO"))
                .unwrap_or_else(|| json!(v));
            (k, v)
        })
        .collect();
    // `vfio.dev-mount` in `_INFO`: upstream v3.9.0 sets it only once that
    // device's specs were computed before its env (a provider's state), so
    // a device's first Allocate lacks it; ours always sets it
    // (docs/differences.md). Checked to be one of the response's device
    // specs, then compared without.
    let mut envs = envs;
    for v in envs.values_mut() {
        let Some(devs) = v.as_object_mut() else {
            continue;
        };
        for d in devs.values_mut() {
            if let Some(m) = d.get_mut("vfio").and_then(Value::as_object_mut)
                && let Some(dm) = m.remove("dev-mount")
            {
                assert!(
                    specs.iter().any(|s| s[0] == dm),
                    "dev-mount {dm} is not among the device specs {specs:?}"
                );
            }
        }
    }
    let annotations: BTreeMap<&String, &String> = r.annotations.iter().collect();
    json!({"envs": envs, "devices": specs, "mounts": mounts, "annotations": annotations})
}

/// Registrations, first lists and Allocate answers from whichever plugin
/// registers with `kubelet`. The resources are read once registrations
/// have been quiet for a second.
async fn collect(kubelet: &TestKubelet, devinfo: &Path) -> Served {
    let start = Instant::now();
    let mut last = (0, Instant::now());
    loop {
        let n = kubelet.registrations().len();
        if n != last.0 {
            last = (n, Instant::now());
        }
        if n > 0 && last.1.elapsed() > Duration::from_secs(1) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no registration in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut pools = BTreeMap::new();
    for r in kubelet.registrations() {
        let mut c = kubelet.client(&r.endpoint).await.unwrap();
        let m: ListAndWatchResponse = Watch::open(&mut c)
            .await
            .unwrap()
            .next(Duration::from_secs(5))
            .await
            .expect("a first device list");
        let mut devices: Vec<(String, String, Vec<i64>)> = m
            .devices
            .iter()
            .map(|d| {
                let numa = d
                    .topology
                    .as_ref()
                    .map(|t| t.nodes.iter().map(|n| n.id).collect())
                    .unwrap_or_default();
                (d.id.clone(), d.health.clone(), numa)
            })
            .collect();
        devices.sort();
        let ids: Vec<String> = devices.iter().map(|d| d.0.clone()).collect();
        let mut requests: Vec<Vec<String>> = ids.iter().map(|i| vec![i.clone()]).collect();
        if ids.len() >= 2 {
            requests.push(ids[..2].to_vec());
        }
        let mut allocations = Vec::new();
        for devices_ids in requests {
            let resp = c
                .allocate(AllocateRequest {
                    container_requests: vec![ContainerAllocateRequest { devices_ids }],
                })
                .await
                .expect("Allocate")
                .into_inner();
            allocations.extend(resp.container_responses.iter().map(response_json));
        }
        pools.insert(
            r.resource.clone(),
            Pool {
                devices,
                allocations,
            },
        );
    }
    let mut files = BTreeMap::new();
    for e in std::fs::read_dir(devinfo).unwrap().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap();
        files.insert(
            e.file_name().to_string_lossy().into_owned(),
            serde_json::from_str(&text).unwrap_or(json!(text)),
        );
    }
    Served {
        pools,
        devinfo: files,
    }
}

/// Runs one plugin (ours when `go` is `None`) on the tree with `config`.
async fn serve(root: &Path, config: &Path, go: Option<&Path>, tag: &str) -> Served {
    let kp = root.join(format!("kp-{tag}"));
    let devinfo = root.join(format!("devinfo-{tag}"));
    std::fs::create_dir_all(&kp).unwrap();
    std::fs::create_dir_all(&devinfo).unwrap();
    let kubelet = TestKubelet::start(&kp).unwrap();
    let served = match go {
        Some(bin) => {
            let log = root.join(format!("{tag}.log"));
            let _plugin = GoPlugin::start(
                bin,
                root,
                config,
                &kp,
                &devinfo,
                &["--resource-prefix", "intel.com"],
                Some(&log),
            )
            .expect("start upstream's plugin");
            collect(&kubelet, &devinfo).await
        }
        None => {
            let mut child = Command::new(BIN)
                .arg("--host-root")
                .arg(root)
                // Both directories are under --host-root, as on a node.
                .arg("--device-plugin-dir")
                .arg(format!("kp-{tag}"))
                .arg("--devinfo-dir")
                .arg(format!("devinfo-{tag}"))
                .arg("--config-file")
                .arg(config)
                .args(["--resource-prefix", "intel.com"])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            let served = collect(&kubelet, &devinfo).await;
            let _ = child.kill();
            let _ = child.wait();
            served
        }
    };
    drop(kubelet);
    let _ = std::fs::remove_dir_all(&kp);
    let _ = std::fs::remove_dir_all(&devinfo);
    served
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_and_ours_serve_the_same_pools_and_allocations() {
    let test = "go_and_ours_serve_the_same_pools_and_allocations";
    if !require(test, &[Lane::Netns]) {
        return;
    }
    let Some(go) = go_binary(test) else { return };
    let tree = tempfile::Builder::new().prefix("dpgo").tempdir().unwrap();
    let spec = sriov_sim::node::NodeSpec::from_yaml(NODE, "godiff").unwrap();
    sriov_sim::kernel::write_static_tree(tree.path(), &spec).unwrap();
    let root = tree.path();
    let mut compared = 0;
    for (name, config) in corpus() {
        let file = root.join(format!("{name}.json"));
        std::fs::write(&file, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let theirs = serve(root, &file, Some(&go), &format!("go-{name}")).await;
        let ours = serve(root, &file, None, &format!("ours-{name}")).await;
        assert!(!theirs.pools.is_empty(), "{name}: upstream served nothing");
        // Ours registers a resource whose selectors match nothing yet
        // (devices created later are served without a restart); upstream
        // skips it. docs/differences.md.
        let ours_pools: BTreeMap<String, Pool> = ours
            .pools
            .into_iter()
            .filter(|(r, p)| !p.devices.is_empty() || theirs.pools.contains_key(r))
            .collect();
        // Ours also writes `pf-pci-address` (device-info-spec 1.1.0),
        // which upstream leaves out (docs/differences.md): checked to be
        // the VF's PF, then compared without.
        let mut devinfo = ours.devinfo;
        for (f, v) in devinfo.iter_mut() {
            if let Some(pci) = v.get_mut("pci").and_then(Value::as_object_mut)
                && let Some(pf) = pci.remove("pf-pci-address")
            {
                let vf = pci["pci-address"].as_str().unwrap_or_default();
                let physfn =
                    std::fs::read_link(root.join("sys/bus/pci/devices").join(vf).join("physfn"))
                        .unwrap_or_default();
                assert_eq!(
                    pf.as_str(),
                    physfn.file_name().and_then(|n| n.to_str()),
                    "{name}: {f}: pf-pci-address"
                );
            }
        }
        let ours = Served {
            pools: ours_pools,
            devinfo,
        };
        for (r, p) in &theirs.pools {
            assert_eq!(ours.pools.get(r), Some(p), "{name}: resource {r}");
        }
        assert_eq!(
            ours.devinfo.keys().collect::<Vec<_>>(),
            theirs.devinfo.keys().collect::<Vec<_>>(),
            "{name}: device-info files"
        );
        for (f, v) in &theirs.devinfo {
            assert_eq!(ours.devinfo.get(f), Some(v), "{name}: device-info file {f}");
        }
        assert_eq!(ours, theirs, "{name}");
        compared += theirs.pools.len();
    }
    eprintln!("{compared} pools compared over {} configs", corpus().len());
}
