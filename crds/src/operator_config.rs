//! `SriovOperatorConfig`: operator-wide settings. Only the object named
//! `default` is used; the CRD schema rejects any other name.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The only valid name of a `SriovOperatorConfig`.
pub const OPERATOR_CONFIG_NAME: &str = "default";

/// Desired state of the operator.
// Two `printcolumn(...)` entries look like duplicates to clippy.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "sriovnetwork.openshift.io",
    version = "v1",
    kind = "SriovOperatorConfig",
    plural = "sriovoperatorconfigs",
    namespaced,
    status = "SriovOperatorConfigStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    doc = "SriovOperatorConfig holds operator-wide settings; only the object named 'default' in the operator namespace is used."
)]
// A missing or null `spec` reads as the default spec (`crate::absent_spec`).
#[serde(remote = "Self")]
pub struct SriovOperatorConfigSpec {
    /// Nodes the config daemon runs on.
    #[serde(
        rename = "configDaemonNodeSelector",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub config_daemon_node_selector: Option<BTreeMap<String, String>>,
    /// Deploy the network resource injector webhook.
    #[serde(
        rename = "enableInjector",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_injector: Option<bool>,
    /// Deploy the operator admission webhook.
    #[serde(
        rename = "enableOperatorWebhook",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_operator_webhook: Option<bool>,
    /// Operator log verbosity, 0 (basic) to 2 (all).
    #[serde(rename = "logLevel", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 2))]
    pub log_level: Option<i32>,
    /// Do not drain nodes before disruptive changes.
    #[serde(
        rename = "disableDrain",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_drain: Option<bool>,
    /// Enable OVS hardware offload.
    #[serde(
        rename = "enableOvsOffload",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_ovs_offload: Option<bool>,
    /// `daemon` (default) or `systemd`.
    #[serde(
        rename = "configurationMode",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    #[schemars(extend("enum" = ["daemon", "systemd"]))]
    pub configuration_mode: String,
    /// Use the Container Device Interface in the device plugin.
    #[serde(rename = "useCDI", default, skip_serializing_if = "Option::is_none")]
    pub use_cdi: Option<bool>,
    /// Config daemon plugins to disable.
    #[serde(
        rename = "disablePlugins",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(extend("items" = {"type": "string", "enum": ["mellanox"]}))]
    pub disable_plugins: Vec<String>,
    /// Experimental features.
    #[serde(
        rename = "featureGates",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub feature_gates: Option<BTreeMap<String, bool>>,
    /// Extra environment variables for the config daemon.
    #[serde(
        rename = "configDaemonEnvVars",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub config_daemon_env_vars: Option<BTreeMap<String, String>>,
    /// Config daemon log persistence.
    #[serde(rename = "logConfig", default, skip_serializing_if = "Option::is_none")]
    pub log_config: Option<LogConfig>,
}

/// Config daemon log persistence on the host.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct LogConfig {
    /// Persist logs. Defaults to true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Rotate at this size (MB), 1-1024.
    #[serde(rename = "maxSizeMB", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1024))]
    pub max_size_mb: Option<i32>,
    /// Rotated files kept, 1-20.
    #[serde(rename = "maxFiles", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 20))]
    pub max_files: Option<i32>,
    /// Days rotated files are kept, 0-365.
    #[serde(
        rename = "maxAgeDays",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 0, max = 365))]
    pub max_age_days: Option<i32>,
    /// Gzip rotated files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compress: Option<bool>,
    /// Host directory of the logs.
    #[serde(rename = "hostPath", default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
}

/// Observed state of the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SriovOperatorConfigStatus {
    /// Runtime status of the network resource injector.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub injector: String,
    /// Runtime status of the operator webhook.
    #[serde(
        rename = "operatorWebhook",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub operator_webhook: String,
    /// `Ready` / `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
