//! Rules of `SriovOperatorConfig` and `SriovNetworkPoolConfig`.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::{RuleError, check_enum, check_range};
use crate::node_state::{SYNC_STATUS_IN_PROGRESS, SriovNetworkNodeState};
use crate::operator_config::{OPERATOR_CONFIG_NAME, SriovOperatorConfig};
use crate::pool_config::SriovNetworkPoolConfig;

/// Checks a `SriovOperatorConfig`: named `default` in the operator namespace,
/// and its fields in range.
pub fn check_operator_config(
    config: &SriovOperatorConfig,
    operator_namespace: &str,
) -> Vec<RuleError> {
    let mut errors = Vec::new();
    let name = config.name_any();
    let namespace = config.namespace().unwrap_or_default();
    if name != OPERATOR_CONFIG_NAME || namespace != operator_namespace {
        errors.push(RuleError::new(
            "metadata.name",
            format!(
                "only the SriovOperatorConfig named {OPERATOR_CONFIG_NAME} in namespace {operator_namespace} is used, this one is {namespace}/{name}; rename it"
            ),
        ));
    }
    let spec = &config.spec;
    check_range(&mut errors, "spec.logLevel", spec.log_level, 0, Some(2));
    check_enum(
        &mut errors,
        "spec.configurationMode",
        &spec.configuration_mode,
        &["daemon", "systemd"],
    );
    for (i, p) in spec.disable_plugins.iter().enumerate() {
        check_enum(
            &mut errors,
            &format!("spec.disablePlugins[{i}]"),
            p,
            &["mellanox"],
        );
    }
    if let Some(lc) = &spec.log_config {
        check_range(
            &mut errors,
            "spec.logConfig.maxSizeMB",
            lc.max_size_mb,
            1,
            Some(1024),
        );
        check_range(
            &mut errors,
            "spec.logConfig.maxFiles",
            lc.max_files,
            1,
            Some(20),
        );
        check_range(
            &mut errors,
            "spec.logConfig.maxAgeDays",
            lc.max_age_days,
            0,
            Some(365),
        );
    }
    errors
}

/// Admission warnings for a `SriovOperatorConfig` (upstream's warning when
/// drains are disabled).
pub fn operator_config_warnings(config: &SriovOperatorConfig) -> Vec<RuleError> {
    if config.spec.disable_drain == Some(true) {
        vec![RuleError::new(
            "spec.disableDrain",
            "node draining is disabled for applying SriovNetworkNodePolicy; pods using VFs may be interrupted when a node is reconfigured",
        )]
    } else {
        Vec::new()
    }
}

/// Upstream's rule: `disableDrain` may not change from false to true while a
/// node is being reconfigured (`syncStatus: InProgress`), or that node would
/// stay cordoned. `old` is the stored config (None on create).
pub fn check_disable_drain_change(
    old: Option<&SriovOperatorConfig>,
    new: &SriovOperatorConfig,
    node_states: &[SriovNetworkNodeState],
) -> Result<(), RuleError> {
    let now = new.spec.disable_drain == Some(true);
    let before = old.is_some_and(|o| o.spec.disable_drain == Some(true));
    if !now || before || old.is_none() {
        return Ok(());
    }
    match node_states.iter().find(|s| {
        s.status
            .as_ref()
            .is_some_and(|st| st.sync_status == SYNC_STATUS_IN_PROGRESS)
    }) {
        None => Ok(()),
        Some(state) => Err(RuleError::new(
            "spec.disableDrain",
            format!(
                "can't set disableDrain to true while node {} is updating (syncStatus InProgress): the node could stay cordoned; wait until it is Succeeded",
                state.name_any()
            ),
        )),
    }
}

/// How many nodes of a pool of `nodes` may be unavailable at once: `None`
/// when `maxUnavailable` is unset (no limit), otherwise the count; a
/// percentage of the pool size is rounded down.
pub fn max_unavailable_nodes(
    value: Option<&IntOrString>,
    nodes: u32,
) -> Result<Option<u32>, RuleError> {
    const FIELD: &str = "spec.maxUnavailable";
    match value {
        None => Ok(None),
        Some(IntOrString::Int(n)) if *n >= 0 => Ok(Some(*n as u32)),
        Some(IntOrString::Int(n)) => Err(RuleError::new(
            FIELD,
            format!("{n} is negative; use a node count (0 or more) or a percentage like \"25%\""),
        )),
        Some(IntOrString::String(s)) => {
            let Some(num) = s.strip_suffix('%') else {
                return Err(RuleError::new(
                    FIELD,
                    format!(
                        "{s:?} is a string but not a percentage; use a number (2) or a percentage (\"25%\")"
                    ),
                ));
            };
            match num.parse::<u32>() {
                Ok(p) if (1..=100).contains(&p) => Ok(Some(nodes * p / 100)),
                _ => Err(RuleError::new(
                    FIELD,
                    format!("{s:?}: the percentage must be between 1% and 100%"),
                )),
            }
        }
    }
}

/// Checks a `SriovNetworkPoolConfig`.
pub fn check_pool_config(pool: &SriovNetworkPoolConfig) -> Vec<RuleError> {
    let mut errors = Vec::new();
    let spec = &pool.spec;
    let has_offload = spec
        .ovs_hardware_offload_config
        .as_ref()
        .is_some_and(|o| !o.name.is_empty());
    if has_offload && (spec.max_unavailable.is_some() || spec.node_selector.is_some()) {
        errors.push(RuleError::new(
            "spec.ovsHardwareOffloadConfig",
            "a pool config can't have both parallel drain settings (nodeSelector/maxUnavailable) and ovsHardwareOffloadConfig; use two SriovNetworkPoolConfig objects",
        ));
    }
    if let Err(e) = max_unavailable_nodes(spec.max_unavailable.as_ref(), 0) {
        errors.push(e);
    }
    check_enum(
        &mut errors,
        "spec.rdmaMode",
        &spec.rdma_mode,
        &["shared", "exclusive"],
    );
    errors
}
