//! Executes a [`Plan`]: PFs in parallel (one thread each), the steps of a PF
//! in order, each recorded in the journal before it runs. Every write is
//! checked (read back, bounded wait for the kernel) by `sriov-host`; every
//! failure names the PF, the step and the kernel's error.

use std::path::Path;
use std::time::{Duration, Instant};

use sriov_host::driver::{self, BindOptions};
use sriov_host::error::Error as HostError;
use sriov_host::sriov;
use sriov_host::{HostRoot, PciAddress};

use crate::journal::{Journal, JournalError};
use crate::plan::{Action, PfPlan, PfReason, Plan, VfDriver};

/// Bounds of the waits.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    /// How long the kernel may take to create or remove a PF's VFs.
    pub vf_timeout: Duration,
    /// How long a driver may take to bind one VF.
    pub bind_timeout: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            vf_timeout: Duration::from_secs(60),
            bind_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a PF could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A step failed in the kernel.
    #[error("PF {pf}: {step}: {source}")]
    Step {
        pf: String,
        step: String,
        #[source]
        source: Box<HostError>,
    },
    /// The PF cannot be configured as the spec asks.
    #[error("PF {pf}: {message}")]
    Unappliable { pf: String, message: String },
    /// The journal could not be written (nothing was changed on the PF).
    #[error("PF {pf}: {source}")]
    Journal {
        pf: String,
        #[source]
        source: JournalError,
    },
}

/// What happened on one PF.
#[derive(Debug)]
pub struct PfOutcome {
    /// PCI address.
    pub pci_address: String,
    /// Steps that ran to completion.
    pub steps_done: usize,
    /// How long the PF took.
    pub elapsed: Duration,
    /// `Err` when a step failed (later steps did not run).
    pub result: Result<(), ApplyError>,
}

/// Applies the plan, PFs in parallel. PFs with nothing to do are skipped.
pub fn apply_plan(
    root: &HostRoot,
    plan: &Plan,
    journal: &Journal,
    opts: &ApplyOptions,
) -> Vec<PfOutcome> {
    let work: Vec<&PfPlan> = plan
        .pfs
        .iter()
        .filter(|p| !p.steps.is_empty() || p.error.is_some())
        .collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = work
            .iter()
            .map(|pf| s.spawn(move || apply_pf(root, pf, journal, opts)))
            .collect();
        handles
            .into_iter()
            .zip(&work)
            .map(|(h, pf)| match h.join() {
                Ok(o) => o,
                Err(_) => PfOutcome {
                    pci_address: pf.pci_address.clone(),
                    steps_done: 0,
                    elapsed: Duration::ZERO,
                    result: Err(ApplyError::Unappliable {
                        pf: pf.label(),
                        message: "the worker thread panicked (a bug: please report it)".into(),
                    }),
                },
            })
            .collect()
    })
}

/// Applies one PF's steps in order.
pub fn apply_pf(root: &HostRoot, pf: &PfPlan, journal: &Journal, opts: &ApplyOptions) -> PfOutcome {
    let start = Instant::now();
    let mut done = 0;
    let result = (|| {
        if let Some(message) = &pf.error {
            return Err(ApplyError::Unappliable {
                pf: pf.label(),
                message: message.clone(),
            });
        }
        let jerr = |source| ApplyError::Journal {
            pf: pf.label(),
            source,
        };
        if pf.reason == PfReason::Spec
            && let Some(before) = &pf.before
            && !pf.steps.is_empty()
        {
            journal.adopt(&pf.pci_address, before).map_err(jerr)?;
        }
        let addr = PciAddress::parse(&pf.pci_address).ok_or_else(|| ApplyError::Unappliable {
            pf: pf.label(),
            message: "not a PCI address".into(),
        })?;
        for step in &pf.steps {
            let what = step.action.to_string();
            journal.begin(&pf.pci_address, &what).map_err(jerr)?;
            tracing::info!(pf = %pf.label(), step = %what, "applying");
            run_action(root, &addr, &step.action, opts).map_err(|source| ApplyError::Step {
                pf: pf.label(),
                step: what.clone(),
                source: Box::new(source),
            })?;
            journal.end(&pf.pci_address).map_err(jerr)?;
            done += 1;
        }
        if pf.reason == PfReason::Reset {
            journal.forget(&pf.pci_address).map_err(jerr)?;
        }
        Ok(())
    })();
    PfOutcome {
        pci_address: pf.pci_address.clone(),
        steps_done: done,
        elapsed: start.elapsed(),
        result,
    }
}

fn read_value(path: &Path) -> Result<String, HostError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| HostError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// Writes a netdev's `mtu` and reads it back.
fn set_mtu(root: &HostRoot, path: &Path, mtu: u32) -> Result<(), HostError> {
    root.write_attr(path, &mtu.to_string())?;
    let now = read_value(path)?;
    if now != mtu.to_string() {
        return Err(HostError::NotApplied {
            what: format!("setting the MTU to {mtu}"),
            path: path.to_path_buf(),
            expected: mtu.to_string(),
            found: now,
            hint: "the driver refused the MTU: check its maximum (ip -d link show)",
        });
    }
    Ok(())
}

/// The netdev names of a function (`<dev>/net/*`).
fn netdev_names(dev: &Path) -> Vec<String> {
    std::fs::read_dir(dev.join("net"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn run_action(
    root: &HostRoot,
    pf: &PciAddress,
    action: &Action,
    opts: &ApplyOptions,
) -> Result<(), HostError> {
    match action {
        Action::SetPfMtu { ifname, to, .. } => {
            set_mtu(root, &root.class_net(ifname).join("mtu"), *to)
        }
        Action::SetNumVfs { to, .. } => {
            sriov::set_num_vfs(root, pf, *to, opts.vf_timeout).map(|_| ())
        }
        Action::BindVfs {
            first,
            last,
            driver: want,
            ..
        } => {
            let links = sriov::read_vf_links(&root.pci_device(pf))?;
            for link in links.iter().filter(|l| (*first..=*last).contains(&l.index)) {
                let st = driver::driver_state(root, &link.address)?;
                if want.satisfied_by(st.driver.as_deref(), st.driver_override.as_deref()) {
                    continue;
                }
                match want {
                    VfDriver::Default => {
                        driver::bind_default(root, &link.address, opts.bind_timeout)?;
                    }
                    VfDriver::Override(d) => {
                        driver::bind(
                            root,
                            &link.address,
                            d,
                            &BindOptions {
                                keep_override: true,
                                timeout: opts.bind_timeout,
                            },
                        )?;
                    }
                }
            }
            Ok(())
        }
        Action::SetVfMtu {
            first, last, mtu, ..
        } => {
            let links = sriov::read_vf_links(&root.pci_device(pf))?;
            for link in links.iter().filter(|l| (*first..=*last).contains(&l.index)) {
                let dev = root.pci_device(&link.address);
                for name in netdev_names(&dev) {
                    let path = dev.join("net").join(&name).join("mtu");
                    if read_value(&path)? != mtu.to_string() {
                        set_mtu(root, &path, *mtu)?;
                    }
                }
            }
            Ok(())
        }
    }
}
