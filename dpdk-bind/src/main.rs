//! `dpdk-bind`: bind PCI network devices to vfio-pci and other drivers, and
//! show their status. A replacement for DPDK's `dpdk-devbind.py` on the
//! `sriov-host` library.

mod binding;
mod checks;
mod status;
mod targets;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use sriov_host::root::{HOST_ROOT_ENV, HostRoot};

/// Bind network devices to vfio-pci and friends; show their status.
#[derive(Debug, Parser)]
#[command(name = "dpdk-bind", version, about, long_about = None)]
struct Cli {
    /// Resolve /sys, /proc and /dev under this directory.
    #[arg(long, global = true, env = HOST_ROOT_ENV, default_value = "/", value_name = "DIR")]
    host_root: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List network devices grouped by driver kind (kernel, userspace, none).
    Status {
        /// Print a JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Bind devices to DRIVER (e.g. vfio-pci, or a kernel driver to give
    /// them back).
    Bind {
        /// The driver to bind to; it must be loaded.
        driver: String,
        /// PCI addresses (0000:3b:02.0 or 3b:02.0) or interface names.
        #[arg(required = true, value_name = "DEV")]
        devices: Vec<String>,
        /// Unbind interfaces even when they are up with routes.
        #[arg(long)]
        force: bool,
        /// Seconds to wait for the driver to claim each device.
        #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
        timeout: f64,
    },
    /// Unbind devices from their driver.
    Unbind {
        /// PCI addresses (0000:3b:02.0 or 3b:02.0) or interface names.
        #[arg(required = true, value_name = "DEV")]
        devices: Vec<String>,
        /// Unbind interfaces even when they are up with routes.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dpdk-bind: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let root = HostRoot::new(&cli.host_root);
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Status { json } => status::run(&root, json, &mut out),
        Command::Bind {
            driver,
            devices,
            force,
            timeout,
        } => {
            if !(timeout.is_finite() && timeout >= 0.0) {
                anyhow::bail!("--timeout must be a number of seconds >= 0, not {timeout}");
            }
            binding::bind(
                &root,
                &driver,
                &devices,
                force,
                Duration::from_secs_f64(timeout),
                &mut out,
            )
        }
        Command::Unbind { devices, force } => binding::unbind(&root, &devices, force, &mut out),
    }
}
