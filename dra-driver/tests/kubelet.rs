//! The kubelet plugin API over unix sockets, driven by a fake kubelet
//! client: registration, NodePrepareResources / NodeUnprepareResources in
//! v1 and v1beta1, and unprepare after a restart with the claim gone.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use serde_json::json;
use sriov_dra_driver::plugin::{self, ClaimSource, Driver, registration, v1, v1beta1};
use sriov_dra_driver::prepare::{AllocatedDevice, Preparer};
use sriov_host::HostRoot;
use sriov_sim::kernel::write_static_tree;
use sriov_sim::node::NodeSpec;
use tokio::sync::{oneshot, watch};
use tonic::transport::{Channel, Endpoint, Uri};

const DRIVER: &str = "sriovnetwork.k8snetworkplumbingwg.io";
const NODE: &str = "node-a";

/// ResourceClaims by namespace/name, as the API server would return them.
#[derive(Default)]
struct FakeClaims(Mutex<HashMap<String, serde_json::Value>>);

impl FakeClaims {
    fn add(&self, ns: &str, name: &str, uid: &str, devices: &[&str]) {
        let results: Vec<_> = devices
            .iter()
            .map(|d| json!({"request": "vf", "driver": DRIVER, "pool": NODE, "device": d}))
            .chain([json!({"request": "gpu", "driver": "gpu.example.com", "pool": NODE, "device": "gpu-0"})])
            .collect();
        let claim = json!({
            "metadata": {"namespace": ns, "name": name, "uid": uid},
            "status": {"allocation": {"devices": {"results": results}}}
        });
        self.0.lock().unwrap().insert(format!("{ns}/{name}"), claim);
    }
}

#[tonic::async_trait]
impl ClaimSource for FakeClaims {
    async fn allocated(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        driver: &str,
    ) -> Result<Vec<AllocatedDevice>, String> {
        let c = self
            .0
            .lock()
            .unwrap()
            .get(&format!("{namespace}/{name}"))
            .cloned()
            .ok_or_else(|| format!("resourceclaims {name:?} not found"))?;
        plugin::allocation_of(&c, uid, driver)
    }
}

async fn channel(path: &Path) -> Channel {
    let path = path.to_path_buf();
    for _ in 0..100 {
        if path.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let s = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(s))
            }
        }))
        .await
        .unwrap()
}

struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    status: watch::Receiver<Option<Result<(), String>>>,
}

fn start(dir: &Path, root: &HostRoot, claims: Arc<FakeClaims>) -> Running {
    let preparer = Preparer::open(
        root.clone(),
        NODE,
        &dir.join("plugins").join(DRIVER),
        &dir.join("cdi"),
    )
    .unwrap();
    let driver = Arc::new(Driver::new(DRIVER, preparer, claims));
    let (tx, status) = watch::channel(None);
    let (stop, rx) = oneshot::channel::<()>();
    let dra = plugin::dra_socket(&dir.join("plugins"), DRIVER);
    let reg = plugin::registration_socket(&dir.join("plugins_registry"), DRIVER);
    let task = tokio::spawn(async move {
        plugin::serve(driver, &dra, &reg, tx, async move {
            let _ = rx.await;
        })
        .await
    });
    Running { stop, task, status }
}

fn claim(ns: &str, name: &str, uid: &str) -> v1::Claim {
    v1::Claim {
        namespace: ns.into(),
        uid: uid.into(),
        name: name.into(),
    }
}

#[tokio::test]
async fn register_prepare_unprepare_and_restart() {
    let tmp = tempfile::tempdir().unwrap();
    write_static_tree(tmp.path(), &NodeSpec::gpu()).unwrap();
    let root = HostRoot::new(tmp.path());
    let dir = tmp.path().join("kubelet");
    let claims = Arc::new(FakeClaims::default());
    claims.add("ns", "a", "uid-a", &["0000-1b-00-2", "0000-1b-00-3"]);
    claims.add("ns", "c", "uid-c", &["0000-9b-00-2"]);
    claims.add("ns", "taken", "uid-t", &["0000-1b-00-2"]);
    let mut run = start(&dir, &root, claims.clone());

    // Registration, as the kubelet's plugin watcher does it.
    let reg_sock = dir
        .join("plugins_registry")
        .join(format!("{DRIVER}-reg.sock"));
    let mut reg =
        registration::registration_client::RegistrationClient::new(channel(&reg_sock).await);
    let info = reg
        .get_info(registration::InfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.r#type, "DRAPlugin");
    assert_eq!(info.name, DRIVER);
    let dra_sock = dir.join("plugins").join(DRIVER).join("dra.sock");
    assert_eq!(Path::new(&info.endpoint), dra_sock);
    assert_eq!(
        info.supported_versions,
        vec!["v1.DRAPlugin", "v1beta1.DRAPlugin"]
    );
    reg.notify_registration_status(registration::RegistrationStatus {
        plugin_registered: true,
        error: String::new(),
    })
    .await
    .unwrap();
    assert_eq!(*run.status.borrow_and_update(), Some(Ok(())));

    // v1: two VFs for claim a; claim b does not exist; a VF already taken.
    let mut c1 = v1::dra_plugin_client::DraPluginClient::new(channel(&dra_sock).await);
    let resp = c1
        .node_prepare_resources(v1::NodePrepareResourcesRequest {
            claims: vec![
                claim("ns", "a", "uid-a"),
                claim("ns", "b", "uid-b"),
                claim("ns", "taken", "uid-t"),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.claims.len(), 3, "every claim answered");
    let a = &resp.claims["uid-a"];
    assert_eq!(a.error, "");
    assert_eq!(a.devices.len(), 2, "the GPU result is another driver's");
    assert_eq!(a.devices[0].request_names, vec!["vf"]);
    assert_eq!(a.devices[0].pool_name, NODE);
    assert_eq!(a.devices[0].device_name, "0000-1b-00-2");
    assert_eq!(
        a.devices[0].cdi_device_ids,
        vec![format!("{DRIVER}/vf=uid-a-0000-1b-00-2")]
    );
    assert!(
        resp.claims["uid-b"].error.contains("not found"),
        "{:?}",
        resp.claims["uid-b"]
    );
    assert!(
        resp.claims["uid-t"].error.contains("already prepared"),
        "{:?}",
        resp.claims["uid-t"]
    );
    assert!(dir.join("cdi/sriov-rs-dra_uid-a.json").exists());
    // Again (the kubelet retries): same answer.
    let again = c1
        .node_prepare_resources(v1::NodePrepareResourcesRequest {
            claims: vec![claim("ns", "a", "uid-a")],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.claims["uid-a"], *a);

    // v1beta1 works the same way.
    let mut cb = v1beta1::dra_plugin_client::DraPluginClient::new(channel(&dra_sock).await);
    let resp = cb
        .node_prepare_resources(v1beta1::NodePrepareResourcesRequest {
            claims: vec![v1beta1::Claim {
                namespace: "ns".into(),
                uid: "uid-c".into(),
                name: "c".into(),
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.claims["uid-c"].error, "");
    assert_eq!(resp.claims["uid-c"].devices[0].device_name, "0000-9b-00-2");

    // Restart; the claims are deleted from the API server meanwhile.
    run.stop.send(()).unwrap();
    run.task.await.unwrap().unwrap();
    assert!(
        !dra_sock.exists() && !reg_sock.exists(),
        "sockets removed at stop"
    );
    claims.0.lock().unwrap().clear();
    let run = start(&dir, &root, claims.clone());
    let mut c1 = v1::dra_plugin_client::DraPluginClient::new(channel(&dra_sock).await);
    // A prepared claim is answered from the checkpoint, no API call.
    let resp = c1
        .node_prepare_resources(v1::NodePrepareResourcesRequest {
            claims: vec![claim("ns", "a", "uid-a")],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.claims["uid-a"].devices.len(), 2);
    let resp = c1
        .node_unprepare_resources(v1::NodeUnprepareResourcesRequest {
            claims: vec![
                claim("ns", "a", "uid-a"),
                claim("ns", "c", "uid-c"),
                claim("ns", "x", "uid-x"),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.claims.len(), 3);
    assert!(resp.claims.values().all(|r| r.error.is_empty()), "{resp:?}");
    assert!(!dir.join("cdi/sriov-rs-dra_uid-a.json").exists());
    assert!(!dir.join("cdi/sriov-rs-dra_uid-c.json").exists());
    run.stop.send(()).unwrap();
    run.task.await.unwrap().unwrap();
}

#[test]
fn allocation_of_checks_uid_and_allocation() {
    let c = json!({"metadata": {"uid": "u1"}, "status": {}});
    assert!(
        plugin::allocation_of(&c, "u2", DRIVER)
            .unwrap_err()
            .contains("UID")
    );
    assert!(
        plugin::allocation_of(&c, "u1", DRIVER)
            .unwrap_err()
            .contains("not allocated")
    );
}
