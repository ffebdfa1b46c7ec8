//! The real [`LinkOps`]: route netlink on a blocking socket.
//!
//! Each [`Netlink`] owns one `NETLINK_ROUTE` socket. A request is sent and
//! its answer read on the calling thread (no worker thread, no async
//! runtime: a CNI call or a sysfs-driven apply sends a handful of requests,
//! and a thread with a runtime per namespace cost more than the requests).
//! The socket lives in the namespace it was created in: [`Netlink::open_in`]
//! enters the target namespace on the calling thread just long enough to
//! create it, then returns to where the thread was. Calls are serialised
//! per handle (a mutex around the socket); clones share the socket.

use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use nix::errno::Errno;
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;
use rtnetlink::packet_core::{NLM_F_MULTIPART, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::LinkMessage;

use super::message::{self, RouteMessage};
use super::{
    Link, LinkId, LinkOps, MacAddr, MoveLink, NetlinkError, Op, Result, VfInfo, VfSetting,
    validate_ifname, validate_vf, vf_op,
};
use crate::netns::Netns;

/// How long a caller waits for the kernel's answer. Drivers answer VF
/// settings in milliseconds to a few seconds (firmware commands); a request
/// still unanswered after this is reported instead of hanging the caller.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

struct Conn {
    socket: Socket,
    seq: u32,
}

/// Route netlink in one network namespace. Cheap to clone (clones share
/// the socket).
#[derive(Clone)]
pub struct Netlink {
    conn: Arc<Mutex<Conn>>,
    netns: String,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink")
            .field("netns", &self.netns)
            .finish()
    }
}

/// A route netlink socket bound and connected to the kernel, with the
/// reply timeout set.
fn socket() -> std::io::Result<Socket> {
    let mut s = Socket::new(NETLINK_ROUTE)?;
    s.bind_auto()?;
    s.connect(&SocketAddr::new(0, 0))?;
    setsockopt(
        &s,
        sockopt::ReceiveTimeout,
        &TimeVal::new(REPLY_TIMEOUT.as_secs() as _, 0),
    )?;
    Ok(s)
}

/// Netlink messages are padded to 4 bytes.
fn align(len: usize) -> usize {
    (len + 3) & !3
}

impl Netlink {
    /// Route netlink in the network namespace of the calling thread (for a
    /// normal process: the host's).
    pub fn open() -> Result<Netlink> {
        Netlink::opened(socket(), "the current network namespace".to_owned())
    }

    /// Route netlink inside `netns`: the calling thread enters the namespace,
    /// opens the socket and returns to its own namespace before this returns
    /// ([`Netns::run_here`]; the process aborts if it cannot return).
    pub fn open_in(netns: &Netns) -> Result<Netlink> {
        let made = netns
            .run_here(socket)
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        Netlink::opened(
            made,
            format!("network namespace {}", netns.path().display()),
        )
    }

    fn opened(made: std::io::Result<Socket>, netns: String) -> Result<Netlink> {
        match made {
            Ok(socket) => Ok(Netlink {
                conn: Arc::new(Mutex::new(Conn { socket, seq: 0 })),
                netns,
            }),
            Err(source) => Err(NetlinkError::Socket { netns, source }),
        }
    }

    /// Sends `req` and returns the kernel's answer: every message of the
    /// reply (for a dump, up to `NLMSG_DONE`; for an ACK request, the ACK
    /// or error).
    pub(super) fn exchange(
        &self,
        req: RouteMessage,
        op: &Op,
        link: &str,
    ) -> Result<Vec<RouteMessage>> {
        Ok(self
            .exchange_keeping(req, op, link, false)?
            .into_iter()
            .map(|(m, _)| m)
            .collect())
    }

    /// [`exchange`](Self::exchange), also returning each message's bytes
    /// when `keep_bytes` (empty otherwise), for what the decoder loses.
    fn exchange_keeping(
        &self,
        mut req: RouteMessage,
        op: &Op,
        link: &str,
        keep_bytes: bool,
    ) -> Result<Vec<(RouteMessage, Vec<u8>)>> {
        let io = |source: std::io::Error| {
            if matches!(
                source.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                NetlinkError::Timeout {
                    netns: self.netns.clone(),
                    after: REPLY_TIMEOUT,
                }
            } else {
                NetlinkError::Io {
                    op: op.clone(),
                    link: link.to_owned(),
                    netns: self.netns.clone(),
                    source,
                }
            }
        };
        let protocol = |detail: String| NetlinkError::Protocol {
            op: op.clone(),
            link: link.to_owned(),
            detail,
        };
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.seq = conn.seq.wrapping_add(1);
        let seq = conn.seq;
        req.header.sequence_number = seq;
        req.header.port_number = 0;
        req.finalize();
        let mut buf = vec![0u8; req.buffer_len()];
        req.serialize(&mut buf);
        conn.socket.send(&buf, 0).map_err(io)?;
        let mut out = Vec::new();
        loop {
            let (data, _) = conn.socket.recv_from_full().map_err(io)?;
            let mut off = 0;
            while off + 16 <= data.len() {
                let len =
                    u32::from_ne_bytes(data[off..off + 4].try_into().expect("4 bytes")) as usize;
                if len < 16 || off + len > data.len() {
                    return Err(protocol(format!("truncated message of {len} bytes")));
                }
                let raw = &data[off..off + len];
                let msg = RouteMessage::deserialize(raw)
                    .map_err(|e| protocol(format!("cannot decode the reply: {e}")))?;
                let raw = if keep_bytes { raw.to_vec() } else { Vec::new() };
                off += align(len);
                if msg.header.sequence_number != seq {
                    continue; // a late answer to an earlier, timed-out request
                }
                let last = match &msg.payload {
                    NetlinkPayload::Done(_) | NetlinkPayload::Error(_) => true,
                    _ => msg.header.flags & NLM_F_MULTIPART == 0,
                };
                out.push((msg, raw));
                if last {
                    return Ok(out);
                }
            }
        }
    }

    /// Sends `req` (an `NLM_F_ACK` request) and waits for the kernel's ACK;
    /// a refusal is [`NetlinkError::Kernel`] for `op` on `link`. For
    /// requests [`LinkOps`] has no method for (such as a move with rename,
    /// MAC and MTU in one message).
    pub fn request_ack(&self, req: RouteMessage, op: &Op, link: &str) -> Result<()> {
        self.ack(req, op, link, None)
    }

    fn ack(&self, req: RouteMessage, op: &Op, link: &str, vf: Option<u32>) -> Result<()> {
        for msg in self.exchange(req, op, link)? {
            if let NetlinkPayload::Error(e) = msg.payload
                && let Some(code) = e.code
            {
                return Err(NetlinkError::Kernel {
                    op: op.clone(),
                    link: link.to_owned(),
                    vf,
                    errno: Errno::from_raw(-code.get()),
                });
            }
        }
        Ok(())
    }

    /// `RTM_GETLINK` of one link.
    fn get(&self, id: &LinkId, vfs: bool, op: &Op) -> Result<LinkMessage> {
        Ok(self.get_keeping(id, vfs, op, false)?.0)
    }

    /// `RTM_GETLINK` of one link, with the reply's bytes when `keep_bytes`.
    fn get_keeping(
        &self,
        id: &LinkId,
        vfs: bool,
        op: &Op,
        keep_bytes: bool,
    ) -> Result<(LinkMessage, Vec<u8>)> {
        let mut found = None;
        let reply =
            self.exchange_keeping(message::get_link(id, vfs), op, &id.to_string(), keep_bytes)?;
        for (msg, raw) in reply {
            match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(lm)) => {
                    found = Some((lm, raw))
                }
                NetlinkPayload::Error(e) => {
                    if let Some(code) = e.code {
                        let errno = Errno::from_raw(-code.get());
                        if errno == Errno::ENODEV {
                            return Err(NetlinkError::NotFound {
                                op: op.clone(),
                                link: id.to_string(),
                                netns: self.netns.clone(),
                            });
                        }
                        return Err(NetlinkError::Kernel {
                            op: op.clone(),
                            link: id.to_string(),
                            vf: None,
                            errno,
                        });
                    }
                }
                _ => {}
            }
        }
        found.ok_or_else(|| NetlinkError::Protocol {
            op: op.clone(),
            link: id.to_string(),
            detail: "no RTM_NEWLINK in the answer to RTM_GETLINK".into(),
        })
    }

    /// The ifindex of `id` (a lookup for names, as iproute2 does).
    fn resolve(&self, id: &LinkId, op: &Op) -> Result<u32> {
        match id {
            LinkId::Index(i) => Ok(*i),
            LinkId::Name(_) => Ok(self.get(id, false, op)?.header.index),
        }
    }

    /// Creates a veth pair `name` / `peer` in this namespace (for tests and
    /// the simulator's veth-backed VFs).
    pub fn add_veth(&self, name: &str, peer: &str) -> Result<()> {
        let op = Op::AddVeth { peer: peer.into() };
        validate_ifname(&op, &name.into(), name)?;
        validate_ifname(&op, &name.into(), peer)?;
        let msg = rtnetlink::LinkVeth::new(name, peer).build();
        let mut req = RouteMessage::from(RouteNetlinkMessage::NewLink(msg));
        req.header.flags = rtnetlink::packet_core::NLM_F_REQUEST
            | rtnetlink::packet_core::NLM_F_ACK
            | rtnetlink::packet_core::NLM_F_CREATE
            | rtnetlink::packet_core::NLM_F_EXCL;
        self.ack(req, &op, name, None)
    }

    /// Deletes a link (`ip link del`).
    pub fn delete(&self, id: LinkId) -> Result<()> {
        let index = self.resolve(&id, &Op::DeleteLink)?;
        self.ack(
            message::delete(index),
            &Op::DeleteLink,
            &id.to_string(),
            None,
        )
    }

    fn set_simple(
        &self,
        id: LinkId,
        op: Op,
        build: impl FnOnce(u32) -> RouteMessage,
    ) -> Result<()> {
        let index = self.resolve(&id, &op)?;
        self.ack(build(index), &op, &id.to_string(), None)
    }
}

impl LinkOps for Netlink {
    fn link(&self, id: LinkId) -> Result<Link> {
        let lm = self.get(&id, false, &Op::GetLink)?;
        Ok(message::link_from_message(&lm))
    }

    fn links(&self) -> Result<Vec<Link>> {
        let op = Op::ListLinks;
        let mut out = Vec::new();
        for msg in self.exchange(message::dump_links(), &op, "(all)")? {
            match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(lm)) => {
                    out.push(message::link_from_message(&lm))
                }
                NetlinkPayload::Error(e) if e.code.is_some() => {
                    return Err(NetlinkError::Kernel {
                        op,
                        link: "(all)".into(),
                        vf: None,
                        errno: Errno::from_raw(-e.raw_code()),
                    });
                }
                _ => {}
            }
        }
        out.sort_by_key(|l| l.index);
        Ok(out)
    }

    fn vfs(&self, pf: LinkId) -> Result<Vec<VfInfo>> {
        let (lm, raw) = self.get_keeping(&pf, true, &Op::GetVfs, true)?;
        let mut vfs = message::vfs_from_message(&lm);
        message::mark_unreported(&mut vfs, &raw);
        Ok(vfs)
    }

    fn set_netns(&self, id: LinkId, netns: &Netns) -> Result<()> {
        let fd = netns.as_raw_fd();
        let op = Op::SetNetns {
            netns: netns.path().to_path_buf(),
        };
        self.set_simple(id, op, move |i| message::set_netns_fd(i, fd))
    }

    fn rename(&self, id: LinkId, new_name: &str) -> Result<()> {
        let op = Op::Rename {
            to: new_name.to_owned(),
        };
        validate_ifname(&op, &id, new_name)?;
        self.set_simple(id, op, |i| message::rename(i, new_name))
    }

    fn set_mac(&self, id: LinkId, mac: MacAddr) -> Result<()> {
        self.set_simple(id, Op::SetMac, move |i| message::set_mac(i, mac))
    }

    fn set_mtu(&self, id: LinkId, mtu: u32) -> Result<()> {
        self.set_simple(id, Op::SetMtu(mtu), move |i| message::set_mtu(i, mtu))
    }

    fn set_up(&self, id: LinkId, up: bool) -> Result<()> {
        self.set_simple(id, Op::SetUp(up), move |i| message::set_up(i, up))
    }

    fn set_vf(&self, pf: LinkId, vf: u32, settings: &[VfSetting]) -> Result<()> {
        validate_vf(&pf, vf, settings)?;
        let op = vf_op(vf, settings);
        let index = self.resolve(&pf, &op)?;
        let req = message::set_vf(index, vf, settings);
        self.ack(req, &op, &pf.to_string(), Some(vf))
    }

    fn in_netns(&self, netns: &Netns) -> Result<Arc<dyn LinkOps>> {
        Ok(Arc::new(Netlink::open_in(netns)?))
    }

    fn move_link(&self, req: &MoveLink<'_>) -> Result<()> {
        let op = Op::SetNetns {
            netns: req.to.path().to_path_buf(),
        };
        validate_ifname(&op, &req.index.into(), req.name)?;
        let msg = message::move_link(
            req.index,
            req.to.as_raw_fd(),
            req.name,
            req.mac,
            req.mtu,
            req.up,
        );
        self.ack(msg, &op, &req.index.to_string(), None)
    }

    fn del_alt_name(&self, dev: &str, alt: &str) -> Result<bool> {
        let op = Op::DelAltName {
            alt: alt.to_owned(),
        };
        match self.ack(message::del_alt_name(dev, alt), &op, dev, None) {
            Ok(()) => Ok(true),
            Err(e)
                if matches!(
                    e.errno(),
                    Some(Errno::ENOENT | Errno::EINVAL | Errno::EOPNOTSUPP)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}
