//! Table tests of the operator webhook: an AdmissionReview in, an
//! AdmissionReview out, for every upstream rule (operator.md §4) and the
//! differences (warnings instead of rejections where upstream accepts or
//! where a daemon has not reported yet).

use std::collections::BTreeMap;

use kube::core::DynamicObject;
use kube::core::admission::AdmissionReview;
use serde_json::{Value, json};
use sriov_crds::rules::policy::NicCheck;
use sriov_crds::{
    InterfaceExt, SriovNetworkNodePolicy, SriovNetworkNodeState, SriovNetworkNodeStateStatus,
};
use sriov_operator::webhook::operator_webhook::{
    ClusterView, OperatorWebhookConfig, mutate, validate,
};

const NS: &str = "sriov-network-operator";

fn review(
    kind: &str,
    operation: &str,
    object: Value,
    old: Option<Value>,
) -> AdmissionReview<DynamicObject> {
    let (group, version) = if kind == "Pod" {
        ("", "v1")
    } else {
        ("sriovnetwork.openshift.io", "v1")
    };
    let plural = format!("{}s", kind.to_lowercase());
    serde_json::from_value(json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": plural},
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "operation": operation,
            "userInfo": {"username": "admin"},
            "object": if operation == "DELETE" { Value::Null } else { object.clone() },
            "oldObject": old.unwrap_or(if operation == "DELETE" { object } else { Value::Null }),
            "dryRun": false
        }
    }))
    .unwrap()
}

fn out(review: AdmissionReview<DynamicObject>) -> Value {
    serde_json::to_value(review).unwrap()["response"].clone()
}

fn policy(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "sriovnetwork.openshift.io/v1",
        "kind": "SriovNetworkNodePolicy",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec
    })
}

fn base_spec(extra: Value) -> Value {
    let mut spec = json!({
        "resourceName": "intel_nics",
        "nodeSelector": {"sriov": "true"},
        "numVfs": 8,
        "nicSelector": {"vendor": "8086", "pfNames": ["ens1f0"]},
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    spec
}

fn pf(name: &str, pci: &str, vendor: &str, device: &str, total: i32) -> InterfaceExt {
    InterfaceExt {
        name: name.into(),
        pci_address: pci.into(),
        vendor: vendor.into(),
        device_id: device.into(),
        total_vfs: total,
        num_vfs: 4,
        mtu: 1500,
        link_type: "ETH".into(),
        ..Default::default()
    }
}

fn state(node: &str, pfs: Vec<InterfaceExt>, sync: &str) -> SriovNetworkNodeState {
    let mut s = SriovNetworkNodeState::new(node, Default::default());
    s.metadata.namespace = Some(NS.into());
    s.status = Some(SriovNetworkNodeStateStatus {
        interfaces: pfs,
        sync_status: sync.into(),
        ..Default::default()
    });
    s
}

fn cluster() -> ClusterView {
    let labels = BTreeMap::from([("sriov".to_string(), "true".to_string())]);
    let other: SriovNetworkNodePolicy = serde_json::from_value(policy(
        "other",
        base_spec(json!({
            "resourceName": "other",
            "nicSelector": {"pfNames": ["ens1f0#0-3"], "rootDevices": ["0000:3b:00.1"]},
            "excludeTopology": true,
        })),
    ))
    .unwrap();
    ClusterView {
        nodes: vec![
            ("worker-0".into(), labels.clone()),
            (
                "mlx-0".into(),
                BTreeMap::from([("mlx".to_string(), "true".to_string())]),
            ),
            (
                "fresh-0".into(),
                BTreeMap::from([("fresh".to_string(), "true".to_string())]),
            ),
        ],
        node_states: vec![
            state(
                "worker-0",
                vec![
                    pf("ens1f0", "0000:3b:00.0", "8086", "159b", 64),
                    pf("ens1f1", "0000:3b:00.1", "8086", "159b", 64),
                ],
                "Succeeded",
            ),
            state(
                "mlx-0",
                vec![pf("ens2f0", "0000:5e:00.0", "15b3", "101d", 256)],
                "InProgress",
            ),
        ],
        policies: vec![other],
    }
}

fn config() -> OperatorWebhookConfig {
    OperatorWebhookConfig {
        operator_namespace: NS.into(),
        nic_check: NicCheck::KnownOnly,
        ..Default::default()
    }
}

/// (allowed, message contains, warnings contain)
fn check(case: &str, response: &Value, allowed: bool, message: &str, warning: &str) {
    assert_eq!(response["allowed"], allowed, "{case}: {response}");
    let msg = response["status"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(message),
        "{case}: message {msg:?} lacks {message:?}"
    );
    let warnings = response["warnings"].to_string();
    if warning.is_empty() {
        assert!(
            response["warnings"].is_null(),
            "{case}: unexpected warnings {warnings}"
        );
    } else {
        assert!(
            warnings.contains(warning),
            "{case}: warnings {warnings} lack {warning:?}"
        );
    }
    assert_eq!(response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
}

#[test]
fn policy_rules() {
    let cases: Vec<(&str, Value, bool, &str, &str)> = vec![
        ("valid", base_spec(json!({})), true, "", ""),
        // 1. resource name
        (
            "resourceName chars",
            base_spec(json!({"resourceName": "intel.nics"})),
            false,
            "spec.resourceName: resource name \"intel.nics\" contains '.'",
            "",
        ),
        (
            "resourceName empty",
            base_spec(json!({"resourceName": ""})),
            false,
            "spec.resourceName: resource name is empty",
            "",
        ),
        (
            "resourceName 64 chars",
            base_spec(json!({"resourceName": "a".repeat(64)})),
            false,
            "is 64 characters long",
            "",
        ),
        (
            "resourceName hyphen ok",
            base_spec(json!({"resourceName": "intel-nics"})),
            true,
            "",
            "",
        ),
        // 2. selector
        (
            "empty nicSelector",
            base_spec(json!({"nicSelector": {}})),
            false,
            "spec.nicSelector: nicSelector is empty",
            "",
        ),
        // 3. supported NICs
        (
            "unknown vendor",
            base_spec(json!({"nicSelector": {"vendor": "1234"}})),
            false,
            "vendor 1234 is not supported",
            "",
        ),
        (
            "unknown device",
            base_spec(json!({"nicSelector": {"vendor": "8086", "deviceID": "ffff"}})),
            false,
            "vendor/device 8086/ffff is not supported",
            "",
        ),
        (
            "unknown device alone",
            base_spec(json!({"nicSelector": {"deviceID": "ffff"}})),
            false,
            "device ffff is not supported",
            "",
        ),
        // 4. pfName ranges
        (
            "range end >= numVfs",
            base_spec(json!({"nicSelector": {"pfNames": ["ens1f0#4-8"]}})),
            false,
            "spec.nicSelector.pfNames[0]: VF range \"ens1f0#4-8\" ends at index 8",
            "",
        ),
        (
            "range two #",
            base_spec(json!({"nicSelector": {"pfNames": ["ens1f0#1#2-3"]}})),
            false,
            "spec.nicSelector.pfNames[0]",
            "",
        ),
        (
            "range reversed",
            base_spec(json!({"nicSelector": {"pfNames": ["ens1f0#5-4"]}})),
            false,
            "spec.nicSelector.pfNames[0]",
            "",
        ),
        (
            "range not numbers",
            base_spec(json!({"nicSelector": {"pfNames": ["ens1f0#a-4"]}})),
            false,
            "spec.nicSelector.pfNames[0]",
            "",
        ),
        // 5. vfio-pci + RDMA
        (
            "vfio-pci rdma",
            base_spec(json!({"deviceType": "vfio-pci", "isRdma": true})),
            false,
            "spec.isRdma: 'deviceType: vfio-pci' conflicts with 'isRdma: true'",
            "",
        ),
        // 6. switchdev / vdpa / bridge
        (
            "switchdev ib",
            base_spec(json!({"eSwitchMode": "switchdev", "linkType": "ib"})),
            false,
            "spec.eSwitchMode: 'eSwitchMode: switchdev' can be used only with ethernet links",
            "",
        ),
        (
            "vdpa vfio",
            base_spec(
                json!({"eSwitchMode": "switchdev", "vdpaType": "virtio", "deviceType": "vfio-pci"}),
            ),
            false,
            "spec.vdpaType: 'deviceType: vfio-pci' conflicts with 'vdpaType: virtio'",
            "",
        ),
        (
            "vdpa legacy",
            base_spec(json!({"vdpaType": "virtio"})),
            false,
            "spec.vdpaType: vdpa requires the device to be configured in switchdev mode",
            "",
        ),
        (
            "bridge legacy",
            base_spec(json!({"bridge": {"ovs": {}}})),
            false,
            "spec.bridge: software bridge management requires",
            "",
        ),
        (
            "bridge external",
            base_spec(
                json!({"bridge": {"ovs": {}}, "eSwitchMode": "switchdev", "externallyManaged": true}),
            ),
            false,
            "spec.bridge: software bridge management can't be used when the device is externally managed",
            "",
        ),
        // 7. node checks
        (
            "numVfs 0",
            base_spec(json!({"numVfs": 0})),
            false,
            "spec.numVfs: 0 is not allowed",
            "",
        ),
        (
            "numVfs > totalvfs",
            base_spec(json!({"numVfs": 65})),
            false,
            "spec.numVfs: numVfs 65 exceeds what PF ens1f0 (0000:3b:00.0, 8086:159b) on node worker-0 supports: 64 VFs",
            "",
        ),
        (
            "externally managed: more VFs than exist",
            base_spec(
                json!({"externallyManaged": true, "numVfs": 8, "nicSelector": {"pfNames": ["ens1f1"]}, "resourceName": "ext"}),
            ),
            false,
            "numVfs 8 is more than the 4 VFs that exist on externally managed PF ens1f1",
            "",
        ),
        (
            "externally managed: mtu above PF",
            base_spec(
                json!({"externallyManaged": true, "numVfs": 4, "mtu": 9000, "nicSelector": {"pfNames": ["ens1f1"]}, "resourceName": "ext"}),
            ),
            false,
            "spec.mtu: mtu 9000 is higher than the MTU 1500",
            "",
        ),
        (
            "externally managed: link type",
            base_spec(
                json!({"externallyManaged": true, "numVfs": 4, "linkType": "ib", "nicSelector": {"pfNames": ["ens1f1"]}, "resourceName": "ext"}),
            ),
            false,
            "spec.linkType: linkType ib differs",
            "",
        ),
        (
            "vdpa on intel",
            base_spec(json!({"eSwitchMode": "switchdev", "vdpaType": "virtio"})),
            false,
            "vDPA is supported only on Mellanox",
            "",
        ),
        (
            "nothing selected",
            base_spec(json!({"nicSelector": {"pfNames": ["ens9f9"]}})),
            false,
            "spec.nicSelector: no supported NIC on node worker-0 is selected by nicSelector",
            "",
        ),
        // 8. other policies on the same node
        (
            "overlapping range",
            base_spec(json!({"nicSelector": {"pfNames": ["ens1f0#2-5"]}})),
            false,
            "overlaps \"ens1f0#0-3\" of policy other",
            "",
        ),
        (
            "same root device",
            base_spec(json!({"nicSelector": {"rootDevices": ["0000:3b:00.1"]}})),
            false,
            "root device 0000:3b:00.1 is already selected by policy other",
            "",
        ),
        (
            "excludeTopology disagreement",
            base_spec(json!({"resourceName": "other", "nicSelector": {"pfNames": ["ens1f0#4-7"]}})),
            false,
            "spec.excludeTopology: excludeTopology false conflicts with policy other",
            "",
        ),
        (
            "externallyManaged inconsistent on a PF",
            base_spec(
                json!({"externallyManaged": true, "numVfs": 6, "nicSelector": {"pfNames": ["ens1f0#4-5"]}, "resourceName": "ext"}),
            ),
            false,
            "externallyManaged is true but policy other selects the same PF ens1f0",
            "",
        ),
        // Better than upstream: accepted with warnings.
        (
            "no node yet",
            base_spec(json!({"nodeSelector": {"zone": "nowhere"}})),
            true,
            "",
            "no node has the labels \\\"zone=nowhere\\\" yet",
        ),
        (
            "daemon has not reported",
            base_spec(json!({"nodeSelector": {"fresh": "true"}})),
            true,
            "",
            "1 selected node(s) have not reported their NICs yet (fresh-0)",
        ),
        (
            "malformed rootDevice is a warning",
            base_spec(
                json!({"nicSelector": {"pfNames": ["ens1f0#4-7"], "rootDevices": ["3b:00.0"]}, "nodeSelector": {"fresh": "true"}}),
            ),
            true,
            "",
            "spec.nicSelector.rootDevices[0]: \\\"3b:00.0\\\" is not a PCI address",
        ),
    ];
    for (case, spec, allowed, message, warning) in cases {
        let r = out(validate(
            review("SriovNetworkNodePolicy", "CREATE", policy("p", spec), None),
            &config(),
            &cluster(),
        ));
        check(case, &r, allowed, message, warning);
        if !allowed {
            assert!(
                r["status"]["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("SriovNetworkNodePolicy p is invalid: spec."),
                "{case}: the message names the object and the field: {r}"
            );
        }
    }
}

#[test]
fn policy_in_another_namespace_warns_and_default_policy_is_skipped() {
    let mut p = policy("p", base_spec(json!({})));
    p["metadata"]["namespace"] = json!("default");
    let r = out(validate(
        review("SriovNetworkNodePolicy", "CREATE", p, None),
        &config(),
        &cluster(),
    ));
    check(
        "other namespace",
        &r,
        true,
        "",
        "only policies in namespace sriov-network-operator are applied",
    );
    let d = policy(
        "default",
        json!({"resourceName": "bad.name", "nodeSelector": {}, "numVfs": 0, "nicSelector": {}}),
    );
    let r = out(validate(
        review("SriovNetworkNodePolicy", "CREATE", d, None),
        &config(),
        &cluster(),
    ));
    check("default policy", &r, true, "", "");
    let r = out(validate(
        review(
            "SriovNetworkNodePolicy",
            "DELETE",
            policy("p", base_spec(json!({"numVfs": 0}))),
            None,
        ),
        &config(),
        &cluster(),
    ));
    check("delete", &r, true, "", "");
}

#[test]
fn dev_mode_accepts_unknown_nics() {
    let cfg = OperatorWebhookConfig {
        nic_check: NicCheck::AnyNic,
        ..config()
    };
    let r = out(validate(
        review(
            "SriovNetworkNodePolicy",
            "CREATE",
            policy(
                "p",
                base_spec(
                    json!({"nicSelector": {"vendor": "1234"}, "nodeSelector": {"fresh": "true"}}),
                ),
            ),
            None,
        ),
        &cfg,
        &cluster(),
    ));
    check("dev mode", &r, true, "", "have not reported");
}

fn network(kind: &str, ns: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "sriovnetwork.openshift.io/v1",
        "kind": kind,
        "metadata": {"name": "net", "namespace": ns},
        "spec": spec
    })
}

#[test]
fn network_rules() {
    let cases: Vec<(&str, &str, &str, Value, bool, &str, &str)> = vec![
        (
            "valid",
            "SriovNetwork",
            NS,
            json!({"resourceName": "intel_nics", "networkNamespace": "apps", "vlan": 10}),
            true,
            "",
            "",
        ),
        (
            "networkNamespace outside operator namespace",
            "SriovNetwork",
            "apps",
            json!({"resourceName": "intel_nics", "networkNamespace": "other"}),
            false,
            "spec.networkNamespace: \"other\" can't be set on a network in namespace apps",
            "",
        ),
        (
            "no networkNamespace outside: fine",
            "SriovNetwork",
            "apps",
            json!({"resourceName": "intel_nics"}),
            true,
            "",
            "",
        ),
        (
            "qos without vlan warns",
            "SriovNetwork",
            NS,
            json!({"resourceName": "intel_nics", "vlanQoS": 3}),
            true,
            "",
            "spec.vlanQoS: vlanQoS 3 needs a VLAN",
        ),
        (
            "max below min warns",
            "SriovNetwork",
            NS,
            json!({"resourceName": "intel_nics", "minTxRate": 100, "maxTxRate": 10}),
            true,
            "",
            "maxTxRate 10 is below minTxRate 100",
        ),
        (
            "ipam not json warns",
            "SriovNetwork",
            NS,
            json!({"resourceName": "intel_nics", "ipam": "{oops"}),
            true,
            "",
            "spec.ipam: is not valid JSON",
        ),
        (
            "vlan out of range (schema rule)",
            "SriovNetwork",
            NS,
            json!({"resourceName": "intel_nics", "vlan": 4095}),
            false,
            "spec.vlan: 4095 is out of range",
            "",
        ),
        (
            "no spec (upstream accepts)",
            "SriovNetwork",
            NS,
            Value::Null,
            true,
            "",
            "resource name is empty",
        ),
        (
            "IB namespace rule",
            "SriovIBNetwork",
            "apps",
            json!({"resourceName": "mlx", "networkNamespace": "x"}),
            false,
            "spec.networkNamespace",
            "",
        ),
        (
            "IB bad capabilities warns",
            "SriovIBNetwork",
            NS,
            json!({"resourceName": "mlx", "capabilities": "[]"}),
            true,
            "",
            "spec.capabilities",
        ),
        (
            "OVS namespace rule",
            "OVSNetwork",
            "apps",
            json!({"resourceName": "sw", "networkNamespace": "x"}),
            false,
            "spec.networkNamespace",
            "",
        ),
        (
            "OVS trunk reversed warns",
            "OVSNetwork",
            NS,
            json!({"resourceName": "sw", "trunk": [{"minID": 20, "maxID": 10}]}),
            true,
            "",
            "spec.trunk[0]: minID 20 is above maxID 10",
        ),
    ];
    for (case, kind, ns, spec, allowed, message, warning) in cases {
        let mut obj = network(kind, ns, spec.clone());
        if spec.is_null() {
            obj.as_object_mut().unwrap().remove("spec");
        }
        let r = out(validate(
            review(kind, "CREATE", obj, None),
            &config(),
            &cluster(),
        ));
        check(case, &r, allowed, message, warning);
    }
}

fn operator_config(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "sriovnetwork.openshift.io/v1",
        "kind": "SriovOperatorConfig",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec
    })
}

#[test]
fn operator_config_rules() {
    let r = out(validate(
        review(
            "SriovOperatorConfig",
            "CREATE",
            operator_config("default", json!({"logLevel": 2})),
            None,
        ),
        &config(),
        &cluster(),
    ));
    check("default", &r, true, "", "");
    let r = out(validate(
        review(
            "SriovOperatorConfig",
            "CREATE",
            operator_config("mine", json!({})),
            None,
        ),
        &config(),
        &cluster(),
    ));
    check(
        "other name",
        &r,
        false,
        "metadata.name: only the SriovOperatorConfig named default in namespace sriov-network-operator is used",
        "",
    );
    // disableDrain false -> true while mlx-0 is InProgress.
    let r = out(validate(
        review(
            "SriovOperatorConfig",
            "UPDATE",
            operator_config("default", json!({"disableDrain": true})),
            Some(operator_config("default", json!({"disableDrain": false}))),
        ),
        &config(),
        &cluster(),
    ));
    check(
        "disableDrain while updating",
        &r,
        false,
        "spec.disableDrain: can't set disableDrain to true while node mlx-0 is updating",
        "node draining is disabled",
    );
    let r = out(validate(
        review(
            "SriovOperatorConfig",
            "UPDATE",
            operator_config("default", json!({"disableDrain": true})),
            Some(operator_config("default", json!({"disableDrain": true}))),
        ),
        &config(),
        &cluster(),
    ));
    check(
        "disableDrain unchanged",
        &r,
        true,
        "",
        "node draining is disabled",
    );
    let r = out(validate(
        review(
            "SriovOperatorConfig",
            "DELETE",
            operator_config("mine", json!({})),
            None,
        ),
        &config(),
        &cluster(),
    ));
    check("delete", &r, true, "", "");
}

#[test]
fn pool_config_rules() {
    let pool = |spec: Value| {
        json!({
            "apiVersion": "sriovnetwork.openshift.io/v1",
            "kind": "SriovNetworkPoolConfig",
            "metadata": {"name": "pool", "namespace": NS},
            "spec": spec
        })
    };
    let cases: Vec<(&str, Value, bool, &str)> = vec![
        (
            "count",
            json!({"maxUnavailable": 2, "nodeSelector": {"matchLabels": {"a": "b"}}}),
            true,
            "",
        ),
        ("percent", json!({"maxUnavailable": "25%"}), true, ""),
        (
            "0%",
            json!({"maxUnavailable": "0%"}),
            false,
            "spec.maxUnavailable: \"0%\": the percentage must be between 1% and 100%",
        ),
        (
            "101%",
            json!({"maxUnavailable": "101%"}),
            false,
            "between 1% and 100%",
        ),
        (
            "negative",
            json!({"maxUnavailable": -1}),
            false,
            "spec.maxUnavailable: -1 is negative",
        ),
        (
            "word",
            json!({"maxUnavailable": "two"}),
            false,
            "is a string but not a percentage",
        ),
        (
            "offload with parallel",
            json!({"maxUnavailable": 1, "ovsHardwareOffloadConfig": {"name": "worker"}}),
            false,
            "spec.ovsHardwareOffloadConfig",
        ),
        ("no spec", Value::Null, true, ""),
    ];
    for (case, spec, allowed, message) in cases {
        let mut obj = pool(spec.clone());
        if spec.is_null() {
            obj.as_object_mut().unwrap().remove("spec");
        }
        let r = out(validate(
            review("SriovNetworkPoolConfig", "CREATE", obj, None),
            &config(),
            &cluster(),
        ));
        check(case, &r, allowed, message, "");
    }
}

/// The JSON patch of a response (kube serializes the bytes as a JSON array
/// of numbers, which Go's decoder accepts for a []byte like base64).
fn patch_of(response: &Value) -> Value {
    let bytes: Vec<u8> = response["patch"]
        .as_array()
        .expect("a patch")
        .iter()
        .map(|b| b.as_u64().unwrap() as u8)
        .collect();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn mutation_defaults_policies() {
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "defaults",
            base_spec(json!({})),
            json!([
                {"op": "add", "path": "/spec/priority", "value": 99},
                {"op": "add", "path": "/spec/deviceType", "value": "netdevice"},
                {"op": "add", "path": "/spec/isRdma", "value": false},
            ]),
        ),
        (
            "IB netdevice forces isRdma",
            base_spec(
                json!({"priority": 10, "deviceType": "netdevice", "linkType": "IB", "isRdma": false}),
            ),
            json!([{"op": "add", "path": "/spec/isRdma", "value": true}]),
        ),
        (
            "IB vfio-pci keeps isRdma false",
            base_spec(json!({"priority": 10, "deviceType": "vfio-pci", "linkType": "ib"})),
            json!([{"op": "add", "path": "/spec/isRdma", "value": false}]),
        ),
    ];
    for (case, spec, expected) in cases {
        let r = out(mutate(review(
            "SriovNetworkNodePolicy",
            "CREATE",
            policy("p", spec),
            None,
        )));
        assert_eq!(r["allowed"], true, "{case}");
        assert_eq!(r["patchType"], "JSONPatch", "{case}");
        assert_eq!(patch_of(&r), expected, "{case}");
    }
    let r = out(mutate(review(
        "SriovNetworkNodePolicy",
        "UPDATE",
        policy(
            "p",
            base_spec(json!({"priority": 5, "deviceType": "netdevice", "isRdma": false})),
        ),
        None,
    )));
    assert!(r["patch"].is_null(), "nothing to default: {r}");
    let r = out(mutate(review(
        "SriovNetwork",
        "CREATE",
        network("SriovNetwork", NS, json!({"resourceName": "x"})),
        None,
    )));
    assert!(r["patch"].is_null() && r["allowed"] == true);
    // A policy without spec gets one.
    let mut bare = policy("p", Value::Null);
    bare.as_object_mut().unwrap().remove("spec");
    let r = out(mutate(review(
        "SriovNetworkNodePolicy",
        "CREATE",
        bare,
        None,
    )));
    assert_eq!(
        patch_of(&r)[0],
        json!({"op": "add", "path": "/spec", "value": {}})
    );
}
