//! Admission review bodies as the API server posts them: the operator
//! webhook's mutate and validate, and the network-resources injector's pod
//! mutation (with the networks annotation parser).
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use kube::core::DynamicObject;
use kube::core::admission::AdmissionReview;
use libfuzzer_sys::fuzz_target;
use sriov_operator::webhook::injector::{InjectorSwitches, NadInfo, mutate_pod, parse_networks};
use sriov_operator::webhook::operator_webhook::{
    ClusterView, OperatorWebhookConfig, mutate, validate,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_networks(text, "default");
    }
    let Ok(review) = serde_json::from_slice::<AdmissionReview<DynamicObject>>(data) else {
        return;
    };
    let _ = mutate(review.clone());
    let config = OperatorWebhookConfig::default();
    let cluster = ClusterView {
        nodes: vec![(
            "node1".into(),
            [("kubernetes.io/hostname".to_string(), "node1".to_string())].into(),
        )],
        ..Default::default()
    };
    let _ = validate(review.clone(), &config, &cluster);
    let mut nads: BTreeMap<(String, String), NadInfo> = BTreeMap::new();
    nads.insert(
        ("default".into(), "sriov-net".into()),
        NadInfo {
            resource_name: Some("openshift.io/intelnics".into()),
            node_selector: None,
        },
    );
    // A DRA pool's network and Multus 4.x's claim-named form too.
    nads.insert(
        ("default".into(), "dra-net".into()),
        NadInfo {
            resource_name: Some("openshift.io/dra_vfs".into()),
            node_selector: None,
        },
    );
    nads.insert(
        ("default".into(), "dra-claim".into()),
        NadInfo {
            resource_name: Some("vf-claim".into()),
            node_selector: None,
        },
    );
    let dra = BTreeSet::from(["openshift.io/dra_vfs".to_string()]);
    let _ = mutate_pod(
        review,
        &nads,
        InjectorSwitches {
            hugepages_downward_api: true,
            honor_existing_resources: false,
        },
        &dra,
    );
});
