//! Condition upserts keep lastTransitionTime unless the status flips.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use sriov_crds::conditions::{CONDITION_READY, find_condition, set_condition};

fn at(secs: i64) -> Time {
    Time(Timestamp::from_second(secs).unwrap())
}

#[test]
fn set_condition_transitions() {
    let mut c = Vec::new();
    assert!(set_condition(
        &mut c,
        CONDITION_READY,
        false,
        "Applying",
        "2 PFs left",
        Some(1),
        at(100)
    ));
    assert!(
        !set_condition(
            &mut c,
            CONDITION_READY,
            false,
            "Applying",
            "2 PFs left",
            Some(1),
            at(200)
        ),
        "no change"
    );
    assert_eq!(
        find_condition(&c, CONDITION_READY)
            .unwrap()
            .last_transition_time,
        at(100)
    );
    assert!(
        set_condition(
            &mut c,
            CONDITION_READY,
            false,
            "Applying",
            "1 PF left",
            Some(1),
            at(300)
        ),
        "message changed"
    );
    assert_eq!(
        find_condition(&c, CONDITION_READY)
            .unwrap()
            .last_transition_time,
        at(100),
        "same status keeps the time"
    );
    assert!(set_condition(
        &mut c,
        CONDITION_READY,
        true,
        "Succeeded",
        "all PFs configured",
        Some(2),
        at(400)
    ));
    let ready = find_condition(&c, CONDITION_READY).unwrap();
    assert_eq!(
        (
            ready.status.as_str(),
            ready.last_transition_time.clone(),
            ready.observed_generation
        ),
        ("True", at(400), Some(2))
    );
    assert_eq!(c.len(), 1);
    assert!(find_condition(&c, "Degraded").is_none());
}
