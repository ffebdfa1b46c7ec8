//! `crdgen`: writes the CRDs of `sriovnetwork.openshift.io/v1` as YAML files.

use std::path::PathBuf;

use anyhow::{Context, bail};

const HELP: &str = "\
crdgen: write the sriovnetwork.openshift.io/v1 CRDs as YAML, one file per kind.

Usage: crdgen [--out-dir DIR] [--check]

Options:
  --out-dir DIR   directory to write to (default: deploy/crds)
  --check         write nothing; exit 1 when a file in DIR differs from the generated one
  -h, --help      print this help
  -V, --version   print the version
";

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut out_dir = PathBuf::from("deploy/crds");
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                return Ok(());
            }
            "-V" | "--version" => {
                println!("crdgen {}", env!("CARGO_PKG_VERSION"));
                return Ok(());
            }
            "--check" => check = true,
            "--out-dir" => {
                out_dir = args
                    .next()
                    .map(PathBuf::from)
                    .context("--out-dir needs a directory argument")?;
            }
            other => bail!("unknown argument {other:?}; see crdgen --help"),
        }
    }
    if !check {
        std::fs::create_dir_all(&out_dir)
            .with_context(|| format!("creating {}", out_dir.display()))?;
    }
    let mut stale = Vec::new();
    for generated in sriov_crds::crd_gen::all_crds() {
        let yaml = sriov_crds::crd_gen::render_yaml(&generated)?;
        let path = out_dir.join(&generated.file_name);
        if check {
            let current = std::fs::read_to_string(&path).unwrap_or_default();
            if current != yaml {
                stale.push(path.display().to_string());
            }
        } else {
            std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
            tracing::info!(path = %path.display(), "wrote CRD");
        }
    }
    if !stale.is_empty() {
        bail!(
            "CRD files out of date: {}; run `cargo run -p sriov-crds --bin crdgen`",
            stale.join(", ")
        );
    }
    Ok(())
}
