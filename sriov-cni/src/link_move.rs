//! Moving a VF netdev between namespaces in one request.
//!
//! One `RTM_NEWLINK` carries the target namespace (`IFLA_NET_NS_FD`), the
//! new name (`IFLA_IFNAME`), optionally the MAC and MTU, and the up/down
//! flag. The kernel (`do_setlink`) moves the device first (which closes it;
//! when its current name is taken in the target it takes the new name during
//! the move), then sets address and MTU, renames it in the target, and
//! finally changes the flags. So the name never exists on the host, and
//! never clashes in the pod with the VF's host name: what the Go plugin does
//! with a temporary namespace and three requests, in one (each namespace
//! move and rename waits for an RCU grace period, which dominates the cost).
//!
//! If the new name is taken in the target the request fails: either before
//! the move (when the current name is taken there too) or after it, with the
//! device in the target under its old name; [`move_link`] callers check the
//! target first so the second case does not arise.

use sriov_host::netlink::{MacAddr, Netlink, Op, message};
use sriov_host::netns::Netns;
use std::os::fd::AsRawFd;

/// One move.
#[derive(Debug)]
pub struct MoveRequest<'a> {
    /// The link's ifindex in the source namespace.
    pub index: u32,
    /// The target namespace.
    pub to: &'a Netns,
    /// The name in the target namespace.
    pub name: &'a str,
    /// A MAC to set.
    pub mac: Option<MacAddr>,
    /// An MTU to set.
    pub mtu: Option<u32>,
    /// Bring it up in the target (else it stays down: a move closes it).
    pub up: bool,
}

/// Why a move failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{msg}")]
pub struct MoveError {
    /// The kernel errno (0 when the failure was not the kernel's answer).
    pub errno: i32,
    /// What happened.
    pub msg: String,
}

/// Moves a link from `from` (the calling thread's namespace when `None`)
/// as `req` says, in one request, on the calling thread.
pub fn move_link(from: Option<&Netns>, req: &MoveRequest<'_>) -> Result<(), MoveError> {
    let opened = match from {
        None => Netlink::open(),
        Some(ns) => Netlink::open_in(ns),
    };
    let nl = opened.map_err(|e| MoveError {
        errno: e.errno().map_or(0, |e| e as i32),
        msg: e.to_string(),
    })?;
    let msg = message::move_link(
        req.index,
        req.to.as_raw_fd(),
        req.name,
        req.mac,
        req.mtu,
        req.up,
    );
    let op = Op::SetNetns {
        netns: req.to.path().to_path_buf(),
    };
    nl.request_ack(msg, &op, &req.index.to_string())
        .map_err(|e| {
            let errno = e.errno().map_or(0, |e| e as i32);
            MoveError {
                errno,
                msg: format!(
                    "moving ifindex {} into {} as {:?}: {}",
                    req.index,
                    req.to.path().display(),
                    req.name,
                    match e.errno() {
                        Some(n) => n.to_string(),
                        None => e.to_string(),
                    }
                ),
            }
        })
}
