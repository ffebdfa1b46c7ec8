//! Driver binding, the safe kernel way.
//!
//! Binding a function to driver `D`:
//! 1. check `D` is loaded (`sys/bus/pci/drivers/D` exists);
//! 2. write `D` to the function's `driver_override` (read back), so only `D`
//!    can claim it — no `new_id`, which would grab every device with the same
//!    ids;
//! 3. write the address to the current driver's `unbind`, and check the
//!    `driver` link is gone;
//! 4. write the address to `sys/bus/pci/drivers_probe`, and wait (bounded)
//!    until the `driver` link points to `D`;
//! 5. keep the override (a userspace driver such as vfio-pci stays bound
//!    across re-probes) or clear it (binding back to a kernel driver).
//!
//! Binding back to the default driver clears the override, unbinds and
//! probes, and lets the kernel pick. When a step fails the earlier steps are
//! undone (driver and override restored) as far as the kernel allows, and
//! the error names the path and errno.
//!
//! Unbind and probe are synchronous in the kernel, so the checks after them
//! see the final state at once; the bounded wait only covers drivers that
//! probe asynchronously. A static tree (no kernel behind it) therefore fails
//! the check with [`Error::NotApplied`], which says what was expected.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::attr;
use crate::error::{Error, Result};
use crate::pci::PciAddress;
use crate::root::HostRoot;
use crate::sriov::{Poll, Settle};

/// Drivers that hand a device to userspace (DPDK and friends).
pub const USERSPACE_DRIVERS: &[&str] = &["vfio-pci", "uio_pci_generic", "igb_uio"];

/// Drivers that may stay bound to other members of an IOMMU group whose
/// device is given to vfio-pci (besides vfio-pci itself and no driver).
pub const VFIO_GROUP_COMPATIBLE_DRIVERS: &[&str] = &["vfio-pci", "pci-stub", "pcieport"];

/// What kind of driver a function is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DriverKind {
    /// A kernel network (or other) driver: the device is a kernel device.
    Kernel,
    /// vfio-pci, uio_pci_generic, igb_uio: the device is for userspace.
    Userspace,
    /// No driver bound.
    None,
}

impl DriverKind {
    /// The kind of a driver name (`None` for no driver).
    pub fn of(driver: Option<&str>) -> Self {
        match driver {
            None => DriverKind::None,
            Some(d) if USERSPACE_DRIVERS.contains(&d) => DriverKind::Userspace,
            Some(_) => DriverKind::Kernel,
        }
    }
}

/// A function's binding: its driver and `driver_override`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DriverState {
    pub driver: Option<String>,
    pub driver_override: Option<String>,
}

/// Options of [`bind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindOptions {
    /// Leave `driver_override` set to the new driver after binding (so the
    /// device returns to it on any re-probe). Right for userspace drivers;
    /// set it to `false` when binding a kernel driver.
    pub keep_override: bool,
    /// How long to wait for the driver to claim the device after probing.
    pub timeout: Duration,
}

impl Default for BindOptions {
    fn default() -> Self {
        Self {
            keep_override: true,
            timeout: Duration::from_secs(5),
        }
    }
}

/// What a bind, unbind or rebind did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindOutcome {
    pub address: PciAddress,
    /// The driver before.
    pub previous: Option<String>,
    /// The driver now.
    pub current: Option<String>,
}

impl BindOutcome {
    /// Whether the driver changed.
    pub fn changed(&self) -> bool {
        self.previous != self.current
    }
}

/// Whether a driver is loaded (registered with the PCI bus).
pub fn driver_loaded(root: &HostRoot, driver: &str) -> bool {
    !driver.is_empty() && !driver.contains('/') && root.pci_driver(driver).is_dir()
}

/// [`Error::DriverNotLoaded`] (which says to modprobe it) unless loaded.
pub fn require_driver(root: &HostRoot, driver: &str) -> Result<()> {
    if driver_loaded(root, driver) {
        Ok(())
    } else {
        Err(Error::DriverNotLoaded {
            driver: driver.to_string(),
            path: root.pci_driver(driver),
        })
    }
}

/// The driver a function is bound to now.
pub fn current_driver(root: &HostRoot, address: &PciAddress) -> Result<Option<String>> {
    let dir = root.pci_device(address);
    if !dir.exists() {
        return Err(Error::NoSuchDevice {
            address: *address,
            path: dir,
        });
    }
    attr::read_link_name(&dir.join("driver"))
}

/// A function's driver and `driver_override`.
pub fn driver_state(root: &HostRoot, address: &PciAddress) -> Result<DriverState> {
    let driver = current_driver(root, address)?;
    let driver_override = attr::read_opt(&root.pci_device(address).join("driver_override"))?
        .filter(|v| v != "(null)");
    Ok(DriverState {
        driver,
        driver_override,
    })
}

/// Binds a function to `driver` (see the module docs for the steps). A
/// function already on `driver` only has its override aligned with
/// `opts.keep_override`. On failure the previous driver and override are
/// restored as far as possible.
pub fn bind(
    root: &HostRoot,
    address: &PciAddress,
    driver: &str,
    opts: &BindOptions,
) -> Result<BindOutcome> {
    bind_settled_by(root, address, driver, opts, &mut Poll)
}

/// [`bind`], waiting for the driver with `settle` (e.g. on uevents)
/// instead of polling.
pub fn bind_settled_by(
    root: &HostRoot,
    address: &PciAddress,
    driver: &str,
    opts: &BindOptions,
    settle: &mut dyn Settle,
) -> Result<BindOutcome> {
    let before = driver_state(root, address)?;
    require_driver(root, driver)?;
    let outcome = |current: Option<String>| BindOutcome {
        address: *address,
        previous: before.driver.clone(),
        current,
    };
    let want_override = opts.keep_override.then_some(driver);
    if before.driver.as_deref() == Some(driver) {
        if before.driver_override.as_deref() != want_override {
            write_override(root, address, want_override)?;
        }
        return Ok(outcome(Some(driver.to_string())));
    }
    tracing::info!(%address, from = ?before.driver, to = driver, "binding");
    let mut steps = || -> Result<()> {
        write_override(root, address, Some(driver))?;
        if let Some(cur) = &before.driver {
            unbind_from(root, address, cur)?;
        }
        probe(root, address)?;
        wait_for_driver(root, address, Some(driver), opts.timeout, settle)?;
        if !opts.keep_override {
            write_override(root, address, None)?;
        }
        Ok(())
    };
    if let Err(e) = steps() {
        undo(root, address, &before, opts.timeout, settle);
        return Err(e);
    }
    Ok(outcome(Some(driver.to_string())))
}

/// Gives a function back to its default driver: clears `driver_override`,
/// unbinds a driver that was chosen by the override or is a userspace
/// driver, writes `drivers_probe` and waits (bounded) for some driver to
/// claim it. A function on a kernel driver without an override is left as
/// it is. On failure the previous state is restored.
pub fn bind_default(
    root: &HostRoot,
    address: &PciAddress,
    timeout: Duration,
) -> Result<BindOutcome> {
    bind_default_settled_by(root, address, timeout, &mut Poll)
}

/// [`bind_default`], waiting for a driver with `settle` instead of polling.
pub fn bind_default_settled_by(
    root: &HostRoot,
    address: &PciAddress,
    timeout: Duration,
    settle: &mut dyn Settle,
) -> Result<BindOutcome> {
    let before = driver_state(root, address)?;
    let forced = before.driver_override.is_some()
        || DriverKind::of(before.driver.as_deref()) == DriverKind::Userspace;
    if before.driver.is_some() && !forced {
        return Ok(BindOutcome {
            address: *address,
            previous: before.driver.clone(),
            current: before.driver,
        });
    }
    tracing::info!(%address, from = ?before.driver, "binding the default driver");
    let clear_override = before.driver_override.is_some();
    reprobe(root, address, before, clear_override, None, timeout, settle)
}

/// Unbinds a function from its driver (nothing to do when it has none).
/// `driver_override` is left as it is.
pub fn unbind(root: &HostRoot, address: &PciAddress) -> Result<BindOutcome> {
    let previous = current_driver(root, address)?;
    if let Some(cur) = &previous {
        tracing::info!(%address, driver = cur, "unbinding");
        unbind_from(root, address, cur)?;
    }
    Ok(BindOutcome {
        address: *address,
        previous,
        current: None,
    })
}

/// Unbinds and re-probes a function (a driver reset): it comes back on the
/// override's driver if one is set, else on its current driver; an unbound
/// function is just probed and must be claimed by some driver.
pub fn rebind(root: &HostRoot, address: &PciAddress, timeout: Duration) -> Result<BindOutcome> {
    let before = driver_state(root, address)?;
    let expected = before
        .driver_override
        .clone()
        .or_else(|| before.driver.clone());
    reprobe(
        root,
        address,
        before,
        false,
        expected.as_deref(),
        timeout,
        &mut Poll,
    )
}

/// From `before`: clears `driver_override` when `clear_override`, unbinds
/// the driver, writes `drivers_probe` and waits for `want` (any driver when
/// `None`); puts `before` back when a step fails.
fn reprobe(
    root: &HostRoot,
    address: &PciAddress,
    before: DriverState,
    clear_override: bool,
    want: Option<&str>,
    timeout: Duration,
    settle: &mut dyn Settle,
) -> Result<BindOutcome> {
    let steps = |settle: &mut dyn Settle| -> Result<String> {
        if clear_override {
            write_override(root, address, None)?;
        }
        if let Some(cur) = &before.driver {
            unbind_from(root, address, cur)?;
        }
        probe(root, address)?;
        wait_for_driver(root, address, want, timeout, settle)
    };
    match steps(settle) {
        Ok(current) => Ok(BindOutcome {
            address: *address,
            previous: before.driver,
            current: Some(current),
        }),
        Err(e) => {
            undo(root, address, &before, timeout, settle);
            Err(e)
        }
    }
}

/// Brings a function back to a recorded [`DriverState`]: its driver (by
/// override + probe) and then its override. Used to undo a bind.
pub fn restore(
    root: &HostRoot,
    address: &PciAddress,
    state: &DriverState,
    timeout: Duration,
) -> Result<()> {
    restore_settled_by(root, address, state, timeout, &mut Poll)
}

fn restore_settled_by(
    root: &HostRoot,
    address: &PciAddress,
    state: &DriverState,
    timeout: Duration,
    settle: &mut dyn Settle,
) -> Result<()> {
    let now = driver_state(root, address)?;
    if now == *state {
        return Ok(());
    }
    if now.driver != state.driver {
        if let Some(cur) = &now.driver {
            unbind_from(root, address, cur)?;
        }
        if let Some(d) = &state.driver {
            write_override(root, address, Some(d))?;
            probe(root, address)?;
            wait_for_driver(root, address, Some(d), timeout, settle)?;
        }
    }
    let now_override = driver_state(root, address)?.driver_override;
    if now_override != state.driver_override {
        write_override(root, address, state.driver_override.as_deref())?;
    }
    Ok(())
}

fn undo(
    root: &HostRoot,
    address: &PciAddress,
    before: &DriverState,
    timeout: Duration,
    settle: &mut dyn Settle,
) {
    match restore_settled_by(root, address, before, timeout, settle) {
        Ok(()) => tracing::info!(%address, ?before, "restored the previous binding"),
        Err(e) => {
            tracing::warn!(%address, ?before, error = %e, "could not restore the previous binding")
        }
    }
}

/// Writes `driver_override` (`None` clears it with a lone newline, as the
/// kernel expects) and reads it back.
pub fn write_override(root: &HostRoot, address: &PciAddress, driver: Option<&str>) -> Result<()> {
    let path = root.pci_device(address).join("driver_override");
    let value = match driver {
        Some(d) => d.to_string(),
        None => "\n".to_string(),
    };
    root.write_attr(&path, &value)?;
    let now = attr::read_opt(&path)?.filter(|v| v != "(null)");
    if now.as_deref() != driver {
        return Err(Error::NotApplied {
            what: format!(
                "setting driver_override of {address} to {}",
                driver.unwrap_or("(null)")
            ),
            path,
            expected: driver.unwrap_or("(null)").to_string(),
            found: now.unwrap_or_else(|| "(null)".into()),
            hint: "the kernel did not keep the value",
        });
    }
    Ok(())
}

fn unbind_from(root: &HostRoot, address: &PciAddress, driver: &str) -> Result<()> {
    let path = root.pci_driver(driver).join("unbind");
    root.write_attr(&path, &address.to_string())?;
    let link = driver_link(root, address);
    if let Some(still) = attr::read_link_name(&link)? {
        return Err(Error::NotApplied {
            what: format!(
                "unbinding {address} from {driver} (wrote {})",
                path.display()
            ),
            path: link,
            expected: "(no driver)".into(),
            found: still,
            hint: "the kernel did not release the device (is this a real sysfs?)",
        });
    }
    Ok(())
}

fn probe(root: &HostRoot, address: &PciAddress) -> Result<()> {
    root.write_attr(&root.drivers_probe(), &address.to_string())
}

fn driver_link(root: &HostRoot, address: &PciAddress) -> PathBuf {
    root.pci_device(address).join("driver")
}

/// Waits until `address` is bound to `want`, or to any driver when `want`
/// is `None`; returns the driver.
fn wait_for_driver(
    root: &HostRoot,
    address: &PciAddress,
    want: Option<&str>,
    timeout: Duration,
    settle: &mut dyn Settle,
) -> Result<String> {
    let link = driver_link(root, address);
    let start = Instant::now();
    loop {
        let now = attr::read_link_name(&link)?;
        if let Some(d) = &now
            && want.is_none_or(|w| w == d)
        {
            return Ok(d.clone());
        }
        if start.elapsed() >= timeout {
            let waited = format!(
                "(wrote {}, waited {:?})",
                root.drivers_probe().display(),
                start.elapsed()
            );
            return Err(match want {
                Some(driver) => Error::NotApplied {
                    what: format!("binding {address} to {driver} {waited}"),
                    path: link,
                    expected: driver.to_string(),
                    found: now.unwrap_or_else(|| "(no driver)".into()),
                    hint: "the driver did not claim the device: see dmesg; vfio-pci needs an IOMMU (or noiommu mode) and a VF driver needs its PF up",
                },
                None => Error::NotApplied {
                    what: format!("probing {address} {waited}"),
                    path: link,
                    expected: "a driver".into(),
                    found: "(no driver)".into(),
                    hint: "no loaded driver claimed the device: modprobe its driver",
                },
            });
        }
        settle.settle(timeout.saturating_sub(start.elapsed()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_kinds() {
        assert_eq!(DriverKind::of(None), DriverKind::None);
        assert_eq!(DriverKind::of(Some("vfio-pci")), DriverKind::Userspace);
        assert_eq!(DriverKind::of(Some("igb_uio")), DriverKind::Userspace);
        assert_eq!(DriverKind::of(Some("iavf")), DriverKind::Kernel);
    }
}
