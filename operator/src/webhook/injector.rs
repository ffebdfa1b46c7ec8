//! The network-resources injector (`/mutate`, pod CREATE): for every network
//! a pod names in `k8s.v1.cni.cncf.io/networks` it adds the network's
//! device-plugin resource (the NAD's `k8s.v1.cni.cncf.io/resourceName`) to
//! the requests and limits of the first container, one unit per reference;
//! the `podnetinfo` Downward-API volume at `/etc/podnetinfo`; with the
//! hugepages switch, the hugepage request/limit files and `CONTAINER_NAME`;
//! and the NAD's `k8s.v1.cni.cncf.io/nodeSelector` label in the pod's
//! `nodeSelector`. Pods in `kube-system` are left alone.
//!
//! NADs come from a cache ([`NadSource`]); a pod naming a NAD that does not
//! exist is rejected with a message naming it (upstream lets it through and
//! it fails at sandbox creation).
//!
//! A network whose device comes from a DRA ResourceClaim gets no
//! extended-resource request (no node advertises one; the pod would never
//! be scheduled, or not be valid at all): its NAD's `resourceName` is one
//! of the pools the DRA driver serves (the operator's
//! `SRIOV_DRA_RESOURCES`, as `<prefix>/<pool>`), the name of one of the
//! pod's own ResourceClaims (Multus 4.x keys a claim's devices by the
//! claim's name), or not a qualified extended-resource name at all. A pod
//! naming a DRA pool's network without any ResourceClaim is rejected with
//! a message saying so.

use std::collections::{BTreeMap, BTreeSet};

use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde::Deserialize;
use serde_json::{Value, json};

use super::NETWORKS_ANNOTATION;

/// Where the Downward-API volume is mounted.
pub const PODNETINFO_MOUNT_PATH: &str = "/etc/podnetinfo";
/// Name of the Downward-API volume.
pub const PODNETINFO_VOLUME: &str = "podnetinfo";
/// Namespace the injector never touches.
pub const SKIPPED_NAMESPACE: &str = "kube-system";
/// Name of the control-switches ConfigMap (operator namespace).
pub const CONTROL_SWITCHES_CONFIGMAP: &str = "nri-control-switches";

/// What the injector needs from a NAD.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NadInfo {
    /// `k8s.v1.cni.cncf.io/resourceName` (None: the network needs no device).
    pub resource_name: Option<String>,
    /// `k8s.v1.cni.cncf.io/nodeSelector`: `key=value` or `key`.
    pub node_selector: Option<String>,
}

/// Looks NADs up (a reflector store in the server, a map in tests).
pub trait NadSource: Send + Sync {
    /// The NAD `namespace/name`, if it exists.
    fn nad(&self, namespace: &str, name: &str) -> Option<NadInfo>;
}

impl NadSource for BTreeMap<(String, String), NadInfo> {
    fn nad(&self, namespace: &str, name: &str) -> Option<NadInfo> {
        self.get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
}

/// The injector's feature switches (upstream's `nri-control-switches`
/// ConfigMap, key `config.json`: `{"features": {"enableHugePageDownApi":
/// true, "enableHonorExistingResources": false}}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InjectorSwitches {
    /// Hugepage request/limit files in `podnetinfo` and `CONTAINER_NAME`.
    pub hugepages_downward_api: bool,
    /// A resource the container already requests keeps the user's value.
    pub honor_existing_resources: bool,
}

impl InjectorSwitches {
    /// Reads the ConfigMap's `config.json` value; unknown keys are ignored,
    /// unparsable text gives the defaults (all off).
    pub fn from_config_json(text: &str) -> Self {
        #[derive(Deserialize, Default)]
        struct Features {
            #[serde(rename = "enableHugePageDownApi", default)]
            hugepages: Option<bool>,
            #[serde(rename = "enableHonorExistingResources", default)]
            honor: Option<bool>,
        }
        #[derive(Deserialize, Default)]
        struct Doc {
            #[serde(default)]
            features: Features,
        }
        let doc: Doc = serde_json::from_str(text).unwrap_or_default();
        Self {
            hugepages_downward_api: doc.features.hugepages.unwrap_or(false),
            honor_existing_resources: doc.features.honor.unwrap_or(false),
        }
    }
}

/// One network named by a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRef {
    /// NAD namespace (the pod's when not given).
    pub namespace: String,
    /// NAD name.
    pub name: String,
    /// Interface name in the pod, if given (`@ifname` or `interface`).
    pub interface: Option<String>,
}

/// Parses the networks annotation: a comma list (`net1, other-ns/net2@eth5`)
/// or a JSON list (`[{"name": "net1", "namespace": "ns", "interface": "eth5"}]`).
pub fn parse_networks(text: &str, pod_namespace: &str) -> Result<Vec<NetworkRef>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if text.starts_with('[') {
        #[derive(Deserialize)]
        struct Selection {
            name: String,
            #[serde(default)]
            namespace: Option<String>,
            #[serde(default)]
            interface: Option<String>,
        }
        let list: Vec<Selection> = serde_json::from_str(text).map_err(|e| {
            format!("annotation {NETWORKS_ANNOTATION} is not a valid JSON list of networks: {e}")
        })?;
        return list
            .into_iter()
            .map(|s| {
                if s.name.is_empty() {
                    return Err(format!(
                        "annotation {NETWORKS_ANNOTATION}: a network has an empty name"
                    ));
                }
                Ok(NetworkRef {
                    namespace: s
                        .namespace
                        .filter(|n| !n.is_empty())
                        .unwrap_or_else(|| pod_namespace.to_string()),
                    name: s.name,
                    interface: s.interface.filter(|i| !i.is_empty()),
                })
            })
            .collect();
    }
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (path, interface) = match item.split_once('@') {
                Some((p, i)) => (p, Some(i.to_string())),
                None => (item, None),
            };
            let (namespace, name) = match path.split_once('/') {
                Some((ns, n)) => (ns.to_string(), n.to_string()),
                None => (pod_namespace.to_string(), path.to_string()),
            };
            if name.is_empty() || namespace.is_empty() || name.contains('/') {
                return Err(format!(
                    "annotation {NETWORKS_ANNOTATION}: {item:?} is not <name>, <namespace>/<name> or <namespace>/<name>@<interface>"
                ));
            }
            Ok(NetworkRef {
                namespace,
                name,
                interface: interface.filter(|i| !i.is_empty()),
            })
        })
        .collect()
}

/// Whether a NAD's `resourceName` is served by DRA for this pod (module
/// docs): a pool of the DRA driver, or one of the pod's claim names, or no
/// extended resource at all (no `/`).
fn dra_served(resource: &str, dra_resources: &BTreeSet<String>, claim_names: &[&str]) -> bool {
    dra_resources.contains(resource) || claim_names.contains(&resource) || !resource.contains('/')
}

/// JSON patch operations for a pod, or the reason to reject it. `Ok(empty)`
/// when nothing is to change. `dra_resources`: the extended-resource names
/// (`<prefix>/<pool>`) of the pools the DRA driver serves.
pub fn pod_patch(
    pod: &Value,
    pod_namespace: &str,
    nads: &dyn NadSource,
    switches: InjectorSwitches,
    dra_resources: &BTreeSet<String>,
) -> Result<Vec<Value>, String> {
    if pod_namespace == SKIPPED_NAMESPACE {
        return Ok(Vec::new());
    }
    let Some(annotation) = pod["metadata"]["annotations"][NETWORKS_ANNOTATION].as_str() else {
        return Ok(Vec::new());
    };
    let networks = parse_networks(annotation, pod_namespace)?;
    if networks.is_empty() {
        return Ok(Vec::new());
    }
    let pod_claims = pod["spec"]["resourceClaims"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let claim_names: Vec<&str> = pod_claims
        .iter()
        .filter_map(|c| c["resourceClaimName"].as_str())
        .collect();
    let mut resources: BTreeMap<String, i64> = BTreeMap::new();
    let mut node_selector: BTreeMap<String, String> = BTreeMap::new();
    let mut missing = Vec::new();
    let mut unclaimed = Vec::new();
    for net in &networks {
        match nads.nad(&net.namespace, &net.name) {
            None => missing.push(format!("{}/{}", net.namespace, net.name)),
            Some(info) => {
                match info.resource_name.filter(|r| !r.is_empty()) {
                    // A DRA pool's network in a pod without any claim.
                    Some(r) if dra_resources.contains(&r) && pod_claims.is_empty() => {
                        unclaimed.push(format!("{}/{} ({r})", net.namespace, net.name));
                    }
                    Some(r) if dra_served(&r, dra_resources, &claim_names) => {}
                    Some(r) => *resources.entry(r).or_default() += 1,
                    None => {}
                }
                if let Some(sel) = info.node_selector.filter(|s| !s.trim().is_empty()) {
                    let (k, v) = sel.split_once('=').unwrap_or((sel.as_str(), ""));
                    node_selector.insert(k.trim().to_string(), v.trim().to_string());
                }
            }
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "the pod names network(s) {} in annotation {NETWORKS_ANNOTATION}, but no NetworkAttachmentDefinition of that name exists; create it (for SR-IOV: a SriovNetwork with networkNamespace {}) or fix the annotation",
            missing.join(", "),
            networks
                .iter()
                .find(|n| missing.contains(&format!("{}/{}", n.namespace, n.name)))
                .map(|n| n.namespace.as_str())
                .unwrap_or(pod_namespace)
        ));
    }
    if !unclaimed.is_empty() {
        return Err(format!(
            "the pod names network(s) {} whose pool is served by the DRA driver, not by the device plugin, but has no resourceClaims: add a ResourceClaim (or template) for a VF of the pool to spec.resourceClaims and to a container's resources.claims",
            unclaimed.join(", ")
        ));
    }
    let containers = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if containers.is_empty() {
        return Ok(Vec::new());
    }
    let mut ops = Vec::new();
    if !resources.is_empty() {
        let mut res = containers[0]["resources"].clone();
        if !res.is_object() {
            res = json!({});
        }
        for section in ["requests", "limits"] {
            if !res[section].is_object() {
                res[section] = json!({});
            }
            for (name, count) in &resources {
                let existing = &res[section][name];
                if switches.honor_existing_resources && !existing.is_null() {
                    continue;
                }
                res[section][name] = Value::String(count.to_string());
            }
        }
        ops.push(json!({"op": "add", "path": "/spec/containers/0/resources", "value": res}));
    }
    // podnetinfo Downward-API volume.
    let mut volumes = pod["spec"]["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !volumes.iter().any(|v| v["name"] == PODNETINFO_VOLUME) {
        let mut items = vec![
            json!({"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}),
            json!({"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}),
        ];
        if switches.hugepages_downward_api {
            for c in &containers {
                let name = c["name"].as_str().unwrap_or_default();
                for (size, short) in [("1Gi", "1G"), ("2Mi", "2M")] {
                    let resource = format!("hugepages-{size}");
                    for (section, word) in [("requests", "request"), ("limits", "limit")] {
                        if !c["resources"][section][&resource].is_null() {
                            items.push(json!({
                                "path": format!("hugepages_{short}_{word}_{name}"),
                                "resourceFieldRef": {
                                    "containerName": name,
                                    "resource": format!("{section}.{resource}"),
                                    "divisor": "1Mi"
                                }
                            }));
                        }
                    }
                }
            }
        }
        volumes.push(json!({"name": PODNETINFO_VOLUME, "downwardAPI": {"items": items}}));
        ops.push(json!({"op": "add", "path": "/spec/volumes", "value": volumes}));
        for (i, c) in containers.iter().enumerate() {
            let mut mounts = c["volumeMounts"].as_array().cloned().unwrap_or_default();
            if mounts
                .iter()
                .any(|m| m["mountPath"] == PODNETINFO_MOUNT_PATH)
            {
                continue;
            }
            mounts.push(json!({"name": PODNETINFO_VOLUME, "mountPath": PODNETINFO_MOUNT_PATH, "readOnly": true}));
            ops.push(json!({"op": "add", "path": format!("/spec/containers/{i}/volumeMounts"), "value": mounts}));
        }
    }
    if switches.hugepages_downward_api {
        for (i, c) in containers.iter().enumerate() {
            let mut env = c["env"].as_array().cloned().unwrap_or_default();
            if env.iter().any(|e| e["name"] == "CONTAINER_NAME") {
                continue;
            }
            env.push(json!({"name": "CONTAINER_NAME", "value": c["name"]}));
            ops.push(
                json!({"op": "add", "path": format!("/spec/containers/{i}/env"), "value": env}),
            );
        }
    }
    if !node_selector.is_empty() {
        let mut sel = pod["spec"]["nodeSelector"].clone();
        if !sel.is_object() {
            sel = json!({});
        }
        for (k, v) in node_selector {
            sel[k] = Value::String(v);
        }
        ops.push(json!({"op": "add", "path": "/spec/nodeSelector", "value": sel}));
    }
    Ok(ops)
}

/// `/mutate`: the AdmissionReview of a pod CREATE in, the patch out.
pub fn mutate_pod(
    review: AdmissionReview<DynamicObject>,
    nads: &dyn NadSource,
    switches: InjectorSwitches,
    dra_resources: &BTreeSet<String>,
) -> AdmissionReview<DynamicObject> {
    let req: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(_) => {
            return AdmissionResponse::invalid("the AdmissionReview has no request").into_review();
        }
    };
    let response = AdmissionResponse::from(&req);
    if req.operation != Operation::Create || req.kind.kind != "Pod" {
        return response.into_review();
    }
    let Some(object) = &req.object else {
        return response.into_review();
    };
    let pod = serde_json::to_value(object).unwrap_or(Value::Null);
    let namespace = req
        .namespace
        .clone()
        .or_else(|| pod["metadata"]["namespace"].as_str().map(str::to_string))
        .unwrap_or_else(|| "default".to_string());
    match pod_patch(&pod, &namespace, nads, switches, dra_resources) {
        Err(message) => response.deny(message).into_review(),
        Ok(ops) if ops.is_empty() => response.into_review(),
        Ok(ops) => match serde_json::from_value::<json_patch::Patch>(Value::Array(ops)) {
            Ok(patch) => match response.clone().with_patch(patch) {
                Ok(r) => r.into_review(),
                Err(e) => response.deny(e.to_string()).into_review(),
            },
            Err(e) => response
                .deny(format!("building the patch: {e}"))
                .into_review(),
        },
    }
}
