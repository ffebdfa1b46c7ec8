//! The CEL rules (`x-kubernetes-validations`) in the generated CRDs compile
//! and accept/reject objects as intended, evaluated client-side with kube-cel
//! (schema defaults applied first, like the API server).

use kube_cel::{Validator, compile_schema};
use serde_json::{Value, json};
use sriov_crds::crd_gen::all_crds;

fn schema(kind: &str) -> Value {
    let crd = all_crds()
        .into_iter()
        .find(|g| g.crd.spec.names.kind == kind)
        .unwrap()
        .crd;
    serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap()
}

/// Messages of the failed rules (empty = accepted).
fn failures(kind: &str, object: &Value) -> Vec<String> {
    match Validator::new().validate(&schema(kind), object, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.iter().map(|e| e.message.clone()).collect(),
    }
}

fn object(kind: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "sriovnetwork.openshift.io/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "sriov-network-operator"},
        "spec": spec,
    })
}

#[test]
fn every_rule_compiles() {
    for generated in all_crds() {
        let s = schema(&generated.crd.spec.names.kind);
        let compiled = compile_schema(&s);
        let errors = compiled.compilation_errors();
        assert!(errors.is_empty(), "{}: {errors:?}", generated.file_name);
    }
}

#[test]
fn examples_pass_cel_rules() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for doc in docs {
            let kind = doc["kind"].as_str().unwrap().to_string();
            assert_eq!(
                failures(&kind, &doc),
                Vec::<String>::new(),
                "{} {}",
                path.display(),
                doc["metadata"]["name"]
            );
        }
    }
}

fn policy(extra: Value) -> Value {
    let mut spec = json!({
        "resourceName": "r",
        "nodeSelector": {},
        "numVfs": 4,
        "nicSelector": {"vendor": "8086"},
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    object("SriovNetworkNodePolicy", "p", spec)
}

#[test]
fn policy_cel_rules() {
    let accepted = [
        json!({}),
        json!({"deviceType": "vfio-pci", "isRdma": false}),
        json!({"deviceType": "netdevice", "isRdma": true}),
        json!({"eSwitchMode": "switchdev", "linkType": "ETH"}),
        json!({"eSwitchMode": "switchdev", "vdpaType": "virtio"}),
        json!({"eSwitchMode": "switchdev", "bridge": {"ovs": {}}}),
        json!({"bridge": {}}),
        json!({"linkType": "ib"}),
    ];
    for extra in accepted {
        assert_eq!(
            failures("SriovNetworkNodePolicy", &policy(extra.clone())),
            Vec::<String>::new(),
            "{extra}"
        );
    }
    let rejected = [
        (
            json!({"deviceType": "vfio-pci", "isRdma": true}),
            "'deviceType: vfio-pci' conflicts with 'isRdma: true'; set deviceType to netdevice or isRdma to false",
        ),
        (
            json!({"eSwitchMode": "switchdev", "linkType": "ib"}),
            "'eSwitchMode: switchdev' can be used only with ethernet links (linkType eth)",
        ),
        (
            json!({"eSwitchMode": "switchdev", "vdpaType": "vhost", "deviceType": "vfio-pci"}),
            "vdpaType needs 'deviceType: netdevice'; set deviceType to netdevice or remove vdpaType",
        ),
        (
            json!({"vdpaType": "virtio"}),
            "vdpaType needs 'eSwitchMode: switchdev'",
        ),
        (
            json!({"bridge": {"ovs": {}}}),
            "software bridge management (bridge.ovs) needs 'eSwitchMode: switchdev'",
        ),
        (
            json!({"eSwitchMode": "switchdev", "externallyManaged": true, "bridge": {"ovs": {}}}),
            "software bridge management (bridge.ovs) can't be used with 'externallyManaged: true'",
        ),
        (
            json!({"nicSelector": {}}),
            "nicSelector is empty: set at least one of vendor, deviceID, pfNames, rootDevices or netFilter",
        ),
    ];
    for (extra, msg) in rejected {
        assert_eq!(
            failures("SriovNetworkNodePolicy", &policy(extra.clone())),
            [msg],
            "{extra}"
        );
    }
}

#[test]
fn network_cel_rules() {
    let net = |extra: Value| {
        let mut spec = json!({"resourceName": "r"});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        object("SriovNetwork", "n", spec)
    };
    for extra in [
        json!({}),
        json!({"minTxRate": 10, "maxTxRate": 10}),
        json!({"minTxRate": 10, "maxTxRate": 0}),
        json!({"maxTxRate": 5}),
        json!({"vlan": 5, "vlanQoS": 3, "vlanProto": "802.1ad"}),
        json!({"vlanQoS": 0, "vlanProto": "802.1Q"}),
    ] {
        assert_eq!(
            failures("SriovNetwork", &net(extra.clone())),
            Vec::<String>::new(),
            "{extra}"
        );
    }
    for (extra, msg) in [
        (
            json!({"minTxRate": 100, "maxTxRate": 10}),
            "maxTxRate must be >= minTxRate (or 0 for no limit)",
        ),
        (
            json!({"vlanQoS": 2}),
            "vlanQoS needs a VLAN: set vlan (1-4094) or remove vlanQoS",
        ),
        (
            json!({"vlan": 0, "vlanQoS": 2}),
            "vlanQoS needs a VLAN: set vlan (1-4094) or remove vlanQoS",
        ),
        (
            json!({"vlanProto": "802.1AD"}),
            "vlanProto 802.1ad needs a VLAN: set vlan (1-4094) or remove vlanProto",
        ),
    ] {
        assert_eq!(
            failures("SriovNetwork", &net(extra.clone())),
            [msg],
            "{extra}"
        );
    }
}

#[test]
fn operator_config_name_rule() {
    assert!(
        failures(
            "SriovOperatorConfig",
            &object("SriovOperatorConfig", "default", json!({}))
        )
        .is_empty()
    );
    assert_eq!(
        failures(
            "SriovOperatorConfig",
            &object("SriovOperatorConfig", "my-config", json!({}))
        ),
        ["SriovOperatorConfig must be named 'default'; objects with other names are never used"]
    );
}
