//! Addresses and routes inside the pod's network namespace (what the Go
//! `ipam.ConfigureIface` does), announcements (gratuitous ARP /
//! unsolicited neighbour advertisements, sent by the kernel), and reading
//! addresses back for CHECK.
//!
//! Everything runs on a fresh thread inside the namespace
//! ([`Netns::run`]) with its own route netlink socket.

use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::RouteMessageBuilder;
use rtnetlink::packet_route::address::AddressAttribute;
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
    netns
        .run(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .map_err(|e| addr_err("cannot start a netlink runtime".into(), e))?;
            rt.block_on(async move {
                let (conn, handle, _) = rtnetlink::new_connection()
                    .map_err(|e| addr_err("cannot open a route netlink socket".into(), e))?;
                tokio::spawn(conn);
                f(handle).await
            })
        })
        .map_err(|e| {
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
