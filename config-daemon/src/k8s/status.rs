//! The `SriovNetworkNodeState` status the daemon writes: the interfaces it
//! found, `syncStatus`, `lastSyncError` and the conditions, and the
//! server-side apply body that carries it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};
use sriov_crds::conditions::{
    CONDITION_DEGRADED, CONDITION_DRAINING, CONDITION_PROGRESSING, CONDITION_READY, set_condition,
};
use sriov_crds::node_state::{SYNC_STATUS_FAILED, SYNC_STATUS_IN_PROGRESS, SYNC_STATUS_SUCCEEDED};
use sriov_crds::{API_VERSION, Interface, InterfaceExt, SriovNetworkNodeStateStatus};

/// Field manager of the daemon's server-side applies.
pub const FIELD_MANAGER: &str = "sriov-config-daemon";

/// Where a sync stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Applying now.
    Applying,
    /// Disruptive PFs wait for the operator's drain (the message names them).
    WaitingForDrain(String),
    /// Everything applied.
    Succeeded,
    /// Some PF failed: PF, step, kernel error.
    Failed(String),
}

impl Phase {
    /// The `syncStatus` value.
    pub fn sync_status(&self) -> &'static str {
        match self {
            Phase::Applying | Phase::WaitingForDrain(_) => SYNC_STATUS_IN_PROGRESS,
            Phase::Succeeded => SYNC_STATUS_SUCCEEDED,
            Phase::Failed(_) => SYNC_STATUS_FAILED,
        }
    }
}

/// Status interfaces: what the scan found, with `externallyManaged` taken
/// from the spec (the kernel does not know it).
pub fn status_interfaces(found: Vec<InterfaceExt>, spec: &[Interface]) -> Vec<InterfaceExt> {
    found
        .into_iter()
        .map(|mut i| {
            i.externally_managed = spec
                .iter()
                .any(|s| s.pci_address == i.pci_address && s.externally_managed);
            i
        })
        .collect()
}

/// The new status. Conditions start from `previous` so a condition whose
/// status does not change keeps its `lastTransitionTime`; `lastSyncError`
/// keeps the last failure while applying (as upstream: InProgress does not
/// clear it) and is cleared on success.
pub fn build_status(
    previous: Option<&SriovNetworkNodeStateStatus>,
    interfaces: Vec<InterfaceExt>,
    phase: &Phase,
    generation: Option<i64>,
    now: Time,
) -> SriovNetworkNodeStateStatus {
    let mut conditions = previous.map(|p| p.conditions.clone()).unwrap_or_default();
    let last_error = match phase {
        Phase::Failed(e) => e.clone(),
        Phase::Succeeded => String::new(),
        Phase::Applying | Phase::WaitingForDrain(_) => previous
            .map(|p| p.last_sync_error.clone())
            .unwrap_or_default(),
    };
    let (ready, ready_reason, ready_msg) = match phase {
        Phase::Succeeded => (true, "Synced", "the node matches the spec".to_string()),
        Phase::Applying => (false, "Applying", "applying the spec".to_string()),
        Phase::WaitingForDrain(m) => (false, "WaitingForDrain", m.clone()),
        Phase::Failed(e) => (false, "SyncFailed", e.clone()),
    };
    set_condition(
        &mut conditions,
        CONDITION_READY,
        ready,
        ready_reason,
        &ready_msg,
        generation,
        now.clone(),
    );
    let progressing = matches!(phase, Phase::Applying | Phase::WaitingForDrain(_));
    set_condition(
        &mut conditions,
        CONDITION_PROGRESSING,
        progressing,
        ready_reason,
        if progressing { &ready_msg } else { "" },
        generation,
        now.clone(),
    );
    let degraded = matches!(phase, Phase::Failed(_));
    set_condition(
        &mut conditions,
        CONDITION_DEGRADED,
        degraded,
        if degraded { "SyncFailed" } else { "Synced" },
        if degraded { &ready_msg } else { "" },
        generation,
        now.clone(),
    );
    let draining = matches!(phase, Phase::WaitingForDrain(_));
    set_condition(
        &mut conditions,
        CONDITION_DRAINING,
        draining,
        if draining { "DrainRequired" } else { "Idle" },
        if draining { &ready_msg } else { "" },
        generation,
        now,
    );
    SriovNetworkNodeStateStatus {
        interfaces,
        sync_status: phase.sync_status().to_string(),
        last_sync_error: last_error,
        conditions,
        ..Default::default()
    }
}

/// Whether two statuses say the same (so the write can be skipped).
pub fn same_status(
    a: Option<&SriovNetworkNodeStateStatus>,
    b: &SriovNetworkNodeStateStatus,
) -> bool {
    a == Some(b)
}

/// The server-side apply body for the status subresource.
pub fn apply_body(status: &SriovNetworkNodeStateStatus) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": "SriovNetworkNodeState",
        "status": status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;
    use sriov_crds::conditions::find_condition;

    fn t(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn conditions_follow_the_phase_and_keep_transition_times() {
        let a = build_status(None, vec![], &Phase::Applying, Some(2), t(10));
        assert_eq!(a.sync_status, "InProgress");
        assert_eq!(
            find_condition(&a.conditions, "Progressing").unwrap().status,
            "True"
        );
        assert_eq!(
            find_condition(&a.conditions, "Ready").unwrap().status,
            "False"
        );
        let f = build_status(
            Some(&a),
            vec![],
            &Phase::Failed("PF ens1f0 (0000:3b:00.0): set sriov_numvfs from 0 to 4: ENOMEM".into()),
            Some(2),
            t(20),
        );
        assert_eq!(f.sync_status, "Failed");
        assert!(f.last_sync_error.contains("ENOMEM"));
        let deg = find_condition(&f.conditions, "Degraded").unwrap();
        assert_eq!(
            (deg.status.as_str(), deg.last_transition_time.clone()),
            ("True", t(20))
        );
        // Ready stayed False: its transition time is the first one.
        assert_eq!(
            find_condition(&f.conditions, "Ready")
                .unwrap()
                .last_transition_time,
            t(10)
        );
        // Retrying keeps the error visible.
        let r = build_status(Some(&f), vec![], &Phase::Applying, Some(2), t(30));
        assert!(r.last_sync_error.contains("ENOMEM"));
        let s = build_status(Some(&r), vec![], &Phase::Succeeded, Some(2), t(40));
        assert_eq!(
            (s.sync_status.as_str(), s.last_sync_error.as_str()),
            ("Succeeded", "")
        );
        assert_eq!(
            find_condition(&s.conditions, "Ready").unwrap().status,
            "True"
        );
        // Same phase again: nothing changes, the write can be skipped.
        let again = build_status(Some(&s), vec![], &Phase::Succeeded, Some(2), t(50));
        assert!(same_status(Some(&s), &again));
        let w = build_status(
            Some(&s),
            vec![],
            &Phase::WaitingForDrain("VF held".into()),
            Some(3),
            t(60),
        );
        assert_eq!(
            find_condition(&w.conditions, "Draining").unwrap().status,
            "True"
        );
        assert_eq!(w.sync_status, "InProgress");
        let body = apply_body(&w);
        assert_eq!(body["kind"], "SriovNetworkNodeState");
        assert_eq!(body["status"]["syncStatus"], "InProgress");
    }
}
