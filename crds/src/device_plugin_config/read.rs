//! Reading a config file as the Go device plugin does, into the typed model.
//!
//! Go's `encoding/json` fills the plugin's structs with keys matched
//! case-insensitively, `null` leaving a field as it is, and unknown keys
//! ignored. The same here, as a layer in front of the serde derive of the
//! model: each object's keys are mapped onto the model's spellings
//! ([`ResourceConfig::FIELDS`], [`NetDeviceSelectors::FIELDS`]), `null`
//! values dropped, unknown keys dropped with a warning, and then the object
//! is deserialized into the model type. Each `resourceList` entry is read
//! on its own, so a bad one is reported ([`EntryError`], naming it) and the
//! others stay usable; only a file that is not JSON, not an object, or
//! without a `resourceList` list is rejected whole ([`ReadError`]).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{
    DevicePluginConfig, DeviceType, NetDeviceSelectors, ResourceConfig, Selectors, valid_prefix,
    valid_resource_name,
};

/// Why a whole file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not JSON.
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// JSON, but not the config's shape.
    #[error("{0}")]
    Invalid(&'static str),
}

/// One usable `resourceList` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `resourceList[2] "intel_dpdk"`, for messages.
    pub label: String,
    /// The parsed `deviceType` (`netDevice` when absent or empty).
    pub device_type: DeviceType,
    /// The entry. `selectors` is always set, in the form the file used;
    /// selector keys that do not apply to the device type are dropped.
    pub resource: ResourceConfig,
}

/// Why one `resourceList` entry was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{label}: {message}")]
pub struct EntryError {
    /// `resourceList[2] "intel_dpdk"`, or `resourceList[2]` without a name.
    pub label: String,
    /// What is wrong with it.
    pub message: String,
}

/// Why one selector set was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A list entry of `selectors` that is not an object.
    #[error("selectors must be a JSON object")]
    NotObject,
    /// A selector value that is not usable.
    #[error("{key}: {message}")]
    Invalid {
        /// The selector, as spelled in [`NetDeviceSelectors::FIELDS`].
        key: &'static str,
        /// What is wrong with its value.
        message: String,
    },
}

/// Maps the keys of `obj` onto the spellings in `known` (ASCII
/// case-insensitively; a later key wins over an earlier one with the same
/// name) and drops `null` values, as `encoding/json` leaves a field alone
/// for `null`. Returns the keys that are none of `known`.
fn normalise(
    obj: &Map<String, Value>,
    known: &[&'static str],
) -> (Map<String, Value>, Vec<String>) {
    let mut out = Map::new();
    let mut unknown = Vec::new();
    for (k, v) in obj {
        if v.is_null() {
            continue;
        }
        match known.iter().find(|c| c.eq_ignore_ascii_case(k)) {
            Some(c) => {
                out.insert((*c).to_string(), v.clone());
            }
            None => unknown.push(k.clone()),
        }
    }
    (out, unknown)
}

/// Deserializes `map` into `T`; on failure, finds the key whose value is at
/// fault by deserializing `base` plus that key alone.
fn typed<T: DeserializeOwned>(
    map: Map<String, Value>,
    base: &Map<String, Value>,
) -> Result<T, (String, serde_json::Error)> {
    match serde_json::from_value(Value::Object(map.clone())) {
        Ok(t) => Ok(t),
        Err(whole) => {
            for (k, v) in &map {
                let mut probe = base.clone();
                probe.insert(k.clone(), v.clone());
                if let Err(e) = serde_json::from_value::<T>(Value::Object(probe)) {
                    return Err((k.clone(), e));
                }
            }
            Err((String::new(), whole))
        }
    }
}

/// What a key's value must be, for messages.
fn expected(key: &str) -> &'static str {
    match key {
        "resourceName" | "resourcePrefix" | "deviceType" | "vdpaType" => "must be a string",
        "excludeTopology" | "isRdma" | "needVhostNet" => "must be true or false",
        "additionalInfo" => "must map \"*\" or a PCI address to string pairs",
        _ => "must be a list of strings",
    }
}

/// Reads one selector object into the model, as the Go plugin reads it for
/// `device_type`: keys case-insensitive, `null` as absent, unknown keys and
/// keys the device type does not take ignored with a warning (`context`
/// names the entry in it).
pub fn read_selectors(
    v: &Value,
    device_type: DeviceType,
    context: &str,
) -> Result<NetDeviceSelectors, SelectorError> {
    let Value::Object(obj) = v else {
        return Err(SelectorError::NotObject);
    };
    let (mut map, unknown) = normalise(obj, NetDeviceSelectors::FIELDS);
    for k in unknown {
        tracing::warn!(entry = %context, key = %k, "unknown selector ignored");
    }
    map.retain(|k, _| {
        let takes = device_type.takes(k);
        if !takes {
            tracing::warn!(entry = %context, selector = %k, device_type = device_type.as_str(),
                "selector does not apply to this device type; ignored");
        }
        takes
    });
    typed(map, &Map::new()).map_err(|(key, e)| {
        let key = NetDeviceSelectors::FIELDS
            .iter()
            .find(|f| **f == key)
            .copied()
            .unwrap_or("selectors");
        SelectorError::Invalid {
            key,
            message: format!("{}: {e}", expected(key)),
        }
    })
}

/// Reads one `resourceList` entry.
fn read_entry(item: &Value, i: usize, origin: &str) -> Result<Entry, EntryError> {
    let mut label = format!("resourceList[{i}]");
    let err = |label: &str, message: String| EntryError {
        label: label.to_string(),
        message,
    };
    let Value::Object(obj) = item else {
        return Err(err(&label, "each resource must be a JSON object".into()));
    };
    let (mut map, unknown) = normalise(obj, ResourceConfig::FIELDS);
    let name = match map.get("resourceName") {
        None => return Err(err(&label, "\"resourceName\" is missing".into())),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(err(&label, "\"resourceName\" must be a string".into())),
    };
    label = format!("resourceList[{i}] {name:?}");
    for k in unknown {
        tracing::warn!(%origin, entry = %label, key = %k, "unknown key ignored");
    }
    if !valid_resource_name(&name) {
        return Err(err(
            &label,
            "invalid resourceName: use letters, digits, '_' and '-'".into(),
        ));
    }
    let selectors = map.remove("selectors");
    let base: Map<String, Value> = [("resourceName".to_string(), Value::String(name))]
        .into_iter()
        .collect();
    let mut resource: ResourceConfig = typed(map, &base)
        .map_err(|(key, e)| err(&label, format!("{key:?} {}: {e}", expected(&key))))?;
    if !resource.resource_prefix.is_empty() && !valid_prefix(&resource.resource_prefix) {
        return Err(err(
            &label,
            format!(
                "invalid resourcePrefix {:?}: use a DNS name such as intel.com",
                resource.resource_prefix
            ),
        ));
    }
    let device_type = DeviceType::parse(&resource.device_type).ok_or_else(|| {
        err(
            &label,
            format!(
                "unknown deviceType {:?}: use netDevice, accelerator or auxNetDevice",
                resource.device_type
            ),
        )
    })?;
    let context = format!("{origin}: {label}");
    let one = |index: usize, v: &Value| -> Result<NetDeviceSelectors, EntryError> {
        let s = read_selectors(v, device_type, &context)
            .map_err(|e| err(&label, format!("selectors[{index}]: {e}")))?;
        s.validate(device_type)
            .map_err(|m| err(&label, format!("selectors[{index}]: {m}")))?;
        Ok(s)
    };
    resource.selectors = Some(match selectors {
        None => {
            return Err(err(
                &label,
                "\"selectors\" is missing: give an object or a list of objects".into(),
            ));
        }
        Some(v @ Value::Object(_)) => Selectors::One(Box::new(one(0, &v)?)),
        Some(Value::Array(a)) if a.is_empty() => {
            return Err(err(&label, "\"selectors\" is an empty list".into()));
        }
        Some(Value::Array(a)) => Selectors::Many(
            a.iter()
                .enumerate()
                .map(|(index, v)| one(index, v))
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => {
            return Err(err(
                &label,
                "\"selectors\" must be an object or a list of objects".into(),
            ));
        }
    });
    Ok(Entry {
        label,
        device_type,
        resource,
    })
}

/// Reads a config file's text as the Go device plugin does (see the module
/// docs): each `resourceList` entry, in order, usable or why not. `origin`
/// names the file in warnings. Duplicate names are not looked at here: they
/// depend on the plugin's default prefix.
pub fn read(text: &str, origin: &str) -> Result<Vec<Result<Entry, EntryError>>, ReadError> {
    let root: Value = serde_json::from_str(text).map_err(ReadError::Json)?;
    let Value::Object(root) = root else {
        return Err(ReadError::Invalid(
            "the config must be a JSON object with \"resourceList\"",
        ));
    };
    let (top, unknown) = normalise(&root, DevicePluginConfig::FIELDS);
    for k in unknown {
        tracing::warn!(%origin, key = %k, "unknown top-level key ignored");
    }
    let list = match top.get("resourceList") {
        None => return Err(ReadError::Invalid("\"resourceList\" is missing")),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(ReadError::Invalid("\"resourceList\" must be a list")),
    };
    Ok(list
        .iter()
        .enumerate()
        .map(|(i, item)| read_entry(item, i, origin))
        .collect())
}
