//! Kernel uevents the simulated kernel emits, in the kernel's netlink
//! format, and their delivery to listeners.
//!
//! Delivery never touches the real machine's uevent netlink group: a
//! listener binds a unix datagram socket in `ROOT/run/sriov-sim/uevents/`
//! (any file name), and the simulator sends every uevent, as one datagram in
//! the kernel's format (`ACTION@DEVPATH\0ACTION=...\0DEVPATH=...\0...`), to
//! every socket in that directory. Sockets nobody reads any more (connection
//! refused) are skipped; a listener whose queue is full loses the event (as
//! a slow netlink listener does) rather than blocking the simulator.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// The directory, relative to the host root, where listeners bind sockets.
pub const UEVENT_DIR: &str = "run/sriov-sim/uevents";

/// One kernel uevent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uevent {
    /// `add`, `remove`, `bind`, `unbind`, `change`.
    pub action: String,
    /// Path under `/sys` with a leading `/`, e.g. `/devices/pci0000:3a/...`.
    pub devpath: String,
    /// `pci`, `net`, `vfio`, `infiniband`.
    pub subsystem: String,
    /// Further variables in order (`DRIVER`, `PCI_ID`, `INTERFACE`, ...).
    pub vars: Vec<(String, String)>,
    pub seqnum: u64,
}

impl Uevent {
    /// The kernel's wire format: `ACTION@DEVPATH` then `KEY=VALUE` pairs,
    /// each NUL-terminated; `SEQNUM` last.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        let mut push = |s: &str| {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        };
        push(&format!("{}@{}", self.action, self.devpath));
        push(&format!("ACTION={}", self.action));
        push(&format!("DEVPATH={}", self.devpath));
        push(&format!("SUBSYSTEM={}", self.subsystem));
        for (k, v) in &self.vars {
            push(&format!("{k}={v}"));
        }
        push(&format!("SEQNUM={}", self.seqnum));
        out
    }

    /// The value of a variable (`ACTION`, `DEVPATH`, `SUBSYSTEM`, `SEQNUM`
    /// or one of `vars`).
    pub fn get(&self, key: &str) -> Option<String> {
        match key {
            "ACTION" => Some(self.action.clone()),
            "DEVPATH" => Some(self.devpath.clone()),
            "SUBSYSTEM" => Some(self.subsystem.clone()),
            "SEQNUM" => Some(self.seqnum.to_string()),
            _ => self
                .vars
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone()),
        }
    }
}

/// Sends uevents to the sockets in `ROOT/run/sriov-sim/uevents/`.
#[derive(Debug)]
pub struct UeventSender {
    dir: PathBuf,
    socket: UnixDatagram,
}

impl UeventSender {
    /// Creates the socket directory under `root`.
    pub fn new(root: &Path) -> std::io::Result<Self> {
        let dir = root.join(UEVENT_DIR);
        std::fs::create_dir_all(&dir)?;
        let socket = UnixDatagram::unbound()?;
        // A listener that stops reading loses events (as with the kernel's
        // netlink, ENOBUFS) instead of blocking the simulated kernel.
        socket.set_nonblocking(true)?;
        Ok(Self { dir, socket })
    }

    /// The directory listeners bind their sockets in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sends one uevent to every listener; returns how many received it.
    pub fn send(&self, event: &Uevent) -> usize {
        let bytes = event.to_bytes();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut sent = 0;
        for entry in entries.flatten() {
            match self.socket.send_to(&bytes, entry.path()) {
                Ok(_) => sent += 1,
                Err(e) => tracing::debug!(
                    socket = %entry.path().display(),
                    error = %e,
                    "uevent listener did not take the event"
                ),
            }
        }
        sent
    }
}

/// A listener for a simulated node's uevents (for tests): binds a socket in
/// `ROOT/run/sriov-sim/uevents/` and removes it on drop.
#[derive(Debug)]
pub struct UeventListener {
    path: PathBuf,
    socket: UnixDatagram,
}

impl UeventListener {
    /// Binds `ROOT/run/sriov-sim/uevents/<name>.sock`.
    pub fn bind(root: &Path, name: &str) -> std::io::Result<Self> {
        let dir = root.join(UEVENT_DIR);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.sock"));
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path)?;
        Ok(Self { path, socket })
    }

    /// The socket, to receive datagrams (set a read timeout as needed).
    pub fn socket(&self) -> &UnixDatagram {
        &self.socket
    }

    /// Receives one raw uevent, waiting up to `timeout`.
    pub fn recv(&self, timeout: std::time::Duration) -> std::io::Result<Vec<u8>> {
        self.socket.set_read_timeout(Some(timeout))?;
        let mut buf = vec![0u8; 8192];
        let n = self.socket.recv(&mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }
}

impl Drop for UeventListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_the_kernels() {
        let e = Uevent {
            action: "add".into(),
            devpath: "/devices/pci0000:3a/0000:3a:00.0/0000:3b:02.0".into(),
            subsystem: "pci".into(),
            vars: vec![("PCI_SLOT_NAME".into(), "0000:3b:02.0".into())],
            seqnum: 7,
        };
        let b = e.to_bytes();
        let parts: Vec<&str> = std::str::from_utf8(&b)
            .unwrap()
            .trim_end_matches('\0')
            .split('\0')
            .collect();
        assert_eq!(
            parts[0],
            "add@/devices/pci0000:3a/0000:3a:00.0/0000:3b:02.0"
        );
        assert_eq!(parts[3], "SUBSYSTEM=pci");
        assert_eq!(parts.last().unwrap(), &"SEQNUM=7");
        assert_eq!(e.get("PCI_SLOT_NAME").unwrap(), "0000:3b:02.0");
    }

    #[test]
    fn a_full_listener_loses_events_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let _l = UeventListener::bind(tmp.path(), "slow").unwrap();
        let s = UeventSender::new(tmp.path()).unwrap();
        let e = Uevent {
            action: "add".into(),
            devpath: "/devices/x".into(),
            subsystem: "pci".into(),
            vars: vec![("PAD".into(), "x".repeat(1000))],
            seqnum: 1,
        };
        let sent: usize = (0..10_000).map(|_| s.send(&e)).sum();
        assert!(
            sent < 10_000,
            "the queue filled up and later sends were dropped"
        );
    }

    #[test]
    fn sender_reaches_bound_listeners() {
        let tmp = tempfile::tempdir().unwrap();
        let l = UeventListener::bind(tmp.path(), "t").unwrap();
        let s = UeventSender::new(tmp.path()).unwrap();
        let e = Uevent {
            action: "remove".into(),
            devpath: "/devices/x".into(),
            subsystem: "net".into(),
            vars: vec![],
            seqnum: 1,
        };
        assert_eq!(s.send(&e), 1);
        let got = l.recv(std::time::Duration::from_secs(2)).unwrap();
        assert_eq!(got, e.to_bytes());
    }
}
