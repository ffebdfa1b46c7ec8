//! The standalone mode's input: a YAML stream of `SriovNetworkNodePolicy`
//! objects (the same manifests as in a cluster) and the node's labels.
//!
//! Documents of other kinds are skipped (a manifest bundle may hold
//! networks too); every policy is checked with the same static rules the
//! operator's webhook applies, and any violation rejects the whole file
//! before anything is changed on the node.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kube::ResourceExt;
use serde_json::Value;
use sriov_crds::SriovNetworkNodePolicy;
use sriov_crds::nic_ids::NicIdList;
use sriov_crds::rules::policy::{NicCheck, check_policy_spec};

/// Why the policies could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    /// The file could not be read.
    #[error("reading policies from {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not YAML.
    #[error("{origin}: not a valid YAML stream: {message}")]
    Yaml { origin: String, message: String },
    /// A document of kind SriovNetworkNodePolicy that does not fit the type.
    #[error("{origin} document {index} (policy {name:?}): {message}")]
    Policy {
        origin: String,
        index: usize,
        name: String,
        message: String,
    },
    /// A policy that violates the rules.
    #[error("{origin}: policy {name:?} is not valid: {errors}; fix it, nothing was changed")]
    Invalid {
        origin: String,
        name: String,
        errors: String,
    },
    /// Two policies with one name.
    #[error("{origin}: two policies are named {name:?}; policy names must be unique")]
    Duplicate { origin: String, name: String },
    /// A `--node-labels` entry without `=`.
    #[error("node label {entry:?} is not key=value (use --node-labels k=v,k2=v2)")]
    Label { entry: String },
}

/// Reads and checks the policies of a YAML stream file.
pub fn read_policies(path: &Path) -> Result<Vec<SriovNetworkNodePolicy>, PolicyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicyFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_policies(&text, &path.display().to_string())
}

/// Parses and checks the policies of a YAML stream; `origin` names it in errors.
pub fn parse_policies(
    text: &str,
    origin: &str,
) -> Result<Vec<SriovNetworkNodePolicy>, PolicyFileError> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| PolicyFileError::Yaml {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
    let nics = NicIdList::builtin();
    let mut out: Vec<SriovNetworkNodePolicy> = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
        if kind != "SriovNetworkNodePolicy" {
            tracing::debug!(
                origin,
                document = i + 1,
                kind,
                "skipping a document of another kind"
            );
            continue;
        }
        let name = doc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let policy: SriovNetworkNodePolicy =
            serde_json::from_value(doc).map_err(|e| PolicyFileError::Policy {
                origin: origin.to_string(),
                index: i + 1,
                name: name.clone(),
                message: e.to_string(),
            })?;
        if name.is_empty() {
            return Err(PolicyFileError::Invalid {
                origin: origin.to_string(),
                name,
                errors: "metadata.name: missing; every policy needs a name".into(),
            });
        }
        let errors = check_policy_spec(&policy.spec, &nics, NicCheck::KnownOnly);
        if !errors.is_empty() {
            return Err(PolicyFileError::Invalid {
                origin: origin.to_string(),
                name,
                errors: sriov_crds::rules::join(&errors),
            });
        }
        if out.iter().any(|p| p.name_any() == name) {
            return Err(PolicyFileError::Duplicate {
                origin: origin.to_string(),
                name,
            });
        }
        out.push(policy);
    }
    Ok(out)
}

/// Parses `k=v,k2=v2` (empty string: no labels).
pub fn parse_node_labels(s: &str) -> Result<BTreeMap<String, String>, PolicyFileError> {
    let mut labels = BTreeMap::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((k, v)) = entry.split_once('=') else {
            return Err(PolicyFileError::Label {
                entry: entry.to_string(),
            });
        };
        if k.trim().is_empty() {
            return Err(PolicyFileError::Label {
                entry: entry.to_string(),
            });
        }
        labels.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = r#"
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {name: a, namespace: x}
spec:
  resourceName: res_a
  numVfs: 4
  nodeSelector: {}
  nicSelector: {vendor: "8086", pfNames: [ens1f0]}
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetwork
metadata: {name: net}
spec: {resourceName: res_a}
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {name: b}
spec:
  resourceName: res_b
  numVfs: 2
  nodeSelector: {}
  nicSelector: {pfNames: [ens1f1]}
  deviceType: vfio-pci
"#;

    #[test]
    fn reads_policies_and_skips_other_kinds() {
        let p = parse_policies(TWO, "t.yaml").unwrap();
        let names: Vec<_> = p.iter().map(|p| p.name_any()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(p[1].spec.device_type, "vfio-pci");
    }

    #[test]
    fn invalid_policy_names_itself_and_the_field() {
        let bad = TWO.replace("numVfs: 2", "numVfs: -1");
        let e = parse_policies(&bad, "t.yaml").unwrap_err().to_string();
        assert!(e.contains("policy \"b\""), "{e}");
        assert!(e.contains("spec.numVfs"), "{e}");
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let dup = TWO.replace("name: b", "name: a");
        let e = parse_policies(&dup, "t.yaml").unwrap_err().to_string();
        assert!(e.contains("two policies are named \"a\""), "{e}");
    }

    #[test]
    fn bad_yaml_says_where() {
        let e = parse_policies("a: [", "p.yaml").unwrap_err().to_string();
        assert!(e.starts_with("p.yaml: not a valid YAML stream"), "{e}");
    }

    #[test]
    fn node_labels() {
        let l = parse_node_labels("a=1, b = 2,,c=").unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l["b"], "2");
        assert_eq!(l["c"], "");
        assert!(parse_node_labels("nolabel").is_err());
        assert!(parse_node_labels("=x").is_err());
    }
}
