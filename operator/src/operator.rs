//! `sriov-network-operator run`: leader election on a `coordination.k8s.io`
//! Lease, the health/metrics server, and the controllers.

use std::net::SocketAddr;
use std::sync::Arc;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;

use crate::metrics::Metrics;
use crate::settings::Settings;

/// Lease name: the Go operator's leader-election ID, so the two never lead at once.
pub const LEASE_NAME: &str = "a56def2a.openshift.io";

/// Options of `run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Address of `/healthz`, `/readyz`, `/metrics`.
    pub metrics_addr: SocketAddr,
    /// Take part in leader election (off: lead at once).
    pub leader_elect: bool,
    /// This replica's identity (pod name; the Events' reporting instance).
    pub identity: String,
    /// Create `SriovOperatorConfig` `default` at start when it is missing.
    pub create_default_config: bool,
}

/// How long a stopping operator waits for its lease to be released.
const RELEASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the operator until SIGTERM, a lost lease or a fatal error. On
/// SIGTERM it stops at once (the controllers hold no state a restart does
/// not rebuild) and releases its lease, so that another replica leads within
/// a second instead of after the lease's 15 s, and a pod deletion does not
/// wait for the kubelet's grace period.
pub async fn run(opts: RunOptions, settings: Settings) -> Result<(), String> {
    let shutdown = sriov_health::shutdown_signal();
    tokio::pin!(shutdown);
    let client = Client::try_default()
        .await
        .map_err(|e| format!("cannot reach the API server: {e}"))?;
    let metrics = Arc::new(Metrics::new());
    let listener = tokio::net::TcpListener::bind(opts.metrics_addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", opts.metrics_addr))?;
    tokio::spawn(sriov_health::serve(listener, metrics.clone()));
    let mut lost = None;
    let mut lease_task = None;
    if opts.leader_elect {
        let manager = LeaseManagerBuilder::new(client.clone(), LEASE_NAME)
            .with_namespace(settings.namespace.clone())
            .with_identity(opts.identity.clone())
            .with_duration(15)
            .with_grace(5)
            .with_field_manager(crate::render::FIELD_MANAGER)
            .build()
            .await
            .map_err(|e| format!("leader election: {e}"))?;
        let (mut rx, task) = manager.watch().await;
        lease_task = Some(task);
        tracing::info!(identity = %opts.identity, "waiting for the lease {LEASE_NAME}");
        while !*rx.borrow_and_update() {
            tokio::select! {
                changed = rx.changed() => {
                    changed.map_err(|_| "leader election stopped".to_string())?;
                }
                _ = &mut shutdown => {
                    tracing::info!("stopping (signal) before leading");
                    return Ok(());
                }
            }
        }
        tracing::info!("leading");
        metrics.set_leader(true);
        // Holds the receiver: dropping it makes the lease task release the
        // lease.
        lost = Some(async move {
            loop {
                if rx.changed().await.is_err() || !*rx.borrow_and_update() {
                    return;
                }
            }
        });
    } else {
        metrics.set_leader(true);
    }
    let tuning = crate::controllers::run::Tuning {
        create_default_config: opts.create_default_config,
        instance: Some(opts.identity.clone()),
        ..Default::default()
    };
    let controllers = crate::controllers::run::run_tuned(client, settings, metrics, tuning);
    let result = match lost {
        Some(lost) => tokio::select! {
            r = controllers => r.map_err(|e| e.to_string()),
            _ = lost => Err("lost the leader lease; exiting so a new leader takes over".into()),
            _ = &mut shutdown => {
                tracing::info!("stopping (signal)");
                Ok(())
            }
        },
        None => tokio::select! {
            r = controllers => r.map_err(|e| e.to_string()),
            _ = &mut shutdown => {
                tracing::info!("stopping (signal)");
                Ok(())
            }
        },
    };
    if let Some(task) = lease_task {
        match tokio::time::timeout(RELEASE_TIMEOUT, task).await {
            Ok(Ok(Ok(_))) => tracing::info!("lease released"),
            Ok(Ok(Err(e))) => tracing::warn!("releasing the lease: {e}"),
            Ok(Err(e)) => tracing::warn!("lease task: {e}"),
            Err(_) => tracing::warn!("the lease was not released within {RELEASE_TIMEOUT:?}"),
        }
    }
    result
}
