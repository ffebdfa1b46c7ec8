//! Discovery speed: a whole-node scan of 8 PFs with 128 VFs each (1,024 VFs,
//! every VF on iavf with a netdev — the most files to read), built in a temp
//! dir with the kernel's layout. Target: under 50 ms. Prints the figures.
//!
//! `cargo bench -p sriov-host --bench discovery`
//!
//! `DISCOVERY_TREE=<dir>` builds the tree there once and reuses it on later
//! runs (to count system calls or instructions of the scans alone with
//! `strace -c -f` or `valgrind --tool=callgrind`); `DISCOVERY_RUNS=<n>` sets
//! the number of timed scans (default 30).

use std::time::{Duration, Instant};

use sriov_host::root::HostRoot;
use sriov_host::scan::{Detail, scan, scan_detail};
use sriov_sim::tree::{Netdev, PciFunction, SriovCaps, SysfsTree, vf_address};

const PFS: u32 = 8;
const VFS_PER_PF: u32 = 128;
const RUNS: usize = 30;

fn main() {
    let runs: usize = std::env::var("DISCOVERY_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(RUNS);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = match std::env::var_os("DISCOVERY_TREE") {
        Some(d) => std::path::PathBuf::from(d),
        None => tmp.path().to_path_buf(),
    };
    let marker = dir.join(".discovery-tree-complete");
    if marker.exists() {
        println!("reusing the tree in {}", dir.display());
    } else {
        std::fs::create_dir_all(&dir).expect("tree dir");
        let built = Instant::now();
        build(&dir);
        std::fs::write(&marker, "").expect("marker");
        println!(
            "built a tree of {PFS} PFs x {VFS_PER_PF} VFs in {:.1} s ({})",
            built.elapsed().as_secs_f64(),
            dir.display()
        );
    }
    let root = HostRoot::new(&dir);

    // Warm the page cache and check the result once.
    let node = scan(&root).expect("scan");
    let vfs = node.vfs().count();
    assert_eq!(vfs, (PFS * VFS_PER_PF) as usize, "every VF found");
    assert_eq!(node.len(), (PFS * (VFS_PER_PF + 1)) as usize);
    for pf in node.pfs() {
        assert_eq!(node.vfs_of(&pf.address).len(), VFS_PER_PF as usize);
    }

    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "discovery of {vfs} VFs on {PFS} PFs ({} functions, {cores} cores), {runs} runs each, target < 50 ms:",
        node.len()
    );
    let only = std::env::var("DISCOVERY_DETAIL").ok();
    for (name, detail) in [("full", Detail::Full), ("selection", Detail::Selection)] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let n = scan_detail(&root, detail).expect("scan");
        assert_eq!(n.len(), node.len());
        assert_eq!(n.vfs().count(), vfs);
        timed(&root, detail, name, runs, node.len());
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average while measuring: {} (wall figures grow with other load; CPU time less so)",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

/// Times `runs` scans at `detail` and prints the figures.
fn timed(root: &HostRoot, detail: Detail, name: &str, runs: usize, len: usize) {
    let cpu_before = cpu_time();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let n = scan_detail(root, detail).expect("scan");
            let d = t.elapsed();
            assert_eq!(n.len(), len);
            d
        })
        .collect();
    let cpu_per_scan = (cpu_time() - cpu_before) / runs as u32;
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "  {name:>9} (Detail::{detail:?}): median {:.1} ms, min {:.1} ms, max {:.1} ms; \
         CPU time per scan {:.1} ms (user + system, all threads)",
        ms(times[runs / 2]),
        ms(times[0]),
        ms(times[runs - 1]),
        ms(cpu_per_scan),
    );
}

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn build(root: &std::path::Path) {
    let mut t = SysfsTree::on_disk(root).expect("tree");
    for p in 0..PFS {
        // Two PFs per bus, VFs behind them on the same bus (offset 16 from
        // function 0, 15 from function 1; 128 VFs need 16 device numbers).
        let bus = 0x18 + (p / 2) * 0x10;
        let func = p % 2;
        let pf = format!("0000:{bus:02x}:00.{func}");
        let mut f = PciFunction::ethernet(&pf, 0x8086, 0x1593);
        f.numa_node = (p / 4) as i32;
        f.iommu_group = Some(p * 200);
        t.add_function(&f).expect("pf");
        let offset = 16 - func + func * VFS_PER_PF;
        t.set_sriov(
            &pf,
            &SriovCaps {
                totalvfs: 256,
                numvfs: VFS_PER_PF,
                offset,
                stride: 1,
                vf_device: 0x1889,
                drivers_autoprobe: true,
            },
        )
        .expect("sriov");
        t.bind(&pf, "ice").expect("bind");
        t.add_netdev(
            &pf,
            &Netdev::ethernet(&format!("ens{p}f0"), "b4:96:91:00:00:00", 10 + p),
        )
        .expect("netdev");
        for i in 0..VFS_PER_PF {
            let vf = vf_address(&pf, offset, 1, i).expect("vf address");
            let mut v = PciFunction::ethernet(&vf, 0x8086, 0x1889);
            v.numa_node = f.numa_node;
            v.iommu_group = Some(p * 200 + 1 + i);
            t.add_function(&v).expect("vf");
            t.link_vf(&pf, i, &vf).expect("link");
            t.bind(&vf, "iavf").expect("bind vf");
            let mut n = Netdev::ethernet(
                &format!("ens{p}f0v{i}"),
                &format!("02:00:00:00:{p:02x}:{i:02x}"),
                1000 + p * 1000 + i,
            );
            n.phys_port_name = None;
            t.add_netdev(&vf, &n).expect("vf netdev");
            uevent(root, &t, &vf, 0x8086, 0x1889, "iavf");
        }
        uevent(root, &t, &pf, 0x8086, 0x1593, "ice");
    }
}

/// The function's `uevent`, as the kernel shows it (the scan reads the ids
/// from it in one read).
fn uevent(
    root: &std::path::Path,
    t: &SysfsTree<sriov_sim::tree::DiskSink>,
    address: &str,
    vendor: u16,
    device: u16,
    driver: &str,
) {
    let dir = root.join(t.device_dir(address).expect("device dir"));
    let text = format!(
        "DRIVER={driver}\nPCI_CLASS=20000\nPCI_ID={vendor:04X}:{device:04X}\n\
         PCI_SUBSYS_ID={vendor:04X}:0000\nPCI_SLOT_NAME={address}\n\
         MODALIAS=pci:v{:08X}d{:08X}sv{:08X}sd00000000bc02sc00i00\n",
        vendor, device, vendor
    );
    std::fs::write(dir.join("uevent"), text).expect("uevent");
}
