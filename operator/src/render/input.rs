//! Reading the objects the operator watches from YAML streams (render mode,
//! fixtures): Nodes, Namespaces, NADs, and the `sriovnetwork.openshift.io`
//! kinds; `List` objects are flattened.

use serde_json::Value;

use super::Inputs;

/// Why a stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Not YAML.
    #[error("{source_name}: not valid YAML: {message}")]
    Yaml {
        /// File name.
        source_name: String,
        /// Parser message.
        message: String,
    },
    /// A document does not fit its kind.
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
        /// What is wrong.
        message: String,
    },
    /// A kind the operator does not watch.
    #[error(
        "{source_name} document {document}: kind {kind:?} is not one the operator reads (Node, Namespace, NetworkAttachmentDefinition, SriovNetworkNodePolicy, SriovNetworkNodeState, SriovNetwork, SriovIBNetwork, OVSNetwork, SriovOperatorConfig, SriovNetworkPoolConfig, List)"
    )]
    Kind {
        /// File name.
        source_name: String,
        /// 1-based document number.
        document: usize,
        /// The kind found.
        kind: String,
    },
}

fn typed<T: serde::de::DeserializeOwned>(
    doc: &Value,
    source_name: &str,
    document: usize,
    kind: &str,
) -> Result<T, InputError> {
    serde_json::from_value(doc.clone()).map_err(|e| InputError::Invalid {
        source_name: source_name.to_string(),
        document,
        kind: kind.to_string(),
        name: doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        message: e.to_string(),
    })
}

fn add(
    inputs: &mut Inputs,
    doc: &Value,
    source_name: &str,
    document: usize,
) -> Result<(), InputError> {
    let kind = doc["kind"].as_str().unwrap_or_default().to_string();
    let k = kind.as_str();
    match k {
        "List" | "NodeList" | "NamespaceList" => {
            for item in doc["items"].as_array().into_iter().flatten() {
                add(inputs, item, source_name, document)?;
            }
        }
        "Node" => inputs.nodes.push(typed(doc, source_name, document, k)?),
        "Namespace" => inputs
            .namespaces
            .push(typed(doc, source_name, document, k)?),
        "NetworkAttachmentDefinition" => inputs.nads.push(typed(doc, source_name, document, k)?),
        "SriovNetworkNodePolicy" => inputs.policies.push(typed(doc, source_name, document, k)?),
        "SriovNetworkNodeState" => inputs
            .node_states
            .push(typed(doc, source_name, document, k)?),
        "SriovNetwork" => inputs.networks.push(typed(doc, source_name, document, k)?),
        "SriovIBNetwork" => inputs
            .ib_networks
            .push(typed(doc, source_name, document, k)?),
        "OVSNetwork" => inputs
            .ovs_networks
            .push(typed(doc, source_name, document, k)?),
        "SriovOperatorConfig" => {
            inputs
                .operator_configs
                .push(typed(doc, source_name, document, k)?)
        }
        "SriovNetworkPoolConfig" => inputs
            .pool_configs
            .push(typed(doc, source_name, document, k)?),
        _ => {
            return Err(InputError::Kind {
                source_name: source_name.to_string(),
                document,
                kind,
            });
        }
    }
    Ok(())
}

/// Adds the objects of one YAML stream to `inputs`. Objects without a
/// namespace that need one get `default_namespace` (the operator namespace).
pub fn read_stream(
    inputs: &mut Inputs,
    text: &str,
    source_name: &str,
    default_namespace: &str,
) -> Result<(), InputError> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| InputError::Yaml {
        source_name: source_name.to_string(),
        message: e.to_string(),
    })?;
    for (i, mut doc) in docs.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let namespaced = !matches!(doc["kind"].as_str(), Some("Node" | "Namespace" | "List"));
        if namespaced
            && doc["metadata"].is_object()
            && doc["metadata"]["namespace"]
                .as_str()
                .is_none_or(str::is_empty)
        {
            doc["metadata"]["namespace"] = Value::String(default_namespace.to_string());
        }
        add(inputs, &doc, source_name, i + 1)?;
    }
    Ok(())
}
