//! Running the project's `dpdk-bind` binary from a test.

use std::process::{Command, Output};

use crate::HwError;

/// Runs `dpdk-bind ARGS...` and returns its output, whatever the exit
/// status.
pub fn run(bin: &std::path::Path, args: &[&str]) -> Result<Output, HwError> {
    Command::new(bin)
        .args(args)
        .output()
        .map_err(|e| HwError::Command {
            cmd: format!("{} {}", bin.display(), args.join(" ")),
            status: "not started".into(),
            stderr: e.to_string(),
        })
}

/// Runs `dpdk-bind ARGS...`; a non-zero exit is an error carrying stderr.
pub fn ok(bin: &std::path::Path, args: &[&str]) -> Result<String, HwError> {
    let out = run(bin, args)?;
    if !out.status.success() {
        return Err(HwError::Command {
            cmd: format!("dpdk-bind {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `dpdk-bind status --json`, as JSON objects.
pub fn status(bin: &std::path::Path) -> Result<Vec<serde_json::Value>, HwError> {
    let out = ok(bin, &["status", "--json"])?;
    serde_json::from_str(&out).map_err(|e| HwError::Parse {
        what: "dpdk-bind status --json".into(),
        detail: format!("{e}: {out}"),
    })
}

/// The entry for one PCI address in a `status --json` listing.
pub fn entry<'a>(list: &'a [serde_json::Value], pci: &str) -> Option<&'a serde_json::Value> {
    list.iter().find(|e| e["pci"].as_str() == Some(pci))
}
