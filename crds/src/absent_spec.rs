//! A missing or null `spec` reads as the default spec.
//!
//! Upstream's Go types have `spec,omitempty`: the API server stores objects
//! without `spec`, and Go clients decode them to a zero spec. A derived
//! `Deserialize` of our root types (kube's `CustomResource`) would fail on
//! such an object, and a typed reflector or `Api::list` fails on the whole
//! list, so one spec-less object would stop the operator's caches. Each spec
//! type is derived with `#[serde(remote = "Self")]` (the derive becomes an
//! inherent function) and gets its `Serialize`/`Deserialize` impls here: the
//! derived ones, except that an absent or `null` spec is `Default::default()`
//! — Go's zero values, the same as [`crate::manifests::fill_missing_spec`]
//! produces (a test checks both agree for every kind).

macro_rules! spec_may_be_absent {
    ($($spec:ty),* $(,)?) => {$(
        impl serde::Serialize for $spec {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                <$spec>::serialize(self, serializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $spec {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Present($spec);
                impl<'de> serde::Deserialize<'de> for Present {
                    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                        <$spec>::deserialize(d).map(Present)
                    }
                }
                // A missing field reaches here as `deserialize_option` -> None.
                Ok(Option::<Present>::deserialize(deserializer)?
                    .map(|p| p.0)
                    .unwrap_or_default())
            }
        }
    )*};
}

spec_may_be_absent!(
    crate::SriovNetworkNodePolicySpec,
    crate::SriovNetworkNodeStateSpec,
    crate::SriovNetworkSpec,
    crate::SriovIBNetworkSpec,
    crate::OVSNetworkSpec,
    crate::SriovOperatorConfigSpec,
    crate::SriovNetworkPoolConfigSpec,
);
