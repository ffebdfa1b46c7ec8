//! The `NetworkAttachmentDefinition` kind (`k8s.cni.cncf.io/v1`), as the
//! operator writes and reads it.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `spec` of a NetworkAttachmentDefinition: the CNI config as a JSON string.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "k8s.cni.cncf.io",
    version = "v1",
    kind = "NetworkAttachmentDefinition",
    plural = "network-attachment-definitions",
    namespaced
)]
pub struct NetworkAttachmentDefinitionSpec {
    /// CNI configuration (JSON text).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub config: String,
}

/// `k8s.v1.cni.cncf.io/resourceName`: the device-plugin resource of the network.
pub const RESOURCE_NAME_ANNOTATION: &str = "k8s.v1.cni.cncf.io/resourceName";
/// `sriovnetwork.openshift.io/owner-ref`: `<Kind>.<group>/<namespace>/<name>` of the network CR.
pub const OWNER_REF_ANNOTATION: &str = "sriovnetwork.openshift.io/owner-ref";
/// Finalizer on cross-namespace network CRs (their NAD has no ownerReference).
pub const NAD_FINALIZER: &str = "netattdef.finalizers.sriovnetwork.openshift.io";
/// Annotation on a network CR: the namespace its NAD was last created in.
pub const LAST_NETWORK_NAMESPACE: &str =
    "operator.sriovnetwork.openshift.io/last-network-namespace";
