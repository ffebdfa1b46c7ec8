//! Which PFs a policy's `nicSelector` selects: vendor, deviceID,
//! rootDevices, pfNames (range stripped) and netFilter, ANDed.

use crate::node_policy::SriovNetworkNicSelector;
use crate::node_state::InterfaceExt;
use crate::pf_names::PfSelector;

/// True when every set field of `selector` matches the PF. An empty selector matches nothing.
pub fn selects(selector: &SriovNetworkNicSelector, pf: &InterfaceExt) -> bool {
    if selector.is_empty() {
        return false;
    }
    if !selector.vendor.is_empty() && !selector.vendor.eq_ignore_ascii_case(&pf.vendor) {
        return false;
    }
    if !selector.device_id.is_empty() && !selector.device_id.eq_ignore_ascii_case(&pf.device_id) {
        return false;
    }
    if !selector.root_devices.is_empty()
        && !selector
            .root_devices
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&pf.pci_address))
    {
        return false;
    }
    if !selector.pf_names.is_empty() && pf_name_entry(selector, pf).is_none() {
        return false;
    }
    if !selector.net_filter.is_empty() && !net_filter_matches(&selector.net_filter, &pf.net_filter)
    {
        return false;
    }
    true
}

/// The `pfNames` entry naming this PF (by netdev name or one of its altNames), parsed.
/// Entries that do not parse are skipped (validation reports them).
pub fn pf_name_entry(selector: &SriovNetworkNicSelector, pf: &InterfaceExt) -> Option<PfSelector> {
    selector
        .pf_names
        .iter()
        .filter_map(|e| PfSelector::parse(e).ok())
        .find(|s| (!pf.name.is_empty() && s.name == pf.name) || pf.alt_names.contains(&s.name))
}

/// Compares `<key>:<value>` of a netFilter with a PF's reported netFilter
/// (whitespace around the parts is ignored, like upstream).
pub fn net_filter_matches(filter: &str, pf_value: &str) -> bool {
    fn split(s: &str) -> Option<(&str, &str)> {
        let (k, v) = s.trim().split_once(':')?;
        let (k, v) = (k.trim(), v.trim());
        (!k.is_empty() && !v.is_empty()).then_some((k, v))
    }
    match (split(filter), split(pf_value)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}
