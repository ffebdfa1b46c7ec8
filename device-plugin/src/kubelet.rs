//! Talking to the kubelet over unix sockets: registration, and a gRPC
//! channel to any unix socket (used by the test kubelet too).

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::api::registration_client::RegistrationClient;
use crate::api::{DevicePluginOptions, RegisterRequest};

/// Why a registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error(
        "cannot connect to the kubelet at {path}: {source} (is the kubelet running, and --device-plugin-dir right?)"
    )]
    Connect {
        path: PathBuf,
        source: tonic::transport::Error,
    },
    #[error("the kubelet at {path} refused {resource}: {status}")]
    Refused {
        path: PathBuf,
        resource: String,
        status: tonic::Status,
    },
}

/// The options every pool's plugin advertises when it registers (and
/// answers `GetDevicePluginOptions` with, and honours).
pub fn plugin_options() -> DevicePluginOptions {
    DevicePluginOptions {
        pre_start_required: false,
        get_preferred_allocation_available: true,
    }
}

/// A gRPC channel over the unix socket at `path`.
pub async fn unix_channel(path: &Path) -> Result<Channel, tonic::transport::Error> {
    let path = path.to_path_buf();
    // The URI is required but unused: the connector dials the socket.
    Endpoint::from_static("http://localhost")
        .connect_timeout(Duration::from_secs(2))
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let s = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(s))
            }
        }))
        .await
}

/// Registers `resource` (served on `<dir>/<endpoint>`) with the kubelet at
/// `kubelet_socket`.
pub async fn register(
    kubelet_socket: &Path,
    endpoint: &str,
    resource: &str,
) -> Result<(), RegisterError> {
    register_many(kubelet_socket, &[(endpoint, resource)])
        .await?
        .pop()
        .expect("one result per registration")
}

/// Registers several `(endpoint, resource)` pairs with the kubelet at
/// `kubelet_socket` over one connection, all requests in flight at once (the
/// kubelet answers each after dialing the plugin back, so one at a time
/// would add up those round trips). The outer error is a failed connection;
/// the inner results are per registration, in order.
pub async fn register_many(
    kubelet_socket: &Path,
    registrations: &[(&str, &str)],
) -> Result<Vec<Result<(), RegisterError>>, RegisterError> {
    let ch = unix_channel(kubelet_socket)
        .await
        .map_err(|source| RegisterError::Connect {
            path: kubelet_socket.to_path_buf(),
            source,
        })?;
    let client = RegistrationClient::new(ch);
    let calls = registrations.iter().map(|(endpoint, resource)| {
        let mut client = client.clone();
        async move {
            client
                .register(RegisterRequest {
                    version: crate::api::VERSION.to_string(),
                    endpoint: endpoint.to_string(),
                    resource_name: resource.to_string(),
                    options: Some(plugin_options()),
                })
                .await
                .map(|_| ())
                .map_err(|status| RegisterError::Refused {
                    path: kubelet_socket.to_path_buf(),
                    resource: resource.to_string(),
                    status,
                })
        }
    });
    Ok(futures::future::join_all(calls).await)
}
