//! Reading YAML streams of `sriovnetwork.openshift.io/v1` objects (the
//! config daemon's standalone mode, tools, tests): every document is typed
//! by its `kind`, errors name the document, and fields the types do not know
//! (typos such as `numVFs`) are reported instead of being ignored silently.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{
    API_VERSION, OVSNetwork, SriovIBNetwork, SriovNetwork, SriovNetworkNodePolicy,
    SriovNetworkNodeState, SriovNetworkPoolConfig, SriovOperatorConfig,
};

/// One object of any of the seven kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum SriovObject {
    /// `SriovNetworkNodePolicy`.
    NodePolicy(Box<SriovNetworkNodePolicy>),
    /// `SriovNetworkNodeState`.
    NodeState(Box<SriovNetworkNodeState>),
    /// `SriovNetwork`.
    Network(Box<SriovNetwork>),
    /// `SriovIBNetwork`.
    IbNetwork(Box<SriovIBNetwork>),
    /// `OVSNetwork`.
    OvsNetwork(Box<OVSNetwork>),
    /// `SriovOperatorConfig`.
    OperatorConfig(Box<SriovOperatorConfig>),
    /// `SriovNetworkPoolConfig`.
    PoolConfig(Box<SriovNetworkPoolConfig>),
}

/// A parsed document.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedManifest {
    /// 1-based document number in the stream.
    pub document: usize,
    /// The object.
    pub object: SriovObject,
    /// JSON paths of fields the type does not know, e.g. `spec.numVFs`.
    pub unknown_fields: Vec<String>,
}

/// Why a manifest stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not YAML.
    #[error("{source_name}: not valid YAML: {message}")]
    Yaml {
        /// File name.
        source_name: String,
        /// Parser message (with line and column).
        message: String,
    },
    /// A document is not a mapping with apiVersion/kind.
    #[error(
        "{source_name} document {document}: not a Kubernetes object (expected a mapping with apiVersion and kind)"
    )]
    NotAnObject {
        /// File name.
        source_name: String,
        /// 1-based document number.
        document: usize,
    },
    /// Another API group/version.
    #[error("{source_name} document {document}: apiVersion {found:?} is not {API_VERSION}")]
    ApiVersion {
        /// File name.
        source_name: String,
        /// 1-based document number.
        document: usize,
        /// The apiVersion found.
        found: String,
    },
    /// A kind this crate does not know.
    #[error(
        "{source_name} document {document}: kind {kind:?} is not one of SriovNetworkNodePolicy, SriovNetworkNodeState, SriovNetwork, SriovIBNetwork, OVSNetwork, SriovOperatorConfig, SriovNetworkPoolConfig"
    )]
    Kind {
        /// File name.
        source_name: String,
        /// 1-based document number.
        document: usize,
        /// The kind found.
        kind: String,
    },
    /// The document does not fit the kind's type.
    #[error("{source_name} document {document} ({kind} {name:?}): {message}")]
    Invalid {
        /// File name.
        source_name: String,
        /// 1-based document number.
        document: usize,
        /// The kind.
        kind: String,
        /// metadata.name.
        name: String,
        /// What is wrong (missing field, wrong type…).
        message: String,
    },
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Paths present (and non-empty) in `input` but absent in `typed`.
fn unknown_fields(input: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (input, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get(k) {
                    Some(bv) => unknown_fields(v, bv, &p, out),
                    None if !is_empty_value(v) => out.push(p),
                    None => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                unknown_fields(x, y, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Upstream's Go types have `spec,omitempty`, so the API server keeps objects
/// without `spec` (and a Go client decodes them to a zero spec). Our types
/// need a `spec` with its required fields: when `spec` is absent or null this
/// puts in what Go's zero values would be (`resourceName: ""`, `numVfs: 0`,
/// …), in place. A `spec` that is there is left as it is (the CRD schema
/// requires those fields in it, as upstream's does).
pub fn fill_missing_spec(kind: &str, doc: &mut Value) {
    let Some(obj) = doc.as_object_mut() else {
        return;
    };
    if obj.get("spec").is_some_and(|s| !s.is_null()) {
        return;
    }
    let mut spec = serde_json::Map::new();
    let zeros: &[(&str, Value)] = match kind {
        "SriovNetworkNodePolicy" => &[
            ("resourceName", Value::String(String::new())),
            ("nodeSelector", Value::Object(Default::default())),
            ("numVfs", Value::from(0)),
            ("nicSelector", Value::Object(Default::default())),
        ],
        "SriovNetwork" | "SriovIBNetwork" | "OVSNetwork" => {
            &[("resourceName", Value::String(String::new()))]
        }
        _ => &[],
    };
    for (k, v) in zeros {
        spec.insert(k.to_string(), v.clone());
    }
    obj.insert("spec".into(), Value::Object(spec));
}

fn typed<T: Serialize + DeserializeOwned>(
    doc: &Value,
    source_name: &str,
    document: usize,
    kind: &str,
) -> Result<(T, Vec<String>), ManifestError> {
    let mut filled = doc.clone();
    fill_missing_spec(kind, &mut filled);
    let object: T = serde_json::from_value(filled).map_err(|e| ManifestError::Invalid {
        source_name: source_name.to_string(),
        document,
        kind: kind.to_string(),
        name: doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        message: {
            let m = e.to_string();
            if m.contains("invalid type: boolean") {
                format!("{m} (YAML reads unquoted on/off/yes/no/y/n/true/false as booleans; quote the value, e.g. \"on\")")
            } else {
                m
            }
        },
    })?;
    let back = serde_json::to_value(&object).expect("typed objects serialize");
    let mut unknown = Vec::new();
    unknown_fields(doc, &back, "", &mut unknown);
    Ok((object, unknown))
}

/// Parses a YAML stream (documents separated by `---`); empty documents are skipped.
pub fn parse_manifests(
    text: &str,
    source_name: &str,
) -> Result<Vec<ParsedManifest>, ManifestError> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| ManifestError::Yaml {
        source_name: source_name.to_string(),
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let document = i + 1;
        if doc.is_null() {
            continue;
        }
        let (Some(api_version), Some(kind)) = (doc["apiVersion"].as_str(), doc["kind"].as_str())
        else {
            return Err(ManifestError::NotAnObject {
                source_name: source_name.to_string(),
                document,
            });
        };
        if api_version != API_VERSION {
            return Err(ManifestError::ApiVersion {
                source_name: source_name.to_string(),
                document,
                found: api_version.to_string(),
            });
        }
        let (object, unknown_fields) = match kind {
            "SriovNetworkNodePolicy" => {
                let (o, u) = typed(doc, source_name, document, kind)?;
                (SriovObject::NodePolicy(Box::new(o)), u)
            }
            "SriovNetworkNodeState" => {
                let (o, u) = typed(doc, source_name, document, kind)?;
                (SriovObject::NodeState(Box::new(o)), u)
            }
            "SriovNetwork" => {
                let (o, u) = typed(doc, source_name, document, kind)?;
                (SriovObject::Network(Box::new(o)), u)
            }
            "SriovIBNetwork" => {
                let (o, u) = typed(doc, source_name, document, kind)?;
                (SriovObject::IbNetwork(Box::new(o)), u)
            }
            "OVSNetwork" => {
                let (o, u) = typed(doc, source_name, document, kind)?;
                (SriovObject::OvsNetwork(Box::new(o)), u)
            }
            "SriovOperatorConfig" => {
                let (o, u) = typed(doc, source_name, document, kind)?;
                (SriovObject::OperatorConfig(Box::new(o)), u)
            }
            "SriovNetworkPoolConfig" => {
                let (o, u) = typed(doc, source_name, document, kind)?;
                (SriovObject::PoolConfig(Box::new(o)), u)
            }
            other => {
                return Err(ManifestError::Kind {
                    source_name: source_name.to_string(),
                    document,
                    kind: other.to_string(),
                });
            }
        };
        out.push(ParsedManifest {
            document,
            object,
            unknown_fields,
        });
    }
    Ok(out)
}

/// The policies of a manifest stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyManifests {
    /// The `SriovNetworkNodePolicy` objects, in stream order.
    pub policies: Vec<SriovNetworkNodePolicy>,
    /// `(policy name, unknown field paths)` for policies with unknown fields.
    pub unknown_fields: Vec<(String, Vec<String>)>,
}

/// The `SriovNetworkNodePolicy` objects of a stream (other kinds are skipped).
pub fn policies_from_manifests(
    text: &str,
    source_name: &str,
) -> Result<PolicyManifests, ManifestError> {
    let mut out = PolicyManifests::default();
    for m in parse_manifests(text, source_name)? {
        if let SriovObject::NodePolicy(p) = m.object {
            if !m.unknown_fields.is_empty() {
                out.unknown_fields.push((
                    p.metadata.name.clone().unwrap_or_default(),
                    m.unknown_fields,
                ));
            }
            out.policies.push(*p);
        }
    }
    Ok(out)
}
