//! Real veth interfaces backing simulated PF and VF netdevs (`--veth`).
//!
//! Each VF netdev `<pf>v<N>` is one end of a veth pair created in the
//! simulator's network namespace with the VF's name, MAC and MTU; the other
//! end gets a short unique name (`sv<pid>x<n>`, at most 15 characters) and
//! stays put. The pair is deleted through that peer, so it goes away even
//! after a CNI moved (and maybe renamed) the VF end into a pod's namespace.
//! Commands run `ip` (iproute2).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The real sysfs view of this network namespace's interfaces.
const SYS_CLASS_NET: &str = "/sys/class/net";

use crate::kernel::{BackendError, LinkInfo, NetdevBackend, backend_errno};

/// Creates and deletes veth pairs with `ip link`.
#[derive(Debug, Default)]
pub struct VethBackend {
    /// VF-side name -> peer name.
    peers: BTreeMap<String, String>,
    /// VF-side name as created -> its last known name here.
    current: BTreeMap<String, String>,
}

/// Peer-name counter shared by every backend in the process, so that two
/// simulated nodes in one test binary never pick the same peer name.
static PEER_COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl VethBackend {
    /// A backend that has created nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The peer name of the veth created as `name`.
    pub fn peer_of(&self, name: &str) -> Option<&str> {
        self.peers.get(name).map(String::as_str)
    }

    fn peer_name(&mut self) -> String {
        let n = PEER_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        // pid < 2^22 (6 hex digits) + counter: "sv" + 6 + "x" + up to 6.
        format!("sv{:x}x{:x}", std::process::id() & 0xff_ffff, n)
    }
}

fn ip(args: &[&str]) -> io::Result<String> {
    let bin = crate::lanes::find_in_path("ip").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "ip (iproute2) is not installed; --veth needs it (apt-get install iproute2)",
        )
    })?;
    let out = Command::new(bin).args(args).output()?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let errno = if stderr.contains("File exists") {
        libc::EEXIST
    } else if stderr.contains("Cannot find device") || stderr.contains("does not exist") {
        libc::ENODEV
    } else if stderr.contains("Operation not permitted") {
        libc::EPERM
    } else if stderr.contains("Invalid argument") {
        libc::EINVAL
    } else {
        libc::EIO
    };
    Err(io::Error::new(
        io::Error::from_raw_os_error(errno).kind(),
        BackendError {
            errno,
            message: format!("`ip {}` failed: {stderr}", args.join(" ")),
        },
    ))
}

impl NetdevBackend for VethBackend {
    fn create(&mut self, name: &str, mac: &str, mtu: u32, up: bool) -> io::Result<u32> {
        let peer = self.peer_name();
        let mtu_s = mtu.to_string();
        ip(&[
            "link", "add", "name", name, "address", mac, "mtu", &mtu_s, "type", "veth", "peer",
            "name", &peer,
        ])?;
        self.peers.insert(name.to_string(), peer.clone());
        if up {
            // Both ends up: the link is up with carrier, as a cabled PF.
            ip(&["link", "set", "dev", &peer, "up"])?;
            ip(&["link", "set", "dev", name, "up"])?;
        }
        let out = ip(&["-o", "link", "show", "dev", name])?;
        out.split(':')
            .next()
            .and_then(|i| i.trim().parse().ok())
            .ok_or_else(|| io::Error::other(format!("cannot read the ifindex of {name}: {out:?}")))
    }

    fn delete(&mut self, name: &str) -> io::Result<()> {
        self.current.remove(name);
        let Some(peer) = self.peers.remove(name) else {
            return Ok(());
        };
        match ip(&["link", "del", "dev", &peer]) {
            Err(e) if backend_errno(&e) == libc::ENODEV => Ok(()),
            other => other.map(|_| ()),
        }
    }

    fn set_mtu(&mut self, name: &str, mtu: u32) -> io::Result<()> {
        let cur = self.current.get(name).map_or(name, String::as_str);
        ip(&["link", "set", "dev", cur, "mtu", &mtu.to_string()]).map(|_| ())
    }

    fn locate(&mut self, name: &str) -> io::Result<Option<LinkInfo>> {
        let Some(peer) = self.peers.get(name) else {
            return Ok(None);
        };
        let net = Path::new(SYS_CLASS_NET);
        let num =
            |p: PathBuf| -> Option<u32> { std::fs::read_to_string(p).ok()?.trim().parse().ok() };
        // The peer stays here: its iflink is the VF end's ifindex,
        // wherever that end is.
        let (Some(peer_index), Some(vf_index)) = (
            num(net.join(peer).join("ifindex")),
            num(net.join(peer).join("iflink")),
        ) else {
            return Ok(None);
        };
        let is_ours = |n: &str| {
            num(net.join(n).join("ifindex")) == Some(vf_index)
                && num(net.join(n).join("iflink")) == Some(peer_index)
        };
        let last = self
            .current
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_string());
        let found = if is_ours(&last) {
            Some(last)
        } else {
            std::fs::read_dir(net)?
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .find(|n| is_ours(n))
        };
        let Some(cur) = found else {
            return Ok(None);
        };
        self.current.insert(name.to_string(), cur.clone());
        let read = |f: &str| {
            std::fs::read_to_string(net.join(&cur).join(f))
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        Ok(Some(LinkInfo {
            ifindex: vf_index,
            mac: read("address"),
            mtu: read("mtu").parse().unwrap_or(1500),
            operstate: read("operstate"),
            name: cur,
        }))
    }

    fn delete_all(&mut self) {
        let names: Vec<String> = self.peers.keys().cloned().collect();
        for n in names {
            if let Err(e) = self.delete(&n) {
                tracing::warn!(veth = %n, error = %e, "cannot delete veth");
            }
        }
    }
}

/// The simulator pid in a peer name `sv<pid hex>x<n hex>`.
fn peer_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("sv")?;
    let (pid, n) = rest.split_once('x')?;
    if pid.is_empty() || n.is_empty() || !n.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(pid, 16).ok()
}

/// Deletes the veth pairs of simulators that are no longer running (killed
/// with SIGKILL, so their drop never ran): every peer `sv<pid>x<n>` in this
/// network namespace whose pid is not alive. Deleting the peer deletes the
/// VF side too, wherever it was moved. Returns the peers deleted.
pub fn delete_orphans() -> Vec<String> {
    let Ok(out) = ip(&["-o", "link", "show", "type", "veth"]) else {
        return Vec::new();
    };
    let mut deleted = Vec::new();
    for line in out.lines() {
        // "12: sv1a2bx3@if11: <...>"
        let Some(name) = line.split(": ").nth(1) else {
            continue;
        };
        let name = name.split('@').next().unwrap_or(name);
        let Some(pid) = peer_pid(name) else {
            continue;
        };
        if pid == std::process::id() & 0xff_ffff || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        match ip(&["link", "del", "dev", name]) {
            Ok(_) => {
                tracing::info!(veth = name, pid, "deleted a veth left by a dead simulator");
                deleted.push(name.to_string());
            }
            Err(e) => tracing::warn!(veth = name, error = %e, "cannot delete a stale veth"),
        }
    }
    deleted
}

impl Drop for VethBackend {
    fn drop(&mut self) {
        self.delete_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_pid_only_from_our_peer_names() {
        assert_eq!(peer_pid("sv1a2bx3"), Some(0x1a2b));
        assert_eq!(peer_pid("sv1a2bx"), None);
        assert_eq!(peer_pid("svx3"), None);
        assert_eq!(peer_pid("eth0"), None);
        assert_eq!(peer_pid("sv12x3y"), None);
    }

    #[test]
    fn peer_names_fit_ifnamsiz_and_are_unique() {
        let mut b = VethBackend::new();
        let a = b.peer_name();
        let c = b.peer_name();
        assert_ne!(a, c);
        assert!(a.len() <= 15 && c.len() <= 15, "{a} {c}");
        // A second backend in the same process never reuses a name.
        let mut other = VethBackend::new();
        let d = other.peer_name();
        assert!(d != a && d != c, "{d} repeats {a} or {c}");
    }
}
