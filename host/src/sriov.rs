//! SR-IOV: a PF's capability files and VF links, a VF's place, and the
//! checked change of a PF's VF count.
//!
//! A PF has `sriov_totalvfs`, `sriov_numvfs`, `sriov_offset`,
//! `sriov_stride`, `sriov_vf_device`, `sriov_drivers_autoprobe` and one
//! `virtfnN -> ../<vf address>` link per VF; a VF has `physfn -> ../<pf>`.
//! A VF's index is the `N` of the PF link that points to it, which is read
//! once per PF ([`read_vf_links`]), never searched per VF.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::address::PciAddress;
use crate::attr::{self, Dir, child, read_opt_parsed};
use crate::error::{Error, Result};
use crate::root::HostRoot;

/// A PF's SR-IOV capability and its current VFs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SriovCapability {
    /// `sriov_totalvfs`: the most VFs the PF supports.
    pub total_vfs: u32,
    /// `sriov_numvfs`: the VFs enabled now.
    pub num_vfs: u32,
    /// `sriov_vf_device`: the VFs' PCI device id.
    pub vf_device: Option<u16>,
    /// `sriov_drivers_autoprobe`: whether new VFs are probed by drivers.
    pub drivers_autoprobe: Option<bool>,
    /// `sriov_offset`: routing-ID offset of VF 0 from the PF.
    pub offset: Option<u32>,
    /// `sriov_stride`: routing-ID distance between VFs.
    pub stride: Option<u32>,
    /// The `virtfnN` links, in index order.
    pub vfs: Vec<VfLink>,
}

/// One `virtfnN` link of a PF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VfLink {
    pub index: u32,
    pub address: PciAddress,
}

/// Where a VF belongs: its PF and its index on that PF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VfInfo {
    pub pf: PciAddress,
    pub index: u32,
}

/// Reads the SR-IOV capability of a function directory; `None` when it has
/// no `sriov_totalvfs` (not a PF).
pub(crate) fn read_capability(dir: &Dir) -> Result<Option<SriovCapability>> {
    let num = |name: &str| dir.opt_parsed(name, "an unsigned number", |v| v.parse::<u32>().ok());
    let Some(total_vfs) = num("sriov_totalvfs")? else {
        return Ok(None);
    };
    let drivers_autoprobe = dir.opt_parsed("sriov_drivers_autoprobe", "0 or 1", |v| match v {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    })?;
    let mut vfs = Vec::new();
    for name in dir.names()? {
        let Some(index) = name
            .strip_prefix("virtfn")
            .and_then(|i| i.parse::<u32>().ok())
        else {
            continue;
        };
        let Some(target) = dir.link_name(&name)? else {
            continue; // removed since the listing
        };
        vfs.push(vf_link(index, &target, &dir.child_path(&name))?);
    }
    vfs.sort_by_key(|l| l.index);
    Ok(Some(SriovCapability {
        total_vfs,
        num_vfs: num("sriov_numvfs")?.unwrap_or(0),
        vf_device: dir.opt_parsed("sriov_vf_device", "a 16-bit hex id", attr::parse_hex_u16)?,
        drivers_autoprobe,
        offset: num("sriov_offset")?,
        stride: num("sriov_stride")?,
        vfs,
    }))
}

fn vf_link(index: u32, target: &str, path: &Path) -> Result<VfLink> {
    let address = PciAddress::parse(target).ok_or_else(|| Error::Parse {
        path: path.to_path_buf(),
        value: target.to_string(),
        expected: "a link to a PCI function",
    })?;
    Ok(VfLink { index, address })
}

fn read_u32(dir: &Path, name: &str) -> Result<Option<u32>> {
    read_opt_parsed(&child(dir, name), "an unsigned number", |v| v.parse().ok())
}

/// The `virtfnN` links of a PF directory, in index order. The directory is
/// listed (not probed `virtfn0`, `virtfn1`, ...) because the kernel removes
/// VFs from index 0 up, leaving gaps while VFs are being disabled. A link
/// whose target name is not a PCI address is an error.
pub fn read_vf_links(pf_dir: &Path) -> Result<Vec<VfLink>> {
    let entries = match std::fs::read_dir(pf_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Read {
                path: pf_dir.to_path_buf(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name();
        let Some(index) = name
            .to_str()
            .and_then(|n| n.strip_prefix("virtfn"))
            .and_then(|i| i.parse::<u32>().ok())
        else {
            continue;
        };
        let path = e.path();
        let Some(target) = attr::read_link_name(&path)? else {
            continue; // removed since the listing
        };
        out.push(vf_link(index, &target, &path)?);
    }
    out.sort_by_key(|l| l.index);
    Ok(out)
}

/// What [`set_num_vfs`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumVfsChange {
    /// `sriov_numvfs` before.
    pub previous: u32,
    /// `sriov_numvfs` now.
    pub current: u32,
}

impl NumVfsChange {
    /// Whether anything was written.
    pub fn changed(&self) -> bool {
        self.previous != self.current
    }
}

/// How long to sleep between polls of the kernel's state.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// How a checked write waits for the kernel between two checks of its
/// state. [`Poll`] sleeps 10 ms; an event-driven implementation returns when
/// a uevent arrives (it must be subscribed before the write, so no event is
/// missed). The waits re-check the state after every call and give up at
/// their own timeout, so an implementation may return early or spuriously.
pub trait Settle {
    /// Blocks until the kernel's state may have changed, at most `max`.
    fn settle(&mut self, max: Duration);
}

/// [`Settle`] by polling: sleeps 10 ms (or `max`, when shorter).
#[derive(Debug, Clone, Copy, Default)]
pub struct Poll;

impl Settle for Poll {
    fn settle(&mut self, max: Duration) {
        std::thread::sleep(POLL_INTERVAL.min(max));
    }
}

/// Sets a PF's VF count, the way the kernel requires, and waits for it.
///
/// 1. Checks that the function is a PF and `count <= sriov_totalvfs`
///    (nothing is written otherwise).
/// 2. Returns at once when `sriov_numvfs` already equals `count`.
/// 3. When the current count is not 0, writes `0` first (the kernel refuses
///    to change a non-zero count with `EBUSY`) and reads it back.
/// 4. Writes `count`, reads it back, then waits until the links
///    `virtfn0..virtfn{count-1}` exist and no higher one does, polling every
///    10 ms for at most `timeout` ([`Error::Timeout`] names the missing link).
///
/// Drivers may take seconds per VF; callers pick `timeout` accordingly.
pub fn set_num_vfs(
    root: &HostRoot,
    pf: &PciAddress,
    count: u32,
    timeout: Duration,
) -> Result<NumVfsChange> {
    set_num_vfs_settled_by(root, pf, count, timeout, &mut Poll)
}

/// [`set_num_vfs`], waiting between checks with `settle` (e.g. on uevents)
/// instead of polling.
pub fn set_num_vfs_settled_by(
    root: &HostRoot,
    pf: &PciAddress,
    count: u32,
    timeout: Duration,
    settle: &mut dyn Settle,
) -> Result<NumVfsChange> {
    let dir = root.pci_device(pf);
    if !dir.exists() {
        return Err(Error::NoSuchDevice {
            address: *pf,
            path: dir,
        });
    }
    let total_path = dir.join("sriov_totalvfs");
    let Some(total) = read_u32(&dir, "sriov_totalvfs")? else {
        return Err(Error::NotSriovPf {
            address: *pf,
            path: total_path,
        });
    };
    let num_path = dir.join("sriov_numvfs");
    if count > total {
        return Err(Error::TooManyVfs {
            address: *pf,
            requested: count,
            total,
            path: num_path,
        });
    }
    let previous = read_numvfs(&num_path)?;
    if previous == count {
        return Ok(NumVfsChange {
            previous,
            current: count,
        });
    }
    if previous != 0 {
        tracing::info!(pf = %pf, previous, "disabling VFs before changing the count");
        write_numvfs(root, &num_path, 0)?;
        if count == 0 {
            wait_for_vf_links_settled_by(&dir, 0, timeout, settle)?;
            return Ok(NumVfsChange {
                previous,
                current: 0,
            });
        }
    }
    tracing::info!(pf = %pf, count, "enabling VFs");
    write_numvfs(root, &num_path, count)?;
    wait_for_vf_links_settled_by(&dir, count, timeout, settle)?;
    Ok(NumVfsChange {
        previous,
        current: count,
    })
}

fn read_numvfs(path: &Path) -> Result<u32> {
    let v = attr::read_trimmed(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    v.parse().map_err(|_| Error::Parse {
        path: path.to_path_buf(),
        value: v,
        expected: "an unsigned number",
    })
}

fn write_numvfs(root: &HostRoot, path: &Path, count: u32) -> Result<()> {
    root.write_attr(path, &count.to_string())?;
    let now = read_numvfs(path)?;
    if now != count {
        return Err(Error::NotApplied {
            what: format!("setting sriov_numvfs to {count}"),
            path: path.to_path_buf(),
            expected: count.to_string(),
            found: now.to_string(),
            hint: "check dmesg for the PF driver's message",
        });
    }
    Ok(())
}

/// Waits until exactly `virtfn0..virtfn{count-1}` exist (each pointing to an
/// existing function) under a PF directory.
pub fn wait_for_vf_links(pf_dir: &Path, count: u32, timeout: Duration) -> Result<()> {
    wait_for_vf_links_settled_by(pf_dir, count, timeout, &mut Poll)
}

/// [`wait_for_vf_links`], waiting between checks with `settle`.
pub fn wait_for_vf_links_settled_by(
    pf_dir: &Path,
    count: u32,
    timeout: Duration,
    settle: &mut dyn Settle,
) -> Result<()> {
    let start = Instant::now();
    loop {
        // The first missing link (or a stale one at `count`).
        let missing = (0..count).find(|i| !pf_dir.join(format!("virtfn{i}")).exists());
        let stale = std::fs::symlink_metadata(pf_dir.join(format!("virtfn{count}"))).is_ok();
        match (missing, stale) {
            (None, false) => return Ok(()),
            _ if start.elapsed() >= timeout => {
                let (what, link) = match missing {
                    Some(i) => (format!("VF {i} of {count} to appear"), format!("virtfn{i}")),
                    None => (
                        format!("VFs above {count} to go away"),
                        format!("virtfn{count}"),
                    ),
                };
                return Err(Error::Timeout {
                    what,
                    path: pf_dir.join(link),
                    waited: start.elapsed(),
                });
            }
            _ => settle.settle(timeout.saturating_sub(start.elapsed())),
        }
    }
}

/// Sets `sriov_drivers_autoprobe` of a PF (whether drivers probe new VFs)
/// and reads it back.
pub fn set_drivers_autoprobe(root: &HostRoot, pf: &PciAddress, on: bool) -> Result<()> {
    let path = root.pci_device(pf).join("sriov_drivers_autoprobe");
    if !path.exists() {
        return Err(Error::NotSriovPf { address: *pf, path });
    }
    let value = if on { "1" } else { "0" };
    root.write_attr(&path, value)?;
    let now = attr::read_trimmed(&path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    if now != value {
        return Err(Error::NotApplied {
            what: format!("setting sriov_drivers_autoprobe to {value}"),
            path,
            expected: value.into(),
            found: now,
            hint: "the kernel refused the value",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Creates `virtfn<i>` links on each call, counting the calls.
    struct CreatesLinks {
        dir: std::path::PathBuf,
        next: u32,
        calls: u32,
    }

    impl Settle for CreatesLinks {
        fn settle(&mut self, max: Duration) {
            assert!(max > Duration::ZERO);
            self.calls += 1;
            let target = self.dir.join(format!("0000:00:02.{}", self.next));
            std::fs::create_dir_all(&target).unwrap();
            std::os::unix::fs::symlink(&target, self.dir.join(format!("virtfn{}", self.next)))
                .unwrap();
            self.next += 1;
        }
    }

    #[test]
    fn waits_settle_between_checks_and_stop_when_done() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = CreatesLinks {
            dir: tmp.path().to_path_buf(),
            next: 0,
            calls: 0,
        };
        // Two links missing: settled twice, then the check passes (no sleep).
        wait_for_vf_links_settled_by(tmp.path(), 2, Duration::from_secs(60), &mut s).unwrap();
        assert_eq!(s.calls, 2);
        // Already there: no settle at all.
        wait_for_vf_links_settled_by(tmp.path(), 2, Duration::from_secs(60), &mut s).unwrap();
        assert_eq!(s.calls, 2);
    }

    #[test]
    fn a_settle_that_never_helps_times_out_naming_the_link() {
        let tmp = tempfile::tempdir().unwrap();
        struct Nothing(u32);
        impl Settle for Nothing {
            fn settle(&mut self, max: Duration) {
                self.0 += 1;
                std::thread::sleep(max.min(Duration::from_millis(5)));
            }
        }
        let mut n = Nothing(0);
        let e = wait_for_vf_links_settled_by(tmp.path(), 1, Duration::from_millis(30), &mut n)
            .unwrap_err()
            .to_string();
        assert!(e.contains("virtfn0"), "{e}");
        assert!(n.0 >= 1);
    }
}
