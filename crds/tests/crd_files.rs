//! The committed CRD YAML under deploy/crds is what `crdgen` produces, and the
//! schemas carry the rules that must hold even when the webhook is down.

use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;
use sriov_crds::crd_gen::{all_crds, render_yaml};

fn crds_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds")
}

#[test]
fn committed_crd_files_match_generated() {
    let mut stale = Vec::new();
    for generated in all_crds() {
        let yaml = render_yaml(&generated).unwrap();
        let path = crds_dir().join(&generated.file_name);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != yaml {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "out of date: {stale:?}; run `cargo run -p sriov-crds --bin crdgen` from the repo root"
    );
    let files = std::fs::read_dir(crds_dir()).unwrap().count();
    assert_eq!(files, 7, "deploy/crds holds exactly one file per kind");
}

#[test]
fn generated_yaml_parses_back_to_the_same_crd() {
    for generated in all_crds() {
        let yaml = render_yaml(&generated).unwrap();
        let parsed: CustomResourceDefinition = serde_saphyr::from_str(&yaml)
            .unwrap_or_else(|e| panic!("{}: {e}", generated.file_name));
        assert_eq!(
            serde_json::to_value(&parsed).unwrap(),
            serde_json::to_value(&generated.crd).unwrap(),
            "{}",
            generated.file_name
        );
    }
}

fn schema_of(kind: &str) -> Value {
    let generated = all_crds().into_iter().find(|g| g.kind() == kind).unwrap();
    let crd = &generated.crd;
    assert_eq!(crd.spec.group, "sriovnetwork.openshift.io");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.versions.len(), 1);
    assert_eq!(crd.spec.versions[0].name, "v1");
    assert!(
        crd.spec.versions[0]
            .subresources
            .as_ref()
            .unwrap()
            .status
            .is_some()
    );
    generated.schema()
}

fn rules(v: &Value) -> Vec<String> {
    v["x-kubernetes-validations"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["rule"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn policy_schema_rules() {
    let s = schema_of("SriovNetworkNodePolicy");
    let spec = &s["properties"]["spec"];
    let p = &spec["properties"];
    let mut required: Vec<&str> = spec["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort();
    assert_eq!(
        required,
        ["nicSelector", "nodeSelector", "numVfs", "resourceName"]
    );
    assert_eq!(p["priority"]["minimum"], 0.0);
    assert_eq!(p["priority"]["maximum"], 99.0);
    assert_eq!(p["mtu"]["minimum"], 1.0);
    assert_eq!(p["numVfs"]["minimum"], 0.0);
    assert_eq!(
        p["deviceType"]["enum"],
        serde_json::json!(["netdevice", "vfio-pci"])
    );
    assert_eq!(p["deviceType"]["default"], "netdevice");
    assert_eq!(
        p["linkType"]["enum"],
        serde_json::json!(["eth", "ETH", "ib", "IB"])
    );
    assert_eq!(
        p["eSwitchMode"]["enum"],
        serde_json::json!(["legacy", "switchdev"])
    );
    assert_eq!(
        p["vdpaType"]["enum"],
        serde_json::json!(["virtio", "vhost"])
    );
    // Upstream checks these in its webhook only (as we do): not in the CRD.
    assert!(p["resourceName"].get("maxLength").is_none());
    assert!(p["resourceName"].get("pattern").is_none());
    assert!(
        p["nicSelector"]["properties"]["pfNames"]["items"]
            .get("pattern")
            .is_none()
    );
    assert!(rules(spec).is_empty());
    assert!(rules(&p["nicSelector"]).is_empty());
    assert!(s.get("required").is_none(), "spec is optional as upstream");
}

#[test]
fn network_schema_rules() {
    let s = schema_of("SriovNetwork");
    let spec = &s["properties"]["spec"];
    let p = &spec["properties"];
    assert_eq!(p["vlan"]["minimum"], 0.0);
    assert_eq!(p["vlan"]["maximum"], 4094.0);
    assert_eq!(p["vlanQoS"]["maximum"], 7.0);
    assert_eq!(
        p["vlanProto"]["enum"],
        serde_json::json!(["802.1q", "802.1Q", "802.1ad", "802.1AD"])
    );
    assert_eq!(p["spoofChk"]["enum"], serde_json::json!(["on", "off"]));
    assert_eq!(p["trust"]["enum"], serde_json::json!(["on", "off"]));
    assert_eq!(
        p["linkState"]["enum"],
        serde_json::json!(["auto", "enable", "disable"])
    );
    assert_eq!(p["minTxRate"]["minimum"], 0.0);
    assert_eq!(p["maxTxRate"]["minimum"], 0.0);
    assert_eq!(p["logLevel"]["default"], "info");
    assert!(rules(spec).is_empty());
    let ib = schema_of("SriovIBNetwork");
    assert_eq!(
        ib["properties"]["spec"]["properties"]["linkState"]["enum"],
        serde_json::json!(["auto", "enable", "disable"])
    );
}

#[test]
fn operator_config_schema_rules() {
    let s = schema_of("SriovOperatorConfig");
    assert!(
        rules(&s).is_empty(),
        "the name rule is the webhook's, as upstream"
    );
    let p = &s["properties"]["spec"]["properties"];
    assert_eq!(p["logLevel"]["minimum"], 0.0);
    assert_eq!(p["logLevel"]["maximum"], 2.0);
    assert_eq!(
        p["configurationMode"]["enum"],
        serde_json::json!(["daemon", "systemd"])
    );
    assert_eq!(
        p["disablePlugins"]["items"]["enum"],
        serde_json::json!(["mellanox"])
    );
}

#[test]
fn pool_and_state_schema_rules() {
    let s = schema_of("SriovNetworkPoolConfig");
    let p = &s["properties"]["spec"]["properties"];
    assert_eq!(p["maxUnavailable"]["x-kubernetes-int-or-string"], true);
    assert_eq!(
        p["rdmaMode"]["enum"],
        serde_json::json!(["shared", "exclusive"])
    );
    let s = schema_of("SriovNetworkNodeState");
    let st = &s["properties"]["status"]["properties"];
    assert!(st["syncStatus"].get("enum").is_none(), "no enum upstream");
    let ifaces = &st["interfaces"]["items"]["properties"];
    assert!(ifaces.get("totalvfs").is_some());
    assert!(ifaces.get("Vfs").is_some());
    let vf = &ifaces["Vfs"]["items"];
    assert!(vf["properties"].get("Vlan").is_some());
    let req: Vec<&str> = vf["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        req.contains(&"vfID") && req.contains(&"pciAddress"),
        "{req:?}"
    );
    assert!(
        s["properties"]["spec"]["properties"]["interfaces"]["items"]["properties"]["vfGroups"]["items"]
            ["properties"]["vfRange"]
            .get("pattern")
            .is_none()
    );
}
