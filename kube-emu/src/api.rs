//! The HTTP face of the emulator: bearer auth, the pod list/get/delete endpoints, `/version`,
//! and the `exec`/`attach` WebSocket upgrades, answering errors with `Status` JSON like the API server.

use std::sync::Arc;

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::{header, StatusCode},
    middleware::Next,
    web, HttpRequest, HttpResponse,
};
use serde_json::json;

use crate::{
    cli::{is_dns_subdomain, MaxProtocol},
    pods::{Pod, PodState, Registry},
    remotecommand::{self, Streams},
    selector::{FieldSelector, LabelSelector},
    ws,
};

/// Shared state of every worker.
pub struct AppState {
    /// The pods.
    pub registry: Arc<Registry>,
    /// The bearer token clients must present.
    pub token: String,
    /// Newest channel subprotocol to agree to.
    pub max_protocol: MaxProtocol,
}

/// Registers every route of the emulated API.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/version", web::get().to(version))
        .route("/api/v1/pods", web::get().to(list_all))
        .route("/api/v1/namespaces/{ns}/pods", web::get().to(list))
        .route("/api/v1/namespaces/{ns}/pods/{name}", web::get().to(get))
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}",
            web::delete().to(delete),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/exec",
            web::get().to(exec),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/attach",
            web::get().to(attach),
        )
        .default_service(web::to(|| async {
            status_response(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource",
            )
        }));
}

/// Middleware: every request needs `Authorization: Bearer <token>` (401 `Status` otherwise).
pub async fn require_bearer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let expected = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.token.clone())
        .unwrap_or_default();
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if expected.is_empty() || !constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
        let res = status_response(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
        return Ok(req.into_response(res).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An API-server style `Status` error response.
pub fn status_response(code: StatusCode, reason: &str, message: &str) -> HttpResponse {
    HttpResponse::build(code).json(json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    }))
}

/// A request refused before any work, rendered as a `Status` response.
#[derive(Debug)]
enum Refusal {
    /// 404 for a pod that does not exist.
    PodNotFound(String),
    /// 400 with a message.
    BadRequest(String),
}

impl Refusal {
    fn response(&self) -> HttpResponse {
        match self {
            Refusal::PodNotFound(name) => pod_not_found(name),
            Refusal::BadRequest(msg) => bad_request(msg),
        }
    }
}

/// What `exec` and `attach` learn from the request.
struct Prepared {
    pod: Arc<Pod>,
    pairs: Vec<(String, String)>,
    streams: Streams,
}

fn pod_not_found(name: &str) -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format!("pods \"{name}\" not found"),
        "reason": "NotFound",
        "details": {"name": name, "kind": "pods"},
        "code": 404,
    }))
}

fn bad_request(message: &str) -> HttpResponse {
    status_response(StatusCode::BAD_REQUEST, "BadRequest", message)
}

async fn version() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "major": "1",
        "minor": "34",
        "gitVersion": "v1.34.0-kube-emu",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "n/a (kube-emu emulation)",
        "compiler": "rustc",
        "platform": "linux/amd64",
    }))
}

/// Query pairs, decoded; repeated keys keep every value (`command=a&command=b`).
fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn query_value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Go's `strconv.ParseBool`, which the API server uses for these flags.
fn query_flag(pairs: &[(String, String)], key: &str) -> Result<bool, Refusal> {
    match query_value(pairs, key) {
        None => Ok(false),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False" | "") => Ok(false),
        Some(other) => Err(Refusal::BadRequest(format!(
            "invalid boolean value {other:?} for parameter {key}"
        ))),
    }
}

async fn list_all(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    list_in(&req, &state, None)
}

async fn list(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    list_in(&req, &state, Some(path.as_str()))
}

fn list_in(req: &HttpRequest, state: &AppState, namespace: Option<&str>) -> HttpResponse {
    let pairs = query_pairs(req);
    if matches!(query_flag(&pairs, "watch"), Ok(true)) {
        return bad_request("watch is not supported by kube-emu");
    }
    let labels = match LabelSelector::parse(query_value(&pairs, "labelSelector").unwrap_or("")) {
        Ok(s) => s,
        Err(msg) => return bad_request(&msg),
    };
    let fields = match FieldSelector::parse(query_value(&pairs, "fieldSelector").unwrap_or("")) {
        Ok(s) => s,
        Err(msg) => return bad_request(&msg),
    };
    let items: Vec<_> = state
        .registry
        .list(namespace)
        .into_iter()
        .filter(|pod| labels.matches(&pod.spec.labels))
        .filter(|pod| {
            fields.matches(|field| match field {
                "metadata.name" => pod.spec.name.clone(),
                "metadata.namespace" => pod.namespace.clone(),
                "status.phase" => pod.phase().to_owned(),
                _ => String::new(),
            })
        })
        .map(|pod| pod.to_k8s())
        .collect();
    HttpResponse::Ok().json(json!({
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "1"},
        "items": items,
    }))
}

async fn get(path: web::Path<(String, String)>, state: web::Data<AppState>) -> HttpResponse {
    let (ns, name) = path.into_inner();
    match state.registry.get(&ns, &name) {
        Some(pod) => HttpResponse::Ok().json(pod.to_k8s()),
        None => pod_not_found(&name),
    }
}

async fn delete(path: web::Path<(String, String)>, state: web::Data<AppState>) -> HttpResponse {
    let (ns, name) = path.into_inner();
    match state.registry.delete(&ns, &name) {
        Some(pod) => {
            tracing::info!(pod = %name, "pod deleted");
            HttpResponse::Ok().json(pod.to_k8s())
        }
        None => pod_not_found(&name),
    }
}

/// Checks shared by `exec` and `attach`, before the upgrade.
fn prepare(
    req: &HttpRequest,
    path: &(String, String),
    state: &AppState,
    verb: &str,
) -> Result<Prepared, Refusal> {
    let (ns, name) = path;
    if !is_dns_subdomain(name) {
        return Err(Refusal::PodNotFound(name.clone()));
    }
    let pod = state
        .registry
        .get(ns, name)
        .ok_or_else(|| Refusal::PodNotFound(name.clone()))?;
    let pairs = query_pairs(req);
    let tty = query_flag(&pairs, "tty")?;
    let streams = Streams {
        stdin: query_flag(&pairs, "stdin")?,
        stdout: query_flag(&pairs, "stdout")?,
        // The kubelet drops stderr when a TTY is requested (it is merged into stdout).
        stderr: query_flag(&pairs, "stderr")? && !tty,
        tty,
    };
    if !streams.stdin && !streams.stdout && !query_flag(&pairs, "stderr")? {
        return Err(Refusal::BadRequest(
            "you must specify at least 1 of stdin, stdout, stderr".into(),
        ));
    }
    if let Some(container) = query_value(&pairs, "container") {
        if !container.is_empty() && container != pod.spec.container {
            return Err(Refusal::BadRequest(format!(
                "container {container} is not valid for pod {name}"
            )));
        }
    }
    if let PodState::Exited(_) = pod.state() {
        let action = if verb == "exec" {
            "exec into"
        } else {
            "attach to"
        };
        return Err(Refusal::BadRequest(format!(
            "cannot {action} a container in a completed pod; current phase is {}",
            pod.phase()
        )));
    }
    Ok(Prepared {
        pod,
        pairs,
        streams,
    })
}

async fn exec(
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Prepared {
        pod,
        pairs,
        streams,
    } = match prepare(&req, &path, &state, "exec") {
        Ok(p) => p,
        Err(refusal) => return refusal.response(),
    };
    let argv: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    if argv.is_empty() {
        return bad_request("you must specify at least one command for the container");
    }
    let Some(proto) = remotecommand::negotiate(&req, state.max_protocol) else {
        return unsupported_protocol(state.max_protocol);
    };
    match ws::upgrade(&req, payload, proto.name()) {
        Ok((res, out, inb)) => {
            tracing::info!(pod = %pod.spec.name, protocol = proto.name(), tty = streams.tty, "exec stream opened");
            let state = pod.watch_state();
            actix_web::rt::spawn(remotecommand::exec(state, argv, streams, proto, out, inb));
            res
        }
        Err(msg) => bad_request(&msg),
    }
}

async fn attach(
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Prepared { pod, streams, .. } = match prepare(&req, &path, &state, "attach") {
        Ok(p) => p,
        Err(refusal) => return refusal.response(),
    };
    let Some(proto) = remotecommand::negotiate(&req, state.max_protocol) else {
        return unsupported_protocol(state.max_protocol);
    };
    match ws::upgrade(&req, payload, proto.name()) {
        Ok((res, out, inb)) => {
            tracing::info!(pod = %pod.spec.name, protocol = proto.name(), "attach stream opened");
            let sub = remotecommand::Subscription::new(&pod);
            actix_web::rt::spawn(remotecommand::attach(pod, sub, streams, proto, out, inb));
            res
        }
        Err(msg) => bad_request(&msg),
    }
}

fn unsupported_protocol(max: MaxProtocol) -> HttpResponse {
    let supported = match max {
        MaxProtocol::V5 => "v5.channel.k8s.io, v4.channel.k8s.io",
        MaxProtocol::V4 => "v4.channel.k8s.io",
    };
    bad_request(&format!(
        "unable to upgrade connection: no supported subprotocol offered (kube-emu supports {supported})"
    ))
}
