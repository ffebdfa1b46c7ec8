//! `dpdk-bind bind` and `unbind`: validate every device first, then act;
//! when one device fails, the ones already changed are put back.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use sriov_host::driver::{self, BindOptions, BindOutcome, DriverKind, DriverState};
use sriov_host::pci::PciFunction;
use sriov_host::root::HostRoot;
use sriov_host::routes::RouteTable;
use sriov_host::scan::scan;

use crate::{checks, targets};

fn refuse(problems: Vec<String>) -> anyhow::Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    bail!("nothing was changed:\n  {}", problems.join("\n  "))
}

pub fn bind(
    root: &HostRoot,
    driver: &str,
    args: &[String],
    force: bool,
    timeout: Duration,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let node = scan(root)?;
    let targets = match targets::resolve(root, &node, args) {
        Ok(t) => t,
        Err(problems) => return refuse(problems),
    };
    let mut problems = Vec::new();
    if let Err(e) = driver::require_driver(root, driver) {
        problems.push(e.to_string());
    }
    let routes = RouteTable::read(root)?;
    let changing: Vec<&PciFunction> = targets
        .iter()
        .copied()
        .filter(|f| f.driver.as_deref() != Some(driver))
        .collect();
    if !force {
        for f in &changing {
            problems.extend(checks::active_interfaces(f, &routes));
        }
    }
    if driver == "vfio-pci" {
        problems.extend(checks::iommu_groups(root, &node, &targets)?);
        for f in &targets {
            if f.iommu_group.is_none() {
                eprintln!(
                    "warning: {} has no IOMMU group: vfio-pci binds it only in noiommu mode",
                    f.address
                );
            }
        }
    }
    refuse(problems)?;

    let opts = BindOptions {
        keep_override: DriverKind::of(Some(driver)) == DriverKind::Userspace,
        timeout,
    };
    let mut done: Vec<(&PciFunction, DriverState)> = Vec::new();
    for f in &targets {
        let before = driver::driver_state(root, &f.address)?;
        match driver::bind(root, &f.address, driver, &opts) {
            Ok(o) => {
                report(out, &o, driver)?;
                if o.changed() {
                    done.push((f, before));
                }
            }
            Err(e) => {
                undo(root, &done, timeout, out)?;
                return Err(e).with_context(|| format!("binding {} to {driver}", f.address));
            }
        }
    }
    Ok(())
}

pub fn unbind(
    root: &HostRoot,
    args: &[String],
    force: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let node = scan(root)?;
    let targets = match targets::resolve(root, &node, args) {
        Ok(t) => t,
        Err(problems) => return refuse(problems),
    };
    if !force {
        let routes = RouteTable::read(root)?;
        let problems: Vec<String> = targets
            .iter()
            .flat_map(|f| checks::active_interfaces(f, &routes))
            .collect();
        refuse(problems)?;
    }
    for f in &targets {
        let o = driver::unbind(root, &f.address)?;
        match &o.previous {
            Some(d) => writeln!(out, "{}: unbound from {d}", o.address)?,
            None => writeln!(out, "{}: was not bound to a driver", o.address)?,
        }
    }
    Ok(())
}

fn report(out: &mut impl Write, o: &BindOutcome, driver: &str) -> std::io::Result<()> {
    if !o.changed() {
        return writeln!(out, "{}: already bound to {driver}", o.address);
    }
    match &o.previous {
        Some(p) => writeln!(out, "{}: {p} -> {driver}", o.address),
        None => writeln!(out, "{}: bound to {driver}", o.address),
    }
}

fn undo(
    root: &HostRoot,
    done: &[(&PciFunction, DriverState)],
    timeout: Duration,
    out: &mut impl Write,
) -> std::io::Result<()> {
    for (f, before) in done.iter().rev() {
        let back = before.driver.as_deref().unwrap_or("no driver");
        match driver::restore(root, &f.address, before, timeout) {
            Ok(()) => writeln!(out, "{}: put back on {back}", f.address)?,
            Err(e) => eprintln!("dpdk-bind: could not put {} back on {back}: {e}", f.address),
        }
    }
    Ok(())
}
