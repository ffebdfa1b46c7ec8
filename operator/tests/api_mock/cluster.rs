//! A small in-memory API server for running the whole operator loop
//! (`controllers::run`) in a test: objects by resource, namespace and name,
//! lists with field selectors, long-polled watches from a resourceVersion,
//! server-side apply (top-level fields replaced, metadata and `conditions`
//! merged), merge patches with the resourceVersion lock, creates (409 when
//! present), deletes (finalizers honoured), evictions and Events. Every
//! request is recorded (method, path, query, content type, body) for the
//! assertions and the RBAC check; `fail` makes the next matching requests
//! answer an error code (500, 409, 429…).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};

use super::{NS, merge};

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
    /// A write that created its object (a server-side apply of a missing
    /// object is authorized as `create` too).
    pub created: bool,
}

/// A fault: the next `times` requests with `method` whose path ends with
/// `path_suffix` get `code`.
#[derive(Debug, Clone)]
struct Fault {
    method: String,
    path_suffix: String,
    code: u16,
    times: usize,
}

/// What the API server holds.
#[derive(Default)]
pub struct State {
    /// (resource, namespace or "", name) → object.
    pub objects: BTreeMap<(String, String, String), Value>,
    /// (resourceVersion, resource, namespace, type, object).
    events: Vec<(u64, String, String, &'static str, Value)>,
    rv: u64,
    uid: u64,
    faults: Vec<Fault>,
    /// Every request, in order.
    pub seen: Vec<Seen>,
}

/// The test's side: read and change the cluster while the operator runs.
#[derive(Clone)]
pub struct Cluster {
    state: Arc<Mutex<State>>,
    wake: Arc<tokio::sync::Notify>,
}

/// A path split as the API server routes it.
#[derive(Debug, Clone)]
struct Route {
    api_version: String,
    namespace: String,
    resource: String,
    name: Option<String>,
    sub: Option<String>,
}

fn route(path: &str) -> Route {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (api_version, rest) = match parts[0] {
        "api" => (parts[1].to_string(), &parts[2..]),
        _ => (format!("{}/{}", parts[1], parts[2]), &parts[3..]),
    };
    let (namespace, rest) = if rest.first() == Some(&"namespaces") && rest.len() > 2 {
        (rest[1].to_string(), &rest[2..])
    } else {
        (String::new(), rest)
    };
    Route {
        api_version,
        namespace,
        resource: rest[0].to_string(),
        name: rest.get(1).map(|s| s.to_string()),
        sub: rest.get(2).map(|s| s.to_string()),
    }
}

fn decode(s: &str) -> String {
    s.replace("%3D", "=")
        .replace("%2F", "/")
        .replace("%2C", ",")
        .replace("%3A", ":")
}

fn param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| decode(v))
    })
}

/// `a.b=c,d=e` against an object.
fn fields_match(obj: &Value, selector: Option<&str>) -> bool {
    let Some(sel) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    sel.split(',').all(|term| {
        let (path, want) = term.split_once('=').unwrap_or((term, ""));
        let mut v = obj;
        for p in path.split('.') {
            v = &v[p];
        }
        v.as_str() == Some(want)
    })
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn reason_of(code: u16) -> &'static str {
    match code {
        404 => "NotFound",
        409 => "Conflict",
        429 => "TooManyRequests",
        _ => "InternalError",
    }
}

fn respond(send: SendResponse<Response<Body>>, code: u16, body: Vec<u8>) {
    let resp = Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    send.send_response(resp);
}

fn respond_json(send: SendResponse<Response<Body>>, code: u16, body: &Value) {
    respond(send, code, serde_json::to_vec(body).unwrap());
}

/// Merge of `conditions` lists by `type` (a list-map, as the CRDs declare it).
fn merge_conditions(old: &Value, new: &Value) -> Value {
    let mut out: Vec<Value> = old.as_array().cloned().unwrap_or_default();
    for c in new.as_array().into_iter().flatten() {
        match out.iter_mut().find(|o| o["type"] == c["type"]) {
            Some(o) => *o = c.clone(),
            None => out.push(c.clone()),
        }
    }
    Value::Array(out)
}

/// Server-side apply, near enough: metadata labels and annotations merged,
/// ownerReferences and finalizers replaced when given, every other top-level
/// field replaced (absent → removed, as a field the manager stops applying);
/// on `status`, its fields replaced but `conditions` merged by type.
fn server_side_apply(existing: Option<&Value>, body: &Value, status_only: bool) -> Value {
    let mut out = existing.cloned().unwrap_or_else(|| json!({}));
    if status_only {
        let mut st = out["status"].as_object().cloned().unwrap_or_default();
        for (k, v) in body["status"].as_object().into_iter().flatten() {
            let merged = if k == "conditions" {
                merge_conditions(st.get(k).unwrap_or(&Value::Null), v)
            } else {
                v.clone()
            };
            st.insert(k.clone(), merged);
        }
        out["status"] = Value::Object(st);
        return out;
    }
    let obj = out.as_object_mut().unwrap();
    let keep_status = obj.get("status").cloned();
    let meta = obj.remove("metadata").unwrap_or_else(|| json!({}));
    obj.clear();
    let mut meta = meta;
    let bm = &body["metadata"];
    for k in ["labels", "annotations"] {
        if let Some(v) = bm.get(k) {
            merge(&mut meta[k], v);
        }
    }
    for k in ["ownerReferences", "finalizers", "name", "namespace"] {
        if let Some(v) = bm.get(k) {
            meta[k] = v.clone();
        }
    }
    for (k, v) in body.as_object().into_iter().flatten() {
        if k != "metadata" && k != "status" {
            obj.insert(k.clone(), v.clone());
        }
    }
    obj.insert("metadata".into(), meta);
    if let Some(s) = keep_status {
        obj.insert("status".into(), s);
    }
    out
}

impl State {
    fn key(r: &Route, name: &str) -> (String, String, String) {
        (r.resource.clone(), r.namespace.clone(), name.to_string())
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Stores `obj` (create or replace) and records the watch event.
    fn store(&mut self, resource: &str, ns: &str, mut obj: Value) -> Value {
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let key = (resource.to_string(), ns.to_string(), name.clone());
        let existed = self.objects.contains_key(&key);
        // metadata.generation: 1 at creation, +1 when the spec changes.
        let generation = match self.objects.get(&key) {
            Some(old) => {
                let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
                if old.get("spec") != obj.get("spec") {
                    g + 1
                } else {
                    g
                }
            }
            None => obj["metadata"]["generation"].as_i64().unwrap_or(1),
        };
        obj["metadata"]["generation"] = json!(generation);
        let rv = self.next_rv();
        if !existed && obj["metadata"].get("uid").is_none_or(Value::is_null) {
            self.uid += 1;
            obj["metadata"]["uid"] = json!(format!("uid-{}", self.uid));
        }
        if !ns.is_empty() {
            obj["metadata"]["namespace"] = json!(ns);
        }
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.objects.insert(key, obj.clone());
        let t = if existed { "MODIFIED" } else { "ADDED" };
        self.events
            .push((rv, resource.to_string(), ns.to_string(), t, obj.clone()));
        obj
    }

    fn remove(&mut self, resource: &str, ns: &str, name: &str) -> Option<Value> {
        let key = (resource.to_string(), ns.to_string(), name.to_string());
        let mut obj = self.objects.remove(&key)?;
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.events.push((
            rv,
            resource.to_string(),
            ns.to_string(),
            "DELETED",
            obj.clone(),
        ));
        Some(obj)
    }

    fn take_fault(&mut self, method: &str, path: &str) -> Option<u16> {
        let f = self
            .faults
            .iter_mut()
            .find(|f| f.method == method && path.ends_with(&f.path_suffix) && f.times > 0)?;
        f.times -= 1;
        Some(f.code)
    }

    /// Watch events after `rv` for this route.
    fn events_after(&self, r: &Route, rv: u64, fields: Option<&str>) -> Vec<Value> {
        self.events
            .iter()
            .filter(|(v, res, ns, _, obj)| {
                *v > rv
                    && *res == r.resource
                    && (r.namespace.is_empty() || *ns == r.namespace)
                    && fields_match(obj, fields)
            })
            .map(|(_, _, _, t, obj)| json!({"type": t, "object": obj}))
            .collect()
    }
}

/// A held watch: answered when an event arrives or at its deadline.
struct Watch {
    route: Route,
    rv: u64,
    fields: Option<String>,
    send: SendResponse<Response<Body>>,
    deadline: Instant,
}

impl Cluster {
    /// Starts the API server on the mock handle.
    pub fn serve(handle: Handle<Request<Body>, Response<Body>>) -> Cluster {
        let cluster = Cluster {
            state: Arc::new(Mutex::new(State::default())),
            wake: Arc::new(tokio::sync::Notify::new()),
        };
        let c = cluster.clone();
        tokio::spawn(async move { c.run(handle).await });
        cluster
    }

    async fn run(self, mut handle: Handle<Request<Body>, Response<Body>>) {
        let mut watches: Vec<Watch> = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                r = handle.next_request() => {
                    let Some((req, send)) = r else { return };
                    if let Some(w) = self.handle(req, send).await {
                        watches.push(w);
                    }
                }
                _ = self.wake.notified() => {}
                _ = tick.tick() => {}
            }
            let st = self.state.lock().unwrap();
            let now = Instant::now();
            let mut keep = Vec::new();
            for w in watches.drain(..) {
                let ev = st.events_after(&w.route, w.rv, w.fields.as_deref());
                if !ev.is_empty() || now >= w.deadline {
                    let mut text = Vec::new();
                    for e in ev {
                        text.extend(serde_json::to_vec(&e).unwrap());
                        text.push(b'\n');
                    }
                    respond(w.send, 200, text);
                } else {
                    keep.push(w);
                }
            }
            watches = keep;
        }
    }

    async fn handle(
        &self,
        req: Request<Body>,
        send: SendResponse<Response<Body>>,
    ) -> Option<Watch> {
        let (parts, body) = req.into_parts();
        let bytes = body.collect_bytes().await.unwrap();
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        let method = parts.method.to_string();
        let path = parts.uri.path().to_string();
        let query = parts.uri.query().unwrap_or_default().to_string();
        let content_type = parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let mut st = self.state.lock().unwrap();
        st.seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            content_type: content_type.clone(),
            body: body.clone(),
            at: Instant::now(),
            created: false,
        });
        if let Some(code) = st.take_fault(&method, &path) {
            respond_json(
                send,
                code,
                &status(code, reason_of(code), "injected by the test"),
            );
            return None;
        }
        let r = route(&path);
        let fields = param(&query, "fieldSelector");
        match (method.as_str(), &r.name) {
            ("GET", None) if param(&query, "watch").as_deref() == Some("true") => {
                let rv = param(&query, "resourceVersion")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                return Some(Watch {
                    route: r,
                    rv,
                    fields,
                    send,
                    deadline: Instant::now() + Duration::from_secs(1),
                });
            }
            ("GET", None) => {
                let items: Vec<Value> = st
                    .objects
                    .iter()
                    .filter(|((res, ns, _), o)| {
                        *res == r.resource
                            && (r.namespace.is_empty() || *ns == r.namespace)
                            && fields_match(o, fields.as_deref())
                    })
                    .map(|(_, o)| o.clone())
                    .collect();
                let list = json!({"apiVersion": r.api_version, "kind": "List",
                    "metadata": {"resourceVersion": st.rv.to_string()}, "items": items});
                respond_json(send, 200, &list);
            }
            ("GET", Some(name)) => match st.objects.get(&State::key(&r, name)) {
                Some(o) => respond_json(send, 200, o),
                None => respond_json(send, 404, &status(404, "NotFound", "not found")),
            },
            ("POST", Some(name)) if r.sub.as_deref() == Some("eviction") => {
                // An allowed eviction deletes the pod.
                let ns = r.namespace.clone();
                st.remove("pods", &ns, name);
                respond_json(
                    send,
                    201,
                    &json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
                );
            }
            ("POST", None) => {
                let name = body["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if st.objects.contains_key(&State::key(&r, &name)) {
                    respond_json(send, 409, &status(409, "AlreadyExists", "already exists"));
                } else {
                    let mut obj = body.clone();
                    obj["metadata"]["creationTimestamp"] = json!("2026-01-02T03:04:05Z");
                    let ns = r.namespace.clone();
                    let out = st.store(&r.resource, &ns, obj);
                    respond_json(send, 201, &out);
                }
            }
            ("PATCH", Some(name)) => {
                let key = State::key(&r, name);
                let existing = st.objects.get(&key).cloned();
                let status_only = r.sub.as_deref() == Some("status");
                let new = if content_type.starts_with("application/apply-patch") {
                    // As the real API server: an apply whose spec has no
                    // field leaves `spec: null`, refused by a CRD (type object).
                    if !status_only
                        && body.get("spec").is_some_and(|s| {
                            s.is_null() || s.as_object().is_some_and(|m| m.is_empty())
                        })
                    {
                        respond_json(
                            send,
                            422,
                            &status(
                                422,
                                "Invalid",
                                "spec: Invalid value: \"null\": spec in body must be of type object",
                            ),
                        );
                        return None;
                    }
                    if existing.is_none() && status_only {
                        respond_json(send, 404, &status(404, "NotFound", "not found"));
                        return None;
                    }
                    let mut o = server_side_apply(existing.as_ref(), &body, status_only);
                    for k in ["apiVersion", "kind"] {
                        if let Some(v) = body.get(k) {
                            o[k] = v.clone();
                        }
                    }
                    o["metadata"]["name"] = json!(name);
                    o
                } else {
                    let Some(mut o) = existing else {
                        respond_json(send, 404, &status(404, "NotFound", "not found"));
                        return None;
                    };
                    if let Some(want) = body["metadata"]["resourceVersion"].as_str()
                        && o["metadata"]["resourceVersion"].as_str() != Some(want)
                    {
                        respond_json(
                            send,
                            409,
                            &status(409, "Conflict", "the object has been modified"),
                        );
                        return None;
                    }
                    let mut b = body.clone();
                    if let Some(m) = b["metadata"].as_object_mut() {
                        m.remove("resourceVersion");
                    }
                    merge(&mut o, &b);
                    o
                };
                let ns = r.namespace.clone();
                if !st.objects.contains_key(&key) {
                    st.seen.last_mut().unwrap().created = true;
                }
                let out = st.store(&r.resource, &ns, new);
                respond_json(send, 200, &out);
            }
            ("DELETE", Some(name)) => {
                let key = State::key(&r, name);
                match st.objects.get(&key).cloned() {
                    None => respond_json(send, 404, &status(404, "NotFound", "not found")),
                    Some(mut o)
                        if o["metadata"]["finalizers"]
                            .as_array()
                            .is_some_and(|f| !f.is_empty()) =>
                    {
                        o["metadata"]["deletionTimestamp"] = json!("2026-01-02T03:04:05Z");
                        let ns = r.namespace.clone();
                        let out = st.store(&r.resource, &ns, o);
                        respond_json(send, 200, &out);
                    }
                    Some(_) => {
                        let ns = r.namespace.clone();
                        let out = st.remove(&r.resource, &ns, name).unwrap();
                        respond_json(send, 200, &out);
                    }
                }
            }
            _ => respond_json(send, 405, &status(405, "MethodNotAllowed", "not served")),
        }
        drop(st);
        self.wake.notify_one();
        None
    }

    /// Creates or replaces an object (as `kubectl apply` would), by its
    /// resource plural; a namespaced object without a namespace gets `NS`.
    pub fn put(&self, resource: &str, obj: Value) {
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.state.lock().unwrap().store(resource, &ns, obj);
        self.wake.notify_one();
    }

    /// Deletes an object (no finalizers: gone at once).
    pub fn delete(&self, resource: &str, ns: &str, name: &str) {
        self.state.lock().unwrap().remove(resource, ns, name);
        self.wake.notify_one();
    }

    /// An object, if present.
    pub fn get(&self, resource: &str, ns: &str, name: &str) -> Option<Value> {
        let key = (resource.to_string(), ns.to_string(), name.to_string());
        self.state.lock().unwrap().objects.get(&key).cloned()
    }

    /// The next `times` requests `method` on a path ending with `path_suffix` fail with `code`.
    pub fn fail(&self, method: &str, path_suffix: &str, code: u16, times: usize) {
        self.state.lock().unwrap().faults.push(Fault {
            method: method.into(),
            path_suffix: path_suffix.into(),
            code,
            times,
        });
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Requests so far that match `f`.
    pub fn count(&self, f: impl Fn(&Seen) -> bool) -> usize {
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| f(s))
            .count()
    }

    /// Waits (up to `timeout`) until `f` holds for the cluster.
    pub async fn wait_for(&self, what: &str, timeout: Duration, f: impl Fn(&Cluster) -> bool) {
        let end = Instant::now() + timeout;
        while !f(self) {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A client on an in-memory API server.
pub fn cluster() -> (kube::Client, Cluster) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(svc, NS), Cluster::serve(handle))
}

impl Cluster {
    /// Every request so far is allowed by deploy/operator/rbac.yaml
    /// (`check_rbac_requests`); returns what they needed.
    pub fn check_rbac(&self) -> std::collections::BTreeSet<(String, String, String, bool)> {
        let reqs: Vec<(String, String, String, bool)> = self
            .seen()
            .into_iter()
            .map(|s| (s.method, s.path, s.query, s.created))
            .collect();
        super::check_rbac_requests(&reqs)
    }
}
