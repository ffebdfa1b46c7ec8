//! The DaemonSets' security contexts, read from the manifests in `deploy/`
//! (the templates the operator renders its DaemonSets from, without
//! touching their security contexts): each container has exactly the
//! privileges its job needs, and docs/install.md ("Security contexts")
//! says the same as the manifests.

use serde_json::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// What a DaemonSet is allowed.
struct Policy {
    file: &'static str,
    privileged: bool,
    host_network: bool,
    /// Host paths mounted (hostPath volumes).
    host_paths: &'static [&'static str],
    /// The operator renders it (else the Helm chart alone deploys it).
    by_operator: bool,
}

const POLICIES: [Policy; 4] = [
    Policy {
        file: "deploy/config-daemon/daemonset.yaml",
        privileged: true,
        host_network: true,
        host_paths: &["/", "/var/lib/sriov-config-daemon"],
        by_operator: true,
    },
    Policy {
        file: "deploy/device-plugin/daemonset.yaml",
        privileged: false,
        host_network: true,
        host_paths: &[
            "/",
            "/var/lib/kubelet/device-plugins",
            "/var/lib/kubelet/pod-resources",
            "/var/run/k8s.cni.cncf.io/devinfo/dp",
        ],
        by_operator: true,
    },
    Policy {
        file: "deploy/cni/daemonset.yaml",
        privileged: false,
        host_network: false,
        host_paths: &["/opt/cni/bin"],
        by_operator: true,
    },
    Policy {
        file: "deploy/dra-driver/daemonset.yaml",
        privileged: false,
        host_network: false,
        host_paths: &[
            "/var/lib/kubelet/plugins/sriovnetwork.k8snetworkplumbingwg.io",
            "/var/lib/kubelet/plugins_registry",
            "/var/run/cdi",
            "/sys",
        ],
        by_operator: false,
    },
];

fn daemonset(file: &str) -> Value {
    let text = std::fs::read_to_string(format!("{ROOT}/{file}")).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let mut sets = docs.into_iter().filter(|d| d["kind"] == "DaemonSet");
    let ds = sets
        .next()
        .unwrap_or_else(|| panic!("{file}: no DaemonSet"));
    assert!(sets.next().is_none(), "{file}: one DaemonSet per file");
    ds
}

fn containers(pod: &Value) -> Vec<&Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| pod[k].as_array())
        .flatten()
        .collect()
}

fn flag(v: &Value) -> bool {
    v.as_bool().unwrap_or(false)
}

#[test]
fn every_daemonset_container_has_exactly_the_privileges_its_job_needs() {
    for p in &POLICIES {
        let ds = daemonset(p.file);
        let pod = &ds["spec"]["template"]["spec"];
        let f = p.file;
        assert_eq!(
            flag(&pod["hostNetwork"]),
            p.host_network,
            "{f}: hostNetwork"
        );
        assert!(!flag(&pod["hostPID"]), "{f}: hostPID is not needed");
        assert!(!flag(&pod["hostIPC"]), "{f}: hostIPC is not needed");
        assert!(
            pod["securityContext"]["sysctls"].is_null(),
            "{f}: no sysctls"
        );
        // Host paths: exactly the listed ones.
        let mut paths: Vec<&str> = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v["hostPath"]["path"].as_str())
            .collect();
        paths.sort();
        let mut want = p.host_paths.to_vec();
        want.sort();
        assert_eq!(paths, want, "{f}: hostPath volumes");
        let cs = containers(pod);
        assert!(!cs.is_empty(), "{f}: no container");
        for c in cs {
            let name = c["name"].as_str().unwrap();
            let sc = &c["securityContext"];
            let at = format!("{f}: container {name}");
            assert!(sc.is_object(), "{at}: securityContext must be explicit");
            assert_eq!(flag(&sc["privileged"]), p.privileged, "{at}: privileged");
            assert_eq!(
                sc["readOnlyRootFilesystem"],
                Value::Bool(true),
                "{at}: the image is read-only (state lives on host paths)"
            );
            for port in c["ports"].as_array().into_iter().flatten() {
                assert!(port["hostPort"].is_null(), "{at}: no hostPort: {port}");
            }
            if p.privileged {
                // Privileged implies every capability; listing some would
                // only suggest otherwise.
                assert!(sc["capabilities"].is_null(), "{at}: {sc}");
                continue;
            }
            assert_eq!(
                sc["allowPrivilegeEscalation"],
                Value::Bool(false),
                "{at}: allowPrivilegeEscalation"
            );
            assert_eq!(
                sc["capabilities"]["drop"],
                serde_json::json!(["ALL"]),
                "{at}: capabilities drop ALL"
            );
            assert!(
                sc["capabilities"]["add"]
                    .as_array()
                    .is_none_or(|a| a.is_empty()),
                "{at}: no capability added: {sc}"
            );
            assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{at}");
            // Root, which owns the host directories it writes into.
            assert_eq!(sc["runAsUser"], 0, "{at}: runAsUser");
            for m in c["volumeMounts"].as_array().into_iter().flatten() {
                assert_ne!(
                    m["mountPropagation"], "Bidirectional",
                    "{at}: Bidirectional propagation needs privileged"
                );
            }
        }
    }
}

/// Cells of the "Security contexts" table in docs/install.md, by manifest.
fn docs_table() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(format!("{ROOT}/docs/install.md")).unwrap();
    let section = text
        .split("## Security contexts")
        .nth(1)
        .expect("docs/install.md has a Security contexts section");
    section
        .lines()
        .skip_while(|l| !l.starts_with("| DaemonSet"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn the_install_docs_table_matches_the_manifests() {
    let rows = docs_table();
    assert_eq!(rows.len(), POLICIES.len(), "{rows:?}");
    let yes = |b: bool| if b { "yes" } else { "no" };
    for p in &POLICIES {
        let row = rows
            .iter()
            .find(|r| r[1] == format!("`{}`", p.file))
            .unwrap_or_else(|| panic!("no row for {} in {rows:?}", p.file));
        let ds = daemonset(p.file);
        let pod = &ds["spec"]["template"]["spec"];
        let c = &pod["containers"][0]["securityContext"];
        assert_eq!(row[2], yes(flag(&c["privileged"])), "{row:?}");
        let caps = if flag(&c["privileged"]) {
            "all (privileged)"
        } else {
            "none (drop ALL)"
        };
        assert_eq!(row[3], caps, "{row:?}");
        assert_eq!(
            row[4],
            if c["runAsUser"] == 0 || flag(&c["privileged"]) {
                "root"
            } else {
                "?"
            }
        );
        assert_eq!(row[5], yes(flag(&c["readOnlyRootFilesystem"])), "{row:?}");
        assert_eq!(row[6], yes(flag(&pod["hostNetwork"])), "{row:?}");
        assert_eq!(row[7], yes(flag(&pod["hostPID"])), "{row:?}");
        for path in p.host_paths {
            assert!(row[8].contains(&format!("`{path}`")), "{path} in {row:?}");
        }
    }
}

/// The operator renders its DaemonSets from these very files and leaves
/// their security contexts alone, so the checks above hold for what it
/// deploys.
#[test]
fn the_operator_renders_these_manifests_without_touching_security_contexts() {
    let src = std::fs::read_to_string(format!("{ROOT}/operator/src/render/daemonsets.rs")).unwrap();
    for p in POLICIES.iter().filter(|p| p.by_operator) {
        assert!(
            src.contains(&format!("include_str!(\"../../../{}\")", p.file)),
            "the operator no longer renders {}",
            p.file
        );
    }
    for word in ["security_context", "privileged", "capabilities", "host_pid"] {
        assert!(
            !src.contains(word),
            "operator/src/render/daemonsets.rs mentions {word}: check the rendered DaemonSets"
        );
    }
}
