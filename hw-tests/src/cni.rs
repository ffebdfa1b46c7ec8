//! Running a CNI plugin binary as a container runtime does: the command in
//! `CNI_*` variables, the network configuration on stdin, the result (or
//! the error) as JSON on stdout.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// What one plugin call gave back.
#[derive(Debug, Clone)]
pub struct CniOutput {
    /// Exit code (-9 when killed by a signal).
    pub code: i32,
    /// Stdout parsed as JSON (`Null` when it is not JSON, e.g. empty).
    pub json: Value,
    /// Stderr, for the failure message.
    pub stderr: String,
    /// Wall time from spawn to exit.
    pub wall: Duration,
}

/// Runs `bin` with `CNI_COMMAND=cmd` for container `cid`, network namespace
/// `netns` and interface `ifname`, and `conf` on stdin. Prints what it got
/// (the test's output shows it when the test fails).
pub fn run(
    bin: &Path,
    cmd: &str,
    cid: &str,
    netns: &Path,
    ifname: &str,
    conf: &Value,
) -> CniOutput {
    let start = Instant::now();
    let mut child = Command::new(bin)
        .env("CNI_COMMAND", cmd)
        .env("CNI_CONTAINERID", cid)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", ifname)
        .env("CNI_PATH", "/usr/lib/cni:/opt/cni/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(conf.to_string().as_bytes())
        .expect("write the config to the plugin's stdin");
    let out = child.wait_with_output().expect("wait for the plugin");
    let wall = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!(
        "{} {cmd}: exit {:?}\nstdout: {stdout}\nstderr: {stderr}",
        bin.display(),
        out.status.code(),
    );
    CniOutput {
        code: out.status.code().unwrap_or(-9),
        json: serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stderr,
        wall,
    }
}
