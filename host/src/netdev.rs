//! Network interfaces as sysfs shows them: `net/<name>/` under a PCI
//! function, linked from `<root>/sys/class/net/<name>`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::address::PciAddress;
use crate::attr::{Dir, is_absent};
use crate::detail::Detail;
use crate::error::{Error, Result};
use crate::root::HostRoot;

/// The link layer of a netdev, from its ARPHRD `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkType {
    /// `1` (ARPHRD_ETHER).
    Ether,
    /// `32` (ARPHRD_INFINIBAND).
    Infiniband,
    /// Anything else, by number.
    Other(u16),
}

impl LinkType {
    /// From the ARPHRD number in `type`.
    pub fn from_arphrd(t: u16) -> Self {
        match t {
            1 => LinkType::Ether,
            32 => LinkType::Infiniband,
            n => LinkType::Other(n),
        }
    }

    /// The ARPHRD number.
    pub fn arphrd(self) -> u16 {
        match self {
            LinkType::Ether => 1,
            LinkType::Infiniband => 32,
            LinkType::Other(n) => n,
        }
    }

    /// The name the device plugin's `linkTypes` selector uses: `ether`,
    /// `infiniband`, or the number.
    pub fn name(self) -> String {
        match self {
            LinkType::Ether => "ether".into(),
            LinkType::Infiniband => "infiniband".into(),
            LinkType::Other(n) => n.to_string(),
        }
    }
}

/// RFC 2863 operational state, from `operstate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperState {
    Up,
    Down,
    Dormant,
    LowerLayerDown,
    Testing,
    NotPresent,
    Unknown,
}

impl OperState {
    /// Parses the kernel's spelling; anything unknown is `Unknown`.
    pub fn parse(s: &str) -> Self {
        match s {
            "up" => OperState::Up,
            "down" => OperState::Down,
            "dormant" => OperState::Dormant,
            "lowerlayerdown" => OperState::LowerLayerDown,
            "testing" => OperState::Testing,
            "notpresent" => OperState::NotPresent,
            _ => OperState::Unknown,
        }
    }

    /// The kernel's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OperState::Up => "up",
            OperState::Down => "down",
            OperState::Dormant => "dormant",
            OperState::LowerLayerDown => "lowerlayerdown",
            OperState::Testing => "testing",
            OperState::NotPresent => "notpresent",
            OperState::Unknown => "unknown",
        }
    }
}

impl fmt::Display for OperState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Netdev {
    pub name: String,
    /// `address`: the MAC (20 bytes for InfiniBand), lower case.
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    pub operstate: OperState,
    /// `carrier`; `None` when unreadable (the kernel gives `EINVAL` while
    /// the link is administratively down).
    pub carrier: Option<bool>,
    /// `speed` in Mb/s; `None` when unknown (`-1`, or unreadable).
    pub speed_mbps: Option<u32>,
    pub link_type: LinkType,
    pub ifindex: Option<u32>,
    /// `phys_port_name` (`p0`, `pf0vf3`...), when the driver reports one.
    pub phys_port_name: Option<String>,
    /// `phys_switch_id` of a switchdev port, when the driver reports one.
    pub phys_switch_id: Option<String>,
}

impl Netdev {
    /// Reads an interface by name through `<root>/sys/class/net/<name>`.
    pub fn read(root: &HostRoot, name: &str) -> Result<Netdev> {
        let path = root.class_net(name);
        let found = match open_netdev(&path)? {
            Some(dir) => read_netdev_dir(&dir, name, Detail::Full)?,
            None => None,
        };
        found.ok_or(Error::NoSuchInterface {
            name: name.to_string(),
            path,
        })
    }

    /// `operstate` is `up`.
    pub fn is_up(&self) -> bool {
        self.operstate == OperState::Up
    }

    /// A switchdev representor of a VF or SF (`phys_port_name` like
    /// `pf0vf3`, `c1pf0vf3` or `pf0sf1`), as opposed to an uplink (`p0`).
    pub fn is_representor(&self) -> bool {
        self.phys_port_name.as_deref().is_some_and(|p| {
            let p = p.trim_start_matches(|c: char| c == 'c' || c.is_ascii_digit());
            p.starts_with("pf") && (p.contains("vf") || p.contains("sf"))
        })
    }
}

/// Reads one netdev directory, as much as `detail` asks; `Ok(None)` when
/// it vanished.
pub(crate) fn read_netdev_dir(dir: &Dir, name: &str, detail: Detail) -> Result<Option<Netdev>> {
    // `type` is present on every netdev; its absence means the netdev is gone.
    let Some(link_type) = dir.opt_parsed("type", "an ARPHRD number", |v| v.parse().ok())? else {
        return Ok(None);
    };
    if detail == Detail::Selection {
        // Name, link type and whether it is a representor: 2 attributes
        // instead of 9 (a VF's netdev is most of what a scan reads).
        return Ok(Some(Netdev {
            name: name.to_string(),
            mac: None,
            mtu: None,
            operstate: OperState::Unknown,
            carrier: None,
            speed_mbps: None,
            link_type: LinkType::from_arphrd(link_type),
            ifindex: None,
            phys_port_name: dir.opt("phys_port_name")?,
            phys_switch_id: None,
        }));
    }
    let operstate = dir
        .opt("operstate")?
        .map(|s| OperState::parse(&s))
        .unwrap_or(OperState::Unknown);
    let carrier = dir.opt_parsed("carrier", "0 or 1", |v| match v {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    })?;
    let speed_mbps = dir
        .opt_parsed("speed", "a speed in Mb/s", |v| v.parse::<i64>().ok())?
        .filter(|s| *s > 0 && *s < i64::from(u32::MAX))
        .map(|s| s as u32);
    Ok(Some(Netdev {
        name: name.to_string(),
        mac: dir.opt("address")?.map(|m| m.to_ascii_lowercase()),
        mtu: dir.opt_parsed("mtu", "an MTU", |v| v.parse().ok())?,
        operstate,
        carrier,
        speed_mbps,
        link_type: LinkType::from_arphrd(link_type),
        ifindex: dir.opt_parsed("ifindex", "an ifindex", |v| v.parse().ok())?,
        phys_port_name: dir.opt("phys_port_name")?,
        phys_switch_id: dir.opt("phys_switch_id")?,
    }))
}

/// Opens a netdev directory; `None` when it is gone.
fn open_netdev(path: &Path) -> Result<Option<Dir>> {
    match Dir::open(path) {
        Ok(d) => Ok(Some(d)),
        Err(e) if is_absent(&e) || e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The netdevs under a function directory's `net/`, by name; vanished ones
/// are skipped.
pub(crate) fn read_netdevs_of(function: &Dir, detail: Detail) -> Result<Vec<Netdev>> {
    let Some((net, names)) = function.listing("net")? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let dir = match net.sub(&name) {
            Ok(d) => d,
            Err(e) if is_absent(&e) => continue,
            Err(source) => {
                return Err(Error::Read {
                    path: net.child_path(&name),
                    source,
                });
            }
        };
        if let Some(n) = read_netdev_dir(&dir, &name, detail)? {
            out.push(n);
        }
    }
    Ok(out)
}

/// The netdev names of a PCI function (`<function>/net/*`), sorted; none
/// when it has no `net` directory or is gone.
pub fn names_of(root: &HostRoot, address: &PciAddress) -> Vec<String> {
    crate::attr::sorted_names(&root.pci_device(address).join("net"))
}

/// An interface's link type (`type`, an ARPHRD number), read alone;
/// `None` when the interface or the attribute is not there.
pub fn link_type(root: &HostRoot, name: &str) -> Option<LinkType> {
    let t = crate::attr::read_trimmed(&root.class_net(name).join("type")).ok()?;
    Some(LinkType::from_arphrd(t.parse().ok()?))
}

/// Why an interface's link is down, from `carrier` and, while that is
/// unreadable (the kernel gives `EINVAL` while the link is administratively
/// down), `operstate`: `Some` with the reason, `None` when the link is up or
/// cannot be told (no such interface). Two reads at most, for health checks.
pub fn link_down_reason(root: &HostRoot, name: &str) -> Option<String> {
    let dir = root.class_net(name);
    match crate::attr::read_trimmed(&dir.join("carrier"))
        .ok()
        .as_deref()
    {
        Some("0") => Some(format!("{name} has no carrier")),
        Some(_) => None,
        None => {
            let state = crate::attr::read_trimmed(&dir.join("operstate")).ok()?;
            (OperState::parse(&state) == OperState::Down).then(|| format!("{name} is down"))
        }
    }
}

/// The names in `<root>/sys/class/net`, sorted.
pub fn interface_names(root: &HostRoot) -> Result<Vec<String>> {
    crate::attr::read_names(&root.sys("class/net"))
}

/// The PCI function an interface belongs to: the function directory that
/// holds `net/<name>` (from the `class/net/<name>` link).
/// [`Error::NoSuchInterface`] when there is no such interface,
/// [`Error::NotPciInterface`] for a virtual one (`lo`, a veth, a bridge) or
/// one on a non-PCI device (an auxiliary sub-function).
pub fn pci_address_of(root: &HostRoot, name: &str) -> Result<PciAddress> {
    let link = root.class_net(name);
    let target: PathBuf = match std::fs::read_link(&link) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoSuchInterface {
                name: name.to_string(),
                path: link,
            });
        }
        Err(source) => return Err(Error::Read { path: link, source }),
    };
    // .../<function>/net/<name>, or .../<function>/virtioN/net/<name>
    let owner = target
        .parent()
        .filter(|p| p.file_name().is_some_and(|n| n == "net"))
        .and_then(Path::parent);
    let name_of = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .map(str::to_string)
    };
    let address = match name_of(owner) {
        Some(n) if n.starts_with("virtio") => {
            name_of(owner.and_then(Path::parent)).and_then(|p| PciAddress::parse(&p))
        }
        Some(n) => PciAddress::parse(&n),
        None => None,
    };
    address.ok_or(Error::NotPciInterface {
        name: name.to_string(),
        path: link,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_types_map_arphrd_numbers() {
        assert_eq!(LinkType::from_arphrd(1), LinkType::Ether);
        assert_eq!(LinkType::from_arphrd(32), LinkType::Infiniband);
        assert_eq!(LinkType::from_arphrd(772), LinkType::Other(772));
        assert_eq!(LinkType::Infiniband.arphrd(), 32);
        assert_eq!(LinkType::Infiniband.name(), "infiniband");
    }

    #[test]
    fn representors_are_told_from_uplinks() {
        let mut n = Netdev {
            name: "x".into(),
            mac: None,
            mtu: None,
            operstate: OperState::Up,
            carrier: None,
            speed_mbps: None,
            link_type: LinkType::Ether,
            ifindex: None,
            phys_port_name: Some("pf0vf3".into()),
            phys_switch_id: None,
        };
        assert!(n.is_representor());
        n.phys_port_name = Some("c1pf0sf2".into());
        assert!(n.is_representor());
        n.phys_port_name = Some("p0".into());
        assert!(!n.is_representor());
        n.phys_port_name = None;
        assert!(!n.is_representor());
    }
}
