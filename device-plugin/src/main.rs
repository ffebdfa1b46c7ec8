//! `sriov-device-plugin`: the SR-IOV kubelet device plugin.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use sriov_device_plugin::manager::{Manager, Options};
use sriov_device_plugin::preferred::AllocationPolicy;
use sriov_host::HostRoot;

/// Kubelet device plugin for SR-IOV NICs: pools of VFs (or PFs and
/// accelerators) from the upstream config file, kept current on uevents,
/// config edits and kubelet restarts, with per-device health.
#[derive(Parser, Debug)]
#[command(
    version,
    about = "Kubelet device plugin for SR-IOV NICs: pools from the upstream config, live health.",
    max_term_width = 100
)]
struct Args {
    /// Config file (upstream format); watched for changes.
    #[arg(long, default_value = "/etc/pcidp/config.json")]
    config_file: PathBuf,
    /// Resource prefix for entries without resourcePrefix.
    #[arg(long, default_value = "intel.com")]
    resource_prefix: String,
    /// Kubelet socket dir, under the host root.
    #[arg(long, default_value = "/var/lib/kubelet/device-plugins")]
    device_plugin_dir: PathBuf,
    /// Device-info dir, under the host root.
    #[arg(long, default_value = "/var/run/k8s.cni.cncf.io/devinfo/dp")]
    devinfo_dir: PathBuf,
    /// Node root (sysfs, /dev, the dirs above).
    #[arg(long, env = "SRIOV_HOST_ROOT", default_value = "/")]
    host_root: PathBuf,
    /// Serve /healthz and /metrics on this address (e.g. 127.0.0.1:9808).
    #[arg(long)]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Preferred allocation across PFs: spread or pack.
    #[arg(long, default_value = "spread")]
    allocation_policy: AllocationPolicy,
    /// Answer Allocate with CDI device names; write CDI specs to --cdi-dir.
    #[arg(long)]
    use_cdi: bool,
    /// CDI spec dir (--use-cdi), under the host root.
    #[arg(long, default_value = "/var/run/cdi")]
    cdi_dir: PathBuf,
    /// Seconds between full rescans (uevents trigger rescans too).
    #[arg(long, default_value_t = 60)]
    resync_seconds: u64,
    /// Milliseconds between health checks.
    #[arg(long, default_value_t = 2000)]
    health_interval_ms: u64,
}

/// A path as seen under the host root.
fn under(root: &HostRoot, p: &Path) -> PathBuf {
    root.join(p)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let root = HostRoot::new(&args.host_root);
    let cdi_dir = args.use_cdi.then(|| under(&root, &args.cdi_dir));
    let opts = Options {
        config_file: args.config_file.clone(),
        resource_prefix: args.resource_prefix.clone(),
        plugin_dir: under(&root, &args.device_plugin_dir),
        devinfo_dir: under(&root, &args.devinfo_dir),
        root,
        policy: args.allocation_policy,
        resync_interval: Duration::from_secs(args.resync_seconds.max(1)),
        health_interval: Duration::from_millis(args.health_interval_ms.max(50)),
        uevents: true,
        cdi_dir,
    };
    // One thread serves every pool: each gRPC call is a few tens of
    // microseconds of work, and on one thread a call's tasks (connection,
    // stream, handler) hand over without waking another worker (a futex
    // wake-up and a context switch each on a multi-threaded runtime).
    // Scans and health checks run on the blocking pool.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(async move {
        let manager = Manager::new(opts).context("cannot start")?;
        for (name, p) in manager.pools() {
            tracing::info!(resource = %name, devices = p.devices.len(), healthy = p.healthy_count(), "pool");
        }
        if let Some(addr) = args.metrics_addr {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on --metrics-addr {addr}"))?;
            tracing::info!(%addr, "serving /healthz and /metrics");
            tokio::spawn(sriov_device_plugin::metrics::serve(l, manager.status()));
        }
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler");
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
            }
        };
        manager.run(shutdown).await.context("device plugin failed")?;
        Ok(())
    })
}
