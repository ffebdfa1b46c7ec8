//! ADD+DEL wall and CPU time of the `sriov` plugin beside Debian's
//! `host-device` plugin and the kernel floor (iproute2 doing the two moves)
//! doing the same work: move a veth-backed VF of a simulated node into a
//! network namespace and back, each run as a child process with the CNI
//! environment and the config on stdin. Prints medians without IPAM and
//! with `host-local`; the rounds are interleaved so that a busy moment of
//! the machine slows every case.
//!
//! `cargo bench -p sriov-cni --bench cni` (root, FUSE, netns,
//! containernetworking-plugins in /usr/lib/cni). Rounds: `CNI_BENCH_ROUNDS`
//! (default 101: the kernel's RCU waits inside the two moves vary by
//! several ms from round to round, and 25 rounds gave medians 3 ms apart
//! from one run to the next). `CNI_BENCH_BASELINE=/path/to/sriov` adds another build of
//! the plugin to the same rounds, to measure a change against.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};

use serde_json::{Value, json};
use sriov_host::netns::NamedNetns;
use sriov_sim::lanes::Lane;
use sriov_sim::node::NodeSpec;
use sriov_sim::{SimNode, SimOptions};

const CNI_PATH: &str = "/usr/lib/cni";
const PF_PCI: &str = "0000:3b:00.0";

/// CPU time (user + system) of every child waited for so far.
fn children_cpu() -> Duration {
    let u = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let d =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    d(u.user_time()) + d(u.system_time())
}

/// Wall and CPU time of one or more child processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Cost {
    wall: Duration,
    cpu: Duration,
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, o: Cost) -> Cost {
        Cost {
            wall: self.wall + o.wall,
            cpu: self.cpu + o.cpu,
        }
    }
}

/// Runs `f` (which starts and waits for child processes) and returns
/// what they cost.
fn costed(f: impl FnOnce()) -> Cost {
    let cpu = children_cpu();
    let t = Instant::now();
    f();
    Cost {
        wall: t.elapsed(),
        cpu: children_cpu() - cpu,
    }
}

fn invoke(bin: &Path, cmd: &str, netns: &Path, root: &Path, conf: &Value) -> Cost {
    let cpu = children_cpu();
    let t = Instant::now();
    let mut child = Command::new(bin)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CNI_COMMAND", cmd)
        .env("CNI_CONTAINERID", "bench")
        .env("CNI_IFNAME", "net1")
        .env("CNI_NETNS", netns)
        .env("CNI_PATH", CNI_PATH)
        .env(sriov_host::root::HOST_ROOT_ENV, root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("plugin starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let took = Cost {
        wall: t.elapsed(),
        cpu: children_cpu() - cpu,
    };
    if std::env::var_os("CNI_BENCH_TRACE").is_some() {
        eprintln!(
            "{} {cmd} {:?}\n{}",
            bin.display(),
            took,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        out.status.success(),
        "{} {cmd} failed: {}{}",
        bin.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The median wall and the median CPU time of `v`, each on its own.
fn medians(v: &[Cost]) -> Cost {
    Cost {
        wall: median(v.iter().map(|c| c.wall).collect()),
        cpu: median(v.iter().map(|c| c.cpu).collect()),
    }
}

/// Waits (untimed) until the simulated sysfs lists the VF's netdev again:
/// the simulator follows moves and renames with up to a second's delay (a
/// real sysfs has none), and `sriov` finds the netdev through sysfs.
fn settle(sysfs_net: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !sysfs_net.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        sysfs_net.exists(),
        "{} did not come back",
        sysfs_net.display()
    );
}

/// One plugin's invocation (binary, host root and config), or the kernel
/// floor: the same kernel work by iproute2 (a small C program), one
/// request each way: moved, renamed and set up in the pod (every plugin
/// hands the pod an up interface), moved back and renamed (the move closes
/// the up link: one more RCU grace period than moving a down link).
enum Case<'a> {
    Plugin {
        bin: &'a Path,
        root: &'a Path,
        conf: Value,
    },
    Floor {
        vf_name: &'a str,
        nsname: &'a str,
    },
}

fn ip(args: &[&str]) -> Cost {
    costed(|| {
        let st = Command::new("ip").args(args).status().unwrap();
        assert!(st.success(), "ip {args:?}");
    })
}

/// ADD+DEL of each case, every round, rounds interleaved (a, b, b, a, a,
/// b, …) so that all see the same machine: a busy moment (other processes,
/// the VM's host) slows all instead of one.
fn measure(cases: &[&Case<'_>], netns: &Path, rounds: usize, sysfs_net: &Path) -> Vec<Vec<Cost>> {
    let me = std::process::id().to_string();
    let once = |c: &Case<'_>| {
        settle(sysfs_net);
        match c {
            Case::Plugin { bin, root, conf } => {
                invoke(bin, "ADD", netns, root, conf) + invoke(bin, "DEL", netns, root, conf)
            }
            Case::Floor { vf_name, nsname } => {
                ip(&[
                    "link", "set", "dev", vf_name, "netns", nsname, "name", "net1", "up",
                ]) + ip(&[
                    "-n", nsname, "link", "set", "dev", "net1", "netns", &me, "name", vf_name,
                ])
            }
        }
    };
    // warm-up (page cache, first netns setup)
    for c in cases {
        once(c);
        once(c);
    }
    let mut v = vec![Vec::with_capacity(rounds); cases.len()];
    for r in 0..rounds {
        let mut order: Vec<usize> = (0..cases.len()).collect();
        if r % 2 == 1 {
            order.reverse();
        }
        for i in order {
            v[i].push(once(cases[i]));
        }
    }
    v
}

/// Median of the per-round differences `a - b` (rounds are interleaved, so
/// each pair saw the same machine), in ms.
/// The per-round wall differences `a - b` in ms: first quartile, median,
/// third quartile (the spread says how much one round's kernel waits vary).
fn paired_ms(a: &[Cost], b: &[Cost]) -> [f64; 3] {
    let mut d: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x.wall.as_secs_f64() - y.wall.as_secs_f64()) * 1e3)
        .collect();
    d.sort_by(f64::total_cmp);
    let n = d.len();
    [d[n / 4], d[n / 2], d[(3 * n) / 4]]
}

fn main() {
    for lane in [Lane::Fuse, Lane::Netns] {
        if let Err(why) = lane.available() {
            println!("cni bench skipped: {why}");
            return;
        }
    }
    let host_device = Path::new(CNI_PATH).join("host-device");
    if !host_device.exists() {
        println!(
            "cni bench skipped: {} missing (apt-get install containernetworking-plugins)",
            host_device.display()
        );
        return;
    }
    let rounds: usize = std::env::var("CNI_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(101);
    // Built with the bench profile (release) for this run.
    let sriov = PathBuf::from(env!("CARGO_BIN_EXE_sriov"));
    let tag = format!("{:x}", std::process::id() & 0xff_ffff);
    let pf = format!("b{tag}");
    let yaml = format!(
        "name: bench\npfs:\n  - model: e810\n    address: \"{PF_PCI}\"\n    ifname: {pf}\n    vfs: 1\n"
    );
    let sim = SimNode::start(
        NodeSpec::from_yaml(&yaml, "bench").unwrap(),
        SimOptions {
            veth: true,
            root: None,
        },
    )
    .expect("simulated node");
    let vf_pci = std::fs::read_link(
        sim.root()
            .join(format!("sys/bus/pci/devices/{PF_PCI}/virtfn0")),
    )
    .unwrap()
    .file_name()
    .unwrap()
    .to_string_lossy()
    .into_owned();
    let vf_name = format!("{pf}v0");
    let sysfs_net = sim
        .root()
        .join(format!("sys/bus/pci/devices/{vf_pci}/net/{vf_name}"));
    let ns = NamedNetns::create(&format!("cnibench{tag}")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ipam = |n: &str| json!({"type": "host-local", "subnet": "10.78.0.0/24", "dataDir": tmp.path().join(n)});
    let sriov_conf = |with_ipam: bool| {
        let mut c = json!({"cniVersion": "1.0.0", "name": "bench", "type": "sriov",
            "deviceID": vf_pci, "dataDir": tmp.path().join("state")});
        if std::env::var_os("CNI_BENCH_TRACE").is_some() {
            c["logLevel"] = json!("debug");
        }
        if with_ipam {
            c["ipam"] = ipam("ipam-sriov");
        }
        c
    };
    let hd_conf = |with_ipam: bool| {
        let mut c = json!({"cniVersion": "1.0.0", "name": "bench", "type": "host-device",
            "device": vf_name});
        if with_ipam {
            c["ipam"] = ipam("ipam-hd");
        }
        c
    };
    // The simulator's share: `sriov` with sysfs read from a static copy of
    // the simulated tree (plain files, no FUSE daemon answering each
    // lookup), as a real node's in-kernel sysfs would be.
    settle(&sysfs_net); // the copy must list the VF's netdev
    let copy = tmp.path().join("static-root");
    std::fs::create_dir_all(&copy).unwrap();
    let st = Command::new("cp")
        .arg("-a")
        .arg(sim.root().join("sys"))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(st.success(), "cp -a of the simulated sysfs");
    let nsname = ns.name().to_owned();
    // Another build of `sriov` to compare a change against, in the same
    // interleaved rounds (static sysfs).
    let baseline = std::env::var_os("CNI_BENCH_BASELINE").map(PathBuf::from);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "ADD+DEL of one veth-backed VF into a netns and back, {rounds} interleaved rounds (release build);"
    );
    println!(
        "wall and CPU (user+system of the processes): medians; above the floor: median of per-round wall differences [quartiles]"
    );
    for with_ipam in [false, true] {
        let mut cases = vec![
            (
                "sriov",
                Case::Plugin {
                    bin: &sriov,
                    root: sim.root(),
                    conf: sriov_conf(with_ipam),
                },
            ),
            (
                "sriov, static sysfs",
                Case::Plugin {
                    bin: &sriov,
                    root: &copy,
                    conf: sriov_conf(with_ipam),
                },
            ),
            (
                "host-device",
                Case::Plugin {
                    bin: &host_device,
                    root: sim.root(),
                    conf: hd_conf(with_ipam),
                },
            ),
        ];
        if let Some(b) = &baseline {
            cases.push((
                "baseline, static sysfs",
                Case::Plugin {
                    bin: b,
                    root: &copy,
                    conf: sriov_conf(with_ipam),
                },
            ));
        }
        if !with_ipam {
            cases.push((
                "kernel floor (ip)",
                Case::Floor {
                    vf_name: &vf_name,
                    nsname: &nsname,
                },
            ));
        }
        let only: Vec<&Case<'_>> = cases.iter().map(|(_, c)| c).collect();
        let m = measure(&only, ns.path(), rounds, &sysfs_net);
        let floor = (!with_ipam).then(|| &m[m.len() - 1]);
        println!(
            "{}",
            if with_ipam {
                "host-local IPAM:"
            } else {
                "no IPAM:"
            }
        );
        println!(
            "  {:<24} {:>10} {:>10} {:>28}",
            "", "wall", "CPU", "above floor [quartiles]"
        );
        for ((name, _), v) in cases.iter().zip(&m) {
            let c = medians(v);
            let above = match floor {
                Some(f) if !std::ptr::eq(f, v) => {
                    let [q1, m, q3] = paired_ms(v, f);
                    format!("{m:+.2} ms [{q1:+.1}, {q3:+.1}]")
                }
                _ => String::new(),
            };
            println!(
                "  {name:<24} {:>7.2} ms {:>7.2} ms {above:>28}",
                ms(c.wall),
                ms(c.cpu)
            );
        }
    }
    drop(ns);
    drop(sim);
}
