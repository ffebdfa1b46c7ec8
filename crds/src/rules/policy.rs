//! Rules of a `SriovNetworkNodePolicy` that need no other object (the NIC
//! list aside): syntax, ranges, and combinations of fields.

use super::{RuleError, check_enum, check_range};
use crate::nic_ids::NicIdList;
use crate::node_policy::{DEVICE_TYPE_NETDEVICE, DEVICE_TYPE_VFIO_PCI, SriovNetworkNodePolicySpec};
use crate::pf_names::PfSelector;

/// Longest allowed resource name.
pub const RESOURCE_NAME_MAX_LEN: usize = 63;

/// Checks a device plugin resource name:
/// `^[a-zA-Z0-9]([a-zA-Z0-9_-]*[a-zA-Z0-9])?$`, at most 63 characters.
pub fn check_resource_name(field: &str, name: &str) -> Result<(), RuleError> {
    const RULE: &str = "use letters, digits, '_' and '-', starting and ending with a letter or digit, at most 63 characters (e.g. intel_nics)";
    if name.is_empty() {
        return Err(RuleError::new(
            field,
            format!("resource name is empty; {RULE}"),
        ));
    }
    if name.len() > RESOURCE_NAME_MAX_LEN {
        return Err(RuleError::new(
            field,
            format!(
                "resource name {name:?} is {} characters long; {RULE}",
                name.len()
            ),
        ));
    }
    if let Some((pos, c)) = name
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(RuleError::new(
            field,
            format!("resource name {name:?} contains {c:?} at position {pos}; {RULE}"),
        ));
    }
    let first = name.chars().next().unwrap_or('a');
    let last = name.chars().last().unwrap_or('a');
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return Err(RuleError::new(
            field,
            format!("resource name {name:?} must start and end with a letter or digit; {RULE}"),
        ));
    }
    Ok(())
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// Checks a PCI address in the kernel's form `dddd:bb:dd.f`, e.g. `0000:86:00.0`.
pub fn check_pci_address(field: &str, addr: &str) -> Result<(), RuleError> {
    let ok = (|| {
        let (domain, rest) = addr.split_once(':')?;
        let (bus, rest) = rest.split_once(':')?;
        let (dev, func) = rest.split_once('.')?;
        let f_ok = func.len() == 1 && matches!(func.as_bytes()[0], b'0'..=b'7');
        (is_hex(domain, 4) && is_hex(bus, 2) && is_hex(dev, 2) && f_ok).then_some(())
    })()
    .is_some();
    if ok {
        Ok(())
    } else {
        Err(RuleError::new(
            field,
            format!(
                "{addr:?} is not a PCI address; write it as the kernel does, domain:bus:device.function, e.g. 0000:86:00.0"
            ),
        ))
    }
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| is_hex(p, n))
}

/// Checks the `netFilter` syntax: `openstack/NetworkID:<uuid>` or `aws/NetworkID:<id>`.
pub fn check_net_filter(field: &str, filter: &str) -> Result<(), RuleError> {
    const FORMS: &str = "use openstack/NetworkID:<network uuid> (e.g. openstack/NetworkID:3e1a55a4-2f0c-4b1d-9c64-5e5a1f0b8a11) or aws/NetworkID:<subnet id>";
    let Some((key, value)) = filter.split_once(':') else {
        return Err(RuleError::new(
            field,
            format!("netFilter {filter:?} has no ':'; {FORMS}"),
        ));
    };
    match key {
        "openstack/NetworkID" if is_uuid(value) => Ok(()),
        "openstack/NetworkID" => Err(RuleError::new(
            field,
            format!("netFilter {filter:?}: {value:?} is not a UUID; {FORMS}"),
        )),
        "aws/NetworkID"
            if !value.is_empty()
                && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            Ok(())
        }
        "aws/NetworkID" => Err(RuleError::new(
            field,
            format!("netFilter {filter:?}: {value:?} is not an AWS network id; {FORMS}"),
        )),
        _ => Err(RuleError::new(
            field,
            format!("netFilter {filter:?}: unknown filter {key:?}; {FORMS}"),
        )),
    }
}

/// How strictly NIC models are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NicCheck {
    /// vendor/deviceID must be in the NIC list (the default, like upstream).
    #[default]
    KnownOnly,
    /// Accept any NIC (upstream `DEV_MODE=TRUE`).
    AnyNic,
}

/// All static rules of a policy spec. `nics` is the supported NIC list.
pub fn check_policy_spec(
    spec: &SriovNetworkNodePolicySpec,
    nics: &NicIdList,
    nic_check: NicCheck,
) -> Vec<RuleError> {
    let mut errors = Vec::new();
    if let Err(e) = check_resource_name("spec.resourceName", &spec.resource_name) {
        errors.push(e);
    }
    check_range(&mut errors, "spec.priority", spec.priority, 0, Some(99));
    check_range(&mut errors, "spec.mtu", spec.mtu, 1, None);
    if spec.num_vfs < 0 {
        errors.push(RuleError::new(
            "spec.numVfs",
            format!(
                "{} is negative; set the number of VFs per PF (1 or more)",
                spec.num_vfs
            ),
        ));
    } else if spec.num_vfs == 0 {
        errors.push(RuleError::new(
            "spec.numVfs",
            "0 is not allowed: a policy must create at least one VF; delete the policy to remove its VFs",
        ));
    }
    check_enum(
        &mut errors,
        "spec.deviceType",
        &spec.device_type,
        &[DEVICE_TYPE_NETDEVICE, DEVICE_TYPE_VFIO_PCI],
    );
    check_enum(
        &mut errors,
        "spec.linkType",
        &spec.link_type,
        &["eth", "ETH", "ib", "IB"],
    );
    check_enum(
        &mut errors,
        "spec.eSwitchMode",
        &spec.eswitch_mode,
        &["legacy", "switchdev"],
    );
    check_enum(
        &mut errors,
        "spec.vdpaType",
        &spec.vdpa_type,
        &["virtio", "vhost"],
    );
    if let Some(b) = &spec.bridge
        && let Some(ovs) = &b.ovs
        && let Some(br) = &ovs.bridge
    {
        check_enum(
            &mut errors,
            "spec.bridge.ovs.bridge.failMode",
            &br.fail_mode,
            &["secure", "standalone"],
        );
    }

    check_nic_selector(spec, nics, nic_check, &mut errors);

    // Combinations (upstream's webhook rules; not in the CRD schema, which
    // is never stricter than upstream's).
    if spec.effective_device_type() == DEVICE_TYPE_VFIO_PCI && spec.rdma() {
        errors.push(RuleError::new(
            "spec.isRdma",
            "'deviceType: vfio-pci' conflicts with 'isRdma: true'; set deviceType to netdevice (RDMA on the host) or isRdma to false (vfio-pci in a VM)",
        ));
    }
    if spec.is_switchdev()
        && !spec.link_type.is_empty()
        && !spec.link_type.eq_ignore_ascii_case("eth")
    {
        errors.push(RuleError::new(
            "spec.eSwitchMode",
            format!(
                "'eSwitchMode: switchdev' can be used only with ethernet links, but linkType is {:?}; set linkType to eth or use eSwitchMode legacy",
                spec.link_type
            ),
        ));
    }
    if !spec.vdpa_type.is_empty() {
        if spec.effective_device_type() != DEVICE_TYPE_NETDEVICE {
            errors.push(RuleError::new(
                "spec.vdpaType",
                format!(
                    "'deviceType: {}' conflicts with 'vdpaType: {}'; set deviceType to netdevice or remove vdpaType",
                    spec.effective_device_type(),
                    spec.vdpa_type
                ),
            ));
        }
        if !spec.is_switchdev() {
            errors.push(RuleError::new(
                "spec.vdpaType",
                "vdpa requires the device to be configured in switchdev mode; set 'eSwitchMode: switchdev'",
            ));
        }
    }
    if spec.has_bridge() {
        if !spec.is_switchdev() {
            errors.push(RuleError::new(
                "spec.bridge",
                "software bridge management requires the device to be configured in switchdev mode; set 'eSwitchMode: switchdev'",
            ));
        }
        if spec.is_externally_managed() {
            errors.push(RuleError::new(
                "spec.bridge",
                "software bridge management can't be used when the device is externally managed; remove bridge or externallyManaged",
            ));
        }
    }
    if spec
        .eswitch_params
        .as_ref()
        .is_some_and(|p| p.multiport.unwrap_or(false))
        && !spec.is_switchdev()
    {
        errors.push(RuleError::new(
            "spec.eSwitchParams.multiport",
            "multiport requires the device to be configured in switchdev mode; set 'eSwitchMode: switchdev'",
        ));
    }
    errors
}

fn check_nic_selector(
    spec: &SriovNetworkNodePolicySpec,
    nics: &NicIdList,
    nic_check: NicCheck,
    errors: &mut Vec<RuleError>,
) {
    let sel = &spec.nic_selector;
    if sel.is_empty() {
        errors.push(RuleError::new(
            "spec.nicSelector",
            "nicSelector is empty: set at least one of vendor, deviceID, pfNames, rootDevices or netFilter",
        ));
        return;
    }
    let mut ids_ok = true;
    if nic_check == NicCheck::KnownOnly && !sel.vendor.is_empty() && !is_hex(&sel.vendor, 4) {
        ids_ok = false;
        errors.push(RuleError::new(
            "spec.nicSelector.vendor",
            format!(
                "{:?} is not a PCI vendor id; use 4 hex digits without 0x, e.g. \"8086\"",
                sel.vendor
            ),
        ));
    }
    if nic_check == NicCheck::KnownOnly && !sel.device_id.is_empty() && !is_hex(&sel.device_id, 4) {
        ids_ok = false;
        errors.push(RuleError::new(
            "spec.nicSelector.deviceID",
            format!(
                "{:?} is not a PCI device id; use 4 hex digits without 0x, e.g. \"158b\"",
                sel.device_id
            ),
        ));
    }
    if ids_ok && nic_check == NicCheck::KnownOnly {
        let vendor = sel.vendor.to_ascii_lowercase();
        let device = sel.device_id.to_ascii_lowercase();
        if !vendor.is_empty() {
            if !nics.is_known_vendor(&vendor) {
                errors.push(RuleError::new(
                    "spec.nicSelector.vendor",
                    format!("vendor {vendor} is not supported: no NIC of this vendor is in the supported NIC list; add the NIC to the supported-nic-ids list or enable dev mode"),
                ));
            } else if !device.is_empty() && !nics.is_known_pf(&vendor, &device) {
                errors.push(RuleError::new(
                    "spec.nicSelector.deviceID",
                    format!("vendor/device {vendor}/{device} is not supported: not a PF in the supported NIC list; check the PF device id (lspci -nn) or add the NIC to the supported-nic-ids list"),
                ));
            }
        } else if !device.is_empty() && !nics.is_known_pf_device(&device) {
            errors.push(RuleError::new(
                "spec.nicSelector.deviceID",
                format!("device {device} is not supported: not a PF device id in the supported NIC list; check the PF device id (lspci -nn) or add the NIC to the supported-nic-ids list"),
            ));
        }
    }
    for (i, entry) in sel.pf_names.iter().enumerate() {
        let field = format!("spec.nicSelector.pfNames[{i}]");
        match PfSelector::parse(entry) {
            Err(e) => errors.push(RuleError::new(field, e.to_string())),
            Ok(pf) => {
                if let Some(r) = pf.range
                    && spec.num_vfs > 0
                    && i64::from(r.end) >= i64::from(spec.num_vfs)
                {
                    errors.push(RuleError::new(
                        field,
                        format!(
                            "VF range {entry:?} ends at index {}, but with numVfs {} the VF indexes are 0-{}; raise numVfs to {} or end the range at {}",
                            r.end,
                            spec.num_vfs,
                            spec.num_vfs - 1,
                            r.end + 1,
                            spec.num_vfs - 1
                        ),
                    ));
                }
            }
        }
    }
}

/// What upstream accepts but is most likely a mistake: returned as admission
/// warnings, never as rejections (a cluster switching from the Go operator
/// must be able to update the objects it has).
/// - `rootDevices` entries that are not PCI addresses (they match nothing);
/// - a `netFilter` of an unknown form (it matches nothing);
/// - in dev mode (`NicCheck::AnyNic`), vendor/deviceID that are not 4 hex digits.
pub fn policy_warnings(spec: &SriovNetworkNodePolicySpec, nic_check: NicCheck) -> Vec<RuleError> {
    let mut warnings = Vec::new();
    let sel = &spec.nic_selector;
    for (i, addr) in sel.root_devices.iter().enumerate() {
        if let Err(e) = check_pci_address(&format!("spec.nicSelector.rootDevices[{i}]"), addr) {
            warnings.push(e);
        }
    }
    if !sel.net_filter.is_empty()
        && let Err(e) = check_net_filter("spec.nicSelector.netFilter", &sel.net_filter)
    {
        warnings.push(e);
    }
    if nic_check == NicCheck::AnyNic {
        for (field, value) in [
            ("spec.nicSelector.vendor", &sel.vendor),
            ("spec.nicSelector.deviceID", &sel.device_id),
        ] {
            if !value.is_empty() && !is_hex(value, 4) {
                warnings.push(RuleError::new(
                    field,
                    format!("{value:?} is not 4 hex digits without 0x (e.g. \"8086\"); it matches no NIC"),
                ));
            }
        }
    }
    warnings
}
