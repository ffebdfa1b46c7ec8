//! A test kubelet: the `Registration` service on `<dir>/kubelet.sock`,
//! which records registrations, and clients for the plugins' sockets. Used
//! by the end-to-end tests and the benchmark; it speaks the real protocol
//! over real unix sockets.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use tonic::{Request, Response, Status};

use crate::api::device_plugin_client::DevicePluginClient;
use crate::api::registration_server::{Registration, RegistrationServer};
use crate::api::{Empty, ListAndWatchResponse, RegisterRequest};

/// One registration the kubelet received.
#[derive(Debug, Clone, PartialEq)]
pub struct Registered {
    pub version: String,
    pub endpoint: String,
    pub resource: String,
    pub preferred_allocation: bool,
    pub at: Instant,
}

#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Registered>>>,
    notify: Arc<Notify>,
}

#[tonic::async_trait]
impl Registration for Recorder {
    async fn register(&self, req: Request<RegisterRequest>) -> Result<Response<Empty>, Status> {
        let r = req.into_inner();
        if r.version != crate::api::VERSION {
            return Err(Status::invalid_argument(format!(
                "unsupported version {}",
                r.version
            )));
        }
        self.seen.lock().expect("lock").push(Registered {
            version: r.version,
            endpoint: r.endpoint,
            resource: r.resource_name,
            preferred_allocation: r
                .options
                .is_some_and(|o| o.get_preferred_allocation_available),
            at: Instant::now(),
        });
        self.notify.notify_waiters();
        Ok(Response::new(Empty {}))
    }
}

/// A running test kubelet.
pub struct TestKubelet {
    dir: PathBuf,
    rec: Recorder,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestKubelet {
    /// Serves `<dir>/kubelet.sock` (must be called inside a tokio runtime).
    pub fn start(dir: &Path) -> std::io::Result<TestKubelet> {
        let mut k = TestKubelet {
            dir: dir.to_path_buf(),
            rec: Recorder::default(),
            stop: watch::channel(false).0,
            task: None,
        };
        k.serve()?;
        Ok(k)
    }

    fn serve(&mut self) -> std::io::Result<()> {
        let path = self.socket();
        let _ = std::fs::remove_file(&path);
        let l = tokio::net::UnixListener::bind(&path)?;
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(l);
        let (tx, mut rx) = watch::channel(false);
        self.stop = tx;
        let svc = RegistrationServer::new(self.rec.clone());
        self.task = Some(tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await;
        }));
        Ok(())
    }

    /// Simulates a kubelet restart: stop, delete every socket in the
    /// directory (as the kubelet does at start), serve a new `kubelet.sock`.
    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.shutdown().await;
        for e in std::fs::read_dir(&self.dir)?.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| !t.is_dir()) {
                let _ = std::fs::remove_file(p);
            }
        }
        self.serve()
    }

    /// Serves `kubelet.sock` again after [`TestKubelet::shutdown`], leaving
    /// the other sockets in the directory as they are.
    pub fn serve_again(&mut self) -> std::io::Result<()> {
        self.serve()
    }

    /// Stops serving and removes `kubelet.sock`.
    pub async fn shutdown(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
        let _ = std::fs::remove_file(self.socket());
    }

    /// `<dir>/kubelet.sock`.
    pub fn socket(&self) -> PathBuf {
        self.dir.join(crate::api::KUBELET_SOCKET)
    }

    /// Every registration so far.
    pub fn registrations(&self) -> Vec<Registered> {
        self.rec.seen.lock().expect("lock").clone()
    }

    /// Forgets the registrations seen so far.
    pub fn clear(&self) {
        self.rec.seen.lock().expect("lock").clear();
    }

    /// Waits until a registration satisfies `pred`; `None` on timeout.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&Registered) -> bool,
    ) -> Option<Registered> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.rec.notify.notified();
            if let Some(r) = self.registrations().into_iter().find(|r| pred(r)) {
                return Some(r);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// A client of a plugin socket in the directory.
    pub async fn client(
        &self,
        endpoint: &str,
    ) -> Result<DevicePluginClient<tonic::transport::Channel>, tonic::transport::Error> {
        Ok(DevicePluginClient::new(
            crate::kubelet::unix_channel(&self.dir.join(endpoint)).await?,
        ))
    }
}

impl Drop for TestKubelet {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        let _ = std::fs::remove_file(self.socket());
    }
}

/// A ListAndWatch stream, read message by message.
pub struct Watch {
    stream: tonic::Streaming<ListAndWatchResponse>,
}

impl Watch {
    /// Opens ListAndWatch on a client.
    pub async fn open(
        client: &mut DevicePluginClient<tonic::transport::Channel>,
    ) -> Result<Watch, Status> {
        Ok(Watch {
            stream: client.list_and_watch(Empty {}).await?.into_inner(),
        })
    }

    /// The next message, or `None` on timeout or end of stream.
    pub async fn next(&mut self, timeout: Duration) -> Option<ListAndWatchResponse> {
        tokio::time::timeout(timeout, self.stream.message())
            .await
            .ok()?
            .ok()?
    }

    /// Reads messages until one satisfies `pred` (returned), or `timeout`.
    pub async fn until(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&ListAndWatchResponse) -> bool,
    ) -> Option<ListAndWatchResponse> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let m = self.next(left).await?;
            if pred(&m) {
                return Some(m);
            }
        }
    }
}
