//! Links as netlink reports them, and how callers name a link.

use std::fmt;
use std::str::FromStr;

/// How a caller names a link: by interface name or by ifindex. Both are
/// resolved in the network namespace of the [`LinkOps`](super::LinkOps)
/// instance that receives them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LinkId {
    /// Interface name (`IFLA_IFNAME`), at most 15 bytes.
    Name(String),
    /// Interface index (`ifi_index`).
    Index(u32),
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkId::Name(n) => write!(f, "{n}"),
            LinkId::Index(i) => write!(f, "ifindex {i}"),
        }
    }
}

impl From<&str> for LinkId {
    fn from(s: &str) -> Self {
        LinkId::Name(s.to_owned())
    }
}

impl From<String> for LinkId {
    fn from(s: String) -> Self {
        LinkId::Name(s)
    }
}

impl From<&String> for LinkId {
    fn from(s: &String) -> Self {
        LinkId::Name(s.clone())
    }
}

impl From<u32> for LinkId {
    fn from(i: u32) -> Self {
        LinkId::Index(i)
    }
}

/// A link (network interface) as `RTM_GETLINK` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Hardware address (`IFLA_ADDRESS`), when the link has a 6-byte one.
    pub mac: Option<MacAddr>,
    /// MTU.
    pub mtu: u32,
    /// Administratively up (`IFF_UP`).
    pub admin_up: bool,
    /// Lower layer up (`IFF_LOWER_UP`, carrier).
    pub lower_up: bool,
    /// Number of VFs (`IFLA_NUM_VF`), present only when the link is an
    /// SR-IOV PF and VF info was requested.
    pub num_vfs: Option<u32>,
    /// Link kind from `IFLA_LINKINFO` (`veth`, `dummy`, …); `None` for
    /// hardware links.
    pub kind: Option<String>,
    /// Alternative names (`IFLA_PROP_LIST { IFLA_ALT_IFNAME }`, `ip link
    /// property add … altname`), which move with the link between
    /// namespaces.
    pub alt_names: Vec<String>,
}

/// A 6-byte Ethernet MAC address. Parses and prints as `02:00:00:aa:bb:cc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The all-zero address (`00:00:00:00:00:00`), which the kernel reports
    /// for a VF with no administratively set MAC.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The address bytes.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Whether this is `00:00:00:00:00:00`.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// The first 6 bytes of `bytes` when it has at least 6 (VF MACs are
    /// reported in a 32-byte field).
    pub fn from_slice(bytes: &[u8]) -> Option<MacAddr> {
        let b: [u8; 6] = bytes.get(..6)?.try_into().ok()?;
        Some(MacAddr(b))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// Error parsing a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid MAC address {0:?}: expected six hex octets separated by ':' like 02:00:00:aa:bb:cc"
)]
pub struct ParseMacError(pub String);

impl FromStr for MacAddr {
    type Err = ParseMacError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseMacError(s.to_owned());
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for o in out.iter_mut() {
            let p = parts.next().ok_or_else(err)?;
            if p.is_empty() || p.len() > 2 {
                return Err(err());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trip() {
        let m: MacAddr = "02:0A:ff:00:1:22".parse().unwrap();
        assert_eq!(m.0, [2, 10, 255, 0, 1, 0x22]);
        assert_eq!(m.to_string(), "02:0a:ff:00:01:22");
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "zz:00:00:00:00:00",
            "020:00:00:00:00:00",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn link_id_display() {
        assert_eq!(LinkId::from("eth0").to_string(), "eth0");
        assert_eq!(LinkId::from(7u32).to_string(), "ifindex 7");
    }
}

/// One move of a link into another namespace with everything the target
/// needs in one `RTM_NEWLINK` ([`LinkOps::move_link`](super::LinkOps::move_link)):
/// `ip link set <index> netns FD name NAME [address MAC] [mtu MTU] up|down`.
///
/// The kernel (`do_setlink`) moves the device first (which closes it; when
/// its current name is taken in the target it takes the new name during
/// the move), then sets address and MTU, renames it in the target, and
/// finally changes the flags. So the name never exists in the source, and
/// never clashes in the target with the link's old name: what the Go
/// sriov-cni does with a temporary namespace and three requests, in one.
/// If the new name is taken in the target the request fails (EEXIST);
/// callers check the target first.
#[derive(Debug, Clone, Copy)]
pub struct MoveLink<'a> {
    /// The link's ifindex in the source namespace.
    pub index: u32,
    /// The target namespace.
    pub to: &'a crate::netns::Netns,
    /// The name in the target namespace.
    pub name: &'a str,
    /// A MAC to set.
    pub mac: Option<MacAddr>,
    /// An MTU to set.
    pub mtu: Option<u32>,
    /// Bring it up in the target (else it stays down: a move closes it).
    pub up: bool,
}
