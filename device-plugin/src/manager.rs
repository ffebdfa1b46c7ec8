//! The running plugin: config, scans, pools, one server per pool, and the
//! loop that keeps them current.
//!
//! - Start: load the config (a bad one is fatal), scan, build pools, serve
//!   and register each.
//! - Uevents (debounced 100 ms) and the periodic resync rescan; config
//!   directory events reload the config when its text changed (a bad
//!   config is logged and the running pools stay); pools are updated in
//!   place, new pools start and register, removed pools send an empty list,
//!   stop and remove their socket.
//! - A health check every `health_interval` flips devices between Healthy
//!   and Unhealthy.
//! - When the kubelet's socket is created, or one of ours deleted (the
//!   kubelet clears the directory when it starts), servers whose socket is
//!   gone are restarted and every pool registers again.
//! - Shutdown: stop servers and remove their sockets; device-info files
//!   stay.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sriov_host::HostRoot;
use sriov_host::scan::Detail;
use tokio::sync::{mpsc, watch};

use crate::allocate::AllocateContext;
use crate::config::{Config, ConfigError};
use crate::plugin::{Counters, PoolService, Server, socket_name};
use crate::pools::{Pool, Pools};
use crate::preferred::AllocationPolicy;
use crate::watch::Event;

/// How the plugin runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub config_file: PathBuf,
    pub resource_prefix: String,
    /// The kubelet's device plugin directory (sockets).
    pub plugin_dir: PathBuf,
    /// Where device-info files go.
    pub devinfo_dir: PathBuf,
    pub root: HostRoot,
    pub policy: AllocationPolicy,
    /// Full rescan period.
    pub resync_interval: Duration,
    /// Health check period.
    pub health_interval: Duration,
    /// Listen for uevents.
    pub uevents: bool,
    /// CDI mode: write CDI specs here and answer with CDI annotations.
    pub cdi_dir: Option<PathBuf>,
    /// Health checks beyond presence, driver and the vfio node (the PF
    /// link check is off by default, as upstream reports every device
    /// Healthy).
    pub health: crate::pools::HealthChecks,
}

/// Why the plugin could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot scan the node: {0}")]
    Scan(#[from] sriov_host::error::Error),
    #[error(transparent)]
    Watch(#[from] crate::watch::WatchError),
    #[error("cannot create {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A pool's figures for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolFigures {
    pub resource: String,
    pub devices: usize,
    pub healthy: usize,
    pub registered: bool,
}

/// State shared with the metrics endpoint.
#[derive(Debug, Default)]
pub struct Status {
    pub counters: Arc<Counters>,
    pub rescans: std::sync::atomic::AtomicU64,
    pub config_reloads: std::sync::atomic::AtomicU64,
    pub config_errors: std::sync::atomic::AtomicU64,
    /// The config file as it is now was rejected: the pools come from the
    /// last config that was accepted.
    pub config_stale: std::sync::atomic::AtomicBool,
    pub registrations: std::sync::atomic::AtomicU64,
    pub last_scan_seconds: Mutex<f64>,
    pub pools: Mutex<Vec<PoolFigures>>,
    pub ready: std::sync::atomic::AtomicBool,
}

struct Handle {
    state: watch::Sender<Option<Arc<Pool>>>,
    server: Option<Server>,
    endpoint: String,
    registered: bool,
}

/// The plugin.
pub struct Manager {
    opts: Options,
    config: Config,
    config_text: String,
    pools: Pools,
    handles: BTreeMap<String, Handle>,
    ctx: Arc<AllocateContext>,
    status: Arc<Status>,
    /// When [`Manager::new`] began (for the start-up figure in the log).
    started: Instant,
    /// GPU-aware preferred allocation ([`Manager::with_gpu_pairing`]).
    gpu: Option<Arc<crate::podresources::GpuPairing>>,
    /// Pools (`resourceName`) the DRA driver serves
    /// ([`Manager::with_dra_resources`]).
    dra: Vec<String>,
}

/// Scans the node and builds the pools. The scan reads what selection and
/// pooling need ([`Detail::Selection`]: no netdev MAC, MTU, speed...,
/// about half the system calls of a full scan); health reads the PF links'
/// carrier itself.
fn scan_pools(
    root: &HostRoot,
    config: &Config,
    previous: &Pools,
    checks: crate::pools::HealthChecks,
) -> Result<Pools, sriov_host::error::Error> {
    let t = Instant::now();
    let node = sriov_host::scan::scan_detail(root, Detail::Selection)?;
    let scanned = t.elapsed();
    let (devices, env) = crate::pools::discover(root, config, &node);
    let pools = crate::pools::build_checking(root, config, &devices, &env, previous, checks);
    tracing::debug!(
        functions = node.len(),
        scan = ?scanned,
        pools = ?(t.elapsed() - scanned),
        "scanned the node and built the pools"
    );
    Ok(pools)
}

/// The CDI dirs upstream cleans: the configured one and `<root>/etc/cdi`.
fn cdi_dirs(root: &HostRoot, dir: &std::path::Path) -> Vec<PathBuf> {
    let etc = root.join("etc/cdi");
    if etc == dir {
        vec![dir.to_path_buf()]
    } else {
        vec![dir.to_path_buf(), etc]
    }
}

impl Manager {
    /// Loads the config and scans the node (nothing served yet).
    pub fn new(opts: Options) -> Result<Manager, StartError> {
        let started = Instant::now();
        let config_text =
            std::fs::read_to_string(&opts.config_file).map_err(|source| ConfigError::Read {
                path: opts.config_file.clone(),
                source,
            })?;
        let config = Config::parse(
            &config_text,
            &opts.config_file.display().to_string(),
            &opts.resource_prefix,
        )?;
        for d in [&opts.plugin_dir, &opts.devinfo_dir] {
            std::fs::create_dir_all(d).map_err(|source| StartError::Dir {
                path: d.clone(),
                source,
            })?;
        }
        let t = Instant::now();
        if let Some(dir) = &opts.cdi_dir {
            // as upstream: specs of an earlier run go before any is written
            let n = crate::cdi::cleanup_specs(&cdi_dirs(&opts.root, dir));
            if n > 0 {
                tracing::info!(removed = n, "old CDI specs removed");
            }
        }
        let pools = scan_pools(&opts.root, &config, &Pools::new(), opts.health)?;
        let status = Arc::new(Status::default());
        status.config_errors.fetch_add(
            config.skipped.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        *status.last_scan_seconds.lock().expect("lock") = t.elapsed().as_secs_f64();
        status
            .rescans
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ctx = Arc::new(AllocateContext {
            root: opts.root.clone(),
            devinfo_dir: opts.devinfo_dir.clone(),
            cdi_dir: opts.cdi_dir.clone(),
        });
        Ok(Manager {
            opts,
            config,
            config_text,
            pools,
            handles: BTreeMap::new(),
            ctx,
            status,
            started,
            gpu: None,
            dra: Vec::new(),
        })
    }

    /// Leaves the pools named here (`resourceName`, as in the config file)
    /// to the DRA driver (`sriov-dra-driver --config-file … --resources …`
    /// with the same names): their devices are still claimed by them, so
    /// every VF lands in the same pool for both, but they are not
    /// advertised to the kubelet.
    pub fn with_dra_resources(mut self, names: Vec<String>) -> Self {
        self.dra = names;
        let pools = std::mem::take(&mut self.pools);
        self.pools = self.without_dra(pools);
        self
    }

    /// `pools` less the DRA driver's.
    fn without_dra(&self, mut pools: Pools) -> Pools {
        pools.retain(|name, p| {
            let dra = self.dra.iter().any(|d| *d == p.config.name);
            if dra {
                tracing::debug!(resource = %name, devices = p.devices.len(), "pool left to the DRA driver");
            }
            !dra
        });
        pools
    }

    /// Turns on GPU-aware preferred allocation: every pool's
    /// `GetPreferredAllocation` asks `pairing` for the GPUs of the pod being
    /// admitted, and [`Manager::run`] refreshes its PodResources snapshot
    /// every [`GpuPairing::refresh_interval`](crate::podresources::GpuPairing::refresh_interval).
    pub fn with_gpu_pairing(mut self, pairing: Arc<crate::podresources::GpuPairing>) -> Self {
        self.gpu = Some(pairing);
        self
    }

    /// The shared status (metrics).
    pub fn status(&self) -> Arc<Status> {
        self.status.clone()
    }

    /// The current pools.
    pub fn pools(&self) -> &Pools {
        &self.pools
    }

    fn service(
        &self,
        state: watch::Receiver<Option<Arc<Pool>>>,
        stop: &watch::Sender<bool>,
    ) -> PoolService {
        PoolService {
            state,
            stop: stop.subscribe(),
            ctx: self.ctx.clone(),
            policy: self.opts.policy,
            counters: self.status.counters.clone(),
            gpu: self.gpu.clone(),
        }
    }

    fn start_server(&self, h: &Handle) -> Option<Server> {
        let path = self.opts.plugin_dir.join(&h.endpoint);
        let stop = watch::channel(false).0;
        let svc = self.service(h.state.subscribe(), &stop);
        match Server::start(&path, svc, stop) {
            Ok(s) => {
                tracing::info!(socket = %path.display(), "serving");
                Some(s)
            }
            Err(e) => {
                tracing::error!(error = %e, "pool not served");
                None
            }
        }
    }

    async fn register_all(&mut self, force: bool) {
        let kubelet = self.opts.plugin_dir.join(crate::api::KUBELET_SOCKET);
        if !kubelet.exists() {
            return;
        }
        let todo: Vec<(String, String)> = self
            .handles
            .iter()
            .filter(|(_, h)| h.server.is_some() && (force || !h.registered))
            .map(|(name, h)| (h.endpoint.clone(), name.clone()))
            .collect();
        if todo.is_empty() {
            return;
        }
        let pairs: Vec<(&str, &str)> = todo.iter().map(|(e, n)| (e.as_str(), n.as_str())).collect();
        let results = match crate::kubelet::register_many(&kubelet, &pairs).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "registration failed; retrying when the kubelet socket changes");
                for (_, name) in &todo {
                    if let Some(h) = self.handles.get_mut(name) {
                        h.registered = false;
                    }
                }
                return;
            }
        };
        for ((endpoint, name), r) in todo.iter().zip(results) {
            let Some(h) = self.handles.get_mut(name) else {
                continue;
            };
            match r {
                Ok(()) => {
                    tracing::info!(resource = %name, %endpoint, "registered with the kubelet");
                    self.status
                        .registrations
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    h.registered = true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "registration failed; retrying when the kubelet socket changes");
                    h.registered = false;
                }
            }
        }
    }

    /// Brings servers in line with `self.pools`.
    async fn apply(&mut self) {
        let gone: Vec<String> = self
            .handles
            .keys()
            .filter(|k| !self.pools.contains_key(*k))
            .cloned()
            .collect();
        for name in gone {
            let h = self.handles.remove(&name).expect("present");
            tracing::info!(resource = %name, "pool removed; unregistering");
            if let (Some(dir), Some(p)) = (&self.opts.cdi_dir, h.state.borrow().as_deref()) {
                crate::cdi::remove_spec(dir, p);
            }
            let _ = h.state.send(None);
            // let ListAndWatch streams deliver the empty list
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Some(s) = h.server {
                s.stop().await;
            }
        }
        for (name, pool) in &self.pools {
            match self.handles.get(name) {
                Some(h) => {
                    let changed = h.state.send_if_modified(|cur| {
                        if cur.as_deref() == Some(pool) {
                            false
                        } else {
                            *cur = Some(Arc::new(pool.clone()));
                            true
                        }
                    });
                    if changed {
                        self.write_cdi_spec(pool);
                    }
                }
                None => {
                    let endpoint = socket_name(&pool.config.prefix, &pool.config.name);
                    let mut h = Handle {
                        state: watch::channel(Some(Arc::new(pool.clone()))).0,
                        server: None,
                        endpoint,
                        registered: false,
                    };
                    h.server = self.start_server(&h);
                    self.write_cdi_spec(pool);
                    tracing::info!(resource = %name, devices = pool.devices.len(), "pool created");
                    self.handles.insert(name.clone(), h);
                }
            }
        }
        self.register_all(false).await;
        self.publish_figures();
    }

    /// CDI mode: (re)writes a pool's spec, as upstream does whenever it
    /// sends the pool's list.
    fn write_cdi_spec(&self, pool: &Pool) {
        let Some(dir) = &self.opts.cdi_dir else {
            return;
        };
        let ctx = &self.ctx;
        let spec = crate::cdi::spec(pool, |pd| {
            crate::allocate::device_nodes(
                ctx,
                crate::allocate::Needs::of_device(&pool.config, pd),
                pd,
            )
        });
        if let Err(e) = crate::cdi::write_spec(dir, pool, &spec) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot write CDI spec");
        }
    }

    fn publish_figures(&self) {
        let figs = self
            .pools
            .iter()
            .map(|(name, p)| PoolFigures {
                resource: name.clone(),
                devices: p.devices.len(),
                healthy: p.healthy_count(),
                registered: self.handles.get(name).is_some_and(|h| h.registered),
            })
            .collect();
        *self.status.pools.lock().expect("lock") = figs;
    }

    async fn rescan(&mut self) {
        let root = self.opts.root.clone();
        let config = self.config.clone();
        let previous = self.pools.clone();
        let t = Instant::now();
        let checks = self.opts.health;
        let r = tokio::task::spawn_blocking(move || scan_pools(&root, &config, &previous, checks))
            .await;
        match r {
            Ok(Ok(pools)) => {
                *self.status.last_scan_seconds.lock().expect("lock") = t.elapsed().as_secs_f64();
                self.status
                    .rescans
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(elapsed = ?t.elapsed(), "rescanned");
                self.pools = self.without_dra(pools);
                self.apply().await;
            }
            Ok(Err(e)) => tracing::error!(error = %e, "rescan failed; pools unchanged"),
            Err(e) => tracing::error!(error = %e, "rescan task failed"),
        }
    }

    async fn reload_config(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        let text = match std::fs::read(&self.opts.config_file) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => {
                    // Not text at all: rejected like a file that is not
                    // JSON, once per content.
                    let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                    if lossy != self.config_text {
                        self.config_text = lossy;
                        self.reject(&format!(
                            "{}: not UTF-8 text ({e})",
                            self.opts.config_file.display()
                        ));
                    }
                    return;
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // mid-swap (ConfigMap symlinks), or removed: keep what runs
                tracing::debug!(error = %e, "config file missing; keeping the running config");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, path = %self.opts.config_file.display(),
                    "config file unreadable; the running pools stay as they were");
                return;
            }
        };
        if text == self.config_text {
            return;
        }
        match Config::parse(
            &text,
            &self.opts.config_file.display().to_string(),
            &self.opts.resource_prefix,
        ) {
            Ok(c) => {
                tracing::info!(
                    resources = c.resources.len(),
                    skipped = c.skipped.len(),
                    "config reloaded"
                );
                self.status
                    .config_errors
                    .fetch_add(c.skipped.len() as u64, Relaxed);
                self.status.config_reloads.fetch_add(1, Relaxed);
                self.status.config_stale.store(false, Relaxed);
                self.config = c;
                self.config_text = text;
                self.rescan().await;
            }
            Err(e) => {
                // remember the text so the same bad file is reported once
                self.config_text = text;
                self.reject(&e.to_string());
            }
        }
    }

    /// A config file rejected as a whole: counted, logged, flagged; the
    /// running pools stay.
    fn reject(&self, why: &str) {
        use std::sync::atomic::Ordering::Relaxed;
        self.status.config_errors.fetch_add(1, Relaxed);
        self.status.config_stale.store(true, Relaxed);
        tracing::error!(
            error = why,
            "new config rejected; the running pools stay as they were (the last good config)"
        );
    }

    async fn health_check(&mut self) {
        let root = self.opts.root.clone();
        let checks = self.opts.health;
        let mut pools = std::mem::take(&mut self.pools);
        let (pools, changed) = tokio::task::spawn_blocking(move || {
            let changed = crate::pools::recheck_only(&root, &mut pools, checks);
            (pools, changed)
        })
        .await
        .expect("health check task");
        self.pools = pools;
        if !changed.is_empty() {
            self.apply().await;
        }
    }

    async fn plugin_dir_event(&mut self, name: &std::ffi::OsStr, created: bool) {
        let kubelet_created = created && name == crate::api::KUBELET_SOCKET;
        let mut restarted = false;
        let names: Vec<String> = self.handles.keys().cloned().collect();
        for n in names {
            let h = self.handles.get(&n).expect("present");
            let missing = h.server.as_ref().is_none_or(|s| !s.socket_present());
            if missing {
                let old = self.handles.get_mut(&n).expect("present").server.take();
                if let Some(s) = old {
                    s.stop().await;
                }
                let h = self.handles.get(&n).expect("present");
                let server = self.start_server(h);
                let h = self.handles.get_mut(&n).expect("present");
                h.server = server;
                h.registered = false;
                restarted = true;
            }
        }
        if kubelet_created || restarted {
            tracing::info!(
                kubelet_socket_created = kubelet_created,
                "re-registering with the kubelet"
            );
            self.register_all(kubelet_created).await;
            self.publish_figures();
        }
    }

    /// Serves until `shutdown` resolves, then stops every server and removes
    /// its socket.
    pub async fn run(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), StartError> {
        let (tx, mut rx) = mpsc::channel::<Event>(1024);
        let dir_task = crate::watch::spawn_dir_watch(
            &self.opts.config_file,
            Some(&self.opts.plugin_dir),
            tx.clone(),
        )?;
        let uevent_task = if self.opts.uevents {
            match crate::watch::spawn_uevents(&self.opts.root, tx.clone()) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(error = %e, "no uevents; relying on the periodic resync");
                    None
                }
            }
        } else {
            None
        };
        drop(tx);
        // GPU pairing: a fresh PodResources snapshot every few seconds, so
        // the pod being admitted is the only one new since the last.
        let snapshot_task = self.gpu.clone().map(|p| {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(p.refresh_interval());
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    p.refresh().await;
                }
            })
        });
        self.apply().await;
        self.status
            .ready
            .store(true, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            pools = self.handles.len(),
            registered = self.handles.values().filter(|h| h.registered).count(),
            elapsed = ?self.started.elapsed(),
            "serving"
        );
        // The pools were checked when they were built: the first health
        // check is one interval from now (not at once, where it would
        // compete with the kubelet's first ListAndWatch calls).
        let mut health = tokio::time::interval_at(
            tokio::time::Instant::now() + self.opts.health_interval,
            self.opts.health_interval,
        );
        health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut resync = tokio::time::interval(self.opts.resync_interval);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        resync.tick().await; // the first tick is immediate: we just scanned
        let debounce = Duration::from_millis(100);
        let mut rescan_at: Option<tokio::time::Instant> = None;
        let mut config_at: Option<tokio::time::Instant> = None;
        tokio::pin!(shutdown);
        loop {
            let next_deadline = [rescan_at, config_at].into_iter().flatten().min();
            tokio::select! {
                _ = &mut shutdown => break,
                ev = rx.recv() => match ev {
                    None => break,
                    Some(Event::Uevent { subsystem, action }) => {
                        tracing::debug!(%subsystem, %action, "uevent");
                        rescan_at.get_or_insert(tokio::time::Instant::now() + debounce);
                    }
                    Some(Event::ConfigDir) => {
                        config_at.get_or_insert(tokio::time::Instant::now() + debounce);
                    }
                    Some(Event::PluginDir { name, created }) => {
                        self.plugin_dir_event(&name, created).await;
                    }
                },
                _ = async {
                    match next_deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let now = tokio::time::Instant::now();
                    if config_at.is_some_and(|d| d <= now) {
                        config_at = None;
                        self.reload_config().await;
                    }
                    if rescan_at.is_some_and(|d| d <= now) {
                        rescan_at = None;
                        self.rescan().await;
                    }
                }
                _ = health.tick() => {
                    self.health_check().await;
                    self.register_all(false).await;
                }
                _ = resync.tick() => self.rescan().await,
            }
        }
        tracing::info!("shutting down: stopping servers, removing sockets");
        dir_task.abort();
        if let Some(t) = snapshot_task {
            t.abort();
        }
        if let Some(t) = uevent_task {
            t.abort();
            let _ = t.await; // drops the uevent socket (removes its file)
        }
        for (_, h) in std::mem::take(&mut self.handles) {
            if let Some(s) = h.server {
                s.stop().await;
            }
        }
        if let Some(dir) = &self.opts.cdi_dir {
            crate::cdi::cleanup_specs(&cdi_dirs(&self.opts.root, dir));
        }
        Ok(())
    }
}
