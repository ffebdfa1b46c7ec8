//! Rules of `SriovNetwork`, `SriovIBNetwork` and `OVSNetwork`.
//!
//! Upstream rejects only what its CRD schema rejects (enums, ranges) and,
//! in the webhook, a `networkNamespace` on a network outside the operator
//! namespace. Everything else here (the JSON strings, VLAN/QoS/rate
//! combinations, the resource name syntax) upstream accepts, so it is
//! reported as admission *warnings*: `*_warnings` functions.

use super::{RuleError, check_enum, check_range};
use crate::ib_network::SriovIBNetworkSpec;
use crate::network::SriovNetworkSpec;
use crate::ovs_network::OVSNetworkSpec;
use crate::rules::policy::check_resource_name;

/// Upstream's webhook rule for every network kind: `networkNamespace` may be
/// set only on a network in the operator namespace (elsewhere the NAD goes
/// to the network's own namespace).
pub fn check_network_namespace(
    namespace: &str,
    network_namespace: &str,
    operator_namespace: &str,
) -> Result<(), RuleError> {
    if network_namespace.is_empty() || namespace == operator_namespace {
        return Ok(());
    }
    Err(RuleError::new(
        "spec.networkNamespace",
        format!(
            "{network_namespace:?} can't be set on a network in namespace {namespace}: only networks in the operator namespace {operator_namespace} may name another namespace; remove networkNamespace (the NetworkAttachmentDefinition is created in {namespace}) or create the network in {operator_namespace}"
        ),
    ))
}

/// Checks a JSON string field that must hold one JSON object.
fn check_json_object(errors: &mut Vec<RuleError>, field: &str, text: &str) {
    if text.trim().is_empty() {
        return;
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(_)) => {}
        Ok(_) => errors.push(RuleError::new(
            field,
            "must be a JSON object, e.g. {\"type\": \"host-local\", \"subnet\": \"10.56.217.0/24\"}",
        )),
        Err(e) => errors.push(RuleError::new(field, format!("is not valid JSON: {e}"))),
    }
}

/// Checks `capabilities`: a JSON object of booleans, e.g. `{"mac": true}`.
fn check_capabilities(errors: &mut Vec<RuleError>, field: &str, text: &str) {
    if text.trim().is_empty() {
        return;
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => {
            for (k, v) in &map {
                if !v.is_boolean() {
                    errors.push(RuleError::new(
                        field,
                        format!("capability {k:?} must be true or false, e.g. {{\"{k}\": true}}"),
                    ));
                }
            }
        }
        Ok(_) => errors.push(RuleError::new(
            field,
            "must be a JSON object of booleans, e.g. {\"mac\": true, \"ips\": true}",
        )),
        Err(e) => errors.push(RuleError::new(field, format!("is not valid JSON: {e}"))),
    }
}

/// Checks `metaPlugins`: one or more JSON objects separated by commas (they are
/// spliced into the CNI plugin list after the sriov plugin).
fn check_meta_plugins(errors: &mut Vec<RuleError>, field: &str, text: &str) {
    if text.trim().is_empty() {
        return;
    }
    match serde_json::from_str::<serde_json::Value>(&format!("[{text}]")) {
        Ok(serde_json::Value::Array(items)) if items.iter().all(|v| v.get("type").is_some_and(|t| t.is_string())) => {}
        Ok(_) => errors.push(RuleError::new(
            field,
            "must be one or more CNI plugin objects with a \"type\", separated by commas, e.g. {\"type\": \"tuning\"}",
        )),
        Err(e) => errors.push(RuleError::new(
            field,
            format!("is not one or more comma-separated JSON objects: {e}"),
        )),
    }
}

/// What upstream's CRD schema rejects in a `SriovNetwork` spec (enums and
/// ranges); for tools without an API server (render mode).
pub fn check_network_spec(spec: &SriovNetworkSpec) -> Vec<RuleError> {
    let mut errors = Vec::new();
    check_range(&mut errors, "spec.vlan", spec.vlan, 0, Some(4094));
    check_range(&mut errors, "spec.vlanQoS", spec.vlan_qos, 0, Some(7));
    check_range(&mut errors, "spec.minTxRate", spec.min_tx_rate, 0, None);
    check_range(&mut errors, "spec.maxTxRate", spec.max_tx_rate, 0, None);
    check_enum(
        &mut errors,
        "spec.vlanProto",
        &spec.vlan_proto,
        &["802.1q", "802.1Q", "802.1ad", "802.1AD"],
    );
    check_enum(
        &mut errors,
        "spec.spoofChk",
        &spec.spoof_chk,
        &["on", "off"],
    );
    check_enum(&mut errors, "spec.trust", &spec.trust, &["on", "off"]);
    check_enum(
        &mut errors,
        "spec.linkState",
        &spec.link_state,
        &["auto", "enable", "disable"],
    );
    check_enum(
        &mut errors,
        "spec.logLevel",
        &spec.log_level,
        &["panic", "error", "warning", "info", "debug"],
    );
    errors
}

fn resource_name_warning(warnings: &mut Vec<RuleError>, name: &str) {
    if let Err(e) = check_resource_name("spec.resourceName", name) {
        warnings.push(RuleError::new(
            e.field,
            format!(
                "{}; no policy can create such a resource, so pods using this network can't be scheduled",
                e.message
            ),
        ));
    }
}

/// What upstream accepts in a `SriovNetwork` but will not work: admission
/// warnings. VLAN QoS or 802.1ad without a VLAN, `maxTxRate` below
/// `minTxRate`, JSON strings that are not what the CNI expects, a resource
/// name no policy can have.
pub fn network_warnings(spec: &SriovNetworkSpec) -> Vec<RuleError> {
    let mut warnings = Vec::new();
    resource_name_warning(&mut warnings, &spec.resource_name);
    let vlan = spec.vlan.unwrap_or(0);
    if spec.vlan_qos.unwrap_or(0) != 0 && vlan == 0 {
        warnings.push(RuleError::new(
            "spec.vlanQoS",
            format!(
                "vlanQoS {} needs a VLAN; set vlan (1-4094) or remove vlanQoS",
                spec.vlan_qos.unwrap_or(0)
            ),
        ));
    }
    if spec.vlan_proto.eq_ignore_ascii_case("802.1ad") && vlan == 0 {
        warnings.push(RuleError::new(
            "spec.vlanProto",
            "vlanProto 802.1ad needs a VLAN; set vlan (1-4094) or remove vlanProto",
        ));
    }
    if let (Some(min), Some(max)) = (spec.min_tx_rate, spec.max_tx_rate)
        && max != 0
        && max < min
    {
        warnings.push(RuleError::new(
            "spec.maxTxRate",
            format!("maxTxRate {max} is below minTxRate {min}; raise maxTxRate, lower minTxRate, or set maxTxRate 0 for no limit"),
        ));
    }
    check_capabilities(&mut warnings, "spec.capabilities", &spec.capabilities);
    check_json_object(&mut warnings, "spec.ipam", &spec.ipam);
    check_meta_plugins(&mut warnings, "spec.metaPlugins", &spec.meta_plugins);
    warnings
}

/// What upstream's CRD schema rejects in a `SriovIBNetwork` spec.
pub fn check_ib_network_spec(spec: &SriovIBNetworkSpec) -> Vec<RuleError> {
    let mut errors = Vec::new();
    check_enum(
        &mut errors,
        "spec.linkState",
        &spec.link_state,
        &["auto", "enable", "disable"],
    );
    errors
}

/// Admission warnings for a `SriovIBNetwork` (see [`network_warnings`]).
pub fn ib_network_warnings(spec: &SriovIBNetworkSpec) -> Vec<RuleError> {
    let mut warnings = Vec::new();
    resource_name_warning(&mut warnings, &spec.resource_name);
    check_capabilities(&mut warnings, "spec.capabilities", &spec.capabilities);
    check_json_object(&mut warnings, "spec.ipam", &spec.ipam);
    check_meta_plugins(&mut warnings, "spec.metaPlugins", &spec.meta_plugins);
    warnings
}

/// What upstream's CRD schema rejects in an `OVSNetwork` spec: VLAN ids above 4095.
pub fn check_ovs_network_spec(spec: &OVSNetworkSpec) -> Vec<RuleError> {
    let mut errors = Vec::new();
    let mut vlan = |field: String, v: Option<i64>| {
        if let Some(v) = v
            && !(0..=4095).contains(&v)
        {
            errors.push(RuleError::new(
                field,
                format!("{v} is out of range; allowed: 0-4095"),
            ));
        }
    };
    vlan("spec.vlan".into(), spec.vlan);
    for (i, t) in spec.trunk.iter().enumerate() {
        vlan(format!("spec.trunk[{i}].minID"), t.min_id);
        vlan(format!("spec.trunk[{i}].maxID"), t.max_id);
        vlan(format!("spec.trunk[{i}].id"), t.id);
    }
    errors
}

/// Admission warnings for an `OVSNetwork` (see [`network_warnings`]); also a
/// trunk range with `minID` above `maxID`.
pub fn ovs_network_warnings(spec: &OVSNetworkSpec) -> Vec<RuleError> {
    let mut warnings = Vec::new();
    resource_name_warning(&mut warnings, &spec.resource_name);
    for (i, t) in spec.trunk.iter().enumerate() {
        if let (Some(min), Some(max)) = (t.min_id, t.max_id)
            && min > max
        {
            warnings.push(RuleError::new(
                format!("spec.trunk[{i}]"),
                format!("minID {min} is above maxID {max}; the range is empty"),
            ));
        }
    }
    check_capabilities(&mut warnings, "spec.capabilities", &spec.capabilities);
    check_json_object(&mut warnings, "spec.ipam", &spec.ipam);
    check_meta_plugins(&mut warnings, "spec.metaPlugins", &spec.meta_plugins);
    warnings
}
