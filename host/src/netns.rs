//! Network namespaces: open one by path or pid, run code inside one on a
//! dedicated thread, and create/delete named namespaces the way
//! `ip netns add/del` does (for tests and the simulator).
//!
//! `setns(2)` changes the namespace of the calling *thread* only. Code that
//! must run in another namespace therefore runs on a fresh OS thread that
//! enters the namespace, runs, and exits ([`Netns::run`]); it never returns
//! to a pool (tokio's or anyone's) in the wrong namespace.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

/// `statfs.f_type` of nsfs, the filesystem of `/proc/*/ns/*` files.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Where `ip netns` keeps named namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Errors of namespace operations.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The namespace file could not be opened.
    #[error(
        "cannot open network namespace {path}: {source}; check that the path exists (a CNI netns path, /run/netns/NAME or /proc/PID/ns/net)"
    )]
    Open {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file is not a namespace file.
    #[error(
        "{path} is not a network namespace (not an nsfs file); pass a /proc/PID/ns/net path or a bind mount of one"
    )]
    NotNetns {
        /// The path.
        path: PathBuf,
    },
    /// `setns` failed.
    #[error(
        "cannot enter network namespace {path}: {errno}; entering a namespace needs CAP_SYS_ADMIN"
    )]
    Enter {
        /// The namespace path.
        path: PathBuf,
        /// The errno.
        errno: Errno,
    },
    /// The worker thread could not be started.
    #[error("cannot start a thread to enter network namespace {path}: {source}")]
    Thread {
        /// The namespace path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A named namespace already exists.
    #[error(
        "network namespace {path} already exists; delete it with `ip netns del` or pick another name"
    )]
    Exists {
        /// The path.
        path: PathBuf,
    },
    /// Invalid name for a named namespace.
    #[error(
        "invalid network namespace name {name:?}: use letters, digits, '-', '_' and '.', not '.' or '..'"
    )]
    BadName {
        /// The name.
        name: String,
    },
    /// A step of creating or deleting a named namespace failed.
    #[error("cannot {step} {path}: {errno}")]
    Named {
        /// What was being done ("create the netns mount point", …).
        step: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The errno.
        errno: Errno,
    },
}

/// Identity of a namespace: the device and inode of its nsfs file. Two
/// [`Netns`] values with equal ids are the same namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetnsId {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

/// An open network namespace (an fd of an nsfs file), with the path it was
/// opened from for messages.
#[derive(Debug)]
pub struct Netns {
    file: File,
    path: PathBuf,
    id: NetnsId,
}

impl Netns {
    /// Opens the namespace at `path` (`/proc/PID/ns/net`, `/run/netns/NAME`,
    /// a CNI `CNI_NETNS` path) and checks it is an nsfs file.
    pub fn open(path: impl AsRef<Path>) -> Result<Netns, NetnsError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|source| NetnsError::Open {
            path: path.clone(),
            source,
        })?;
        let fs = nix::sys::statfs::fstatfs(&file).map_err(|e| NetnsError::Open {
            path: path.clone(),
            source: e.into(),
        })?;
        #[allow(clippy::unnecessary_cast)]
        if fs.filesystem_type().0 as i64 != NSFS_MAGIC {
            return Err(NetnsError::NotNetns { path });
        }
        let meta = file.metadata().map_err(|source| NetnsError::Open {
            path: path.clone(),
            source,
        })?;
        let id = NetnsId {
            dev: meta.dev(),
            ino: meta.ino(),
        };
        Ok(Netns { file, path, id })
    }

    /// The namespace of process `pid` (`/proc/PID/ns/net`).
    pub fn from_pid(pid: u32) -> Result<Netns, NetnsError> {
        Netns::open(format!("/proc/{pid}/ns/net"))
    }

    /// The namespace of the calling thread (`/proc/thread-self/ns/net`).
    pub fn current() -> Result<Netns, NetnsError> {
        Netns::open("/proc/thread-self/ns/net")
    }

    /// The path this namespace was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The namespace's identity.
    pub fn id(&self) -> NetnsId {
        self.id
    }

    /// Another handle to the same namespace (a `dup` of the fd).
    pub fn try_clone(&self) -> Result<Netns, NetnsError> {
        Ok(Netns {
            file: self.file.try_clone().map_err(|source| NetnsError::Open {
                path: self.path.clone(),
                source,
            })?,
            path: self.path.clone(),
            id: self.id,
        })
    }

    /// Enters this namespace on the calling thread. Only for threads that
    /// are dedicated to the namespace and exit afterwards (see [`Netns::run`]).
    pub fn enter_current_thread(&self) -> Result<(), NetnsError> {
        nix::sched::setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|errno| {
            NetnsError::Enter {
                path: self.path.clone(),
                errno,
            }
        })
    }

    /// Runs `f` inside this namespace on a new OS thread and returns its
    /// result. The thread exits when `f` returns, so no thread is ever left
    /// in the wrong namespace. A panic in `f` is resumed on the caller.
    pub fn run<F, T>(&self, f: F) -> Result<T, NetnsError>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        std::thread::scope(|s| {
            let handle = std::thread::Builder::new()
                .name("netns-run".into())
                .spawn_scoped(s, || {
                    self.enter_current_thread()?;
                    Ok(f())
                })
                .map_err(|source| NetnsError::Thread {
                    path: self.path.clone(),
                    source,
                })?;
            match handle.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Runs `f` on the calling thread inside this namespace, then returns
    /// the thread to the namespace it was in, also when `f` panics. No
    /// thread is started: for synchronous work (open a socket, configure
    /// addresses) where a thread's start would cost more than the work.
    /// The thread must run nothing else meanwhile; threads `f` starts stay
    /// in this namespace.
    ///
    /// # Panics / aborts
    /// If the thread cannot return to its namespace the process aborts
    /// rather than go on in the wrong one.
    pub fn run_here<T>(&self, f: impl FnOnce() -> T) -> Result<T, NetnsError> {
        let home = Netns::current()?;
        if home.id == self.id {
            return Ok(f());
        }
        self.enter_current_thread()?;
        /// Returns the thread to its namespace on drop.
        struct Back(Netns);
        impl Drop for Back {
            fn drop(&mut self) {
                if let Err(e) = self.0.enter_current_thread() {
                    eprintln!("fatal: cannot return to the thread's network namespace: {e}");
                    std::process::abort();
                }
            }
        }
        let _back = Back(home);
        Ok(f())
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl AsRawFd for Netns {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }
}

/// A named network namespace under `/run/netns` (like `ip netns add NAME`),
/// deleted when dropped (like `ip netns del NAME`).
#[derive(Debug)]
pub struct NamedNetns {
    name: String,
    netns: Option<Netns>,
    path: PathBuf,
}

impl NamedNetns {
    /// Creates `/run/netns/NAME` holding a new, empty network namespace.
    pub fn create(name: &str) -> Result<NamedNetns, NetnsError> {
        NamedNetns::create_in(Path::new(NETNS_RUN_DIR), name)
    }

    /// Creates a named namespace in `dir` instead of `/run/netns` (`dir`
    /// becomes a shared mount point, as `/run/netns` does for iproute2).
    fn create_in(dir: &Path, name: &str) -> Result<NamedNetns, NetnsError> {
        if name.is_empty()
            || name == "."
            || name == ".."
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(NetnsError::BadName { name: name.into() });
        }
        make_shared_dir(dir)?;
        let path = dir.join(name);
        // The mount point: an empty file, created exclusively.
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(NetnsError::Exists { path });
            }
            Err(e) => {
                return Err(NetnsError::Named {
                    step: "create the netns mount point",
                    path,
                    errno: errno_of(&e),
                });
            }
        }
        // A fresh thread unshares its network namespace and bind-mounts it
        // onto the file; then the thread exits.
        let target = path.clone();
        let made = std::thread::Builder::new()
            .name("netns-add".into())
            .spawn(move || -> Result<(), NetnsError> {
                nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(|errno| {
                    NetnsError::Named {
                        step: "unshare a new network namespace for",
                        path: target.clone(),
                        errno,
                    }
                })?;
                nix::mount::mount(
                    Some("/proc/thread-self/ns/net"),
                    &target,
                    Some("none"),
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(|errno| NetnsError::Named {
                    step: "bind-mount the new network namespace on",
                    path: target.clone(),
                    errno,
                })
            })
            .map_err(|source| NetnsError::Thread {
                path: path.clone(),
                source,
            })?
            .join()
            .unwrap_or(Err(NetnsError::Named {
                step: "create (thread panicked)",
                path: path.clone(),
                errno: Errno::EIO,
            }));
        if let Err(e) = made {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        let netns = match Netns::open(&path) {
            Ok(n) => n,
            Err(e) => {
                let _ = nix::mount::umount2(&path, MntFlags::MNT_DETACH);
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        tracing::debug!(path = %path.display(), "created network namespace");
        Ok(NamedNetns {
            name: name.to_owned(),
            netns: Some(netns),
            path,
        })
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open namespace.
    pub fn netns(&self) -> &Netns {
        self.netns
            .as_ref()
            .expect("namespace is open until dropped")
    }

    /// Deletes the namespace now, reporting errors (dropping deletes too,
    /// logging errors).
    pub fn delete(mut self) -> Result<(), NetnsError> {
        self.remove()
    }

    fn remove(&mut self) -> Result<(), NetnsError> {
        if self.netns.take().is_none() {
            return Ok(());
        }
        match nix::mount::umount2(&self.path, MntFlags::MNT_DETACH) {
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
            Err(errno) => {
                return Err(NetnsError::Named {
                    step: "unmount network namespace",
                    path: self.path.clone(),
                    errno,
                });
            }
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(NetnsError::Named {
                step: "remove network namespace file",
                path: self.path.clone(),
                errno: errno_of(&e),
            }),
        }
    }
}

impl Drop for NamedNetns {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            tracing::warn!("{e}");
        }
    }
}

fn errno_of(e: &io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Creates `dir` and makes it a shared mount point, as iproute2 does, so
/// namespace mounts under it propagate to other mount namespaces.
fn make_shared_dir(dir: &Path) -> Result<(), NetnsError> {
    std::fs::create_dir_all(dir).map_err(|e| NetnsError::Named {
        step: "create directory",
        path: dir.to_path_buf(),
        errno: errno_of(&e),
    })?;
    let shared = || {
        nix::mount::mount(
            Some(""),
            dir,
            Some("none"),
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match shared() {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL) => {
            // Not a mount point yet: bind it onto itself, then retry.
            nix::mount::mount(
                Some(dir),
                dir,
                Some("none"),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .and_then(|()| shared())
            .map_err(|errno| NetnsError::Named {
                step: "make a shared mount point of",
                path: dir.to_path_buf(),
                errno,
            })
        }
        Err(errno) => Err(NetnsError::Named {
            step: "make a shared mount point of",
            path: dir.to_path_buf(),
            errno,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_is_nsfs_and_stable() {
        let a = Netns::current().unwrap();
        let b = Netns::from_pid(std::process::id()).unwrap();
        assert_eq!(a.id(), b.id());
        assert_eq!(a.try_clone().unwrap().id(), a.id());
    }

    #[test]
    fn regular_file_is_not_a_netns() {
        let f = tempfile::NamedTempFile::new().unwrap();
        match Netns::open(f.path()) {
            Err(NetnsError::NotNetns { path }) => assert_eq!(path, f.path()),
            other => panic!("expected NotNetns, got {other:?}"),
        }
        match Netns::open("/nonexistent/ns") {
            Err(e @ NetnsError::Open { .. }) => assert!(e.to_string().contains("/nonexistent/ns")),
            other => panic!("expected Open error, got {other:?}"),
        }
    }

    #[test]
    fn bad_names_are_refused_before_anything_is_created() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", ".", "..", "a/b", "x y"] {
            assert!(matches!(
                NamedNetns::create_in(dir.path(), bad),
                Err(NetnsError::BadName { .. })
            ));
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn run_in_own_namespace_returns_value_and_propagates_panic() {
        let ns = Netns::current().unwrap();
        // Entering one's own namespace needs CAP_SYS_ADMIN too; only check
        // the result shape when allowed.
        match ns.run(|| Netns::current().unwrap().id()) {
            Ok(id) => assert_eq!(id, ns.id()),
            Err(NetnsError::Enter { errno, .. }) => assert_eq!(errno, Errno::EPERM),
            Err(e) => panic!("{e}"),
        }
        if ns.run(|| ()).is_ok() {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                ns.run(|| panic!("boom")).unwrap();
            }));
            assert!(r.is_err());
        }
    }
}
