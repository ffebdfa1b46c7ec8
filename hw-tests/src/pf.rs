//! The PFs under test, from the environment:
//! `SRIOV_HW_PF` (required for every test), `SRIOV_HW_PF2` (a second PF, for
//! tests that need two), `SRIOV_HW_REQUIRED=1` (absence is a failure, not a
//! skip).

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use sriov_sim::lanes::{self, Lane};

use crate::{HwError, sysfs, wait_for};

/// An SR-IOV physical function under test.
#[derive(Debug, Clone)]
pub struct HwPf {
    /// Its netdev name (`SRIOV_HW_PF`).
    pub ifname: String,
    /// Its PCI address, `0000:01:00.0`.
    pub pci: String,
    /// The kernel driver bound to it (`igb`, `ice`, `i40e`, `mlx5_core` …).
    pub driver: String,
    /// `sriov_totalvfs`.
    pub totalvfs: u32,
}

impl HwPf {
    /// Resolves a PF from its netdev name through `/sys/class/net`.
    pub fn from_ifname(ifname: &str) -> Result<HwPf, String> {
        let dev = PathBuf::from("/sys/class/net").join(ifname).join("device");
        let pci = sysfs::link_name(&dev)
            .ok_or_else(|| format!("{ifname}: no {} (not a PCI network device?)", dev.display()))?;
        let driver = sysfs::driver(&pci).unwrap_or_default();
        let totalvfs = sysfs::read_u32(sysfs::pci_dir(&pci).join("sriov_totalvfs"))
            .map_err(|e| format!("{ifname} ({pci}) is not an SR-IOV PF: {e}"))?;
        Ok(HwPf {
            ifname: ifname.to_string(),
            pci,
            driver,
            totalvfs,
        })
    }

    /// The PF's PCI device directory in sysfs.
    pub fn dir(&self) -> PathBuf {
        sysfs::pci_dir(&self.pci)
    }

    /// `sriov_numvfs` as the kernel reports it.
    pub fn numvfs(&self) -> Result<u32, HwError> {
        sysfs::read_u32(self.dir().join("sriov_numvfs"))
    }

    /// One raw write to `sriov_numvfs` (no 0 first, no wait): the kernel's
    /// answer, errno included.
    pub fn write_numvfs(&self, n: u32) -> Result<(), HwError> {
        sysfs::write(self.dir().join("sriov_numvfs"), &n.to_string())
    }

    /// Sets the VF count the way the kernel requires (0 first when changing a
    /// non-zero count) and waits until the `virtfnN` links match.
    pub fn set_numvfs(&self, n: u32) -> Result<(), HwError> {
        let cur = self.numvfs()?;
        if cur == n {
            return Ok(());
        }
        if cur != 0 {
            self.write_numvfs(0)?;
        }
        if n != 0 {
            self.write_numvfs(n)?;
        }
        wait_for(&format!("{} virtfn links of {}", n, self.pci), 10.0, || {
            (self.vf_pcis().len() == n as usize).then_some(())
        })
    }

    /// The PCI address of VF `index` (from the PF's `virtfnN` link).
    pub fn vf_pci(&self, index: u32) -> Option<String> {
        sysfs::link_name(self.dir().join(format!("virtfn{index}")))
    }

    /// The PCI addresses of all VFs, in index order.
    pub fn vf_pcis(&self) -> Vec<String> {
        (0..self.totalvfs).map_while(|i| self.vf_pci(i)).collect()
    }

    /// Waits until VF `index` has a netdev and returns its name.
    pub fn wait_vf_netdev(&self, index: u32) -> Result<String, HwError> {
        let vf = self.vf_pci(index).ok_or_else(|| HwError::Parse {
            what: format!("{}/virtfn{index}", self.dir().display()),
            detail: "no such VF".into(),
        })?;
        wait_for(&format!("a netdev on VF {index} ({vf})"), 10.0, || {
            sysfs::netdevs(&vf).into_iter().next()
        })
    }
}

/// Exclusive use of the PF(s) under test for one test; restores nothing by
/// itself (see [`NumVfsGuard`]).
#[derive(Debug)]
pub struct PfLock {
    /// `SRIOV_HW_PF`.
    pub pf: HwPf,
    /// `SRIOV_HW_PF2`, when set.
    pub pf2: Option<HwPf>,
    _lock: MutexGuard<'static, ()>,
}

impl std::ops::Deref for PfLock {
    type Target = HwPf;
    fn deref(&self) -> &HwPf {
        &self.pf
    }
}

static PF_LOCK: Mutex<()> = Mutex::new(());

fn required() -> bool {
    std::env::var("SRIOV_HW_REQUIRED").is_ok_and(|v| v == "1")
}

fn skip_or_fail(test: &str, why: &str) -> Option<PfLock> {
    if required() {
        panic!("{test}: SRIOV_HW_REQUIRED=1 but {why}");
    }
    eprintln!("SKIP {test}: {why} (set SRIOV_HW_PF to an SR-IOV PF's netdev to run it)");
    None
}

fn resolve(var: &str) -> Option<Result<HwPf, String>> {
    let name = std::env::var(var).ok().filter(|v| !v.is_empty())?;
    Some(HwPf::from_ifname(&name).map_err(|e| format!("{var}={name}: {e}")))
}

/// The PF under test (`SRIOV_HW_PF`), locked for this test. `None` (after
/// printing `SKIP`) when it is not set or this is not root; panics when
/// `SRIOV_HW_REQUIRED=1` and it is missing, or when it names no SR-IOV PF.
pub fn pf(test: &str) -> Option<PfLock> {
    if !lanes::require(test, &[Lane::Root]) {
        return None;
    }
    let pf = match resolve("SRIOV_HW_PF") {
        None => return skip_or_fail(test, "SRIOV_HW_PF is not set"),
        Some(Err(e)) => panic!("{test}: {e}"),
        Some(Ok(pf)) => pf,
    };
    let pf2 = match resolve("SRIOV_HW_PF2") {
        None => None,
        Some(Err(e)) => panic!("{test}: {e}"),
        Some(Ok(pf)) => Some(pf),
    };
    let lock = PF_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    Some(PfLock {
        pf,
        pf2,
        _lock: lock,
    })
}

/// Like [`pf`], for tests that need two PFs (`SRIOV_HW_PF2` too).
pub fn pf2(test: &str) -> Option<PfLock> {
    let lock = pf(test)?;
    if lock.pf2.is_none() {
        drop(lock);
        return skip_or_fail(test, "SRIOV_HW_PF2 is not set (this test needs two PFs)");
    }
    Some(lock)
}

/// Sets the PF's VF count back to what it was when the guard was made, on
/// drop (also when the test panics).
#[derive(Debug)]
pub struct NumVfsGuard {
    pf: HwPf,
    original: u32,
}

impl NumVfsGuard {
    /// Records the PF's current VF count.
    pub fn new(pf: &HwPf) -> Result<Self, HwError> {
        Ok(NumVfsGuard {
            pf: pf.clone(),
            original: pf.numvfs()?,
        })
    }
}

impl Drop for NumVfsGuard {
    fn drop(&mut self) {
        if let Err(e) = self.pf.set_numvfs(self.original) {
            eprintln!(
                "cleanup: restoring sriov_numvfs={} on {}: {e}",
                self.original, self.pf.ifname
            );
        }
    }
}
