//! The generated CRDs carry no CEL rule upstream's CRDs do not have (today:
//! none); what upstream checks in its webhook passes the CRD and is caught
//! by the rule functions the webhook uses. Evaluated client-side with kube-cel
//! (schema defaults applied first, like the API server).

use kube_cel::{Validator, compile_schema};
use serde_json::{Value, json};
use sriov_crds::crd_gen::all_crds;

fn schema(kind: &str) -> Value {
    all_crds()
        .into_iter()
        .find(|g| g.kind() == kind)
        .unwrap()
        .schema()
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
        let s = generated.schema();
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

/// What upstream rejects only in its webhook passes the CRD (the Go CRDs
/// accept it, so ours must), and the rule functions the webhook uses reject it.
#[test]
fn policy_webhook_rules_are_not_in_the_crd() {
    use sriov_crds::SriovNetworkNodePolicy;
    use sriov_crds::nic_ids::NicIdList;
    use sriov_crds::rules::policy::{NicCheck, check_policy_spec};
    let cases = [
        (
            json!({"deviceType": "vfio-pci", "isRdma": true}),
            "spec.isRdma",
        ),
        (
            json!({"eSwitchMode": "switchdev", "linkType": "ib"}),
            "spec.eSwitchMode",
        ),
        (
            json!({"eSwitchMode": "switchdev", "vdpaType": "vhost", "deviceType": "vfio-pci"}),
            "spec.vdpaType",
        ),
        (json!({"vdpaType": "virtio"}), "spec.vdpaType"),
        (json!({"bridge": {"ovs": {}}}), "spec.bridge"),
        (
            json!({"eSwitchMode": "switchdev", "externallyManaged": true, "bridge": {"ovs": {}}}),
            "spec.bridge",
        ),
        (json!({"nicSelector": {}}), "spec.nicSelector"),
        (json!({"resourceName": "has.dot"}), "spec.resourceName"),
        (json!({"resourceName": "x".repeat(64)}), "spec.resourceName"),
        (
            json!({"nicSelector": {"vendor": "0x8086"}}),
            "spec.nicSelector.vendor",
        ),
        (
            json!({"nicSelector": {"pfNames": ["ens1f0#0-1-2"]}}),
            "spec.nicSelector.pfNames[0]",
        ),
    ];
    for (extra, field) in cases {
        let object = policy(extra.clone());
        assert_eq!(
            failures("SriovNetworkNodePolicy", &object),
            Vec::<String>::new(),
            "the CRD must accept {extra}"
        );
        let typed: SriovNetworkNodePolicy = serde_json::from_value(object).unwrap();
        let errors = check_policy_spec(&typed.spec, &NicIdList::builtin(), NicCheck::KnownOnly);
        assert!(
            errors.iter().any(|e| e.field == field),
            "{extra}: the webhook rule must reject {field}: {errors:?}"
        );
    }
}

/// The SriovNetwork rules upstream does not have at all are warnings, not
/// CRD rules.
#[test]
fn network_rules_are_warnings() {
    use sriov_crds::SriovNetwork;
    use sriov_crds::rules::network::{check_network_spec, network_warnings};
    let net = |extra: Value| {
        let mut spec = json!({"resourceName": "r"});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        object("SriovNetwork", "n", spec)
    };
    for (extra, field) in [
        (json!({"minTxRate": 100, "maxTxRate": 10}), "spec.maxTxRate"),
        (json!({"vlanQoS": 2}), "spec.vlanQoS"),
        (json!({"vlan": 0, "vlanQoS": 2}), "spec.vlanQoS"),
        (json!({"vlanProto": "802.1AD"}), "spec.vlanProto"),
        (json!({"resourceName": ""}), "spec.resourceName"),
        (json!({"ipam": "not json"}), "spec.ipam"),
    ] {
        let object = net(extra.clone());
        assert_eq!(
            failures("SriovNetwork", &object),
            Vec::<String>::new(),
            "{extra}"
        );
        let typed: SriovNetwork = serde_json::from_value(object).unwrap();
        assert!(check_network_spec(&typed.spec).is_empty(), "{extra}");
        let warnings = network_warnings(&typed.spec);
        assert!(
            warnings.iter().any(|w| w.field == field),
            "{extra}: {warnings:?}"
        );
    }
}

/// Upstream checks the name `default` in its webhook only.
#[test]
fn operator_config_name_is_a_webhook_rule() {
    use sriov_crds::SriovOperatorConfig;
    use sriov_crds::rules::operator::check_operator_config;
    let object = object("SriovOperatorConfig", "my-config", json!({}));
    assert!(failures("SriovOperatorConfig", &object).is_empty());
    let typed: SriovOperatorConfig = serde_json::from_value(object).unwrap();
    let errors = check_operator_config(&typed, "sriov-network-operator");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "metadata.name");
}
