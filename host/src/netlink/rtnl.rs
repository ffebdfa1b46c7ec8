//! The real [`LinkOps`]: rtnetlink on a dedicated OS thread.
//!
//! Each [`Netlink`] owns one worker thread. The thread (optionally) enters a
//! network namespace, builds a current-thread tokio runtime, opens a route
//! netlink socket and then serves requests from a channel one at a time.
//! The socket lives in the namespace the thread was in when it opened it.
//! Dropping the last clone of a [`Netlink`] closes the channel; the thread
//! then exits and is joined.

use std::future::Future;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::thread::JoinHandle;

use futures::StreamExt;
use nix::errno::Errno;
use rtnetlink::Handle;
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::LinkMessage;
use tokio::sync::mpsc;

use super::message::{self, RouteMessage};
use super::{
    Link, LinkId, LinkOps, MacAddr, NetlinkError, Op, Result, VfInfo, VfSetting, validate_ifname,
    validate_vf, vf_op,
};
use crate::netns::Netns;

/// How long a caller waits for the kernel's answer. Drivers answer VF
/// settings in milliseconds to a few seconds (firmware commands); a request
/// still unanswered after this is reported instead of hanging the caller.
const REPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

type Job = Box<dyn FnOnce(Handle) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

struct Worker {
    tx: Option<mpsc::UnboundedSender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take()
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }
}

/// Route netlink in one network namespace, served by a dedicated thread.
/// Cheap to clone (clones share the thread).
#[derive(Clone)]
pub struct Netlink {
    worker: Arc<Worker>,
    netns: String,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink")
            .field("netns", &self.netns)
            .finish()
    }
}

impl Netlink {
    /// Route netlink in the network namespace of the calling thread (for a
    /// normal process: the host's).
    pub fn open() -> Result<Netlink> {
        Netlink::start(None)
    }

    /// Route netlink inside `netns`. The worker thread enters the
    /// namespace before it opens its socket and stays there until it exits.
    pub fn open_in(netns: &Netns) -> Result<Netlink> {
        let ns = netns.try_clone().map_err(|e| NetlinkError::Socket {
            netns: netns.path().display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
        Netlink::start(Some(ns))
    }

    fn start(netns: Option<Netns>) -> Result<Netlink> {
        let label = netns
            .as_ref()
            .map(|n| format!("network namespace {}", n.path().display()))
            .unwrap_or_else(|| "the current network namespace".to_owned());
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<std::io::Result<()>>(1);
        let thread = std::thread::Builder::new()
            .name("netlink".into())
            .spawn(move || {
                if let Some(ns) = &netns
                    && let Err(e) = ns.enter_current_thread()
                {
                    let _ = ready_tx.send(Err(std::io::Error::other(e.to_string())));
                    return;
                }
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let (conn, handle, _) = match rtnetlink::new_connection() {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let conn = tokio::spawn(conn);
                    let _ = ready_tx.send(Ok(()));
                    while let Some(job) = rx.recv().await {
                        job(handle.clone()).await;
                    }
                    conn.abort();
                });
            })
            .map_err(|source| NetlinkError::Socket {
                netns: label.clone(),
                source,
            })?;
        let started = ready_rx.recv().unwrap_or_else(|_| {
            Err(std::io::Error::other(
                "the netlink thread exited during start",
            ))
        });
        if let Err(source) = started {
            let _ = thread.join();
            return Err(NetlinkError::Socket {
                netns: label,
                source,
            });
        }
        Ok(Netlink {
            worker: Arc::new(Worker {
                tx: Some(tx),
                thread: Some(thread),
            }),
            netns: label,
        })
    }

    /// Runs `f` on the worker thread and waits for its result.
    fn call<T, F, Fut>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Handle) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + 'static,
    {
        let (rtx, rrx) = std::sync::mpsc::sync_channel(1);
        let job: Job = Box::new(move |h| {
            Box::pin(async move {
                let _ = rtx.send(f(h).await);
            })
        });
        let tx = self.worker.tx.as_ref().ok_or(NetlinkError::WorkerGone)?;
        tx.send(job).map_err(|_| NetlinkError::WorkerGone)?;
        match rrx.recv_timeout(REPLY_TIMEOUT) {
            Ok(r) => r,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(NetlinkError::Timeout {
                netns: self.netns.clone(),
                after: REPLY_TIMEOUT,
            }),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(NetlinkError::WorkerGone),
        }
    }

    /// Creates a veth pair `name` / `peer` in this namespace (for tests and
    /// the simulator's veth-backed VFs).
    pub fn add_veth(&self, name: &str, peer: &str) -> Result<()> {
        let op = Op::AddVeth { peer: peer.into() };
        validate_ifname(&op, &name.into(), name)?;
        validate_ifname(&op, &name.into(), peer)?;
        let msg = rtnetlink::LinkVeth::new(name, peer).build();
        let link = name.to_owned();
        self.call(move |mut h| async move {
            let mut req = RouteMessage::from(RouteNetlinkMessage::NewLink(msg));
            req.header.flags = rtnetlink::packet_core::NLM_F_REQUEST
                | rtnetlink::packet_core::NLM_F_ACK
                | rtnetlink::packet_core::NLM_F_CREATE
                | rtnetlink::packet_core::NLM_F_EXCL;
            ack(&mut h, req, &op, &link, None).await
        })
    }

    /// Deletes a link (`ip link del`).
    pub fn delete(&self, id: LinkId) -> Result<()> {
        let netns = self.netns.clone();
        self.call(move |mut h| async move {
            let index = resolve(&mut h, &id, &Op::DeleteLink, &netns).await?;
            ack(
                &mut h,
                message::delete(index),
                &Op::DeleteLink,
                &id.to_string(),
                None,
            )
            .await
        })
    }

    fn set_simple(
        &self,
        id: LinkId,
        op: Op,
        build: impl FnOnce(u32) -> RouteMessage + Send + 'static,
    ) -> Result<()> {
        let netns = self.netns.clone();
        self.call(move |mut h| async move {
            let index = resolve(&mut h, &id, &op, &netns).await?;
            ack(&mut h, build(index), &op, &id.to_string(), None).await
        })
    }
}

/// Sends `req` and waits for the kernel's ACK.
async fn ack(
    h: &mut Handle,
    req: RouteMessage,
    op: &Op,
    link: &str,
    vf: Option<u32>,
) -> Result<()> {
    let mut resp = h.request(req).map_err(|_| NetlinkError::WorkerGone)?;
    while let Some(msg) = resp.next().await {
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
async fn get(h: &mut Handle, id: &LinkId, vfs: bool, op: &Op, netns: &str) -> Result<LinkMessage> {
    let mut resp = h
        .request(message::get_link(id, vfs))
        .map_err(|_| NetlinkError::WorkerGone)?;
    let mut found = None;
    while let Some(msg) = resp.next().await {
        match msg.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(lm)) => found = Some(lm),
            NetlinkPayload::Error(e) => {
                if let Some(code) = e.code {
                    let errno = Errno::from_raw(-code.get());
                    if errno == Errno::ENODEV {
                        return Err(NetlinkError::NotFound {
                            op: op.clone(),
                            link: id.to_string(),
                            netns: netns.to_owned(),
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
async fn resolve(h: &mut Handle, id: &LinkId, op: &Op, netns: &str) -> Result<u32> {
    match id {
        LinkId::Index(i) => Ok(*i),
        LinkId::Name(_) => Ok(get(h, id, false, op, netns).await?.header.index),
    }
}

impl LinkOps for Netlink {
    fn link(&self, id: LinkId) -> Result<Link> {
        let netns = self.netns.clone();
        self.call(move |mut h| async move {
            let lm = get(&mut h, &id, false, &Op::GetLink, &netns).await?;
            Ok(message::link_from_message(&lm))
        })
    }

    fn links(&self) -> Result<Vec<Link>> {
        self.call(move |mut h| async move {
            let mut resp = h
                .request(message::dump_links())
                .map_err(|_| NetlinkError::WorkerGone)?;
            let mut out = Vec::new();
            while let Some(msg) = resp.next().await {
                match msg.payload {
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(lm)) => {
                        out.push(message::link_from_message(&lm))
                    }
                    NetlinkPayload::Error(e) if e.code.is_some() => {
                        return Err(NetlinkError::Kernel {
                            op: Op::ListLinks,
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
        })
    }

    fn vfs(&self, pf: LinkId) -> Result<Vec<VfInfo>> {
        let netns = self.netns.clone();
        self.call(move |mut h| async move {
            let lm = get(&mut h, &pf, true, &Op::GetVfs, &netns).await?;
            Ok(message::vfs_from_message(&lm))
        })
    }

    fn set_netns(&self, id: LinkId, netns: &Netns) -> Result<()> {
        // The fd stays open for the whole call: `netns` is borrowed until
        // `call` returns.
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
        let name = new_name.to_owned();
        self.set_simple(id, op, move |i| message::rename(i, &name))
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
        let settings = settings.to_vec();
        let netns = self.netns.clone();
        self.call(move |mut h| async move {
            let index = resolve(&mut h, &pf, &op, &netns).await?;
            let req = message::set_vf(index, vf, &settings);
            ack(&mut h, req, &op, &pf.to_string(), Some(vf)).await
        })
    }

    fn in_netns(&self, netns: &Netns) -> Result<Arc<dyn LinkOps>> {
        Ok(Arc::new(Netlink::open_in(netns)?))
    }
}
