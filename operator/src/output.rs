//! Printing rendered objects as a YAML stream (render mode).

use kube::Resource;
use serde::Serialize;
use serde_json::Value;

use crate::render::Rendered;

/// One object as a JSON value with `apiVersion` and `kind` first.
pub fn with_type<K: Resource<DynamicType = ()> + Serialize>(obj: &K) -> Value {
    let mut map = serde_json::Map::new();
    map.insert(
        "apiVersion".into(),
        Value::String(K::api_version(&()).into()),
    );
    map.insert("kind".into(), Value::String(K::kind(&()).into()));
    if let Value::Object(o) = serde_json::to_value(obj).expect("objects serialize") {
        for (k, v) in o {
            if k != "apiVersion" && k != "kind" {
                map.insert(k, v);
            }
        }
    }
    Value::Object(map)
}

/// Status-only view of an object (metadata name/namespace and status).
fn status_only(v: Value) -> Value {
    let mut out = serde_json::Map::new();
    for key in ["apiVersion", "kind"] {
        if let Some(x) = v.get(key) {
            out.insert(key.into(), x.clone());
        }
    }
    let mut meta = serde_json::Map::new();
    for key in ["name", "namespace"] {
        if let Some(x) = v["metadata"].get(key) {
            meta.insert(key.into(), x.clone());
        }
    }
    out.insert("metadata".into(), Value::Object(meta));
    if let Some(s) = v.get("status") {
        out.insert("status".into(), s.clone());
    }
    Value::Object(out)
}

/// Every object to write, in a stable order: node states, the ConfigMap,
/// node labels, NADs, DaemonSets, then the statuses (policies, networks).
pub fn objects(r: &Rendered) -> Vec<Value> {
    let mut out = Vec::new();
    out.extend(r.node_states.iter().map(with_type));
    out.extend(r.config_map.iter().map(with_type));
    out.extend(r.node_labels.iter().map(with_type));
    out.extend(r.nads.iter().map(with_type));
    out.extend(r.daemonsets.iter().map(with_type));
    out.extend(r.policy_statuses.iter().map(|p| status_only(with_type(p))));
    out.extend(r.network_statuses.iter().map(|p| status_only(with_type(p))));
    out.extend(
        r.ib_network_statuses
            .iter()
            .map(|p| status_only(with_type(p))),
    );
    out.extend(
        r.ovs_network_statuses
            .iter()
            .map(|p| status_only(with_type(p))),
    );
    out
}

/// The YAML stream of [`objects`].
pub fn to_yaml(r: &Rendered) -> String {
    let mut text = String::new();
    for v in objects(r) {
        text.push_str("---\n");
        text.push_str(&serde_saphyr::to_string(&v).expect("values serialize as YAML"));
    }
    text
}

/// `render -f FILE…`: reads the streams (`-` is stdin), renders with the
/// settings from the environment, returns the YAML stream and the warnings.
pub fn render_files(
    files: &[std::path::PathBuf],
    settings: &crate::settings::Settings,
    now: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> Result<(String, Vec<String>), String> {
    use std::io::Read;
    let mut inputs = crate::render::Inputs::default();
    for f in files {
        let (text, name) = if f.as_os_str() == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("stdin: {e}"))?;
            (s, "stdin".to_string())
        } else {
            (
                std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?,
                f.display().to_string(),
            )
        };
        crate::render::input::read_stream(&mut inputs, &text, &name, &settings.namespace)
            .map_err(|e| e.to_string())?;
    }
    let nics = sriov_crds::nic_ids::NicIdList::builtin();
    let rendered = crate::render::render_all(&inputs, settings, &nics, now);
    Ok((to_yaml(&rendered), rendered.warnings))
}
