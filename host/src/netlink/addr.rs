//! Addresses and routes (`ip addr`, `ip route`) on the same blocking route
//! netlink socket as the link operations: what the CNI plugin configures in
//! the pod's namespace after a move (the Go `ipam.ConfigureIface`), and what
//! it reads back for CHECK and for IPv6 duplicate address detection.
//!
//! The request messages are the ones rtnetlink's builders make (an IPv4
//! address carries `IFA_LOCAL`, `IFA_ADDRESS` and, below /31, the
//! broadcast address, as the Go netlink library computes it; routes go in
//! the main table, protocol static, scope universe), sent with
//! `NLM_F_CREATE | NLM_F_REPLACE` so that a retried ADD is idempotent.

use std::net::IpAddr;

use nix::errno::Errno;
use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use rtnetlink::{AddressMessageBuilder, RouteMessageBuilder};

use super::message::RouteMessage;
use super::{NetlinkError, Op, Result, rtnl::Netlink};

/// One address of a link, as `ip -o addr show dev DEV` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    /// The address.
    pub addr: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
    /// IPv6 duplicate address detection has not finished (`tentative`).
    pub tentative: bool,
    /// Another host on the link has it (`dadfailed`).
    pub dad_failed: bool,
}

/// A route through one link: `ip route replace DST/PREFIX [via GW] dev DEV`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The destination network.
    pub dst: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
    /// The gateway, if any.
    pub gateway: Option<IpAddr>,
    /// The output link's ifindex.
    pub oif: u32,
}

fn request(msg: RouteNetlinkMessage, flags: u16) -> RouteMessage {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    m.finalize();
    m
}

/// `ip addr replace ADDR/PREFIX dev <index>`.
pub(crate) fn add_address_message(index: u32, addr: IpAddr, prefix: u8) -> RouteMessage {
    let msg = match addr {
        IpAddr::V4(a) => AddressMessageBuilder::<std::net::Ipv4Addr>::new()
            .index(index)
            .address(a, prefix)
            .build(),
        IpAddr::V6(a) => AddressMessageBuilder::<std::net::Ipv6Addr>::new()
            .index(index)
            .address(a, prefix)
            .build(),
    };
    request(
        RouteNetlinkMessage::NewAddress(msg),
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
    )
}

/// `RTM_GETADDR` dump (all families; filtered by link on the reply, as the
/// kernel ignores the header's index in a dump without strict checking).
pub(crate) fn dump_addresses_message() -> RouteMessage {
    request(
        RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        NLM_F_REQUEST | NLM_F_DUMP,
    )
}

/// `ip route replace DST/PREFIX [via GW] dev <oif>` (an IPv4 route through
/// an IPv6 gateway as `RTA_VIA`); `None` when the prefix is longer than the
/// address.
pub(crate) fn add_route_message(route: &Route) -> Option<RouteMessage> {
    let max = if route.dst.is_ipv4() { 32 } else { 128 };
    if route.prefix > max {
        return None;
    }
    let mut b = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(route.dst, route.prefix)
        .ok()?
        .output_interface(route.oif);
    if let Some(g) = route.gateway {
        b = b.gateway(g).ok()?;
    }
    Some(request(
        RouteNetlinkMessage::NewRoute(b.build()),
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
    ))
}

/// The [`Address`] an `RTM_NEWADDR` describes (`None` without an address).
pub(crate) fn address_from_message(m: &AddressMessage) -> Option<Address> {
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
    Some(Address {
        addr: addr?,
        prefix: m.header.prefix_len,
        tentative: flags.contains(AddressFlags::Tentative),
        dad_failed: flags.contains(AddressFlags::Dadfailed),
    })
}

impl Netlink {
    /// Adds (or replaces) an address on link `index`.
    pub fn add_address(&self, index: u32, addr: IpAddr, prefix: u8) -> Result<()> {
        let op = Op::AddAddress {
            addr: format!("{addr}/{prefix}"),
        };
        self.request_ack(
            add_address_message(index, addr, prefix),
            &op,
            &index.to_string(),
        )
    }

    /// The addresses of link `index`, in the kernel's order.
    pub fn addresses(&self, index: u32) -> Result<Vec<Address>> {
        let op = Op::ListAddresses;
        let mut out = Vec::new();
        for msg in self.exchange(dump_addresses_message(), &op, &index.to_string())? {
            match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(m))
                    if m.header.index == index =>
                {
                    out.extend(address_from_message(&m));
                }
                NetlinkPayload::Error(e) if e.code.is_some() => {
                    return Err(NetlinkError::Kernel {
                        op,
                        link: index.to_string(),
                        vf: None,
                        errno: Errno::from_raw(-e.raw_code()),
                    });
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Adds (or replaces) a route.
    pub fn add_route(&self, route: &Route) -> Result<()> {
        let op = Op::AddRoute {
            dst: format!("{}/{}", route.dst, route.prefix),
            gateway: route.gateway,
        };
        let link = route.oif.to_string();
        let msg = add_route_message(route).ok_or_else(|| NetlinkError::InvalidArgument {
            op: op.clone(),
            link: link.clone(),
            reason:
                "the destination, its prefix length and the gateway do not fit one address family"
                    .into(),
        })?;
        self.request_ack(msg, &op, &link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_route::AddressFamily;
    use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};

    fn inner(m: RouteMessage) -> RouteNetlinkMessage {
        match m.payload {
            NetlinkPayload::InnerMessage(i) => i,
            other => panic!("not an inner message: {other:?}"),
        }
    }

    #[test]
    fn ipv4_address_carries_local_address_and_broadcast() {
        let m = add_address_message(7, "10.1.2.3".parse().unwrap(), 24);
        assert_eq!(
            m.header.flags,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
        );
        let RouteNetlinkMessage::NewAddress(a) = inner(m) else {
            panic!("not RTM_NEWADDR")
        };
        assert_eq!(a.header.index, 7);
        assert_eq!(a.header.prefix_len, 24);
        assert_eq!(a.header.family, AddressFamily::Inet);
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        assert!(a.attributes.contains(&AddressAttribute::Address(ip)));
        assert!(a.attributes.contains(&AddressAttribute::Local(ip)));
        assert!(
            a.attributes
                .contains(&AddressAttribute::Broadcast("10.1.2.255".parse().unwrap()))
        );
    }

    #[test]
    fn ipv6_address_has_no_broadcast() {
        let RouteNetlinkMessage::NewAddress(a) =
            inner(add_address_message(3, "fd00::5".parse().unwrap(), 64))
        else {
            panic!("not RTM_NEWADDR")
        };
        assert_eq!(a.header.family, AddressFamily::Inet6);
        assert!(
            !a.attributes
                .iter()
                .any(|x| matches!(x, AddressAttribute::Broadcast(_)))
        );
    }

    #[test]
    fn route_with_gateway_via_and_bad_prefix() {
        let r = Route {
            dst: "0.0.0.0".parse().unwrap(),
            prefix: 0,
            gateway: Some("10.1.2.1".parse().unwrap()),
            oif: 9,
        };
        let RouteNetlinkMessage::NewRoute(m) = inner(add_route_message(&r).unwrap()) else {
            panic!("not RTM_NEWROUTE")
        };
        assert_eq!(m.header.destination_prefix_length, 0);
        assert!(m.attributes.contains(&RouteAttribute::Oif(9)));
        assert!(
            m.attributes
                .contains(&RouteAttribute::Gateway(RouteAddress::Inet(
                    "10.1.2.1".parse().unwrap()
                )))
        );
        // An IPv4 route through an IPv6 next hop (RFC 5549) is RTA_VIA.
        let via6 = Route {
            gateway: Some("fe80::1".parse().unwrap()),
            ..r
        };
        let RouteNetlinkMessage::NewRoute(m) = inner(add_route_message(&via6).unwrap()) else {
            panic!("not RTM_NEWROUTE")
        };
        assert!(
            m.attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Via(_)))
        );
        let too_long = Route {
            prefix: 33,
            gateway: None,
            ..r
        };
        assert!(add_route_message(&too_long).is_none());
    }

    #[test]
    fn address_flags_from_ifa_flags() {
        let mut m = AddressMessage::default();
        m.header.prefix_len = 64;
        m.attributes
            .push(AddressAttribute::Address("fd00::9".parse().unwrap()));
        m.attributes.push(AddressAttribute::Flags(
            AddressFlags::Tentative | AddressFlags::Dadfailed,
        ));
        let a = address_from_message(&m).unwrap();
        assert!(a.tentative && a.dad_failed);
        assert_eq!(a.prefix, 64);
        assert!(address_from_message(&AddressMessage::default()).is_none());
    }
}
