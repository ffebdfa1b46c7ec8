//! Controllers: per-node rendering of node states and the device-plugin
//! ConfigMap, policy statuses, NADs, the operator config's DaemonSets and the
//! cleanup of stale node states. Each reconcile function takes the cached
//! objects it needs and writes only what differs, with server-side apply
//! under field manager `sriov-network-operator`; [`run()`] wires them to
//! reflectors and a work queue keyed per node.

pub mod drain;
pub mod networks;
pub mod nodes;
pub mod operator_config;
pub mod run;

pub use run::run;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::render::FIELD_MANAGER;

/// Errors of a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API request failed.
    #[error("{what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// The client error.
        source: kube::Error,
    },
    /// Deploying or removing the admission webhooks.
    #[error(transparent)]
    Webhook(#[from] crate::webhook::deploy::DeployError),
}

/// Result of a reconcile.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Api { what, source }
}

/// True for a 404 from the API server.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Server-side apply of `obj` (with apiVersion/kind) as the operator, forced.
pub(crate) async fn apply<K>(api: &Api<K>, name: &str, obj: &serde_json::Value) -> Result<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await
    .map_err(api_err(format!("apply {name}")))
}

/// Server-side apply of the status subresource.
pub(crate) async fn apply_status<K>(api: &Api<K>, name: &str, obj: &serde_json::Value) -> Result<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await
    .map_err(api_err(format!("apply status of {name}")))
}

/// Conditions equal ignoring `lastTransitionTime`.
pub fn same_conditions(
    a: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    b: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) -> bool {
    a.len() == b.len()
        && a.iter().all(|x| {
            b.iter().any(|y| {
                x.type_ == y.type_
                    && x.status == y.status
                    && x.reason == y.reason
                    && x.message == y.message
                    && x.observed_generation == y.observed_generation
            })
        })
}

/// JSON merge of `b` into `a` (RFC 7386 semantics, nulls kept as deletions).
pub(crate) fn networks_merge(a: &mut serde_json::Value, b: &serde_json::Value) {
    if let (Some(a), Some(b)) = (a.as_object_mut(), b.as_object()) {
        for (k, v) in b {
            a.insert(k.clone(), v.clone());
        }
    }
}
