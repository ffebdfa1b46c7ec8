//! Reading manifest streams: typed by kind, errors name the document,
//! unknown fields are reported.

use sriov_crds::manifests::{SriovObject, parse_manifests, policies_from_manifests};

#[test]
fn all_examples_parse_without_unknown_fields() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let mut kinds = std::collections::HashSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for m in parse_manifests(&text, &path.display().to_string()).unwrap() {
            assert_eq!(
                m.unknown_fields,
                Vec::<String>::new(),
                "{} document {}",
                path.display(),
                m.document
            );
            kinds.insert(std::mem::discriminant(&m.object));
        }
    }
    assert_eq!(kinds.len(), 6);
}

#[test]
fn typos_are_reported_as_unknown_fields() {
    let text = r#"
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {name: typo}
spec:
  resourceName: r
  nodeSelector: {}
  numVfs: 4
  numVFs: 8
  nicSelector: {vendor: "8086", pfName: ["ens1f0"]}
  isRDMA: false
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetwork
metadata: {name: net}
spec: {resourceName: r}
"#;
    let parsed = policies_from_manifests(text, "p.yaml").unwrap();
    let (policies, unknown) = (parsed.policies, parsed.unknown_fields);
    assert_eq!(policies.len(), 1, "other kinds are skipped");
    assert_eq!(policies[0].spec.num_vfs, 4);
    assert_eq!(
        unknown,
        [(
            "typo".to_string(),
            vec![
                "spec.nicSelector.pfName".to_string(),
                "spec.numVFs".to_string()
            ]
        )],
        "isRDMA: false is empty, so indistinguishable from an omitted field and not reported"
    );
}

#[test]
fn errors_name_the_document() {
    let cases = [
        ("a: [", "x.yaml: not valid YAML: "),
        (
            "---\n- 1\n",
            "x.yaml document 1: not a Kubernetes object (expected a mapping with apiVersion and kind)",
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\n",
            "x.yaml document 1: apiVersion \"v1\" is not sriovnetwork.openshift.io/v1",
        ),
        (
            "apiVersion: sriovnetwork.openshift.io/v1\nkind: SriovFecClusterConfig\n",
            "x.yaml document 1: kind \"SriovFecClusterConfig\" is not one of SriovNetworkNodePolicy, SriovNetworkNodeState, SriovNetwork, SriovIBNetwork, OVSNetwork, SriovOperatorConfig, SriovNetworkPoolConfig",
        ),
        (
            "apiVersion: sriovnetwork.openshift.io/v1\nkind: SriovNetwork\nmetadata: {name: ok}\nspec: {resourceName: r}\n---\napiVersion: sriovnetwork.openshift.io/v1\nkind: SriovNetworkNodePolicy\nmetadata: {name: p}\nspec: {resourceName: r, nodeSelector: {}, nicSelector: {}}\n",
            "x.yaml document 2 (SriovNetworkNodePolicy \"p\"): missing field `numVfs`",
        ),
        (
            "apiVersion: sriovnetwork.openshift.io/v1\nkind: SriovNetworkNodePolicy\nmetadata: {name: p}\nspec: {resourceName: r, nodeSelector: {}, nicSelector: {}, numVfs: many}\n",
            "x.yaml document 1 (SriovNetworkNodePolicy \"p\"): invalid type: string \"many\", expected i32",
        ),
    ];
    let on = "apiVersion: sriovnetwork.openshift.io/v1\nkind: SriovNetwork\nmetadata: {name: net}\nspec: {resourceName: r, spoofChk: on}\n";
    assert_eq!(
        parse_manifests(on, "x.yaml").unwrap_err().to_string(),
        "x.yaml document 1 (SriovNetwork \"net\"): invalid type: boolean `true`, expected a string (YAML reads unquoted on/off/yes/no/y/n/true/false as booleans; quote the value, e.g. \"on\")"
    );
    for (text, msg) in cases {
        let err = parse_manifests(text, "x.yaml").unwrap_err().to_string();
        assert!(err.starts_with(msg), "{text:?}: {err}");
    }
}

#[test]
fn empty_documents_are_skipped() {
    let text = "---\n---\napiVersion: sriovnetwork.openshift.io/v1\nkind: SriovIBNetwork\nmetadata: {name: ib}\nspec: {resourceName: r}\n---\n";
    let parsed = parse_manifests(text, "x.yaml").unwrap();
    assert_eq!(parsed.len(), 1);
    assert!(matches!(parsed[0].object, SriovObject::IbNetwork(_)));
}

#[test]
fn ovs_networks_are_read() {
    let text = r#"
apiVersion: sriovnetwork.openshift.io/v1
kind: OVSNetwork
metadata: {name: ovs, namespace: sriov-network-operator}
spec:
  networkNamespace: lane
  resourceName: switchdev_vfs
  bridge: br-ovs
  vlan: 100
  mtu: 9000
  interfaceType: netdev
  trunk: [{minID: 10, maxID: 20}, {id: 30}]
  trunks: [{id: 40}]
---
apiVersion: sriovnetwork.openshift.io/v1
kind: OVSNetwork
metadata: {name: bare}
"#;
    let parsed = parse_manifests(text, "ovs.yaml").unwrap();
    assert_eq!(parsed.len(), 2);
    let SriovObject::OvsNetwork(net) = &parsed[0].object else {
        panic!("not an OVSNetwork: {:?}", parsed[0].object);
    };
    assert_eq!(net.spec.resource_name, "switchdev_vfs");
    assert_eq!(net.spec.bridge, "br-ovs");
    assert_eq!(net.spec.trunk.len(), 2);
    assert_eq!(net.spec.network_namespace, "lane");
    assert_eq!(parsed[0].unknown_fields, ["spec.trunks"]);
    // Without spec: Go's zero spec, as the API server stores it.
    let SriovObject::OvsNetwork(bare) = &parsed[1].object else {
        panic!("not an OVSNetwork: {:?}", parsed[1].object);
    };
    assert_eq!(bare.spec, Default::default());
    assert!(parsed[1].unknown_fields.is_empty());
}
