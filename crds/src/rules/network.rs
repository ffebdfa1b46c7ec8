//! Rules of `SriovNetwork` and `SriovIBNetwork` (also in the CRD schema
//! where they need no other object), plus the JSON strings they carry.

use super::{RuleError, check_enum, check_range};
use crate::ib_network::SriovIBNetworkSpec;
use crate::network::SriovNetworkSpec;
use crate::rules::policy::check_resource_name;

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

/// All rules of a `SriovNetwork` spec.
pub fn check_network_spec(spec: &SriovNetworkSpec) -> Vec<RuleError> {
    let mut errors = Vec::new();
    if let Err(e) = check_resource_name("spec.resourceName", &spec.resource_name) {
        errors.push(e);
    }
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
    let vlan = spec.vlan.unwrap_or(0);
    if spec.vlan_qos.unwrap_or(0) != 0 && vlan == 0 {
        errors.push(RuleError::new(
            "spec.vlanQoS",
            format!(
                "vlanQoS {} needs a VLAN; set vlan (1-4094) or remove vlanQoS",
                spec.vlan_qos.unwrap_or(0)
            ),
        ));
    }
    if spec.vlan_proto.eq_ignore_ascii_case("802.1ad") && vlan == 0 {
        errors.push(RuleError::new(
            "spec.vlanProto",
            "vlanProto 802.1ad needs a VLAN; set vlan (1-4094) or remove vlanProto",
        ));
    }
    if let (Some(min), Some(max)) = (spec.min_tx_rate, spec.max_tx_rate)
        && max != 0
        && max < min
    {
        errors.push(RuleError::new(
            "spec.maxTxRate",
            format!("maxTxRate {max} is below minTxRate {min}; raise maxTxRate, lower minTxRate, or set maxTxRate 0 for no limit"),
        ));
    }
    check_capabilities(&mut errors, "spec.capabilities", &spec.capabilities);
    check_json_object(&mut errors, "spec.ipam", &spec.ipam);
    check_meta_plugins(&mut errors, "spec.metaPlugins", &spec.meta_plugins);
    errors
}

/// All rules of a `SriovIBNetwork` spec.
pub fn check_ib_network_spec(spec: &SriovIBNetworkSpec) -> Vec<RuleError> {
    let mut errors = Vec::new();
    if let Err(e) = check_resource_name("spec.resourceName", &spec.resource_name) {
        errors.push(e);
    }
    check_enum(
        &mut errors,
        "spec.linkState",
        &spec.link_state,
        &["auto", "enable", "disable"],
    );
    check_capabilities(&mut errors, "spec.capabilities", &spec.capabilities);
    check_json_object(&mut errors, "spec.ipam", &spec.ipam);
    check_meta_plugins(&mut errors, "spec.metaPlugins", &spec.meta_plugins);
    errors
}
