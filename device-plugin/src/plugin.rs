//! One pool's gRPC server: the `DevicePlugin` service on
//! `<dir>/<prefix>_<name>.sock`.
//!
//! The pool's current state comes from a `watch` channel that the manager
//! updates after every rescan and health check; ListAndWatch sends a new
//! list whenever what the kubelet sees (IDs, health, NUMA) changes.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::Stream;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::affinity::{GpuHint, preferred_near};
use crate::allocate::{AllocateContext, container_response};
use crate::api::device_plugin_server::{DevicePlugin, DevicePluginServer};
use crate::api::{
    AllocateRequest, AllocateResponse, ContainerPreferredAllocationResponse, Device,
    DevicePluginOptions, Empty, ListAndWatchResponse, NumaNode, PreStartContainerRequest,
    PreStartContainerResponse, PreferredAllocationRequest, PreferredAllocationResponse,
    TopologyInfo,
};
use crate::podresources::GpuPairing;
use crate::pools::Pool;
use crate::preferred::{AllocationPolicy, preferred};
use sriov_host::topology::Topology;

/// `<prefix>_<name>.sock`.
pub fn socket_name(prefix: &str, name: &str) -> String {
    format!("{prefix}_{name}.sock")
}

/// Counters shared by all pools (for `/metrics`).
#[derive(Debug, Default)]
pub struct Counters {
    pub allocations: AtomicU64,
    pub allocated_devices: AtomicU64,
    pub allocation_errors: AtomicU64,
    pub list_and_watch_updates: AtomicU64,
}

/// The ListAndWatch message for a pool (empty for `None`: pool removed).
pub fn list_response(pool: Option<&Pool>) -> ListAndWatchResponse {
    let devices = pool
        .map(|p| {
            p.kubelet_view()
                .into_iter()
                .map(|(a, healthy, numa)| Device {
                    id: a.to_string(),
                    health: if healthy {
                        crate::api::HEALTHY
                    } else {
                        crate::api::UNHEALTHY
                    }
                    .to_string(),
                    topology: numa.map(|n| TopologyInfo {
                        nodes: vec![NumaNode { id: i64::from(n) }],
                    }),
                })
                .collect()
        })
        .unwrap_or_default();
    ListAndWatchResponse { devices }
}

/// The `DevicePlugin` service of one pool.
#[derive(Clone)]
pub struct PoolService {
    pub state: watch::Receiver<Option<Arc<Pool>>>,
    /// Flips to true when this server instance stops (ends streams).
    pub stop: watch::Receiver<bool>,
    pub ctx: Arc<AllocateContext>,
    pub policy: AllocationPolicy,
    pub counters: Arc<Counters>,
    /// GPU-aware preferred allocation (`--gpu-resources`): the PodResources
    /// state shared by every pool; `None` when off.
    pub gpu: Option<Arc<GpuPairing>>,
}

impl PoolService {
    /// Where the GPUs of the pod being admitted are, when there are any
    /// and the plugin can tell ([`crate::podresources`]); else `None`
    /// (plain policy). Reads the node's PCIe topology when needed.
    async fn gpu_hint(&self, pool: &Pool) -> Option<(GpuHint, Topology)> {
        let pairing = self.gpu.as_ref()?;
        let resource = pool.config.resource_name();
        let (pod, gpus) = pairing.admitting_gpus(&resource).await?;
        let root = self.ctx.root.clone();
        let topology = match tokio::task::spawn_blocking(move || Topology::read(&root)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "no GPU pairing: cannot read the PCIe topology");
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "no GPU pairing: topology task failed");
                return None;
            }
        };
        let hint = GpuHint::from_gpus(&topology, &gpus);
        let ids: Vec<&str> = gpus.iter().map(|g| g.id.as_str()).collect();
        if hint.is_empty() {
            tracing::debug!(%resource, %pod, gpus = ?ids,
                "no GPU pairing: the pod's GPUs are neither PCI addresses of this node nor on a known NUMA node");
            return None;
        }
        let located: Vec<String> = hint.located.iter().map(ToString::to_string).collect();
        tracing::info!(%resource, %pod, gpus = ?ids, ?located, numa = ?hint.numa,
            "preferring devices near the GPUs of the pod being admitted");
        Some((hint, topology))
    }
}

type LawStream = Pin<Box<dyn Stream<Item = Result<ListAndWatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl DevicePlugin for PoolService {
    async fn get_device_plugin_options(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<DevicePluginOptions>, Status> {
        Ok(Response::new(crate::kubelet::plugin_options()))
    }

    type ListAndWatchStream = LawStream;

    async fn list_and_watch(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<Self::ListAndWatchStream>, Status> {
        let state = self.state.clone();
        let stop = self.stop.clone();
        let counters = self.counters.clone();
        // State: (receiver, stop, last view sent, finished)
        let s = futures::stream::unfold(
            (state, stop, None::<Vec<Device>>, false),
            move |(mut rx, mut stop, last, done)| {
                let counters = counters.clone();
                async move {
                    if done {
                        return None;
                    }
                    loop {
                        let msg = list_response(rx.borrow_and_update().as_deref());
                        if last.as_ref() != Some(&msg.devices) {
                            counters
                                .list_and_watch_updates
                                .fetch_add(1, Ordering::Relaxed);
                            let devs = msg.devices.clone();
                            return Some((Ok(msg), (rx, stop, Some(devs), false)));
                        }
                        enum Next {
                            Changed,
                            Gone,
                            Stopped,
                        }
                        let next = tokio::select! {
                            r = rx.changed() => if r.is_err() { Next::Gone } else { Next::Changed },
                            _ = stop.wait_for(|s| *s) => Next::Stopped,
                        };
                        match next {
                            Next::Changed => {}
                            // pool gone: tell the kubelet it has no devices
                            Next::Gone => {
                                let msg = ListAndWatchResponse::default();
                                return Some((Ok(msg), (rx, stop, None, true)));
                            }
                            Next::Stopped => return None,
                        }
                    }
                }
            },
        );
        Ok(Response::new(Box::pin(s)))
    }

    async fn get_preferred_allocation(
        &self,
        req: Request<PreferredAllocationRequest>,
    ) -> Result<Response<PreferredAllocationResponse>, Status> {
        let pool = self
            .state
            .borrow()
            .clone()
            .ok_or_else(|| Status::unavailable("pool removed"))?;
        let near = self.gpu_hint(&pool).await;
        let container_responses = req
            .into_inner()
            .container_requests
            .iter()
            .map(|c| {
                let size = usize::try_from(c.allocation_size).unwrap_or(0);
                let (available, must) = (&c.available_device_i_ds, &c.must_include_device_i_ds);
                let device_i_ds = match &near {
                    Some((hint, topology)) => {
                        preferred_near(&pool, topology, hint, available, must, size, self.policy)
                    }
                    None => preferred(&pool, available, must, size, self.policy),
                };
                ContainerPreferredAllocationResponse { device_i_ds }
            })
            .collect();
        Ok(Response::new(PreferredAllocationResponse {
            container_responses,
        }))
    }

    async fn allocate(
        &self,
        req: Request<AllocateRequest>,
    ) -> Result<Response<AllocateResponse>, Status> {
        let pool = self
            .state
            .borrow()
            .clone()
            .ok_or_else(|| Status::unavailable("pool removed"))?;
        let mut container_responses = Vec::new();
        for c in &req.get_ref().container_requests {
            match container_response(&self.ctx, &pool, &c.devices_ids) {
                Ok(r) => {
                    self.counters
                        .allocated_devices
                        .fetch_add(c.devices_ids.len() as u64, Ordering::Relaxed);
                    container_responses.push(r);
                }
                Err(e) => {
                    self.counters
                        .allocation_errors
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(pool = %pool.config.resource_name(), error = %e, "allocate failed");
                    return Err(match e {
                        crate::allocate::AllocateError::UnknownDevice { .. } => {
                            Status::invalid_argument(e.to_string())
                        }
                        crate::allocate::AllocateError::DeviceInfo { .. }
                        | crate::allocate::AllocateError::CdiSpec { .. } => {
                            Status::internal(e.to_string())
                        }
                    });
                }
            }
        }
        self.counters.allocations.fetch_add(1, Ordering::Relaxed);
        tracing::info!(pool = %pool.config.resource_name(), containers = container_responses.len(), "allocated");
        Ok(Response::new(AllocateResponse {
            container_responses,
        }))
    }

    async fn pre_start_container(
        &self,
        _: Request<PreStartContainerRequest>,
    ) -> Result<Response<PreStartContainerResponse>, Status> {
        Ok(Response::new(PreStartContainerResponse {}))
    }
}

/// Why a server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {path}: {source} (check --device-plugin-dir exists and is writable)")]
    Listen {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A running server; dropping it does not stop it, [`Server::stop`] does.
pub struct Server {
    pub path: PathBuf,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds `path` (removing a stale socket first) and serves `svc`.
    pub fn start(
        path: &Path,
        svc: PoolService,
        stop: watch::Sender<bool>,
    ) -> Result<Server, ServeError> {
        let _ = std::fs::remove_file(path);
        let listener =
            tokio::net::UnixListener::bind(path).map_err(|source| ServeError::Listen {
                path: path.to_path_buf(),
                source,
            })?;
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
        let mut stop_rx = stop.subscribe();
        let p = path.to_path_buf();
        let task = tokio::spawn(async move {
            let r = tonic::transport::Server::builder()
                .add_service(DevicePluginServer::new(svc))
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stop_rx.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = r {
                tracing::error!(socket = %p.display(), error = %e, "device plugin server failed");
            }
        });
        Ok(Server {
            path: path.to_path_buf(),
            stop,
            task,
        })
    }

    /// Whether the socket file is still there (the kubelet deletes every
    /// socket in its directory when it starts).
    pub fn socket_present(&self) -> bool {
        std::fs::symlink_metadata(&self.path).is_ok()
    }

    /// Stops serving (ending ListAndWatch streams) and removes the socket.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.task).await;
        let _ = std::fs::remove_file(&self.path);
    }
}
