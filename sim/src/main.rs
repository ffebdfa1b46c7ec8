//! `sriov-sim`: a simulated SR-IOV node (static tree or FUSE mount).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sriov_sim::node::NodeSpec;

/// A simulated SR-IOV node: writes a static sysfs tree, or serves one with
/// kernel semantics through FUSE.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a static tree (plain files and symlinks, kernel layout) under
    /// ROOT: ROOT/sys, ROOT/dev/vfio, ROOT/proc/net/route.
    Tree {
        /// The host root to write under (created if missing).
        root: PathBuf,
        /// `mixed`, `scale:PFS:VFS` or a path to a node YAML file.
        #[arg(long, default_value = "mixed")]
        node: String,
    },
    /// Serve ROOT/sys and ROOT/dev/vfio through FUSE with kernel semantics
    /// until SIGINT or SIGTERM; prints `ready` on stdout once usable.
    Mount {
        /// The host root to mount under (created if missing).
        root: PathBuf,
        /// `mixed`, `scale:PFS:VFS` or a path to a node YAML file.
        #[arg(long, default_value = "mixed")]
        node: String,
        /// Back each VF netdev with a real veth of the same name in this
        /// network namespace (created on bind, deleted on unbind).
        #[arg(long)]
        veth: bool,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    // Block SIGINT/SIGTERM before any thread starts, so that every thread
    // inherits the mask and only sigwait below sees them.
    let signals = {
        use nix::sys::signal::{SigSet, Signal};
        let mut s = SigSet::empty();
        s.add(Signal::SIGINT);
        s.add(Signal::SIGTERM);
        s
    };
    match cli.command {
        Command::Tree { root, node } => {
            let spec = NodeSpec::resolve(&node)?;
            std::fs::create_dir_all(&root)
                .with_context(|| format!("cannot create {}", root.display()))?;
            sriov_sim::kernel::write_static_tree(&root, &spec).with_context(|| {
                format!(
                    "cannot write the tree of node {} under {}",
                    spec.name,
                    root.display()
                )
            })?;
            tracing::info!(node = %spec.name, root = %root.display(), "static tree written");
        }
        Command::Mount { root, node, veth } => {
            signals
                .thread_block()
                .context("cannot block SIGINT/SIGTERM")?;
            let spec = NodeSpec::resolve(&node)?;
            let name = spec.name.clone();
            let sim = sriov_sim::SimNode::start(
                spec,
                sriov_sim::SimOptions {
                    veth,
                    root: Some(root.clone()),
                },
            )
            .with_context(|| format!("cannot mount node {name} under {}", root.display()))?;
            tracing::info!(node = %name, root = %sim.root().display(), veth, "mounted");
            {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                writeln!(out, "ready")?;
                out.flush()?;
            }
            let sig = signals.wait().context("waiting for SIGINT/SIGTERM")?;
            tracing::info!(signal = ?sig, "stopping: unmounting and cleaning up");
            drop(sim);
        }
    }
    Ok(())
}
