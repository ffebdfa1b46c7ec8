//! Netlink link and VF operations behind a small synchronous trait,
//! [`LinkOps`].
//!
//! - [`Netlink`] is the real implementation: a blocking route netlink
//!   socket, requests sent and answers read on the calling thread (messages
//!   from rtnetlink's `packet_route`). It can be opened inside any network
//!   namespace ([`Netlink::open_in`]): the calling thread enters the
//!   namespace only to create the socket. Async code calls it from
//!   `tokio::task::spawn_blocking`.
//! - [`RecordingLinkOps`] is an in-memory fake for other components' unit
//!   tests: it records every call, holds links and VF state, and fails on
//!   demand with a chosen errno.
//! - [`Netlink::add_address`], [`Netlink::addresses`] and
//!   [`Netlink::add_route`]: addresses and routes on the same socket.
//! - [`devlink`]: `devlink dev info` over generic netlink (the DDP
//!   package ice reports), on the same kind of socket.
//! - [`message`] builds the request messages. The VF messages are
//!   byte-identical to those of iproute2's `ip link set DEV vf N …` (checked
//!   against captured fixtures in `host/tests/fixtures/`).
//!
//! See `docs/netlink.md`.

mod addr;
pub mod devlink;
mod error;
mod link;
pub mod message;
mod recording;
mod rtnl;
mod vf;

use std::sync::Arc;

pub use addr::{Address, Route};
pub use error::{NetlinkError, Op};
pub use link::{Link, LinkId, MacAddr, MoveLink, ParseMacError};
pub use recording::{Call, Failure, FakeLink, Recorded, RecordingLinkOps};
pub use rtnl::Netlink;
pub use vf::{ParseVfError, VfInfo, VfLinkState, VfSetting, VfVlan, VlanProto};

use crate::netns::Netns;

/// Result of netlink operations.
pub type Result<T, E = NetlinkError> = std::result::Result<T, E>;

/// Link and VF operations in one network namespace.
///
/// Links are named by [`LinkId`] (`"eth0".into()` or `7u32.into()`) and
/// resolved in the namespace of this instance. All calls block the calling
/// thread until the kernel answered; from async code use
/// `tokio::task::spawn_blocking`.
pub trait LinkOps: Send + Sync + std::fmt::Debug {
    /// Looks up one link.
    fn link(&self, id: LinkId) -> Result<Link>;

    /// All links of the namespace, in ifindex order.
    fn links(&self) -> Result<Vec<Link>>;

    /// The VFs of PF `pf` as the PF reports them, in VF index order (empty
    /// when it has none or is no PF).
    fn vfs(&self, pf: LinkId) -> Result<Vec<VfInfo>>;

    /// One VF of PF `pf`; [`NetlinkError::NoSuchVf`] when the PF has no VF
    /// with that index.
    fn vf(&self, pf: LinkId, vf: u32) -> Result<VfInfo> {
        let vfs = self.vfs(pf.clone())?;
        let num_vfs = vfs.len() as u32;
        vfs.into_iter()
            .find(|v| v.index == vf)
            .ok_or(NetlinkError::NoSuchVf {
                link: pf.to_string(),
                vf,
                num_vfs,
            })
    }

    /// Moves a link into the network namespace `netns`
    /// (`ip link set DEV netns FD`). The link keeps its name there.
    fn set_netns(&self, id: LinkId, netns: &Netns) -> Result<()>;

    /// Renames a link (it must be down).
    fn rename(&self, id: LinkId, new_name: &str) -> Result<()>;

    /// Sets a link's MAC address.
    fn set_mac(&self, id: LinkId, mac: MacAddr) -> Result<()>;

    /// Sets a link's MTU.
    fn set_mtu(&self, id: LinkId, mtu: u32) -> Result<()>;

    /// Sets a link administratively up or down.
    fn set_up(&self, id: LinkId, up: bool) -> Result<()>;

    /// Sets attributes of VF `vf` on PF `pf` in one request, exactly as
    /// `ip link set PF vf VF <settings…>` does. Nothing is sent when a
    /// setting is out of range ([`NetlinkError::InvalidArgument`]).
    fn set_vf(&self, pf: LinkId, vf: u32, settings: &[VfSetting]) -> Result<()>;

    /// The same operations inside another network namespace.
    fn in_netns(&self, netns: &Netns) -> Result<Arc<dyn LinkOps>>;

    /// Moves a link into another namespace, renamed there and with MAC,
    /// MTU and up/down set, in one request ([`MoveLink`]).
    fn move_link(&self, req: &MoveLink<'_>) -> Result<()>;

    /// Removes the alternative name `alt` of link `dev` (`ip link property
    /// del dev DEV altname ALT`). `Ok(true)` when it was there; `Ok(false)`
    /// when the link has no such altname (ENOENT), the name is another
    /// link's or the link's own (EINVAL), or the kernel predates altnames
    /// (EOPNOTSUPP).
    fn del_alt_name(&self, dev: &str, alt: &str) -> Result<bool>;

    /// `ip link set PF vf N mac MAC`.
    fn set_vf_mac(&self, pf: LinkId, vf: u32, mac: MacAddr) -> Result<()> {
        self.set_vf(pf, vf, &[VfSetting::Mac(mac)])
    }

    /// `ip link set PF vf N vlan V qos Q [proto 802.1ad]`: `IFLA_VF_VLAN`
    /// for 802.1Q, `IFLA_VF_VLAN_LIST` for 802.1ad, as iproute2.
    fn set_vf_vlan(&self, pf: LinkId, vf: u32, vlan: VfVlan) -> Result<()> {
        self.set_vf(pf, vf, &[VfSetting::Vlan(vlan)])
    }

    /// The VLAN always as `IFLA_VF_VLAN_LIST`; the fallback when a kernel
    /// path rejects the form [`LinkOps::set_vf_vlan`] chose.
    fn set_vf_vlan_list(&self, pf: LinkId, vf: u32, vlan: VfVlan) -> Result<()> {
        self.set_vf(pf, vf, &[VfSetting::VlanList(vlan)])
    }

    /// `ip link set PF vf N spoofchk on|off`.
    fn set_vf_spoofchk(&self, pf: LinkId, vf: u32, on: bool) -> Result<()> {
        self.set_vf(pf, vf, &[VfSetting::SpoofCheck(on)])
    }

    /// `ip link set PF vf N trust on|off`.
    fn set_vf_trust(&self, pf: LinkId, vf: u32, on: bool) -> Result<()> {
        self.set_vf(pf, vf, &[VfSetting::Trust(on)])
    }

    /// `ip link set PF vf N state auto|enable|disable`.
    fn set_vf_link_state(&self, pf: LinkId, vf: u32, state: VfLinkState) -> Result<()> {
        self.set_vf(pf, vf, &[VfSetting::LinkState(state)])
    }

    /// `ip link set PF vf N min_tx_rate MIN max_tx_rate MAX` (Mbit/s, 0 =
    /// no limit).
    fn set_vf_rate(&self, pf: LinkId, vf: u32, min_mbps: u32, max_mbps: u32) -> Result<()> {
        self.set_vf(pf, vf, &[VfSetting::Rate { min_mbps, max_mbps }])
    }
}

/// The [`Op`] for a set of VF settings.
pub(crate) fn vf_op(vf: u32, settings: &[VfSetting]) -> Op {
    let what = match settings {
        [one] => one.what().to_owned(),
        _ => "VF settings".to_owned(),
    };
    let words: Vec<String> = settings.iter().map(VfSetting::ip_args).collect();
    Op::SetVf {
        what,
        args: format!("vf {vf} {}", words.join(" ")),
    }
}

/// Validates VF settings before anything is sent.
pub(crate) fn validate_vf(pf: &LinkId, vf: u32, settings: &[VfSetting]) -> Result<()> {
    if settings.is_empty() {
        return Err(NetlinkError::InvalidArgument {
            op: vf_op(vf, settings),
            link: pf.to_string(),
            reason: "no VF settings given".into(),
        });
    }
    for s in settings {
        s.validate()
            .map_err(|reason| NetlinkError::InvalidArgument {
                op: vf_op(vf, std::slice::from_ref(s)),
                link: pf.to_string(),
                reason,
            })?;
    }
    Ok(())
}

/// Validates an interface name like the kernel's `dev_valid_name`.
pub(crate) fn validate_ifname(op: &Op, link: &LinkId, name: &str) -> Result<()> {
    let bad = |reason: &str| NetlinkError::InvalidArgument {
        op: op.clone(),
        link: link.to_string(),
        reason: format!("interface name {name:?} {reason}"),
    };
    if name.is_empty() {
        return Err(bad("is empty"));
    }
    if name.len() > 15 {
        return Err(bad("is longer than 15 bytes"));
    }
    if name == "." || name == ".." {
        return Err(bad("is reserved"));
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(bad("contains '/', ':' or whitespace"));
    }
    Ok(())
}
