//! Executes a [`Plan`]: PFs in parallel (one thread each), the steps of a PF
//! in order, each recorded in the journal before it runs. Every write is
//! checked (read back, bounded wait for the kernel) by `sriov-host`; every
//! failure names the PF, the step and the kernel's error.
//!
//! Waits are event-driven: each PF's worker listens for uevents (the
//! kernel's, or the simulator's) before its first write and re-checks the
//! kernel's state when one arrives ([`UeventWait`]), with the same bounded
//! timeouts; without an event source it polls every 10 ms. PF link and VF
//! admin MAC steps go through netlink ([`LinkOps`]).

use std::path::Path;
use std::time::{Duration, Instant};

use sriov_host::driver::{self, BindOptions, DriverKind};
use sriov_host::error::Error as HostError;
use sriov_host::netdev;
use sriov_host::netlink::{LinkOps, MacAddr, Netlink, NetlinkError};
use sriov_host::sriov::{self, Settle};
use sriov_host::{HostRoot, PciAddress};

use crate::events::UeventWait;
use crate::journal::{Journal, JournalError};
use crate::plan::{Action, PfPlan, PfReason, Plan, VfDriver, is_netdev_driver};

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

/// How the apply waits for the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitMode {
    /// On uevents, with a re-check every [`crate::events::RECHECK`]; polls
    /// when no event source is available.
    #[default]
    Uevents,
    /// Poll every 10 ms.
    Poll,
}

/// What an apply uses besides sysfs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyEnv<'a> {
    /// Netlink in the daemon's network namespace, for the PF link and VF
    /// admin MAC steps (`None`: those steps fail, saying so).
    pub links: Option<&'a dyn LinkOps>,
    /// How waits are done.
    pub waits: WaitMode,
}

/// Whether a step needs netlink.
fn uses_netlink(a: &Action) -> bool {
    matches!(a, Action::SetPfUp { .. } | Action::SetVfAdminMacs { .. })
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
    /// A netlink step failed.
    #[error("PF {pf}: {step}: {source}")]
    Link {
        pf: String,
        step: String,
        #[source]
        source: Box<NetlinkError>,
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
    /// Waits that a uevent ended (0 when polling).
    pub event_wakeups: u64,
    /// `Err` when a step failed (later steps did not run).
    pub result: Result<(), ApplyError>,
}

/// Applies the plan, PFs in parallel. PFs with nothing to do are skipped.
/// Waits on uevents; netlink (for PF link and VF admin MAC steps) is opened
/// here, in the calling thread's network namespace, when a step needs it.
pub fn apply_plan(
    root: &HostRoot,
    plan: &Plan,
    journal: &Journal,
    opts: &ApplyOptions,
) -> Vec<PfOutcome> {
    let needs_netlink = plan
        .pfs
        .iter()
        .flat_map(|p| &p.steps)
        .any(|s| uses_netlink(&s.action));
    let netlink = if needs_netlink {
        Netlink::open()
            .inspect_err(|e| tracing::warn!(error = %e, "cannot open netlink"))
            .ok()
    } else {
        None
    };
    let env = ApplyEnv {
        links: netlink.as_ref().map(|n| n as &dyn LinkOps),
        waits: WaitMode::Uevents,
    };
    apply_plan_in_env(root, plan, journal, opts, &env)
}

/// [`apply_plan`] with the netlink handle and wait mode given.
pub fn apply_plan_in_env(
    root: &HostRoot,
    plan: &Plan,
    journal: &Journal,
    opts: &ApplyOptions,
    env: &ApplyEnv<'_>,
) -> Vec<PfOutcome> {
    let work: Vec<&PfPlan> = plan
        .pfs
        .iter()
        .filter(|p| !p.steps.is_empty() || p.error.is_some())
        .collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = work
            .iter()
            .map(|pf| s.spawn(move || apply_pf_in_env(root, pf, journal, opts, env)))
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
                    event_wakeups: 0,
                    result: Err(ApplyError::Unappliable {
                        pf: pf.label(),
                        message: "the worker thread panicked (a bug: please report it)".into(),
                    }),
                },
            })
            .collect()
    })
}

/// Applies one PF's steps in order, waiting on uevents, without netlink.
pub fn apply_pf(root: &HostRoot, pf: &PfPlan, journal: &Journal, opts: &ApplyOptions) -> PfOutcome {
    apply_pf_in_env(root, pf, journal, opts, &ApplyEnv::default())
}

/// Applies one PF's steps in order.
pub fn apply_pf_in_env(
    root: &HostRoot,
    pf: &PfPlan,
    journal: &Journal,
    opts: &ApplyOptions,
    env: &ApplyEnv<'_>,
) -> PfOutcome {
    let start = Instant::now();
    // Listening before the first write, so no event of ours is missed.
    let mut wait = match env.waits {
        WaitMode::Uevents if !pf.steps.is_empty() => UeventWait::open(root.path()),
        _ => UeventWait::polling(),
    };
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
            wait.discard_queued();
            run_action(root, &addr, &step.action, opts, env.links, &mut wait).map_err(
                |e| match e {
                    StepError::Host(source) => ApplyError::Step {
                        pf: pf.label(),
                        step: what.clone(),
                        source: Box::new(source),
                    },
                    StepError::Link(source) => ApplyError::Link {
                        pf: pf.label(),
                        step: what.clone(),
                        source: Box::new(source),
                    },
                    StepError::Other(message) => ApplyError::Unappliable {
                        pf: pf.label(),
                        message: format!("{what}: {message}"),
                    },
                },
            )?;
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
        event_wakeups: wait.wakeups,
        result,
    }
}

/// Writes a netdev's `mtu` and reads it back.
fn set_mtu(root: &HostRoot, path: &Path, mtu: u32) -> Result<(), HostError> {
    root.write_attr(path, &mtu.to_string())?;
    let now = root.read_attr(path)?;
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

/// Why a step failed.
enum StepError {
    Host(HostError),
    Link(NetlinkError),
    Other(String),
}

impl From<HostError> for StepError {
    fn from(e: HostError) -> Self {
        StepError::Host(e)
    }
}

impl From<NetlinkError> for StepError {
    fn from(e: NetlinkError) -> Self {
        StepError::Link(e)
    }
}

/// The MAC of a function's netdev in sysfs (`<function>/net/<name>/address`).
fn netdev_mac(root: &HostRoot, address: &PciAddress) -> Option<MacAddr> {
    let dev = root.pci_device(address);
    netdev::names_of(root, address)
        .into_iter()
        .find_map(|name| {
            root.read_attr(&dev.join("net").join(name).join("address"))
                .ok()?
                .parse()
                .ok()
        })
}

/// Waits (bounded) until a VF's netdev shows in sysfs; its MAC.
fn wait_for_netdev_mac(
    root: &HostRoot,
    vf: &PciAddress,
    timeout: Duration,
    wait: &mut dyn Settle,
) -> Result<MacAddr, StepError> {
    let dev = root.pci_device(vf);
    let start = Instant::now();
    loop {
        if let Some(mac) = netdev_mac(root, vf) {
            return Ok(mac);
        }
        if start.elapsed() >= timeout {
            return Err(StepError::Other(format!(
                "VF {vf} has no netdev under {} after {:?}: its driver did not create one (see dmesg)",
                dev.join("net").display(),
                start.elapsed()
            )));
        }
        wait.settle(timeout.saturating_sub(start.elapsed()));
    }
}

/// Sets the admin MAC of the listed VFs (all in range for `VF i`
/// placeholders) that have none to their netdev's MAC, and reads it back.
fn set_vf_admin_macs(
    root: &HostRoot,
    pf: &PciAddress,
    links: &dyn LinkOps,
    action: &Action,
    opts: &ApplyOptions,
    wait: &mut dyn Settle,
) -> Result<(), StepError> {
    let Action::SetVfAdminMacs {
        ifname,
        first,
        last,
        vfs,
        wait_netdevs,
    } = action
    else {
        unreachable!("called for SetVfAdminMacs only");
    };
    let all_in_range = vfs.iter().any(|v| v.starts_with("VF "));
    let admin: std::collections::BTreeMap<u32, MacAddr> = links
        .vfs(ifname.into())?
        .into_iter()
        .map(|v| (v.index, v.mac))
        .collect();
    let vf_links = sriov::read_vf_links(&root.pci_device(pf))?;
    if admin.is_empty() && !vf_links.is_empty() {
        // The kernel lists a PF's VFs (IFLA_VFINFO_LIST) whenever it has
        // any; a netdev that lists none while sysfs shows VFs has no VF
        // table to set (a simulated node's veth-backed PF, a driver
        // without ndo_get_vf_config). Setting MACs there could only fail.
        tracing::warn!(
            pf = %ifname,
            vfs = vf_links.len(),
            "the PF's netdev reports no VFs over netlink: VF admin MACs not set"
        );
        return Ok(());
    }
    for link in vf_links {
        let i = link.index;
        let addr = link.address.to_string();
        if !(*first..=*last).contains(&i) || !(all_in_range || vfs.contains(&addr)) {
            continue;
        }
        if admin.get(&i).is_some_and(|m| !m.is_zero()) {
            continue; // set meanwhile (e.g. by the CNI)
        }
        let drv = driver::current_driver(root, &link.address)?;
        if DriverKind::of(drv.as_deref()) != DriverKind::Kernel {
            tracing::debug!(vf = %addr, driver = ?drv, "no kernel driver: no MAC to keep");
            continue;
        }
        let mac = match netdev_mac(root, &link.address) {
            Some(m) => m,
            None if *wait_netdevs && is_netdev_driver(drv.as_deref()) => {
                wait_for_netdev_mac(root, &link.address, opts.bind_timeout, wait)?
            }
            None => {
                tracing::debug!(vf = %addr, "no netdev in this namespace: MAC left alone");
                continue;
            }
        };
        links.set_vf_mac(ifname.into(), i, mac)?;
        let now = links.vf(ifname.into(), i)?.mac;
        if now != mac {
            return Err(StepError::Other(format!(
                "VF {i} of {ifname}: the admin MAC reads {now} after setting {mac}; the PF driver did not keep it"
            )));
        }
    }
    Ok(())
}

fn run_action(
    root: &HostRoot,
    pf: &PciAddress,
    action: &Action,
    opts: &ApplyOptions,
    links: Option<&dyn LinkOps>,
    wait: &mut UeventWait,
) -> Result<(), StepError> {
    let need_links = || {
        links.ok_or_else(|| {
            StepError::Other(
                "netlink is not available to this process (it needs CAP_NET_ADMIN in the host network namespace)".into(),
            )
        })
    };
    match action {
        Action::SetPfMtu { ifname, to, .. } => {
            Ok(set_mtu(root, &root.class_net(ifname).join("mtu"), *to)?)
        }
        Action::SetNumVfs { to, .. } => {
            sriov::set_num_vfs_settled_by(root, pf, *to, opts.vf_timeout, wait)?;
            Ok(())
        }
        Action::SetPfUp { ifname } => {
            let links = need_links()?;
            links.set_up(ifname.into(), true)?;
            if !links.link(ifname.into())?.admin_up {
                return Err(StepError::Other(format!(
                    "{ifname} is still down after setting it up; see dmesg"
                )));
            }
            Ok(())
        }
        a @ Action::SetVfAdminMacs { .. } => {
            set_vf_admin_macs(root, pf, need_links()?, a, opts, wait)
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
                        driver::bind_default_settled_by(
                            root,
                            &link.address,
                            opts.bind_timeout,
                            wait,
                        )?;
                    }
                    VfDriver::Override(d) => {
                        driver::bind_settled_by(
                            root,
                            &link.address,
                            d,
                            &BindOptions {
                                keep_override: true,
                                timeout: opts.bind_timeout,
                            },
                            wait,
                        )?;
                    }
                }
            }
            Ok(())
        }
        Action::SetVfMtu {
            first,
            last,
            mtu,
            vfs,
        } => {
            // VFs created by an earlier step of this run: their driver may
            // register the netdev a little later (iavf does it async).
            let fresh = vfs.iter().any(|v| v.starts_with("VF "));
            let links = sriov::read_vf_links(&root.pci_device(pf))?;
            for link in links.iter().filter(|l| (*first..=*last).contains(&l.index)) {
                let dev = root.pci_device(&link.address);
                if fresh
                    && netdev::names_of(root, &link.address).is_empty()
                    && is_netdev_driver(driver::current_driver(root, &link.address)?.as_deref())
                {
                    wait_for_netdev_mac(root, &link.address, opts.bind_timeout, wait)?;
                }
                for name in netdev::names_of(root, &link.address) {
                    let path = dev.join("net").join(&name).join("mtu");
                    if root.read_attr(&path)? != mtu.to_string() {
                        set_mtu(root, &path, *mtu)?;
                    }
                }
            }
            Ok(())
        }
    }
}
