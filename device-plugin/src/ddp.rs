//! DDP profiles (`ddpProfiles` selector) of Intel i40e/ice PFs.
//!
//! Sysfs does not show them. As upstream does, in this order:
//!
//! 1. devlink (on a real node, host root `/`): the running version
//!    `fw.app.name` of `devlink dev info pci/<pf>` (ice reports its DDP
//!    package there), over generic netlink ([`devlink`]), no tool needed;
//! 2. Intel's `ddptool -l -a -j -s <pci>`, when it is installed: the
//!    program named by `SRIOV_DDPTOOL`, else `ddptool` on `PATH`. Exit
//!    code 8 means "no profile loaded".
//!
//! When neither answers, no profile is known for the PF (a missing
//! ddptool is logged once at debug level) and `ddpProfiles` selectors do
//! not match it. Under another host root (a simulator) devlink is not
//! asked: the kernel's devlink devices are the machine's, not the root's.
//! Only PFs bound to `i40e` or `ice` are asked, once per scan, and only
//! when a resource selects on `ddpProfiles`.
//!
//! The JSON it prints:
//!
//! ```json
//! {"DDPInventory": {"device": "1572", "address": "0000:5e:00.0",
//!   "name": "enp94s0f0", "display": "Intel(R) ...",
//!   "DDPpackage": {"track_id": "80000008", "version": "1.0.3.0",
//!                  "name": "GTPv1-C/U IPv4/IPv6 payload"}}}
//! ```

pub use sriov_host::netlink::devlink;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use sriov_host::{HostRoot, Node, PciAddress};

/// `ddptool`'s exit code when the device has no DDP profile loaded.
pub const EXIT_NO_PROFILE: i32 = 8;

/// The environment variable naming the ddptool program.
pub const DDPTOOL_ENV: &str = "SRIOV_DDPTOOL";

/// Drivers whose PFs can carry a DDP profile.
pub const DDP_DRIVERS: &[&str] = &["i40e", "ice"];

/// Why a profile could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DdpError {
    #[error("{program} is not installed ({source}); DDP profiles are unknown")]
    NotInstalled {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} -l -a -j -s {address} failed: {detail}")]
    Failed {
        program: String,
        address: PciAddress,
        detail: String,
    },
    #[error("{program} -s {address} printed JSON without DDPInventory.DDPpackage.name: {detail}")]
    BadOutput {
        program: String,
        address: PciAddress,
        detail: String,
    },
}

/// The ddptool program to run.
#[derive(Debug, Clone)]
pub struct DdpTool {
    pub program: PathBuf,
}

impl DdpTool {
    /// `$SRIOV_DDPTOOL`, else `ddptool` (looked up on `PATH`).
    pub fn from_env() -> DdpTool {
        DdpTool {
            program: std::env::var_os(DDPTOOL_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("ddptool")),
        }
    }

    /// The running profile of one PF; `Ok(None)` when it has none.
    pub fn profile(&self, address: &PciAddress) -> Result<Option<String>, DdpError> {
        let program = self.program.display().to_string();
        let run = || {
            Command::new(&self.program)
                .args(["-l", "-a", "-j", "-s", &address.to_string()])
                .output()
        };
        let mut r = run();
        for _ in 0..3 {
            // a program file just written may be briefly busy while another
            // thread's fork still holds it open
            match &r {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    r = run();
                }
                _ => break,
            }
        }
        let out = r.map_err(|source| DdpError::NotInstalled {
            program: program.clone(),
            source,
        })?;
        match out.status.code() {
            Some(0) => {}
            Some(EXIT_NO_PROFILE) => return Ok(None),
            _ => {
                return Err(DdpError::Failed {
                    program,
                    address: *address,
                    detail: format!(
                        "{}: {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                });
            }
        }
        parse_output(&out.stdout).map_err(|detail| DdpError::BadOutput {
            program,
            address: *address,
            detail,
        })
    }
}

/// The profile name in ddptool's JSON; `Ok(None)` for an empty name.
pub fn parse_output(stdout: &[u8]) -> Result<Option<String>, String> {
    let v: serde_json::Value = serde_json::from_slice(stdout).map_err(|e| e.to_string())?;
    let name = v
        .pointer("/DDPInventory/DDPpackage/name")
        .and_then(|n| n.as_str())
        .ok_or_else(|| "no DDPInventory.DDPpackage.name".to_string())?;
    Ok((!name.trim().is_empty()).then(|| name.trim().to_string()))
}

/// The devlink running version that names the DDP package.
pub const DEVLINK_DDP_KEY: &str = "fw.app.name";

/// The DDP profiles of the node's i40e/ice PFs: devlink first (host root
/// `/` only), then `tool`. A missing ddptool or devlink is logged once
/// (debug); other failures are logged per PF.
pub fn profiles(tool: &DdpTool, root: &HostRoot, node: &Node) -> HashMap<PciAddress, String> {
    static MISSING_LOGGED: AtomicBool = AtomicBool::new(false);
    static NO_DEVLINK_LOGGED: AtomicBool = AtomicBool::new(false);
    let mut out = HashMap::new();
    let mut use_devlink = root.path() == std::path::Path::new("/");
    let mut use_tool = true;
    for f in node.functions() {
        if f.is_vf()
            || !f
                .driver
                .as_deref()
                .is_some_and(|d| DDP_DRIVERS.contains(&d))
        {
            continue;
        }
        if use_devlink {
            match devlink::dev_info("pci", &f.address.to_string()) {
                Ok(info) => {
                    if let Some(p) = info.running(DEVLINK_DDP_KEY).filter(|p| !p.is_empty()) {
                        tracing::debug!(pf = %f.address, profile = %p, "DDP profile (devlink)");
                        out.insert(f.address, p.to_string());
                        continue;
                    }
                }
                Err(e @ devlink::DevlinkError::NoFamily) => {
                    if !NO_DEVLINK_LOGGED.swap(true, Ordering::Relaxed) {
                        tracing::debug!(error = %e, "DDP profiles from ddptool only");
                    }
                    use_devlink = false;
                }
                Err(e) => {
                    tracing::debug!(pf = %f.address, error = %e, "no DDP profile from devlink")
                }
            }
        }
        if !use_tool {
            continue;
        }
        match tool.profile(&f.address) {
            Ok(Some(p)) => {
                tracing::debug!(pf = %f.address, profile = %p, "DDP profile");
                out.insert(f.address, p);
            }
            Ok(None) => tracing::debug!(pf = %f.address, "no DDP profile loaded"),
            Err(e @ DdpError::NotInstalled { .. }) => {
                if !MISSING_LOGGED.swap(true, Ordering::Relaxed) {
                    tracing::debug!(error = %e, "DDP profiles from devlink only");
                }
                use_tool = false;
            }
            Err(e) => tracing::warn!(pf = %f.address, error = %e, "cannot read the DDP profile"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ddptool_json() {
        let out = br#"{"DDPInventory": {"device": "1572", "address": "0000:5e:00.0",
            "name": "enp94s0f0", "display": "Intel(R) Ethernet Converged Network Adapter X710-4",
            "DDPpackage": {"track_id": "80000008", "version": "1.0.3.0",
                           "name": "GTPv1-C/U IPv4/IPv6 payload"}}}"#;
        assert_eq!(
            parse_output(out).unwrap().as_deref(),
            Some("GTPv1-C/U IPv4/IPv6 payload")
        );
        let empty = br#"{"DDPInventory": {"DDPpackage": {"name": ""}}}"#;
        assert_eq!(parse_output(empty).unwrap(), None);
        assert!(parse_output(b"{}").is_err());
        assert!(parse_output(b"not json").is_err());
    }

    #[test]
    fn missing_program_is_not_installed() {
        let t = DdpTool {
            program: "/nonexistent/ddptool".into(),
        };
        let e = t.profile(&"0000:5e:00.0".parse().unwrap()).unwrap_err();
        assert!(matches!(e, DdpError::NotInstalled { .. }), "{e}");
    }

    #[test]
    fn runs_the_program_and_reads_exit_codes() {
        let tmp = tempfile::tempdir().unwrap();
        let prog = tmp.path().join("ddptool");
        std::fs::write(
            &prog,
            "#!/bin/sh\ncase \"$5\" in\n 0000:5e:00.0) echo '{\"DDPInventory\":{\"DDPpackage\":{\"name\":\"GTP\"}}}';;\n 0000:5e:00.1) exit 8;;\n *) echo boom >&2; exit 3;;\nesac\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        let t = DdpTool { program: prog };
        assert_eq!(
            t.profile(&"0000:5e:00.0".parse().unwrap())
                .unwrap()
                .as_deref(),
            Some("GTP")
        );
        assert_eq!(t.profile(&"0000:5e:00.1".parse().unwrap()).unwrap(), None);
        let e = t.profile(&"0000:5e:00.2".parse().unwrap()).unwrap_err();
        assert!(e.to_string().contains("boom"), "{e}");
    }
}
