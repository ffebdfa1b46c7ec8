//! Status conditions shared by the kinds: type names and an upsert that keeps
//! `lastTransitionTime` when the status does not change.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Everything is applied and healthy.
pub const CONDITION_READY: &str = "Ready";
/// Work is in progress (applying, rendering).
pub const CONDITION_PROGRESSING: &str = "Progressing";
/// Something failed; the message says what.
pub const CONDITION_DEGRADED: &str = "Degraded";
/// The node is being drained for a disruptive change.
pub const CONDITION_DRAINING: &str = "Draining";
/// A policy lost VFs or a PF to another policy on some node.
pub const CONDITION_CONFLICT: &str = "Conflict";

/// `status` values.
pub const STATUS_TRUE: &str = "True";
/// `status: False`.
pub const STATUS_FALSE: &str = "False";

/// Sets condition `type_` in `conditions`. `lastTransitionTime` becomes `now`
/// only when the condition is new or its status changes. Returns true when
/// anything changed (so callers can skip a status write).
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
    now: Time,
) -> bool {
    let status = if status { STATUS_TRUE } else { STATUS_FALSE };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            let changed = c.status != status
                || c.reason != reason
                || c.message != message
                || c.observed_generation != observed_generation;
            if c.status != status {
                c.last_transition_time = now;
            }
            c.status = status.to_string();
            c.reason = reason.to_string();
            c.message = message.to_string();
            c.observed_generation = observed_generation;
            changed
        }
        None => {
            conditions.push(Condition {
                type_: type_.to_string(),
                status: status.to_string(),
                reason: reason.to_string(),
                message: message.to_string(),
                observed_generation,
                last_transition_time: now,
            });
            true
        }
    }
}

/// The condition of this type, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}
