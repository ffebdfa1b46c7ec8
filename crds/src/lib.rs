//! API types of `sriovnetwork.openshift.io/v1`.
