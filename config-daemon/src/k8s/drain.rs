//! The drain handshake with the operator, as upstream sriov-network-operator
//! does it (its drain controller owns `current-state`, the daemon owns
//! `desired-state` and the Node annotation):
//!
//! 1. A disruptive plan: the daemon sets `desired-state: Drain_Required` on
//!    its `SriovNetworkNodeState` and `sriovnetwork.openshift.io/state:
//!    Drain_Required` on its Node.
//! 2. The operator drains (`current-state: Draining`), then sets
//!    `current-state: DrainComplete`.
//! 3. The daemon applies, then sets both annotations back to `Idle`; the
//!    operator uncordons and sets `current-state: Idle`.
//!
//! With `disableDrain` in the `SriovOperatorConfig` the daemon applies
//! disruptive plans at once. Non-disruptive plans never ask for a drain.

use std::collections::BTreeMap;

use kube::ResourceExt;
use sriov_crds::SriovNetworkNodeState;

/// `SriovNetworkNodeState` annotation the daemon writes: what it needs.
pub const DESIRED_STATE: &str = "sriovnetwork.openshift.io/desired-state";
/// `SriovNetworkNodeState` annotation the operator writes: where the drain is.
pub const CURRENT_STATE: &str = "sriovnetwork.openshift.io/current-state";
/// Node annotation the daemon writes alongside `desired-state` (the upstream
/// drain controller reads the request from the Node).
pub const NODE_STATE: &str = "sriovnetwork.openshift.io/state";

/// `SriovNetworkNodeState` annotation the daemon writes (`"true"`) when
/// `USE_EXTERNAL_DRAINER=true`: the operator leaves this node's drains to
/// an external drainer (e.g. a maintenance operator), as upstream.
pub const USE_EXTERNAL_DRAINER: &str = "sriovnetwork.openshift.io/use-external-drainer";

/// Nothing needed / nothing going on.
pub const IDLE: &str = "Idle";
/// The daemon needs the node drained of pods that use SR-IOV devices.
pub const DRAIN_REQUIRED: &str = "Drain_Required";
/// The daemon needs the node drained and rebooted (kernel arguments:
/// `crate::kernel_args`).
pub const REBOOT_REQUIRED: &str = "Reboot_Required";
/// The operator is draining.
pub const DRAINING: &str = "Draining";
/// The operator finished draining.
pub const DRAIN_COMPLETE: &str = "DrainComplete";

/// The two handshake annotations of a node state (missing means `Idle`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainState {
    pub desired: String,
    pub current: String,
}

impl DrainState {
    /// From an object's annotations.
    pub fn of(ns: &SriovNetworkNodeState) -> Self {
        Self::from_annotations(ns.annotations())
    }

    /// From annotations.
    pub fn from_annotations(a: &BTreeMap<String, String>) -> Self {
        let get = |k: &str| {
            a.get(k)
                .filter(|v| !v.is_empty())
                .cloned()
                .unwrap_or_else(|| IDLE.to_string())
        };
        Self {
            desired: get(DESIRED_STATE),
            current: get(CURRENT_STATE),
        }
    }

    /// The operator has drained the node for us.
    pub fn drained(&self) -> bool {
        self.current == DRAIN_COMPLETE
    }
}

/// Whether the external-drainer annotation must be added (`Some(true)`) or
/// removed (`Some(false)`). As upstream, it changes only while no drain is
/// asked for or going on (both handshake annotations `Idle` or missing), so
/// a drain in flight is finished by whoever started it.
pub fn external_drainer_change(
    a: &BTreeMap<String, String>,
    state: &DrainState,
    use_external_drainer: bool,
) -> Option<bool> {
    if state.desired != IDLE || state.current != IDLE {
        return None;
    }
    let present = a.contains_key(USE_EXTERNAL_DRAINER);
    match (use_external_drainer, present) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}

/// What to do with a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing disruptive: apply everything now.
    Apply,
    /// Disruptive and the operator drained the node: apply everything.
    ApplyDrained,
    /// Disruptive, `disableDrain` is set: apply everything without a drain.
    ApplyWithoutDrain,
    /// Disruptive: ask for a drain; apply the non-disruptive PFs now.
    RequestDrain,
    /// Disruptive, the drain is asked for already: wait for the operator;
    /// apply the non-disruptive PFs now.
    WaitForDrain,
    /// Kernel arguments are needed: ask for a drain before a reboot.
    RequestReboot,
    /// Kernel arguments are needed, the drain before the reboot is asked
    /// for: wait.
    WaitForReboot,
    /// Kernel arguments are needed and the node is drained (or
    /// `disableDrain`): add them and reboot.
    Reboot,
}

impl Decision {
    /// Disruptive PFs are held back until the drain completes.
    pub fn holds_disruptive(self) -> bool {
        matches!(self, Decision::RequestDrain | Decision::WaitForDrain)
    }
}

/// Whether [`decide`] needs to know `disableDrain` (read from the API only
/// then).
pub fn needs_drain_setting(disruptive: bool, state: &DrainState) -> bool {
    disruptive && !state.drained()
}

/// The decision for a plan that is (or is not) disruptive.
pub fn decide(disruptive: bool, state: &DrainState, disable_drain: bool) -> Decision {
    if !disruptive {
        Decision::Apply
    } else if state.drained() {
        Decision::ApplyDrained
    } else if disable_drain {
        Decision::ApplyWithoutDrain
    } else if state.desired == DRAIN_REQUIRED || state.desired == REBOOT_REQUIRED {
        Decision::WaitForDrain
    } else {
        Decision::RequestDrain
    }
}

/// The decision when the node needs kernel arguments and a reboot. A drain
/// the operator finished for `Drain_Required` is not enough (it left
/// DaemonSet-free pods that a reboot also stops): as upstream, the request
/// goes back to `Idle` first and a full drain is asked for next.
pub fn decide_reboot(state: &DrainState, disable_drain: bool) -> Decision {
    if disable_drain || (state.drained() && state.desired == REBOOT_REQUIRED) {
        Decision::Reboot
    } else if state.desired == REBOOT_REQUIRED {
        Decision::WaitForReboot
    } else {
        Decision::RequestReboot
    }
}

/// After a run: whether to set the annotations back to `Idle` (a drain was
/// asked for, and everything is applied without failure). A failed apply
/// keeps the drain so pods do not come back to a half-configured node
/// (as upstream).
pub fn back_to_idle(state: &DrainState, decision: Decision, failed: bool) -> bool {
    state.desired != IDLE && !decision.holds_disruptive() && !failed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(desired: &str, current: &str) -> DrainState {
        let mut a = BTreeMap::new();
        if !desired.is_empty() {
            a.insert(DESIRED_STATE.to_string(), desired.to_string());
        }
        if !current.is_empty() {
            a.insert(CURRENT_STATE.to_string(), current.to_string());
        }
        DrainState::from_annotations(&a)
    }

    #[test]
    fn the_external_drainer_annotation_changes_only_while_idle() {
        let mut a = BTreeMap::new();
        let idle = st("", "");
        assert_eq!(external_drainer_change(&a, &idle, true), Some(true));
        assert_eq!(external_drainer_change(&a, &idle, false), None);
        // Mid-drain: left as it is, either way.
        let draining = st(DRAIN_REQUIRED, DRAINING);
        assert_eq!(external_drainer_change(&a, &draining, true), None);
        assert_eq!(
            external_drainer_change(&a, &st(DRAIN_REQUIRED, IDLE), true),
            None
        );
        a.insert(USE_EXTERNAL_DRAINER.to_string(), "true".to_string());
        assert_eq!(external_drainer_change(&a, &idle, true), None);
        assert_eq!(external_drainer_change(&a, &idle, false), Some(false));
        assert_eq!(external_drainer_change(&a, &draining, false), None);
        // Explicit Idle reads as missing.
        assert_eq!(
            external_drainer_change(&a, &st(IDLE, IDLE), false),
            Some(false)
        );
    }

    #[test]
    fn a_reboot_waits_for_a_full_drain() {
        assert_eq!(decide_reboot(&st("", ""), false), Decision::RequestReboot);
        assert_eq!(
            decide_reboot(&st(REBOOT_REQUIRED, DRAINING), false),
            Decision::WaitForReboot
        );
        assert_eq!(
            decide_reboot(&st(REBOOT_REQUIRED, DRAIN_COMPLETE), false),
            Decision::Reboot
        );
        // Drained for a Drain_Required only: ask again, for a reboot.
        assert_eq!(
            decide_reboot(&st(DRAIN_REQUIRED, DRAIN_COMPLETE), false),
            Decision::RequestReboot
        );
        assert_eq!(decide_reboot(&st("", ""), true), Decision::Reboot);
    }

    #[test]
    fn the_handshake() {
        // Missing annotations read as Idle.
        assert_eq!(st("", ""), st(IDLE, IDLE));
        assert_eq!(decide(false, &st("", ""), false), Decision::Apply);
        assert!(!needs_drain_setting(false, &st("", "")));
        // Disruptive: ask, then wait while the operator drains.
        assert!(needs_drain_setting(true, &st(IDLE, IDLE)));
        assert_eq!(decide(true, &st(IDLE, IDLE), false), Decision::RequestDrain);
        assert_eq!(
            decide(true, &st(DRAIN_REQUIRED, IDLE), false),
            Decision::WaitForDrain
        );
        assert_eq!(
            decide(true, &st(DRAIN_REQUIRED, DRAINING), false),
            Decision::WaitForDrain
        );
        // A drain the operator runs for another reason is not our request.
        assert_eq!(
            decide(true, &st(IDLE, DRAINING), false),
            Decision::RequestDrain
        );
        // Drained: apply, and return to Idle when nothing failed.
        let drained = st(DRAIN_REQUIRED, DRAIN_COMPLETE);
        assert!(!needs_drain_setting(true, &drained));
        assert_eq!(decide(true, &drained, false), Decision::ApplyDrained);
        assert!(back_to_idle(&drained, Decision::ApplyDrained, false));
        assert!(!back_to_idle(&drained, Decision::ApplyDrained, true));
        // disableDrain: no handshake at all.
        assert_eq!(
            decide(true, &st(IDLE, IDLE), true),
            Decision::ApplyWithoutDrain
        );
        assert!(!back_to_idle(
            &st(IDLE, IDLE),
            Decision::ApplyWithoutDrain,
            false
        ));
        // A request that is no longer needed (the spec changed) is withdrawn.
        assert!(back_to_idle(
            &st(DRAIN_REQUIRED, IDLE),
            Decision::Apply,
            false
        ));
        assert!(!back_to_idle(
            &st(DRAIN_REQUIRED, IDLE),
            Decision::WaitForDrain,
            false
        ));
    }
}
