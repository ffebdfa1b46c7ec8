//! `--watch`: keep the node converged. Re-applies when the policy file
//! changes, when a kernel uevent says a PCI function or netdev changed (drift:
//! someone changed a VF count or driver by hand), and every resync interval;
//! failures are retried with exponential backoff.
//!
//! Uevents come from the kernel's netlink socket when the host root's sysfs
//! is the running kernel's (`/`, or a container's `/host` bind mount), or
//! from the simulator's socket directory (`<root>/run/sriov-sim/uevents/`)
//! when it exists; otherwise the periodic resync alone catches drift.
//!
//! The same sources drive the apply's waits ([`UeventWait`]): after writing
//! `sriov_numvfs` or probing a driver, a PF's worker re-checks the kernel's
//! state when an event arrives instead of polling.

use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use sriov_host::sriov::{Poll, Settle};
use sriov_host::uevent::{self, UeventSocket};

use crate::backoff::Backoff;
use crate::standalone::{RunReport, StandaloneConfig, StandaloneError, WatchOptions, run_once};

/// Where uevents come from (also used by the Kubernetes mode's drift trigger).
#[derive(Debug)]
pub enum Source {
    Kernel(Box<UeventSocket>),
    Socket { sock: UnixDatagram, path: PathBuf },
    None,
}

impl Drop for Source {
    fn drop(&mut self) {
        if let Source::Socket { path, .. } = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The simulator's uevent socket directory under a host root.
pub const SIM_UEVENT_DIR: &str = "run/sriov-sim/uevents";

/// Whether `<root>/sys` is the running kernel's sysfs (the same mount and
/// directory as `/sys`), so the kernel's uevents are about it.
fn is_kernel_sysfs(root: &Path) -> bool {
    if root == Path::new("/") {
        return true;
    }
    match (
        std::fs::metadata(root.join("sys")),
        std::fs::metadata("/sys"),
    ) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl Source {
    /// Listens under a host root: the simulator's socket directory when
    /// present, the kernel's uevent socket when `<root>/sys` is the running
    /// kernel's sysfs, else nothing ([`Source::None`]). Each call binds its
    /// own socket, so several listeners in one process do not collide.
    pub fn open(root: &Path) -> Source {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let sim_dir = root.join(SIM_UEVENT_DIR);
        if sim_dir.is_dir() {
            let path = sim_dir.join(format!(
                "sriov-config-daemon-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_file(&path);
            match UnixDatagram::bind(&path) {
                Ok(sock) => return Source::Socket { sock, path },
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot listen for simulator uevents; relying on the periodic resync")
                }
            }
        } else if is_kernel_sysfs(root) {
            match UeventSocket::open() {
                Ok(s) => return Source::Kernel(Box::new(s)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for kernel uevents; relying on the periodic resync")
                }
            }
        }
        Source::None
    }

    /// Whether events arrive (not [`Source::None`]).
    pub fn is_event_driven(&self) -> bool {
        !matches!(self, Source::None)
    }

    /// The next event, waiting up to `timeout` (`Duration::ZERO`: only one
    /// already queued). `Err(())` when the source failed or lost events (a
    /// full queue): the caller should re-check the state.
    fn next_event(&mut self, timeout: Duration) -> Result<Option<uevent::Uevent>, ()> {
        match self {
            Source::Kernel(s) => s.recv(Some(timeout)).map_err(|_| ()),
            Source::Socket { sock, .. } => {
                if timeout.is_zero() {
                    let _ = sock.set_nonblocking(true);
                } else {
                    let _ = sock.set_nonblocking(false);
                    let _ = sock.set_read_timeout(Some(timeout));
                }
                let mut buf = vec![0u8; 8192];
                match sock.recv(&mut buf) {
                    Ok(n) => Ok(uevent::parse(&buf[..n]).ok()),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        Ok(None)
                    }
                    Err(_) => Err(()),
                }
            }
            Source::None => {
                std::thread::sleep(timeout);
                Ok(None)
            }
        }
    }

    /// Waits up to `timeout` for a uevent about a PCI function or a netdev.
    pub fn relevant_event(&mut self, timeout: Duration) -> bool {
        let relevant = |e: &uevent::Uevent| matches!(e.get("SUBSYSTEM"), Some("pci") | Some("net"));
        matches!(self.next_event(timeout), Ok(Some(e)) if relevant(&e))
    }

    /// Drops queued events; true when one of them was relevant.
    pub fn drain(&mut self) -> bool {
        let relevant = |e: &uevent::Uevent| matches!(e.get("SUBSYSTEM"), Some("pci") | Some("net"));
        let mut any = false;
        if !self.is_event_driven() {
            return false;
        }
        while let Ok(Some(e)) = self.next_event(Duration::ZERO) {
            any |= relevant(&e);
        }
        any
    }
}

/// How long an event-driven wait goes without an event before it re-checks
/// anyway (events are lost when a listener's queue is full).
pub const RECHECK: Duration = Duration::from_millis(200);

/// [`Settle`] on uevents, for the apply's waits: returns when an event
/// arrives (after taking the ones queued behind it, so a burst is one
/// wake-up), or after [`RECHECK`]; polls every 10 ms when there is no
/// source.
///
/// The source is opened on the first wait, not before: the kernel usually
/// finishes within the write (then nothing listens, and nothing is sent to
/// a listener in vain); when it has not, the first wait opens the source
/// and returns at once, and the caller's re-check sees every change made
/// before the source listened, while the events of later changes wake it.
#[derive(Debug)]
pub struct UeventWait {
    /// The host root whose source is not opened yet.
    pending: Option<PathBuf>,
    source: Source,
    /// Waits that an event ended.
    pub wakeups: u64,
}

impl UeventWait {
    /// Listens for the node under `root` (see [`Source::open`]) from the
    /// first wait on.
    pub fn open(root: &Path) -> UeventWait {
        UeventWait {
            pending: Some(root.to_path_buf()),
            source: Source::None,
            wakeups: 0,
        }
    }

    /// Waits on this source.
    pub fn from_source(source: Source) -> UeventWait {
        UeventWait {
            pending: None,
            source,
            wakeups: 0,
        }
    }

    /// Polls every 10 ms (no events).
    pub fn polling() -> UeventWait {
        UeventWait::from_source(Source::None)
    }

    /// Opens the source if it is still pending; whether it delivers events.
    fn listen(&mut self) -> bool {
        if let Some(root) = self.pending.take() {
            self.source = Source::open(&root);
        }
        self.source.is_event_driven()
    }

    /// Whether waits are event-driven (opens the source).
    pub fn is_event_driven(&mut self) -> bool {
        self.listen()
    }

    /// Drops the events queued so far (those of earlier steps).
    pub fn discard_queued(&mut self) {
        self.source.drain();
    }
}

impl Settle for UeventWait {
    fn settle(&mut self, max: Duration) {
        if self.pending.is_some() && self.listen() {
            // Listening now: the caller re-checks, then waits on events.
            return;
        }
        if !self.source.is_event_driven() {
            return Poll.settle(max);
        }
        match self.source.next_event(max.min(RECHECK)) {
            Ok(Some(_)) => {
                self.wakeups += 1;
                self.source.drain();
            }
            Ok(None) => {}
            // A failed or overflowing source: re-check after a short pause.
            Err(()) => Poll.settle(max),
        }
    }
}

fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Why the watch loop ran an apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Start,
    PolicyFile,
    Uevent,
    Resync,
    Retry,
}

/// Runs until the process is stopped. `on_run` sees every run's report (or
/// the error that stopped it before any change) and why it ran.
pub fn watch(
    cfg: &StandaloneConfig,
    opts: &WatchOptions,
    mut on_run: impl FnMut(Trigger, &Result<RunReport, StandaloneError>),
) -> ! {
    let mut source = Source::open(cfg.host_root.path());
    let mut backoff = Backoff::new(opts.backoff, opts.max_backoff);
    let mut trigger = Trigger::Start;
    loop {
        let stamp = file_stamp(&cfg.policies);
        let result = run_once(cfg);
        // Events queued during the run: ours, or drift that happened while
        // we scanned. Look again at once; a run that writes nothing causes
        // no events, so this settles.
        let events_during_run = source.drain();
        if trigger != Trigger::Start
            && trigger != Trigger::PolicyFile
            && let Ok(r) = &result
            && !r.plan.is_empty()
        {
            tracing::warn!(
                ?trigger,
                "drift: the node no longer matched the spec; repaired:\n{}",
                r.plan.render()
            );
        }
        on_run(trigger, &result);
        let failed = match &result {
            Ok(r) => r.failed(),
            Err(_) => true,
        };
        let wait = if failed {
            backoff.next_delay()
        } else {
            backoff.reset();
            opts.resync
        };
        if events_during_run && !failed {
            trigger = Trigger::Uevent;
            continue;
        }
        let deadline = Instant::now() + wait;
        trigger = loop {
            let now = Instant::now();
            if now >= deadline {
                break if failed {
                    Trigger::Retry
                } else {
                    Trigger::Resync
                };
            }
            if file_stamp(&cfg.policies) != stamp {
                break Trigger::PolicyFile;
            }
            if source.relevant_event((deadline - now).min(Duration::from_millis(200))) {
                // Let a burst of events settle.
                std::thread::sleep(Duration::from_millis(100));
                source.drain();
                break Trigger::Uevent;
            }
        };
        tracing::info!(?trigger, "re-applying");
    }
}
