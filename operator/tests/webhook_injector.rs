//! The network-resources injector: AdmissionReview of a pod in, the JSON
//! patch applied to the pod out, with NADs from a cache (a map here).

use std::collections::{BTreeMap, BTreeSet};

use kube::core::DynamicObject;
use kube::core::admission::AdmissionReview;
use serde_json::{Value, json};
use sriov_operator::webhook::injector::{
    InjectorSwitches, NadInfo, NetworkRef, mutate_pod, parse_networks,
};

fn nads() -> BTreeMap<(String, String), NadInfo> {
    let nad = |r: Option<&str>, sel: Option<&str>| NadInfo {
        resource_name: r.map(str::to_string),
        node_selector: sel.map(str::to_string),
    };
    BTreeMap::from([
        (
            ("default".into(), "sriov-a".into()),
            nad(Some("openshift.io/intel_a"), None),
        ),
        (
            ("default".into(), "sriov-b".into()),
            nad(Some("openshift.io/intel_b"), None),
        ),
        (
            ("net-ns".into(), "sriov-c".into()),
            nad(Some("openshift.io/mlx_c"), Some("zone=east")),
        ),
        (("default".into(), "macvlan".into()), nad(None, None)),
        // A DRA pool's network (the operator's SRIOV_DRA_RESOURCES).
        (
            ("default".into(), "dra-pool".into()),
            nad(Some("openshift.io/dra_vfs"), None),
        ),
        // Multus 4.x's DRA form: the resourceName is a claim's name.
        (
            ("default".into(), "dra-claim".into()),
            nad(Some("vf-claim"), None),
        ),
    ])
}

fn dra() -> BTreeSet<String> {
    BTreeSet::from(["openshift.io/dra_vfs".to_string()])
}

fn pod(namespace: &str, networks: Option<&str>, containers: Value) -> Value {
    let mut p = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "namespace": namespace},
        "spec": {"containers": containers}
    });
    if let Some(n) = networks {
        p["metadata"]["annotations"] = json!({"k8s.v1.cni.cncf.io/networks": n});
    }
    p
}

fn one_container() -> Value {
    json!([{"name": "app", "image": "busybox"}])
}

fn review(pod: &Value) -> AdmissionReview<DynamicObject> {
    serde_json::from_value(json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": pod["metadata"]["namespace"],
            "operation": "CREATE",
            "userInfo": {},
            "object": pod,
        }
    }))
    .unwrap()
}

/// Runs the injector; returns (allowed, message, pod after the patch).
fn inject(pod: &Value, switches: InjectorSwitches) -> (bool, String, Value) {
    let response = serde_json::to_value(mutate_pod(review(pod), &nads(), switches, &dra()))
        .unwrap()["response"]
        .clone();
    let mut patched = pod.clone();
    if let Some(bytes) = response["patch"].as_array() {
        let bytes: Vec<u8> = bytes.iter().map(|b| b.as_u64().unwrap() as u8).collect();
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        json_patch::patch(&mut patched, &patch).unwrap();
    }
    (
        response["allowed"].as_bool().unwrap(),
        response["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        patched,
    )
}

#[test]
fn annotation_forms() {
    let r = |ns: &str, name: &str, i: Option<&str>| NetworkRef {
        namespace: ns.into(),
        name: name.into(),
        interface: i.map(str::to_string),
    };
    assert_eq!(
        parse_networks("sriov-a, net-ns/sriov-c@eth5 ,sriov-a", "default").unwrap(),
        vec![
            r("default", "sriov-a", None),
            r("net-ns", "sriov-c", Some("eth5")),
            r("default", "sriov-a", None)
        ]
    );
    assert_eq!(
        parse_networks(
            r#"[{"name":"sriov-a","interface":"net1"},{"name":"sriov-c","namespace":"net-ns"}]"#,
            "default"
        )
        .unwrap(),
        vec![
            r("default", "sriov-a", Some("net1")),
            r("net-ns", "sriov-c", None)
        ]
    );
    assert!(parse_networks("[{\"namespace\":\"x\"}]", "default").is_err());
    assert!(parse_networks("a/b/c", "default").is_err());
    assert!(parse_networks("/x", "default").is_err());
    assert!(parse_networks("", "default").unwrap().is_empty());
}

#[test]
fn requests_and_limits_one_per_reference_on_the_first_container() {
    let containers = json!([{"name": "app", "image": "x"}, {"name": "sidecar", "image": "y"}]);
    let (ok, _, p) = inject(
        &pod(
            "default",
            Some("sriov-a, sriov-a@net2, sriov-b, macvlan, net-ns/sriov-c"),
            containers,
        ),
        InjectorSwitches::default(),
    );
    assert!(ok);
    let res = &p["spec"]["containers"][0]["resources"];
    assert_eq!(
        res["requests"],
        json!({"openshift.io/intel_a": "2", "openshift.io/intel_b": "1", "openshift.io/mlx_c": "1"})
    );
    assert_eq!(res["limits"], res["requests"]);
    assert!(
        p["spec"]["containers"][1]["resources"].is_null(),
        "only the first container"
    );
    // podnetinfo in every container
    assert_eq!(
        p["spec"]["volumes"],
        json!([{"name": "podnetinfo", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}
        ]}}])
    );
    for i in 0..2 {
        assert_eq!(
            p["spec"]["containers"][i]["volumeMounts"],
            json!([{"name": "podnetinfo", "mountPath": "/etc/podnetinfo", "readOnly": true}])
        );
    }
    // NAD nodeSelector annotation
    assert_eq!(p["spec"]["nodeSelector"], json!({"zone": "east"}));
    // No hugepages switch: no CONTAINER_NAME
    assert!(p["spec"]["containers"][0]["env"].is_null());
}

#[test]
fn json_form_and_existing_resources() {
    let containers = json!([{"name": "app", "image": "x", "resources": {
        "requests": {"cpu": "1", "openshift.io/intel_a": "5"},
        "limits": {"cpu": "1"}
    }}]);
    let annotation = r#"[{"name": "sriov-a"}]"#;
    let (_, _, p) = inject(
        &pod("default", Some(annotation), containers.clone()),
        InjectorSwitches::default(),
    );
    let res = &p["spec"]["containers"][0]["resources"];
    assert_eq!(
        res["requests"],
        json!({"cpu": "1", "openshift.io/intel_a": "1"}),
        "upstream default: the count wins"
    );
    assert_eq!(
        res["limits"],
        json!({"cpu": "1", "openshift.io/intel_a": "1"})
    );
    let honor = InjectorSwitches {
        honor_existing_resources: true,
        ..Default::default()
    };
    let (_, _, p) = inject(&pod("default", Some(annotation), containers), honor);
    let res = &p["spec"]["containers"][0]["resources"];
    assert_eq!(res["requests"]["openshift.io/intel_a"], "5", "honoured");
    assert_eq!(
        res["limits"]["openshift.io/intel_a"], "1",
        "added where the user set none"
    );
}

#[test]
fn hugepages_downward_api_and_container_name() {
    let containers = json!([
        {"name": "dpdk", "image": "x", "resources": {"requests": {"hugepages-1Gi": "2Gi"}, "limits": {"hugepages-1Gi": "2Gi"}}},
        {"name": "other", "image": "y", "resources": {"limits": {"hugepages-2Mi": "512Mi"}}}
    ]);
    let switches =
        InjectorSwitches::from_config_json(r#"{"features": {"enableHugePageDownApi": true}}"#);
    assert!(switches.hugepages_downward_api);
    let (_, _, p) = inject(&pod("default", Some("sriov-a"), containers), switches);
    let items = &p["spec"]["volumes"][0]["downwardAPI"]["items"];
    let paths: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "labels",
            "annotations",
            "hugepages_1G_request_dpdk",
            "hugepages_1G_limit_dpdk",
            "hugepages_2M_limit_other"
        ]
    );
    assert_eq!(
        items[2]["resourceFieldRef"],
        json!({"containerName": "dpdk", "resource": "requests.hugepages-1Gi", "divisor": "1Mi"})
    );
    assert_eq!(
        p["spec"]["containers"][0]["env"],
        json!([{"name": "CONTAINER_NAME", "value": "dpdk"}])
    );
    assert_eq!(
        p["spec"]["containers"][1]["env"],
        json!([{"name": "CONTAINER_NAME", "value": "other"}])
    );
}

#[test]
fn skipped_and_untouched_pods() {
    let (ok, _, p) = inject(
        &pod("kube-system", Some("sriov-a"), one_container()),
        InjectorSwitches::default(),
    );
    assert!(ok);
    assert!(
        p["spec"]["containers"][0]["resources"].is_null(),
        "kube-system is skipped"
    );
    let plain = pod("default", None, one_container());
    let (ok, _, p) = inject(&plain, InjectorSwitches::default());
    assert!(ok);
    assert_eq!(p, plain, "no annotation: no change");
    // Already has the podnetinfo volume: only resources.
    let mut with_vol = pod(
        "default",
        Some("sriov-a"),
        json!([{"name": "app", "image": "x", "volumeMounts": [{"name": "podnetinfo", "mountPath": "/etc/podnetinfo"}]}]),
    );
    with_vol["spec"]["volumes"] = json!([{"name": "podnetinfo", "downwardAPI": {"items": []}}]);
    let (_, _, p) = inject(&with_vol, InjectorSwitches::default());
    assert_eq!(p["spec"]["volumes"].as_array().unwrap().len(), 1);
    assert_eq!(
        p["spec"]["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_missing_nad_is_rejected_by_name() {
    let (ok, message, _) = inject(
        &pod(
            "default",
            Some("sriov-a, nope, other/missing@eth1"),
            one_container(),
        ),
        InjectorSwitches::default(),
    );
    assert!(!ok);
    assert!(message.contains("default/nope, other/missing"), "{message}");
    assert!(
        message.contains("no NetworkAttachmentDefinition of that name exists"),
        "{message}"
    );
    let (ok, message, _) = inject(
        &pod("default", Some("[{\"name\": 3}]"), one_container()),
        InjectorSwitches::default(),
    );
    assert!(!ok);
    assert!(
        message.contains("is not a valid JSON list of networks"),
        "{message}"
    );
}

/// A network whose VF comes from a ResourceClaim gets no extended-resource
/// request (no node advertises one); the rest of the injection is as
/// usual. A DRA pool's network without any claim is refused, saying why.
#[test]
fn dra_served_networks_get_no_extended_resource() {
    let mut p = pod(
        "default",
        Some("dra-pool, dra-claim, sriov-a"),
        one_container(),
    );
    p["spec"]["resourceClaims"] = json!([
        {"name": "vf", "resourceClaimName": "vf-claim"},
        {"name": "pool-vf", "resourceClaimTemplateName": "one-vf"}
    ]);
    let (ok, msg, patched) = inject(&p, InjectorSwitches::default());
    assert!(ok, "{msg}");
    let res = &patched["spec"]["containers"][0]["resources"];
    assert_eq!(res["requests"], json!({"openshift.io/intel_a": "1"}));
    assert_eq!(res["limits"], res["requests"]);
    assert_eq!(patched["spec"]["volumes"][0]["name"], "podnetinfo");

    // Only DRA networks: no resources patch at all, podnetinfo still.
    let mut only = pod("default", Some("dra-claim"), one_container());
    only["spec"]["resourceClaims"] = json!([{"name": "vf", "resourceClaimName": "vf-claim"}]);
    let (ok, _, patched) = inject(&only, InjectorSwitches::default());
    assert!(ok);
    assert!(patched["spec"]["containers"][0]["resources"].is_null());
    assert_eq!(patched["spec"]["volumes"][0]["name"], "podnetinfo");

    // A claim name without that claim in the pod is not a qualified
    // extended resource either: nothing requested (the API server would
    // refuse the pod), and Multus reports the missing device.
    let (ok, _, patched) = inject(
        &pod("default", Some("dra-claim"), one_container()),
        InjectorSwitches::default(),
    );
    assert!(ok);
    assert!(patched["spec"]["containers"][0]["resources"].is_null());

    // The DRA pool's network with no claim at all: refused.
    let (ok, msg, _) = inject(
        &pod("default", Some("dra-pool, sriov-a"), one_container()),
        InjectorSwitches::default(),
    );
    assert!(!ok);
    assert!(
        msg.contains("default/dra-pool (openshift.io/dra_vfs)")
            && msg.contains("served by the DRA driver")
            && msg.contains("resourceClaims"),
        "{msg}"
    );
}
