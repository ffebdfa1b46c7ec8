//! Errors of netlink operations.

use std::fmt;
use std::path::PathBuf;

use nix::errno::Errno;

/// A netlink operation, named in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `RTM_GETLINK` of one link.
    GetLink,
    /// `RTM_GETLINK` dump.
    ListLinks,
    /// Reading a PF's VF info.
    GetVfs,
    /// Moving a link to another network namespace.
    SetNetns {
        /// Path of the target namespace.
        netns: PathBuf,
    },
    /// Renaming a link.
    Rename {
        /// The new name.
        to: String,
    },
    /// Setting a link's MAC.
    SetMac,
    /// Setting a link's MTU.
    SetMtu(u32),
    /// Setting a link up or down.
    SetUp(bool),
    /// Setting VF attributes on a PF; the text is the iproute2 words
    /// (`vf 3 state disable`).
    SetVf {
        /// What is being set ("VF link state", or "VF settings" for several).
        what: String,
        /// `ip link set` words of the settings.
        args: String,
    },
    /// Deleting a link.
    DeleteLink,
    /// Creating a veth pair.
    AddVeth {
        /// The peer's name.
        peer: String,
    },
    /// Removing an alternative name of a link.
    DelAltName {
        /// The altname.
        alt: String,
    },
    /// Adding an address (`ADDR/PREFIX`) to a link.
    AddAddress {
        /// The address with its prefix length.
        addr: String,
    },
    /// Listing a link's addresses.
    ListAddresses,
    /// Adding a route through a link.
    AddRoute {
        /// The destination with its prefix length.
        dst: String,
        /// The gateway.
        gateway: Option<std::net::IpAddr>,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::GetLink => write!(f, "reading link"),
            Op::ListLinks => write!(f, "listing links"),
            Op::GetVfs => write!(f, "reading VF info of PF"),
            Op::SetNetns { netns } => write!(f, "moving to netns {} link", netns.display()),
            Op::Rename { to } => write!(f, "renaming to {to:?} link"),
            Op::SetMac => write!(f, "setting MAC of link"),
            Op::SetMtu(m) => write!(f, "setting MTU {m} of link"),
            Op::SetUp(true) => write!(f, "setting up link"),
            Op::SetUp(false) => write!(f, "setting down link"),
            Op::SetVf { what, args } => write!(f, "setting {what} ({args}) on PF"),
            Op::DeleteLink => write!(f, "deleting link"),
            Op::AddVeth { peer } => write!(f, "creating veth pair with peer {peer:?}: link"),
            Op::DelAltName { alt } => write!(f, "removing altname {alt:?} of link"),
            Op::AddAddress { addr } => write!(f, "adding address {addr} to link"),
            Op::ListAddresses => write!(f, "listing addresses of link"),
            Op::AddRoute { dst, gateway: None } => write!(f, "adding route {dst} on link"),
            Op::AddRoute {
                dst,
                gateway: Some(g),
            } => write!(f, "adding route {dst} via {g} on link"),
        }
    }
}

/// What to tell the user for a kernel errno on an operation.
fn hint(op: &Op, errno: Errno) -> &'static str {
    match (op, errno) {
        (Op::SetVf { .. }, Errno::EOPNOTSUPP) => {
            ": the PF's driver does not support this VF setting; remove it from the configuration"
        }
        (Op::SetVf { .. }, Errno::EINVAL) => {
            ": the PF's driver rejected the value (VF index beyond sriov_numvfs, or a value the device cannot do)"
        }
        (Op::SetVf { .. }, Errno::EPERM) | (_, Errno::EPERM) => {
            ": needs CAP_NET_ADMIN in the link's network namespace"
        }
        (Op::SetVf { .. }, Errno::EAGAIN) => {
            ": the PF's driver is busy (VF driver not loaded or PF down); retry"
        }
        (Op::Rename { .. }, Errno::EBUSY) => ": the link is up; set it down before renaming",
        (Op::Rename { .. }, Errno::EEXIST) | (Op::SetNetns { .. }, Errno::EEXIST) => {
            ": a link with that name already exists in the target namespace"
        }
        (Op::AddRoute { .. }, Errno::ENETUNREACH) => {
            ": the gateway is not reachable through the link's addresses; check the IPAM routes and gateway"
        }
        (Op::AddAddress { .. }, Errno::EADDRNOTAVAIL) => ": IPv6 is disabled on the link",
        (_, Errno::ENODEV) => ": no such link",
        _ => "",
    }
}

/// Errors of [`LinkOps`](super::LinkOps) operations.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The kernel answered the request with an error.
    #[error("netlink: {op} {link}{vf}: {errno}{hint}",
        vf = vf.map(|v| format!(" (VF {v})")).unwrap_or_default(),
        hint = hint(op, *errno))]
    Kernel {
        /// The operation.
        op: Op,
        /// The link (name or ifindex as the caller gave it).
        link: String,
        /// The VF index for VF operations.
        vf: Option<u32>,
        /// The kernel's errno.
        errno: Errno,
    },
    /// The link does not exist in the namespace the operation ran in.
    #[error("netlink: {op} {link}: no such link in {netns}; check the name with `ip link`")]
    NotFound {
        /// The operation.
        op: Op,
        /// The link.
        link: String,
        /// The namespace ("the current network namespace" or a path).
        netns: String,
    },
    /// The PF has no VF with that index.
    #[error("netlink: PF {link} has no VF {vf} (it reports {num_vfs} VFs); check sriov_numvfs")]
    NoSuchVf {
        /// The PF.
        link: String,
        /// The missing VF index.
        vf: u32,
        /// How many VFs the PF reports.
        num_vfs: u32,
    },
    /// The request was refused before anything was sent.
    #[error("netlink: {op} {link}: invalid argument: {reason}")]
    InvalidArgument {
        /// The operation.
        op: Op,
        /// The link.
        link: String,
        /// Why.
        reason: String,
    },
    /// The netlink socket could not be set up.
    #[error("netlink: cannot open a route netlink socket in {netns}: {source}")]
    Socket {
        /// The namespace.
        netns: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Sending the request or reading the answer failed.
    #[error("netlink: {op} {link}: the route netlink socket in {netns} failed: {source}")]
    Io {
        /// The operation.
        op: Op,
        /// The link.
        link: String,
        /// The namespace.
        netns: String,
        /// The cause.
        source: std::io::Error,
    },
    /// No answer came in time.
    #[error(
        "netlink: no answer from the kernel in {netns} after {after:?}; the PF's driver may be stuck (check dmesg)"
    )]
    Timeout {
        /// The namespace.
        netns: String,
        /// How long the caller waited.
        after: std::time::Duration,
    },
    /// The kernel's answer was not what the protocol says.
    #[error("netlink: {op} {link}: unexpected reply: {detail}")]
    Protocol {
        /// The operation.
        op: Op,
        /// The link.
        link: String,
        /// What was wrong.
        detail: String,
    },
}

impl NetlinkError {
    /// The kernel errno, when the kernel refused the request.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            NetlinkError::Kernel { errno, .. } => Some(*errno),
            NetlinkError::NotFound { .. } => Some(Errno::ENODEV),
            NetlinkError::Socket { source, .. } | NetlinkError::Io { source, .. } => {
                source.raw_os_error().map(Errno::from_raw)
            }
            _ => None,
        }
    }

    /// Whether the kernel said the operation is not supported (EOPNOTSUPP).
    pub fn is_not_supported(&self) -> bool {
        self.errno() == Some(Errno::EOPNOTSUPP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vf_not_supported_message_names_setting() {
        let e = NetlinkError::Kernel {
            op: Op::SetVf {
                what: "VF link state".into(),
                args: "vf 1 state disable".into(),
            },
            link: "enp1s0".into(),
            vf: Some(1),
            errno: Errno::EOPNOTSUPP,
        };
        let s = e.to_string();
        assert!(s.contains("VF link state"), "{s}");
        assert!(s.contains("enp1s0"), "{s}");
        assert!(s.contains("VF 1"), "{s}");
        assert!(s.contains("EOPNOTSUPP"), "{s}");
        assert!(s.contains("does not support"), "{s}");
        assert!(e.is_not_supported());
    }
}
