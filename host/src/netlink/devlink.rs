//! `devlink dev info` over generic netlink: the firmware and package
//! versions a driver reports for a device, as `devlink dev info
//! pci/0000:5e:00.0` prints them. The ice driver reports its running DDP
//! package as the running version `fw.app.name` (`ICE OS Default
//! Package`, `ICE COMMS Package`), which is what upstream's device plugin
//! reads first.
//!
//! Plain `NETLINK_GENERIC` messages on a blocking netlink-sys socket with a
//! receive timeout (the transport of [`Netlink`](super::Netlink), another
//! protocol): resolve the `devlink` family id (`CTRL_CMD_GETFAMILY`), then
//! ask `DEVLINK_CMD_INFO_GET` for one device.

use std::time::Duration;

use netlink_sys::{Socket as NlSocket, SocketAddr, protocols::NETLINK_GENERIC};

use super::message::attrs;
use nix::errno::Errno;
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;

// linux/netlink.h, linux/genetlink.h, linux/devlink.h
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const GENL_ID_CTRL: u16 = 16;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const DEVLINK_GENL_NAME: &str = "devlink";
const DEVLINK_GENL_VERSION: u8 = 1;
const DEVLINK_CMD_INFO_GET: u8 = 51;
const DEVLINK_ATTR_BUS_NAME: u16 = 1;
const DEVLINK_ATTR_DEV_NAME: u16 = 2;
const DEVLINK_ATTR_INFO_DRIVER_NAME: u16 = 98;
const DEVLINK_ATTR_INFO_VERSION_FIXED: u16 = 100;
const DEVLINK_ATTR_INFO_VERSION_RUNNING: u16 = 101;
const DEVLINK_ATTR_INFO_VERSION_STORED: u16 = 102;
const DEVLINK_ATTR_INFO_VERSION_NAME: u16 = 103;
const DEVLINK_ATTR_INFO_VERSION_VALUE: u16 = 104;

/// How long to wait for the kernel's answer.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// What `devlink dev info` shows for a device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DevInfo {
    /// The driver's name.
    pub driver: Option<String>,
    /// `versions: fixed`, name and value.
    pub fixed: Vec<(String, String)>,
    /// `versions: running`.
    pub running: Vec<(String, String)>,
    /// `versions: stored`.
    pub stored: Vec<(String, String)>,
}

impl DevInfo {
    /// A running version by name (`fw.app.name`).
    pub fn running(&self, name: &str) -> Option<&str> {
        self.running
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why devlink could not answer.
#[derive(Debug, thiserror::Error)]
pub enum DevlinkError {
    /// No `devlink` generic netlink family.
    #[error("the kernel has no devlink netlink family (no CONFIG_NET_DEVLINK)")]
    NoFamily,
    /// No such devlink device.
    #[error("devlink has no device {bus}/{dev} (its driver registers none)")]
    NoDevice {
        /// The bus (`pci`).
        bus: String,
        /// The device (`0000:5e:00.0`).
        dev: String,
    },
    /// The socket could not be used.
    #[error("devlink netlink socket: {0}")]
    Io(#[from] std::io::Error),
    /// The kernel refused the request.
    #[error("devlink {what} failed: {}", std::io::Error::from_raw_os_error(*errno))]
    Kernel {
        /// The command.
        what: &'static str,
        /// The kernel's errno.
        errno: i32,
    },
    /// The reply could not be decoded.
    #[error("malformed netlink reply to {what}: {detail}")]
    Malformed {
        /// The command.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
}

/// Appends one attribute (4-byte aligned).
fn put_attr(buf: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

fn put_str(buf: &mut Vec<u8>, ty: u16, s: &str) {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    put_attr(buf, ty, &v);
}

/// A generic netlink request: header, genl header, attributes.
pub fn request(family: u16, cmd: u8, version: u8, seq: u32, attrs: &[u8]) -> Vec<u8> {
    let len = 16 + 4 + attrs.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&family.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[cmd, version, 0, 0]);
    m.extend_from_slice(attrs);
    m
}

fn string(p: &[u8]) -> String {
    let end = p.iter().position(|b| *b == 0).unwrap_or(p.len());
    String::from_utf8_lossy(&p[..end]).into_owned()
}

/// The messages of one reply datagram: (type, payload after the netlink
/// header).
fn messages(buf: &[u8]) -> Result<Vec<(u16, &[u8])>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 16 <= buf.len() {
        let len = u32::from_ne_bytes(buf[i..i + 4].try_into().expect("4 bytes")) as usize;
        let ty = u16::from_ne_bytes([buf[i + 4], buf[i + 5]]);
        if len < 16 || i + len > buf.len() {
            return Err(format!("message length {len} at {i} of {}", buf.len()));
        }
        out.push((ty, &buf[i + 16..i + len]));
        i += len.next_multiple_of(4);
    }
    Ok(out)
}

struct Socket {
    sock: NlSocket,
    seq: u32,
}

impl Socket {
    fn open() -> std::io::Result<Socket> {
        let mut sock = NlSocket::new(NETLINK_GENERIC)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        setsockopt(
            &sock,
            sockopt::ReceiveTimeout,
            &TimeVal::new(TIMEOUT.as_secs() as _, 0),
        )?;
        Ok(Socket { sock, seq: 1 })
    }

    /// Sends a request and collects the payloads (after the genl header)
    /// of its data messages until the kernel's ACK.
    fn call(
        &mut self,
        what: &'static str,
        family: u16,
        cmd: u8,
        version: u8,
        attrs_buf: &[u8],
    ) -> Result<Vec<Vec<u8>>, DevlinkError> {
        self.seq += 1;
        let msg = request(family, cmd, version, self.seq, attrs_buf);
        self.sock.send(&msg, 0)?;
        let mut data = Vec::new();
        loop {
            let (buf, _) = self.sock.recv_from_full()?;
            let msgs = messages(&buf).map_err(|detail| DevlinkError::Malformed { what, detail })?;
            for (ty, payload) in msgs {
                match ty {
                    NLMSG_ERROR => {
                        let errno = payload
                            .get(..4)
                            .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
                            .ok_or_else(|| DevlinkError::Malformed {
                                what,
                                detail: "short error message".into(),
                            })?;
                        if errno == 0 {
                            return Ok(data);
                        }
                        return Err(DevlinkError::Kernel {
                            what,
                            errno: -errno,
                        });
                    }
                    NLMSG_DONE => return Ok(data),
                    _ => data.push(payload.get(4..).unwrap_or_default().to_vec()),
                }
            }
        }
    }
}

/// The generic netlink family id of `name`.
pub fn family_id(name: &str) -> Result<u16, DevlinkError> {
    let mut s = Socket::open()?;
    family_id_on(&mut s, name)
}

fn family_id_on(s: &mut Socket, name: &str) -> Result<u16, DevlinkError> {
    let what = "CTRL_CMD_GETFAMILY";
    let mut a = Vec::new();
    put_str(&mut a, CTRL_ATTR_FAMILY_NAME, name);
    let replies = match s.call(what, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, &a) {
        // unknown family: ENOENT, or EINVAL from kernels that do not set
        // the error for a name lookup that fails
        Err(DevlinkError::Kernel { errno, .. })
            if errno == Errno::ENOENT as i32 || errno == Errno::EINVAL as i32 =>
        {
            return Err(DevlinkError::NoFamily);
        }
        r => r?,
    };
    for r in &replies {
        for (ty, p) in attrs(r).map_err(|detail| DevlinkError::Malformed { what, detail })? {
            if ty == CTRL_ATTR_FAMILY_ID && p.len() >= 2 {
                return Ok(u16::from_ne_bytes([p[0], p[1]]));
            }
        }
    }
    Err(DevlinkError::Malformed {
        what,
        detail: "no CTRL_ATTR_FAMILY_ID".into(),
    })
}

/// Parses the attributes of a `DEVLINK_CMD_INFO_GET` reply.
pub fn parse_info(payload: &[u8]) -> Result<DevInfo, String> {
    let mut info = DevInfo::default();
    for (ty, p) in attrs(payload)? {
        let list = match ty {
            DEVLINK_ATTR_INFO_DRIVER_NAME => {
                info.driver = Some(string(p));
                continue;
            }
            DEVLINK_ATTR_INFO_VERSION_FIXED => &mut info.fixed,
            DEVLINK_ATTR_INFO_VERSION_RUNNING => &mut info.running,
            DEVLINK_ATTR_INFO_VERSION_STORED => &mut info.stored,
            _ => continue,
        };
        let (mut name, mut value) = (None, None);
        for (t, q) in attrs(p)? {
            match t {
                DEVLINK_ATTR_INFO_VERSION_NAME => name = Some(string(q)),
                DEVLINK_ATTR_INFO_VERSION_VALUE => value = Some(string(q)),
                _ => {}
            }
        }
        if let (Some(n), Some(v)) = (name, value) {
            list.push((n, v));
        }
    }
    Ok(info)
}

/// `devlink dev info <bus>/<dev>` (bus `pci`, dev `0000:5e:00.0`).
pub fn dev_info(bus: &str, dev: &str) -> Result<DevInfo, DevlinkError> {
    let mut s = Socket::open()?;
    let family = family_id_on(&mut s, DEVLINK_GENL_NAME)?;
    let what = "DEVLINK_CMD_INFO_GET";
    let mut a = Vec::new();
    put_str(&mut a, DEVLINK_ATTR_BUS_NAME, bus);
    put_str(&mut a, DEVLINK_ATTR_DEV_NAME, dev);
    let replies = match s.call(what, family, DEVLINK_CMD_INFO_GET, DEVLINK_GENL_VERSION, &a) {
        Err(DevlinkError::Kernel { errno, .. })
            if [Errno::ENODEV, Errno::EINVAL, Errno::ENOENT]
                .iter()
                .any(|e| *e as i32 == errno) =>
        {
            return Err(DevlinkError::NoDevice {
                bus: bus.into(),
                dev: dev.into(),
            });
        }
        r => r?,
    };
    let first = replies.first().ok_or_else(|| DevlinkError::Malformed {
        what,
        detail: "no reply message".into(),
    })?;
    parse_info(first).map_err(|detail| DevlinkError::Malformed { what, detail })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_laid_out_as_the_kernel_expects() {
        let mut a = Vec::new();
        put_str(&mut a, DEVLINK_ATTR_BUS_NAME, "pci");
        put_str(&mut a, DEVLINK_ATTR_DEV_NAME, "0000:5e:00.0");
        // "pci\0" = 4 + 4; "0000:5e:00.0\0" = 4 + 13, padded to 20
        assert_eq!(a.len(), 8 + 20);
        let m = request(0x15, DEVLINK_CMD_INFO_GET, 1, 7, &a);
        assert_eq!(m.len(), 20 + 28);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 48);
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), 0x15);
        assert_eq!(u16::from_ne_bytes([m[6], m[7]]), NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(m[16], DEVLINK_CMD_INFO_GET);
        let parsed = attrs(&m[20..]).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(string(parsed[1].1), "0000:5e:00.0");
    }

    #[test]
    fn parses_an_ice_info_reply() {
        let version = |name: &str, value: &str| {
            let mut v = Vec::new();
            put_str(&mut v, DEVLINK_ATTR_INFO_VERSION_NAME, name);
            put_str(&mut v, DEVLINK_ATTR_INFO_VERSION_VALUE, value);
            v
        };
        let mut p = Vec::new();
        put_str(&mut p, DEVLINK_ATTR_BUS_NAME, "pci");
        put_str(&mut p, DEVLINK_ATTR_INFO_DRIVER_NAME, "ice");
        put_attr(
            &mut p,
            DEVLINK_ATTR_INFO_VERSION_FIXED,
            &version("board.id", "K91258-000"),
        );
        put_attr(
            &mut p,
            DEVLINK_ATTR_INFO_VERSION_RUNNING,
            &version("fw.app.name", "ICE COMMS Package"),
        );
        // nested flag bit set, as some kernels send
        put_attr(
            &mut p,
            DEVLINK_ATTR_INFO_VERSION_RUNNING | 0x8000,
            &version("fw.app", "1.3.30.0"),
        );
        let info = parse_info(&p).unwrap();
        assert_eq!(info.driver.as_deref(), Some("ice"));
        assert_eq!(info.running("fw.app.name"), Some("ICE COMMS Package"));
        assert_eq!(info.running("fw.app"), Some("1.3.30.0"));
        assert_eq!(info.fixed, [("board.id".into(), "K91258-000".into())]);
        assert!(parse_info(&[8, 0, 1, 0, 0]).is_err());
    }

    #[test]
    fn talks_to_the_kernel() {
        // the control family always exists: a real round trip
        assert_eq!(family_id("nlctrl").unwrap(), GENL_ID_CTRL);
        assert!(matches!(
            family_id("no-such-family-x"),
            Err(DevlinkError::NoFamily)
        ));
        // no devlink device at this address on any machine
        match dev_info("pci", "ffff:ff:1f.7") {
            Err(DevlinkError::NoFamily | DevlinkError::NoDevice { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
}
