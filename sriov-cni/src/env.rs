//! The CNI environment: `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`,
//! `CNI_IFNAME`, `CNI_ARGS`, `CNI_PATH`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{CniError, Result};

/// A CNI command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Attach.
    Add,
    /// Detach.
    Del,
    /// Verify an attachment.
    Check,
    /// Report supported versions.
    Version,
    /// Report readiness (spec 1.1.0).
    Status,
    /// Release resources of stale attachments (spec 1.1.0).
    Gc,
}

impl std::str::FromStr for Command {
    type Err = CniError;
    fn from_str(s: &str) -> Result<Command> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            other => {
                return Err(CniError::env(format!(
                    "CNI_COMMAND {other:?} is not one of ADD, DEL, CHECK, VERSION, STATUS, GC"
                )));
            }
        })
    }
}

/// `CNI_ARGS`: `K=V;K=V`. Known keys are kept; unknown keys are an error
/// unless `IgnoreUnknown` is `1`/`true`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    /// All pairs, in order.
    pub pairs: BTreeMap<String, String>,
}

/// Keys this plugin understands in `CNI_ARGS`.
const KNOWN_ARGS: &[&str] = &[
    "IgnoreUnknown",
    "K8S_POD_NAMESPACE",
    "K8S_POD_NAME",
    "K8S_POD_INFRA_CONTAINER_ID",
    "K8S_POD_UID",
    "MAC",
];

impl CniArgs {
    /// Parses `CNI_ARGS`.
    pub fn parse(s: &str) -> Result<CniArgs> {
        let mut pairs = BTreeMap::new();
        for part in s.split(';').filter(|p| !p.is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                return Err(CniError::env(format!(
                    "CNI_ARGS: {part:?} is not KEY=VALUE (expected K=V;K=V)"
                )));
            };
            if k.is_empty() {
                return Err(CniError::env(format!("CNI_ARGS: empty key in {part:?}")));
            }
            pairs.insert(k.to_owned(), v.to_owned());
        }
        let ignore = pairs
            .get("IgnoreUnknown")
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true"));
        if !ignore && let Some(k) = pairs.keys().find(|k| !KNOWN_ARGS.contains(&k.as_str())) {
            return Err(CniError::env(format!(
                "CNI_ARGS: unknown key {k:?}; known keys are {}; add IgnoreUnknown=1 to ignore others",
                KNOWN_ARGS.join(", ")
            )));
        }
        Ok(CniArgs { pairs })
    }

    /// A value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.get(key).map(String::as_str)
    }
}

/// The CNI environment of one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniEnv {
    /// `CNI_COMMAND`.
    pub command: Command,
    /// `CNI_CONTAINERID`.
    pub container_id: Option<String>,
    /// `CNI_NETNS`.
    pub netns: Option<PathBuf>,
    /// `CNI_IFNAME`.
    pub ifname: Option<String>,
    /// `CNI_ARGS`.
    pub args: CniArgs,
    /// `CNI_PATH`, split on `:`.
    pub path: Vec<PathBuf>,
}

impl CniEnv {
    /// Reads the process environment.
    pub fn from_process() -> Result<CniEnv> {
        CniEnv::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the environment through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<CniEnv> {
        let nonempty = |k: &str| get(k).filter(|v| !v.is_empty());
        let command: Command = nonempty("CNI_COMMAND")
            .ok_or_else(|| CniError::env("CNI_COMMAND is not set"))?
            .parse()?;
        let env = CniEnv {
            command,
            container_id: nonempty("CNI_CONTAINERID"),
            netns: nonempty("CNI_NETNS").map(PathBuf::from),
            ifname: nonempty("CNI_IFNAME"),
            args: CniArgs::parse(&get("CNI_ARGS").unwrap_or_default())?,
            path: nonempty("CNI_PATH")
                .map(|p| {
                    p.split(':')
                        .filter(|s| !s.is_empty())
                        .map(PathBuf::from)
                        .collect()
                })
                .unwrap_or_default(),
        };
        env.check_required()?;
        Ok(env)
    }

    fn check_required(&self) -> Result<()> {
        let need: &[&str] = match self.command {
            Command::Add | Command::Check => &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
            Command::Del => &["CNI_CONTAINERID", "CNI_IFNAME"],
            Command::Version | Command::Status | Command::Gc => &[],
        };
        for k in need {
            let present = match *k {
                "CNI_CONTAINERID" => self.container_id.is_some(),
                "CNI_NETNS" => self.netns.is_some(),
                "CNI_IFNAME" => self.ifname.is_some(),
                _ => true,
            };
            if !present {
                return Err(CniError::env(format!(
                    "{k} is not set (required for {:?})",
                    self.command
                )));
            }
        }
        if let Some(id) = &self.container_id {
            // The spec: alphanumeric plus _ . -, starting with alphanumeric.
            let ok = id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !ok {
                return Err(CniError::env(format!(
                    "CNI_CONTAINERID {id:?} is invalid: use letters, digits, '_', '.', '-', starting with a letter or digit"
                )));
            }
        }
        if let Some(name) = &self.ifname
            && (name.len() > 15
                || name == "."
                || name == ".."
                || name
                    .chars()
                    .any(|c| c == '/' || c == ':' || c.is_whitespace()))
        {
            return Err(CniError::env(format!(
                "CNI_IFNAME {name:?} is not a valid interface name (at most 15 bytes, no '/', ':' or spaces)"
            )));
        }
        Ok(())
    }

    /// The container id (present for ADD, DEL, CHECK).
    pub fn container_id(&self) -> &str {
        self.container_id.as_deref().unwrap_or_default()
    }

    /// The interface name (present for ADD, DEL, CHECK).
    pub fn ifname(&self) -> &str {
        self.ifname.as_deref().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;

    fn env(pairs: &[(&str, &str)]) -> Result<CniEnv> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CniEnv::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn add_needs_containerid_netns_ifname() {
        let e = env(&[("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "abc")]).unwrap_err();
        assert_eq!(e.code, Code::InvalidEnv);
        assert!(e.msg.contains("CNI_NETNS"), "{e}");
        let ok = env(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "abc"),
            ("CNI_NETNS", "/run/netns/x"),
            ("CNI_IFNAME", "net1"),
            ("CNI_PATH", "/opt/cni/bin:/usr/lib/cni"),
        ])
        .unwrap();
        assert_eq!(ok.path.len(), 2);
        assert_eq!(ok.ifname(), "net1");
    }

    #[test]
    fn del_without_netns_is_fine() {
        let ok = env(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "abc"),
            ("CNI_IFNAME", "net1"),
        ])
        .unwrap();
        assert_eq!(ok.netns, None);
        assert!(env(&[("CNI_COMMAND", "VERSION")]).is_ok());
        assert_eq!(
            env(&[("CNI_COMMAND", "FOO")]).unwrap_err().code,
            Code::InvalidEnv
        );
        assert_eq!(env(&[]).unwrap_err().code, Code::InvalidEnv);
    }

    #[test]
    fn cni_args_ignore_unknown() {
        let a = CniArgs::parse("K8S_POD_NAME=p;K8S_POD_NAMESPACE=ns").unwrap();
        assert_eq!(a.get("K8S_POD_NAME"), Some("p"));
        assert_eq!(CniArgs::parse("FOO=1").unwrap_err().code, Code::InvalidEnv);
        assert!(CniArgs::parse("IgnoreUnknown=1;FOO=1").is_ok());
        assert!(CniArgs::parse("IgnoreUnknown=true;FOO=1").is_ok());
        assert!(CniArgs::parse("IgnoreUnknown=0;FOO=1").is_err());
        assert!(CniArgs::parse("novalue").is_err());
        assert!(CniArgs::parse("").unwrap().pairs.is_empty());
    }

    #[test]
    fn bad_container_id_and_ifname() {
        let base = [
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "a/b"),
            ("CNI_IFNAME", "net1"),
        ];
        assert_eq!(env(&base).unwrap_err().code, Code::InvalidEnv);
        let base = [
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "ab"),
            ("CNI_IFNAME", "a-very-long-interface-name"),
        ];
        assert_eq!(env(&base).unwrap_err().code, Code::InvalidEnv);
    }
}
