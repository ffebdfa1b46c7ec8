//! Per-interface network sysctls under `/proc/sys/net`, read and written in
//! the network namespace of the calling thread (the kernel resolves
//! `/proc/sys/net` against the opening task's namespace, so a thread inside
//! [`Netns::run_here`](crate::netns::Netns::run_here) sees the pod's
//! interfaces).

use std::io;
use std::path::PathBuf;

/// Address family of a sysctl directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `net/ipv4/conf/<dev>/`.
    Ipv4,
    /// `net/ipv6/conf/<dev>/`.
    Ipv6,
}

/// The path of `net/<family>/conf/<dev>/<key>`.
pub fn conf_path(family: Family, dev: &str, key: &str) -> PathBuf {
    let fam = match family {
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
    };
    PathBuf::from(format!("/proc/sys/net/{fam}/conf/{dev}/{key}"))
}

/// Reads `net/<family>/conf/<dev>/<key>`, trimmed.
pub fn read_conf(family: Family, dev: &str, key: &str) -> io::Result<String> {
    std::fs::read_to_string(conf_path(family, dev, key)).map(|s| s.trim().to_owned())
}

/// Writes `value` to `net/<family>/conf/<dev>/<key>`; the error names the
/// path.
pub fn write_conf(family: Family, dev: &str, key: &str, value: &str) -> io::Result<()> {
    let path = conf_path(family, dev, key);
    std::fs::write(&path, value)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// Turns IPv6 on for `dev` when the namespace's defaults turned it off
/// (`disable_ipv6` not 0), as the CNI's `ipam.ConfigureIface` does.
/// `Ok(false)` when it was already on or the kernel has no IPv6.
pub fn enable_ipv6(dev: &str) -> io::Result<bool> {
    match read_conf(Family::Ipv6, dev, "disable_ipv6") {
        Ok(v) if v != "0" => write_conf(Family::Ipv6, dev, "disable_ipv6", "0").map(|()| true),
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            conf_path(Family::Ipv6, "net1", "disable_ipv6"),
            PathBuf::from("/proc/sys/net/ipv6/conf/net1/disable_ipv6")
        );
        assert_eq!(
            conf_path(Family::Ipv4, "lo", "arp_notify"),
            PathBuf::from("/proc/sys/net/ipv4/conf/lo/arp_notify")
        );
    }

    #[test]
    fn missing_device_is_an_error_naming_the_path() {
        let e = write_conf(Family::Ipv4, "no-such-dev-x9", "arp_notify", "1").unwrap_err();
        assert!(
            e.to_string()
                .contains("/proc/sys/net/ipv4/conf/no-such-dev-x9/arp_notify")
        );
        assert!(!enable_ipv6("no-such-dev-x9").unwrap());
    }
}
