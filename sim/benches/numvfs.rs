//! Benchmark: create 128 VFs on one PF through the FUSE mount, read the
//! whole simulated tree back, and remove the VFs. Prints the times.
//!
//! Run: `cargo bench -p sriov-sim --bench numvfs` (root, FUSE).

use std::path::Path;
use std::time::{Duration, Instant};

use sriov_sim::lanes::{self, Lane};
use sriov_sim::{SimNode, SimOptions};

/// Reads every file and link under `dir` (not following links); returns
/// (files, links, dirs, bytes).
fn walk(dir: &Path, acc: &mut (usize, usize, usize, usize)) {
    for e in std::fs::read_dir(dir).expect("readdir") {
        let e = e.expect("entry");
        let ft = e.file_type().expect("file type");
        if ft.is_symlink() {
            std::fs::read_link(e.path()).expect("readlink");
            acc.1 += 1;
        } else if ft.is_dir() {
            acc.2 += 1;
            walk(&e.path(), acc);
        } else {
            // Write-only attributes (bind, unbind, ...) read as empty.
            acc.3 += std::fs::read(e.path()).map(|b| b.len()).unwrap_or(0);
            acc.0 += 1;
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if !lanes::require("bench numvfs", &[Lane::Fuse]) {
        return;
    }
    const ROUNDS: usize = 5;
    let t = Instant::now();
    let sim = SimNode::start("scale:1:0", SimOptions::default()).expect("mount");
    let mount = t.elapsed();
    let pf = sim
        .root()
        .join("sys/bus/pci/devices/0000:10:00.0/sriov_numvfs");
    let (mut create, mut read_back, mut remove, mut walk_idle) = (vec![], vec![], vec![], vec![]);
    let mut counts = (0, 0, 0, 0);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let mut acc = (0, 0, 0, 0);
        walk(&sim.root().join("sys"), &mut acc);
        walk_idle.push(t.elapsed());

        let t = Instant::now();
        std::fs::write(&pf, "128\n").expect("write 128 to sriov_numvfs");
        create.push(t.elapsed());
        assert!(
            sim.root()
                .join("sys/bus/pci/devices/0000:10:00.0/virtfn127")
                .exists()
        );

        let t = Instant::now();
        let mut acc = (0, 0, 0, 0);
        walk(&sim.root().join("sys"), &mut acc);
        read_back.push(t.elapsed());
        counts = acc;

        let t = Instant::now();
        std::fs::write(&pf, "0\n").expect("write 0 to sriov_numvfs");
        remove.push(t.elapsed());
    }
    drop(sim);
    println!("sriov-sim numvfs benchmark (1 E810 PF, FUSE mount, {ROUNDS} rounds, median)");
    println!("  mount (boot + 2 FUSE mounts + first answer): {mount:?}");
    println!(
        "  read whole tree, no VFs:                     {:?}",
        median(walk_idle)
    );
    println!(
        "  echo 128 > sriov_numvfs:                     {:?}",
        median(create)
    );
    println!(
        "  read whole tree, 128 VFs:                    {:?}  ({} files, {} links, {} dirs, {} bytes)",
        median(read_back),
        counts.0,
        counts.1,
        counts.2,
        counts.3
    );
    println!(
        "  echo 0 > sriov_numvfs:                       {:?}",
        median(remove)
    );

    // A large node: 16 E810 ports with 128 VFs each (2064 functions).
    // On tmpfs when there is one: this measures the simulator, not the disk.
    let tmp = if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm")
    } else {
        tempfile::tempdir()
    }
    .expect("temp dir");
    let spec = sriov_sim::node::NodeSpec::resolve("scale:16:128").expect("scale node");
    let t = Instant::now();
    sriov_sim::kernel::write_static_tree(tmp.path(), &spec).expect("static tree");
    let static_tree = t.elapsed();
    let t = Instant::now();
    let sim = SimNode::start(spec, SimOptions::default()).expect("mount");
    let big_mount = t.elapsed();
    let t = Instant::now();
    let n = std::fs::read_dir(sim.root().join("sys/bus/pci/devices"))
        .expect("devices")
        .count();
    let list = t.elapsed();
    drop(sim);
    println!("scale:16:128 ({n} functions)");
    println!(
        "  sriov-sim tree (static, in {}): {static_tree:?}",
        tmp.path().parent().unwrap().display()
    );
    println!("  mount (boot + FUSE):                         {big_mount:?}");
    println!("  list bus/pci/devices through the mount:      {list:?}");
}
