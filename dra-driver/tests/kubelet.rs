//! The kubelet plugin API over unix sockets, driven by a fake kubelet
//! client: registration, NodePrepareResources / NodeUnprepareResources in
//! v1 and v1beta1, and unprepare after a restart with the claim gone.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use serde_json::json;
use sriov_dra_driver::health::{Monitor, v1alpha1};
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
            "status": {
                "allocation": {"devices": {"results": results}},
                "reservedFor": [{"resource": "pods", "name": format!("pod-{name}"), "uid": format!("pod-uid-{name}")}]
            }
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
    health: Monitor,
}

fn start(dir: &Path, root: &HostRoot, claims: Arc<FakeClaims>) -> Running {
    start_instance(dir, root, claims, None)
}

/// [`start`] with the sockets of one instance of a rolling update.
fn start_instance(
    dir: &Path,
    root: &HostRoot,
    claims: Arc<FakeClaims>,
    instance: Option<&str>,
) -> Running {
    let preparer = Preparer::open(
        root.clone(),
        NODE,
        &dir.join("plugins").join(DRIVER),
        &dir.join("cdi"),
    )
    .unwrap();
    let driver = Arc::new(Driver::new(DRIVER, preparer, claims));
    let health = Monitor::new(NODE);
    let svc = health.service(Duration::from_millis(200));
    let (tx, status) = watch::channel(None);
    let (stop, rx) = oneshot::channel::<()>();
    let dra = plugin::dra_socket(&dir.join("plugins"), DRIVER, instance);
    let reg = plugin::registration_socket(&dir.join("plugins_registry"), DRIVER, instance);
    let task = tokio::spawn(async move {
        plugin::serve(driver, svc, &dra, &reg, tx, async move {
            let _ = rx.await;
        })
        .await
    });
    Running {
        stop,
        task,
        status,
        health,
    }
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
        vec![format!("{DRIVER}/vf=0000:1b:00.2")]
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

async fn prepare(sock: &Path, c: v1::Claim) -> v1::NodePrepareResourceResponse {
    let uid = c.uid.clone();
    let mut client = v1::dra_plugin_client::DraPluginClient::new(channel(sock).await);
    let mut resp = client
        .node_prepare_resources(v1::NodePrepareResourcesRequest { claims: vec![c] })
        .await
        .unwrap()
        .into_inner();
    resp.claims.remove(&uid).unwrap()
}

async fn unprepare(sock: &Path, c: v1::Claim) -> v1::NodeUnprepareResourceResponse {
    let uid = c.uid.clone();
    let mut client = v1::dra_plugin_client::DraPluginClient::new(channel(sock).await);
    let mut resp = client
        .node_unprepare_resources(v1::NodeUnprepareResourcesRequest { claims: vec![c] })
        .await
        .unwrap()
        .into_inner();
    resp.claims.remove(&uid).unwrap()
}

/// A rolling update: the old and the new instance serve at once on
/// sockets of their own and share the checkpoint, so the kubelet may call
/// either; the old one stopping removes only its sockets; a killed
/// instance's sockets are removed by the next, a live one's are not.
#[tokio::test]
async fn two_instances_serve_side_by_side_and_share_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    write_static_tree(tmp.path(), &NodeSpec::gpu()).unwrap();
    let root = HostRoot::new(tmp.path());
    let dir = tmp.path().join("kubelet");
    let (plugins, registry) = (dir.join("plugins"), dir.join("plugins_registry"));
    let claims = Arc::new(FakeClaims::default());
    claims.add("ns", "x", "uid-x", &["0000-1b-00-2"]);
    claims.add("ns", "y", "uid-y", &["0000-1b-00-2"]);
    claims.add("ns", "z", "uid-z", &["0000-1b-00-3"]);
    let old = start_instance(&dir, &root, claims.clone(), Some("pod-old"));
    let new = start_instance(&dir, &root, claims.clone(), Some("pod-new"));
    let sock = |i| plugin::dra_socket(&plugins, DRIVER, Some(i));
    let reg = |i| plugin::registration_socket(&registry, DRIVER, Some(i));
    assert_eq!(
        reg("pod-new"),
        registry.join(format!("{DRIVER}-pod-new-reg.sock"))
    );
    assert_eq!(
        sock("pod-new"),
        plugins.join(DRIVER).join("dra-pod-new.sock")
    );
    // Each answers GetInfo with its own DRA socket.
    for i in ["pod-old", "pod-new"] {
        let info =
            registration::registration_client::RegistrationClient::new(channel(&reg(i)).await)
                .get_info(registration::InfoRequest {})
                .await
                .unwrap()
                .into_inner();
        assert_eq!(Path::new(&info.endpoint), sock(i));
    }

    // The old instance prepares x; the new one sees the VF taken.
    assert_eq!(
        prepare(&sock("pod-old"), claim("ns", "x", "uid-x"))
            .await
            .error,
        ""
    );
    let y = prepare(&sock("pod-new"), claim("ns", "y", "uid-y")).await;
    assert!(
        y.error.contains("already prepared for claim uid-x"),
        "{y:?}"
    );
    // The new one prepares z; the old one answers x again and knows z.
    assert_eq!(
        prepare(&sock("pod-new"), claim("ns", "z", "uid-z"))
            .await
            .error,
        ""
    );
    let again = prepare(&sock("pod-old"), claim("ns", "x", "uid-x")).await;
    assert_eq!(again.devices[0].device_name, "0000-1b-00-2");
    let checkpoint: serde_json::Value = serde_json::from_slice(
        &std::fs::read(plugins.join(DRIVER).join("checkpoint.json")).unwrap(),
    )
    .unwrap();
    let mut uids: Vec<_> = checkpoint["claims"].as_object().unwrap().keys().collect();
    uids.sort();
    assert_eq!(uids, ["uid-x", "uid-z"], "neither overwrote the other");

    // The old instance stops: its sockets go, the new one's stay and it
    // unprepares what the old one prepared.
    old.stop.send(()).unwrap();
    old.task.await.unwrap().unwrap();
    assert!(!sock("pod-old").exists() && !reg("pod-old").exists());
    assert!(sock("pod-new").exists() && reg("pod-new").exists());
    assert_eq!(
        unprepare(&sock("pod-new"), claim("ns", "x", "uid-x"))
            .await
            .error,
        ""
    );
    assert!(!dir.join("cdi/sriov-rs-dra_uid-x.json").exists());
    assert_eq!(
        prepare(&sock("pod-new"), claim("ns", "y", "uid-y"))
            .await
            .error,
        ""
    );

    // A killed instance's sockets (files nobody listens on) are stale: the
    // next instance removes them; the live instance's are kept.
    for p in [reg("pod-killed"), sock("pod-killed")] {
        drop(std::os::unix::net::UnixListener::bind(&p).unwrap());
        assert!(p.exists());
    }
    let removed = plugin::remove_stale_sockets(&registry, &plugins, DRIVER, &[]);
    assert_eq!(removed, vec![reg("pod-killed"), sock("pod-killed")]);
    assert!(sock("pod-new").exists() && reg("pod-new").exists());
    for c in [claim("ns", "y", "uid-y"), claim("ns", "z", "uid-z")] {
        assert_eq!(unprepare(&sock("pod-new"), c).await.error, "");
    }
    new.stop.send(()).unwrap();
    new.task.await.unwrap().unwrap();
}

/// The sockets of a real pod UID under the kubelet's real directories fit
/// a unix socket path; a path that does not is refused with a reason.
#[test]
fn instance_socket_paths_fit_and_long_ones_are_refused() {
    let uid = "69feb842-e78f-4bae-8290-02d5a038bcd8";
    let tag = plugin::instance_tag(uid);
    assert_eq!(tag, "69feb842e78f");
    let reg = plugin::registration_socket(
        Path::new("/var/lib/kubelet/plugins_registry"),
        DRIVER,
        Some(&tag),
    );
    let dra = plugin::dra_socket(Path::new("/var/lib/kubelet/plugins"), DRIVER, Some(&tag));
    for p in [&reg, &dra] {
        assert!(
            p.as_os_str().len() <= plugin::MAX_SOCKET_PATH,
            "{} is too long",
            p.display()
        );
    }
    // The whole UID would not fit.
    let whole = plugin::registration_socket(
        Path::new("/var/lib/kubelet/plugins_registry"),
        DRIVER,
        Some(uid),
    );
    assert!(whole.as_os_str().len() > plugin::MAX_SOCKET_PATH);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt
        .block_on(async { plugin::bind(&whole).map(|_| ()) })
        .unwrap_err();
    assert!(err.to_string().contains("at most 107"), "{err}");
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

/// One HTTP/2 exchange written frame by frame, as grpc-go writes it when
/// the target is a bare socket path: `:authority` is the path. The h2
/// server alone resets such a stream (hyperium/h2#487); through the
/// registration socket's repair the kubelet's `GetInfo` gets its answer,
/// twice on one connection (the second time the client names the path
/// through its HPACK dynamic table).
#[tokio::test]
async fn registration_answers_a_socket_path_authority() {
    use prost::Message;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let tmp = tempfile::tempdir().unwrap();
    write_static_tree(tmp.path(), &NodeSpec::gpu()).unwrap();
    let root = HostRoot::new(tmp.path());
    let dir = tmp.path().join("kubelet");
    let run = start(&dir, &root, Arc::new(FakeClaims::default()));
    let reg_sock = dir
        .join("plugins_registry")
        .join(format!("{DRIVER}-reg.sock"));
    for _ in 0..100 {
        if reg_sock.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut conn = tokio::net::UnixStream::connect(&reg_sock).await.unwrap();

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        out.push(kind);
        out.push(flags);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
    }
    let mut client = loona_hpack::Encoder::new();
    let mut server = loona_hpack::Decoder::new();
    let authority = reg_sock.to_str().unwrap().to_owned();
    let mut wire = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    frame(0x4, 0, 0, &[], &mut wire); // SETTINGS
    conn.write_all(&wire).await.unwrap();

    for stream in [1u32, 3] {
        let headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/pluginregistration.Registration/GetInfo"),
            (":authority", authority.as_str()),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ];
        let block = client.encode(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        let mut wire = Vec::new();
        frame(0x1, 0x4, stream, &block, &mut wire); // HEADERS, END_HEADERS
        frame(0x0, 0x1, stream, &[0, 0, 0, 0, 0], &mut wire); // empty InfoRequest
        conn.write_all(&wire).await.unwrap();

        // Read until the trailers of this stream.
        let mut data = Vec::new();
        let mut status = None;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while status.is_none() {
            let mut head = [0u8; 9];
            tokio::time::timeout_at(deadline, conn.read_exact(&mut head))
                .await
                .expect("an answer within 10 s")
                .unwrap();
            let len = (head[0] as usize) << 16 | (head[1] as usize) << 8 | head[2] as usize;
            let (kind, flags) = (head[3], head[4]);
            let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
            let mut payload = vec![0u8; len];
            conn.read_exact(&mut payload).await.unwrap();
            match kind {
                0x0 if id == stream => data.extend_from_slice(&payload),
                0x1 => {
                    let hs = server.decode(&payload).unwrap();
                    if flags & 0x1 != 0 && id == stream {
                        status = hs
                            .iter()
                            .find(|(n, _)| n == b"grpc-status")
                            .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
                    }
                }
                0x3 => panic!("RST_STREAM {:?} on stream {id}", payload),
                0x7 => panic!("GOAWAY {:?}", String::from_utf8_lossy(&payload)),
                0x4 if flags & 0x1 == 0 => {
                    let mut ack = Vec::new();
                    frame(0x4, 0x1, 0, &[], &mut ack);
                    conn.write_all(&ack).await.unwrap();
                }
                _ => {}
            }
        }
        assert_eq!(status.as_deref(), Some("0"), "stream {stream}");
        assert!(data.len() >= 5, "a gRPC message");
        let info = registration::PluginInfo::decode(&data[5..]).unwrap();
        assert_eq!(info.r#type, "DRAPlugin");
        assert_eq!(info.name, DRIVER);
    }
    drop(conn);
    run.stop.send(()).unwrap();
    run.task.await.unwrap().unwrap();
}

/// The kubelet's health watch (`v1alpha1.DRAResourceHealth`) on the DRA
/// socket: the snapshot at once, a VF that loses its driver reported
/// Unhealthy without waiting for the heartbeat, and healthy again.
#[tokio::test]
async fn health_is_streamed_on_the_dra_socket() {
    let tmp = tempfile::tempdir().unwrap();
    write_static_tree(tmp.path(), &NodeSpec::gpu()).unwrap();
    let root = HostRoot::new(tmp.path());
    let dir = tmp.path().join("kubelet");
    let run = start(&dir, &root, Arc::new(FakeClaims::default()));
    let vfs: Vec<(String, sriov_host::PciAddress)> = ["0000:1b:00.2", "0000:1b:00.3"]
        .iter()
        .map(|a| {
            let a: sriov_host::PciAddress = a.parse().unwrap();
            (sriov_dra_driver::attributes::device_name(&a), a)
        })
        .collect();
    run.health.recheck(&root, &vfs);
    let ch = channel(&plugin::dra_socket(&dir.join("plugins"), DRIVER, None)).await;
    let mut client = v1alpha1::dra_resource_health_client::DraResourceHealthClient::new(ch);
    let mut stream = client
        .node_watch_resources(v1alpha1::NodeWatchResourcesRequest {})
        .await
        .unwrap()
        .into_inner();
    let health_of = |r: &v1alpha1::NodeWatchResourcesResponse| -> Vec<(String, String, i32)> {
        r.devices
            .iter()
            .map(|d| {
                let id = d.device.clone().unwrap();
                (id.pool_name, id.device_name, d.health)
            })
            .collect()
    };
    let healthy = v1alpha1::HealthStatus::Healthy as i32;
    let unhealthy = v1alpha1::HealthStatus::Unhealthy as i32;
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(
        health_of(&first),
        vec![
            (NODE.to_string(), "0000-1b-00-2".to_string(), healthy),
            (NODE.to_string(), "0000-1b-00-3".to_string(), healthy)
        ]
    );
    assert!(first.devices[0].last_updated_time > 1_700_000_000);
    // The VF's driver goes away (unbound): Unhealthy.
    let driver_link = root.pci_device(&vfs[1].1).join("driver");
    let target = std::fs::read_link(&driver_link).unwrap();
    std::fs::remove_file(&driver_link).unwrap();
    assert_eq!(
        run.health.recheck(&root, &vfs),
        vec!["0000-1b-00-3".to_string()]
    );
    let next = stream.message().await.unwrap().unwrap();
    assert_eq!(health_of(&next)[1].2, unhealthy);
    assert_eq!(health_of(&next)[0].2, healthy);
    // Bound again: Healthy; then the heartbeat repeats it.
    std::os::unix::fs::symlink(&target, &driver_link).unwrap();
    run.health.recheck(&root, &vfs);
    let back = stream.message().await.unwrap().unwrap();
    assert_eq!(health_of(&back)[1].2, healthy);
    let beat = stream.message().await.unwrap().unwrap();
    assert_eq!(health_of(&beat), health_of(&back));
    run.stop.send(()).unwrap();
    run.task.await.unwrap().unwrap();
}
