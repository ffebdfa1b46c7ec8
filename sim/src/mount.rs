//! A mounted simulated node: [`SimNode`] boots the simulated kernel, mounts
//! `ROOT/sys` and `ROOT/dev/vfio` through FUSE and unmounts on drop (also
//! when a test panics).
//!
//! ```text
//! ROOT/sys/...                  FUSE mount (the simulated sysfs)
//! ROOT/dev/vfio/...             FUSE mount (vfio, group files)
//! ROOT/proc/net/route           plain file (a default route on the non-SR-IOV NIC)
//! ROOT/run/sriov-sim/uevents/   listeners bind datagram sockets here
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fuser::{BackgroundSession, Config, MountOption, SessionACL};

use crate::fuse::{SharedState, SubtreeFs, lock};
use crate::kernel::{NetdevBackend, SimKernel, proc_net_route};
use crate::memfs::MemFs;
use crate::node::{NodeError, NodeSpec};
use crate::uevent::UeventSender;

/// How often sysfs catches up with veths moved between network namespaces
/// or renamed.
pub const FOLLOW_PERIOD: std::time::Duration = std::time::Duration::from_millis(100);

/// How to run a simulated node.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// Back each VF netdev with a real veth of the same name in this
    /// network namespace.
    pub veth: bool,
    /// Mount under this host root instead of a fresh temporary directory.
    pub root: Option<PathBuf>,
}

/// Why a simulated node did not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("cannot prepare {path}: {source}")]
    Prepare {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot boot the simulated kernel: {0}")]
    Boot(std::io::Error),
    #[error(
        "cannot mount FUSE at {path}: {source} (needs root, /dev/fuse and fusermount3: apt-get install fuse3)"
    )]
    Mount {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Anything that names a node: a [`NodeSpec`], or a name or YAML path
/// (`"mixed"`, `"scale:2:8"`, `"node.yaml"`).
pub trait IntoNodeSpec {
    /// Resolves to a validated node description.
    fn into_node_spec(self) -> Result<NodeSpec, NodeError>;
}

impl IntoNodeSpec for NodeSpec {
    fn into_node_spec(self) -> Result<NodeSpec, NodeError> {
        self.validate()?;
        Ok(self)
    }
}

impl IntoNodeSpec for &NodeSpec {
    fn into_node_spec(self) -> Result<NodeSpec, NodeError> {
        self.clone().into_node_spec()
    }
}

impl IntoNodeSpec for &str {
    fn into_node_spec(self) -> Result<NodeSpec, NodeError> {
        NodeSpec::resolve(self)
    }
}

impl IntoNodeSpec for String {
    fn into_node_spec(self) -> Result<NodeSpec, NodeError> {
        NodeSpec::resolve(&self)
    }
}

/// A running simulated node. Dropping it unmounts everything, deletes the
/// veths it created and removes what it created under the root.
pub struct SimNode {
    root: PathBuf,
    tmp: Option<tempfile::TempDir>,
    state: SharedState,
    sessions: Vec<(PathBuf, BackgroundSession)>,
    /// Paths created under a caller-given root, removed at stop (deepest
    /// first).
    created: Vec<PathBuf>,
    stopped: bool,
    /// With veths: the thread that makes sysfs follow them across network
    /// namespaces and renames.
    follower: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for SimNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNode").field("root", &self.root).finish()
    }
}

fn mkdirs(path: &Path, created: &mut Vec<PathBuf>) -> Result<(), SimError> {
    let mut missing = Vec::new();
    let mut p = path.to_path_buf();
    while !p.exists() {
        missing.push(p.clone());
        if !p.pop() {
            break;
        }
    }
    std::fs::create_dir_all(path).map_err(|source| SimError::Prepare {
        path: path.to_path_buf(),
        source,
    })?;
    created.extend(missing.into_iter().rev());
    Ok(())
}

impl SimNode {
    /// Boots `node` and mounts it; returns once the mount serves requests.
    pub fn start(node: impl IntoNodeSpec, opts: SimOptions) -> Result<SimNode, SimError> {
        let spec = node.into_node_spec()?;
        // What a SIGKILLed simulator left behind: its FUSE mounts (now
        // dead) and, with --veth, its veth pairs.
        clean_stale_mounts();
        if opts.veth {
            crate::veth::delete_orphans();
        }
        let (root, tmp) = match &opts.root {
            Some(r) => (r.clone(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("sriov-sim-")
                    .tempdir()
                    .map_err(|source| SimError::Prepare {
                        path: std::env::temp_dir(),
                        source,
                    })?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let mut created = Vec::new();
        for d in ["sys", "dev/vfio", "proc/net"] {
            mkdirs(&root.join(d), &mut created)?;
        }
        let route = root.join("proc/net/route");
        std::fs::write(&route, proc_net_route(&spec)).map_err(|source| SimError::Prepare {
            path: route.clone(),
            source,
        })?;
        created.push(route);
        if spec.pfs.iter().any(|p| p.ddp_profile.is_some()) {
            mkdirs(&root.join("run/sriov-sim"), &mut created)?;
            let tool = crate::ddptool::write(&root, &spec).map_err(|source| SimError::Prepare {
                path: root.join(crate::ddptool::DDPTOOL_PATH),
                source,
            })?;
            created.push(tool);
        }
        mkdirs(&root.join(crate::uevent::UEVENT_DIR), &mut created)?;
        let uevents = UeventSender::new(&root).map_err(|source| SimError::Prepare {
            path: root.join(crate::uevent::UEVENT_DIR),
            source,
        })?;
        let backend: Option<Box<dyn NetdevBackend>> = opts
            .veth
            .then(|| Box::new(crate::veth::VethBackend::new()) as Box<dyn NetdevBackend>);
        let kernel = SimKernel::boot(MemFs::new(), spec, backend).map_err(SimError::Boot)?;
        let state: SharedState = Arc::new(Mutex::new(crate::fuse::Shared {
            kernel,
            uevents: Some(uevents),
            stopped: false,
            notifiers: Vec::new(),
        }));
        let mut node = SimNode {
            root: root.clone(),
            tmp,
            state: state.clone(),
            sessions: Vec::new(),
            created,
            stopped: false,
            follower: None,
        };
        for (sub, size) in [("sys", 4096), ("dev/vfio", 0)] {
            let mountpoint = root.join(sub);
            let fs = SubtreeFs::new(state.clone(), sub, size).ok_or_else(|| {
                SimError::Boot(std::io::Error::other(format!(
                    "the simulated tree has no {sub}"
                )))
            })?;
            let mut cfg = Config::default();
            cfg.mount_options = vec![
                MountOption::FSName("sriov-sim".into()),
                MountOption::Subtype("sriov-sim".into()),
                MountOption::DefaultPermissions,
                MountOption::NoDev,
                MountOption::NoSuid,
                MountOption::NoExec,
                MountOption::AutoUnmount,
            ];
            cfg.acl = SessionACL::All;
            // Enough threads that a write waiting on an injected delay or
            // on a dentry invalidation never starves lookups.
            cfg.n_threads = Some(8);
            let top = fs.top();
            let session =
                fuser::spawn_mount(fs, &mountpoint, &cfg).map_err(|source| SimError::Mount {
                    path: mountpoint.clone(),
                    source,
                })?;
            {
                let mut st = lock(&state);
                st.notifiers
                    .push((sub.to_string(), top, session.notifier()));
                st.kernel.sink().take_removed();
            }
            node.sessions.push((mountpoint, session));
        }
        if opts.veth {
            let state = state.clone();
            node.follower = Some(std::thread::spawn(move || {
                loop {
                    std::thread::sleep(FOLLOW_PERIOD);
                    let mut st = lock(&state);
                    if st.stopped {
                        return;
                    }
                    if st.kernel.refresh_netdevs() {
                        st.flush_events();
                    }
                    let inval = st.take_invalidations();
                    drop(st);
                    crate::fuse::invalidate(inval);
                }
            }));
        }
        // The mount answers once the kernel sees it.
        let probe = root.join("sys/bus/pci/devices");
        for _ in 0..200 {
            if std::fs::read_dir(&probe).is_ok_and(|mut d| d.next().is_some()) {
                return Ok(node);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Err(SimError::Mount {
            path: root.join("sys"),
            source: std::io::Error::other("the mount did not answer within 2 s"),
        })
    }

    /// The host root (`root()/sys`, `root()/dev/vfio`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where listeners bind uevent sockets.
    pub fn uevent_dir(&self) -> PathBuf {
        self.root.join(crate::uevent::UEVENT_DIR)
    }

    /// Runs `f` on the simulated kernel (for tests that inspect state).
    pub fn with_kernel<R>(&self, f: impl FnOnce(&mut SimKernel<MemFs>) -> R) -> R {
        f(&mut lock(&self.state).kernel)
    }

    /// Unmounts, deletes created veths and removes what was created under
    /// the root. Called by drop; safe to call twice.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        {
            let mut st = lock(&self.state);
            st.stopped = true;
            st.kernel.shutdown();
        }
        if let Some(t) = self.follower.take() {
            let _ = t.join();
        }
        for (path, session) in self.sessions.drain(..).rev() {
            unmount(&path);
            if let Err(e) = session.umount_and_join() {
                tracing::warn!(mount = %path.display(), error = %e, "FUSE session ended with an error");
            }
        }
        if self.tmp.is_none() {
            for p in self.created.iter().rev() {
                let _ = std::fs::remove_file(p).or_else(|_| std::fs::remove_dir(p));
            }
        }
        if let Some(t) = self.tmp.take() {
            let path = t.path().to_path_buf();
            if let Err(e) = t.close() {
                tracing::warn!(root = %path.display(), error = %e, "cannot remove the node's root");
            }
        }
    }
}

/// Unmounts `path`: a normal unmount, or a lazy one if something still
/// holds it open.
fn unmount(path: &Path) {
    use nix::mount::{MntFlags, umount2};
    if !is_mounted(path) {
        return;
    }
    if let Err(e) = umount2(path, MntFlags::empty()) {
        tracing::debug!(mount = %path.display(), error = %e, "busy; unmounting lazily");
        if let Err(e) = umount2(path, MntFlags::MNT_DETACH) {
            tracing::warn!(mount = %path.display(), error = %e, "cannot unmount");
        }
    }
}

/// Unmounts (lazily) every `sriov-sim` FUSE mount whose server is gone: a
/// simulator killed with SIGKILL cannot unmount, and its mount points
/// answer ENOTCONN from then on. Live mounts (of other simulators running
/// now) answer and are left alone. Returns the paths unmounted.
pub fn clean_stale_mounts() -> Vec<PathBuf> {
    use nix::mount::{MntFlags, umount2};
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = Vec::new();
    for line in info.lines() {
        // ... mountpoint ... - fstype source options
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut r = right.split(' ');
        let (fstype, source) = (r.next().unwrap_or(""), r.next().unwrap_or(""));
        if fstype != "fuse.sriov-sim" && source != "sriov-sim" {
            continue;
        }
        let Some(mp) = left.split(' ').nth(4).map(unescape_mountinfo) else {
            continue;
        };
        let mp = PathBuf::from(mp);
        let dead = matches!(
            std::fs::metadata(&mp),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN)
        );
        if dead {
            match umount2(&mp, MntFlags::MNT_DETACH) {
                Ok(()) => {
                    tracing::info!(mount = %mp.display(), "unmounted a dead sriov-sim mount");
                    out.push(mp);
                }
                Err(e) => {
                    tracing::warn!(mount = %mp.display(), error = %e, "cannot unmount a dead sriov-sim mount")
                }
            }
        }
    }
    out
}

/// Whether `path` is a mount point in this process's mount namespace
/// (from `/proc/self/mountinfo`).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|m| unescape_mountinfo(m) == want)
    })
}

/// Mount points under `root` listed in `/proc/self/mountinfo`.
pub fn mounts_under(root: &Path) -> Vec<String> {
    let want = root.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(unescape_mountinfo))
        .filter(|m| m == &want || m.starts_with(&format!("{want}/")))
        .collect()
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

impl Drop for SimNode {
    fn drop(&mut self) {
        self.stop();
    }
}
