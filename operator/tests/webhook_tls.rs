//! The webhook server over TLS: a client that trusts only the generated CA
//! calls it; a rotated certificate (new CA) written to the files is picked up
//! without a restart; the certificate plan renews and rotates.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http_body_util_shim::collect;
use k8s_openapi::jiff::{Timestamp, ToSpan};
use rustls::pki_types::ServerName;
use sriov_operator::webhook::certs::{
    self, Lifetimes, Plan, bundle_from_secret, plan, secret_for, service_dns_names,
};
use sriov_operator::webhook::injector::{InjectorSwitches, NadInfo};
use sriov_operator::webhook::operator_webhook::{ClusterView, OperatorWebhookConfig};
use sriov_operator::webhook::server::{WebhookState, router, serve};
use sriov_operator::webhook::tls::{ReloadingCert, watch};

const SERVICE: &str = "operator-webhook-service";
const NS: &str = "sriov-network-operator";

mod http_body_util_shim {
    use hyper::body::{Body, Incoming};
    /// Reads a whole response body.
    pub async fn collect(mut body: Incoming) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(frame) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
        {
            if let Ok(data) = frame.unwrap().into_data() {
                out.extend_from_slice(&data);
            }
        }
        out
    }
}

fn client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// One HTTPS request; Err when the TLS handshake fails.
async fn call(
    addr: SocketAddr,
    ca_pem: &str,
    method: &str,
    path: &str,
    body: String,
) -> Result<(u16, Vec<u8>), String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(client_config(ca_pem));
    let name = ServerName::try_from(format!("{SERVICE}.{NS}.svc")).unwrap();
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "webhook")
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    Ok((status, collect(resp.into_body()).await))
}

fn write_bundle(dir: &std::path::Path, bundle: &certs::CertBundle) {
    // Written as the kubelet would: new files, then renamed into place.
    for (name, text) in [("tls.crt", &bundle.cert_pem), ("tls.key", &bundle.key_pem)] {
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    }
}

fn state() -> Arc<WebhookState> {
    let nads = BTreeMap::from([(
        ("default".to_string(), "sriov-a".to_string()),
        NadInfo {
            resource_name: Some("openshift.io/intel_a".into()),
            node_selector: None,
        },
    )]);
    Arc::new(WebhookState {
        operator: OperatorWebhookConfig::default(),
        cluster: Arc::new(ClusterView::default()),
        nads: Arc::new(nads),
        switches: Arc::new(RwLock::new(InjectorSwitches::default())),
        dra_resources: Default::default(),
        ready: Default::default(),
    })
}

const POD_REVIEW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"default","operation":"CREATE","userInfo":{},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default","annotations":{"k8s.v1.cni.cncf.io/networks":"sriov-a"}},"spec":{"containers":[{"name":"c","image":"x"}]}}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trusting_only_the_ca_calls_the_server_and_a_rotation_is_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let dns = service_dns_names(SERVICE, NS);
    let first = certs::generate(&dns, Timestamp::now(), Lifetimes::default()).unwrap();
    write_bundle(dir.path(), &first);
    let cert =
        ReloadingCert::load(&dir.path().join("tls.crt"), &dir.path().join("tls.key")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let st = state();
    tokio::spawn(serve(
        listener,
        cert.clone(),
        router(st.clone()),
        std::future::pending(),
    ));
    tokio::spawn(watch(cert.clone(), Duration::from_millis(50)));

    let (status, _) = call(addr, &first.ca_cert_pem, "GET", "/readyz", String::new())
        .await
        .unwrap();
    assert_eq!(status, 503, "not ready before the caches synced");
    st.ready.store(true, Ordering::Relaxed);
    let (status, body) = call(addr, &first.ca_cert_pem, "GET", "/readyz", String::new())
        .await
        .unwrap();
    assert_eq!((status, body.as_slice()), (200, &b"ok"[..]));

    let (status, body) = call(
        addr,
        &first.ca_cert_pem,
        "POST",
        "/mutate",
        POD_REVIEW.into(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let review: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(review["response"]["allowed"], true);
    assert_eq!(review["response"]["uid"], "u");
    assert!(
        review["response"]["patch"].is_string(),
        "base64 on the wire, as Go's []byte"
    );

    // A client trusting another CA is refused.
    let stranger = certs::generate(&dns, Timestamp::now(), Lifetimes::default()).unwrap();
    assert!(
        call(addr, &stranger.ca_cert_pem, "GET", "/readyz", String::new())
            .await
            .is_err()
    );

    // Rotate to a new CA: the files change, the server picks it up.
    write_bundle(dir.path(), &stranger);
    let mut picked_up = false;
    for _ in 0..100 {
        if call(addr, &stranger.ca_cert_pem, "GET", "/readyz", String::new())
            .await
            .is_ok()
        {
            picked_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        picked_up,
        "the rotated certificate is served without a restart"
    );
    assert!(
        call(addr, &first.ca_cert_pem, "GET", "/readyz", String::new())
            .await
            .is_err(),
        "the old CA no longer verifies the new certificate"
    );
    // A half-written pair keeps the current certificate.
    std::fs::write(dir.path().join("tls.crt"), "garbage").unwrap();
    assert!(cert.reload().is_err());
    assert!(
        call(addr, &stranger.ca_cert_pem, "GET", "/readyz", String::new())
            .await
            .is_ok()
    );
}

#[test]
fn renewal_and_ca_rotation_plan() {
    let dns = service_dns_names(SERVICE, NS);
    let now = Timestamp::now();
    let life = Lifetimes::default();
    let Plan::NewCa {
        bundle,
        old_ca_pem: None,
    } = plan(None, &dns, now, life).unwrap()
    else {
        panic!("a new CA when there is no Secret");
    };
    // Stored in a Secret and read back.
    let secret = secret_for("operator-webhook-cert", NS, &bundle);
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let stored = bundle_from_secret(&secret).unwrap();
    assert_eq!(stored, bundle);
    assert_eq!(
        plan(Some(stored.clone()), &dns, now, life).unwrap(),
        Plan::Keep(stored.clone())
    );
    // 340 days later the serving certificate is within 30 days of expiry: renewed, same CA.
    let later = now.checked_add((340 * 24).hours()).unwrap();
    match plan(Some(stored.clone()), &dns, later, life).unwrap() {
        Plan::RenewServing(b) => {
            assert_eq!(b.ca_cert_pem, stored.ca_cert_pem);
            assert_ne!(b.cert_pem, stored.cert_pem);
            assert!(b.not_after > stored.not_after);
        }
        other => panic!("{other:?}"),
    }
    // Other DNS names: renewed.
    let other_dns = service_dns_names("other", NS);
    assert!(matches!(
        plan(Some(stored.clone()), &other_dns, now, life).unwrap(),
        Plan::RenewServing(_)
    ));
    // Near the CA's end: a new CA, the old one kept in the bundle for the overlap.
    let ca_end = now.checked_add(((3650 - 300) * 24).hours()).unwrap();
    match plan(Some(stored.clone()), &dns, ca_end, life).unwrap() {
        Plan::NewCa { bundle, old_ca_pem } => {
            assert_ne!(bundle.ca_cert_pem, stored.ca_cert_pem);
            assert_eq!(old_ca_pem.as_deref(), Some(stored.ca_cert_pem.as_str()));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_serving_certificate_verifies_with_the_same_ca() {
    let dir = tempfile::tempdir().unwrap();
    let dns = service_dns_names(SERVICE, NS);
    let now = Timestamp::now();
    let first = certs::generate(&dns, now, Lifetimes::default()).unwrap();
    let Plan::RenewServing(renewed) = plan(
        Some(first.clone()),
        &dns,
        now.checked_add((340 * 24).hours()).unwrap(),
        Lifetimes::default(),
    )
    .unwrap() else {
        panic!("renewal");
    };
    // The renewed certificate is valid from an hour before "340 days later":
    // serve it as issued now instead, to check the chain.
    let (cert_pem, key_pem, _) =
        certs::issue_serving_cert(&first.ca_key_pem, &dns, now, 365).unwrap();
    let renewed_now = certs::CertBundle {
        cert_pem,
        key_pem,
        ..renewed
    };
    write_bundle(dir.path(), &renewed_now);
    let cert =
        ReloadingCert::load(&dir.path().join("tls.crt"), &dir.path().join("tls.key")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let st = state();
    st.ready.store(true, Ordering::Relaxed);
    tokio::spawn(serve(listener, cert, router(st), std::future::pending()));
    let (status, _) = call(addr, &first.ca_cert_pem, "GET", "/readyz", String::new())
        .await
        .unwrap();
    assert_eq!(status, 200);
}
