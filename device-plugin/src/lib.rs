//! The SR-IOV kubelet device plugin: pools of devices chosen by selectors
//! (upstream config format), served to the kubelet over the device plugin
//! API v1beta1, with live rescans and health.
//!
//! Modules:
//! - [`affinity`]: preferring devices near given GPUs in the PCIe tree.
//! - [`allocate`]: Allocate responses: env vars, device specs, mounts, device-info files.
//! - [`cdi`]: CDI mode (`--use-cdi`).
//! - [`config`]: the config file, in the upstream format.
//! - [`ddp`]: DDP profiles of i40e/ice PFs (`ddpProfiles`).
//! - [`device`]: candidate devices from a host scan.
//! - `go_peer`: upstream's Go plugin over a simulated tree, side by side (feature `testing`).
//! - [`kubelet`]: registration with the kubelet, and its socket's lifecycle.
//! - [`manager`]: the running plugin: config, scans, pools, one server per pool.
//! - [`metrics`]: `/healthz` and `/metrics`.
//! - [`plugin`]: one pool's `DevicePlugin` gRPC server.
//! - [`podresources`]: the kubelet's PodResources API; the GPUs of the pod being admitted.
//! - [`pools`]: the devices of each resource, with their health.
//! - [`preferred`]: which available devices GetPreferredAllocation hands out.
//! - [`selectors`]: which devices a resource claims.
//! - `test_kubelet`: a test kubelet for the tests and benchmark (feature `testing`).
//! - [`upstream_args`]: the Go plugin's command lines, mapped to this one's.
//! - [`watch`]: what makes the plugin look again: inotify, uevents, a timer.

pub mod affinity;
pub mod allocate;
pub mod cdi;
pub mod config;
pub mod ddp;
pub mod device;
#[cfg(feature = "testing")]
pub mod go_peer;
pub mod kubelet;
pub mod manager;
pub mod metrics;
pub mod plugin;
pub mod podresources;
pub mod pools;
pub mod preferred;
pub mod selectors;
#[cfg(feature = "testing")]
pub mod test_kubelet;
pub mod upstream_args;
pub mod watch;

/// The kubelet device plugin API, v1beta1 (generated from
/// `proto/api.proto`).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod api {
    tonic::include_proto!("v1beta1");

    /// The API version sent at registration.
    pub const VERSION: &str = "v1beta1";
    /// The kubelet's registration socket name in the device plugin dir.
    pub const KUBELET_SOCKET: &str = "kubelet.sock";
    /// Device health values.
    pub const HEALTHY: &str = "Healthy";
    /// Device health values.
    pub const UNHEALTHY: &str = "Unhealthy";
}

/// The kubelet PodResources API, v1 (generated from upstream's
/// `proto/podresources/v1/api.proto`): the client the plugin uses, and the
/// server the tests' fake kubelet serves.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pod_resources_api {
    tonic::include_proto!("v1");
}
