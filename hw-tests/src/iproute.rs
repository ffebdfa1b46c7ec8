//! Calls to iproute2's `ip`, the reference the project's netlink code is
//! compared with.

use std::process::Command;

use crate::HwError;

/// Runs `ip ARGS...` and returns its stdout; a non-zero exit is an error
/// carrying stderr.
pub fn ip(args: &[&str]) -> Result<String, HwError> {
    let cmd = format!("ip {}", args.join(" "));
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| HwError::Command {
            cmd: cmd.clone(),
            status: "not started".into(),
            stderr: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(HwError::Command {
            cmd,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One VF as `ip -j -d link show PF` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpVf {
    pub vf: u32,
    pub mac: String,
    pub vlan: u32,
    pub qos: u32,
    pub spoofchk: Option<bool>,
    pub trust: Option<bool>,
    pub link_state: Option<String>,
}

/// The PF's VFs as `ip -j -d link show PF` reports them.
pub fn vfs(pf: &str) -> Result<Vec<IpVf>, HwError> {
    let out = ip(&["-j", "-d", "link", "show", "dev", pf])?;
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| HwError::Parse {
        what: format!("ip -j -d link show dev {pf}"),
        detail: e.to_string(),
    })?;
    let list = v
        .get(0)
        .and_then(|l| l.get("vfinfo_list"))
        .and_then(|l| l.as_array())
        .cloned()
        .unwrap_or_default();
    list.iter()
        .map(|vf| {
            let num = |k: &str| vf.get(k).and_then(|x| x.as_u64()).map(|x| x as u32);
            // iproute2 puts vlan/qos either at the top level or in vlan_list.
            let vlan0 = vf
                .get("vlan_list")
                .and_then(|l| l.get(0))
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            let vnum = |k: &str| {
                num(k)
                    .or_else(|| vlan0.get(k).and_then(|x| x.as_u64()).map(|x| x as u32))
                    .unwrap_or(0)
            };
            Ok(IpVf {
                vf: num("vf").ok_or_else(|| HwError::Parse {
                    what: format!("ip -j link show dev {pf}"),
                    detail: format!("vf entry without a number: {vf}"),
                })?,
                mac: vf
                    .get("address")
                    .and_then(|x| x.as_str())
                    .unwrap_or_default()
                    .to_string(),
                vlan: vnum("vlan"),
                qos: vnum("qos"),
                spoofchk: vf.get("spoofchk").and_then(|x| x.as_bool()),
                trust: vf.get("trust").and_then(|x| x.as_bool()),
                link_state: vf
                    .get("link_state")
                    .and_then(|x| x.as_str())
                    .map(str::to_string),
            })
        })
        .collect()
}

/// Checks that the text form of `ip link show dev PF` has a `vf N` line
/// containing every string in `want` (e.g. `"vlan 100"`, `"trust on"`), and
/// returns that line. Panics with the whole output otherwise.
pub fn assert_vf_line(pf: &str, vf: u32, want: &[&str]) -> String {
    let text = ip(&["link", "show", "dev", pf]).expect("ip link show");
    let prefix = format!("vf {vf} ");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(&prefix))
        .unwrap_or_else(|| panic!("no `vf {vf}` line in:\n{text}"))
        .to_string();
    for w in want {
        assert!(line.contains(w), "`{w}` missing from `{line}`");
    }
    line
}

/// Whether a link of this name exists in the current network namespace (or
/// in the named one).
pub fn link_exists(netns: Option<&str>, ifname: &str) -> bool {
    let mut args = Vec::new();
    if let Some(ns) = netns {
        args.extend(["-n", ns]);
    }
    args.extend(["link", "show", "dev", ifname]);
    ip(&args).is_ok()
}

/// Sets a link administratively up; on drop, sets it down again (and
/// flushes its addresses) when it was down before.
#[derive(Debug)]
pub struct LinkUpGuard {
    ifname: String,
    was_up: bool,
}

impl LinkUpGuard {
    /// `ip link set dev IFNAME up`, remembering whether it was up.
    pub fn new(ifname: &str) -> Result<LinkUpGuard, HwError> {
        let flags = crate::sysfs::read(format!("/sys/class/net/{ifname}/flags"))?;
        let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).map_err(|e| {
            HwError::Parse {
                what: format!("/sys/class/net/{ifname}/flags"),
                detail: format!("{flags:?}: {e}"),
            }
        })?;
        ip(&["link", "set", "dev", ifname, "up"])?;
        Ok(LinkUpGuard {
            ifname: ifname.to_string(),
            was_up: flags & 1 == 1,
        })
    }
}

impl Drop for LinkUpGuard {
    fn drop(&mut self) {
        if !self.was_up {
            // The link may be gone already (a VF unbound or removed).
            let _ = ip(&["addr", "flush", "dev", &self.ifname]);
            let _ = ip(&["link", "set", "dev", &self.ifname, "down"]);
        }
    }
}
