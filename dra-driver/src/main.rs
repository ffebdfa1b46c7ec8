//! `sriov-dra-driver`: publishes the node's SR-IOV VFs as ResourceSlices
//! (`resource.k8s.io/v1`) with PCIe topology attributes and keeps them
//! current, and serves the kubelet plugin API (registration, DRAPlugin
//! v1/v1beta1) preparing claims as CDI specs, and streams the VFs' health
//! (DRAResourceHealth). See docs/dra.md for what is
//! not done yet.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use sriov_dra_driver::attributes::{self, Selection};
use sriov_dra_driver::health::Monitor;
use sriov_dra_driver::plugin::{self, Driver, KubeClaims};
use sriov_dra_driver::pools::{PoolConfig, Pools};
use sriov_dra_driver::prepare::Preparer;
use sriov_dra_driver::slices::{self, KubeStore};
use sriov_host::topology::Topology;
use sriov_host::{HostRoot, PciAddress};

/// Publish this node's SR-IOV VFs as DRA ResourceSlices.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The node's name (the pool name and spec.nodeName of its slices).
    #[arg(long, env = "NODE_NAME")]
    node_name: String,
    /// The DRA driver name.
    #[arg(long, default_value = sriov_dra_driver::DEFAULT_DRIVER_NAME)]
    driver_name: String,
    /// Publish only the VFs of these PF netdevs (comma separated); default all.
    #[arg(long, value_delimiter = ',')]
    pf_names: Vec<String>,
    /// The device plugin's config file (`{"resourceList": [...]}`): publish
    /// only the VFs of the pools named by --resources, each with its pool's
    /// name as `k8s.cni.cncf.io/resourceName` (for Multus). Its directory
    /// is watched (inotify) and it is re-read at every rescan; a bad file
    /// keeps the last good one.
    #[arg(long)]
    config_file: Option<PathBuf>,
    /// With --config-file: the pools (`resourceName`) this driver serves,
    /// comma separated; default all. Give the device plugin the same names
    /// (its --dra-resources) so it leaves them alone.
    #[arg(long, value_delimiter = ',', requires = "config_file")]
    resources: Vec<String>,
    /// With --config-file: the prefix of pools without `resourcePrefix`
    /// (the device plugin's --resource-prefix).
    #[arg(long, default_value = sriov_device_plugin::config::DEFAULT_PREFIX)]
    resource_prefix: String,
    /// Host root the node's /sys is read under.
    #[arg(long, env = sriov_host::root::HOST_ROOT_ENV, default_value = "/")]
    host_root: String,
    /// Seconds between rescans of the node (slices are rewritten only when
    /// something changed).
    #[arg(long, default_value_t = 30)]
    resync_seconds: u64,
    /// Publish the slices once and exit (no kubelet plugin).
    #[arg(long)]
    once: bool,
    /// The kubelet's plugins directory (the DRA socket is
    /// <dir>/<driver>/dra.sock, the checkpoint next to it).
    #[arg(long, default_value = "/var/lib/kubelet/plugins")]
    plugins_dir: PathBuf,
    /// The kubelet's plugin registry directory (<dir>/<driver>-reg.sock).
    #[arg(long, default_value = "/var/lib/kubelet/plugins_registry")]
    registry_dir: PathBuf,
    /// Where CDI specs are written (the runtime's CDI spec directory).
    #[arg(long, default_value = "/var/run/cdi")]
    cdi_dir: PathBuf,
    /// This instance's UID, the pod's (downward API `metadata.uid`). Set,
    /// the sockets are its own (`<driver>-<id>-reg.sock`, `dra-<id>.sock`,
    /// `<id>`: the UID's first 12 hex digits)
    /// so an old and a new instance serve side by side in a rolling update
    /// (DaemonSet `maxSurge`; needs kubelet 1.33 or later), sharing the
    /// checkpoint under a lock. Unset: `<driver>-reg.sock` and `dra.sock`.
    #[arg(long, env = "POD_UID")]
    pod_uid: Option<String>,
    /// Serve /healthz, /readyz (200 once the kubelet registered this
    /// instance: the readiness probe) and /metrics on this address (e.g.
    /// 0.0.0.0:9812).
    #[arg(long)]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Seconds between health checks of the published and prepared VFs
    /// (streamed to the kubelet, `DRAResourceHealth`).
    #[arg(long, default_value_t = 5)]
    health_seconds: u64,
}

/// What selects the VFs to publish.
#[derive(Debug, Clone)]
struct Selector {
    pf_names: Vec<String>,
    pools: Option<PoolConfig>,
    /// The last good read of the pools' config file.
    last_good: Option<Pools>,
}

impl Selector {
    /// Scans the node and returns the devices to publish.
    fn node_devices(
        &mut self,
        root: &HostRoot,
    ) -> anyhow::Result<Vec<attributes::PublishedDevice>> {
        let node = sriov_host::scan(root).context("scanning PCI devices")?;
        let topology = Topology::read(root).context("reading the PCIe topology")?;
        let pools = match &self.pools {
            None => None,
            Some(cfg) => {
                match cfg.load(self.last_good.as_ref()) {
                    Ok(p) => self.last_good = Some(p),
                    Err(e) if self.last_good.is_some() => {
                        tracing::warn!(error = %e, "the config file is unusable; keeping the last good pools")
                    }
                    // The operator writes the node's key once a policy
                    // selects the node: until then there is nothing to serve.
                    Err(e) => {
                        tracing::warn!(error = %e, "no usable config file yet; publishing no devices")
                    }
                }
                Some(
                    self.last_good
                        .as_ref()
                        .map(|p| p.assign(root, &node))
                        .unwrap_or_default(),
                )
            }
        };
        let selection = Selection {
            pf_names: self.pf_names.clone(),
            pools,
        };
        Ok(attributes::devices(&node, &topology, &selection))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        driver = %args.driver_name,
        node = %args.node_name,
        pf_names = %args.pf_names.join(","),
        config_file = ?args.config_file,
        resources = %args.resources.join(","),
        "starting"
    );
    let root = HostRoot::new(&args.host_root);
    let mut selector = Selector {
        pf_names: args.pf_names.clone(),
        pools: args.config_file.as_ref().map(|path| PoolConfig {
            path: path.clone(),
            default_prefix: args.resource_prefix.clone(),
            served: args.resources.clone(),
        }),
        last_good: None,
    };
    let client = kube::Client::try_default()
        .await
        .context("connecting to the API server")?;
    let store = KubeStore::new(client.clone());
    if args.once {
        let devices = selector.node_devices(&root)?;
        let p = slices::publish(&store, &args.driver_name, &args.node_name, &devices)
            .await
            .context("publishing ResourceSlices")?;
        tracing::info!(
            devices = devices.len(),
            slices = p.slices,
            generation = p.generation,
            "ResourceSlices published"
        );
        return Ok(());
    }
    let plugin_dir = args.plugins_dir.join(&args.driver_name);
    let preparer = Preparer::open(root.clone(), &args.node_name, &plugin_dir, &args.cdi_dir)
        .context("opening the checkpoint")?;
    let driver = Arc::new(Driver::new(
        &args.driver_name,
        preparer,
        Arc::new(KubeClaims::new(client)),
    ));
    let (status, status_rx) = tokio::sync::watch::channel(None);
    let metrics = driver.metrics.clone();
    if let Some(addr) = args.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on --metrics-addr {addr}"))?;
        tokio::spawn(sriov_dra_driver::metrics::serve(
            listener,
            metrics.clone(),
            status_rx,
        ));
    }
    let health = Monitor::new(&args.node_name);
    // The devices the health loop checks: the last scan's, then the
    // prepared claims' (a VF gone from the node stays in its claim).
    let (published_tx, published_rx) =
        tokio::sync::watch::channel(Vec::<(String, PciAddress)>::new());
    let health_svc = health.service(sriov_dra_driver::health::HEARTBEAT);
    let health_driver = driver.clone();
    let tag = args
        .pod_uid
        .as_deref()
        .filter(|u| !u.is_empty())
        .map(plugin::instance_tag);
    let instance = tag.as_deref();
    let instance_name = instance.unwrap_or("-").to_string();
    let dra_socket = plugin::dra_socket(&args.plugins_dir, &args.driver_name, instance);
    let reg_socket = plugin::registration_socket(&args.registry_dir, &args.driver_name, instance);
    for p in plugin::remove_stale_sockets(
        &args.registry_dir,
        &args.plugins_dir,
        &args.driver_name,
        &[&dra_socket, &reg_socket],
    ) {
        tracing::info!(path = %p.display(), "removed the socket of an instance that is gone");
    }
    let server = tokio::spawn(async move {
        plugin::serve(
            driver,
            health_svc,
            &dra_socket,
            &reg_socket,
            status,
            sriov_health::shutdown_signal(),
        )
        .await
    });
    tracing::info!(driver = %args.driver_name, node = %args.node_name, instance = %instance_name, "kubelet plugin serving");
    let health_root = root.clone();
    let health_every = Duration::from_secs(args.health_seconds.max(1));
    let health_loop = async move {
        loop {
            let mut devices = published_rx.borrow().clone();
            let (m, r, d) = (health.clone(), health_root.clone(), health_driver.clone());
            let health_metrics = d.metrics.clone();
            // Blocking: the preparer's lock is held through a rebind.
            tokio::task::spawn_blocking(move || {
                let mut preparer = d.preparer.lock().expect("poisoned");
                // Another instance (a rolling update) may have changed it.
                if let Err(e) = preparer.reload() {
                    tracing::warn!(error = %e, "reading the checkpoint failed; checking the last read");
                }
                health_metrics
                    .prepared_claims
                    .set(preparer.checkpoint().claims.len() as i64);
                for c in preparer.checkpoint().claims.values() {
                    for p in &c.devices {
                        if !devices.iter().any(|(n, _)| *n == p.device) {
                            devices.push((p.device.clone(), p.address));
                        }
                    }
                }
                m.recheck(&r, &devices)
            })
            .await?;
            tokio::time::sleep(health_every).await;
        }
        #[allow(unreachable_code)]
        Ok::<(), anyhow::Error>(())
    };
    // The config file's directory watched (a ConfigMap update swaps its
    // `..data` symlink): a changed file is read at once, not at the next
    // resync.
    let (config_tx, mut config_rx) = tokio::sync::mpsc::channel(64);
    let _config_watch = match &args.config_file {
        Some(path) => match sriov_device_plugin::watch::spawn_dir_watch(path, None, config_tx) {
            Ok(task) => Some(task),
            Err(e) => {
                tracing::warn!(error = %e, "the config file is not watched; it is read at every resync");
                None
            }
        },
        None => None,
    };
    let publisher = async {
        loop {
            let r = root.clone();
            let mut sel = selector.clone();
            let (sel, scanned) = tokio::task::spawn_blocking(move || {
                let d = sel.node_devices(&r);
                (sel, d)
            })
            .await?;
            selector = sel;
            match scanned {
                Ok(devices) => {
                    published_tx.send_replace(
                        devices
                            .iter()
                            .map(|d| (d.name.clone(), d.address))
                            .collect(),
                    );
                    match slices::publish(&store, &args.driver_name, &args.node_name, &devices)
                        .await
                    {
                        Ok(p) => {
                            metrics.published_devices.set(devices.len() as i64);
                            tracing::info!(
                                devices = devices.len(),
                                slices = p.slices,
                                generation = p.generation,
                                written = p.written,
                                deleted = p.deleted,
                                "ResourceSlices published"
                            )
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "publishing ResourceSlices failed; retrying")
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "scanning the node failed; retrying")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(args.resync_seconds)) => {}
                Some(_) = config_rx.recv() => {
                    // One rescan for a burst (a ConfigMap swap is several events).
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    while config_rx.try_recv().is_ok() {}
                    tracing::debug!("config directory changed; reading it again");
                }
            }
        }
        #[allow(unreachable_code)]
        Ok::<(), anyhow::Error>(())
    };
    tokio::select! {
        r = publisher => r,
        r = health_loop => r,
        r = server => {
            r.context("kubelet plugin task")?.context("kubelet plugin")?;
            tracing::info!(instance = %instance_name, "stopped; this instance's sockets removed");
            Ok(())
        }
    }
}
