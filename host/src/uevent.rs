//! Kernel uevents (`NETLINK_KOBJECT_UEVENT`): devices added, removed,
//! bound to drivers, renamed…
//!
//! # Message format
//!
//! The kernel multicasts each event to netlink group 1 as one datagram:
//! a header `ACTION@DEVPATH` followed by `KEY=VALUE` pairs, every part
//! terminated by a NUL byte:
//!
//! ```text
//! add@/devices/virtual/net/veth0\0ACTION=add\0DEVPATH=/devices/virtual/net/veth0\0
//! SUBSYSTEM=net\0INTERFACE=veth0\0IFINDEX=12\0SEQNUM=4711\0
//! ```
//!
//! `ACTION`, `DEVPATH`, `SUBSYSTEM` and `SEQNUM` are always present.
//! Network devices add `INTERFACE` and `IFINDEX`; PCI devices
//! `PCI_SLOT_NAME`, `PCI_ID`, `PCI_CLASS`…; `bind`/`unbind` and events of
//! bound devices carry `DRIVER`. Actions are `add`, `remove`, `change`,
//! `move` (rename, with `DEVPATH_OLD`), `online`, `offline`, `bind`,
//! `unbind`. udevd re-broadcasts processed events on group 2 with a binary
//! `libudev` header; this module listens to the kernel's group 1 only and
//! drops datagrams that do not come from the kernel (sender port id 0).
//!
//! Network-device uevents are delivered to listeners in the device's
//! network namespace only (the kernel filters by namespace); other devices'
//! events go to every namespace owned by the initial user namespace.
//!
//! A simulator can deliver events in this same format over any channel and
//! consumers parse them with [`parse`]; [`Uevent::to_bytes`] produces it.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_KOBJECT_UEVENT};
use tokio::io::unix::AsyncFd;

/// The kernel's uevent multicast group.
pub const KERNEL_GROUP: u32 = 1;

/// Largest datagram read (the kernel's `UEVENT_BUFFER_SIZE` is 2048 plus
/// the header).
const RECV_BUF: usize = 16 * 1024;

/// What happened to the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Device added.
    Add,
    /// Device removed.
    Remove,
    /// Device changed.
    Change,
    /// Device renamed or moved (`DEVPATH_OLD` holds the old path).
    Move,
    /// Device online (CPUs, memory).
    Online,
    /// Device offline.
    Offline,
    /// Driver bound.
    Bind,
    /// Driver unbound.
    Unbind,
}

impl Action {
    /// The kernel's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Add => "add",
            Action::Remove => "remove",
            Action::Change => "change",
            Action::Move => "move",
            Action::Online => "online",
            Action::Offline => "offline",
            Action::Bind => "bind",
            Action::Unbind => "unbind",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = UeventError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "add" => Action::Add,
            "remove" => Action::Remove,
            "change" => Action::Change,
            "move" => Action::Move,
            "online" => Action::Online,
            "offline" => Action::Offline,
            "bind" => Action::Bind,
            "unbind" => Action::Unbind,
            _ => return Err(UeventError::Parse(format!("unknown action {s:?}"))),
        })
    }
}

impl From<kobject_uevent::ActionType> for Action {
    fn from(a: kobject_uevent::ActionType) -> Self {
        use kobject_uevent::ActionType as A;
        match a {
            A::Add => Action::Add,
            A::Remove => Action::Remove,
            A::Change => Action::Change,
            A::Move => Action::Move,
            A::Online => Action::Online,
            A::Offline => Action::Offline,
            A::Bind => Action::Bind,
            A::Unbind => Action::Unbind,
        }
    }
}

/// One kernel uevent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uevent {
    /// What happened.
    pub action: Action,
    /// Device path below `/sys` (`/devices/pci0000:00/0000:00:02.0/net/eth0`).
    pub devpath: String,
    /// Subsystem (`net`, `pci`, …).
    pub subsystem: String,
    /// The kernel's event sequence number.
    pub seqnum: u64,
    /// Network interface name (`INTERFACE=`).
    pub interface: Option<String>,
    /// PCI address (`PCI_SLOT_NAME=`).
    pub pci_slot: Option<String>,
    /// Driver (`DRIVER=`).
    pub driver: Option<String>,
    /// Every `KEY=VALUE` of the event, including the ones above.
    pub env: BTreeMap<String, String>,
}

impl Uevent {
    /// A variable of the event.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.env.get(key).map(String::as_str)
    }

    /// The event in the kernel's wire format: `ACTION@DEVPATH\0` then
    /// `ACTION`, `DEVPATH`, `SUBSYSTEM`, the other variables in key order,
    /// and `SEQNUM`, each `KEY=VALUE\0`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut put = |s: &str| {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        };
        put(&format!("{}@{}", self.action, self.devpath));
        put(&format!("ACTION={}", self.action));
        put(&format!("DEVPATH={}", self.devpath));
        put(&format!("SUBSYSTEM={}", self.subsystem));
        for (k, v) in &self.env {
            if !matches!(k.as_str(), "ACTION" | "DEVPATH" | "SUBSYSTEM" | "SEQNUM") {
                put(&format!("{k}={v}"));
            }
        }
        put(&format!("SEQNUM={}", self.seqnum));
        out
    }
}

/// Errors of uevent parsing and sockets.
#[derive(Debug, thiserror::Error)]
pub enum UeventError {
    /// A datagram is not a kernel uevent.
    #[error("malformed uevent: {0}")]
    Parse(String),
    /// The uevent socket failed.
    #[error("uevent netlink socket: {what}: {source}")]
    Socket {
        /// What was being done.
        what: &'static str,
        /// The cause.
        source: io::Error,
    },
}

/// Parses one datagram in the kernel's format (see the module docs).
pub fn parse(bytes: &[u8]) -> Result<Uevent, UeventError> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.starts_with(b"libudev\0") {
        return Err(UeventError::Parse(
            "a udevd (libudev) message, not a kernel uevent".into(),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| UeventError::Parse("not UTF-8".into()))?;
    let header = text.split('\0').next().unwrap_or_default();
    if !header.contains('@') {
        return Err(UeventError::Parse(format!(
            "no ACTION@DEVPATH header (starts with {:?})",
            header.chars().take(40).collect::<String>()
        )));
    }
    let ev = kobject_uevent::UEvent::from_netlink_packet(bytes)
        .map_err(|e| UeventError::Parse(e.to_string()))?;
    let env: BTreeMap<String, String> = ev.env.into_iter().collect();
    Ok(Uevent {
        action: ev.action.into(),
        devpath: ev.devpath.to_string_lossy().into_owned(),
        subsystem: ev.subsystem,
        seqnum: ev.seq,
        interface: env.get("INTERFACE").cloned(),
        pci_slot: env.get("PCI_SLOT_NAME").cloned(),
        driver: env.get("DRIVER").cloned(),
        env,
    })
}

fn open_socket() -> Result<Socket, UeventError> {
    let mut sock = Socket::new(NETLINK_KOBJECT_UEVENT).map_err(|source| UeventError::Socket {
        what: "create NETLINK_KOBJECT_UEVENT socket",
        source,
    })?;
    // Bursts (numvfs=128 adds hundreds of devices) must not overflow.
    let _ = sock.set_rx_buf_sz(4 * 1024 * 1024);
    sock.bind(&SocketAddr::new(0, 1 << (KERNEL_GROUP - 1)))
        .map_err(|source| UeventError::Socket {
            what: "bind to the kernel uevent group",
            source,
        })?;
    sock.set_non_blocking(true)
        .map_err(|source| UeventError::Socket {
            what: "set non-blocking",
            source,
        })?;
    Ok(sock)
}

/// Reads one datagram; `Ok(None)` when none is waiting. Datagrams from a
/// sender other than the kernel are dropped (`Ok(Some(None))`).
fn read_one(sock: &Socket) -> Result<Option<Option<Uevent>>, UeventError> {
    let mut buf: Vec<u8> = Vec::with_capacity(RECV_BUF);
    match sock.recv_from(&mut buf, 0) {
        Ok((_, from)) => {
            if from.port_number() != 0 {
                tracing::debug!(
                    port = from.port_number(),
                    "dropping uevent not sent by the kernel"
                );
                return Ok(Some(None));
            }
            match parse(&buf) {
                Ok(ev) => Ok(Some(Some(ev))),
                Err(e) => {
                    tracing::warn!("{e}");
                    Ok(Some(None))
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(Some(None)),
        Err(source) => Err(UeventError::Socket {
            what: "receive (ENOBUFS means events were lost: rescan)",
            source,
        }),
    }
}

/// A blocking listener of kernel uevents in the calling thread's network
/// namespace.
#[derive(Debug)]
pub struct UeventSocket {
    sock: Socket,
}

impl UeventSocket {
    /// Opens a socket bound to the kernel's uevent group.
    pub fn open() -> Result<UeventSocket, UeventError> {
        Ok(UeventSocket {
            sock: open_socket()?,
        })
    }

    /// Opens a listener inside `netns` (the socket is created on a thread
    /// that enters the namespace and exits; the socket stays bound to the
    /// namespace). It receives the namespace's net device events and, when
    /// the namespace belongs to the initial user namespace, all other
    /// devices' events.
    pub fn open_in(netns: &crate::netns::Netns) -> Result<UeventSocket, UeventError> {
        netns
            .run(UeventSocket::open)
            .map_err(|e| UeventError::Socket {
                what: "enter the network namespace",
                source: io::Error::other(e.to_string()),
            })?
    }

    /// The next event, waiting at most `timeout` (`None`: forever).
    /// `Ok(None)` when the time ran out.
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<Option<Uevent>, UeventError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            match read_one(&self.sock)? {
                Some(Some(ev)) => return Ok(Some(ev)),
                Some(None) => continue,
                None => {}
            }
            let wait_ms: libc::c_int = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int
                }
            };
            let mut pfd = libc::pollfd {
                fd: self.sock.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let r = unsafe { libc::poll(&mut pfd, 1, wait_ms) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(UeventError::Socket {
                        what: "poll",
                        source: e,
                    });
                }
            }
        }
    }

    /// Events until `timeout` passes with none (`None`: never ends).
    pub fn iter(&mut self, timeout: Option<Duration>) -> UeventIter<'_> {
        UeventIter {
            sock: self,
            timeout,
        }
    }

    /// Events until `deadline` passes; for tests waiting for a sequence.
    pub fn wait_for(
        &mut self,
        deadline: Duration,
        mut pred: impl FnMut(&Uevent) -> bool,
    ) -> Result<Option<Uevent>, UeventError> {
        let end = Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.recv(Some(left))? {
                Some(ev) if pred(&ev) => return Ok(Some(ev)),
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }

    /// An async stream on the current tokio runtime.
    pub fn into_stream(self) -> Result<UeventStream, UeventError> {
        UeventStream::from_socket(self.sock)
    }
}

/// Iterator of [`UeventSocket::iter`].
#[derive(Debug)]
pub struct UeventIter<'a> {
    sock: &'a mut UeventSocket,
    timeout: Option<Duration>,
}

impl Iterator for UeventIter<'_> {
    type Item = Result<Uevent, UeventError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.sock.recv(self.timeout).transpose()
    }
}

/// An async (tokio) stream of kernel uevents.
#[derive(Debug)]
pub struct UeventStream {
    fd: AsyncFd<Socket>,
}

impl UeventStream {
    /// Opens a socket bound to the kernel's uevent group, registered with
    /// the current tokio runtime.
    pub fn open() -> Result<UeventStream, UeventError> {
        UeventStream::from_socket(open_socket()?)
    }

    fn from_socket(sock: Socket) -> Result<UeventStream, UeventError> {
        // SAFETY: `Socket` owns its fd, closes it only on drop, and
        // `as_raw_fd` always returns that same fd; the `AsyncFd` owns the
        // socket for its whole life.
        let fd = unsafe { AsyncFd::register_with_interest(sock, tokio::io::Interest::READABLE) }
            .map_err(|e| UeventError::Socket {
                what: "register with the tokio runtime",
                source: e.into(),
            })?;
        Ok(UeventStream { fd })
    }

    /// The next event.
    pub async fn next_event(&mut self) -> Result<Uevent, UeventError> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<Uevent, UeventError>> {
        loop {
            let mut guard = match self.fd.poll_read_ready(cx) {
                Poll::Ready(Ok(g)) => g,
                Poll::Ready(Err(source)) => {
                    return Poll::Ready(Err(UeventError::Socket {
                        what: "wait for readiness",
                        source,
                    }));
                }
                Poll::Pending => return Poll::Pending,
            };
            match read_one(guard.get_inner()) {
                Ok(Some(Some(ev))) => return Poll::Ready(Ok(ev)),
                Ok(Some(None)) => continue,
                Ok(None) => {
                    guard.clear_ready();
                    continue;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl futures::Stream for UeventStream {
    type Item = Result<Uevent, UeventError>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_event(cx).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADD: &[u8] = b"add@/devices/virtual/net/vx0\0ACTION=add\0DEVPATH=/devices/virtual/net/vx0\0SUBSYSTEM=net\0INTERFACE=vx0\0IFINDEX=9\0SEQNUM=77\0";

    #[test]
    fn parses_kernel_format() {
        let ev = parse(ADD).unwrap();
        assert_eq!(ev.action, Action::Add);
        assert_eq!(ev.devpath, "/devices/virtual/net/vx0");
        assert_eq!(ev.subsystem, "net");
        assert_eq!(ev.interface.as_deref(), Some("vx0"));
        assert_eq!(ev.get("IFINDEX"), Some("9"));
        assert_eq!(ev.seqnum, 77);
        assert_eq!(ev.pci_slot, None);
    }

    #[test]
    fn round_trips_through_bytes() {
        let ev = parse(ADD).unwrap();
        let again = parse(&ev.to_bytes()).unwrap();
        assert_eq!(ev, again);
        assert!(
            ev.to_bytes()
                .starts_with(b"add@/devices/virtual/net/vx0\0ACTION=add\0")
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            &b"libudev\0\xfe\xed\xca\xfe"[..],
            b"ACTION=add\0SEQNUM=1\0",
            b"frob@/x\0ACTION=frob\0DEVPATH=/x\0SUBSYSTEM=net\0SEQNUM=1\0",
            b"add@/x\0ACTION=add\0DEVPATH=/x\0SUBSYSTEM=net\0",
            b"\xff\xfe",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
