//! Differential test against the Go sriov-network-operator (issue 16;
//! docs/testing.md, "Go peers"): every input file in `tests/go_differential/`
//! goes through our `sriov-network-operator render -f` and through
//! upstream's own reconciler and `RenderNetAttDef`
//! (`cluster/tools/go-operator-render`, built by `cluster/go-peer.sh build`
//! into `/var/cache/sriov-rs/go-peers/`). Node-state specs, the
//! device-plugin ConfigMap data, node labels and NAD configs must match byte
//! for byte, except for the documented differences in [`NORMALIZE`].
//!
//! Lane `go-peers`: without Go (and no binary built) the test prints `SKIP`;
//! when `SRIOV_REQUIRE_LANES` is `all` or names `go-peers` (CI) it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const NAMESPACE: &str = "sriov-network-operator";
const RESOURCE_PREFIX: &str = "openshift.io";

/// Documented differences (docs/differences.md, "Operator"): each is a
/// normalization the Go peer applies to both reports, with its reason.
const NORMALIZE: &[(&[&str], &str)] = &[
    (
        &[
            "--drop-nad-annotation",
            "sriovnetwork.openshift.io/owner-ref",
        ],
        "NADs carry the owner-ref annotation of upstream releases after v1.6.0 \
         (networks in application namespaces); v1.6.0, the newest release the \
         module proxy serves, predates it",
    ),
    (
        &["--sort-interfaces"],
        "node-state spec.interfaces: ours sorted by PCI address, upstream in \
         policy application order; both config daemons look interfaces up by \
         PCI address",
    ),
];

fn normalize_args() -> Vec<&'static str> {
    NORMALIZE
        .iter()
        .flat_map(|(a, _)| a.iter().copied())
        .collect()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn lane_required() -> bool {
    std::env::var("SRIOV_REQUIRE_LANES")
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .any(|l| l == "all" || l == "go-peers")
        })
        .unwrap_or(false)
}

fn go_available() -> bool {
    Command::new("go")
        .arg("version")
        .env("PATH", go_path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn go_path() -> String {
    format!(
        "/usr/local/go/bin:{}",
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The Go peer's binary: `SRIOV_GO_OPERATOR_RENDER`, or the cached build
/// (built here on first use when Go is present). Err = why it is missing.
fn go_peer() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("SRIOV_GO_OPERATOR_RENDER") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "SRIOV_GO_OPERATOR_RENDER={} does not exist",
                p.display()
            ))
        };
    }
    let script = repo().join("cluster/go-peer.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("path")
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if bin.is_file() {
        return Ok(bin);
    }
    if !go_available() {
        return Err(format!(
            "Go (/usr/local/go/bin/go) not found and {} not built",
            bin.display()
        ));
    }
    eprintln!("go_differential: building the Go peer (cluster/go-peer.sh build; cold: minutes)");
    let status = Command::new("bash")
        .arg(&script)
        .arg("build")
        .env("PATH", go_path())
        .status()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if !status.success() || !bin.is_file() {
        return Err(format!("cluster/go-peer.sh build failed ({status})"));
    }
    Ok(bin)
}

fn run(cmd: &mut Command, stdin: Option<&[u8]>, what: &str) -> String {
    use std::io::Write;
    cmd.env("NAMESPACE", NAMESPACE)
        .env("RESOURCE_PREFIX", RESOURCE_PREFIX)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .unwrap_or_else(|e| panic!("{what}: stdin: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("{what}: output not UTF-8: {e}"))
}

/// A line diff (longest common subsequence): `-` lines only in the Go
/// report, `+` lines only in ours, with their line numbers.
fn diff(go: &str, ours: &str) -> Vec<String> {
    let a: Vec<&str> = go.lines().collect();
    let b: Vec<&str> = ours.lines().collect();
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(format!("+{:>4} {}", j + 1, b[j]));
            j += 1;
        } else {
            out.push(format!("-{:>4} {}", i + 1, a[i]));
            i += 1;
        }
    }
    out
}

#[test]
fn operator_render_matches_go_operator() {
    const TEST: &str = "operator_render_matches_go_operator";
    let peer = match go_peer() {
        Ok(p) => p,
        Err(reason) => {
            if lane_required() {
                panic!(
                    "{TEST}: lane `go-peers` is required (SRIOV_REQUIRE_LANES) but unavailable: {reason}"
                );
            }
            eprintln!("SKIP {TEST}: lane `go-peers` unavailable: {reason}");
            return;
        }
    };
    let ours_bin = env!("CARGO_BIN_EXE_sriov-network-operator");
    let nic_ids = repo().join("data/supported-nic-ids.tsv");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go_differential");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/go_differential")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 4, "corpus missing in {}", dir.display());

    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let go = run(
            Command::new(&peer)
                .arg("render")
                .arg("--nic-ids")
                .arg(&nic_ids)
                .args(normalize_args())
                .arg(case),
            None,
            &format!("go-operator-render render {name}"),
        );
        let ours_yaml = run(
            Command::new(ours_bin).arg("render").arg("-f").arg(case),
            None,
            &format!("sriov-network-operator render -f {name}"),
        );
        let ours = run(
            Command::new(&peer)
                .arg("canon")
                .args(normalize_args())
                .arg("-"),
            Some(ours_yaml.as_bytes()),
            &format!("go-operator-render canon (our output for {name})"),
        );
        let unexplained = diff(&go, &ours);
        if unexplained.is_empty() {
            eprintln!(
                "{name}: identical to the Go operator ({} report lines)",
                go.lines().count()
            );
        } else {
            let mut msg = format!(
                "{name}: {} report lines differ (- Go operator, + ours):\n",
                unexplained.len()
            );
            for line in unexplained.iter().take(60) {
                msg.push_str(&format!("  {line}\n"));
            }
            msg.push_str(&format!(
                "--- Go report ---\n{go}--- our report ---\n{ours}"
            ));
            failures.push(msg);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
