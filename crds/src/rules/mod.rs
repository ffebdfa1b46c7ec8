//! Validation and defaulting rules as pure functions, for the operator's
//! admission webhook, the operator's reconcilers and the config daemon's
//! standalone mode (where no API server checks the CRD schema).
//!
//! Every function returns all violations it finds; an empty list means the
//! object is accepted. Each [`RuleError`] names the field and says what to do.

pub mod admission;
pub mod cross_policy;
pub mod defaults;
pub mod network;
pub mod node;
pub mod node_state;
pub mod operator;
pub mod policy;

use std::fmt;

/// One violated rule: the field (JSON path) and a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RuleError {
    /// JSON path of the offending field, e.g. `spec.nicSelector.pfNames[0]`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl RuleError {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Joins violations into one line (for webhook responses and `lastSyncError`).
pub fn join(errors: &[RuleError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

pub(crate) fn check_enum(errors: &mut Vec<RuleError>, field: &str, value: &str, allowed: &[&str]) {
    if !value.is_empty() && !allowed.contains(&value) {
        errors.push(RuleError::new(
            field,
            format!(
                "{value:?} is not allowed; use one of {}",
                allowed.join(", ")
            ),
        ));
    }
}

pub(crate) fn check_range(
    errors: &mut Vec<RuleError>,
    field: &str,
    value: Option<i32>,
    min: i32,
    max: Option<i32>,
) {
    let Some(v) = value else { return };
    let ok = v >= min && max.is_none_or(|m| v <= m);
    if !ok {
        let range = match max {
            Some(m) => format!("{min}-{m}"),
            None => format!(">= {min}"),
        };
        errors.push(RuleError::new(
            field,
            format!("{v} is out of range; allowed: {range}"),
        ));
    }
}
