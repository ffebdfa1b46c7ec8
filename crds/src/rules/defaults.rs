//! Defaulting of a `SriovNetworkNodePolicy`, as the upstream mutating webhook
//! does: priority 99, deviceType netdevice, isRdma false — except that an
//! InfiniBand netdevice policy always gets isRdma true.

use crate::node_policy::{DEFAULT_PRIORITY, DEVICE_TYPE_NETDEVICE, SriovNetworkNodePolicySpec};

/// One field set by defaulting, as a JSON patch would name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defaulted {
    /// `priority` set to 99.
    Priority,
    /// `deviceType` set to netdevice.
    DeviceType,
    /// `isRdma` set to false (it was unset).
    IsRdmaFalse,
    /// `isRdma` set to true for an InfiniBand netdevice policy.
    IsRdmaTrueForInfiniBand,
}

impl Defaulted {
    /// JSON pointer of the field.
    pub fn path(&self) -> &'static str {
        match self {
            Defaulted::Priority => "/spec/priority",
            Defaulted::DeviceType => "/spec/deviceType",
            Defaulted::IsRdmaFalse | Defaulted::IsRdmaTrueForInfiniBand => "/spec/isRdma",
        }
    }
}

/// Fills in defaults; returns what was changed (empty when nothing was).
pub fn default_policy_spec(spec: &mut SriovNetworkNodePolicySpec) -> Vec<Defaulted> {
    let mut changed = Vec::new();
    if spec.priority.is_none() {
        spec.priority = Some(DEFAULT_PRIORITY);
        changed.push(Defaulted::Priority);
    }
    if spec.device_type.is_empty() {
        spec.device_type = DEVICE_TYPE_NETDEVICE.to_string();
        changed.push(Defaulted::DeviceType);
    }
    if spec.is_infiniband() && spec.device_type == DEVICE_TYPE_NETDEVICE {
        if spec.is_rdma != Some(true) {
            spec.is_rdma = Some(true);
            changed.push(Defaulted::IsRdmaTrueForInfiniBand);
        }
    } else if spec.is_rdma.is_none() {
        spec.is_rdma = Some(false);
        changed.push(Defaulted::IsRdmaFalse);
    }
    changed
}
