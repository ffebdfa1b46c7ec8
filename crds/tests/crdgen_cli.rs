//! The `crdgen` binary: writes one file per kind, `--check` detects drift.

use std::process::Command;

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn crdgen_writes_and_checks() {
    let dir = TempDir(std::env::temp_dir().join(format!("crdgen-test-{}", std::process::id())));
    let out = dir.0.to_str().unwrap();
    let bin = env!("CARGO_BIN_EXE_crdgen");
    let run = |args: &[&str]| Command::new(bin).args(args).output().unwrap();

    let check_missing = run(&["--out-dir", out, "--check"]);
    assert!(
        !check_missing.status.success(),
        "check of an empty dir fails"
    );

    let write = run(&["--out-dir", out]);
    assert!(
        write.status.success(),
        "{}",
        String::from_utf8_lossy(&write.stderr)
    );
    let mut files: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "sriovnetwork.openshift.io_ovsnetworks.yaml",
            "sriovnetwork.openshift.io_sriovibnetworks.yaml",
            "sriovnetwork.openshift.io_sriovnetworknodepolicies.yaml",
            "sriovnetwork.openshift.io_sriovnetworknodestates.yaml",
            "sriovnetwork.openshift.io_sriovnetworkpoolconfigs.yaml",
            "sriovnetwork.openshift.io_sriovnetworks.yaml",
            "sriovnetwork.openshift.io_sriovoperatorconfigs.yaml",
        ]
    );
    assert!(run(&["--out-dir", out, "--check"]).status.success());

    let edited = dir.0.join("sriovnetwork.openshift.io_sriovnetworks.yaml");
    let text = std::fs::read_to_string(&edited).unwrap();
    std::fs::write(&edited, text.replace("4094", "4096")).unwrap();
    let stale = run(&["--out-dir", out, "--check"]);
    assert!(!stale.status.success());
    let stderr = String::from_utf8_lossy(&stale.stderr);
    assert!(
        stderr.contains("CRD files out of date") && stderr.contains("sriovnetworks.yaml"),
        "{stderr}"
    );

    let help = run(&["--help"]);
    assert!(help.status.success() && String::from_utf8_lossy(&help.stdout).contains("--check"));
    assert!(String::from_utf8_lossy(&run(&["--version"]).stdout).starts_with("crdgen "));
    let bad = run(&["--bogus"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown argument \"--bogus\""));
}
