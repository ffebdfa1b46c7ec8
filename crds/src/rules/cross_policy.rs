//! Rules across the policies that apply to the same node: overlapping VF
//! ranges on one PF, the same root device in two policies, and inconsistent
//! externallyManaged / excludeTopology for one PF or resource name.

use kube::ResourceExt;

use super::RuleError;
use crate::node_policy::SriovNetworkNodePolicy;
use crate::pf_names::PfSelector;

/// Checks `policy` against `others` (policies selecting the same node; an
/// entry with the same name as `policy` is skipped — it is the old version).
pub fn check_against_policies(
    policy: &SriovNetworkNodePolicy,
    others: &[SriovNetworkNodePolicy],
) -> Vec<RuleError> {
    let mut errors = Vec::new();
    let name = policy.name_any();
    let spec = &policy.spec;
    for other in others {
        let other_name = other.name_any();
        if other_name == name {
            continue;
        }
        let o = &other.spec;
        for (i, entry) in spec.nic_selector.pf_names.iter().enumerate() {
            let Ok(cur) = PfSelector::parse(entry) else {
                continue;
            };
            for other_entry in &o.nic_selector.pf_names {
                let Ok(prev) = PfSelector::parse(other_entry) else {
                    continue;
                };
                if cur.name != prev.name {
                    continue;
                }
                let field = format!("spec.nicSelector.pfNames[{i}]");
                if spec.is_externally_managed() != o.is_externally_managed() {
                    errors.push(RuleError::new(
                        &field,
                        format!(
                            "externallyManaged is {} but policy {other_name} selects the same PF {} with externallyManaged {}; a PF is either managed by the operator or not, make both policies agree",
                            spec.is_externally_managed(),
                            cur.name,
                            o.is_externally_managed()
                        ),
                    ));
                }
                if let (Some(a), Some(b)) = (cur.range, prev.range)
                    && a.overlaps(&b)
                {
                    errors.push(RuleError::new(
                        &field,
                        format!(
                            "VF index range {entry:?} overlaps {other_entry:?} of policy {other_name} on PF {}; give each policy its own VFs (e.g. {}#{}-{})",
                            cur.name,
                            cur.name,
                            b.end + 1,
                            (b.end + 1).max(a.end)
                        ),
                    ));
                }
            }
        }
        for (i, dev) in spec.nic_selector.root_devices.iter().enumerate() {
            if o.nic_selector
                .root_devices
                .iter()
                .any(|d| d.eq_ignore_ascii_case(dev))
            {
                errors.push(RuleError::new(
                    format!("spec.nicSelector.rootDevices[{i}]"),
                    format!(
                        "root device {dev} is already selected by policy {other_name}; one PF can be split between policies only with pfNames ranges (<pf>#<first>-<last>)"
                    ),
                ));
            }
        }
        if spec.resource_name == o.resource_name {
            if spec.excludes_topology() != o.excludes_topology() {
                errors.push(RuleError::new(
                    "spec.excludeTopology",
                    format!(
                        "excludeTopology {} conflicts with policy {other_name} (excludeTopology {}) for the same resource {}; set it the same in both",
                        spec.excludes_topology(),
                        o.excludes_topology(),
                        spec.resource_name
                    ),
                ));
            }
            if spec.is_externally_managed() != o.is_externally_managed() {
                errors.push(RuleError::new(
                    "spec.externallyManaged",
                    format!(
                        "externallyManaged {} conflicts with policy {other_name} (externallyManaged {}) for the same resource {}; set it the same in both",
                        spec.is_externally_managed(),
                        o.is_externally_managed(),
                        spec.resource_name
                    ),
                ));
            }
        }
    }
    errors
}
