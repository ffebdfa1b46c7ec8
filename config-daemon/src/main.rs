//! `sriov-config-daemon`: applies SR-IOV configuration to this node.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use sriov_config_daemon::apply::ApplyOptions;
use sriov_config_daemon::k8s::{Daemon, K8sConfig};
use sriov_config_daemon::metrics::{Metrics, RunSample};
use sriov_config_daemon::policies::parse_node_labels;
use sriov_config_daemon::standalone::watch::watch;
use sriov_config_daemon::standalone::{RunReport, StandaloneConfig, WatchOptions, run_once};
use sriov_host::HostRoot;

/// Applies SR-IOV configuration (VF counts, VF drivers, MTUs) to this node
/// and reports its NICs.
#[derive(Parser, Debug)]
#[command(name = "sriov-config-daemon", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Kubernetes: keep this node matching its SriovNetworkNodeState.
    Run(RunArgs),
    /// Standalone: apply SriovNetworkNodePolicy objects from a YAML file.
    Apply(ApplyArgs),
    /// Print the node's SR-IOV PFs and VFs as a table.
    Show(ShowArgs),
}

#[derive(Args, Debug)]
struct ShowArgs {
    /// Root under which /sys and /dev are resolved.
    #[arg(long, env = sriov_host::root::HOST_ROOT_ENV, default_value = "/")]
    host_root: PathBuf,
    /// Print the SriovNetworkNodeState status interfaces as JSON instead.
    #[arg(long)]
    json: bool,
}

fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let root = HostRoot::new(&args.host_root);
    let node = sriov_config_daemon::discover::scan_node(&root)
        .with_context(|| format!("scanning the node under {}", args.host_root.display()))?;
    let ifaces = sriov_config_daemon::discover::interfaces(&node);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&ifaces)?);
    } else {
        print!("{}", sriov_config_daemon::table::render(&ifaces));
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
struct CommonArgs {
    /// Root under which /sys and /dev are resolved.
    #[arg(long, env = sriov_host::root::HOST_ROOT_ENV, default_value = "/")]
    host_root: PathBuf,
    /// Journal of the PFs this daemon configured.
    #[arg(long, default_value = "/var/lib/sriov-config-daemon")]
    state_dir: PathBuf,
    /// Seconds the kernel may take to create or remove a PF's VFs.
    #[arg(long, default_value_t = 60.0)]
    vf_timeout: f64,
    /// Seconds a driver may take to bind one VF.
    #[arg(long, default_value_t = 10.0)]
    bind_timeout: f64,
}

#[derive(Args, Debug)]
struct ApplyArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// YAML stream of SriovNetworkNodePolicy objects.
    #[arg(long, short = 'p')]
    policies: PathBuf,
    /// This node's labels, matched against the policies' nodeSelector.
    #[arg(long, default_value = "")]
    node_labels: String,
    /// Node name for the reported SriovNetworkNodeState (default: hostname).
    #[arg(long, env = "NODE_NAME")]
    node_name: Option<String>,
    /// Print the plan, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON instead of YAML.
    #[arg(long)]
    json: bool,
    /// Write the device plugin config for this node here.
    #[arg(long)]
    device_plugin_config: Option<PathBuf>,
    /// Also apply steps that remove or rebind VFs held by pods.
    #[arg(long)]
    allow_disruption: bool,
    /// Apply once and exit (the default; for boot-time use before the kubelet).
    #[arg(long, conflicts_with = "watch")]
    once: bool,
    /// Keep going: re-apply on policy file changes, on drift (uevents) and
    /// every --resync-interval; one line per run on stdout.
    #[arg(long)]
    watch: bool,
    /// Seconds between periodic re-checks in --watch mode.
    #[arg(long, default_value_t = 30.0)]
    resync_interval: f64,
    /// With --watch: serve /healthz, /readyz and /metrics here (e.g. 127.0.0.1:9110).
    #[arg(long, requires = "watch")]
    metrics_addr: Option<SocketAddr>,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// This node's name; its SriovNetworkNodeState has the same name.
    #[arg(long, env = "NODE_NAME")]
    node_name: String,
    /// Namespace of the node states and the SriovOperatorConfig.
    #[arg(long, env = "NAMESPACE", default_value = "sriov-network-operator")]
    namespace: String,
    /// Serve /healthz, /readyz and /metrics here (e.g. 0.0.0.0:9110); off by default.
    #[arg(long, env = "SRIOV_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Seconds between periodic re-checks of the node (drift).
    #[arg(long, default_value_t = 30.0)]
    resync_interval: f64,
    /// Leave this node's drains to an external drainer: the node state gets
    /// the sriovnetwork.openshift.io/use-external-drainer annotation and the
    /// operator skips it. Also set by USE_EXTERNAL_DRAINER=true (as upstream:
    /// only the exact value `true`).
    #[arg(long)]
    use_external_drainer: bool,
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut cfg = K8sConfig::new(
        &args.node_name,
        HostRoot::new(&args.common.host_root),
        args.common.state_dir.clone(),
    );
    cfg.namespace = args.namespace.clone();
    cfg.apply = ApplyOptions {
        vf_timeout: Duration::from_secs_f64(args.common.vf_timeout),
        bind_timeout: Duration::from_secs_f64(args.common.bind_timeout),
    };
    cfg.resync = Duration::from_secs_f64(args.resync_interval);
    cfg.use_external_drainer = args.use_external_drainer
        || std::env::var("USE_EXTERNAL_DRAINER").is_ok_and(|v| v == "true");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let metrics = Arc::new(Metrics::new());
        if let Some(addr) = args.metrics_addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on --metrics-addr {addr}"))?;
            tracing::info!(%addr, "serving /healthz, /readyz and /metrics");
            tokio::spawn(sriov_health::serve(listener, metrics.clone()));
        }
        let client = kube::Client::try_default()
            .await
            .context("connecting to the API server (in-cluster service account or KUBECONFIG)")?;
        let daemon = Daemon::new(client, cfg, metrics);
        daemon.run(sriov_health::shutdown_signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn print_report(report: &RunReport, dry_run: bool, json: bool) -> anyhow::Result<()> {
    if dry_run {
        if json {
            println!("{}", serde_json::to_string_pretty(&report.plan)?);
        } else {
            print!("{}", report.plan.render());
        }
        for c in &report.conflicts {
            eprintln!("conflict: {c}");
        }
        return Ok(());
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report.state)?);
    } else {
        print!(
            "{}",
            serde_saphyr::to_string(&report.state).context("rendering the node state as YAML")?
        );
    }
    Ok(())
}

fn apply(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let labels = parse_node_labels(&args.node_labels)?;
    let cfg = StandaloneConfig {
        host_root: HostRoot::new(&args.common.host_root),
        policies: args.policies.clone(),
        node_name: args.node_name.clone().unwrap_or_else(hostname),
        node_labels: labels,
        dry_run: args.dry_run,
        device_plugin_config: args.device_plugin_config.clone(),
        state_dir: args.common.state_dir.clone(),
        apply: ApplyOptions {
            vf_timeout: Duration::from_secs_f64(args.common.vf_timeout),
            bind_timeout: Duration::from_secs_f64(args.common.bind_timeout),
        },
        allow_disruption: args.allow_disruption,
    };
    if args.watch {
        let opts = WatchOptions {
            resync: Duration::from_secs_f64(args.resync_interval),
            ..Default::default()
        };
        let metrics = Arc::new(Metrics::new());
        if let Some(addr) = args.metrics_addr {
            let bound = sriov_config_daemon::metrics::serve_in_thread(addr, metrics.clone())
                .with_context(|| format!("listening on --metrics-addr {addr}"))?;
            tracing::info!(addr = %bound, "serving /healthz, /readyz and /metrics");
        }
        watch(&cfg, &opts, |trigger, result| match result {
            Ok(r) => {
                let steps: usize = r.outcomes.iter().map(|o| o.steps_done).sum();
                metrics.record_run(&RunSample {
                    duration: Duration::from_secs_f64(r.apply_seconds),
                    steps: steps as u64,
                    failed_pfs: r.outcomes.iter().filter(|o| o.result.is_err()).count() as u64,
                    drift_repaired: trigger.checks_drift() && !r.plan.is_empty(),
                });
                let steps: usize = r.plan.pfs.iter().map(|p| p.steps.len()).sum();
                let status = r
                    .state
                    .status
                    .as_ref()
                    .map(|s| s.sync_status.clone())
                    .unwrap_or_default();
                metrics.set_sync_status(&status);
                println!(
                    "trigger={trigger:?} steps={steps} syncStatus={status}{}",
                    if r.failed() {
                        format!(" lastSyncError={:?}", r.error_text())
                    } else {
                        String::new()
                    }
                );
            }
            Err(e) => {
                metrics.set_sync_status("Failed");
                println!("trigger={trigger:?} error={:?}", e.to_string())
            }
        });
    }
    let report = run_once(&cfg)?;
    print_report(&report, args.dry_run, args.json)?;
    if report.failed() {
        eprintln!("sync failed: {}", report.error_text());
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SRIOV_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run(a),
        Command::Apply(a) => apply(a),
        Command::Show(a) => show(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
