//! Objects without `spec` (upstream's Go types have `spec,omitempty`, so the
//! API server stores them) read as objects with the default spec: typed
//! lists and watch events of every kind decode, a `null` spec too, and the
//! result is what `manifests::fill_missing_spec` (Go's zero values) gives.

use std::fmt::Debug;

use kube::core::{ObjectList, WatchEvent};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sriov_crds::manifests::fill_missing_spec;
use sriov_crds::{
    OVSNetwork, SriovIBNetwork, SriovNetwork, SriovNetworkNodePolicy, SriovNetworkNodeState,
    SriovNetworkPoolConfig, SriovOperatorConfig,
};

fn object(kind: &str, name: &str, spec: Option<Value>) -> Value {
    let mut o = json!({
        "apiVersion": "sriovnetwork.openshift.io/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "sriov-network-operator", "resourceVersion": "7"},
    });
    if let Some(s) = spec {
        o["spec"] = s;
    }
    o
}

fn check<T>(kind: &str, full_spec: Value)
where
    T: kube::Resource + Serialize + DeserializeOwned + Clone + Debug + PartialEq,
    T: kube::core::object::HasSpec,
    T::Spec: Default + PartialEq + Debug,
{
    // Absent and null.
    for doc in [
        object(kind, "a", None),
        object(kind, "a", Some(Value::Null)),
    ] {
        let typed: T =
            serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{kind} {doc}: {e}"));
        assert_eq!(typed.spec(), &T::Spec::default(), "{kind}: {doc}");
        let mut filled = doc.clone();
        fill_missing_spec(kind, &mut filled);
        let via_fill: T = serde_json::from_value(filled).unwrap();
        assert_eq!(
            typed, via_fill,
            "{kind}: default spec differs from Go's zero values"
        );
    }
    // A list as `Api::list` / the watcher's initial list reads it: one
    // spec-less object must not fail the others.
    let list = json!({
        "apiVersion": "sriovnetwork.openshift.io/v1",
        "kind": format!("{kind}List"),
        "metadata": {"resourceVersion": "9"},
        "items": [object(kind, "no-spec", None), object(kind, "full", Some(full_spec.clone()))],
    });
    let list: ObjectList<T> =
        serde_json::from_value(list).unwrap_or_else(|e| panic!("{kind} list: {e}"));
    assert_eq!(list.items.len(), 2);
    assert_eq!(list.items[0].spec(), &T::Spec::default());
    assert_ne!(
        list.items[1].spec(),
        &T::Spec::default(),
        "{kind}: the full spec was read"
    );
    // A watch event.
    let ev = json!({"type": "ADDED", "object": object(kind, "w", None)});
    let ev: WatchEvent<T> =
        serde_json::from_value(ev).unwrap_or_else(|e| panic!("{kind} event: {e}"));
    assert!(matches!(ev, WatchEvent::Added(o) if o.spec() == &T::Spec::default()));
    // A present spec is read as before, and serialized back unchanged.
    let doc = object(kind, "full", Some(full_spec));
    let typed: T = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(
        serde_json::to_value(&typed).unwrap()["spec"],
        doc["spec"],
        "{kind}"
    );
}

#[test]
fn every_kind_reads_a_missing_or_null_spec_as_the_default() {
    check::<SriovNetworkNodePolicy>(
        "SriovNetworkNodePolicy",
        json!({"resourceName": "r", "nodeSelector": {"a": "b"}, "numVfs": 2, "nicSelector": {"pfNames": ["ens1"]}}),
    );
    check::<SriovNetworkNodeState>(
        "SriovNetworkNodeState",
        json!({"interfaces": [{"pciAddress": "0000:3b:00.0", "numVfs": 2}]}),
    );
    check::<SriovNetwork>("SriovNetwork", json!({"resourceName": "r", "vlan": 3}));
    check::<SriovIBNetwork>("SriovIBNetwork", json!({"resourceName": "r"}));
    check::<OVSNetwork>("OVSNetwork", json!({"resourceName": "r", "bridge": "br0"}));
    check::<SriovOperatorConfig>("SriovOperatorConfig", json!({"enableInjector": true}));
    check::<SriovNetworkPoolConfig>("SriovNetworkPoolConfig", json!({"maxUnavailable": 1}));
}

#[test]
fn a_spec_of_the_wrong_type_is_still_an_error() {
    let doc = object("SriovNetworkNodePolicy", "bad", Some(json!("text")));
    let err = serde_json::from_value::<SriovNetworkNodePolicy>(doc).unwrap_err();
    assert!(err.to_string().contains("invalid type"), "{err}");
    let doc = object("SriovNetwork", "bad", Some(json!({"vlan": 1})));
    let err = serde_json::from_value::<SriovNetwork>(doc).unwrap_err();
    assert!(err.to_string().contains("resourceName"), "{err}");
}
