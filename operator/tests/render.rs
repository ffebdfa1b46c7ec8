//! Render mode against fixtures, checked field by field against the Go
//! operator's rules (controllers/sriovnetworknodepolicy_controller.go,
//! api/v1/helper.go, bindata/manifests/cni-config/sriov, generic_network_controller.go).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};
use sriov_crds::nic_ids::NicIdList;
use sriov_operator::render::nad::{CniFields, go_json_indent, render_cni_config, yaml_fold};
use sriov_operator::render::{Inputs, Rendered, input::read_stream, render_all};
use sriov_operator::settings::Settings;

fn settings() -> Settings {
    Settings::from_vars(&BTreeMap::from([(
        "RESOURCE_PREFIX".to_string(),
        "example.com".to_string(),
    )]))
}

fn now() -> Time {
    Time("2026-01-02T03:04:05Z".parse().unwrap())
}

fn render(files: &[&str]) -> Rendered {
    let s = settings();
    let mut inputs = Inputs::default();
    for f in files {
        let path = format!("{}/tests/fixtures/{f}", env!("CARGO_MANIFEST_DIR"));
        read_stream(
            &mut inputs,
            &std::fs::read_to_string(&path).unwrap(),
            f,
            &s.namespace,
        )
        .unwrap();
    }
    render_all(&inputs, &s, &NicIdList::builtin(), &now())
}

fn node_state(r: &Rendered, name: &str) -> Value {
    let ns = r
        .node_states
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no node state {name}"));
    serde_json::to_value(&ns.spec).unwrap()
}

#[test]
fn node_states_only_for_nodes_of_the_config_daemon_selector() {
    let r = render(&["cluster.yaml"]);
    let names: Vec<_> = r
        .node_states
        .iter()
        .map(|n| n.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        ["worker-0", "worker-1", "worker-new"],
        "control-0 is not a worker"
    );
    for ns in &r.node_states {
        assert_eq!(
            ns.metadata.namespace.as_deref(),
            Some("sriov-network-operator")
        );
        let owner = &ns.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("SriovOperatorConfig", "default", Some(true))
        );
    }
}

#[test]
fn merged_spec_of_a_reporting_node() {
    let r = render(&["cluster.yaml"]);
    assert_eq!(
        node_state(&r, "worker-0"),
        json!({
            "interfaces": [
                {"pciAddress": "0000:3b:00.0", "name": "ens1f0", "numVfs": 8, "mtu": 9000,
                 "linkType": "eth",
                 "vfGroups": [
                    {"resourceName": "intel_net", "deviceType": "netdevice", "vfRange": "0-3",
                     "policyName": "net-a", "mtu": 9000},
                    {"resourceName": "intel_dpdk", "deviceType": "vfio-pci", "vfRange": "4-7",
                     "policyName": "dpdk-a", "mtu": 1500}
                 ]},
                {"pciAddress": "0000:3b:00.1", "name": "ens1f1", "numVfs": 4,
                 "vfGroups": [{"resourceName": "intel_net", "deviceType": "netdevice",
                               "vfRange": "0-3", "policyName": "net-b"}]},
                {"pciAddress": "0000:5e:00.0", "name": "ens2f0", "numVfs": 2,
                 "vfGroups": [{"resourceName": "vm_nf", "deviceType": "netdevice",
                               "vfRange": "0-1", "policyName": "everywhere"}]}
            ],
            "system": {"rdmaMode": "exclusive"}
        }),
        "pfNames by altName with range; numVfs/mtu max over surviving groups; \
         loser (2-5 overlaps 4-7) dropped; policy of another namespace ignored; \
         netFilter selects; pool rdmaMode"
    );
}

#[test]
fn node_without_report_keeps_spec_and_new_state_is_empty() {
    let r = render(&["cluster.yaml"]);
    assert_eq!(
        node_state(&r, "worker-new"),
        json!({"system": {"rdmaMode": "exclusive"}}),
        "upstream creates the state with an empty spec and waits for the daemon's report"
    );
    assert_eq!(
        node_state(&r, "worker-1"),
        json!({}),
        "no PF of worker-1 is selected"
    );
}

#[test]
fn device_plugin_config_map_byte_compatible() {
    let r = render(&["cluster.yaml"]);
    let cm = r.config_map.as_ref().unwrap();
    assert_eq!(cm.metadata.name.as_deref(), Some("device-plugin-config"));
    let data = cm.data.as_ref().unwrap();
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        ["worker-0", "worker-1", "worker-new"]
    );
    assert_eq!(
        data["worker-0"],
        concat!(
            r#"{"resourceList":["#,
            r#"{"resourceName":"vm_nf","selectors":{"pciAddresses":["0000:5e:00.0"],"IsRdma":false,"NeedVhostNet":false},"SelectorObj":null},"#,
            r#"{"resourceName":"lost","selectors":{"pfNames":["ens1f0#2-5"],"IsRdma":false,"NeedVhostNet":false},"SelectorObj":null},"#,
            r#"{"resourceName":"intel_net","excludeTopology":true,"selectors":{"pfNames":["ens1f0#0-3"],"rootDevices":["0000:3b:00.1"],"linkTypes":["ether"],"IsRdma":false,"NeedVhostNet":false},"SelectorObj":null},"#,
            r#"{"resourceName":"intel_dpdk","selectors":{"vendors":["8086"],"devices":["154c"],"drivers":["vfio-pci"],"pfNames":["ens1f0#4-7"],"IsRdma":false,"NeedVhostNet":true},"SelectorObj":null}]}"#
        ),
        "order: priority number descending then name; altName resolved, range kept; \
         union of net-a and net-b (intel_net); VF device 154c from PF 158b; \
         no linkTypes but drivers for vfio-pci"
    );
    assert!(
        data["worker-new"].contains(r#""pfNames":["enp59s0f0np0#0-3"]"#),
        "without a report the altName cannot be resolved and stays"
    );
}

#[test]
fn node_without_resources_gets_null_list_and_disabled_label() {
    let r = render(&["cluster.yaml", "no-resources.yaml"]);
    let data = r.config_map.as_ref().unwrap().data.as_ref().unwrap();
    assert_eq!(data["worker-bare"], r#"{"resourceList":null}"#);
    let label = |n: &str| {
        r.node_labels
            .iter()
            .find(|x| x.metadata.name.as_deref() == Some(n))
            .unwrap()
            .metadata
            .labels
            .as_ref()
            .unwrap()["sriovnetwork.openshift.io/device-plugin"]
            .clone()
    };
    assert_eq!(label("worker-bare"), "Disabled");
    assert_eq!(label("worker-0"), "Enabled");
}

#[test]
fn no_operator_config_renders_no_node_state() {
    let r = render(&["no-resources.yaml"]);
    assert!(r.node_states.is_empty() && r.config_map.is_none() && r.daemonsets.is_empty());
    assert_eq!(r.warnings.len(), 1);
}

fn policy_status(r: &Rendered, name: &str) -> Value {
    let p = r
        .policy_statuses
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(name))
        .unwrap();
    serde_json::to_value(p.status.as_ref().unwrap()).unwrap()
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap()
}

#[test]
fn policy_status_counts_and_conditions() {
    let r = render(&["cluster.yaml"]);
    let loser = policy_status(&r, "loser");
    assert_eq!(
        (
            loser["matchedNodes"].as_i64(),
            loser["appliedNodes"].as_i64()
        ),
        (Some(2), Some(0))
    );
    let d = condition(&loser, "Degraded");
    assert_eq!(
        (d["status"].as_str(), d["reason"].as_str()),
        (Some("True"), Some("MergeConflict"))
    );
    let msg = d["message"].as_str().unwrap();
    assert!(
        msg.starts_with("node worker-0: policy loser lost VFs 2-5 on PF ens1f0"),
        "{msg}"
    );
    assert!(msg.contains("to policy dpdk-a"), "{msg}");
    assert_eq!(condition(&loser, "Ready")["status"], "False");

    let everywhere = policy_status(&r, "everywhere");
    assert_eq!(everywhere["matchedNodes"], 3);
    let d = condition(&everywhere, "Degraded");
    assert_eq!(d["reason"], "SyncFailed");
    assert_eq!(
        d["message"],
        "node worker-1: the config daemon failed: write sriov_numvfs: EBUSY"
    );

    let net_a = policy_status(&r, "net-a");
    let ready = condition(&net_a, "Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("Progressing"))
    );
    assert_eq!(ready["observedGeneration"], 3);
    assert_eq!(ready["lastTransitionTime"], "2026-01-02T03:04:05Z");
    assert!(
        r.policy_statuses
            .iter()
            .all(|p| p.metadata.name.as_deref() != Some("other-namespace")),
        "policies outside the operator namespace are not the operator's"
    );
}

#[test]
fn policy_ready_when_every_matched_node_applied_it() {
    let r = render(&["applied.yaml"]);
    let s = policy_status(&r, "p");
    assert_eq!(
        (s["matchedNodes"].as_i64(), s["appliedNodes"].as_i64()),
        (Some(1), Some(1))
    );
    let ready = condition(&s, "Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("True"), Some("Applied"))
    );
    assert_eq!(condition(&s, "Degraded")["status"], "False");
}

fn nad<'a>(
    r: &'a Rendered,
    ns: &str,
    name: &str,
) -> Option<&'a sriov_operator::nad::NetworkAttachmentDefinition> {
    r.nads.iter().find(|n| {
        n.metadata.name.as_deref() == Some(name) && n.metadata.namespace.as_deref() == Some(ns)
    })
}

fn network_ready(r: &Rendered, name: &str) -> (String, String, String) {
    let n = r
        .network_statuses
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(name))
        .unwrap();
    let c = &n.status.as_ref().unwrap().conditions[0];
    assert_eq!(c.type_, "Ready");
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

#[test]
fn nad_of_a_minimal_network() {
    let r = render(&["networks.yaml"]);
    let n = nad(&r, "apps", "plain").unwrap();
    let ann = n.metadata.annotations.as_ref().unwrap();
    assert_eq!(
        ann["k8s.v1.cni.cncf.io/resourceName"],
        "example.com/intel_net"
    );
    assert_eq!(
        ann["sriovnetwork.openshift.io/owner-ref"],
        "SriovNetwork.sriovnetwork.openshift.io/apps/plain"
    );
    let owner = &n.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("SriovNetwork", "plain")
    );
    assert_eq!(
        n.spec.config,
        "{\n    \"cniVersion\": \"1.0.0\",\n    \"name\": \"plain\",\n    \"type\": \"sriov\",\n    \"vlan\": 0,\n    \"vlanQoS\": 0,\n    \"ipam\": {}\n}",
        "vlan and vlanQoS always; ipam {{}}; json.Indent with 4 spaces"
    );
    assert_eq!(
        network_ready(&r, "plain"),
        (
            "True".into(),
            "NetworkReady".into(),
            "NetworkAttachmentDefinition is provisioned and ready".into()
        )
    );
}

#[test]
fn nad_with_every_field_and_meta_plugins_cross_namespace() {
    let r = render(&["networks.yaml"]);
    let n = nad(&r, "apps", "full").unwrap();
    assert!(
        n.metadata.owner_references.is_none(),
        "cross-namespace: no ownerReference"
    );
    assert_eq!(
        n.metadata.annotations.as_ref().unwrap()["sriovnetwork.openshift.io/owner-ref"],
        "SriovNetwork.sriovnetwork.openshift.io/sriov-network-operator/full"
    );
    let want = r#"{
    "cniVersion": "1.0.0",
    "name": "full",
    "plugins": [
        {
            "type": "sriov",
            "vlan": 100,
            "spoofchk": "off",
            "trust": "on",
            "vlanQoS": 3,
            "vlanProto": "802.1ad",
            "min_tx_rate": 10,
            "max_tx_rate": 200,
            "capabilities": {
                "mac": true,
                "ips": true
            },
            "link_state": "enable",
            "logLevel": "debug",
            "logFile": "/var/log/sriov.log",
            "ipam": {
                "type": "host-local",
                "subnet": "10.56.217.0/24",
                "rangeStart": "10.56.217.171"
            }
        },
        {
            "type": "tuning",
            "sysctl": {
                "net.ipv4.conf.IFNAME.arp_notify": "1"
            }
        }
    ]
}"#;
    assert_eq!(
        n.spec.config, want,
        "key order of the template; ipam whitespace removed even inside strings"
    );
}

#[test]
fn ib_network_nad() {
    let r = render(&["networks.yaml"]);
    let n = nad(&r, "apps", "ib").unwrap();
    assert_eq!(
        n.metadata.annotations.as_ref().unwrap()["sriovnetwork.openshift.io/owner-ref"],
        "SriovIBNetwork.sriovnetwork.openshift.io/apps/ib"
    );
    let v: Value = serde_json::from_str(&n.spec.config).unwrap();
    assert_eq!(
        v,
        json!({"cniVersion": "1.0.0", "name": "ib", "type": "ib-sriov",
               "capabilities": {"infinibandGUID": true}, "link_state": "auto",
               "ipam": {"type": "whereabouts"}}),
        "no vlan keys, no logLevel for ib-sriov"
    );
}

#[test]
fn network_conditions_with_upstream_reasons() {
    let r = render(&["networks.yaml"]);
    let (s, reason, msg) = network_ready(&r, "waits");
    assert_eq!(
        (s.as_str(), reason.as_str()),
        ("False", "NamespaceNotFound")
    );
    assert_eq!(msg, "target namespace \"not-yet\" does not exist");
    assert!(nad(&r, "not-yet", "waits").is_none());

    let (s, reason, msg) = network_ready(&r, "forbidden");
    assert_eq!(
        (s.as_str(), reason.as_str()),
        ("False", "NetworkAttachmentDefinitionInvalid")
    );
    assert!(
        msg.starts_with("spec.networkNamespace cannot be set"),
        "{msg}"
    );

    let (s, reason, msg) = network_ready(&r, "taken");
    assert_eq!(
        (s.as_str(), reason.as_str()),
        ("False", "NetworkAttachmentDefinitionInvalid")
    );
    assert_eq!(
        msg,
        "NetworkAttachmentDefinition 'apps/taken' already exists and is owned by SriovNetwork.sriovnetwork.openshift.io/other/taken"
    );
    assert!(
        nad(&r, "apps", "taken").is_none(),
        "someone else's NAD is not overwritten"
    );
}

#[test]
fn template_folding_and_go_indent_rules() {
    assert_eq!(
        yaml_fold("{\n  \"a\":1,\n\n  \"b\" \n}"),
        "{ \"a\":1,\n\"b\" }"
    );
    assert_eq!(
        go_json_indent(r#"{"a":[],"b":{},"c":[1,{"d":"x y"}]}"#).unwrap(),
        "{\n    \"a\": [],\n    \"b\": {},\n    \"c\": [\n        1,\n        {\n            \"d\": \"x y\"\n        }\n    ]\n}"
    );
    assert!(go_json_indent("{\"ipam\":{").is_err());
    let bad = CniFields {
        cni_type: "sriov",
        ipam: "{\"type\":".into(),
        ..Default::default()
    };
    assert!(render_cni_config("x", &bad).is_err());
    let limits = CniFields {
        cni_type: "sriov",
        vlan_qos: 9,
        spoof_chk: "maybe".into(),
        min_tx_rate: Some(-1),
        ..Default::default()
    };
    let v: Value = serde_json::from_str(&render_cni_config("x", &limits).unwrap()).unwrap();
    assert_eq!(
        v,
        json!({"cniVersion": "1.0.0", "name": "x", "type": "sriov", "vlan": 0, "ipam": {}}),
        "vlanQoS outside 0-7, unknown spoofchk and negative rates are left out"
    );
}

#[test]
fn daemonsets_from_the_operator_config() {
    let r = render(&["cluster.yaml"]);
    let names: Vec<_> = r
        .daemonsets
        .iter()
        .map(|d| d.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "sriov-network-config-daemon",
            "sriov-device-plugin",
            "sriov-cni"
        ]
    );
    let v: Vec<Value> = r
        .daemonsets
        .iter()
        .map(|d| serde_json::to_value(d).unwrap())
        .collect();
    let pod = |i: usize| &v[i]["spec"]["template"]["spec"];
    assert_eq!(
        pod(0)["nodeSelector"],
        json!({"node-role.kubernetes.io/worker": ""})
    );
    let env = &pod(0)["containers"][0]["env"];
    assert!(
        env.as_array()
            .unwrap()
            .contains(&json!({"name": "EXTRA", "value": "1"})),
        "{env}"
    );
    assert!(
        env.as_array()
            .unwrap()
            .contains(&json!({"name": "SRIOV_LOG", "value": "debug"})),
        "logLevel 1"
    );
    assert_eq!(
        pod(1)["nodeSelector"],
        json!({"node-role.kubernetes.io/worker": "", "sriovnetwork.openshift.io/device-plugin": "Enabled"})
    );
    let args = pod(1)["containers"][0]["args"].as_array().unwrap();
    assert_eq!(args[0], "--config-file=/etc/pcidp/$(NODE_NAME)");
    assert_eq!(args[1], "--resource-prefix=example.com");
    assert!(args.contains(&json!("--use-cdi")));
    assert!(
        pod(1)["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["configMap"]["name"] == "device-plugin-config")
    );
    for d in &v {
        assert_eq!(d["metadata"]["namespace"], "sriov-network-operator");
        assert_eq!(
            d["metadata"]["ownerReferences"][0]["kind"],
            "SriovOperatorConfig"
        );
    }
}

#[test]
fn output_stream_parses_back() {
    let r = render(&["cluster.yaml", "networks.yaml"]);
    let text = sriov_operator::output::to_yaml(&r);
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    assert_eq!(docs, sriov_operator::output::objects(&r));
    assert!(
        docs.iter()
            .all(|d| d["apiVersion"].is_string() && d["kind"].is_string())
    );
}

/// The API server refuses `spec: null` (the CRD says object): a node state
/// whose every policy is gone is written with `spec: {}` (found by the
/// cluster lane: a deleted policy's node state could not be emptied).
#[test]
fn empty_node_state_spec_is_written_as_an_object() {
    let r = sriov_operator::render::node::NodeRender {
        node: "n".into(),
        spec: Default::default(),
        merged: true,
        merge: Default::default(),
        device_plugin: Default::default(),
        device_plugin_json: r#"{"resourceList":null}"#.into(),
        pool: sriov_operator::render::pools::PoolMembership::Default,
    };
    let obj = sriov_operator::output::with_type(&sriov_operator::render::node_state_object(
        &r,
        &settings(),
        None,
    ));
    assert_eq!(obj["spec"], json!({}), "{obj}");
    let state: sriov_crds::SriovNetworkNodeState = serde_json::from_value(obj).unwrap();
    assert_eq!(serde_json::to_value(&state).unwrap()["spec"], json!({}));
}

/// OVSNetwork → a NAD of CNI type `ovs`, as the Go operator's
/// `cni-config/ovs` template: capabilities, bridge, vlan and mtu (when not
/// 0), trunk (Go's json.Marshal of the entries), interface_type, ipam
/// without whitespace; owner-ref annotation of kind OVSNetwork.
#[test]
fn ovs_network_renders_an_ovs_nad() {
    let net: sriov_crds::OVSNetwork = serde_json::from_value(json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "OVSNetwork",
        "metadata": {"name": "ovs1", "namespace": "sriov-network-operator", "uid": "u1"},
        "spec": {"resourceName": "ovs_res", "networkNamespace": "apps",
                 "capabilities": "{\"mac\": true}", "bridge": "br1", "vlan": 100, "mtu": 1500,
                 "trunk": [{"minID": 10, "maxID": 20}, {"id": 30}], "interfaceType": "dpdk",
                 "ipam": "{ \"type\": \"host-local\" }"}
    }))
    .unwrap();
    let view = sriov_operator::render::nad::NetworkView::ovs(&net);
    let nad = sriov_operator::render::nad::render_nad(&view, &settings()).unwrap();
    let want = r#"{
    "cniVersion": "1.0.0",
    "name": "ovs1",
    "type": "ovs",
    "capabilities": {
        "mac": true
    },
    "bridge": "br1",
    "vlan": 100,
    "mtu": 1500,
    "trunk": [
        {
            "minID": 10,
            "maxID": 20
        },
        {
            "id": 30
        }
    ],
    "interface_type": "dpdk",
    "ipam": {
        "type": "host-local"
    }
}"#;
    assert_eq!(nad.spec.config, want);
    assert_eq!(nad.metadata.namespace.as_deref(), Some("apps"));
    let ann = nad.metadata.annotations.clone().unwrap();
    assert_eq!(
        ann["k8s.v1.cni.cncf.io/resourceName"],
        "example.com/ovs_res"
    );
    assert_eq!(
        ann["sriovnetwork.openshift.io/owner-ref"],
        "OVSNetwork.sriovnetwork.openshift.io/sriov-network-operator/ovs1"
    );
    assert!(
        nad.metadata.owner_references.is_none(),
        "cross-namespace: no ownerReference"
    );

    // Only the type, name and ipam when nothing else is set (vlan 0, mtu 0
    // are Go's zero uint: left out); metaPlugins make a plugin list.
    let bare: sriov_crds::OVSNetwork = serde_json::from_value(json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "OVSNetwork",
        "metadata": {"name": "ovs2", "namespace": "apps", "uid": "u2"},
        "spec": {"resourceName": "r", "vlan": 0, "mtu": 0,
                 "metaPlugins": "{\"type\": \"tuning\"}"}
    }))
    .unwrap();
    let nad = sriov_operator::render::nad::render_nad(
        &sriov_operator::render::nad::NetworkView::ovs(&bare),
        &settings(),
    )
    .unwrap();
    let v: Value = serde_json::from_str(&nad.spec.config).unwrap();
    assert_eq!(
        v,
        json!({"cniVersion": "1.0.0", "name": "ovs2",
               "plugins": [{"type": "ovs", "ipam": {}}, {"type": "tuning"}]})
    );
    assert_eq!(nad.metadata.owner_references.unwrap()[0].kind, "OVSNetwork");
}

/// Render mode reads OVSNetworks and prints their NAD and status.
#[test]
fn render_mode_reads_ovs_networks() {
    let yaml = r#"
apiVersion: sriovnetwork.openshift.io/v1
kind: OVSNetwork
metadata: {name: ovs1, namespace: sriov-network-operator, generation: 1}
spec: {resourceName: r, bridge: br0}
"#;
    let mut inputs = Inputs::default();
    read_stream(&mut inputs, yaml, "test", "sriov-network-operator").unwrap();
    assert_eq!(inputs.ovs_networks.len(), 1);
    let r = render_all(&inputs, &settings(), &NicIdList::builtin(), &now());
    assert_eq!(r.nads.len(), 1);
    assert!(r.nads[0].spec.config.contains("\"bridge\": \"br0\""));
    let st = &r.ovs_network_statuses[0]
        .status
        .as_ref()
        .unwrap()
        .conditions[0];
    assert_eq!(
        (st.type_.as_str(), st.reason.as_str()),
        ("Ready", "NetworkReady")
    );
}
