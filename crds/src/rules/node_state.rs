//! Rules of a `SriovNetworkNodeState` spec, checked by the config daemon
//! before it changes anything (the spec may come from an operator of another
//! version or be written by hand).

use super::{RuleError, check_enum};
use crate::node_policy::{DEVICE_TYPE_NETDEVICE, DEVICE_TYPE_VFIO_PCI};
use crate::node_state::SriovNetworkNodeStateSpec;
use crate::pf_names::VfRange;
use crate::rules::policy::check_pci_address;

/// All rules of a node state spec: PCI addresses, one entry per PF, VF group
/// ranges that parse, fit in `numVfs` and do not overlap, known device types.
pub fn check_node_state_spec(spec: &SriovNetworkNodeStateSpec) -> Vec<RuleError> {
    let mut errors = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, iface) in spec.interfaces.iter().enumerate() {
        let at = format!("spec.interfaces[{i}]");
        if let Err(e) = check_pci_address(&format!("{at}.pciAddress"), &iface.pci_address) {
            errors.push(e);
        }
        if !seen.insert(iface.pci_address.to_ascii_lowercase()) {
            errors.push(RuleError::new(
                format!("{at}.pciAddress"),
                format!(
                    "PF {} is listed twice; merge its VF groups into one entry",
                    iface.pci_address
                ),
            ));
        }
        if iface.num_vfs < 0 {
            errors.push(RuleError::new(
                format!("{at}.numVfs"),
                format!("{} is negative", iface.num_vfs),
            ));
        }
        if iface.mtu < 0 {
            errors.push(RuleError::new(
                format!("{at}.mtu"),
                format!("{} is negative", iface.mtu),
            ));
        }
        check_enum(
            &mut errors,
            &format!("{at}.eSwitchMode"),
            &iface.eswitch_mode,
            &["legacy", "switchdev"],
        );
        check_enum(
            &mut errors,
            &format!("{at}.linkType"),
            &iface.link_type,
            &["eth", "ETH", "ib", "IB"],
        );
        let mut ranges: Vec<(VfRange, &str)> = Vec::new();
        for (j, group) in iface.vf_groups.iter().enumerate() {
            let gat = format!("{at}.vfGroups[{j}]");
            check_enum(
                &mut errors,
                &format!("{gat}.deviceType"),
                &group.device_type,
                &[DEVICE_TYPE_NETDEVICE, DEVICE_TYPE_VFIO_PCI],
            );
            let range = match VfRange::parse(&group.vf_range) {
                Ok(r) => r,
                Err(e) => {
                    errors.push(RuleError::new(format!("{gat}.vfRange"), e.to_string()));
                    continue;
                }
            };
            if i64::from(range.end) >= i64::from(iface.num_vfs) {
                errors.push(RuleError::new(
                    format!("{gat}.vfRange"),
                    format!(
                        "VF range {range} of policy {} does not fit numVfs {} of PF {} (VF indexes 0-{}); raise numVfs or shrink the range",
                        group.policy_name,
                        iface.num_vfs,
                        iface.pci_address,
                        iface.num_vfs - 1
                    ),
                ));
            }
            if let Some((other, other_policy)) = ranges.iter().find(|(r, _)| r.overlaps(&range)) {
                errors.push(RuleError::new(
                    format!("{gat}.vfRange"),
                    format!(
                        "VF range {range} of policy {} overlaps VF range {other} of policy {other_policy} on PF {}; each VF belongs to one group",
                        group.policy_name, iface.pci_address
                    ),
                ));
            }
            ranges.push((range, group.policy_name.as_str()));
        }
    }
    errors
}
