//! The HTTPS server of the webhooks: axum routes on hyper connections over
//! rustls, the certificate from a [`ReloadingCert`].

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionResponse, AdmissionReview};
use tokio::net::TcpListener;

use super::injector::{InjectorSwitches, NadSource, mutate_pod};
use super::operator_webhook::{ClusterSource, OperatorWebhookConfig, mutate, validate};
use super::tls::ReloadingCert;
use super::{PATH_INJECTOR, PATH_MUTATING, PATH_READYZ, PATH_VALIDATING};

/// What the handlers share.
pub struct WebhookState {
    /// Operator webhook settings.
    pub operator: OperatorWebhookConfig,
    /// Nodes, node states, policies.
    pub cluster: Arc<dyn ClusterSource>,
    /// NADs.
    pub nads: Arc<dyn NadSource>,
    /// Injector switches (updated from the control-switches ConfigMap).
    pub switches: Arc<RwLock<InjectorSwitches>>,
    /// The DRA pools' extended-resource names (no request injected).
    pub dra_resources: std::collections::BTreeSet<String>,
    /// `/readyz` answers 200 once set (the caches have synced).
    pub ready: AtomicBool,
}

fn review_from(body: &[u8]) -> Result<AdmissionReview<DynamicObject>, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(
            (
                StatusCode::BAD_REQUEST,
                format!("the body is not an AdmissionReview: {e}"),
            )
                .into_response(),
        )
    })
}

/// The review as JSON, with the patch as a base64 string (what Go's
/// `[]byte` is on the wire; kube serializes it as an array of numbers,
/// four times the size). Written in one pass: going through a
/// `serde_json::Value` made one `Value` per patch byte, then dropped them
/// (the injector's largest cost per review after parsing, by `perf`).
pub fn review_json(review: &AdmissionReview<DynamicObject>) -> Vec<u8> {
    use base64::Engine;

    #[derive(serde::Serialize)]
    struct WireResponse<'a> {
        #[serde(flatten)]
        response: &'a AdmissionResponse,
        #[serde(skip_serializing_if = "Option::is_none")]
        patch: Option<String>,
    }
    #[derive(serde::Serialize)]
    struct WireReview<'a> {
        #[serde(flatten)]
        types: &'a kube::core::TypeMeta,
        #[serde(skip_serializing_if = "Option::is_none")]
        request: Option<&'a kube::core::admission::AdmissionRequest<DynamicObject>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        response: Option<WireResponse<'a>>,
    }

    let patch = review
        .response
        .as_ref()
        .and_then(|r| r.patch.as_ref())
        .map(|b| base64::engine::general_purpose::STANDARD.encode(b));
    let without_patch = review.response.as_ref().map(|r| {
        let mut r = r.clone();
        r.patch = None;
        r
    });
    let wire = WireReview {
        types: &review.types,
        request: review.request.as_ref(),
        response: without_patch
            .as_ref()
            .map(|response| WireResponse { response, patch }),
    };
    serde_json::to_vec(&wire).unwrap_or_else(|e| {
        let fallback = AdmissionResponse::invalid(e.to_string()).into_review();
        serde_json::to_vec(&fallback).unwrap_or_default()
    })
}

fn json(review: AdmissionReview<DynamicObject>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        review_json(&review),
    )
        .into_response()
}

async fn mutating(body: Bytes) -> Response {
    match review_from(&body) {
        Ok(review) => json(mutate(review)),
        Err(r) => *r,
    }
}

async fn validating(State(state): State<Arc<WebhookState>>, body: Bytes) -> Response {
    match review_from(&body) {
        Ok(review) => json(validate(review, &state.operator, state.cluster.as_ref())),
        Err(r) => *r,
    }
}

async fn injector(State(state): State<Arc<WebhookState>>, body: Bytes) -> Response {
    match review_from(&body) {
        Ok(review) => {
            let switches = *state.switches.read().expect("switches lock");
            json(mutate_pod(
                review,
                state.nads.as_ref(),
                switches,
                &state.dra_resources,
            ))
        }
        Err(r) => *r,
    }
}

async fn readyz(State(state): State<Arc<WebhookState>>) -> Response {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced").into_response()
    }
}

/// The routes: upstream's paths plus `/readyz`.
pub fn router(state: Arc<WebhookState>) -> Router {
    Router::new()
        .route(PATH_MUTATING, post(mutating))
        .route(PATH_VALIDATING, post(validating))
        .route(PATH_INJECTOR, post(injector))
        .route(PATH_READYZ, get(readyz))
        .with_state(state)
}

/// Serves `router` over TLS on `listener` until `shutdown` completes. Each
/// connection's handshake asks `cert` for the certificate, so a reload is
/// used from the next connection on.
pub async fn serve(
    listener: TcpListener,
    cert: Arc<ReloadingCert>,
    router: Router,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(cert.server_config());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(stream).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, "connection: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `review_json` wrote before (through a `Value`): the wire form
    /// must not change.
    fn via_value(review: &AdmissionReview<DynamicObject>) -> serde_json::Value {
        use base64::Engine;
        let mut value = serde_json::to_value(review).unwrap();
        if let Some(bytes) = review.response.as_ref().and_then(|r| r.patch.as_ref()) {
            value["response"]["patch"] =
                serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
        value
    }

    fn request() -> kube::core::admission::AdmissionRequest<DynamicObject> {
        let review: AdmissionReview<DynamicObject> = serde_json::from_value(serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "operation": "CREATE", "userInfo": {}, "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}}
        }))
        .unwrap();
        review.try_into().unwrap()
    }

    #[test]
    fn review_json_is_the_same_wire_form_in_one_pass() {
        let req = request();
        let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
            {"op": "add", "path": "/spec/containers/0/resources/limits/openshift.io~1pool", "value": "2"},
            {"op": "add", "path": "/metadata/annotations", "value": {"a": "b\"c"}}
        ]))
        .unwrap();
        let patched = AdmissionResponse::from(&req)
            .with_patch(patch)
            .unwrap()
            .into_review();
        let mut warned = AdmissionResponse::from(&req).deny("no such NAD");
        warned.warnings = Some(vec!["w1".to_string()]);
        for review in [
            patched,
            warned.into_review(),
            AdmissionResponse::from(&req).into_review(),
        ] {
            let ours: serde_json::Value = serde_json::from_slice(&review_json(&review)).unwrap();
            assert_eq!(ours, via_value(&review));
        }
    }
}
