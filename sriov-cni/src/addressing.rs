//! Addresses and routes inside the pod's network namespace (what the Go
//! `ipam.ConfigureIface` does), announcements (gratuitous ARP /
//! unsolicited neighbour advertisements, sent by the kernel), and reading
//! addresses back for CHECK.
//!
//! Everything runs inside the namespace with its own route netlink socket:
//! on the calling thread ([`Netns::run_here`]), or on a thread of its own
//! ([`Netns::run`]) when the caller is inside an async runtime.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use rtnetlink::RouteMessageBuilder;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
use sriov_host::netns::Netns;

use crate::error::{CniError, Code, Result};
use crate::result::CniResult;

fn addr_err(msg: String, e: impl std::fmt::Display) -> CniError {
    CniError::new(Code::Addressing, msg, e.to_string())
}

/// Runs `f` with a route netlink handle inside `netns`.
fn with_handle<T: Send>(
    netns: &Netns,
    f: impl AsyncFnOnce(rtnetlink::Handle) -> Result<T> + Send,
) -> Result<T> {
    let work = move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| addr_err("cannot start a netlink runtime".into(), e))?;
        rt.block_on(async move {
            let (conn, handle, _) = rtnetlink::new_connection()
                .map_err(|e| addr_err("cannot open a route netlink socket".into(), e))?;
            tokio::spawn(conn);
            f(handle).await
        })
    };
    // On the calling thread (the plugin's main thread: no thread start);
    // on a thread of its own when the caller runs an async runtime, which
    // cannot block on another one.
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

async fn link_index(h: &rtnetlink::Handle, ifname: &str) -> Result<u32> {
    let msg = h
        .link()
        .get()
        .match_name(ifname.to_owned())
        .execute()
        .try_next()
        .await
        .map_err(|e| addr_err(format!("cannot find interface {ifname} in the pod"), e))?
        .ok_or_else(|| {
            addr_err(
                format!("cannot find interface {ifname} in the pod"),
                "no such link",
            )
        })?;
    Ok(msg.header.index)
}

/// Adds the result's addresses to `ifname` in `netns` (best while it is
/// down), has the kernel announce them when the link comes up (gratuitous
/// ARP via `arp_notify`, unsolicited NA via `ndisc_notify`), sets it up,
/// then adds the routes.
pub fn configure(netns: &Netns, ifname: &str, res: &CniResult) -> Result<()> {
    let res = res.clone();
    let ifname = ifname.to_owned();
    with_handle(netns, async move |h| {
        tracing::debug!("in the pod's netns");
        let index = link_index(&h, &ifname).await?;
        let mut v4gw = None;
        let mut v6gw = None;
        for ip in &res.ips {
            h.address()
                .add(index, ip.address, ip.prefix)
                .replace()
                .execute()
                .await
                .map_err(|e| {
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
            for dev in [ifname.as_str(), "lo"] {
                let path = format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6");
                if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() != "0")
                    && let Err(e) = std::fs::write(&path, "0")
                {
                    return Err(addr_err(
                        format!("cannot enable IPv6 on {dev} in the pod ({path})"),
                        e,
                    ));
                }
            }
        }
        // The kernel announces the addresses when the link comes up:
        // gratuitous ARP for every IPv4 address (arp_notify), unsolicited
        // NA for IPv6 ones once DAD completes (ndisc_notify). A userspace
        // AF_PACKET socket would cost an RCU grace period on close.
        for (path, what) in [
            (
                format!("/proc/sys/net/ipv4/conf/{ifname}/arp_notify"),
                "arp_notify",
            ),
            (
                format!("/proc/sys/net/ipv6/conf/{ifname}/ndisc_notify"),
                "ndisc_notify",
            ),
        ] {
            if let Err(e) = std::fs::write(&path, "1") {
                tracing::warn!(
                    "cannot enable {what} ({path}): {e}; addresses will not be announced"
                );
            }
        }
        h.link()
            .set(rtnetlink::LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| addr_err(format!("cannot set {ifname} up in the pod"), e))?;
        if has_v6 {
            settle(&h, index, &ifname, SETTLE_TIMEOUT).await?;
        }
        for r in &res.routes {
            let gw = r.gw.or(if r.dst.is_ipv4() { v4gw } else { v6gw });
            let mut b = RouteMessageBuilder::<IpAddr>::new()
                .destination_prefix(r.dst, r.dst_prefix)
                .map_err(|e| {
                    addr_err(
                        format!("bad route {}/{}", r.dst, r.dst_prefix),
                        format!("{e:?}"),
                    )
                })?
                .output_interface(index);
            if let Some(g) = gw {
                b = b
                    .gateway(g)
                    .map_err(|e| addr_err(format!("bad gateway {g}"), format!("{e:?}")))?;
            }
            h.route()
                .add(b.build())
                .replace()
                .execute()
                .await
                .map_err(|e| {
                    addr_err(
                        format!(
                            "cannot add route {}/{}{} on {ifname} in the pod",
                            r.dst,
                            r.dst_prefix,
                            gw.map(|g| format!(" via {g}")).unwrap_or_default()
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
async fn dad_state(h: &rtnetlink::Handle, index: u32) -> Result<(Vec<IpAddr>, Vec<IpAddr>)> {
    let mut tentative = Vec::new();
    let mut failed = Vec::new();
    let mut s = h.address().get().set_link_index_filter(index).execute();
    while let Some(m) = s
        .try_next()
        .await
        .map_err(|e| addr_err("cannot list addresses in the pod".into(), e))?
    {
        if m.header.index != index {
            continue;
        }
        // IFA_FLAGS (32 bits) when present, else the header's 8 bits.
        let mut flags = AddressFlags::from_bits_retain(u32::from(m.header.flags.bits()));
        let mut addr = None;
        for a in &m.attributes {
            match a {
                AddressAttribute::Flags(f) => flags = *f,
                AddressAttribute::Address(ip) => addr = Some(*ip),
                _ => {}
            }
        }
        let Some(addr) = addr else { continue };
        if flags.contains(AddressFlags::Dadfailed) {
            failed.push(addr);
        } else if flags.contains(AddressFlags::Tentative) {
            tentative.push(addr);
        }
    }
    Ok((tentative, failed))
}

/// Whether link `index` has carrier (`IFF_LOWER_UP`).
async fn has_carrier(h: &rtnetlink::Handle, index: u32) -> Result<bool> {
    let msg = h
        .link()
        .get()
        .match_index(index)
        .execute()
        .try_next()
        .await
        .map_err(|e| addr_err("cannot read the interface in the pod".into(), e))?;
    Ok(msg.is_some_and(|m| {
        m.header
            .flags
            .contains(rtnetlink::packet_route::link::LinkFlags::LowerUp)
    }))
}

/// Waits (at most `timeout`) until no address on the link is tentative,
/// as the CNI's `ip.SettleAddresses`, so that the pod can bind its IPv6
/// addresses as soon as ADD returns. An address that failed DAD (another
/// host has it) is an error. A link without carrier cannot run DAD: after
/// a short grace the wait is skipped with a warning (the kernel finishes
/// DAD when carrier comes), instead of stalling ADD for the whole bound.
/// A timeout is a warning too, as in the Go plugins.
async fn settle(h: &rtnetlink::Handle, index: u32, ifname: &str, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let (tentative, failed) = dad_state(h, index).await?;
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
        if waited >= CARRIER_GRACE && !has_carrier(h, index).await? {
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
        tokio::time::sleep(SETTLE_POLL).await;
    }
}

/// The addresses (with prefix) on `ifname` in `netns`.
pub fn addresses(netns: &Netns, ifname: &str) -> Result<Vec<(IpAddr, u8)>> {
    let ifname = ifname.to_owned();
    with_handle(netns, async move |h| {
        let index = link_index(&h, &ifname).await?;
        let mut out = Vec::new();
        let mut s = h.address().get().set_link_index_filter(index).execute();
        while let Some(m) = s
            .try_next()
            .await
            .map_err(|e| addr_err(format!("cannot list addresses of {ifname}"), e))?
        {
            if m.header.index != index {
                continue;
            }
            for a in &m.attributes {
                if let AddressAttribute::Address(ip) = a {
                    out.push((*ip, m.header.prefix_len));
                }
            }
        }
        Ok(out)
    })
}
