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
    }
    Ok(())
}
