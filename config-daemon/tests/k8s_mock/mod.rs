//! An API-server verifier for the Kubernetes-mode tests (the tower-test
//! `mock::pair` pattern): the daemon's client talks to a mock service; the
//! test takes each request in order, checks method, path, query and body,
//! and answers it.

#![allow(dead_code)]

use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};

pub const NS: &str = "sriov-network-operator";
pub const NODE: &str = "node1";
pub const STATES: &str =
    "/apis/sriovnetwork.openshift.io/v1/namespaces/sriov-network-operator/sriovnetworknodestates";
pub const CONFIG: &str = "/apis/sriovnetwork.openshift.io/v1/namespaces/sriov-network-operator/sriovoperatorconfigs/default";
pub const NODES: &str = "/api/v1/nodes";
pub const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/sriov-network-operator/events";

/// One request the daemon sent.
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
    send: SendResponse<Response<Body>>,
}

impl std::fmt::Debug for Req {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}?{} {}",
            self.method, self.path, self.query, self.body
        )
    }
}

impl Req {
    /// A query parameter's value.
    pub fn param(&self, key: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == key).then(|| v.replace("%3D", "=").replace("%2F", "/"))
        })
    }

    /// Answers with `code` and a JSON body.
    pub fn reply(self, code: u16, body: Value) {
        let resp = Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap();
        self.send.send_response(resp);
    }

    /// Fails the request as a client does when nothing listens on the API
    /// server's address (connection refused).
    pub fn refuse(self) {
        self.send.send_error(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ));
    }

    /// Answers 500 as an API server whose etcd is down does.
    pub fn internal_error(self) {
        self.reply(
            500,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "etcdserver: request timed out", "reason": "InternalError", "code": 500}),
        )
    }

    /// Whether this is a watch (not the initial list) on the node states.
    pub fn is_watch(&self) -> bool {
        self.method == "GET"
            && self.path == STATES
            && self.param("watch").as_deref() == Some("true")
    }

    /// Answers 200 with `body`.
    pub fn ok(self, body: Value) {
        self.reply(200, body)
    }

    /// Answers 404 NotFound as the API server does.
    pub fn not_found(self) {
        let name = self.path.rsplit('/').next().unwrap_or_default().to_string();
        self.reply(
            404,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": format!("\"{name}\" not found"), "reason": "NotFound", "code": 404}),
        )
    }

    /// Answers with the request body (what a create or patch returns,
    /// near enough), merged into `base`.
    pub fn echo(self, base: Value) {
        let mut out = base;
        merge(&mut out, &self.body.clone());
        self.ok(out)
    }

    /// Answers a watch request with these events (one JSON per line), then
    /// ends the stream.
    pub fn watch_events(self, events: &[Value]) {
        let mut text = String::new();
        for e in events {
            text.push_str(&serde_json::to_string(e).unwrap());
            text.push('\n');
        }
        let resp = Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from(text.into_bytes()))
            .unwrap();
        self.send.send_response(resp);
    }
}

/// JSON merge (RFC 7386).
pub fn merge(a: &mut Value, b: &Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                if v.is_null() {
                    a.remove(k);
                } else {
                    merge(a.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (a, b) => *a = b.clone(),
    }
}

/// The API server side of the mock.
pub struct ApiServer {
    handle: Handle<Request<Body>, Response<Body>>,
    /// Every request so far: (method, path, query).
    pub seen: Vec<(String, String, String)>,
}

/// A client on the mock, and the server side.
pub fn pair() -> (kube::Client, ApiServer) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (
        kube::Client::new(svc, NS),
        ApiServer {
            handle,
            seen: Vec::new(),
        },
    )
}

impl ApiServer {
    /// The next request (fails the test after 20 s without one).
    pub async fn next(&mut self) -> Req {
        let (req, send) = tokio::time::timeout(Duration::from_secs(20), self.handle.next_request())
            .await
            .expect("the daemon sent no request within 20 s")
            .expect("the client is gone");
        let (parts, body) = req.into_parts();
        self.seen.push((
            parts.method.to_string(),
            parts.uri.path().to_string(),
            parts.uri.query().unwrap_or_default().to_string(),
        ));
        let bytes = body.collect_bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                // server-side apply bodies are sent as YAML-compatible JSON
                Value::String(String::from_utf8_lossy(&bytes).to_string())
            })
        };
        Req {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or_default().to_string(),
            content_type: parts
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            body,
            send,
        }
    }

    /// The next request that is not a watch on the node states; watches
    /// seen meanwhile are kept, unanswered, in `watches`.
    pub async fn next_not_watch(&mut self, watches: &mut Vec<Req>) -> Req {
        loop {
            let r = self.next().await;
            if r.is_watch() {
                watches.push(r);
            } else {
                return r;
            }
        }
    }

    /// The next request, which must be `method path`.
    pub async fn expect(&mut self, method: &str, path: &str) -> Req {
        let r = self.next().await;
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            (method, path),
            "unexpected request {r:?}"
        );
        r
    }

    /// Expects an event and answers it; returns (type, reason, note).
    pub async fn expect_event(&mut self) -> (String, String, String) {
        let r = self.next().await;
        assert!(
            (r.method == "POST" && r.path == EVENTS)
                || (r.method == "PATCH" && r.path.starts_with(EVENTS)),
            "expected an event, got {r:?}"
        );
        let out = (
            r.body["type"].as_str().unwrap_or_default().to_string(),
            r.body["reason"].as_str().unwrap_or_default().to_string(),
            r.body["note"].as_str().unwrap_or_default().to_string(),
        );
        assert_eq!(
            r.body["regarding"]["kind"], "SriovNetworkNodeState",
            "{r:?}"
        );
        assert_eq!(
            r.body["reportingController"], "sriov-config-daemon",
            "{r:?}"
        );
        let body = r.body.clone();
        r.ok(body);
        out
    }

    /// Expects the status apply and answers it; returns the status.
    pub async fn expect_status(&mut self, object: &Value) -> Value {
        let r = self
            .expect("PATCH", &format!("{STATES}/{NODE}/status"))
            .await;
        assert_eq!(r.content_type, "application/apply-patch+yaml", "{r:?}");
        assert_eq!(
            r.param("fieldManager").as_deref(),
            Some("sriov-config-daemon"),
            "{r:?}"
        );
        assert_eq!(r.param("force").as_deref(), Some("true"), "{r:?}");
        assert_eq!(
            r.body["apiVersion"], "sriovnetwork.openshift.io/v1",
            "{r:?}"
        );
        assert_eq!(r.body["kind"], "SriovNetworkNodeState", "{r:?}");
        let status = r.body["status"].clone();
        let mut obj = object.clone();
        obj["status"] = status.clone();
        r.ok(obj);
        status
    }

    /// Expects the handshake annotation patches (node state, then Node)
    /// with `value`, and answers them.
    pub async fn expect_annotations(&mut self, object: &Value, value: &str) {
        let r = self.expect("PATCH", &format!("{STATES}/{NODE}")).await;
        assert_eq!(r.content_type, "application/merge-patch+json", "{r:?}");
        assert_eq!(
            r.body,
            json!({"metadata": {"annotations": {"sriovnetwork.openshift.io/desired-state": value}}})
        );
        r.echo(object.clone());
        let r = self.expect("PATCH", &format!("{NODES}/{NODE}")).await;
        assert_eq!(r.content_type, "application/merge-patch+json", "{r:?}");
        assert_eq!(
            r.body,
            json!({"metadata": {"annotations": {"sriovnetwork.openshift.io/state": value}}})
        );
        r.ok(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE, "uid": "node-uid"}}));
    }

    /// Expects the read of `SriovOperatorConfig/default` and answers it
    /// (`None`: 404).
    pub async fn expect_operator_config(&mut self, disable_drain: Option<bool>) {
        let r = self.expect("GET", CONFIG).await;
        match disable_drain {
            None => r.not_found(),
            Some(d) => r.ok(operator_config(d)),
        }
    }

    /// Asserts that the daemon sends nothing for `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Ok(Some((req, _))) = tokio::time::timeout(wait, self.handle.next_request()).await {
            panic!("unexpected request {} {}", req.method(), req.uri());
        }
    }
}

/// `SriovOperatorConfig/default`.
pub fn operator_config(disable_drain: bool) -> Value {
    json!({
        "apiVersion": "sriovnetwork.openshift.io/v1",
        "kind": "SriovOperatorConfig",
        "metadata": {"name": "default", "namespace": NS, "uid": "config-uid"},
        "spec": {"disableDrain": disable_drain}
    })
}

/// A node state as the API server returns it.
pub fn node_state(generation: i64, spec: Value, desired: &str, current: &str) -> Value {
    json!({
        "apiVersion": "sriovnetwork.openshift.io/v1",
        "kind": "SriovNetworkNodeState",
        "metadata": {
            "name": NODE, "namespace": NS, "uid": "state-uid", "generation": generation,
            "resourceVersion": format!("{}", 100 + generation),
            "annotations": {
                "sriovnetwork.openshift.io/desired-state": desired,
                "sriovnetwork.openshift.io/current-state": current
            }
        },
        "spec": spec
    })
}

/// (apiGroup, resource, verb, namespaced) of a request, as RBAC sees it.
pub fn rbac_attributes(method: &str, path: &str, query: &str) -> (String, String, String, bool) {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match parts[0] {
        "api" => (String::new(), &parts[2..]),
        "apis" => (parts[1].to_string(), &parts[3..]),
        other => panic!("unexpected API path {path} ({other})"),
    };
    let (namespaced, rest) = if rest.first() == Some(&"namespaces") && rest.len() > 2 {
        (true, &rest[2..])
    } else {
        (false, rest)
    };
    let resource = match rest {
        [r] | [r, _] => r.to_string(),
        [r, _, sub] => format!("{r}/{sub}"),
        _ => panic!("unexpected API path {path}"),
    };
    let named = rest.len() >= 2;
    let watch = query.split('&').any(|kv| kv == "watch=true");
    let verb = match (method, named, watch) {
        ("GET", true, _) => "get",
        ("GET", false, true) => "watch",
        ("GET", false, false) => "list",
        ("POST", _, _) => "create",
        ("PATCH", _, _) => "patch",
        ("PUT", _, _) => "update",
        ("DELETE", _, _) => "delete",
        _ => panic!("unexpected method {method}"),
    };
    (group, resource, verb.to_string(), namespaced)
}

impl ApiServer {
    /// Every request seen is allowed by deploy/config-daemon/rbac.yaml
    /// (namespaced resources by the Role, cluster-scoped by the ClusterRole).
    pub fn check_rbac(&self) {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/config-daemon/rbac.yaml"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        let rules = |kind: &str| -> Vec<Value> {
            docs.iter()
                .filter(|d| d["kind"] == kind)
                .flat_map(|d| d["rules"].as_array().cloned().unwrap_or_default())
                .collect()
        };
        let (role, cluster) = (rules("Role"), rules("ClusterRole"));
        assert!(!self.seen.is_empty());
        for (method, p, q) in &self.seen {
            let (group, resource, verb, namespaced) = rbac_attributes(method, p, q);
            let rules = if namespaced { &role } else { &cluster };
            let has = |r: &Value, key: &str, want: &str| {
                r[key]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|v| v == want))
            };
            assert!(
                rules.iter().any(|r| has(r, "apiGroups", &group)
                    && has(r, "resources", &resource)
                    && has(r, "verbs", &verb)),
                "{method} {p} needs {verb} on {resource} (group {group:?}); not in {path}"
            );
        }
    }
}
