//! The API server stand-in for the operator's tests
//! ([`sriov_sim::api_server`]): the test takes each request in order,
//! checks it and answers it; `check_rbac` verifies every request against
//! deploy/operator/rbac.yaml. [`cluster`] is a stateful in-memory cluster
//! for the controller loop tests.

// Each test binary uses part of it.
#![allow(dead_code, unused_imports)]

pub mod cluster;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
pub use sriov_sim::api_server::{ApiServer, NS, RbacNeed, Req, merge};

/// deploy/operator/rbac.yaml.
pub fn rbac_yaml() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/operator/rbac.yaml")
}

/// The rules of deploy/operator/rbac.yaml: (Role rules, ClusterRole rules).
pub fn rbac_rules() -> (Vec<Value>, Vec<Value>) {
    sriov_sim::api_server::rbac_rules(&rbac_yaml())
}

/// Every request is allowed by deploy/operator/rbac.yaml
/// ([`sriov_sim::api_server::check_rbac_requests`]).
pub fn check_rbac_requests(requests: &[(String, String, String, bool)]) -> BTreeSet<RbacNeed> {
    sriov_sim::api_server::check_rbac_requests(&rbac_yaml(), requests)
}

/// A client on the mock with the operator's rights, and the server side.
pub fn pair() -> (kube::Client, ApiServer) {
    sriov_sim::api_server::pair(rbac_yaml())
}
