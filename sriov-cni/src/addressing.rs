//! Addresses and routes inside the pod's network namespace (what the Go
//! `ipam.ConfigureIface` does), gratuitous ARP / unsolicited neighbour
//! advertisements, and reading addresses back for CHECK.
//!
//! Everything runs on a fresh thread inside the namespace
//! ([`Netns::run`]) with its own route netlink socket.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use rtnetlink::RouteMessageBuilder;
use rtnetlink::packet_route::address::AddressAttribute;
use sriov_host::netlink::MacAddr;
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

/// Adds the result's addresses and routes to `ifname` in `netns` (the link
/// must be up), then announces the addresses (gratuitous ARP for IPv4,
/// unsolicited neighbour advertisement for IPv6; failures to announce are
/// logged, not errors).
pub fn configure(netns: &Netns, ifname: &str, mac: Option<MacAddr>, res: &CniResult) -> Result<()> {
    let res = res.clone();
    let ifname = ifname.to_owned();
    with_handle(netns, async move |h| {
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
        // Announce, still on the namespace's thread.
        if let Some(mac) = mac {
            for ip in &res.ips {
                let r = match ip.address {
                    IpAddr::V4(v4) => send_garp(index, mac, v4),
                    IpAddr::V6(v6) => send_unsolicited_na(index, mac, v6),
                };
                if let Err(e) = r {
                    tracing::warn!(address = %ip.address, "cannot announce address: {e}");
                }
            }
        }
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

/// Sends one gratuitous ARP request (sender = target = `ip`) on `ifindex`
/// of the calling thread's namespace.
fn send_garp(ifindex: u32, mac: MacAddr, ip: Ipv4Addr) -> std::io::Result<()> {
    let proto = (libc::ETH_P_ARP as u16).to_be();
    // SAFETY: plain socket syscalls on an fd owned here.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            proto as i32,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut pkt = Vec::with_capacity(28);
    pkt.extend_from_slice(&1u16.to_be_bytes()); // Ethernet
    pkt.extend_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    pkt.push(6);
    pkt.push(4);
    pkt.extend_from_slice(&1u16.to_be_bytes()); // request
    pkt.extend_from_slice(&mac.0);
    pkt.extend_from_slice(&ip.octets());
    pkt.extend_from_slice(&[0; 6]);
    pkt.extend_from_slice(&ip.octets());
    // SAFETY: zeroed sockaddr_ll is valid; fields set below.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = proto;
    sa.sll_ifindex = ifindex as i32;
    sa.sll_halen = 6;
    sa.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    // SAFETY: buffer and address are valid for the call.
    let r = unsafe {
        libc::sendto(
            fd,
            pkt.as_ptr().cast(),
            pkt.len(),
            0,
            (&sa as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    let err = std::io::Error::last_os_error();
    // SAFETY: closing our fd.
    unsafe { libc::close(fd) };
    if r < 0 { Err(err) } else { Ok(()) }
}

/// Sends one unsolicited neighbour advertisement for `ip` to ff02::1 on
/// `ifindex` (override flag, target link-layer address option).
fn send_unsolicited_na(ifindex: u32, mac: MacAddr, ip: Ipv6Addr) -> std::io::Result<()> {
    // SAFETY: plain socket syscalls on an fd owned here.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET6,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_ICMPV6,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let hops: libc::c_int = 255;
    // SAFETY: valid option value pointers.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_MULTICAST_HOPS,
            (&hops as *const libc::c_int).cast(),
            4,
        );
        let idx = ifindex as libc::c_int;
        libc::setsockopt(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_MULTICAST_IF,
            (&idx as *const libc::c_int).cast(),
            4,
        );
    }
    let mut pkt = vec![136u8, 0, 0, 0, 0x20, 0, 0, 0]; // NA, override
    pkt.extend_from_slice(&ip.octets());
    pkt.extend_from_slice(&[2, 1]); // target link-layer address, 8 bytes
    pkt.extend_from_slice(&mac.0);
    // SAFETY: zeroed sockaddr_in6 is valid; fields set below.
    let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    sa.sin6_family = libc::AF_INET6 as u16;
    sa.sin6_addr.s6_addr = "ff02::1".parse::<Ipv6Addr>().expect("literal").octets();
    sa.sin6_scope_id = ifindex;
    // SAFETY: buffer and address are valid for the call.
    let r = unsafe {
        libc::sendto(
            fd,
            pkt.as_ptr().cast(),
            pkt.len(),
            0,
            (&sa as *const libc::sockaddr_in6).cast(),
            std::mem::size_of::<libc::sockaddr_in6>() as u32,
        )
    };
    let err = std::io::Error::last_os_error();
    // SAFETY: closing our fd.
    unsafe { libc::close(fd) };
    if r < 0 { Err(err) } else { Ok(()) }
}
