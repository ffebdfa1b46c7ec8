//! The SR-IOV kubelet device plugin: pools of devices chosen by selectors
//! (upstream config format), served to the kubelet over the device plugin
//! API v1beta1, with live rescans and health.
//!
//! - [`config`], [`selectors`]: the config file and what it selects.
//! - [`device`], [`pools`]: candidate devices from a host scan, pools and
//!   health.
//! - [`allocate`], [`preferred`]: Allocate responses, device-info files,
//!   preferred allocations; [`affinity`]: preferring devices near given
//!   GPUs in the PCIe tree.
//! - [`upstream_args`]: the Go plugin's command lines, mapped to this one's.

pub mod affinity;
pub mod allocate;
pub mod cdi;
pub mod config;
pub mod ddp;
pub mod device;
pub mod kubelet;
pub mod manager;
pub mod metrics;
pub mod plugin;
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
