//! The kubelet plugin API: registration (`pluginregistration.Registration`
//! on `<registry dir>/<driver>-reg.sock`) and `DRAPlugin` v1 and v1beta1
//! (`NodePrepareResources`, `NodeUnprepareResources`) on
//! `<plugins dir>/<driver>/dra.sock`.
//!
//! For each claim the kubelet names (namespace, name, UID), prepare reads
//! the ResourceClaim's allocation through a [`ClaimSource`], keeps the
//! results of this driver, and hands them to the [`Preparer`]. Every claim
//! gets an entry in the answer, with `error` set when it failed (the
//! kubelet retries those). Calls are serialized (one prepare or unprepare
//! at a time), as the Go helper does by default.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::prepare::{AllocatedDevice, PreparedDevice, Preparer};

/// Generated registration API.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod registration {
    tonic::include_proto!("pluginregistration");
}

/// Generated DRA plugin API v1.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("k8s.io.kubelet.pkg.apis.dra.v1");
}

/// Generated DRA plugin API v1beta1.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1beta1 {
    tonic::include_proto!("k8s.io.kubelet.pkg.apis.dra.v1beta1");
}

/// The services listed in `supported_versions`, newest first.
pub const SUPPORTED_VERSIONS: [&str; 2] = ["v1.DRAPlugin", "v1beta1.DRAPlugin"];

/// The part of a pod UID that names an instance's sockets: its first 12
/// hex digits (48 random bits of a UUID: two pods of one node do not
/// share them). The whole UID does not fit: a unix socket path has at most
/// 107 bytes, and `/var/lib/kubelet/plugins_registry/<driver>-<uid>-reg.sock`
/// with this driver's 36-byte name and a 36-byte UID has 116.
pub fn instance_tag(pod_uid: &str) -> String {
    pod_uid.chars().filter(|c| *c != '-').take(12).collect()
}

/// The longest unix socket path (`sun_path` holds 108 bytes with the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// The registration socket of a driver instance:
/// `<dir>/<driver>-reg.sock`, or `<dir>/<driver>-<instance>-reg.sock` for
/// an instance that takes part in rolling updates (see [`dra_socket`]).
pub fn registration_socket(registry_dir: &Path, driver: &str, instance: Option<&str>) -> PathBuf {
    match instance {
        None => registry_dir.join(format!("{driver}-reg.sock")),
        Some(i) => registry_dir.join(format!("{driver}-{i}-reg.sock")),
    }
}

/// The DRA socket of a driver instance: `<plugins dir>/<driver>/dra.sock`,
/// or `dra-<instance>.sock` there.
///
/// A rolling update (a DaemonSet with `maxSurge`) runs the old and the new
/// instance side by side; each must listen on sockets of its own, so that
/// neither unlinks the other's and the kubelet (1.33 and later) can use
/// either, then drop the old one when its sockets go. The instance is the
/// pod's UID, as the kubelet plugin helper's `RollingUpdate` option and the
/// kubelet's plugin watcher documentation ("Seamless Upgrade") name them.
pub fn dra_socket(plugins_dir: &Path, driver: &str, instance: Option<&str>) -> PathBuf {
    let dir = plugins_dir.join(driver);
    match instance {
        None => dir.join("dra.sock"),
        Some(i) => dir.join(format!("dra-{i}.sock")),
    }
}

/// Removes the sockets of this driver's instances that are gone: a
/// registration socket `<driver>[-<instance>]-reg.sock` in `registry_dir`
/// nobody listens on (`connect` refused: its process was killed), with
/// its DRA socket. The sockets of a live instance (the other side of a
/// rolling update) and `keep` are left alone. Returns the removed paths.
pub fn remove_stale_sockets(
    registry_dir: &Path,
    plugins_dir: &Path,
    driver: &str,
    keep: &[&Path],
) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(registry_dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(middle) = name
            .strip_prefix(driver)
            .and_then(|r| r.strip_suffix("-reg.sock"))
        else {
            continue;
        };
        let instance = match middle.strip_prefix('-') {
            Some(i) if !i.is_empty() => Some(i),
            _ if middle.is_empty() => None,
            // Another driver whose name starts with ours.
            _ => continue,
        };
        let reg = e.path();
        if keep.contains(&reg.as_path()) {
            continue;
        }
        match std::os::unix::net::UnixStream::connect(&reg) {
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => {}
            // Alive, or not a socket we can judge: leave it.
            _ => continue,
        }
        let dra = dra_socket(plugins_dir, driver, instance);
        for p in [reg, dra] {
            if !keep.contains(&p.as_path()) && std::fs::remove_file(&p).is_ok() {
                removed.push(p);
            }
        }
    }
    removed
}

/// Where the allocation of a claim comes from.
#[tonic::async_trait]
pub trait ClaimSource: Send + Sync + 'static {
    /// The devices allocated to the claim by `driver`; an error when the
    /// claim does not exist, has another UID, or is not allocated.
    async fn allocated(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        driver: &str,
    ) -> Result<Vec<AllocatedDevice>, String>;

    /// Records a freshly prepared claim's devices in its `status.devices`
    /// (see [`status_apply`]). The default records nothing.
    async fn report(
        &self,
        _namespace: &str,
        _name: &str,
        _uid: &str,
        _driver: &str,
        _devices: &[PreparedDevice],
    ) -> Result<(), String> {
        Ok(())
    }
}

/// The field manager of the driver's server-side applies.
pub const FIELD_MANAGER: &str = "sriov-dra-driver";

/// The server-side apply body that sets this driver's entries of a
/// claim's `status.devices`: one per prepared device, with `driver`,
/// `pool`, `device` and, as upstream, the applied `VfConfig` as `data`
/// (with its `apiVersion` and `kind`). `metadata.uid` makes the API
/// server refuse the apply to a claim recreated under the same name. No
/// `networkData`: nothing here runs the CNI that would produce it.
pub fn status_apply(
    namespace: &str,
    name: &str,
    uid: &str,
    driver: &str,
    devices: &[PreparedDevice],
) -> serde_json::Value {
    let devices: Vec<_> = devices
        .iter()
        .map(|d| {
            let mut data = serde_json::json!({
                "apiVersion": crate::config::API_VERSION,
                "kind": crate::config::KIND,
            });
            if let serde_json::Value::Object(fields) =
                serde_json::to_value(&d.config).expect("JSON value")
            {
                data.as_object_mut().expect("object").extend(fields);
            }
            serde_json::json!({"driver": driver, "pool": d.pool, "device": d.device, "data": data})
        })
        .collect();
    serde_json::json!({
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"namespace": namespace, "name": name, "uid": uid},
        "status": {"devices": devices},
    })
}

/// The ResourceClaims on the API server (`resource.k8s.io/v1`).
#[derive(Clone)]
pub struct KubeClaims {
    client: kube::Client,
}

impl KubeClaims {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

/// The allocated devices of `driver` in a ResourceClaim (JSON), each with
/// its [`crate::config::VfConfig`] (`status.allocation.devices.config`, see
/// [`crate::config`]); pure, for [`KubeClaims`] and tests.
///
/// Checks, each an error the kubelet shows in the pod's events:
/// - the UID is the one the kubelet asked for (not a recreated claim);
/// - the claim is allocated;
/// - it is reserved for exactly one consumer, a Pod (`status.reservedFor`).
///   A VF is one netdev, which lives in one network namespace, or one VFIO
///   group, which one process opens at a time: a claim shared by several
///   pods cannot be served, and upstream's driver refuses it the same way.
///   The kubelet calls prepare only for a claim reserved for its pod, and
///   only once per claim on the node, so this catches a claim shared
///   before its first prepare; a pod added to the reservation later is not
///   seen by the driver (the kubelet does not call it again).
/// - the configuration entries decode (see [`crate::config::entries`]).
pub fn allocation_of(
    claim: &serde_json::Value,
    uid: &str,
    driver: &str,
) -> Result<Vec<AllocatedDevice>, String> {
    let got = claim["metadata"]["uid"].as_str().unwrap_or_default();
    if got != uid {
        return Err(format!(
            "claim has UID {got:?}, the kubelet asked for {uid:?} (deleted and recreated?)"
        ));
    }
    let results = claim["status"]["allocation"]["devices"]["results"]
        .as_array()
        .ok_or("claim is not allocated (no status.allocation.devices.results)")?;
    let reserved = claim["status"]["reservedFor"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    match reserved {
        [] => return Err("claim is not reserved for a pod (status.reservedFor is empty)".into()),
        [one] => {
            let (group, resource) = (
                one["apiGroup"].as_str().unwrap_or_default(),
                one["resource"].as_str().unwrap_or_default(),
            );
            if !group.is_empty() || resource != "pods" {
                return Err(format!(
                    "claim is reserved for {resource:?} of API group {group:?} {:?}, not a pod: this driver prepares VFs for pods only",
                    one["name"].as_str().unwrap_or_default()
                ));
            }
        }
        many => {
            let names: Vec<_> = many
                .iter()
                .map(|r| r["name"].as_str().unwrap_or_default())
                .collect();
            return Err(format!(
                "claim is reserved for {} consumers ({}): a VF cannot be shared by several pods",
                many.len(),
                names.join(", ")
            ));
        }
    }
    let entries =
        crate::config::entries(&claim["status"]["allocation"]["devices"]["config"], driver)?;
    Ok(results
        .iter()
        .filter(|r| r["driver"].as_str() == Some(driver))
        .map(|r| {
            let request = r["request"].as_str().unwrap_or_default().to_string();
            AllocatedDevice {
                config: crate::config::for_request(&entries, &request),
                request,
                pool: r["pool"].as_str().unwrap_or_default().to_string(),
                device: r["device"].as_str().unwrap_or_default().to_string(),
            }
        })
        .collect())
}

/// The ResourceClaims (`resource.k8s.io/v1`) of a namespace, as dynamic objects.
pub fn claims_api(client: &kube::Client, namespace: &str) -> kube::Api<kube::api::DynamicObject> {
    let ar = kube::api::ApiResource {
        group: "resource.k8s.io".into(),
        version: "v1".into(),
        api_version: "resource.k8s.io/v1".into(),
        kind: "ResourceClaim".into(),
        plural: "resourceclaims".into(),
    };
    kube::Api::namespaced_with(client.clone(), namespace, &ar)
}

#[tonic::async_trait]
impl ClaimSource for KubeClaims {
    async fn report(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        driver: &str,
        devices: &[PreparedDevice],
    ) -> Result<(), String> {
        let body = status_apply(namespace, name, uid, driver, devices);
        claims_api(&self.client, namespace)
            .patch_status(
                name,
                &kube::api::PatchParams::apply(FIELD_MANAGER).force(),
                &kube::api::Patch::Apply(body),
            )
            .await
            .map(|_| ())
            .map_err(|e| format!("writing status.devices of ResourceClaim {namespace}/{name}: {e}"))
    }

    async fn allocated(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        driver: &str,
    ) -> Result<Vec<AllocatedDevice>, String> {
        let obj = claims_api(&self.client, namespace)
            .get(name)
            .await
            .map_err(|e| format!("reading ResourceClaim {namespace}/{name}: {e}"))?;
        let v = serde_json::to_value(&obj).map_err(|e| e.to_string())?;
        allocation_of(&v, uid, driver)
    }
}

/// A claim as the kubelet names it (both API versions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRef {
    pub namespace: String,
    pub uid: String,
    pub name: String,
}

/// The prepare/unprepare logic behind both API versions.
pub struct Driver {
    pub name: String,
    /// Shared with blocking tasks: a prepare or unprepare may rebind VFs
    /// (sysfs writes waiting on the kernel, up to the bind timeout), which
    /// runs on tokio's blocking pool, not on the runtime's threads.
    pub preparer: Arc<Mutex<Preparer>>,
    pub claims: Arc<dyn ClaimSource>,
    /// Prepare and unprepare counts and times.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Serializes calls.
    lock: tokio::sync::Mutex<()>,
}

impl Driver {
    pub fn new(name: &str, preparer: Preparer, claims: Arc<dyn ClaimSource>) -> Self {
        Self {
            name: name.to_string(),
            preparer: Arc::new(Mutex::new(preparer)),
            claims,
            metrics: Arc::default(),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Prepares each claim; per claim UID, the devices or an error.
    pub async fn prepare(
        &self,
        claims: Vec<ClaimRef>,
    ) -> HashMap<String, Result<Vec<PreparedDevice>, String>> {
        let _serial = self.lock.lock().await;
        let mut out = HashMap::new();
        for c in claims {
            let start = std::time::Instant::now();
            // A claim prepared before (checkpoint) needs no API call.
            let known = self.preparer.lock().expect("poisoned").prepared(&c.uid);
            let r = match known {
                Some(d) => Ok(d),
                None => match self
                    .claims
                    .allocated(&c.namespace, &c.name, &c.uid, &self.name)
                    .await
                {
                    Ok(devices) => {
                        let (p, cl) = (self.preparer.clone(), c.clone());
                        let r = tokio::task::spawn_blocking(move || {
                            p.lock()
                                .expect("poisoned")
                                .prepare(&cl.uid, &cl.namespace, &cl.name, &devices)
                                .map_err(|e| e.to_string())
                        })
                        .await
                        .unwrap_or_else(|e| Err(format!("prepare task failed: {e}")));
                        // As upstream: a status write that fails is logged;
                        // the claim is prepared all the same.
                        if let Ok(prepared) = &r
                            && let Err(e) = self
                                .claims
                                .report(&c.namespace, &c.name, &c.uid, &self.name, prepared)
                                .await
                        {
                            tracing::warn!(claim = %format!("{}/{}", c.namespace, c.name), uid = %c.uid, error = %e, "status.devices not written");
                        }
                        r
                    }
                    Err(e) => Err(e),
                },
            };
            let seconds = start.elapsed().as_secs_f64();
            self.metrics.prepared(r.is_ok(), seconds);
            let ms = seconds * 1000.0;
            match &r {
                Ok(d) => {
                    tracing::info!(claim = %format!("{}/{}", c.namespace, c.name), uid = %c.uid, devices = d.len(), elapsed_ms = format!("{ms:.2}"), "claim prepared")
                }
                Err(e) => {
                    tracing::warn!(claim = %format!("{}/{}", c.namespace, c.name), uid = %c.uid, error = %e, elapsed_ms = format!("{ms:.2}"), "prepare failed")
                }
            }
            out.insert(c.uid, r);
        }
        out
    }

    /// Unprepares each claim by UID.
    pub async fn unprepare(&self, claims: Vec<ClaimRef>) -> HashMap<String, Result<(), String>> {
        let _serial = self.lock.lock().await;
        let mut out = HashMap::new();
        for c in claims {
            let start = std::time::Instant::now();
            let (p, uid) = (self.preparer.clone(), c.uid.clone());
            let r = tokio::task::spawn_blocking(move || {
                p.lock()
                    .expect("poisoned")
                    .unprepare(&uid)
                    .map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(format!("unprepare task failed: {e}")));
            self.metrics.unprepared(r.is_ok());
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            match &r {
                Ok(()) => {
                    tracing::info!(uid = %c.uid, elapsed_ms = format!("{ms:.2}"), "claim unprepared")
                }
                Err(e) => {
                    tracing::warn!(uid = %c.uid, error = %e, elapsed_ms = format!("{ms:.2}"), "unprepare failed")
                }
            }
            out.insert(c.uid, r);
        }
        out
    }
}

/// The `DRAPlugin` service (either version) over a shared [`Driver`].
#[derive(Clone)]
pub struct DraService(pub Arc<Driver>);

macro_rules! dra_service {
    ($v:ident) => {
        // v1's Device has `share_id`, v1beta1's not: `..Default` covers both.
        #[allow(clippy::needless_update)]
        #[tonic::async_trait]
        impl $v::dra_plugin_server::DraPlugin for DraService {
            async fn node_prepare_resources(
                &self,
                req: Request<$v::NodePrepareResourcesRequest>,
            ) -> Result<Response<$v::NodePrepareResourcesResponse>, Status> {
                let claims = req
                    .into_inner()
                    .claims
                    .into_iter()
                    .map(|c| ClaimRef {
                        namespace: c.namespace,
                        uid: c.uid,
                        name: c.name,
                    })
                    .collect();
                let claims = self
                    .0
                    .prepare(claims)
                    .await
                    .into_iter()
                    .map(|(uid, r)| {
                        let resp = match r {
                            Ok(devices) => $v::NodePrepareResourceResponse {
                                devices: devices
                                    .into_iter()
                                    .map(|d| $v::Device {
                                        request_names: vec![d.request],
                                        pool_name: d.pool,
                                        device_name: d.device,
                                        cdi_device_ids: d.cdi_ids,
                                        ..Default::default()
                                    })
                                    .collect(),
                                error: String::new(),
                            },
                            Err(error) => $v::NodePrepareResourceResponse {
                                devices: Vec::new(),
                                error,
                            },
                        };
                        (uid, resp)
                    })
                    .collect();
                Ok(Response::new($v::NodePrepareResourcesResponse { claims }))
            }

            async fn node_unprepare_resources(
                &self,
                req: Request<$v::NodeUnprepareResourcesRequest>,
            ) -> Result<Response<$v::NodeUnprepareResourcesResponse>, Status> {
                let claims = req
                    .into_inner()
                    .claims
                    .into_iter()
                    .map(|c| ClaimRef {
                        namespace: c.namespace,
                        uid: c.uid,
                        name: c.name,
                    })
                    .collect();
                let claims = self
                    .0
                    .unprepare(claims)
                    .await
                    .into_iter()
                    .map(|(uid, r)| {
                        (
                            uid,
                            $v::NodeUnprepareResourceResponse {
                                error: r.err().unwrap_or_default(),
                            },
                        )
                    })
                    .collect();
                Ok(Response::new($v::NodeUnprepareResourcesResponse { claims }))
            }
        }
    };
}
dra_service!(v1);
dra_service!(v1beta1);

/// The registration service: answers GetInfo and records the kubelet's
/// verdict (`Some(Ok)` registered, `Some(Err(reason))` refused).
#[derive(Clone)]
pub struct RegistrationService {
    pub driver: String,
    pub endpoint: PathBuf,
    pub status: watch::Sender<Option<Result<(), String>>>,
}

#[tonic::async_trait]
impl registration::registration_server::Registration for RegistrationService {
    async fn get_info(
        &self,
        _: Request<registration::InfoRequest>,
    ) -> Result<Response<registration::PluginInfo>, Status> {
        Ok(Response::new(registration::PluginInfo {
            r#type: "DRAPlugin".into(),
            name: self.driver.clone(),
            endpoint: self.endpoint.to_string_lossy().into_owned(),
            supported_versions: SUPPORTED_VERSIONS.iter().map(|s| s.to_string()).collect(),
        }))
    }

    async fn notify_registration_status(
        &self,
        req: Request<registration::RegistrationStatus>,
    ) -> Result<Response<registration::RegistrationStatusResponse>, Status> {
        let s = req.into_inner();
        if s.plugin_registered {
            tracing::info!(driver = %self.driver, "registered with the kubelet");
            self.status.send_replace(Some(Ok(())));
        } else {
            tracing::error!(driver = %self.driver, error = %s.error, "the kubelet refused the registration");
            self.status.send_replace(Some(Err(s.error)));
        }
        Ok(Response::new(registration::RegistrationStatusResponse {}))
    }
}

/// Binds a unix socket, replacing a stale socket file.
pub fn bind(path: &Path) -> std::io::Result<tokio_stream::wrappers::UnixListenerStream> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "socket path {} has {len} bytes; a unix socket path has at most {MAX_SOCKET_PATH} (shorten the directory or the driver name)",
                path.display()
            ),
        ));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(tokio_stream::wrappers::UnixListenerStream::new(
        tokio::net::UnixListener::bind(path)?,
    ))
}

/// Binds the registration socket (as [`bind`]) and puts
/// [`crate::authority::rewrite_authority`] in front of every connection
/// accepted on it: the kubelet's plugin watcher sends
/// the socket path as `:authority`, which the HTTP/2 server refuses.
pub fn bind_registration(
    path: &Path,
) -> std::io::Result<
    impl tokio_stream::Stream<Item = std::io::Result<tokio::io::DuplexStream>> + use<>,
> {
    let mut listener = bind(path)?;
    use tokio_stream::StreamExt;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        while let Some(accepted) = listener.next().await {
            let conn = match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE and the like: tell the server, wait, go on.
                    if tx.send(Err(e)).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            tokio::spawn(async move {
                if let Err(e) = crate::authority::rewrite_authority(conn, ours).await {
                    tracing::warn!(error = %e, "registration connection dropped");
                }
            });
            if tx.send(Ok(theirs)).await.is_err() {
                return;
            }
        }
    });
    Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// Serves the DRA socket (`dra_socket`: `DRAPlugin` v1 and v1beta1, and
/// `health`'s `DRAResourceHealth`) and then the registration socket
/// (`reg_socket`) until `shutdown` resolves; the socket files are removed
/// at the end. Returns the registration status receiver through `status`.
pub async fn serve(
    driver: Arc<Driver>,
    health: crate::health::HealthService,
    dra_socket: &Path,
    reg_socket: &Path,
    status: watch::Sender<Option<Result<(), String>>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), std::io::Error> {
    let dra_incoming = bind(dra_socket)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let svc = DraService(driver.clone());
    let mut stop1 = stop_rx.clone();
    let dra = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(v1::dra_plugin_server::DraPluginServer::new(svc.clone()))
            .add_service(v1beta1::dra_plugin_server::DraPluginServer::new(svc))
            .add_service(
                crate::health::v1alpha1::dra_resource_health_server::DraResourceHealthServer::new(
                    health.stop_on(stop_rx.clone()),
                ),
            )
            .serve_with_incoming_shutdown(dra_incoming, async move {
                let _ = stop1.wait_for(|s| *s).await;
            }),
    );
    // Registration last: the kubelet may call the DRA socket at once.
    let reg_incoming = bind_registration(reg_socket)?;
    let reg_svc = RegistrationService {
        driver: driver.name.clone(),
        endpoint: dra_socket.to_path_buf(),
        status,
    };
    let mut stop2 = stop_rx;
    let reg = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(registration::registration_server::RegistrationServer::new(
                reg_svc,
            ))
            .serve_with_incoming_shutdown(reg_incoming, async move {
                let _ = stop2.wait_for(|s| *s).await;
            }),
    );
    shutdown.await;
    stop_tx.send_replace(true);
    let r1 = dra.await.map_err(std::io::Error::other)?;
    let r2 = reg.await.map_err(std::io::Error::other)?;
    let _ = std::fs::remove_file(reg_socket);
    let _ = std::fs::remove_file(dra_socket);
    r1.map_err(std::io::Error::other)?;
    r2.map_err(std::io::Error::other)?;
    Ok(())
}

#[cfg(test)]
mod claim_tests {
    use serde_json::json;

    use super::{allocation_of, status_apply};
    use crate::config::{API_VERSION, KIND};
    use crate::prepare::PreparedDevice;

    const DRV: &str = "sriovnetwork.k8snetworkplumbingwg.io";

    fn claim(reserved: serde_json::Value, config: serde_json::Value) -> serde_json::Value {
        json!({
            "metadata": {"uid": "u"},
            "status": {
                "allocation": {"devices": {
                    "results": [
                        {"request": "vf", "driver": DRV, "pool": "n", "device": "0000-3b-02-0"},
                        {"request": "plain", "driver": DRV, "pool": "n", "device": "0000-3b-02-1"},
                        {"request": "gpu", "driver": "gpu.example.com", "pool": "n", "device": "gpu-0"}
                    ],
                    "config": config
                }},
                "reservedFor": reserved
            }
        })
    }

    fn pod(name: &str) -> serde_json::Value {
        json!({"resource": "pods", "name": name, "uid": format!("{name}-uid")})
    }

    #[test]
    fn a_claim_must_be_reserved_for_exactly_one_pod() {
        let e = allocation_of(&claim(json!([]), json!(null)), "u", DRV).unwrap_err();
        assert_eq!(
            e,
            "claim is not reserved for a pod (status.reservedFor is empty)"
        );
        let c = claim(json!(null), json!(null));
        assert!(
            allocation_of(&c, "u", DRV)
                .unwrap_err()
                .contains("not reserved")
        );
        let e =
            allocation_of(&claim(json!([pod("a"), pod("b")]), json!(null)), "u", DRV).unwrap_err();
        assert_eq!(
            e,
            "claim is reserved for 2 consumers (a, b): a VF cannot be shared by several pods"
        );
        let job = json!([{"apiGroup": "batch", "resource": "jobs", "name": "j", "uid": "x"}]);
        let e = allocation_of(&claim(job, json!(null)), "u", DRV).unwrap_err();
        assert!(e.contains("not a pod"), "{e}");
        let got = allocation_of(&claim(json!([pod("a")]), json!(null)), "u", DRV).unwrap();
        assert_eq!(got.len(), 2, "the GPU result is another driver's");
        assert!(got.iter().all(|d| d.config.is_empty()));
    }

    #[test]
    fn status_devices_carry_the_applied_config_as_upstream() {
        let dev = |device: &str, driver: &str| PreparedDevice {
            request: "vf".into(),
            pool: "n".into(),
            device: device.into(),
            address: "0000:3b:02.0".parse().unwrap(),
            cdi_ids: vec![],
            config: crate::config::VfConfig {
                driver: driver.into(),
                ..Default::default()
            },
            original: None,
        };
        let body = status_apply(
            "ns",
            "c",
            "u",
            DRV,
            &[dev("0000-3b-02-0", "vfio-pci"), dev("0000-3b-02-1", "")],
        );
        assert_eq!(
            body,
            json!({
                "apiVersion": "resource.k8s.io/v1",
                "kind": "ResourceClaim",
                "metadata": {"namespace": "ns", "name": "c", "uid": "u"},
                "status": {"devices": [
                    {"driver": DRV, "pool": "n", "device": "0000-3b-02-0",
                     "data": {"apiVersion": API_VERSION, "kind": KIND, "driver": "vfio-pci"}},
                    {"driver": DRV, "pool": "n", "device": "0000-3b-02-1",
                     "data": {"apiVersion": API_VERSION, "kind": KIND}},
                ]}
            })
        );
    }

    #[test]
    fn each_device_gets_the_config_of_its_request() {
        let params =
            |driver: &str| json!({"apiVersion": API_VERSION, "kind": KIND, "driver": driver});
        let config = json!([
            {"source": "FromClass", "requests": ["vf"], "opaque": {"driver": DRV, "parameters": params("default")}},
            {"source": "FromClaim", "requests": ["vf"], "opaque": {"driver": DRV, "parameters": params("vfio-pci")}},
        ]);
        let got = allocation_of(&claim(json!([pod("a")]), config), "u", DRV).unwrap();
        assert_eq!(got[0].request, "vf");
        assert_eq!(got[0].config.driver, "vfio-pci");
        assert!(got[1].config.is_empty());
        let bad = json!([{"source": "FromClaim", "opaque": {"driver": DRV, "parameters": {"kind": KIND}}}]);
        let e = allocation_of(&claim(json!([pod("a")]), bad), "u", DRV).unwrap_err();
        assert!(
            e.starts_with("status.allocation.devices.config[0]: "),
            "{e}"
        );
    }
}
