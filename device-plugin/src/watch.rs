//! What makes the plugin look again: inotify on the config file's
//! directory (a ConfigMap update swaps the `..data` symlink, which is an
//! event in the directory, not on the file) and on the device plugin
//! directory (the kubelet recreating `kubelet.sock`), and kernel uevents
//! (from the kernel's netlink group, or from the simulator's socket
//! directory `<root>/run/sriov-sim/uevents` when it exists).

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use sriov_host::HostRoot;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

/// Something happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An entry of the config file's directory changed.
    ConfigDir,
    /// An entry of the device plugin directory was created or removed.
    PluginDir { name: OsString, created: bool },
    /// A uevent of a subsystem that can change pools.
    Uevent { subsystem: String, action: String },
}

/// Why a watch could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {path} with inotify: {source}")]
    Inotify { path: PathBuf, source: nix::Error },
    #[error("cannot listen for uevents on {what}: {source}")]
    Uevent {
        what: String,
        source: std::io::Error,
    },
}

struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// Starts inotify watches on the config directory and the plugin
/// directory (`None`: only the config directory, as the DRA driver
/// watches the same config file); events go to `tx` until it is closed.
pub fn spawn_dir_watch(
    config_file: &Path,
    plugin_dir: Option<&Path>,
    tx: mpsc::Sender<Event>,
) -> Result<tokio::task::JoinHandle<()>, WatchError> {
    let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).map_err(|source| {
        WatchError::Inotify {
            path: config_file.to_path_buf(),
            source,
        }
    })?;
    let flags = AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_ATTRIB;
    let config_dir = config_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let add = |p: &Path| -> Result<WatchDescriptor, WatchError> {
        ino.add_watch(p, flags)
            .map_err(|source| WatchError::Inotify {
                path: p.to_path_buf(),
                source,
            })
    };
    let cfg_wd = add(&config_dir)?;
    let plug_wd = plugin_dir.map(add).transpose()?;
    // SAFETY: `InotifyFd` owns the inotify fd and closes it only on drop;
    // `as_raw_fd` always returns that fd, and the `AsyncFd` owns the value
    // for its whole life.
    #[allow(unsafe_code)] // tokio's API: the fd must stay open while registered
    let fd =
        unsafe { AsyncFd::register_with_interest(InotifyFd(ino), tokio::io::Interest::READABLE) }
            .map_err(|e| WatchError::Inotify {
            path: config_dir.clone(),
            source: nix::Error::from_raw(
                std::io::Error::from(e).raw_os_error().unwrap_or(libc::EIO),
            ),
        })?;
    Ok(tokio::spawn(async move {
        loop {
            let mut guard = match fd.readable().await {
                Ok(g) => g,
                Err(e) => {
                    tracing::error!(error = %e, "inotify wait failed; directory watch stopped");
                    return;
                }
            };
            match guard.get_inner().0.read_events() {
                Ok(events) => {
                    for ev in events {
                        let out = if ev.wd == cfg_wd {
                            Event::ConfigDir
                        } else if Some(ev.wd) == plug_wd {
                            let Some(name) = ev.name else { continue };
                            Event::PluginDir {
                                name,
                                created: ev.mask.intersects(
                                    AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO,
                                ),
                            }
                        } else {
                            continue;
                        };
                        if tx.send(out).await.is_err() {
                            return;
                        }
                    }
                }
                Err(nix::Error::EAGAIN) => guard.clear_ready(),
                Err(e) => {
                    tracing::error!(error = %e, "inotify read failed; directory watch stopped");
                    return;
                }
            }
        }
    }))
}

/// Subsystems whose uevents can change pools.
fn relevant(subsystem: &str) -> bool {
    matches!(
        subsystem,
        "pci" | "net" | "infiniband" | "vfio" | "vdpa" | "auxiliary"
    )
}

/// The simulator's uevent directory under a host root, when present.
pub fn sim_uevent_dir(root: &HostRoot) -> Option<PathBuf> {
    let d = root.join("run/sriov-sim/uevents");
    d.is_dir().then_some(d)
}

/// A datagram socket bound in the simulator's uevent directory; removed
/// on drop.
struct SimSocket {
    sock: tokio::net::UnixDatagram,
    path: PathBuf,
}

impl Drop for SimSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Starts listening for uevents: the simulator's socket directory when the
/// host root has one, else the kernel's netlink group.
pub fn spawn_uevents(
    root: &HostRoot,
    tx: mpsc::Sender<Event>,
) -> Result<tokio::task::JoinHandle<()>, WatchError> {
    if let Some(dir) = sim_uevent_dir(root) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("sriov-dp-{}-{n}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let sock = tokio::net::UnixDatagram::bind(&path).map_err(|source| WatchError::Uevent {
            what: path.display().to_string(),
            source,
        })?;
        tracing::info!(socket = %path.display(), "listening for simulator uevents");
        let s = SimSocket { sock, path };
        return Ok(tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match s.sock.recv(&mut buf).await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::error!(error = %e, "uevent socket failed; relying on resync");
                        return;
                    }
                };
                if !forward(&buf[..n], &tx).await {
                    return;
                }
            }
        }));
    }
    let mut stream = sriov_host::uevent::UeventStream::open().map_err(|e| WatchError::Uevent {
        what: "the kernel's uevent netlink group".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    tracing::info!("listening for kernel uevents");
    Ok(tokio::spawn(async move {
        loop {
            match stream.next_event().await {
                Ok(ev) => {
                    if relevant(&ev.subsystem)
                        && tx
                            .send(Event::Uevent {
                                subsystem: ev.subsystem.clone(),
                                action: ev.action.to_string(),
                            })
                            .await
                            .is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    // ENOBUFS: events were lost; a rescan covers them.
                    tracing::warn!(error = %e, "uevent receive failed; rescanning");
                    if tx
                        .send(Event::Uevent {
                            subsystem: "pci".into(),
                            action: "lost".into(),
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    }))
}

async fn forward(bytes: &[u8], tx: &mpsc::Sender<Event>) -> bool {
    match sriov_host::uevent::parse(bytes) {
        Ok(ev) if relevant(&ev.subsystem) => tx
            .send(Event::Uevent {
                subsystem: ev.subsystem,
                action: ev.action.to_string(),
            })
            .await
            .is_ok(),
        Ok(_) => true,
        Err(e) => {
            tracing::debug!(error = %e, "unparsable uevent ignored");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn next(rx: &mut mpsc::Receiver<Event>) -> Event {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an event within 10 s")
            .expect("the watch is running")
    }

    /// A ConfigMap update as the kubelet makes it: a new `..data` symlink
    /// renamed over the old one, in the config file's directory.
    fn swap_configmap_data(dir: &Path, target: &str) {
        let tmp = dir.join("..data_tmp");
        std::os::unix::fs::symlink(target, &tmp).unwrap();
        std::fs::rename(&tmp, dir.join("..data")).unwrap();
    }

    #[tokio::test]
    async fn config_and_plugin_dir_events() {
        let d = tempfile::tempdir().unwrap();
        let (cfg, plugins) = (d.path().join("cfg"), d.path().join("plugins"));
        std::fs::create_dir_all(cfg.join("..v1")).unwrap();
        std::fs::create_dir_all(&plugins).unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let task = spawn_dir_watch(&cfg.join("config.json"), Some(&plugins), tx).unwrap();
        swap_configmap_data(&cfg, "..v1");
        assert_eq!(next(&mut rx).await, Event::ConfigDir);
        while rx.try_recv().is_ok() {}
        std::fs::write(plugins.join("kubelet.sock"), b"").unwrap();
        assert_eq!(
            next(&mut rx).await,
            Event::PluginDir {
                name: "kubelet.sock".into(),
                created: true
            }
        );
        task.abort();
    }

    /// The DRA driver's use: the config directory only.
    #[tokio::test]
    async fn config_dir_alone() {
        let d = tempfile::tempdir().unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let task = spawn_dir_watch(&d.path().join("config.json"), None, tx).unwrap();
        std::fs::write(d.path().join("config.json"), b"{}").unwrap();
        assert_eq!(next(&mut rx).await, Event::ConfigDir);
        task.abort();
        let missing = spawn_dir_watch(&d.path().join("nope/config.json"), None, mpsc::channel(1).0);
        assert!(
            matches!(missing, Err(WatchError::Inotify { .. })),
            "a missing directory is an error the caller reports"
        );
    }
}
