//! Test lanes: tests that need root, FUSE, network namespaces or the QEMU
//! lane call [`require`] first. When the lane is missing the test prints why
//! and returns early (a skip) — unless the lane is listed in the environment
//! variable `SRIOV_REQUIRE_LANES` (comma separated, `all` for every lane), in
//! which case the test panics. CI sets `SRIOV_REQUIRE_LANES=all`, so a lane it
//! expects can never be skipped silently.

use std::path::Path;

/// A capability of the machine that some tests need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Effective uid 0.
    Root,
    /// Root and `/dev/fuse` and `fusermount3` (the simulated node lane).
    Fuse,
    /// Root and the ability to create network namespaces and veths.
    Netns,
    /// The QEMU hardware lane (`qemu-system-x86_64` with the `igb` device).
    Qemu,
}

impl Lane {
    /// The lane's name as used in `SRIOV_REQUIRE_LANES`.
    pub fn name(self) -> &'static str {
        match self {
            Lane::Root => "root",
            Lane::Fuse => "fuse",
            Lane::Netns => "netns",
            Lane::Qemu => "qemu",
        }
    }

    /// `Ok(())` when the machine has this lane, else the reason it has not.
    pub fn available(self) -> Result<(), String> {
        let root = is_root();
        match self {
            Lane::Root if root => Ok(()),
            Lane::Root => Err("not running as root".into()),
            Lane::Fuse => {
                if !root {
                    return Err("not running as root".into());
                }
                if !Path::new("/dev/fuse").exists() {
                    return Err("/dev/fuse is missing".into());
                }
                if find_in_path("fusermount3").is_none() {
                    return Err("fusermount3 is not installed (apt-get install fuse3)".into());
                }
                Ok(())
            }
            Lane::Netns => {
                if !root {
                    return Err("not running as root".into());
                }
                if find_in_path("ip").is_none() {
                    return Err("ip (iproute2) is not installed".into());
                }
                if !Path::new("/proc/self/ns/net").exists() {
                    return Err("the kernel has no network namespaces".into());
                }
                Ok(())
            }
            Lane::Qemu => {
                if find_in_path("qemu-system-x86_64").is_none() {
                    return Err("qemu-system-x86_64 is not installed (make setup)".into());
                }
                Ok(())
            }
        }
    }

    /// Whether `SRIOV_REQUIRE_LANES` demands this lane.
    pub fn required(self) -> bool {
        std::env::var("SRIOV_REQUIRE_LANES")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .any(|l| l == "all" || l == self.name())
            })
            .unwrap_or(false)
    }
}

/// Checks that every lane in `lanes` is present. Returns `true` when the test
/// may run. Returns `false` after printing `SKIP <test>: <reason>` to stderr
/// when a lane is missing and not required; panics when it is required.
pub fn require(test: &str, lanes: &[Lane]) -> bool {
    for lane in lanes {
        if let Err(reason) = lane.available() {
            if lane.required() {
                panic!(
                    "{test}: lane `{}` is required (SRIOV_REQUIRE_LANES) but unavailable: {reason}",
                    lane.name()
                );
            }
            eprintln!("SKIP {test}: lane `{}` unavailable: {reason}", lane.name());
            return false;
        }
    }
    true
}

fn is_root() -> bool {
    // SAFETY-free: read our effective uid from /proc rather than calling libc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Finds an executable in `PATH` (and the sbin directories, which a non-login
/// root shell may lack).
pub fn find_in_path(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_names_are_stable() {
        assert_eq!(Lane::Root.name(), "root");
        assert_eq!(Lane::Fuse.name(), "fuse");
        assert_eq!(Lane::Netns.name(), "netns");
        assert_eq!(Lane::Qemu.name(), "qemu");
    }

    #[test]
    fn find_in_path_finds_sh() {
        assert!(find_in_path("sh").is_some());
        assert!(find_in_path("definitely-not-a-command-xyz").is_none());
    }
}
