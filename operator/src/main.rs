//! `sriov-network-operator`: the operator, its render mode and its webhooks.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// SR-IOV network operator.
#[derive(Parser, Debug)]
#[command(name = "sriov-network-operator", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controllers (the default).
    Run(RunArgs),
    /// Print the objects the operator would write for the given inputs.
    Render(RenderArgs),
    /// Serve the admission webhooks over TLS.
    Webhook(WebhookArgs),
}

/// `webhook` arguments.
#[derive(clap::Args, Debug)]
struct WebhookArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:6443")]
    listen: std::net::SocketAddr,
    /// PEM serving certificate (chain); reloaded when it changes.
    #[arg(long, value_name = "FILE")]
    tls_cert: std::path::PathBuf,
    /// PEM private key of the certificate.
    #[arg(long, value_name = "FILE")]
    tls_key: std::path::PathBuf,
    /// Seconds between checks of the certificate files for a rotation.
    #[arg(long, default_value_t = 10)]
    cert_reload_seconds: u64,
}

/// Logs to stderr, filtered by `SRIOV_LOG` (default `info`).
fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SRIOV_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
}

fn webhook(args: WebhookArgs) -> ExitCode {
    init_logging();
    let settings = sriov_operator::settings::Settings::from_env();
    let opts = sriov_operator::webhook::WebhookOptions {
        listen: args.listen,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        reload_interval: std::time::Duration::from_secs(args.cert_reload_seconds.max(1)),
        operator_namespace: settings.namespace.clone(),
        dev_mode: settings.dev_mode,
        dra_resources: settings.dra_resource_names(),
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    match rt.block_on(sriov_operator::webhook::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sriov-network-operator webhook: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `run` arguments.
#[derive(clap::Args, Debug, Default)]
struct RunArgs {
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:9090")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Lead at once, without a Lease (one replica only).
    #[arg(long)]
    no_leader_elect: bool,
    /// Do not create SriovOperatorConfig "default" when it is missing (the
    /// Go operator's behaviour since v1.3: wait for it to be created).
    #[arg(long)]
    no_default_config: bool,
}

fn run(args: RunArgs) -> ExitCode {
    init_logging();
    let opts = sriov_operator::operator::RunOptions {
        metrics_addr: args.metrics_addr.unwrap_or(([0, 0, 0, 0], 9090).into()),
        leader_elect: !args.no_leader_elect,
        identity: std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| format!("sriov-network-operator-{}", std::process::id())),
        create_default_config: !args.no_default_config,
    };
    let settings = sriov_operator::settings::Settings::from_env();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    match rt.block_on(sriov_operator::operator::run(opts, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sriov-network-operator: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `render` arguments.
#[derive(clap::Args, Debug)]
struct RenderArgs {
    /// YAML streams of Nodes, node states, policies, networks, the operator
    /// config, pool configs, Namespaces and NADs (`-` for stdin). Settings
    /// come from the environment: NAMESPACE, RESOURCE_PREFIX, image variables.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    files: Vec<std::path::PathBuf>,
}

fn render(args: RenderArgs) -> ExitCode {
    let settings = sriov_operator::settings::Settings::from_env();
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    match sriov_operator::output::render_files(&args.files, &settings, &now) {
        Ok((yaml, warnings)) => {
            for w in warnings {
                eprintln!("sriov-network-operator render: warning: {w}");
            }
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sriov-network-operator render: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run(RunArgs::default())) {
        Command::Render(args) => render(args),
        Command::Run(args) => run(args),
        Command::Webhook(args) => webhook(args),
    }
}
