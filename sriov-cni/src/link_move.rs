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

use sriov_host::netlink::MacAddr;
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

async fn send(req: &MoveRequest<'_>) -> Result<(), MoveError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| MoveError {
        errno: e.raw_os_error().unwrap_or(0),
        msg: format!("cannot open a route netlink socket: {e}"),
    })?;
    tokio::spawn(conn);
    let mut b = rtnetlink::LinkUnspec::new_with_index(req.index)
        .setns_by_fd(req.to.as_raw_fd())
        .name(req.name.to_owned());
    if let Some(m) = req.mac {
        b = b.address(m.0.to_vec());
    }
    if let Some(mtu) = req.mtu {
        b = b.mtu(mtu);
    }
    b = if req.up { b.up() } else { b.down() };
    handle.link().set(b.build()).execute().await.map_err(|e| {
        let errno = match &e {
            rtnetlink::Error::NetlinkError(m) => -m.raw_code(),
            _ => 0,
        };
        MoveError {
            errno,
            msg: format!(
                "moving ifindex {} into {} as {:?}: {}",
                req.index,
                req.to.path().display(),
                req.name,
                nix::errno::Errno::from_raw(errno)
            ),
        }
    })
}

fn run(req: &MoveRequest<'_>) -> Result<(), MoveError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| MoveError {
            errno: 0,
            msg: format!("cannot start a netlink runtime: {e}"),
        })?;
    rt.block_on(send(req))
}

/// Moves a link from `from` (the calling thread's namespace when `None`)
/// as `req` says, in one request.
pub fn move_link(from: Option<&Netns>, req: &MoveRequest<'_>) -> Result<(), MoveError> {
    match from {
        // On the calling thread when it runs no async runtime (the plugin's
        // main thread): a thread per call costs more than the request.
        None if tokio::runtime::Handle::try_current().is_err() => run(req),
        None => std::thread::scope(|s| {
            s.spawn(|| run(req)).join().unwrap_or_else(|_| {
                Err(MoveError {
                    errno: 0,
                    msg: "link move thread panicked".into(),
                })
            })
        }),
        Some(ns) => ns.run(|| run(req)).map_err(|e| MoveError {
            errno: 0,
            msg: e.to_string(),
        })?,
    }
}
