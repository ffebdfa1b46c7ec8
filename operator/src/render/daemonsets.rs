//! `SriovOperatorConfig` `default` → the DaemonSets the operator deploys:
//! the config daemon, the device plugin (on nodes labelled
//! `sriovnetwork.openshift.io/device-plugin=Enabled`, one config file per
//! node from the `device-plugin-config` ConfigMap) and the CNI installer
//! (copies the `sriov` binary into the node's CNI bin dir). The manifests in
//! `deploy/` are the templates; images come from the operator's environment,
//! node selection from `configDaemonNodeSelector`, `logLevel` becomes
//! `SRIOV_LOG`, `useCDI` the device plugin's `--use-cdi`,
//! `configDaemonEnvVars` the daemon's environment. Every DaemonSet is owned
//! by the operator config, so deleting it removes them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, EnvVar, EnvVarSource, LocalObjectReference, ObjectFieldSelector, PodSpec,
};
use sriov_crds::SriovOperatorConfig;

use super::node::{DEVICE_PLUGIN_ENABLED, DEVICE_PLUGIN_LABEL};
use super::{DEVICE_PLUGIN_CONFIG_MAP, owner_ref_to_config};
use crate::settings::Settings;

const CONFIG_DAEMON: &str = include_str!("../../../deploy/config-daemon/daemonset.yaml");
const DEVICE_PLUGIN: &str = include_str!("../../../deploy/device-plugin/daemonset.yaml");
const CNI: &str = include_str!("../../../deploy/cni/daemonset.yaml");

/// Name of the config-daemon DaemonSet (as upstream).
pub const CONFIG_DAEMON_NAME: &str = "sriov-network-config-daemon";
/// Name of the device-plugin DaemonSet (as upstream).
pub const DEVICE_PLUGIN_NAME: &str = "sriov-device-plugin";
/// Name of the CNI-installer DaemonSet.
pub const CNI_NAME: &str = "sriov-cni";

/// Names of every DaemonSet the operator may deploy.
pub const ALL: [&str; 3] = [CONFIG_DAEMON_NAME, DEVICE_PLUGIN_NAME, CNI_NAME];

/// Default `configDaemonNodeSelector` when the operator creates `default`
/// (the Go operator's).
pub fn default_node_selector() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("node-role.kubernetes.io/worker".to_string(), String::new()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
    ])
}

fn daemonset_from(text: &str) -> DaemonSet {
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(text).expect("deploy manifests are YAML");
    let doc = docs
        .into_iter()
        .find(|d| d["kind"] == "DaemonSet")
        .expect("the manifest holds a DaemonSet");
    serde_json::from_value(doc).expect("the manifest is a DaemonSet")
}

/// `logLevel` → `SRIOV_LOG`: unset or 0 `info`, 1 `debug`, 2 and more `trace`
/// (upstream's verbosity levels V(0), V(1), V(2)).
pub fn log_filter(level: Option<i32>) -> &'static str {
    match level.unwrap_or(0) {
        i32::MIN..=0 => "info",
        1 => "debug",
        _ => "trace",
    }
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        value_from: None,
    }
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_string(),
                api_version: None,
            }),
            ..Default::default()
        }),
    }
}

fn set_env(envs: &mut Vec<EnvVar>, var: EnvVar) {
    match envs.iter_mut().find(|e| e.name == var.name) {
        Some(e) => *e = var,
        None => envs.push(var),
    }
}

fn pod_spec(ds: &mut DaemonSet) -> &mut PodSpec {
    ds.spec
        .get_or_insert_with(Default::default)
        .template
        .spec
        .get_or_insert_with(Default::default)
}

fn common(
    ds: &mut DaemonSet,
    config: &SriovOperatorConfig,
    settings: &Settings,
    image: &str,
    node_selector: BTreeMap<String, String>,
) {
    ds.metadata.namespace = Some(settings.namespace.clone());
    ds.metadata.owner_references = owner_ref_to_config(config);
    let log = log_filter(config.spec.log_level);
    let spec = pod_spec(ds);
    spec.node_selector = Some(node_selector);
    if !settings.image_pull_secrets.is_empty() {
        spec.image_pull_secrets = Some(
            settings
                .image_pull_secrets
                .iter()
                .map(|s| LocalObjectReference { name: s.clone() })
                .collect(),
        );
    }
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        c.image = Some(image.to_string());
        let envs = c.env.get_or_insert_with(Vec::new);
        if envs.iter().any(|e| e.name == "SRIOV_LOG") {
            set_env(envs, env("SRIOV_LOG", log));
        }
        if c.env.as_ref().is_some_and(Vec::is_empty) {
            c.env = None;
        }
    }
}

/// Where the node is (sriov-rs settings, no upstream equivalent): the
/// `/host` volume's host path (`/` in the manifests), the config daemon's
/// journal dir, and the host of the daemons' `--metrics-addr`.
fn node_paths(ds: &mut DaemonSet, settings: &Settings) {
    let spec = pod_spec(ds);
    for v in spec.volumes.iter_mut().flatten() {
        let Some(hp) = v.host_path.as_mut() else {
            continue;
        };
        if v.name == "host" && hp.path == "/" {
            hp.path = settings.host_root_path.clone();
        } else if v.name == "state" && hp.path == "/var/lib/sriov-config-daemon" {
            hp.path = settings.config_daemon_state_path.clone();
        }
    }
    for c in spec.containers.iter_mut() {
        for a in c.args.iter_mut().flatten() {
            if let Some(port) = a
                .strip_prefix("--metrics-addr=")
                .and_then(|addr| addr.rsplit_once(':'))
                .map(|(_, port)| port.to_string())
            {
                *a = format!("--metrics-addr={}:{port}", settings.daemon_metrics_host);
            }
        }
    }
}

/// The three DaemonSets for the operator config.
pub fn render_daemonsets(config: &SriovOperatorConfig, settings: &Settings) -> Vec<DaemonSet> {
    let selector = config
        .spec
        .config_daemon_node_selector
        .clone()
        .unwrap_or_default();

    let mut daemon = daemonset_from(CONFIG_DAEMON);
    common(
        &mut daemon,
        config,
        settings,
        &settings.images.config_daemon,
        selector.clone(),
    );
    if let Some(c) = pod_spec(&mut daemon).containers.first_mut() {
        let envs = c.env.get_or_insert_with(Vec::new);
        set_env(envs, field_env("NAMESPACE", "metadata.namespace"));
        for (k, v) in config.spec.config_daemon_env_vars.iter().flatten() {
            set_env(envs, env(k, v));
        }
    }
    node_paths(&mut daemon, settings);

    let mut dp = daemonset_from(DEVICE_PLUGIN);
    let mut dp_selector = selector.clone();
    dp_selector.insert(
        DEVICE_PLUGIN_LABEL.to_string(),
        DEVICE_PLUGIN_ENABLED.to_string(),
    );
    common(
        &mut dp,
        config,
        settings,
        &settings.images.device_plugin,
        dp_selector,
    );
    let use_cdi = config.spec.use_cdi.unwrap_or(false);
    let spec = pod_spec(&mut dp);
    if let Some(c) = spec.containers.first_mut() {
        let mut args: Vec<String> = c
            .args
            .take()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| {
                !a.starts_with("--config-file")
                    && !a.starts_with("--resource-prefix")
                    && !a.starts_with("--dra-resources")
                    && a != "--use-cdi"
            })
            .collect();
        args.insert(0, "--config-file=/etc/pcidp/$(NODE_NAME)".to_string());
        args.insert(1, format!("--resource-prefix={}", settings.resource_prefix));
        if use_cdi {
            args.push("--use-cdi".to_string());
        }
        if !settings.dra_resources.is_empty() {
            // The DRA driver's pools (same config file): not advertised here.
            args.push(format!(
                "--dra-resources={}",
                settings.dra_resources.join(",")
            ));
        }
        c.args = Some(args);
        let envs = c.env.get_or_insert_with(Vec::new);
        set_env(envs, field_env("NODE_NAME", "spec.nodeName"));
    }
    for v in spec.volumes.iter_mut().flatten() {
        if let Some(cm) = v.config_map.as_mut() {
            *cm = ConfigMapVolumeSource {
                name: DEVICE_PLUGIN_CONFIG_MAP.to_string(),
                ..Default::default()
            };
        }
    }
    if spec.service_account_name.is_some() {
        spec.service_account_name = Some(DEVICE_PLUGIN_NAME.to_string());
    }
    node_paths(&mut dp, settings);

    let mut cni = daemonset_from(CNI);
    common(
        &mut cni,
        config,
        settings,
        &settings.images.sriov_cni,
        selector,
    );
    let bin = settings.cni_bin_path.clone();
    for v in pod_spec(&mut cni).volumes.iter_mut().flatten() {
        if let Some(hp) = v.host_path.as_mut() {
            hp.path = bin.clone();
        }
    }

    vec![daemon, dp, cni]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SriovOperatorConfig {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovOperatorConfig",
            "metadata": {"name": "default", "namespace": "sriov-network-operator", "uid": "u"},
            "spec": {}
        }))
        .unwrap()
    }

    /// (volume name, host path) of every hostPath volume, and every `--metrics-addr`.
    fn node_side(ds: &DaemonSet) -> (Vec<(String, String)>, Vec<String>) {
        let spec = ds.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        let vols = spec
            .volumes
            .iter()
            .flatten()
            .filter_map(|v| Some((v.name.clone(), v.host_path.as_ref()?.path.clone())))
            .collect();
        let addrs = spec
            .containers
            .iter()
            .flat_map(|c| c.args.iter().flatten())
            .filter(|a| a.starts_with("--metrics-addr="))
            .cloned()
            .collect();
        (vols, addrs)
    }

    fn vol<'a>(vols: &'a [(String, String)], name: &str) -> &'a str {
        &vols.iter().find(|(n, _)| n == name).unwrap().1
    }

    #[test]
    fn node_paths_default_to_the_manifests() {
        let ds = render_daemonsets(&config(), &Settings::default());
        let (daemon, dp) = (node_side(&ds[0]), node_side(&ds[1]));
        assert_eq!(vol(&daemon.0, "host"), "/");
        assert_eq!(vol(&daemon.0, "state"), "/var/lib/sriov-config-daemon");
        assert_eq!(daemon.1, ["--metrics-addr=0.0.0.0:9110"]);
        assert_eq!(vol(&dp.0, "host"), "/");
        assert_eq!(dp.1, ["--metrics-addr=0.0.0.0:9808"]);
    }

    #[test]
    fn node_paths_from_settings() {
        let vars = BTreeMap::from(
            [
                ("SRIOV_HOST_ROOT_PATH", "/var/lib/lane/sim"),
                ("SRIOV_CONFIG_DAEMON_STATE_PATH", "/var/lib/lane/daemon"),
                ("SRIOV_DAEMON_METRICS_HOST", "127.0.0.1"),
                ("SRIOV_CNI_BIN_PATH", "/var/lib/lane/cni/bin"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let ds = render_daemonsets(&config(), &Settings::from_vars(&vars));
        let (daemon, dp, cni) = (node_side(&ds[0]), node_side(&ds[1]), node_side(&ds[2]));
        assert_eq!(vol(&daemon.0, "host"), "/var/lib/lane/sim");
        assert_eq!(vol(&daemon.0, "state"), "/var/lib/lane/daemon");
        assert_eq!(daemon.1, ["--metrics-addr=127.0.0.1:9110"]);
        assert_eq!(vol(&dp.0, "host"), "/var/lib/lane/sim");
        // The kubelet's directories stay the node's own.
        assert_eq!(
            vol(&dp.0, "device-plugins"),
            "/var/lib/kubelet/device-plugins"
        );
        assert_eq!(vol(&dp.0, "devinfo"), "/var/run/k8s.cni.cncf.io/devinfo/dp");
        assert_eq!(
            vol(&dp.0, "pod-resources"),
            "/var/lib/kubelet/pod-resources"
        );
        assert_eq!(dp.1, ["--metrics-addr=127.0.0.1:9808"]);
        assert_eq!(vol(&cni.0, "cni-bin"), "/var/lib/lane/cni/bin");
    }

    #[test]
    fn dra_resources_go_to_the_device_plugin() {
        let args = |ds: &DaemonSet| -> Vec<String> {
            let spec = ds.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
            spec.containers[0].args.clone().unwrap_or_default()
        };
        let plain = render_daemonsets(&config(), &Settings::default());
        assert!(
            !args(&plain[1])
                .iter()
                .any(|a| a.starts_with("--dra-resources"))
        );
        let vars = BTreeMap::from([(
            "SRIOV_DRA_RESOURCES".to_string(),
            " dra_a, dra_b ,".to_string(),
        )]);
        let ds = render_daemonsets(&config(), &Settings::from_vars(&vars));
        let dp = args(&ds[1]);
        assert_eq!(
            dp.iter()
                .filter(|a| a.starts_with("--dra-resources"))
                .collect::<Vec<_>>(),
            ["--dra-resources=dra_a,dra_b"]
        );
        assert!(dp[0].starts_with("--config-file="), "{dp:?}");
    }
}
