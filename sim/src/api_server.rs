//! A Kubernetes API server stand-in for tests (feature `api-server`): a
//! [`kube::Client`] talks to a tower-test mock service, and the test takes
//! each request in order ([`ApiServer::next`], [`ApiServer::expect`]),
//! checks its method, path, query and body, and answers it ([`Req::ok`],
//! [`Req::not_found`], [`Req::watch_events`], …). [`ApiServer::check_rbac`]
//! verifies that every request seen is allowed by the client's RBAC
//! manifest.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};

/// The default namespace of the client ([`pair`]), the operator's.
pub const NS: &str = "sriov-network-operator";

/// One request the client sent.
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

    /// Answers 500 as an API server whose etcd is down does.
    pub fn internal_error(self) {
        self.reply(
            500,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "etcdserver: request timed out", "reason": "InternalError", "code": 500}),
        )
    }

    /// Fails the request as a client does when nothing listens on the API
    /// server's address (connection refused).
    pub fn refuse(self) {
        self.send.send_error(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ));
    }

    /// Whether this is a watch (not a list or a get) on the collection `path`.
    pub fn is_watch_on(&self, path: &str) -> bool {
        self.method == "GET" && self.path == path && self.param("watch").as_deref() == Some("true")
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
    /// The RBAC manifest (Role and ClusterRole) of the client.
    rbac_yaml: PathBuf,
}

/// A client on the mock (default namespace [`NS`]) whose rights are in the
/// RBAC manifest `rbac_yaml`, and the server side.
pub fn pair(rbac_yaml: impl Into<PathBuf>) -> (kube::Client, ApiServer) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (
        kube::Client::new(svc, NS),
        ApiServer {
            handle,
            seen: Vec::new(),
            rbac_yaml: rbac_yaml.into(),
        },
    )
}

impl ApiServer {
    /// The next request (fails the test after 20 s without one).
    pub async fn next(&mut self) -> Req {
        let (req, send) = tokio::time::timeout(Duration::from_secs(20), self.handle.next_request())
            .await
            .expect("the client sent no request within 20 s")
            .expect("the client is gone");
        let (parts, body) = req.into_parts();
        let method = parts.method.to_string();
        let path = parts.uri.path().to_string();
        let query = parts.uri.query().unwrap_or_default().to_string();
        self.seen
            .push((method.clone(), path.clone(), query.clone()));
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
            method,
            path,
            query,
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

    /// Asserts that the client sends nothing for `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Ok(Some((req, _))) = tokio::time::timeout(wait, self.handle.next_request()).await {
            panic!("unexpected request {} {}", req.method(), req.uri());
        }
    }

    /// Every request seen is allowed by the client's RBAC manifest
    /// ([`check_rbac_requests`]); returns what they need.
    pub fn check_rbac(&self) -> BTreeSet<RbacNeed> {
        let reqs: Vec<(String, String, String, bool)> = self
            .seen
            .iter()
            .map(|(m, p, q)| (m.clone(), p.clone(), q.clone(), false))
            .collect();
        check_rbac_requests(&self.rbac_yaml, &reqs)
    }
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

/// The rules of an RBAC manifest: (Role rules, ClusterRole rules).
pub fn rbac_rules(rbac_yaml: &Path) -> (Vec<Value>, Vec<Value>) {
    let text = std::fs::read_to_string(rbac_yaml)
        .unwrap_or_else(|e| panic!("reading {}: {e}", rbac_yaml.display()));
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let rules = |kind: &str| -> Vec<Value> {
        docs.iter()
            .filter(|d| d["kind"] == kind)
            .flat_map(|d| d["rules"].as_array().cloned().unwrap_or_default())
            .collect()
    };
    (rules("Role"), rules("ClusterRole"))
}

/// The verbs RBAC checks for a request: its own, and `create` as well for
/// a patch that created its object (the API server authorizes a
/// server-side apply of a missing object as `create`).
pub fn verbs_needed(method: &str, path: &str, query: &str, created: bool) -> Vec<String> {
    let (_, _, verb, _) = rbac_attributes(method, path, query);
    let mut out = vec![verb];
    if method == "PATCH" && created {
        out.push("create".to_string());
    }
    out
}

/// What a request needs: (apiGroup, resource, verb, in the namespace [`NS`]).
pub type RbacNeed = (String, String, String, bool);

/// Every request (method, path, query, whether a patch created its
/// object) is allowed by the RBAC manifest `rbac_yaml` (its Role in the
/// namespace [`NS`], its ClusterRole everywhere), verb by verb: no wildcard
/// is accepted, each verb must be listed exactly. Returns what they need.
pub fn check_rbac_requests(
    rbac_yaml: &Path,
    requests: &[(String, String, String, bool)],
) -> BTreeSet<RbacNeed> {
    let (role, cluster) = rbac_rules(rbac_yaml);
    assert!(!requests.is_empty());
    let mut needed = BTreeSet::new();
    for (method, p, q, created) in requests {
        let (group, resource, _, namespaced) = rbac_attributes(method, p, q);
        let in_own_ns = namespaced && p.contains(&format!("/namespaces/{NS}/"));
        let rules: Vec<Value> = if in_own_ns {
            role.iter().chain(cluster.iter()).cloned().collect()
        } else {
            cluster.clone()
        };
        let has = |r: &Value, key: &str, want: &str| {
            r[key]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == want))
        };
        for verb in verbs_needed(method, p, q, *created) {
            assert!(
                rules.iter().any(|r| has(r, "apiGroups", &group)
                    && has(r, "resources", &resource)
                    && has(r, "verbs", &verb)),
                "{method} {p}?{q} needs {verb} on {resource} (group {group:?}{}); not in {}",
                if in_own_ns {
                    ", operator namespace"
                } else {
                    ""
                },
                rbac_yaml.display()
            );
            needed.insert((group.clone(), resource.clone(), verb, in_own_ns));
        }
    }
    needed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_replaces_adds_and_removes_nulls() {
        let mut a = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge(&mut a, &json!({"a": 5, "b": {"c": null, "e": 4}}));
        assert_eq!(a, json!({"a": 5, "b": {"d": 3, "e": 4}}));
    }

    #[tokio::test]
    async fn the_client_gets_the_answer_the_test_gives() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let (client, mut api) = pair("rbac.yaml");
        let get = tokio::spawn(async move {
            kube::Api::<ConfigMap>::namespaced(client, NS)
                .get_opt("c")
                .await
        });
        let r = api
            .expect("GET", &format!("/api/v1/namespaces/{NS}/configmaps/c"))
            .await;
        r.not_found();
        assert!(get.await.unwrap().unwrap().is_none());
        assert_eq!(api.seen.len(), 1);
    }
}
