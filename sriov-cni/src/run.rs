//! One invocation: environment and stdin in, one JSON document on stdout
//! (the result, or the error), logs to stderr or `logFile`.

use std::sync::Arc;

use serde_json::json;
use sriov_host::netlink::{LinkOps, Netlink};

use crate::config::{self, LATEST_VERSION, NetConf, SUPPORTED_VERSIONS};
use crate::env::{CniEnv, Command};
use crate::error::{CniError, Result};
use crate::plugin::Plugin;

/// What to print and how to exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The JSON for stdout (empty for a successful DEL, GC, STATUS, CHECK).
    pub stdout: String,
    /// The exit code (0 or 1).
    pub code: i32,
}

/// The VERSION answer.
pub fn version_json(requested: Option<&str>) -> String {
    let v = requested
        .filter(|v| config::is_supported(v))
        .unwrap_or(LATEST_VERSION);
    json!({ "cniVersion": v, "supportedVersions": SUPPORTED_VERSIONS }).to_string()
}

fn setup_logging(conf: &NetConf) {
    let level = match conf
        .log_level
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("panic") | Some("error") => tracing::Level::ERROR,
        Some("warning") | Some("warn") => tracing::Level::WARN,
        Some("info") => tracing::Level::INFO,
        Some("debug") => tracing::Level::DEBUG,
        Some("trace") => tracing::Level::TRACE,
        _ => tracing::Level::WARN,
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_target(false);
    let file = conf.log_file.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    let _ = match file {
        Some(f) => builder.with_writer(std::sync::Mutex::new(f)).try_init(),
        None => builder.with_writer(std::io::stderr).try_init(),
    };
}

/// Runs one invocation with `link` as the host's netlink (opened lazily by
/// the binary; tests pass a fake).
pub fn run(
    env: Result<CniEnv>,
    stdin: &[u8],
    link: impl FnOnce() -> Result<Arc<dyn LinkOps>>,
) -> Output {
    let version = config::peek_version(stdin)
        .filter(|v| config::is_supported(v))
        .unwrap_or_else(|| LATEST_VERSION.to_owned());
    let fail = |e: CniError| Output {
        stdout: e.to_json(&version),
        code: 1,
    };
    let env = match env {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    if env.command == Command::Version {
        return Output {
            stdout: version_json(config::peek_version(stdin).as_deref()),
            code: 0,
        };
    }
    let conf = match NetConf::parse(stdin, env.args.get("MAC")) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    setup_logging(&conf);
    tracing::debug!(command = ?env.command, container = env.container_id(), ifname = env.ifname(), "invoked");
    let out = (|| -> Result<String> {
        if env.command == Command::Status {
            return crate::plugin::status(&env, &conf, stdin).map(|()| String::new());
        }
        let plugin = Plugin::open(link()?)?;
        match env.command {
            Command::Add => plugin
                .add(&env, &conf, stdin)
                .map(|r| r.to_json(&conf.cni_version).to_string()),
            Command::Del => plugin.del(&env, &conf, stdin).map(|()| String::new()),
            Command::Check => plugin.check(&env, &conf, stdin).map(|()| String::new()),
            Command::Gc => plugin.gc(&env, &conf, stdin).map(|()| String::new()),
            Command::Version | Command::Status => unreachable!("handled above"),
        }
    })();
    match out {
        Ok(stdout) => Output { stdout, code: 0 },
        Err(e) => {
            tracing::error!("{:?} failed: {e}", env.command);
            Output {
                stdout: e.to_json(&conf.cni_version),
                code: 1,
            }
        }
    }
}

/// The real netlink in the calling thread's namespace.
pub fn real_netlink() -> Result<Arc<dyn LinkOps>> {
    Netlink::open()
        .map(|n| Arc::new(n) as Arc<dyn LinkOps>)
        .map_err(|e| CniError::netlink("cannot open route netlink", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nolink() -> Result<Arc<dyn LinkOps>> {
        panic!("netlink must not be opened")
    }

    #[test]
    fn version_lists_supported() {
        let env = CniEnv::from_lookup(|k| (k == "CNI_COMMAND").then(|| "VERSION".to_owned()));
        let out = run(env, b"{\"cniVersion\":\"0.4.0\"}", nolink);
        assert_eq!(out.code, 0);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["cniVersion"], "0.4.0");
        assert_eq!(
            v["supportedVersions"].as_array().unwrap().len(),
            SUPPORTED_VERSIONS.len()
        );
        let out = run(
            CniEnv::from_lookup(|k| (k == "CNI_COMMAND").then(|| "VERSION".to_owned())),
            b"",
            nolink,
        );
        assert!(out.stdout.contains("1.1.0"));
    }

    #[test]
    fn env_and_config_errors_are_json() {
        let out = run(
            CniEnv::from_lookup(|_| None),
            b"{\"cniVersion\":\"0.4.0\"}",
            nolink,
        );
        assert_eq!(out.code, 1);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["code"], 4);
        assert_eq!(v["cniVersion"], "0.4.0");
        let env = CniEnv::from_lookup(|k| match k {
            "CNI_COMMAND" => Some("ADD".into()),
            "CNI_CONTAINERID" => Some("c".into()),
            "CNI_NETNS" => Some("/proc/self/ns/net".into()),
            "CNI_IFNAME" => Some("net1".into()),
            _ => None,
        });
        let out = run(
            env,
            br#"{"cniVersion":"1.0.0","name":"n","type":"sriov","deviceID":"0000:3b:02.0","vlan":5000}"#,
            nolink,
        );
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["code"], 7);
        assert!(v["msg"].as_str().unwrap().contains("vlan 5000"));
    }

    #[test]
    fn status_checks_state_dir_and_ipam() {
        let d = tempfile::tempdir().unwrap();
        let env = || {
            CniEnv::from_lookup(|k| match k {
                "CNI_COMMAND" => Some("STATUS".into()),
                "CNI_PATH" => Some("/nonexistent".into()),
                _ => None,
            })
        };
        let conf = format!(
            r#"{{"cniVersion":"1.1.0","name":"n","type":"sriov","dataDir":"{}"}}"#,
            d.path().display()
        );
        let out = run(env(), conf.as_bytes(), nolink);
        assert_eq!(
            out,
            Output {
                stdout: String::new(),
                code: 0
            }
        );
        let conf = format!(
            r#"{{"cniVersion":"1.1.0","name":"n","type":"sriov","dataDir":"{}","ipam":{{"type":"host-local"}}}}"#,
            d.path().display()
        );
        let out = run(env(), conf.as_bytes(), nolink);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["code"], 50, "{v}");
    }
}
