//! "Never stricter than upstream at the CRD level" (issue 12, items 16-17):
//! a CR the Go operator's CRDs accept must be accepted by ours, or a cluster
//! that switches could not update the objects it already has.
//!
//! The corpus is in `tests/compat/crds/` at the repository root: upstream's
//! CRDs (`upstream-crds/`, copied from the Go repository) and example CRs
//! (`examples/`: upstream's documentation examples plus edge cases that
//! upstream's CRDs accept and only its webhook, or nothing, rejects).
//!
//! Three checks: every example passes upstream's schema and ours (a small
//! structural validator as the API server applies it: types, enums, ranges,
//! lengths, required, with unknown fields pruned; plus our CEL rules through
//! kube-cel); every constraint in our schemas is also in upstream's at the
//! same path (so no object upstream accepts can fail ours); and every
//! example decodes into our Rust types.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sriov_crds::crd_gen::all_crds;
use sriov_crds::manifests::fill_missing_spec;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/compat/crds")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

/// Kind -> openAPIV3Schema of upstream's CRDs.
fn upstream_schemas() -> BTreeMap<String, Value> {
    yaml_files(&corpus().join("upstream-crds"))
        .into_iter()
        .map(|path| {
            let crd: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (
                crd["spec"]["names"]["kind"].as_str().unwrap().to_string(),
                crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone(),
            )
        })
        .collect()
}

/// Kind -> openAPIV3Schema of ours.
fn our_schemas() -> BTreeMap<String, Value> {
    all_crds()
        .into_iter()
        .map(|g| (g.kind().to_string(), g.schema()))
        .collect()
}

fn examples() -> Vec<(String, Value)> {
    yaml_files(&corpus().join("examples"))
        .into_iter()
        .map(|path| {
            let doc: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                doc,
            )
        })
        .collect()
}

/// Structural validation as the API server does it after pruning: unknown
/// fields are dropped (not errors), nulls of non-nullable fields are dropped.
/// `pattern` is not evaluated (no regex engine here); the schema comparison
/// below guarantees ours has no pattern upstream lacks.
fn validate(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    if value.is_null() {
        return;
    }
    if schema["x-kubernetes-int-or-string"] == true {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            errors.push(format!("{path}: not an int or string"));
        }
        return;
    }
    if schema["x-kubernetes-preserve-unknown-fields"] == true && schema.get("type").is_none() {
        return;
    }
    let ty = schema["type"].as_str().unwrap_or("");
    let ok = match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => true,
    };
    if !ok {
        errors.push(format!("{path}: {value} is not of type {ty}"));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        errors.push(format!("{path}: {value} not in enum {allowed:?}"));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema["minimum"].as_f64()
            && n < min
        {
            errors.push(format!("{path}: {n} < minimum {min}"));
        }
        if let Some(max) = schema["maximum"].as_f64()
            && n > max
        {
            errors.push(format!("{path}: {n} > maximum {max}"));
        }
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as u64;
        if let Some(min) = schema["minLength"].as_u64()
            && len < min
        {
            errors.push(format!("{path}: shorter than {min}"));
        }
        if let Some(max) = schema["maxLength"].as_u64()
            && len > max
        {
            errors.push(format!("{path}: longer than {max}"));
        }
    }
    if let Some(obj) = value.as_object() {
        for r in schema["required"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap();
            if obj.get(r).is_none_or(Value::is_null) {
                errors.push(format!("{path}.{r}: required"));
            }
        }
        for (k, v) in obj {
            let sub = format!("{path}.{k}");
            if let Some(s) = schema["properties"].get(k) {
                validate(s, v, &sub, errors);
            } else if schema["additionalProperties"].is_object() {
                validate(&schema["additionalProperties"], v, &sub, errors);
            }
        }
    }
    if let Some(items) = value.as_array() {
        for (i, item) in items.iter().enumerate() {
            validate(&schema["items"], item, &format!("{path}[{i}]"), errors);
        }
    }
}

fn schema_errors(schema: &Value, object: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let mut body = object.clone();
    if let Some(o) = body.as_object_mut() {
        o.remove("metadata");
        o.remove("apiVersion");
        o.remove("kind");
    }
    validate(schema, &body, "", &mut errors);
    errors
}

#[test]
fn the_corpus_covers_every_kind() {
    let kinds: std::collections::BTreeSet<String> = examples()
        .iter()
        .map(|(_, d)| d["kind"].as_str().unwrap().to_string())
        .collect();
    let ours: std::collections::BTreeSet<String> = our_schemas().into_keys().collect();
    assert_eq!(kinds, ours);
    assert_eq!(
        upstream_schemas().into_keys().collect::<Vec<_>>(),
        ours.into_iter().collect::<Vec<_>>(),
        "the same seven kinds as upstream"
    );
}

#[test]
fn upstream_examples_pass_upstream_and_our_schemas() {
    let upstream = upstream_schemas();
    let ours = our_schemas();
    for (file, doc) in examples() {
        let kind = doc["kind"].as_str().unwrap();
        let up = schema_errors(&upstream[kind], &doc);
        assert!(
            up.is_empty(),
            "{file}: upstream's CRD rejects it, so it does not belong in the corpus: {up:?}"
        );
        let errors = schema_errors(&ours[kind], &doc);
        assert!(errors.is_empty(), "{file}: our CRD rejects it: {errors:?}");
        let cel = kube_cel::Validator::new().validate(&ours[kind], &doc, None);
        assert!(cel.is_ok(), "{file}: our CEL rules reject it: {cel:?}");
    }
}

#[test]
fn upstream_examples_decode_into_our_types() {
    use sriov_crds::*;
    for (file, mut doc) in examples() {
        let kind = doc["kind"].as_str().unwrap().to_string();
        fill_missing_spec(&kind, &mut doc);
        let result = match kind.as_str() {
            "SriovNetworkNodePolicy" => {
                serde_json::from_value::<SriovNetworkNodePolicy>(doc).map(|_| ())
            }
            "SriovNetworkNodeState" => {
                serde_json::from_value::<SriovNetworkNodeState>(doc).map(|_| ())
            }
            "SriovNetwork" => serde_json::from_value::<SriovNetwork>(doc).map(|_| ()),
            "SriovIBNetwork" => serde_json::from_value::<SriovIBNetwork>(doc).map(|_| ()),
            "OVSNetwork" => serde_json::from_value::<OVSNetwork>(doc).map(|_| ()),
            "SriovOperatorConfig" => serde_json::from_value::<SriovOperatorConfig>(doc).map(|_| ()),
            "SriovNetworkPoolConfig" => {
                serde_json::from_value::<SriovNetworkPoolConfig>(doc).map(|_| ())
            }
            other => panic!("{file}: kind {other}"),
        };
        assert!(result.is_ok(), "{file}: {result:?}");
    }
}

/// Every constraint of ours must be in upstream's schema at the same path,
/// equal or stricter there. The one exception: `format: int32`/`int64` on
/// integers (our Rust types are i32; no VF count, MTU, VLAN or rate in Mbps
/// comes near 2^31), listed in docs/differences.md.
fn compare(ours: &Value, up: &Value, path: &str, problems: &mut Vec<String>) {
    let Some(up) = up.as_object() else {
        // Upstream has no schema here: ours must not constrain anything.
        if ours.get("x-kubernetes-validations").is_some() || ours.get("pattern").is_some() {
            problems.push(format!("{path}: constraint where upstream has no field"));
        }
        return;
    };
    if up.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
        && ours.get("x-kubernetes-preserve-unknown-fields") != Some(&Value::Bool(true))
    {
        problems.push(format!(
            "{path}: upstream keeps unknown fields, ours prunes them"
        ));
    }
    let same = |k: &str| ours.get(k).is_none() || ours.get(k) == up.get(k);
    for k in [
        "pattern",
        "x-kubernetes-validations",
        "minItems",
        "maxItems",
    ] {
        if !same(k) {
            problems.push(format!(
                "{path}: {k} {} (upstream {:?})",
                ours[k],
                up.get(k)
            ));
        }
    }
    if let Some(t) = ours.get("type")
        && up.get("type").is_some_and(|u| u != t)
    {
        problems.push(format!("{path}: type {t} (upstream {:?})", up.get("type")));
    }
    if let Some(f) = ours.get("format")
        && Some(f) != up.get("format")
        && !(ours["type"] == "integer" && (f == "int32" || f == "int64"))
    {
        problems.push(format!("{path}: format {f}"));
    }
    if let Some(e) = ours["enum"].as_array() {
        match up.get("enum").and_then(Value::as_array) {
            Some(u) if u.iter().all(|x| e.contains(x)) => {}
            u => problems.push(format!("{path}: enum {e:?} (upstream {u:?})")),
        }
    }
    let looser = |k: &str, ours_is_looser: fn(f64, f64) -> bool| {
        let Some(o) = ours.get(k).and_then(Value::as_f64) else {
            return true;
        };
        up.get(k)
            .and_then(Value::as_f64)
            .is_some_and(|u| ours_is_looser(o, u))
    };
    if !looser("minimum", |o, u| o <= u) || !looser("minLength", |o, u| o <= u) {
        problems.push(format!("{path}: minimum/minLength stricter than upstream"));
    }
    if !looser("maximum", |o, u| o >= u) || !looser("maxLength", |o, u| o >= u) {
        problems.push(format!("{path}: maximum/maxLength stricter than upstream"));
    }
    let up_required: Vec<&Value> = up
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    for r in ours["required"].as_array().into_iter().flatten() {
        if !up_required.contains(&r) {
            problems.push(format!("{path}: requires {r}, upstream does not"));
        }
    }
    let empty = serde_json::Map::new();
    let up_props = up
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    if let Some(props) = ours["properties"].as_object() {
        for (k, v) in props {
            compare(
                v,
                up_props.get(k).unwrap_or(&Value::Null),
                &format!("{path}.{k}"),
                problems,
            );
        }
    }
    for (k, _) in up_props {
        if ours["properties"].get(k).is_none()
            && ours["x-kubernetes-preserve-unknown-fields"] != true
            && !["apiVersion", "kind", "metadata"].contains(&k.as_str())
        {
            problems.push(format!(
                "{path}.{k}: upstream's field is missing, it would be pruned"
            ));
        }
    }
    if ours.get("items").is_some() {
        compare(
            &ours["items"],
            up.get("items").unwrap_or(&Value::Null),
            &format!("{path}[]"),
            problems,
        );
    }
    if ours["additionalProperties"].is_object() {
        compare(
            &ours["additionalProperties"],
            up.get("additionalProperties").unwrap_or(&Value::Null),
            &format!("{path}{{}}"),
            problems,
        );
    }
}

#[test]
fn our_schemas_are_never_stricter_than_upstreams() {
    let upstream = upstream_schemas();
    let mut problems = Vec::new();
    for (kind, schema) in our_schemas() {
        compare(&schema, &upstream[&kind], &kind, &mut problems);
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn printer_columns_include_upstreams() {
    let upstream: BTreeMap<String, Vec<String>> = yaml_files(&corpus().join("upstream-crds"))
        .into_iter()
        .map(|path| {
            let crd: Value =
                serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            (
                crd["spec"]["names"]["kind"].as_str().unwrap().to_string(),
                crd["spec"]["versions"][0]["additionalPrinterColumns"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| c["name"].as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    for g in all_crds() {
        let ours: Vec<String> = g.crd.spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.clone())
            .collect();
        for col in &upstream[&g.crd.spec.names.kind] {
            assert!(
                ours.contains(col),
                "{}: no {col} column",
                g.crd.spec.names.kind
            );
        }
    }
}
