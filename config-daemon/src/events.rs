//! What starts a run and what ends a wait, for both modes: kernel uevents
//! about PCI functions and netdevs ([`Source`]), a watched file
//! ([`FileStamp`]), and the run schedule ([`RunSchedule`]: the resync timer,
//! and exponential backoff after a failure). Each run has a [`Trigger`].
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
use std::time::{Duration, SystemTime};

use sriov_host::sriov::{Poll, Settle};
use sriov_host::uevent::{self, UeventSocket};
use tokio::sync::mpsc;

use crate::backoff::Backoff;

/// Where uevents come from.
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

    /// Waits up to `timeout` for a relevant uevent; when one comes, lets the
    /// burst behind it settle ([`BURST`]) and drops the rest of it: true
    /// once a burst.
    pub fn next_burst(&mut self, timeout: Duration) -> bool {
        if !self.relevant_event(timeout) {
            return false;
        }
        std::thread::sleep(BURST);
        self.drain();
        true
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

/// How long a burst of uevents (one change's events) takes to settle.
pub const BURST: Duration = Duration::from_millis(100);

/// Sends one message a burst of relevant uevents under `root` to `tx`, from
/// a thread of its own (for the async Kubernetes mode); the thread ends when
/// the receiver is gone.
pub fn spawn_forwarder(root: PathBuf, tx: mpsc::Sender<()>) {
    let spawned = std::thread::Builder::new()
        .name("uevents".into())
        .spawn(move || {
            let mut source = Source::open(&root);
            while !tx.is_closed() {
                if source.next_burst(RECHECK) {
                    let _ = tx.try_send(());
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the uevent thread; relying on the periodic resync");
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

/// A file's modification time and length, to notice edits by looking again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp(Option<(SystemTime, u64)>);

impl FileStamp {
    /// The file as it is now (a missing file has a stamp too).
    pub fn of(path: &Path) -> FileStamp {
        let m = std::fs::metadata(path).ok();
        FileStamp(m.and_then(|m| Some((m.modified().ok()?, m.len()))))
    }
}

/// Why a run ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The standalone mode's first run.
    Start,
    /// The Kubernetes mode: the spec or the handshake annotations changed
    /// (or first sight).
    Spec,
    /// The standalone mode: the policy file changed.
    PolicyFile,
    /// A kernel uevent about a PCI function or a netdev.
    Uevent,
    /// The periodic resync.
    Resync,
    /// A retry after a failure.
    Retry,
}

impl Trigger {
    /// Whether the run looks for drift: the desired state did not change
    /// and no failure is retried, so any step it takes repairs a change
    /// made behind the daemon's back.
    pub fn checks_drift(self) -> bool {
        matches!(self, Trigger::Uevent | Trigger::Resync)
    }
}

/// When the next run comes if nothing else starts one: the resync interval
/// after a run that worked; after a failure the backoff, doubling up to its
/// maximum while failures go on; at once when uevents came during a run that
/// worked (the run's own writes, or drift while it scanned: a run that
/// writes nothing causes none, so this settles).
#[derive(Debug, Clone)]
pub struct RunSchedule {
    resync: Duration,
    backoff: Backoff,
}

/// The run a [`RunSchedule`] starts if nothing else does first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextRun {
    pub after: Duration,
    pub trigger: Trigger,
}

impl RunSchedule {
    pub fn new(resync: Duration, backoff: Duration, max_backoff: Duration) -> RunSchedule {
        RunSchedule {
            resync,
            backoff: Backoff::new(backoff, max_backoff),
        }
    }

    /// The wait before the next retry, were the next run to fail.
    pub fn backoff(&self) -> Duration {
        self.backoff.peek()
    }

    /// Records how a run ended; the run the timer starts next.
    pub fn after_run(&mut self, failed: bool, events_during_run: bool) -> NextRun {
        if failed {
            let after = self.backoff.next_delay();
            return NextRun {
                after,
                trigger: Trigger::Retry,
            };
        }
        self.backoff.reset();
        if events_during_run {
            NextRun {
                after: Duration::ZERO,
                trigger: Trigger::Uevent,
            }
        } else {
            NextRun {
                after: self.resync,
                trigger: Trigger::Resync,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn failures_back_off_doubling_to_the_cap_and_a_success_resets() {
        let mut s = RunSchedule::new(secs(30), secs(1), secs(5));
        let waits: Vec<Duration> = (0..5).map(|_| s.after_run(true, false).after).collect();
        assert_eq!(waits, [secs(1), secs(2), secs(4), secs(5), secs(5)]);
        assert_eq!(
            s.after_run(false, false),
            NextRun {
                after: secs(30),
                trigger: Trigger::Resync
            }
        );
        assert_eq!(
            s.after_run(true, false),
            NextRun {
                after: secs(1),
                trigger: Trigger::Retry
            }
        );
    }

    #[test]
    fn events_during_a_good_run_rerun_at_once_but_not_after_a_failure() {
        let mut s = RunSchedule::new(secs(30), secs(1), secs(60));
        assert_eq!(
            s.after_run(false, true),
            NextRun {
                after: Duration::ZERO,
                trigger: Trigger::Uevent
            }
        );
        assert_eq!(s.after_run(true, true).trigger, Trigger::Retry);
    }

    #[test]
    fn a_file_stamp_changes_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policies.yaml");
        let missing = FileStamp::of(&path);
        std::fs::write(&path, "a").unwrap();
        let one = FileStamp::of(&path);
        assert_ne!(one, missing);
        assert_eq!(FileStamp::of(&path), one);
        std::fs::write(&path, "ab").unwrap();
        assert_ne!(FileStamp::of(&path), one);
    }
}
