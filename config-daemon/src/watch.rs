//! `--watch`: keep the node converged. Re-applies when the policy file
//! changes, when a kernel uevent says a PCI function or netdev changed (drift:
//! someone changed a VF count or driver by hand), and every resync interval;
//! failures are retried with exponential backoff.
//!
//! Uevents come from the kernel's netlink socket when the host root is `/`,
//! or from the simulator's socket directory (`<root>/run/sriov-sim/uevents/`)
//! when it exists; otherwise the periodic resync alone catches drift.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use sriov_host::uevent::{self, UeventSocket};

use crate::standalone::{RunReport, StandaloneConfig, StandaloneError, WatchOptions, run_once};

/// Where uevents come from (also used by the Kubernetes mode's drift trigger).
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

impl Source {
    /// Listens under a host root (kernel socket for `/`, the simulator's
    /// socket directory when present, else nothing).
    pub fn open(root: &Path) -> Source {
        let sim_dir = root.join(SIM_UEVENT_DIR);
        if sim_dir.is_dir() {
            let path = sim_dir.join(format!("sriov-config-daemon-{}", std::process::id()));
            let _ = std::fs::remove_file(&path);
            match UnixDatagram::bind(&path) {
                Ok(sock) => return Source::Socket { sock, path },
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot listen for simulator uevents; relying on the periodic resync")
                }
            }
        } else if root == Path::new("/") {
            match UeventSocket::open() {
                Ok(s) => return Source::Kernel(Box::new(s)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for kernel uevents; relying on the periodic resync")
                }
            }
        }
        Source::None
    }

    /// Waits up to `timeout` for a uevent about a PCI function or a netdev.
    pub fn relevant_event(&mut self, timeout: Duration) -> bool {
        let relevant = |e: &uevent::Uevent| matches!(e.get("SUBSYSTEM"), Some("pci") | Some("net"));
        match self {
            Source::Kernel(s) => matches!(s.recv(Some(timeout)), Ok(Some(e)) if relevant(&e)),
            Source::Socket { sock, .. } => {
                let _ = sock.set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
                let mut buf = vec![0u8; 8192];
                match sock.recv(&mut buf) {
                    Ok(n) => uevent::parse(&buf[..n]).is_ok_and(|e| relevant(&e)),
                    Err(_) => false,
                }
            }
            Source::None => {
                std::thread::sleep(timeout);
                false
            }
        }
    }

    /// Drops queued events; true when one of them was relevant.
    pub fn drain(&mut self) -> bool {
        let mut any = false;
        while self.relevant_event(Duration::from_millis(1)) {
            any = true;
        }
        any
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
    let mut backoff = opts.backoff;
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
            let w = backoff;
            backoff = (backoff * 2).min(opts.max_backoff);
            w
        } else {
            backoff = opts.backoff;
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
