//! Manifests (ours in deploy/examples and upstream-style ones) parse into the
//! typed objects and serialize back to the same JSON, field for field.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sriov_crds::{
    SriovIBNetwork, SriovNetwork, SriovNetworkNodePolicy, SriovNetworkNodeState,
    SriovNetworkPoolConfig, SriovOperatorConfig,
};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples")
}

fn upstream_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/upstream-style")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn roundtrip<T: Serialize + DeserializeOwned>(doc: &Value, origin: &str) {
    let typed: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{origin}: does not parse into the type: {e}"));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        &back, doc,
        "{origin}: serializing the typed object changed the JSON"
    );
}

/// Parses every document of every file and round-trips it; returns the kinds seen.
fn roundtrip_dir(dir: &Path) -> std::collections::BTreeSet<String> {
    let mut kinds = std::collections::BTreeSet::new();
    for file in yaml_files(dir) {
        let text = std::fs::read_to_string(&file).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: not valid YAML: {e}", file.display()));
        assert!(!docs.is_empty(), "{}: no documents", file.display());
        for (i, doc) in docs.iter().enumerate() {
            let origin = format!("{} document {}", file.display(), i + 1);
            assert_eq!(
                doc["apiVersion"], "sriovnetwork.openshift.io/v1",
                "{origin}: apiVersion"
            );
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            match kind.as_str() {
                "SriovNetworkNodePolicy" => roundtrip::<SriovNetworkNodePolicy>(doc, &origin),
                "SriovNetworkNodeState" => roundtrip::<SriovNetworkNodeState>(doc, &origin),
                "SriovNetwork" => roundtrip::<SriovNetwork>(doc, &origin),
                "SriovIBNetwork" => roundtrip::<SriovIBNetwork>(doc, &origin),
                "SriovOperatorConfig" => roundtrip::<SriovOperatorConfig>(doc, &origin),
                "SriovNetworkPoolConfig" => roundtrip::<SriovNetworkPoolConfig>(doc, &origin),
                other => panic!("{origin}: unexpected kind {other:?}"),
            }
            kinds.insert(kind);
        }
    }
    kinds
}

#[test]
fn examples_cover_every_kind_and_roundtrip() {
    let kinds = roundtrip_dir(&examples_dir());
    let expected: std::collections::BTreeSet<String> = [
        "SriovNetworkNodePolicy",
        "SriovNetworkNodeState",
        "SriovNetwork",
        "SriovIBNetwork",
        "SriovOperatorConfig",
        "SriovNetworkPoolConfig",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(kinds, expected);
}

#[test]
fn upstream_style_manifests_roundtrip() {
    let kinds = roundtrip_dir(&upstream_dir());
    assert!(kinds.len() >= 5, "only {kinds:?} covered");
}

#[test]
fn yaml_parses_directly_into_types() {
    let text =
        std::fs::read_to_string(examples_dir().join("sriovnetworknodepolicies.yaml")).unwrap();
    let policies: Vec<SriovNetworkNodePolicy> = serde_saphyr::from_multiple(&text).unwrap();
    assert_eq!(policies.len(), 6);
    let dpdk = &policies[1];
    assert_eq!(dpdk.metadata.name.as_deref(), Some("intel-dpdk"));
    assert_eq!(dpdk.spec.nic_selector.pf_names, vec!["ens1f0#0-3"]);
    assert_eq!(dpdk.spec.device_type, "vfio-pci");
    assert_eq!(dpdk.spec.priority, Some(5));
    assert_eq!(policies[0].spec.nic_selector.vendor, "8086");

    let text = std::fs::read_to_string(upstream_dir().join("policy-netdevice.yaml")).unwrap();
    let p: SriovNetworkNodePolicy = serde_saphyr::from_str(&text).unwrap();
    // Unquoted PCI addresses stay strings (YAML 1.2, not base-60 numbers).
    assert_eq!(p.spec.nic_selector.root_devices, vec!["0000:86:00.0"]);
    assert_eq!(p.spec.nic_selector.device_id, "1583");
}

#[test]
fn casing_traps_in_node_state_status() {
    let text = std::fs::read_to_string(upstream_dir().join("nodestate-status.yaml")).unwrap();
    let state: SriovNetworkNodeState = serde_saphyr::from_str(&text).unwrap();
    let status = state.status.as_ref().unwrap();
    let pf = &status.interfaces[0];
    assert_eq!(pf.total_vfs, 64, "totalvfs (all lower case) read");
    assert_eq!(pf.vfs.len(), 2, "Vfs (capital V) read");
    assert_eq!(pf.vfs[0].vf_id, 0);
    assert_eq!(pf.vfs[1].vlan, 10, "Vlan (capital V) read");
    assert_eq!(pf.link_speed, "10000 Mb/s");

    let json = serde_json::to_value(&state).unwrap();
    let iface = &json["status"]["interfaces"][0];
    assert!(iface.get("totalvfs").is_some());
    assert!(iface.get("totalVfs").is_none());
    assert!(iface.get("Vfs").is_some());
    assert!(iface.get("vfs").is_none());
    assert!(iface.get("linkSpeed").is_some());
    let vf0 = &iface["Vfs"][0];
    assert_eq!(vf0["vfID"], 0, "vfID is serialized even when 0");
    assert!(vf0.get("Vlan").is_none(), "Vlan 0 is omitted like upstream");
    assert_eq!(iface["Vfs"][1]["Vlan"], 10);
    assert!(iface["Vfs"][1].get("vlan").is_none());
    // A PF without VFs has no Vfs key and no numVfs key (Go omitempty).
    let pf1 = &json["status"]["interfaces"][1];
    assert!(pf1.get("Vfs").is_none());
    assert!(pf1.get("numVfs").is_none());
}

#[test]
fn casing_traps_in_policy_and_state_spec() {
    use sriov_crds::node_policy::ESwitchParams;
    let spec = sriov_crds::SriovNetworkNodePolicySpec {
        resource_name: "r".into(),
        num_vfs: 0,
        eswitch_mode: "switchdev".into(),
        externally_managed: Some(true),
        eswitch_params: Some(ESwitchParams {
            multiport: Some(true),
        }),
        nic_selector: sriov_crds::SriovNetworkNicSelector {
            device_id: "158b".into(),
            net_filter: "openstack/NetworkID:x".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["eSwitchMode"], "switchdev");
    assert_eq!(json["externallyManaged"], true);
    assert_eq!(json["eSwitchParams"]["multiport"], true);
    assert_eq!(json["nicSelector"]["deviceID"], "158b");
    assert_eq!(json["nicSelector"]["netFilter"], "openstack/NetworkID:x");
    assert_eq!(
        json["numVfs"], 0,
        "numVfs is required, serialized even when 0"
    );
    assert_eq!(
        json["nodeSelector"],
        serde_json::json!({}),
        "nodeSelector is required"
    );
    for absent in [
        "priority",
        "mtu",
        "deviceType",
        "isRdma",
        "linkType",
        "vdpaType",
        "bridge",
    ] {
        assert!(
            json.get(absent).is_none(),
            "{absent} must be omitted when unset"
        );
    }

    let iface = sriov_crds::Interface {
        pci_address: "0000:01:00.0".into(),
        eswitch_mode: "legacy".into(),
        externally_managed: true,
        vf_groups: vec![sriov_crds::VfGroup {
            vf_range: "0-0".into(),
            is_rdma: true,
            ..Default::default()
        }],
        ..Default::default()
    };
    let json = serde_json::to_value(&iface).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "pciAddress": "0000:01:00.0",
            "eSwitchMode": "legacy",
            "externallyManaged": true,
            "vfGroups": [{"vfRange": "0-0", "isRdma": true}]
        })
    );
}

#[test]
fn vf_id_is_required_when_reading() {
    let err = serde_json::from_value::<sriov_crds::VirtualFunction>(
        serde_json::json!({"pciAddress": "0000:01:02.0"}),
    )
    .unwrap_err();
    assert!(err.to_string().contains("vfID"), "{err}");
}

#[test]
fn sriov_network_explicit_zero_vlan_is_kept() {
    let text = std::fs::read_to_string(upstream_dir().join("sriovnetwork-ipam.yaml")).unwrap();
    let net: SriovNetwork = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(net.spec.vlan, Some(0));
    assert!(net.spec.ipam.contains("\"host-local\""));
    let json = serde_json::to_value(&net).unwrap();
    assert_eq!(json["spec"]["vlan"], 0);
    assert_eq!(json["spec"]["spoofChk"], "on");
}

#[test]
fn upstream_style_manifests_pass_the_rules() {
    use sriov_crds::nic_ids::NicIdList;
    use sriov_crds::rules::{network, operator, policy};
    let nics = NicIdList::builtin();
    for file in yaml_files(&upstream_dir()) {
        let text = std::fs::read_to_string(&file).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        for doc in docs {
            let origin = format!("{} {}", file.display(), doc["metadata"]["name"]);
            let errors = match doc["kind"].as_str().unwrap() {
                "SriovNetworkNodePolicy" => {
                    let p: SriovNetworkNodePolicy = serde_json::from_value(doc).unwrap();
                    policy::check_policy_spec(&p.spec, &nics, policy::NicCheck::KnownOnly)
                }
                "SriovNetwork" => network::check_network_spec(
                    &serde_json::from_value::<SriovNetwork>(doc).unwrap().spec,
                ),
                "SriovIBNetwork" => network::check_ib_network_spec(
                    &serde_json::from_value::<SriovIBNetwork>(doc).unwrap().spec,
                ),
                "SriovOperatorConfig" => operator::check_operator_config(
                    &serde_json::from_value::<SriovOperatorConfig>(doc).unwrap(),
                    "sriov-network-operator",
                ),
                "SriovNetworkPoolConfig" => operator::check_pool_config(
                    &serde_json::from_value::<SriovNetworkPoolConfig>(doc).unwrap(),
                ),
                "SriovNetworkNodeState" => sriov_crds::rules::node_state::check_node_state_spec(
                    &serde_json::from_value::<SriovNetworkNodeState>(doc)
                        .unwrap()
                        .spec,
                ),
                other => panic!("{origin}: {other}"),
            };
            assert_eq!(errors, vec![], "{origin}");
        }
    }
}
