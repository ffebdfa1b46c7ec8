//! Addresses and routes inside the pod's network namespace (what the Go
//! `ipam.ConfigureIface` does), announcements (gratuitous ARP /
//! unsolicited neighbour advertisements, sent by the kernel), and reading
//! addresses back for CHECK.
//!
//! Everything runs inside the namespace on the host crate's blocking route
//! netlink socket ([`Netlink`], the same transport as the link and VF
//! operations): on the calling thread ([`Netns::run_here`]), or on a thread
//! of its own ([`Netns::run`]) when the caller is inside an async runtime.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use sriov_host::netlink::{LinkOps, Netlink, NetlinkError, Route};
use sriov_host::netns::Netns;
use sriov_host::sysctl::{self, Family};

use crate::error::{CniError, Code, Result};
use crate::result::CniResult;

fn addr_err(msg: String, e: impl std::fmt::Display) -> CniError {
    CniError::new(Code::Addressing, msg, e.to_string())
}

/// Runs `f` with a route netlink socket opened inside `netns`: on the
/// calling thread (the plugin's main thread: no thread start), or on a
/// thread of its own when the caller runs an async runtime (which must not
/// block on the kernel).
fn with_netlink<T: Send>(netns: &Netns, f: impl FnOnce(&Netlink) -> Result<T> + Send) -> Result<T> {
    let work = move || {
        let nl = Netlink::open()
            .map_err(|e| addr_err("cannot open a route netlink socket".into(), e))?;
        f(&nl)
    };
    let ran = if tokio::runtime::Handle::try_current().is_err() {
        netns.run_here(work)
    } else {
        netns.run(work)
    };
    ran.map_err(|e| {
        CniError::new(
            Code::Netns,
            "cannot enter the pod network namespace",
            e.to_string(),
        )
    })?
}

fn link_index(nl: &Netlink, ifname: &str) -> Result<u32> {
    nl.link(ifname.into())
        .map(|l| l.index)
        .map_err(|e| match e {
            NetlinkError::NotFound { .. } => addr_err(
                format!("cannot find interface {ifname} in the pod"),
                "no such link",
            ),
            e => addr_err(format!("cannot find interface {ifname} in the pod"), e),
        })
}

/// Adds the result's addresses to `ifname` in `netns` (best while it is
/// down), has the kernel announce them when the link comes up (gratuitous
/// ARP via `arp_notify`, unsolicited NA via `ndisc_notify`), sets it up,
/// then adds the routes.
pub fn configure(netns: &Netns, ifname: &str, res: &CniResult) -> Result<()> {
    with_netlink(netns, |nl| {
        tracing::debug!("in the pod's netns");
        let index = link_index(nl, ifname)?;
        let mut v4gw = None;
        let mut v6gw = None;
        for ip in &res.ips {
            nl.add_address(index, ip.address, ip.prefix).map_err(|e| {
                addr_err(
                    format!(
                        "cannot add address {}/{} to {ifname} in the pod",
                        ip.address, ip.prefix
                    ),
                    e,
                )
            })?;
            match ip.gateway {
                Some(g @ IpAddr::V4(_)) if v4gw.is_none() => v4gw = Some(g),
                Some(g @ IpAddr::V6(_)) if v6gw.is_none() => v6gw = Some(g),
                _ => {}
            }
        }
        tracing::debug!("addresses added");
        let has_v6 = res.ips.iter().any(|ip| ip.address.is_ipv6());
        if has_v6 {
            // As the CNI's ipam.ConfigureIface: IPv6 on for the interface
            // and lo, in case the namespace's defaults turned it off.
            for dev in [ifname, "lo"] {
                sysctl::enable_ipv6(dev)
                    .map_err(|e| addr_err(format!("cannot enable IPv6 on {dev} in the pod"), e))?;
            }
        }
        // The kernel announces the addresses when the link comes up:
        // gratuitous ARP for every IPv4 address (arp_notify), unsolicited
        // NA for IPv6 ones once DAD completes (ndisc_notify). A userspace
        // AF_PACKET socket would cost an RCU grace period on close.
        for (family, key) in [(Family::Ipv4, "arp_notify"), (Family::Ipv6, "ndisc_notify")] {
            if let Err(e) = sysctl::write_conf(family, ifname, key, "1") {
                tracing::warn!("cannot enable {key} ({e}); addresses will not be announced");
            }
        }
        nl.set_up(index.into(), true)
            .map_err(|e| addr_err(format!("cannot set {ifname} up in the pod"), e))?;
        if has_v6 {
            settle(nl, index, ifname, SETTLE_TIMEOUT)?;
        }
        for r in &res.routes {
            let gateway = r.gw.or(if r.dst.is_ipv4() { v4gw } else { v6gw });
            let route = Route {
                dst: r.dst,
                prefix: r.dst_prefix,
                gateway,
                oif: index,
            };
            nl.add_route(&route).map_err(|e| {
                addr_err(
                    format!(
                        "cannot add route {}/{}{} on {ifname} in the pod",
                        r.dst,
                        r.dst_prefix,
                        gateway.map(|g| format!(" via {g}")).unwrap_or_default()
                    ),
                    e,
                )
            })?;
        }
        tracing::debug!("routes added");
        Ok(())
    })
}

/// How long ADD waits for IPv6 duplicate address detection (the CNI's
/// `ip.SettleAddresses` bound in `ipam.ConfigureIface`).
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a link without carrier is given to get one before the wait
/// for DAD is skipped (the Go sriov-cni waits 200 ms for carrier before
/// announcing addresses).
const CARRIER_GRACE: Duration = Duration::from_millis(200);

const SETTLE_POLL: Duration = Duration::from_millis(20);

/// Addresses on link `index` that are tentative and that failed DAD.
fn dad_state(nl: &Netlink, index: u32) -> Result<(Vec<IpAddr>, Vec<IpAddr>)> {
    let addrs = nl
        .addresses(index)
        .map_err(|e| addr_err("cannot list addresses in the pod".into(), e))?;
    let failed = addrs.iter().filter(|a| a.dad_failed).map(|a| a.addr);
    let tentative = addrs
        .iter()
        .filter(|a| a.tentative && !a.dad_failed)
        .map(|a| a.addr);
    Ok((tentative.collect(), failed.collect()))
}

/// Whether link `index` has carrier (`IFF_LOWER_UP`).
fn has_carrier(nl: &Netlink, index: u32) -> Result<bool> {
    nl.link(index.into())
        .map(|l| l.lower_up)
        .map_err(|e| addr_err("cannot read the interface in the pod".into(), e))
}

/// Waits (at most `timeout`) until no address on the link is tentative,
/// as the CNI's `ip.SettleAddresses`, so that the pod can bind its IPv6
/// addresses as soon as ADD returns. An address that failed DAD (another
/// host has it) is an error. A link without carrier cannot run DAD: after
/// a short grace the wait is skipped with a warning (the kernel finishes
/// DAD when carrier comes), instead of stalling ADD for the whole bound.
/// A timeout is a warning too, as in the Go plugins.
fn settle(nl: &Netlink, index: u32, ifname: &str, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let (tentative, failed) = dad_state(nl, index)?;
        if let Some(a) = failed.first() {
            return Err(addr_err(
                format!("IPv6 address {a} on {ifname} failed duplicate address detection"),
                "another host on the link uses it; check the IPAM range for overlaps",
            ));
        }
        if tentative.is_empty() {
            tracing::debug!(waited = ?start.elapsed(), "IPv6 addresses settled");
            return Ok(());
        }
        let waited = start.elapsed();
        if waited >= CARRIER_GRACE && !has_carrier(nl, index)? {
            tracing::warn!(
                ?tentative,
                "{ifname} has no carrier, so IPv6 duplicate address detection cannot run yet; not waiting for it"
            );
            return Ok(());
        }
        if waited >= timeout {
            tracing::warn!(
                ?tentative,
                "{ifname} still has tentative IPv6 addresses after {timeout:?}; continuing"
            );
            return Ok(());
        }
        std::thread::sleep(SETTLE_POLL);
    }
}

/// The addresses (with prefix) on `ifname` in `netns`.
pub fn addresses(netns: &Netns, ifname: &str) -> Result<Vec<(IpAddr, u8)>> {
    with_netlink(netns, |nl| {
        let index = link_index(nl, ifname)?;
        let addrs = nl
            .addresses(index)
            .map_err(|e| addr_err(format!("cannot list addresses of {ifname}"), e))?;
        Ok(addrs.into_iter().map(|a| (a.addr, a.prefix)).collect())
    })
}
