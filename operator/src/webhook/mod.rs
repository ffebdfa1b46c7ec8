//! The admission webhooks: the operator webhook (defaults and validation of
//! policies, networks, the operator config and pool configs) and the
//! network-resources injector (VF resource requests for pods that name
//! SR-IOV networks), served over TLS on upstream's paths.
//!
//! - [`operator_webhook`]: `/mutating-custom-resource` and
//!   `/validating-custom-resource`; the rules are `sriov_crds::rules` (one
//!   implementation with render mode).
//! - [`injector`]: the pod path `/mutate`.
//! - [`cache`]: what the handlers read: NADs, nodes, node states, policies
//!   (kube-runtime reflectors, never a GET per request) and the injector's
//!   control switches.
//! - [`tls`]: the serving certificate, reloaded when its files change.
//! - [`server`]: the HTTPS server (`/readyz` included).
//! - [`configs`]: the webhook configurations as objects (for the controller
//!   that creates them after `enableOperatorWebhook` / `enableInjector`).
//! - [`deploy`]: what the operator deploys for those flags (DaemonSets,
//!   Services, certificates, configurations) and removes without them.
//! - [`certs`]: the self-signed CA and serving certificate in a Secret,
//!   rotation, and the `caBundle` of the webhook configurations.

pub mod cache;
pub mod certs;
pub mod configs;
pub mod deploy;
pub mod injector;
pub mod operator_webhook;
pub mod server;
pub mod tls;

/// Path of the operator's mutating webhook (policy defaults).
pub const PATH_MUTATING: &str = "/mutating-custom-resource";
/// Path of the operator's validating webhook.
pub const PATH_VALIDATING: &str = "/validating-custom-resource";
/// Path of the network-resources injector.
pub const PATH_INJECTOR: &str = "/mutate";
/// Readiness probe path.
pub const PATH_READYZ: &str = "/readyz";

/// Pod annotation naming the secondary networks (Multus).
pub const NETWORKS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/networks";
/// NAD annotation with the device-plugin resource of the network.
pub const RESOURCE_NAME_ANNOTATION: &str = crate::nad::RESOURCE_NAME_ANNOTATION;
/// NAD annotation with a node label (`key=value` or `key`) pods must land on.
pub const NODE_SELECTOR_ANNOTATION: &str = "k8s.v1.cni.cncf.io/nodeSelector";

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Options of `sriov-network-operator webhook`.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// PEM certificate chain.
    pub tls_cert: PathBuf,
    /// PEM private key.
    pub tls_key: PathBuf,
    /// How often the certificate files are checked for a rotation.
    pub reload_interval: Duration,
    /// The operator namespace (`NAMESPACE`).
    pub operator_namespace: String,
    /// `DEV_MODE=TRUE`: accept NICs outside the supported list.
    pub dev_mode: bool,
    /// The DRA pools' extended-resource names (`SRIOV_DRA_RESOURCES` with
    /// `RESOURCE_PREFIX`): the injector requests no extended resource
    /// for their networks.
    pub dra_resources: std::collections::BTreeSet<String>,
}

/// Why the webhook server stopped.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The certificate could not be loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// No Kubernetes client (in-cluster config or KUBECONFIG).
    #[error("connecting to the API server: {0}")]
    Client(#[from] kube::Error),
    /// The listen address.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// Runs the webhook server until SIGTERM/SIGINT: caches, certificate
/// reloads, the HTTPS routes. `/readyz` says ready once the caches listed.
pub async fn run(opts: WebhookOptions) -> Result<(), WebhookError> {
    let cert = tls::ReloadingCert::load(&opts.tls_cert, &opts.tls_key)?;
    let client = kube::Client::try_default().await?;
    let switches = Arc::new(RwLock::new(injector::InjectorSwitches::default()));
    let caches = cache::start(client, &opts.operator_namespace, switches.clone());
    let state = Arc::new(server::WebhookState {
        operator: operator_webhook::OperatorWebhookConfig {
            operator_namespace: opts.operator_namespace.clone(),
            nic_check: if opts.dev_mode {
                sriov_crds::rules::policy::NicCheck::AnyNic
            } else {
                sriov_crds::rules::policy::NicCheck::KnownOnly
            },
            nics: sriov_crds::nic_ids::NicIdList::builtin(),
        },
        cluster: Arc::new(caches.clone()),
        nads: Arc::new(caches.clone()),
        switches,
        dra_resources: opts.dra_resources.clone(),
        ready: Default::default(),
    });
    {
        let state = state.clone();
        tokio::spawn(async move {
            caches.wait_until_ready().await;
            state.ready.store(true, Ordering::Relaxed);
            tracing::info!("caches synced; ready");
        });
    }
    tokio::spawn(tls::watch(cert.clone(), opts.reload_interval));
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|source| WebhookError::Listen {
            addr: opts.listen,
            source,
        })?;
    tracing::info!(addr = %opts.listen, "serving admission webhooks");
    server::serve(
        listener,
        cert,
        server::router(state),
        sriov_health::shutdown_signal(),
    )
    .await
    .map_err(|source| WebhookError::Listen {
        addr: opts.listen,
        source,
    })
}
