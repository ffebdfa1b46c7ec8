//! The command lines the Go device plugin is started with, rewritten into
//! this binary's flags, so a DaemonSet written for upstream (the Go
//! operator's, upstream's own) starts this one unchanged.
//!
//! Two upstream forms exist:
//!
//! - the image's `entrypoint.sh`, which the Go operator's DaemonSet calls:
//!   `--log-level=N`, `--log-dir=NAME` (logs in `/var/log/NAME`),
//!   `--resource-prefix=P`, `--config-file=F`, `--use-cdi`;
//! - the `sriovdp` binary itself (Go's `flag` package, with glog's flags):
//!   `-config-file`, `-resource-prefix`, `-use-cdi`, `-v N`, `-log_dir D`,
//!   `-logtostderr`, `-alsologtostderr`, `-stderrthreshold`, `-vmodule`,
//!   `-log_backtrace_at`, `-log_link`, `-logbuflevel`.
//!
//! Go's `flag` takes `-name` and `--name` alike, a value as `-name=v` or
//! `-name v` (booleans only as `-name` or `-name=bool`), and stops at the
//! first argument that is not a flag, or after `--`. [`normalize`] rewrites
//! every such flag, and this binary's own long flags given with one dash,
//! into the `--name=value` form clap parses; anything else is passed on
//! unchanged (so a real mistake is still a usage error).

/// Flags that take a value: (upstream spelling, our long flag).
const VALUE_FLAGS: &[(&str, &str)] = &[
    ("config-file", "config-file"),
    ("resource-prefix", "resource-prefix"),
    // entrypoint.sh
    ("log-level", "log-level"),
    ("log-dir", "log-dir"),
    // glog
    ("v", "log-level"),
    ("log_dir", "log_dir"),
    ("stderrthreshold", "stderrthreshold"),
    ("vmodule", "vmodule"),
    ("log_backtrace_at", "log_backtrace_at"),
    ("log_link", "log_link"),
    ("logbuflevel", "logbuflevel"),
    // ours
    ("device-plugin-dir", "device-plugin-dir"),
    ("devinfo-dir", "devinfo-dir"),
    ("host-root", "host-root"),
    ("metrics-addr", "metrics-addr"),
    ("allocation-policy", "allocation-policy"),
    ("cdi-dir", "cdi-dir"),
    ("resync-seconds", "resync-seconds"),
    ("health-interval-ms", "health-interval-ms"),
];

/// Boolean flags: (upstream spelling, our long flag).
const BOOL_FLAGS: &[(&str, &str)] = &[
    ("use-cdi", "use-cdi"),
    ("logtostderr", "logtostderr"),
    ("alsologtostderr", "alsologtostderr"),
    ("pf-link-health", "pf-link-health"),
    ("help", "help"),
    ("h", "help"),
    ("version", "version"),
];

/// Go's `strconv.ParseBool`.
fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Rewrites `args` (without the program name) into this binary's flag
/// forms; see the module docs.
pub fn normalize<I, S>(args: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut out = Vec::new();
    let mut it = args.into_iter().map(Into::into);
    while let Some(a) = it.next() {
        if a == "--" {
            out.push(a);
            out.extend(it);
            break;
        }
        let body = match a.strip_prefix("--").or_else(|| a.strip_prefix('-')) {
            Some(b) if !b.is_empty() && !b.starts_with('-') => b,
            _ => {
                out.push(a);
                continue;
            }
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        if let Some((_, ours)) = VALUE_FLAGS.iter().find(|(n, _)| *n == name) {
            let value = match value {
                Some(v) => Some(v.to_string()),
                None => it.next(),
            };
            match value {
                Some(v) => out.push(format!("--{ours}={v}")),
                // clap reports the missing value
                None => out.push(format!("--{ours}")),
            }
        } else if let Some((_, ours)) = BOOL_FLAGS.iter().find(|(n, _)| *n == name) {
            match value.map(go_bool) {
                None | Some(Some(true)) => out.push(format!("--{ours}")),
                Some(Some(false)) => {}
                // not a boolean: let clap say so
                Some(None) => out.push(a.clone()),
            }
        } else {
            out.push(a);
        }
    }
    out
}

/// The tracing filter for a glog verbosity (`-v N`, `--log-level=N`):
/// glog prints its info messages at every level and upstream logs its
/// detail as info, so levels below 3 are `info`, 3 and above (the Go
/// operator passes 10) add this plugin's and the host library's `debug`
/// messages.
pub fn log_filter(level: u32) -> &'static str {
    if level >= 3 {
        "info,sriov_device_plugin=debug,sriov_host=debug"
    } else {
        "info"
    }
}

/// The log directory of `--log-dir=NAME` (entrypoint.sh: `/var/log/NAME`).
pub fn entrypoint_log_dir(name: &str) -> std::path::PathBuf {
    std::path::Path::new("/var/log").join(name.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(args: &[&str]) -> Vec<String> {
        normalize(args.iter().copied())
    }

    /// The Go operator's DaemonSet args (entrypoint form).
    #[test]
    fn go_operator_daemonset_args() {
        assert_eq!(
            n(&[
                "--log-level=10",
                "--resource-prefix=openshift.io",
                "--config-file=/etc/pcidp/node-1",
                "--use-cdi"
            ]),
            [
                "--log-level=10",
                "--resource-prefix=openshift.io",
                "--config-file=/etc/pcidp/node-1",
                "--use-cdi"
            ]
        );
    }

    /// What entrypoint.sh passes to sriovdp, and Go's single-dash forms.
    #[test]
    fn go_flag_forms() {
        assert_eq!(
            n(&[
                "-v",
                "10",
                "--log_dir",
                "/var/log/sriovdp",
                "--alsologtostderr",
                "--resource-prefix",
                "intel.com",
                "--config-file",
                "/etc/pcidp/config.json",
                "--use-cdi"
            ]),
            [
                "--log-level=10",
                "--log_dir=/var/log/sriovdp",
                "--alsologtostderr",
                "--resource-prefix=intel.com",
                "--config-file=/etc/pcidp/config.json",
                "--use-cdi"
            ]
        );
        assert_eq!(
            n(&[
                "-config-file=/c.json",
                "-resource-prefix",
                "x.io",
                "-v=4",
                "-logtostderr",
                "-use-cdi=false",
                "-stderrthreshold=INFO",
                "-vmodule",
                "x=2",
                "-log_backtrace_at=",
                "-h"
            ]),
            [
                "--config-file=/c.json",
                "--resource-prefix=x.io",
                "--log-level=4",
                "--logtostderr",
                "--stderrthreshold=INFO",
                "--vmodule=x=2",
                "--log_backtrace_at=",
                "--help"
            ]
        );
        // our own flags with one dash; values and positionals untouched
        assert_eq!(
            n(&["-host-root", "/host", "-use-cdi=true", "--", "-v"]),
            ["--host-root=/host", "--use-cdi", "--", "-v"]
        );
        assert_eq!(n(&["--unknown", "x"]), ["--unknown", "x"]);
        assert_eq!(n(&["-use-cdi=maybe"]), ["-use-cdi=maybe"]);
    }

    #[test]
    fn levels_and_dirs() {
        assert_eq!(log_filter(0), "info");
        assert!(log_filter(10).contains("sriov_device_plugin=debug"));
        assert_eq!(
            entrypoint_log_dir("sriovdp"),
            std::path::PathBuf::from("/var/log/sriovdp")
        );
    }
}
