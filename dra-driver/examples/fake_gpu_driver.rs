//! A fake GPU DRA driver, for tests only: the cluster lane's GPU–NIC
//! pairing test (cluster/tests/dra.sh, docs/dra.md) needs a second driver
//! whose devices carry `resource.kubernetes.io/pcieRoot`, so that a claim
//! for a VF and a GPU under `matchAttribute: resource.kubernetes.io/pcieRoot`
//! has something to match.
//!
//! It publishes the GPUs given with `--gpus ADDRESS=PCIE_ROOT,…` as one
//! pool named after the node (the crate's `slices::publish`), registers
//! with the kubelet (the crate's registration service) and answers
//! `DRAPlugin` v1: prepare reads the claim (the crate's `KubeClaims`) and
//! returns this driver's devices, without CDI devices; unprepare succeeds.
//! No GPU is touched.
//!
//! ```text
//! cargo run -p sriov-dra-driver --example fake_gpu_driver -- \
//!   --node-name node1 --gpus 0000:3c:00.0=pci0000:3a,0000:d8:00.0=pci0000:d7
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use sriov_dra_driver::attributes::{self, PublishedDevice, STANDARD_DOMAIN, Value};
use sriov_dra_driver::plugin::{
    self, ClaimSource, KubeClaims, RegistrationService, registration, v1,
};
use sriov_dra_driver::slices::{self, KubeStore};
use sriov_host::PciAddress;
use tonic::{Request, Response, Status};

/// A fake GPU DRA driver (tests only).
#[derive(Debug, Parser)]
struct Args {
    /// The node's name (the pool name and spec.nodeName of the slice).
    #[arg(long, env = "NODE_NAME")]
    node_name: String,
    /// The DRA driver name.
    #[arg(long, default_value = "gpu.example.com")]
    driver_name: String,
    /// The GPUs: PCI address = PCIe root (`pci<domain>:<bus>`), comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    gpus: Vec<String>,
    /// The kubelet's plugins directory.
    #[arg(long, default_value = "/var/lib/kubelet/plugins")]
    plugins_dir: PathBuf,
    /// The kubelet's plugin registry directory.
    #[arg(long, default_value = "/var/lib/kubelet/plugins_registry")]
    registry_dir: PathBuf,
}

fn gpus(specs: &[String]) -> anyhow::Result<Vec<PublishedDevice>> {
    specs
        .iter()
        .map(|s| {
            let (addr, root) = s
                .split_once('=')
                .with_context(|| format!("{s:?}: want ADDRESS=PCIE_ROOT"))?;
            let address: PciAddress = addr.parse().with_context(|| format!("{addr:?}"))?;
            let mut attrs = BTreeMap::new();
            attrs.insert(
                format!("{STANDARD_DOMAIN}/pcieRoot"),
                Value::String(root.to_string()),
            );
            attrs.insert(
                format!("{STANDARD_DOMAIN}/pciBusID"),
                Value::String(address.to_string()),
            );
            Ok(PublishedDevice {
                name: format!("gpu-{}", attributes::device_name(&address)),
                address,
                attributes: attrs,
            })
        })
        .collect()
}

struct Gpus {
    driver: String,
    claims: KubeClaims,
}

#[tonic::async_trait]
impl v1::dra_plugin_server::DraPlugin for Gpus {
    async fn node_prepare_resources(
        &self,
        req: Request<v1::NodePrepareResourcesRequest>,
    ) -> Result<Response<v1::NodePrepareResourcesResponse>, Status> {
        let mut claims = std::collections::HashMap::new();
        for c in req.into_inner().claims {
            let resp = match self
                .claims
                .allocated(&c.namespace, &c.name, &c.uid, &self.driver)
                .await
            {
                Ok(devices) => {
                    let names: Vec<&str> = devices.iter().map(|d| d.device.as_str()).collect();
                    tracing::info!(uid = %c.uid, devices = %names.join(","), "gpu claim prepared");
                    v1::NodePrepareResourceResponse {
                        devices: devices
                            .into_iter()
                            .map(|d| v1::Device {
                                request_names: vec![d.request],
                                pool_name: d.pool,
                                device_name: d.device,
                                ..Default::default()
                            })
                            .collect(),
                        error: String::new(),
                    }
                }
                Err(error) => v1::NodePrepareResourceResponse {
                    devices: Vec::new(),
                    error,
                },
            };
            claims.insert(c.uid, resp);
        }
        Ok(Response::new(v1::NodePrepareResourcesResponse { claims }))
    }

    async fn node_unprepare_resources(
        &self,
        req: Request<v1::NodeUnprepareResourcesRequest>,
    ) -> Result<Response<v1::NodeUnprepareResourcesResponse>, Status> {
        let claims = req
            .into_inner()
            .claims
            .into_iter()
            .map(|c| {
                tracing::info!(uid = %c.uid, "gpu claim unprepared");
                (c.uid, v1::NodeUnprepareResourceResponse::default())
            })
            .collect();
        Ok(Response::new(v1::NodeUnprepareResourcesResponse { claims }))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let devices = gpus(&args.gpus)?;
    let client = kube::Client::try_default().await?;
    let p = slices::publish(
        &KubeStore::new(client.clone()),
        &args.driver_name,
        &args.node_name,
        &devices,
    )
    .await
    .context("publishing the GPUs")?;
    tracing::info!(
        gpus = devices.len(),
        generation = p.generation,
        "ResourceSlices published"
    );

    let dra_socket = plugin::dra_socket(&args.plugins_dir, &args.driver_name, None);
    let reg_socket = plugin::registration_socket(&args.registry_dir, &args.driver_name, None);
    let gpus = Gpus {
        driver: args.driver_name.clone(),
        claims: KubeClaims::new(client),
    };
    let dra = tonic::transport::Server::builder()
        .add_service(v1::dra_plugin_server::DraPluginServer::new(gpus))
        .serve_with_incoming(plugin::bind(&dra_socket)?);
    // The registration service logs the kubelet's verdict.
    let (status, _status_rx) = tokio::sync::watch::channel(None);
    let reg = tonic::transport::Server::builder()
        .add_service(registration::registration_server::RegistrationServer::new(
            RegistrationService {
                driver: args.driver_name.clone(),
                endpoint: dra_socket.clone(),
                status,
            },
        ))
        .serve_with_incoming(plugin::bind_registration(&reg_socket)?);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let r = tokio::select! {
        r = dra => r.context("DRA socket"),
        r = reg => r.context("registration socket"),
        _ = term.recv() => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    let _ = std::fs::remove_file(&reg_socket);
    let _ = std::fs::remove_file(&dra_socket);
    r
}
