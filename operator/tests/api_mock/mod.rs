//! The API server stand-in for the operator's tests
//! ([`sriov_sim::api_server`]): the test takes each request in order,
//! checks it and answers it; `check_rbac` verifies every request against
//! deploy/operator/rbac.yaml. [`cluster`] is a stateful in-memory cluster
//! for the controller loop tests.

// Each test binary uses part of it.
#![allow(dead_code, unused_imports)]

pub mod cluster;

use std::collections::BTreeSet;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

use serde_json::Value;
pub use sriov_sim::api_server::{NS, RbacNeed, Req, merge};

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

/// The server side of the mock, checked against the operator's RBAC.
pub struct ApiServer(sriov_sim::api_server::ApiServer);

/// A client on the mock, and the server side.
pub fn pair() -> (kube::Client, ApiServer) {
    let (client, server) = sriov_sim::api_server::pair();
    (client, ApiServer(server))
}

impl ApiServer {
    /// Every request seen is allowed by deploy/operator/rbac.yaml.
    pub fn check_rbac(&self) {
        self.0.check_rbac_against(&rbac_yaml());
    }
}

impl Deref for ApiServer {
    type Target = sriov_sim::api_server::ApiServer;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for ApiServer {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}
