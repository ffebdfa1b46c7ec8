//! What to do for one network CR, given what exists in the cluster: the NAD
//! to write (or not), an old NAD to delete after a namespace change, and the
//! `Ready` condition with the upstream reasons.

use super::nad::{
    NadError, NetworkView, READY_MESSAGE, REASON_NAD_INVALID, REASON_NAMESPACE_NOT_FOUND,
    REASON_NETWORK_READY, render_nad,
};
use crate::nad::NetworkAttachmentDefinition;
use crate::settings::Settings;

/// What the cluster holds that matters to one network.
#[derive(Debug, Clone, Default)]
pub struct NetworkCluster<'a> {
    /// Whether the target namespace exists.
    pub namespace_exists: bool,
    /// The NAD already in the target namespace with this name, if any.
    pub existing: Option<&'a NetworkAttachmentDefinition>,
    /// The CR's `last-network-namespace` annotation.
    pub last_namespace: Option<&'a str>,
}

/// The `Ready` condition to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyCondition {
    /// True or False.
    pub ready: bool,
    /// Upstream reason.
    pub reason: &'static str,
    /// Message.
    pub message: String,
}

/// The decision for one network.
#[derive(Debug, Clone)]
pub struct NetworkOutcome {
    /// The NAD to write (None: leave the cluster as it is).
    pub nad: Option<NetworkAttachmentDefinition>,
    /// True when the existing NAD already equals `nad` (no write needed).
    pub unchanged: bool,
    /// Namespace of a NAD of this name to delete (the network moved away from it).
    pub delete_in: Option<String>,
    /// The namespace to record in `last-network-namespace` (upstream records it on every CR).
    pub record_namespace: Option<String>,
    /// `Ready`.
    pub condition: ReadyCondition,
}

fn not_ready(reason: &'static str, message: String) -> ReadyCondition {
    ReadyCondition {
        ready: false,
        reason,
        message,
    }
}

/// Decides for one network.
pub fn network_outcome(
    view: &NetworkView,
    settings: &Settings,
    cluster: &NetworkCluster<'_>,
) -> NetworkOutcome {
    let mut out = NetworkOutcome {
        nad: None,
        unchanged: false,
        delete_in: None,
        record_namespace: None,
        condition: not_ready(REASON_NAD_INVALID, String::new()),
    };
    let nad = match render_nad(view, settings) {
        Ok(n) => n,
        Err(e @ (NadError::CrossNamespaceNotAllowed(_) | NadError::InvalidJson(_))) => {
            out.condition = not_ready(REASON_NAD_INVALID, e.to_string());
            return out;
        }
    };
    let target = view.target_namespace().to_string();
    if let Some(last) = cluster.last_namespace
        && !last.is_empty()
        && last != target
    {
        out.delete_in = Some(last.to_string());
    }
    match cluster.existing {
        Some(found) => {
            let expected = view.owner_ref();
            let found_owner = found
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(crate::nad::OWNER_REF_ANNOTATION))
                .cloned()
                .unwrap_or_default();
            if !found_owner.is_empty() && found_owner != expected {
                out.condition = not_ready(
                    REASON_NAD_INVALID,
                    format!(
                        "NetworkAttachmentDefinition '{}/{}' already exists and is owned by {}",
                        target, view.name, found_owner
                    ),
                );
                return out;
            }
            out.unchanged = found.spec == nad.spec
                && found.metadata.annotations == nad.metadata.annotations
                && (nad.metadata.owner_references.is_none()
                    || found.metadata.owner_references == nad.metadata.owner_references);
        }
        None if !cluster.namespace_exists => {
            out.condition = not_ready(
                REASON_NAMESPACE_NOT_FOUND,
                format!("target namespace {target:?} does not exist"),
            );
            return out;
        }
        None => {}
    }
    out.record_namespace = Some(target);
    out.nad = Some(nad);
    out.condition = ReadyCondition {
        ready: true,
        reason: REASON_NETWORK_READY,
        message: READY_MESSAGE.to_string(),
    };
    out
}
