//! The operator's settings, from the same environment variables as the Go
//! operator (`NAMESPACE`, `RESOURCE_PREFIX`, the image variables,
//! `STALE_NODE_STATE_CLEANUP_DELAY_MINUTES`, `DEV_MODE`, `CLUSTER_TYPE`),
//! in `run` and in `render` mode alike.

use std::collections::BTreeMap;

/// Default operator namespace (the upstream Helm chart's).
pub const DEFAULT_NAMESPACE: &str = "sriov-network-operator";
/// Default device-plugin resource prefix.
pub const DEFAULT_RESOURCE_PREFIX: &str = "openshift.io";
/// Default grace before a node state without a node is deleted (upstream 30 min).
pub const DEFAULT_STALE_DELAY_MINUTES: u64 = 30;
/// The image every component defaults to when no image variable is set.
pub const DEFAULT_IMAGE: &str = "ghcr.io/sriov-rs/sriov-rs:0.1.0";

/// Images of the components the operator deploys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// `SRIOV_NETWORK_CONFIG_DAEMON_IMAGE` (also read as `SRIOV_CONFIG_DAEMON_IMAGE`).
    pub config_daemon: String,
    /// `SRIOV_DEVICE_PLUGIN_IMAGE`.
    pub device_plugin: String,
    /// `SRIOV_CNI_IMAGE`.
    pub sriov_cni: String,
    /// `SRIOV_INFINIBAND_CNI_IMAGE` (empty: not installed).
    pub ib_sriov_cni: String,
    /// `OVS_CNI_IMAGE` (empty: not installed).
    pub ovs_cni: String,
    /// `RDMA_CNI_IMAGE` (empty: not installed).
    pub rdma_cni: String,
    /// `SRIOV_NETWORK_WEBHOOK_IMAGE`.
    pub webhook: String,
    /// `NETWORK_RESOURCES_INJECTOR_IMAGE`.
    pub injector: String,
}

/// Everything the operator reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `NAMESPACE`: where the operator's objects live; only policies, pool
    /// configs and the operator config of this namespace are honoured.
    pub namespace: String,
    /// `RESOURCE_PREFIX`: prefix of the device-plugin resources (NAD annotation).
    pub resource_prefix: String,
    /// Component images.
    pub images: Images,
    /// `STALE_NODE_STATE_CLEANUP_DELAY_MINUTES` (0: delete at once).
    pub stale_delay_minutes: u64,
    /// `DEV_MODE=TRUE`: NICs outside the supported list are accepted.
    pub dev_mode: bool,
    /// `CLUSTER_TYPE`: `kubernetes` (default) or `openshift`.
    pub cluster_type: String,
    /// `IMAGE_PULL_SECRETS`: comma-separated secret names for the DaemonSets.
    pub image_pull_secrets: Vec<String>,
    /// `SRIOV_CNI_BIN_PATH`: the node's CNI bin dir (default `/opt/cni/bin`).
    pub cni_bin_path: String,
    /// `ADMISSION_CONTROLLERS_ENABLED=true`: the `SriovOperatorConfig`
    /// `default` the operator creates when there is none enables the
    /// injector and the operator webhook (upstream's variable).
    pub admission_controllers_enabled: bool,
    /// `SRIOV_HOST_ROOT_PATH` (sriov-rs only): the host path the config
    /// daemon and the device plugin mount at `/host` (default `/`). A test
    /// bed points it at a simulated node's root (docs/cluster.md).
    pub host_root_path: String,
    /// `SRIOV_CONFIG_DAEMON_STATE_PATH` (sriov-rs only): the host path of the
    /// config daemon's journal (default `/var/lib/sriov-config-daemon`).
    pub config_daemon_state_path: String,
    /// `SRIOV_DAEMON_METRICS_HOST` (sriov-rs only): the address the
    /// host-network daemons serve `/healthz`, `/readyz` and `/metrics` on
    /// (default `0.0.0.0`; `127.0.0.1` keeps them off the node's network).
    pub daemon_metrics_host: String,
    /// `SRIOV_DRA_RESOURCES` (sriov-rs only): the pools (`resourceName`s,
    /// comma separated) the DRA driver serves instead of the device
    /// plugin; the device plugin gets them as `--dra-resources` and leaves
    /// them alone (the Helm chart's `draDriver.resources`, docs/dra.md).
    pub dra_resources: Vec<String>,
    /// The admission webhooks' certificates (upstream's
    /// `ADMISSION_CONTROLLERS_CERTIFICATES_*`, from the Helm chart's
    /// `operator.admissionControllers.certificates`).
    pub webhook_certs: WebhookCertSettings,
}

/// Where the webhooks' serving certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookCertSettings {
    /// `ADMISSION_CONTROLLERS_CERTIFICATES_OPERATOR_SECRET_NAME` (default
    /// `operator-webhook-cert`): the operator webhook's Secret.
    pub operator_secret: String,
    /// `ADMISSION_CONTROLLERS_CERTIFICATES_INJECTOR_SECRET_NAME` (default
    /// `network-resources-injector-cert`): the injector's Secret.
    pub injector_secret: String,
    /// `ADMISSION_CONTROLLERS_CERTIFICATES_CERT_MANAGER_ENABLED=true`:
    /// cert-manager fills the Secrets (Certificates named as the Secrets)
    /// and the configurations' caBundle; the operator writes neither.
    pub cert_manager: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_vars(&BTreeMap::new())
    }
}

impl Settings {
    /// The extended-resource names of the DRA pools: `<prefix>/<pool>`
    /// (a name that already has a `/` as given), as the NADs of their
    /// networks name them.
    pub fn dra_resource_names(&self) -> std::collections::BTreeSet<String> {
        self.dra_resources
            .iter()
            .map(|r| {
                if r.contains('/') {
                    r.clone()
                } else {
                    format!("{}/{r}", self.resource_prefix)
                }
            })
            .collect()
    }

    /// From the process environment.
    pub fn from_env() -> Self {
        let vars: BTreeMap<String, String> = std::env::vars().collect();
        Settings::from_vars(&vars)
    }

    /// From a map of variables (tests).
    pub fn from_vars(vars: &BTreeMap<String, String>) -> Self {
        let get = |k: &str| {
            vars.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let image = |keys: &[&str], default: &str| {
            keys.iter()
                .find_map(|k| get(k))
                .unwrap_or_else(|| default.to_string())
        };
        Settings {
            namespace: get("NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.into()),
            resource_prefix: get("RESOURCE_PREFIX")
                .unwrap_or_else(|| DEFAULT_RESOURCE_PREFIX.into()),
            images: Images {
                config_daemon: image(
                    &[
                        "SRIOV_NETWORK_CONFIG_DAEMON_IMAGE",
                        "SRIOV_CONFIG_DAEMON_IMAGE",
                    ],
                    DEFAULT_IMAGE,
                ),
                device_plugin: image(&["SRIOV_DEVICE_PLUGIN_IMAGE"], DEFAULT_IMAGE),
                sriov_cni: image(&["SRIOV_CNI_IMAGE"], DEFAULT_IMAGE),
                ib_sriov_cni: image(&["SRIOV_INFINIBAND_CNI_IMAGE"], ""),
                ovs_cni: image(&["OVS_CNI_IMAGE"], ""),
                rdma_cni: image(&["RDMA_CNI_IMAGE"], ""),
                webhook: image(&["SRIOV_NETWORK_WEBHOOK_IMAGE"], DEFAULT_IMAGE),
                injector: image(&["NETWORK_RESOURCES_INJECTOR_IMAGE"], DEFAULT_IMAGE),
            },
            stale_delay_minutes: get("STALE_NODE_STATE_CLEANUP_DELAY_MINUTES")
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_STALE_DELAY_MINUTES),
            dev_mode: get("DEV_MODE").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            cluster_type: get("CLUSTER_TYPE").unwrap_or_else(|| "kubernetes".into()),
            image_pull_secrets: get("IMAGE_PULL_SECRETS")
                .map(|v| comma_list(&v))
                .unwrap_or_default(),
            dra_resources: get("SRIOV_DRA_RESOURCES")
                .map(|v| comma_list(&v))
                .unwrap_or_default(),
            cni_bin_path: get("SRIOV_CNI_BIN_PATH").unwrap_or_else(|| "/opt/cni/bin".into()),
            admission_controllers_enabled: get("ADMISSION_CONTROLLERS_ENABLED")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            host_root_path: get("SRIOV_HOST_ROOT_PATH").unwrap_or_else(|| "/".into()),
            config_daemon_state_path: get("SRIOV_CONFIG_DAEMON_STATE_PATH")
                .unwrap_or_else(|| "/var/lib/sriov-config-daemon".into()),
            daemon_metrics_host: get("SRIOV_DAEMON_METRICS_HOST")
                .unwrap_or_else(|| "0.0.0.0".into()),
            webhook_certs: WebhookCertSettings {
                operator_secret: get("ADMISSION_CONTROLLERS_CERTIFICATES_OPERATOR_SECRET_NAME")
                    .unwrap_or_else(|| "operator-webhook-cert".into()),
                injector_secret: get("ADMISSION_CONTROLLERS_CERTIFICATES_INJECTOR_SECRET_NAME")
                    .unwrap_or_else(|| "network-resources-injector-cert".into()),
                cert_manager: get("ADMISSION_CONTROLLERS_CERTIFICATES_CERT_MANAGER_ENABLED")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            },
        }
    }
}

/// The non-empty, trimmed items of a comma-separated list.
fn comma_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}
