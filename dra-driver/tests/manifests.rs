//! The deployment in `deploy/dra-driver/` (and its Helm template): the
//! manifests parse, the DaemonSet passes only flags `sriov-dra-driver
//! --help` lists, its mounts are the directories those flags name, its
//! security context is the minimal one docs/dra.md describes, and the RBAC
//! grants what the driver's requests need.

use std::process::Command;

use serde_json::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn docs(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(format!("{ROOT}/deploy/dra-driver/{file}")).unwrap();
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let mut it = docs.iter().filter(|d| d["kind"] == kind);
    let d = it.next().unwrap_or_else(|| panic!("no {kind}"));
    assert!(it.next().is_none(), "one {kind}");
    d
}

fn help() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sriov-dra-driver"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// `--name=value` args of the DaemonSet's container, as (name, value).
fn args(c: &Value) -> Vec<(String, String)> {
    c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_str().unwrap();
            let (k, v) = a.split_once('=').unwrap_or((a, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn the_daemonset_passes_real_flags_and_mounts_the_directories_they_name() {
    let ds_docs = docs("daemonset.yaml");
    let ds = one(&ds_docs, "DaemonSet");
    let pod = &ds["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["command"], serde_json::json!(["sriov-dra-driver"]));
    let help = help();
    let args = args(c);
    for (flag, _) in &args {
        assert!(flag.starts_with("--"), "{flag}");
        assert!(
            help.contains(&format!("{flag} <")),
            "{flag} is not a flag of sriov-dra-driver:\n{help}"
        );
    }
    let arg = |k: &str| {
        args.iter()
            .find(|(f, _)| f == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {k}"))
    };
    // NODE_NAME from the downward API, which --node-name reads.
    assert!(help.contains("[env: NODE_NAME="), "{help}");
    let env = c["env"].as_array().unwrap();
    let node = env.iter().find(|e| e["name"] == "NODE_NAME").unwrap();
    assert_eq!(node["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName");
    // POD_UID (--pod-uid): sockets of its own, so the rolling update's
    // surge pod serves beside the old one.
    assert!(help.contains("[env: POD_UID="), "{help}");
    let uid = env.iter().find(|e| e["name"] == "POD_UID").unwrap();
    assert_eq!(uid["valueFrom"]["fieldRef"]["fieldPath"], "metadata.uid");
    let update = &ds["spec"]["updateStrategy"];
    assert_eq!(update["type"], "RollingUpdate");
    assert_eq!(update["rollingUpdate"]["maxSurge"], 1);
    assert_eq!(update["rollingUpdate"]["maxUnavailable"], 0);
    // Ready once registered: /readyz on --metrics-addr's port.
    let port: u16 = arg("--metrics-addr")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], port);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], port);

    let mounts: Vec<(&str, &str, bool)> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["mountPath"].as_str().unwrap(),
                m["readOnly"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let host_path = |vol: &str| {
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == vol)
            .and_then(|v| v["hostPath"]["path"].as_str())
            .unwrap_or_else(|| panic!("volume {vol} is not a hostPath"))
            .to_string()
    };
    let mount_of = |path: &str| {
        mounts
            .iter()
            .find(|(_, p, _)| *p == path)
            .unwrap_or_else(|| panic!("nothing mounted at {path}: {mounts:?}"))
    };
    // The DRA socket and checkpoint: <plugins dir>/<driver>, at the node's
    // own path (the kubelet dials the path the driver reports).
    let plugin = format!(
        "{}/{}",
        arg("--plugins-dir"),
        sriov_dra_driver::DEFAULT_DRIVER_NAME
    );
    let (vol, _, ro) = mount_of(&plugin);
    assert!(!ro);
    assert_eq!(host_path(vol), plugin);
    for dir in [arg("--registry-dir"), arg("--cdi-dir")] {
        let (vol, _, ro) = mount_of(&dir);
        assert!(!ro, "{dir} is written");
        assert_eq!(host_path(vol), dir, "{dir} is the node's own");
    }
    // The node's /sys under --host-root, writable: prepare rebinds VFs
    // (a claim's VfConfig `driver`).
    let sys = format!("{}/sys", arg("--host-root"));
    let (vol, _, ro) = mount_of(&sys);
    assert!(!ro, "prepare writes driver_override, unbind, drivers_probe");
    assert_eq!(host_path(vol), "/sys");
    // Nothing else from the host.
    let mut paths: Vec<String> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["hostPath"]["path"].as_str().map(String::from))
        .collect();
    paths.sort();
    let mut want = vec![
        plugin,
        arg("--registry-dir"),
        arg("--cdi-dir"),
        "/sys".to_string(),
    ];
    want.sort();
    assert_eq!(paths, want);
}

#[test]
fn the_daemonset_runs_unprivileged_as_root_without_capabilities() {
    let ds_docs = docs("daemonset.yaml");
    let pod = &one(&ds_docs, "DaemonSet")["spec"]["template"]["spec"];
    for k in ["hostNetwork", "hostPID", "hostIPC"] {
        assert!(!pod[k].as_bool().unwrap_or(false), "{k}");
    }
    let sc = &pod["containers"][0]["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["runAsUser"], 0, "root owns the kubelet and CDI dirs");
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(sc["capabilities"]["add"].is_null());
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    // The API client needs its ServiceAccount token.
    assert_ne!(pod["automountServiceAccountToken"], false);
}

fn allowed(role: &Value, resource: &str, verb: &str) -> bool {
    role["rules"].as_array().unwrap().iter().any(|r| {
        r["apiGroups"]
            .as_array()
            .unwrap()
            .contains(&"resource.k8s.io".into())
            && r["resources"]
                .as_array()
                .unwrap()
                .contains(&resource.into())
            && r["verbs"].as_array().unwrap().contains(&verb.into())
    })
}

#[test]
fn rbac_grants_the_driver_requests_and_the_policy_names_its_service_account() {
    let ds_docs = docs("daemonset.yaml");
    let ds = one(&ds_docs, "DaemonSet");
    let rbac = docs("rbac.yaml");
    let sa = one(&rbac, "ServiceAccount");
    assert_eq!(
        ds["spec"]["template"]["spec"]["serviceAccountName"],
        sa["metadata"]["name"]
    );
    assert_eq!(ds["metadata"]["namespace"], sa["metadata"]["namespace"]);
    let role = one(&rbac, "ClusterRole");
    // publish(): list (field selectors), server-side apply (patch, which
    // creates), delete; KubeClaims: get.
    for verb in ["list", "patch", "create", "delete"] {
        assert!(
            allowed(role, "resourceslices", verb),
            "resourceslices {verb}"
        );
    }
    assert!(allowed(role, "resourceclaims", "get"));
    for verb in ["create", "update", "patch", "delete"] {
        assert!(
            !allowed(role, "resourceclaims", verb),
            "resourceclaims {verb} is not needed"
        );
    }
    // KubeClaims::report: server-side apply of status.devices, nothing else.
    assert!(allowed(role, "resourceclaims/status", "patch"));
    for verb in ["create", "update", "delete"] {
        assert!(
            !allowed(role, "resourceclaims/status", verb),
            "resourceclaims/status {verb} is not needed"
        );
    }
    assert!(
        role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["apiGroups"] == serde_json::json!(["resource.k8s.io"])),
        "only resource.k8s.io: {role}"
    );
    let binding = one(&rbac, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["name"], sa["metadata"]["name"]);
    assert_eq!(
        binding["subjects"][0]["namespace"],
        sa["metadata"]["namespace"]
    );
    // The admission policy keeps that ServiceAccount to its node's slices.
    let vap = one(&rbac, "ValidatingAdmissionPolicy");
    let user = format!(
        "system:serviceaccount:{}:{}",
        sa["metadata"]["namespace"].as_str().unwrap(),
        sa["metadata"]["name"].as_str().unwrap()
    );
    let cond = vap["spec"]["matchConditions"][0]["expression"]
        .as_str()
        .unwrap();
    assert!(cond.contains(&format!("'{user}'")), "{cond}");
    let vars = vap["spec"]["variables"].to_string();
    assert!(
        vars.contains("authentication.kubernetes.io/node-name"),
        "{vars}"
    );
    assert!(vars.contains("spec.?nodeName"), "{vars}");
    let b = one(&rbac, "ValidatingAdmissionPolicyBinding");
    assert_eq!(b["spec"]["policyName"], vap["metadata"]["name"]);
    assert_eq!(b["spec"]["validationActions"], serde_json::json!(["Deny"]));
}

#[test]
fn the_device_class_selects_the_driver_by_name() {
    let dc_docs = docs("deviceclass.yaml");
    let dc = one(&dc_docs, "DeviceClass");
    assert_eq!(dc["apiVersion"], "resource.k8s.io/v1");
    assert_eq!(
        dc["spec"]["selectors"][0]["cel"]["expression"],
        format!(
            "device.driver == '{}'",
            sriov_dra_driver::DEFAULT_DRIVER_NAME
        )
    );
}

#[test]
fn the_chart_ships_the_driver_off_by_default() {
    let chart = format!("{ROOT}/deploy/helm/sriov-network-operator");
    let t = std::fs::read_to_string(format!("{chart}/templates/dra-driver.yaml")).unwrap();
    assert!(
        t.starts_with("{{- if .Values.draDriver.enabled }}\n# Generated by scripts/manifests.py")
    );
    assert!(t.trim_end().ends_with("{{- end }}"));
    assert!(t.contains("image: {{ .Values.images.sriovDraDriver }}"));
    let values: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(format!("{chart}/values.yaml")).unwrap())
            .unwrap();
    assert_eq!(values["draDriver"]["enabled"], false);
    assert!(values["images"]["sriovDraDriver"].is_string());
    // The plain manifests (the chart with its defaults) have no DRA driver.
    let plain = std::fs::read_to_string(format!(
        "{ROOT}/deploy/manifests/sriov-network-operator.yaml"
    ))
    .unwrap();
    assert!(!plain.contains("sriov-dra-driver"));
}
