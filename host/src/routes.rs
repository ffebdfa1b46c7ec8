//! Whether an interface carries routes, from `<root>/proc/net/route` and
//! `<root>/proc/net/ipv6_route`: a tool that unbinds a NIC uses this to
//! refuse taking down an interface in use.
//!
//! The files show the routes of the reading process's network namespace
//! (`/proc/net` is `/proc/self/net`); on a node that is the host namespace
//! when the reader runs with host networking.
//!
//! IPv6 routes the kernel creates for every interface with IPv6 enabled —
//! link-local `fe80::/10` and multicast `ff00::/8` — are not counted: they
//! do not mean the interface is in use.

use std::path::Path;

use crate::error::{Error, Result};
use crate::root::HostRoot;

/// The routes through one interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteCount {
    pub ipv4: usize,
    pub ipv6: usize,
}

impl RouteCount {
    /// Any route at all.
    pub fn any(&self) -> bool {
        self.ipv4 + self.ipv6 > 0
    }
}

/// The node's route tables, read once; [`RouteTable::count`] per interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTable {
    /// Interface of each IPv4 route.
    v4: Vec<String>,
    /// Interface of each counted IPv6 route.
    v6: Vec<String>,
}

impl RouteTable {
    /// Reads `<root>/proc/net/route` and `<root>/proc/net/ipv6_route`. A
    /// missing file counts as no routes (a kernel without IPv6, or a test
    /// root without `proc`).
    pub fn read(root: &HostRoot) -> Result<RouteTable> {
        let v4 = read_table(&root.proc("net/route"))?;
        let v6 = read_table(&root.proc("net/ipv6_route"))?;
        Ok(RouteTable {
            // Iface Destination Gateway Flags ... (the first line is a header)
            v4: v4
                .lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().next())
                .map(str::to_string)
                .collect(),
            // dest dest_len src src_len next_hop metric refcnt use flags device
            v6: v6
                .lines()
                .filter_map(|l| {
                    let cols: Vec<&str> = l.split_whitespace().collect();
                    (cols.len() >= 10 && !automatic_v6(cols[0])).then(|| cols[9].to_string())
                })
                .collect(),
        })
    }

    /// The routes through `ifname`.
    pub fn count(&self, ifname: &str) -> RouteCount {
        RouteCount {
            ipv4: self.v4.iter().filter(|i| *i == ifname).count(),
            ipv6: self.v6.iter().filter(|i| *i == ifname).count(),
        }
    }
}

/// Counts the routes through `ifname` (reads the tables; use [`RouteTable`]
/// for many interfaces).
pub fn routes_via(root: &HostRoot, ifname: &str) -> Result<RouteCount> {
    Ok(RouteTable::read(root)?.count(ifname))
}

/// The interfaces with an IPv4 default route (destination and mask
/// `00000000`) in `<root>/proc/net/route` (the main table), in file order
/// without repeats; none when the file is missing.
pub fn default_route_ifnames(root: &HostRoot) -> Result<Vec<String>> {
    let text = read_table(&root.proc("net/route"))?;
    let mut out: Vec<String> = Vec::new();
    for l in text.lines().skip(1) {
        let cols: Vec<&str> = l.split_whitespace().collect();
        // Iface Destination Gateway Flags RefCnt Use Metric Mask ...
        if cols.len() >= 8
            && cols[1] == "00000000"
            && cols[7] == "00000000"
            && !out.iter().any(|i| i == cols[0])
        {
            out.push(cols[0].to_string());
        }
    }
    Ok(out)
}

/// Link-local (`fe80::/10`) and multicast (`ff00::/8`) destinations, in the
/// 32-hex-digit form of `ipv6_route`.
fn automatic_v6(dest: &str) -> bool {
    let d = dest.to_ascii_lowercase();
    d.starts_with("ff")
        || d.starts_with("fe8")
        || d.starts_with("fe9")
        || d.starts_with("fea")
        || d.starts_with("feb")
}

fn read_table(path: &Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(Error::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first line of `/proc/net/route`.
    const ROUTE_HEADER: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";

    /// A root whose `proc/net` holds these files.
    fn proc_net(files: &[(&str, String)]) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let net = tmp.path().join("proc/net");
        std::fs::create_dir_all(&net).unwrap();
        for (name, text) in files {
            std::fs::write(net.join(name), text).unwrap();
        }
        tmp
    }

    #[test]
    fn counts_v4_and_real_v6_routes_per_interface() {
        let v4 = ROUTE_HEADER.to_string()
            + "ens1f0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
             ens1f0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
             ens1f00\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let v6 = "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001  ens1f1\n\
             ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001  ens1f1\n\
             20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001  ens1f0\n";
        let tmp = proc_net(&[("route", v4), ("ipv6_route", v6.to_string())]);
        let root = HostRoot::new(tmp.path());
        assert_eq!(
            routes_via(&root, "ens1f0").unwrap(),
            RouteCount { ipv4: 2, ipv6: 1 }
        );
        assert!(!routes_via(&root, "ens1f1").unwrap().any());
        assert!(
            !routes_via(&HostRoot::new(tmp.path().join("none")), "x")
                .unwrap()
                .any()
        );
    }

    #[test]
    fn default_routes_in_file_order_without_repeats() {
        let v4 = ROUTE_HEADER.to_string()
            + "ens2f0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
             ens1f0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
             ens1f1\t00000000\t0102A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0\n\
             ens2f0\t00000000\t0103A8C0\t0003\t0\t0\t300\t00000000\t0\t0\t0\n\
             short\t00000000\n";
        let tmp = proc_net(&[("route", v4)]);
        let root = HostRoot::new(tmp.path());
        assert_eq!(default_route_ifnames(&root).unwrap(), ["ens2f0", "ens1f1"]);
        let none = HostRoot::new(tmp.path().join("none"));
        assert!(default_route_ifnames(&none).unwrap().is_empty());
    }
}
