//! Shared end-to-end harness: a plugin (the library's `Manager`) running
//! against a host root, a test kubelet in a temp dir, and a config dir laid
//! out like a mounted ConfigMap (`config.json -> ..data/config.json`,
//! `..data -> ..<generation>`), so updates are symlink swaps.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use sriov_device_plugin::api::device_plugin_client::DevicePluginClient;
use sriov_device_plugin::api::{
    AllocateRequest, ContainerAllocateRequest, ContainerAllocateResponse, ListAndWatchResponse,
};
use sriov_device_plugin::manager::{Manager, Options, Status};
use sriov_device_plugin::preferred::AllocationPolicy;
use sriov_device_plugin::test_kubelet::{TestKubelet, Watch};
use sriov_host::HostRoot;
use sriov_sim::node::NodeSpec;
use tokio::sync::oneshot;

pub const T: Duration = Duration::from_secs(5);

/// A node's sysfs tree written from `yaml` (a [`NodeSpec`]) in a temp dir.
pub fn node_tree(yaml: &str) -> tempfile::TempDir {
    let t = tempfile::Builder::new().prefix("dptree").tempdir().unwrap();
    let spec = NodeSpec::from_yaml(yaml, "test").unwrap();
    sriov_sim::kernel::write_static_tree(t.path(), &spec).unwrap();
    t
}

/// A ConfigMap-like config directory.
pub struct ConfigDir {
    pub dir: PathBuf,
    generation: u32,
}

impl ConfigDir {
    pub fn new(dir: &Path, text: &str) -> ConfigDir {
        std::fs::create_dir_all(dir).unwrap();
        let mut c = ConfigDir {
            dir: dir.to_path_buf(),
            generation: 0,
        };
        c.update(text);
        std::os::unix::fs::symlink("..data/config.json", dir.join("config.json")).unwrap();
        c
    }

    /// The path the plugin reads.
    pub fn file(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// Writes a new generation and swaps `..data` to it atomically.
    pub fn update(&mut self, text: &str) {
        self.generation += 1;
        let g = format!("..gen_{}", self.generation);
        std::fs::create_dir_all(self.dir.join(&g)).unwrap();
        std::fs::write(self.dir.join(&g).join("config.json"), text).unwrap();
        let tmp = self.dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&g, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
    }
}

/// A running plugin and test kubelet.
pub struct Harness {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub plugin_dir: PathBuf,
    pub devinfo_dir: PathBuf,
    pub config: ConfigDir,
    pub kubelet: TestKubelet,
    pub status: std::sync::Arc<Status>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Harness {
    /// Starts a test kubelet, then the plugin against `root` with the
    /// harness's default options.
    pub async fn start(root: &Path, config: &str) -> Harness {
        Harness::builder(root, config).start().await
    }

    /// A harness to adjust before it starts: plugin options, the manager.
    pub fn builder(root: &Path, config: &str) -> HarnessBuilder {
        let tmp = tempfile::Builder::new().prefix("dp").tempdir().unwrap();
        let plugin_dir = tmp.path().join("kp");
        std::fs::create_dir_all(&plugin_dir).unwrap();
        let config = ConfigDir::new(&tmp.path().join("cfg"), config);
        let options = Options {
            config_file: config.file(),
            resource_prefix: "intel.com".into(),
            plugin_dir,
            devinfo_dir: tmp.path().join("devinfo"),
            root: HostRoot::new(root),
            policy: AllocationPolicy::Spread,
            resync_interval: Duration::from_secs(30),
            health_interval: Duration::from_millis(100),
            uevents: true,
            cdi_dir: None,
            health: Default::default(),
        };
        HarnessBuilder {
            tmp,
            root: root.to_path_buf(),
            config,
            options,
            manager: Box::new(|m| m),
        }
    }

    /// Waits for `resource` to register; returns its endpoint.
    pub async fn registered(&self, resource: &str) -> String {
        self.kubelet
            .wait_for(T, |r| r.resource == resource)
            .await
            .unwrap_or_else(|| {
                panic!(
                    "{resource} did not register; got {:?}",
                    self.kubelet.registrations()
                )
            })
            .endpoint
    }

    pub async fn client(&self, endpoint: &str) -> DevicePluginClient<tonic::transport::Channel> {
        self.kubelet
            .client(endpoint)
            .await
            .expect("connect to plugin")
    }

    /// ListAndWatch on `resource`, once it registered.
    pub async fn watch(&self, resource: &str) -> Watch {
        let mut c = self.client(&self.registered(resource).await).await;
        Watch::open(&mut c).await.expect("ListAndWatch")
    }

    /// The first ListAndWatch message of `resource`, once it registered.
    pub async fn first_list(&self, resource: &str) -> ListAndWatchResponse {
        self.watch(resource)
            .await
            .next(T)
            .await
            .unwrap_or_else(|| panic!("no ListAndWatch message for {resource}"))
    }

    /// Allocate of `ids` for one container on the plugin at `endpoint`.
    pub async fn allocate(
        &self,
        endpoint: &str,
        ids: &[&str],
    ) -> Result<ContainerAllocateResponse, tonic::Status> {
        let r = self
            .client(endpoint)
            .await
            .allocate(AllocateRequest {
                container_requests: vec![ContainerAllocateRequest {
                    devices_ids: ids.iter().map(|s| s.to_string()).collect(),
                }],
            })
            .await?;
        Ok(r.into_inner().container_responses.remove(0))
    }

    /// Stops the plugin (as on SIGTERM) and waits for it.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(T, t)
                .await
                .expect("plugin stops in time")
                .unwrap();
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// A harness not started yet: `Harness::builder(root, config)`, adjusted
/// with `options` and `manager`, then `start`.
pub struct HarnessBuilder {
    tmp: tempfile::TempDir,
    root: PathBuf,
    config: ConfigDir,
    options: Options,
    manager: Box<dyn FnOnce(Manager) -> Manager>,
}

impl HarnessBuilder {
    /// Adjusts the plugin's options (health interval, CDI dir, ...).
    pub fn options(mut self, adjust: impl FnOnce(&mut Options)) -> Self {
        adjust(&mut self.options);
        self
    }

    /// Adjusts the manager before it runs (e.g. `Manager::with_gpu_pairing`).
    pub fn manager(mut self, adjust: impl FnOnce(Manager) -> Manager + 'static) -> Self {
        let earlier = self.manager;
        self.manager = Box::new(move |m| adjust(earlier(m)));
        self
    }

    /// Starts the test kubelet, then the plugin.
    pub async fn start(self) -> Harness {
        let HarnessBuilder {
            tmp,
            root,
            config,
            options,
            manager,
        } = self;
        let plugin_dir = options.plugin_dir.clone();
        let devinfo_dir = options.devinfo_dir.clone();
        let kubelet = TestKubelet::start(&plugin_dir).unwrap();
        let m = manager(Manager::new(options).expect("plugin starts"));
        let status = m.status();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            m.run(async {
                let _ = rx.await;
            })
            .await
            .expect("plugin runs");
        });
        Harness {
            tmp,
            root,
            plugin_dir,
            devinfo_dir,
            config,
            kubelet,
            status,
            stop: Some(tx),
            task: Some(task),
        }
    }
}

/// IDs of a ListAndWatch message.
pub fn ids(m: &sriov_device_plugin::api::ListAndWatchResponse) -> Vec<String> {
    m.devices.iter().map(|d| d.id.clone()).collect()
}

/// (ID, health) pairs of a ListAndWatch message.
pub fn health(m: &sriov_device_plugin::api::ListAndWatchResponse) -> Vec<(String, String)> {
    m.devices
        .iter()
        .map(|d| (d.id.clone(), d.health.clone()))
        .collect()
}
