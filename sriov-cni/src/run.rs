//! One invocation: environment and stdin in, one JSON document on stdout
//! (the result, or the error), logs to stderr or `logFile`.

use std::sync::Arc;

use serde_json::json;
use sriov_host::netlink::{LinkOps, Netlink};

use crate::config::{self, LATEST_VERSION, NetConf, SUPPORTED_VERSIONS};
use crate::env::{CniEnv, Command};
use crate::error::{CniError, Code, Result};
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

/// The log level of `logLevel`: as the Go plugin, `info` when it is
/// missing or not a level name (plus `warn` and `trace`).
pub fn log_level(conf: &NetConf) -> tracing::Level {
    match conf
        .log_level
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("panic") | Some("error") => tracing::Level::ERROR,
        Some("warning") | Some("warn") => tracing::Level::WARN,
        Some("debug") => tracing::Level::DEBUG,
        Some("trace") => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    }
}

fn setup_logging(conf: &NetConf) {
    let level = log_level(conf);
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
    // DEL works from the saved state and never re-validates the config
    // (as the Go plugin, whose DEL reads only its cache): a config that ADD
    // accepted, by this plugin or the Go one, or that changed since, never
    // makes DEL fail. GC and STATUS (which the Go plugin lacks) work from
    // the state too. CHECK is the Go plugin's (success) unless the config
    // asks for `strictCheck`.
    let lenient = match env.command {
        Command::Del | Command::Gc | Command::Status => true,
        Command::Check => !config::peek_strict_check(stdin),
        _ => false,
    };
    let parsed = if lenient {
        NetConf::parse_lenient(stdin, env.args.get("MAC"))
    } else {
        NetConf::parse(stdin, env.args.get("MAC"))
    };
    let conf = match parsed {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    setup_logging(&conf);
    tracing::debug!(command = ?env.command, container = env.container_id(), ifname = env.ifname(), "invoked");
    for w in &conf.warnings {
        tracing::warn!("{w}");
    }
    if env.command == Command::Check && !config::at_least(&conf.cni_version, "0.4.0") {
        return fail(CniError::new(
            Code::IncompatibleVersion,
            "config version does not allow CHECK",
            format!("cniVersion {} predates CHECK (0.4.0)", conf.cni_version),
        ));
    }
    if env.command == Command::Check && !conf.strict_check {
        // The Go plugin's CHECK: nothing to verify.
        tracing::debug!("CHECK: nothing verified (set strictCheck to verify the attachment)");
        return Output {
            stdout: String::new(),
            code: 0,
        };
    }
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

    fn fake_link() -> Result<Arc<dyn LinkOps>> {
        Ok(Arc::new(sriov_host::netlink::RecordingLinkOps::new()))
    }

    fn env_for(cmd: &'static str) -> Result<CniEnv> {
        CniEnv::from_lookup(move |k| match k {
            "CNI_COMMAND" => Some(cmd.into()),
            "CNI_CONTAINERID" => Some("c".into()),
            "CNI_NETNS" => Some("/proc/self/ns/net".into()),
            "CNI_IFNAME" => Some("net1".into()),
            "CNI_PATH" => Some("/nonexistent".into()),
            _ => None,
        })
    }

    /// Issue 12 item 11: DEL does not validate the config's values (ADD's
    /// parse would refuse this one with code 7).
    #[test]
    fn del_does_not_validate_the_config() {
        let d = tempfile::tempdir().unwrap();
        let conf = format!(
            r#"{{"cniVersion":"1.0.0","name":"n","type":"sriov","dataDir":"{}","vlan":5000,"mac":"zz","min_tx_rate":9,"max_tx_rate":1}}"#,
            d.path().display()
        );
        let add = run(env_for("ADD"), conf.as_bytes(), nolink);
        assert_eq!(add.code, 1);
        let out = run(env_for("DEL"), conf.as_bytes(), fake_link);
        assert_eq!(
            out,
            Output {
                stdout: String::new(),
                code: 0
            }
        );
        // Not JSON, or a version nobody supports: refused for every
        // command, as the Go library does.
        let out = run(env_for("DEL"), b"nope", fake_link);
        assert_eq!(out.code, 1);
    }

    /// Issue 12 item 11: CHECK as the Go plugin's: success without looking
    /// at the attachment (there is none here), whatever the values; code 1
    /// before 0.4.0 (the Go library's "config version does not allow
    /// CHECK"); `strictCheck` verifies.
    #[test]
    fn check_as_upstream() {
        let d = tempfile::tempdir().unwrap();
        let conf = |v: &str, extra: &str| {
            format!(
                r#"{{"cniVersion":"{v}","name":"n","type":"sriov","dataDir":"{}","spoofchk":"maybe","mtu":1{extra}}}"#,
                d.path().display()
            )
        };
        let out = run(env_for("CHECK"), conf("1.0.0", "").as_bytes(), nolink);
        assert_eq!(
            out,
            Output {
                stdout: String::new(),
                code: 0
            }
        );
        let out = run(env_for("CHECK"), conf("0.3.1", "").as_bytes(), nolink);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["code"], 1, "{v}");
        let out = run(
            env_for("CHECK"),
            conf("1.0.0", r#","strictCheck":true"#).as_bytes(),
            fake_link,
        );
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["code"], 3, "no such attachment: {v}");
    }

    /// Issue 12 item 12: info by default and for any unknown logLevel.
    #[test]
    fn log_level_defaults_to_info() {
        let level = |l: &str| {
            let c = NetConf::parse(
                format!(r#"{{"cniVersion":"1.0.0","name":"n","type":"sriov"{l}}}"#).as_bytes(),
                None,
            )
            .unwrap();
            log_level(&c)
        };
        assert_eq!(level(""), tracing::Level::INFO);
        assert_eq!(level(r#","logLevel":"verbose""#), tracing::Level::INFO);
        assert_eq!(level(r#","logLevel":"""#), tracing::Level::INFO);
        assert_eq!(level(r#","logLevel":"Debug""#), tracing::Level::DEBUG);
        assert_eq!(level(r#","logLevel":"warning""#), tracing::Level::WARN);
        assert_eq!(level(r#","LogLevel":"error""#), tracing::Level::ERROR);
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
