//! The `sriov-device-plugin` binary: flags, metrics, SIGTERM, bad config.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sriov_device_plugin::api::{AllocateRequest, ContainerAllocateRequest};
use sriov_device_plugin::test_kubelet::TestKubelet;

const BIN: &str = env!("CARGO_BIN_EXE_sriov-device-plugin");

struct Kill(Option<Child>);
impl Drop for Kill {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn mixed_tree() -> tempfile::TempDir {
    let t = tempfile::Builder::new().prefix("dpbin").tempdir().unwrap();
    sriov_sim::kernel::write_static_tree(t.path(), &sriov_sim::node::NodeSpec::mixed()).unwrap();
    t
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn help_fits_a_screen_and_version_prints() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--config-file",
        "--resource-prefix",
        "--device-plugin-dir",
        "--devinfo-dir",
        "--host-root",
        "--metrics-addr",
        "--allocation-policy",
    ] {
        assert!(text.contains(flag), "{flag} missing:\n{text}");
    }
    assert!(text.lines().count() <= 50, "{} lines", text.lines().count());
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("sriov-device-plugin ")
    );
}

#[test]
fn unreadable_config_at_start_exits_naming_the_file() {
    let root = mixed_tree();
    let cfg = root.path().join("config.json");
    std::fs::write(&cfg, r#"{"resourceList": [}"#).unwrap();
    let out = Command::new(BIN)
        .arg("--host-root")
        .arg(root.path())
        .arg("--config-file")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config.json: invalid JSON"), "{err}");
}

/// The Go operator's DaemonSet args (entrypoint.sh form), the forms
/// entrypoint.sh passes to `sriovdp` (glog's), and Go's single-dash forms
/// all start the plugin: no usage error; a bad entry (upstream skips it)
/// does not stop the good one from being served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_command_lines_start_the_plugin() {
    let forms: &[&[&str]] = &[
        &[
            "--log-level=10",
            "--resource-prefix=intel.com",
            "--config-file=CFG",
            "--use-cdi",
        ],
        &[
            "-v",
            "10",
            "--log_dir",
            "LOGDIR",
            "--alsologtostderr",
            "--resource-prefix",
            "intel.com",
            "--config-file",
            "CFG",
        ],
        &[
            "-config-file=CFG",
            "-resource-prefix",
            "intel.com",
            "-v=4",
            "-logtostderr",
            "-use-cdi=false",
            "-stderrthreshold=INFO",
        ],
        &[
            "--log-level=2",
            "--log-dir=sriovdp-test-unused",
            "--logtostderr",
            "--config-file=CFG",
        ],
    ];
    for form in forms {
        let root = mixed_tree();
        let kp = root.path().join("kp");
        std::fs::create_dir_all(&kp).unwrap();
        let kubelet = TestKubelet::start(&kp).unwrap();
        let cfg = root.path().join("config.json");
        std::fs::write(
            &cfg,
            r#"{"resourceList":[{"resourceName":"bad name","selectors":{}},
               {"resourceName":"intel-netdev","selectors":{"drivers":["iavf"],"IsRdma":false,"NeedVhostNet":false},"SelectorObj":null}]}"#,
        )
        .unwrap();
        let logdir = root.path().join("logs");
        let args: Vec<String> = form
            .iter()
            .map(|a| {
                a.replace("CFG", cfg.to_str().unwrap())
                    .replace("LOGDIR", logdir.to_str().unwrap())
            })
            .collect();
        let mut child = Kill(Some(
            Command::new(BIN)
                .env(sriov_host::root::HOST_ROOT_ENV, root.path())
                .env_remove("RUST_LOG")
                .args([
                    "--device-plugin-dir",
                    "kp",
                    "--devinfo-dir",
                    "di",
                    "--cdi-dir",
                    "cdi",
                ])
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        ));
        let reg = kubelet
            .wait_for(Duration::from_secs(10), |r| {
                r.resource == "intel.com/intel-netdev"
            })
            .await;
        if reg.is_none() {
            let mut ch = child.0.take().unwrap();
            let _ = ch.kill();
            let out = ch.wait_with_output().unwrap();
            panic!(
                "{form:?}: not registered: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if args.iter().any(|a| a.contains("log_dir")) {
            wait_file(&logdir.join("sriov-device-plugin.log")).await;
        }
        drop(child);
    }
}

async fn wait_file(p: &Path) {
    let t = Instant::now();
    while !p.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{} never appeared",
            p.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_then_sigterm_removes_sockets_and_keeps_device_info() {
    let root = mixed_tree();
    let kp = root.path().join("kp");
    std::fs::create_dir_all(&kp).unwrap();
    let kubelet = TestKubelet::start(&kp).unwrap();
    let cfg = root.path().join("config.json");
    std::fs::write(
        &cfg,
        r#"{"resourceList":[{"resourceName":"intel_netdev","selectors":{"drivers":["iavf"]}}]}"#,
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Kill(Some(
        Command::new(BIN)
            .env(sriov_host::root::HOST_ROOT_ENV, root.path())
            .args(["--device-plugin-dir", "kp", "--devinfo-dir", "di"])
            .arg("--config-file")
            .arg(&cfg)
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    let reg = kubelet
        .wait_for(Duration::from_secs(10), |r| {
            r.resource == "intel.com/intel_netdev"
        })
        .await
        .expect("registered");
    let mut c = kubelet.client(&reg.endpoint).await.unwrap();
    c.allocate(AllocateRequest {
        container_requests: vec![ContainerAllocateRequest {
            devices_ids: vec!["0000:3b:02.0".into()],
        }],
    })
    .await
    .unwrap();
    let health = tokio::task::spawn_blocking(move || http_get(port, "/healthz"))
        .await
        .unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let m = tokio::task::spawn_blocking(move || http_get(port, "/metrics"))
        .await
        .unwrap();
    for want in [
        "sriov_dp_pool_devices{resource=\"intel.com/intel_netdev\",health=\"healthy\"} 4",
        "sriov_dp_pool_devices{resource=\"intel.com/intel_netdev\",health=\"unhealthy\"} 0",
        "sriov_dp_pool_registered{resource=\"intel.com/intel_netdev\"} 1",
        "sriov_dp_allocations_total 1",
        "sriov_dp_rescans_total 1",
    ] {
        assert!(m.contains(want), "{want} missing:\n{m}");
    }
    let sock = kp.join("intel.com_intel_netdev.sock");
    wait_file(&sock).await;
    let pid = nix::unistd::Pid::from_raw(child.0.as_ref().unwrap().id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let mut ch = child.0.take().unwrap();
    let status = tokio::task::spawn_blocking(move || ch.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!sock.exists(), "socket left behind");
    assert!(
        root.path()
            .join("di/intel.com-intel_netdev-0000:3b:02.0-device.json")
            .exists()
    );
}
