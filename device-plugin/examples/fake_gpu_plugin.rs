//! A fake GPU device plugin for the cluster lane (cluster/tests/gpu.sh,
//! docs/cluster.md "GPU-aware preferred allocation"): it advertises the
//! given GPUs of a simulated node to the kubelet as `--resource` (default
//! `amd.com/gpu`, whose real plugin also uses PCI addresses as device IDs),
//! with the PCI addresses as IDs, and answers Allocate with the env
//! `FAKE_GPU_DEVICES=<ids>`. It runs as a host process and talks the real
//! device plugin protocol (v1beta1) over unix sockets.
//!
//! ```sh
//! fake_gpu_plugin --gpus 0000:53:00.0,0000:63:00.0 [--numa 0] [--resource amd.com/gpu]
//! ```
//!
//! It registers once: after a kubelet restart it has to be started again.
//! On SIGTERM it removes its socket and exits; the kubelet then marks the
//! GPUs unhealthy.

use std::path::PathBuf;
use std::pin::Pin;

use anyhow::Context;
use clap::Parser;
use futures::{Stream, StreamExt};
use sriov_device_plugin::api::device_plugin_server::{DevicePlugin, DevicePluginServer};
use sriov_device_plugin::api::{
    AllocateRequest, AllocateResponse, ContainerAllocateResponse, Device, DevicePluginOptions,
    Empty, ListAndWatchResponse, NumaNode, PreStartContainerRequest, PreStartContainerResponse,
    PreferredAllocationRequest, PreferredAllocationResponse, TopologyInfo,
};
use sriov_host::PciAddress;
use tonic::{Request, Response, Status};

#[derive(Parser, Debug)]
#[command(about = "Fake GPU device plugin: advertises PCI addresses of simulated GPUs")]
struct Args {
    /// GPUs to advertise: PCI addresses, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    gpus: Vec<String>,
    /// NUMA node reported for every GPU (none when absent).
    #[arg(long)]
    numa: Option<i64>,
    /// The extended resource name.
    #[arg(long, default_value = "amd.com/gpu")]
    resource: String,
    /// The kubelet's device plugin directory.
    #[arg(long, default_value = "/var/lib/kubelet/device-plugins")]
    plugin_dir: PathBuf,
}

#[derive(Clone)]
struct FakeGpus {
    devices: Vec<Device>,
}

type LawStream = Pin<Box<dyn Stream<Item = Result<ListAndWatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl DevicePlugin for FakeGpus {
    async fn get_device_plugin_options(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<DevicePluginOptions>, Status> {
        Ok(Response::new(DevicePluginOptions::default()))
    }

    type ListAndWatchStream = LawStream;

    async fn list_and_watch(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<Self::ListAndWatchStream>, Status> {
        let first = ListAndWatchResponse {
            devices: self.devices.clone(),
        };
        // One list, then the stream stays open (the devices never change).
        let s = futures::stream::once(async move { Ok(first) }).chain(futures::stream::pending());
        Ok(Response::new(Box::pin(s)))
    }

    async fn get_preferred_allocation(
        &self,
        _: Request<PreferredAllocationRequest>,
    ) -> Result<Response<PreferredAllocationResponse>, Status> {
        Err(Status::unimplemented("not advertised"))
    }

    async fn allocate(
        &self,
        req: Request<AllocateRequest>,
    ) -> Result<Response<AllocateResponse>, Status> {
        let mut out = Vec::new();
        for c in &req.get_ref().container_requests {
            if let Some(bad) = c
                .devices_ids
                .iter()
                .find(|id| !self.devices.iter().any(|d| &d.id == *id))
            {
                return Err(Status::invalid_argument(format!("unknown GPU {bad}")));
            }
            let ids = c.devices_ids.join(",");
            tracing::info!(gpus = %ids, "gpu allocated");
            out.push(ContainerAllocateResponse {
                envs: [("FAKE_GPU_DEVICES".to_string(), ids)].into(),
                ..Default::default()
            });
        }
        Ok(Response::new(AllocateResponse {
            container_responses: out,
        }))
    }

    async fn pre_start_container(
        &self,
        _: Request<PreStartContainerRequest>,
    ) -> Result<Response<PreStartContainerResponse>, Status> {
        Ok(Response::new(PreStartContainerResponse {}))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let mut devices = Vec::new();
    for g in &args.gpus {
        let a =
            PciAddress::parse(g).with_context(|| format!("--gpus: {g:?} is not a PCI address"))?;
        devices.push(Device {
            id: a.to_string(),
            health: sriov_device_plugin::api::HEALTHY.to_string(),
            topology: args.numa.map(|id| TopologyInfo {
                nodes: vec![NumaNode { id }],
            }),
        });
    }
    let endpoint = format!("{}.sock", args.resource.replace('/', "_"));
    let path = args.plugin_dir.join(&endpoint);
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    let svc = DevicePluginServer::new(FakeGpus {
        devices: devices.clone(),
    });
    // No graceful shutdown: the kubelet's ListAndWatch stream never ends by
    // itself, so the process exits (closing it) on SIGTERM.
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
    );
    let kubelet = args
        .plugin_dir
        .join(sriov_device_plugin::api::KUBELET_SOCKET);
    sriov_device_plugin::kubelet::register(&kubelet, &endpoint, &args.resource)
        .await
        .context("registration failed")?;
    let ids: Vec<&str> = devices.iter().map(|d| d.id.as_str()).collect();
    tracing::info!(resource = %args.resource, gpus = ?ids, socket = %path.display(), "registered with the kubelet");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let _ = std::fs::remove_file(&path);
    tracing::info!("stopped");
    // Returning drops the runtime, and with it every open stream.
    Ok(())
}
