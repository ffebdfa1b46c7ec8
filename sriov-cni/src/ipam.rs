//! IPAM delegation: run the plugin named by `ipam.type` from `CNI_PATH`
//! with the same environment (and `CNI_COMMAND` set to the step) and the same
//! config on stdin, and read its result or error from stdout.
//!
//! Debian's reference plugins (containernetworking-plugins 1.1.1) accept
//! `cniVersion` up to 1.0.0 and answer 1.1.0 with error code 1. The 1.1.0
//! result is a superset of 1.0.0's, so on that answer the same request is
//! sent again with `cniVersion` 1.0.0 and the answer is used as is.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Proc, Stdio};

use serde_json::Value;

use crate::env::CniEnv;
use crate::error::{CniError, Code, Result};
use crate::result::CniResult;

/// The CNI step to delegate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `ADD`.
    Add,
    /// `DEL`.
    Del,
    /// `CHECK`.
    Check,
    /// `STATUS`.
    Status,
    /// `GC`.
    Gc,
    /// `VERSION`.
    Version,
}

impl Step {
    fn as_str(self) -> &'static str {
        match self {
            Step::Add => "ADD",
            Step::Del => "DEL",
            Step::Check => "CHECK",
            Step::Status => "STATUS",
            Step::Gc => "GC",
            Step::Version => "VERSION",
        }
    }
}

/// Finds the plugin `kind` in `CNI_PATH`.
pub fn find_plugin(kind: &str, path: &[PathBuf]) -> Result<PathBuf> {
    for dir in path {
        let p = dir.join(kind);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(CniError::new(
        Code::Ipam,
        format!("IPAM plugin {kind:?} not found"),
        format!(
            "looked in CNI_PATH {}; install it (Debian: containernetworking-plugins, in /usr/lib/cni)",
            path.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        ),
    ))
}

/// An IPAM plugin's error answer.
#[derive(Debug, Clone)]
struct PluginError {
    code: u32,
    msg: String,
    details: String,
}

fn run_once(
    plugin: &Path,
    step: Step,
    env: &CniEnv,
    container_id: &str,
    ifname: &str,
    stdin: &[u8],
) -> Result<std::result::Result<Vec<u8>, PluginError>> {
    let mut cmd = Proc::new(plugin);
    cmd.env("CNI_COMMAND", step.as_str())
        .env("CNI_CONTAINERID", container_id)
        .env("CNI_IFNAME", ifname)
        .env(
            "CNI_PATH",
            std::env::join_paths(&env.path).unwrap_or_default(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match &env.netns {
        Some(n) => cmd.env("CNI_NETNS", n),
        None => cmd.env_remove("CNI_NETNS"),
    };
    let args: Vec<String> = env
        .args
        .pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    cmd.env("CNI_ARGS", args.join(";"));
    let what = format!("IPAM plugin {}", plugin.display());
    let mut child = cmd
        .spawn()
        .map_err(|e| CniError::new(Code::Ipam, format!("cannot run {what}"), e.to_string()))?;
    {
        let mut sin = child.stdin.take().expect("piped");
        // A plugin that exits without reading stdin closes the pipe: ignore.
        let _ = sin.write_all(stdin);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| CniError::new(Code::Ipam, format!("cannot run {what}"), e.to_string()))?;
    if !out.stderr.is_empty() {
        tracing::debug!(plugin = %plugin.display(), stderr = %String::from_utf8_lossy(&out.stderr).trim(), "IPAM stderr");
    }
    if out.status.success() {
        return Ok(Ok(out.stdout));
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let code = v.get("code").and_then(Value::as_u64).unwrap_or(0) as u32;
    let msg = v
        .get("msg")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            format!(
                "exited with {} and no error JSON (stderr: {})",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )
        });
    let details = v
        .get("details")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok(Err(PluginError { code, msg, details }))
}

/// Rewrites `cniVersion` in a config.
fn with_version(stdin: &[u8], version: &str) -> Option<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(stdin).ok()?;
    v.as_object_mut()?
        .insert("cniVersion".into(), Value::String(version.into()));
    serde_json::to_vec(&v).ok()
}

/// Runs `step` of IPAM plugin `kind`; returns its stdout. Retries a 1.1.0
/// request as 1.0.0 when the plugin answers code 1 (incompatible version).
pub fn run(
    kind: &str,
    step: Step,
    env: &CniEnv,
    container_id: &str,
    ifname: &str,
    stdin: &[u8],
) -> Result<Vec<u8>> {
    let plugin = find_plugin(kind, &env.path)?;
    let mut answer = run_once(&plugin, step, env, container_id, ifname, stdin)?;
    if let Err(e) = &answer
        && e.code == 1
        && crate::config::peek_version(stdin).as_deref() == Some("1.1.0")
        && let Some(older) = with_version(stdin, "1.0.0")
    {
        tracing::debug!(
            plugin = kind,
            "IPAM plugin refused cniVersion 1.1.0; retrying as 1.0.0"
        );
        answer = run_once(&plugin, step, env, container_id, ifname, &older)?;
    }
    answer.map_err(|e| {
        // Pass the spec's codes through (the runtime may act on "try
        // again"); everything else is "IPAM failed".
        let code = match e.code {
            11 => Code::TryAgain,
            _ => Code::Ipam,
        };
        CniError::new(
            code,
            format!(
                "IPAM plugin {kind} {} failed (code {}): {}",
                step.as_str(),
                e.code,
                e.msg
            ),
            e.details,
        )
    })
}

/// Runs IPAM ADD and parses its result.
pub fn add(kind: &str, env: &CniEnv, stdin: &[u8]) -> Result<CniResult> {
    let out = run(
        kind,
        Step::Add,
        env,
        env.container_id(),
        env.ifname(),
        stdin,
    )?;
    let r = CniResult::parse(&out, &format!("the result of IPAM plugin {kind}"))?;
    if r.ips.is_empty() {
        return Err(CniError::new(
            Code::Ipam,
            format!("IPAM plugin {kind} returned no IP addresses"),
            "check the ipam section of the network config",
        ));
    }
    Ok(r)
}

/// Whether IPAM plugin `kind` lists `version` in its VERSION answer
/// (Debian's 1.1.1 plugins stop at 1.0.0, so they get no STATUS or GC).
pub fn supports_version(kind: &str, env: &CniEnv, version: &str) -> bool {
    let Ok(plugin) = find_plugin(kind, &env.path) else {
        return false;
    };
    let stdin = format!("{{\"cniVersion\":\"{version}\"}}");
    match run_once(&plugin, Step::Version, env, "", "", stdin.as_bytes()) {
        Ok(Ok(out)) => serde_json::from_slice::<Value>(&out)
            .ok()
            .and_then(|v| v.get("supportedVersions").cloned())
            .and_then(|v| v.as_array().cloned())
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(version))),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn env(dir: &Path) -> CniEnv {
        CniEnv {
            command: crate::env::Command::Add,
            container_id: Some("c1".into()),
            netns: Some("/run/netns/x".into()),
            ifname: Some("net1".into()),
            args: Default::default(),
            path: vec!["/nonexistent".into(), dir.to_path_buf()],
        }
    }

    #[test]
    fn runs_plugin_with_env_and_stdin() {
        let d = tempfile::tempdir().unwrap();
        script(
            d.path(),
            "fake-ipam",
            r#"in=$(cat); case "$in" in *'"cniVersion":"1.1.0"'*) echo '{"code":1,"msg":"incompatible CNI versions"}'; exit 1;; esac
echo "{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.9.0.2/24\",\"gateway\":\"10.9.0.1\"}],\"dns\":{\"domain\":\"$CNI_COMMAND-$CNI_CONTAINERID-$CNI_IFNAME\"}}""#,
        );
        let r = add(
            "fake-ipam",
            &env(d.path()),
            br#"{"cniVersion":"1.1.0","name":"n","type":"sriov","ipam":{"type":"fake-ipam"}}"#,
        )
        .unwrap();
        assert_eq!(r.ips[0].address.to_string(), "10.9.0.2");
        assert_eq!(r.dns.domain, "ADD-c1-net1");
    }

    #[test]
    fn errors_carry_plugin_message() {
        let d = tempfile::tempdir().unwrap();
        script(
            d.path(),
            "bad-ipam",
            r#"echo '{"code":11,"msg":"no addresses left","details":"range full"}'; exit 1"#,
        );
        let e = add("bad-ipam", &env(d.path()), b"{\"cniVersion\":\"1.0.0\"}").unwrap_err();
        assert_eq!(e.code, Code::TryAgain);
        assert!(e.msg.contains("no addresses left"), "{e}");
        let e = add("missing", &env(d.path()), b"{}").unwrap_err();
        assert_eq!(e.code, Code::Ipam);
        assert!(e.details.contains("/nonexistent"), "{e}");
        script(d.path(), "empty-ipam", r#"echo '{"cniVersion":"1.0.0"}'"#);
        let e = add("empty-ipam", &env(d.path()), b"{}").unwrap_err();
        assert!(e.msg.contains("no IP"), "{e}");
    }
}
