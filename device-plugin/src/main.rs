//! `sriov-device-plugin`: the SR-IOV kubelet device plugin.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use sriov_device_plugin::manager::{Manager, Options};
use sriov_device_plugin::podresources;
use sriov_device_plugin::preferred::AllocationPolicy;
use sriov_device_plugin::upstream_args;
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
    #[arg(long, env = sriov_host::root::HOST_ROOT_ENV, default_value = "/")]
    host_root: PathBuf,
    /// Serve /healthz, /readyz and /metrics on this address (e.g. 127.0.0.1:9808).
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
    /// Also mark devices Unhealthy while their PF link is down (upstream: off).
    #[arg(long)]
    pf_link_health: bool,
    /// Prefer devices near pods' GPUs of these ("": off).
    #[arg(long, default_value = sriov_device_plugin::podresources::DEFAULT_GPU_RESOURCES)]
    gpu_resources: String,
    /// Pools (`resourceName`s, comma separated) left to the DRA driver.
    #[arg(long, value_delimiter = ',')]
    dra_resources: Vec<String>,
    /// PodResources socket (host root).
    #[arg(long, default_value = sriov_device_plugin::podresources::DEFAULT_SOCKET)]
    pod_resources_socket: PathBuf,
    /// Log verbosity as upstream (-v N): 3 and above add debug messages.
    #[arg(long, hide = true)]
    log_level: Option<u32>,
    /// entrypoint.sh's --log-dir=NAME: also log to /var/log/NAME.
    #[arg(long, hide = true)]
    log_dir: Option<PathBuf>,
    /// glog's -log_dir DIR: also log to DIR.
    #[arg(long = "log_dir", hide = true)]
    glog_dir: Option<PathBuf>,
    /// glog: log to stderr only (no log file).
    #[arg(long, hide = true)]
    logtostderr: bool,
    /// glog: log to stderr as well as files (always done here).
    #[arg(long, hide = true)]
    alsologtostderr: bool,
    /// glog flags accepted and ignored.
    #[arg(long, hide = true)]
    stderrthreshold: Option<String>,
    #[arg(long, hide = true)]
    vmodule: Option<String>,
    #[arg(long = "log_backtrace_at", hide = true)]
    log_backtrace_at: Option<String>,
    #[arg(long = "log_link", hide = true)]
    log_link: Option<String>,
    #[arg(long, hide = true)]
    logbuflevel: Option<String>,
}

/// A path as seen under the host root.
fn under(root: &HostRoot, p: &Path) -> PathBuf {
    root.join(p)
}

/// Logging as the upstream flags ask: the level from `--log-level`/`-v`
/// (`RUST_LOG` wins when set), stderr always, and a log file
/// `sriov-device-plugin.log` in the log directory when one is given
/// (not with `--logtostderr`, as glog). A log file that cannot be opened
/// is reported and skipped.
fn init_logging(args: &Args) {
    use tracing_subscriber::fmt::writer::MakeWriterExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(upstream_args::log_filter(args.log_level.unwrap_or(0)))
    });
    let dir = args
        .glog_dir
        .clone()
        .or_else(|| {
            args.log_dir
                .as_deref()
                .map(|d| upstream_args::entrypoint_log_dir(&d.to_string_lossy()))
        })
        .filter(|_| !args.logtostderr);
    let mut file_error = None;
    let file = dir.and_then(|d| {
        let path = d.join("sriov-device-plugin.log");
        let r = std::fs::create_dir_all(&d).and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
        });
        match r {
            Ok(f) => Some(std::sync::Arc::new(f)),
            Err(e) => {
                file_error = Some(format!("cannot open log file {}: {e}", path.display()));
                None
            }
        }
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match file {
        Some(f) => builder
            .with_writer(std::io::stderr.and(f.with_max_level(tracing::Level::TRACE)))
            .init(),
        None => builder.with_writer(std::io::stderr).init(),
    }
    if let Some(e) = file_error {
        tracing::warn!("{e}; logging to stderr only");
    }
}

fn main() -> anyhow::Result<()> {
    let mut argv = std::env::args();
    let program = argv.next().unwrap_or_else(|| "sriov-device-plugin".into());
    let args = Args::parse_from(std::iter::once(program).chain(upstream_args::normalize(argv)));
    init_logging(&args);
    let root = HostRoot::new(&args.host_root);
    let host = root.clone();
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
        health: sriov_device_plugin::pools::HealthChecks {
            pf_link: args.pf_link_health,
        },
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
        let mut manager = Manager::new(opts).context("cannot start")?;
        let gpu_resources = podresources::parse_gpu_resources(&args.gpu_resources);
        if gpu_resources.is_empty() {
            tracing::info!("GPU-aware preferred allocation off (--gpu-resources is empty)");
        } else {
            let socket = under(&host, &args.pod_resources_socket);
            tracing::info!(gpu_resources = ?gpu_resources, socket = %socket.display(),
                "GPU-aware preferred allocation: PodResources");
            manager = manager.with_gpu_pairing(std::sync::Arc::new(podresources::GpuPairing::new(
                socket,
                gpu_resources,
            )));
        }
        if !args.dra_resources.is_empty() {
            tracing::info!(resources = %args.dra_resources.join(","), "pools left to the DRA driver");
            manager = manager.with_dra_resources(args.dra_resources.clone());
        }
        for (name, p) in manager.pools() {
            tracing::info!(resource = %name, devices = p.devices.len(), healthy = p.healthy_count(), "pool");
        }
        if let Some(addr) = args.metrics_addr {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on --metrics-addr {addr}"))?;
            tracing::info!(%addr, "serving /healthz, /readyz and /metrics");
            tokio::spawn(sriov_device_plugin::metrics::serve(l, manager.status()));
        }
        manager
            .run(sriov_health::shutdown_signal())
            .await
            .context("device plugin failed")?;
        Ok(())
    })
}
