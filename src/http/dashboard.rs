//! The operator's view of the caller's tenant: every session with its holder, participants,
//! idle deadline and (when asked) its screen as text and attributes, once or as a live stream.
//!
//! Nothing here runs unless someone looks: summaries and thumbnails are built per request, the
//! stream ticks once a second and sends only what changed, and hubs cache thumbnails for 1 s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use attachd_actors::hub::{HubSnapshot, Snapshot, Thumb};
use attachd_actors::protocol::{HolderView, Role, TermSize};
use attachd_actors::term::thumb::Thumbnail;
use bytes::Bytes;
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::http::api::visible;
use crate::http::extract::Auth;
use crate::scope::Scope;
use crate::sessions::SessionView;
use crate::state::AppState;

type State = web::Data<AppState>;

/// How often an open stream looks for changes.
pub const STREAM_TICK: Duration = Duration::from_secs(1);
/// A comment line after this long without a change, so proxies keep the stream open.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// One session as the dashboard shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionSummary {
    /// The session.
    #[serde(flatten)]
    pub session: SessionView,
    /// The pod's name for a kube session.
    pub pod: Option<String>,
    /// When the session closes for idleness (RFC 3339); absent while no hub runs here.
    pub idle_deadline: Option<String>,
    /// The control holder, if any.
    #[schema(value_type = Option<HolderSchema>)]
    pub holder: Option<HolderView>,
    /// Driver-role participants connected to this replica.
    pub drivers: usize,
    /// Observers connected to this replica.
    pub observers: usize,
    /// Output bytes produced so far.
    pub output_offset: u64,
    /// The terminal's size.
    #[schema(value_type = Option<Object>)]
    pub size: Option<TermSize>,
    /// The screen (stream with `thumbnails=true` only).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "shared_thumbnail"
    )]
    #[schema(value_type = Option<Object>)]
    pub thumbnail: Option<Arc<Thumbnail>>,
}

/// The control holder as the OpenAPI describes it (the shape of [`HolderView`]).
#[derive(ToSchema)]
#[schema(as = Holder)]
#[allow(dead_code)]
pub struct HolderSchema {
    /// The connection that holds control.
    connection_id: String,
    /// Its authenticated subject.
    subject: String,
    /// Its display name (the token's `name` or `preferred_username`), when it has one.
    name: Option<String>,
}

/// A thumbnail shared with the hub's cache, written as the thumbnail itself.
fn shared_thumbnail<S: serde::Serializer>(
    t: &Option<Arc<Thumbnail>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    t.as_deref().serialize(s)
}

/// `GET /api/v1/dashboard` response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Dashboard {
    /// Who is looking, and what they may do (the client shows only the buttons that work).
    pub viewer: Viewer,
    /// Sessions of the caller's tenant, oldest first.
    pub sessions: Vec<SessionSummary>,
}

/// The caller of the dashboard.
#[derive(Debug, Serialize, ToSchema)]
pub struct Viewer {
    /// Subject.
    pub subject: String,
    /// Tenant.
    pub tenant: String,
    /// Scopes held.
    pub scopes: Vec<&'static str>,
}

impl Viewer {
    fn of(p: &Principal) -> Self {
        Viewer {
            subject: p.subject.clone(),
            tenant: p.tenant.clone(),
            scopes: p.scopes.iter().map(|s| s.as_str()).collect(),
        }
    }
}

/// Query of `GET /api/v1/dashboard/events`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct StreamParams {
    /// Include each session's screen (refreshed at most once per second).
    pub thumbnails: Option<bool>,
}

fn summary(
    view: SessionView,
    snap: Option<HubSnapshot>,
    thumb: Option<Arc<Thumbnail>>,
) -> SessionSummary {
    let pod = (view.backend == "kube").then(|| view.id.clone());
    let count = |role| {
        snap.as_ref().map_or(0, |s| {
            s.participants.iter().filter(|p| p.role == role).count()
        })
    };
    SessionSummary {
        drivers: count(Role::Driver),
        observers: count(Role::Observer),
        pod,
        idle_deadline: snap.as_ref().map(|s| s.idle_deadline.clone()),
        holder: snap.as_ref().and_then(|s| s.control.clone()),
        output_offset: snap.as_ref().map_or(0, |s| s.output_offset),
        size: snap.as_ref().map(|s| s.size),
        thumbnail: thumb,
        session: view,
    }
}

/// Every session of `p`'s tenant, with thumbnails when `thumbnails`.
async fn summaries(
    st: &AppState,
    p: &Principal,
    thumbnails: bool,
) -> Result<Vec<SessionSummary>, ApiError> {
    let views = st.catalog.list(&p.tenant).await?;
    let rows = views.into_iter().map(|view| async move {
        let Some((_, hub)) = st.catalog.sessions.get(&view.id, &p.tenant) else {
            return summary(view, None, None);
        };
        let snap = hub.send(Snapshot).await.ok();
        let thumb = match thumbnails {
            true => hub.send(Thumb).await.ok().flatten(),
            false => None,
        };
        summary(view, snap, thumb)
    });
    Ok(join_all(rows).await)
}

/// The caller's sessions with holder, participants and idle deadline.
#[utoipa::path(get, path = "/api/v1/dashboard", tag = "dashboard",
    responses((status = 200, body = Dashboard), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn dashboard(st: State, Auth(p): Auth) -> Result<HttpResponse, ApiError> {
    p.require(Scope::SessionsRead)?;
    Ok(HttpResponse::Ok().json(Dashboard {
        sessions: summaries(&st, &p, false).await?,
        viewer: Viewer::of(&p),
    }))
}

/// The session's visible screen as rows of text runs with attributes; 204 while no terminal
/// runs on this replica (a pod nobody attached to here).
#[utoipa::path(get, path = "/api/v1/sessions/{id}/thumbnail", tag = "dashboard",
    params(("id" = String, Path, description = "session id")),
    responses((status = 200, body = Object), (status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn thumbnail(
    st: State,
    Auth(p): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (_, hub) = visible(&st, &p, &id).await?;
    p.require(Scope::SessionsRead)?;
    let thumb = match hub {
        Some(h) => h.send(Thumb).await.ok().flatten(),
        None => None,
    };
    Ok(match thumb {
        Some(t) => HttpResponse::Ok().json(&*t),
        None => HttpResponse::NoContent().finish(),
    })
}

/// Server-sent events: `event: sessions` with the dashboard (as `GET /api/v1/dashboard`, plus
/// thumbnails when asked) whenever it changes, checked once a second. Ends when the server
/// drains or after `ws.max_lifetime`; clients reconnect.
#[utoipa::path(get, path = "/api/v1/dashboard/events", tag = "dashboard", params(StreamParams),
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn events(
    st: State,
    Auth(p): Auth,
    q: web::Query<StreamParams>,
) -> Result<HttpResponse, ApiError> {
    p.require(Scope::SessionsRead)?;
    let thumbnails = q.thumbnails.unwrap_or(false);
    let until = Instant::now() + st.settings.ws.max_lifetime;
    let watch = Watch {
        st,
        p,
        thumbnails,
        until,
        last: None,
        last_sent: Instant::now(),
        first: true,
    };
    // One event is produced per poll: the body is pulled as the socket drains, so a slow
    // reader holds at most one event here and misses intermediate states, never queues them.
    let body = futures_util::stream::unfold(watch, |mut w| async move {
        let chunk = w.next().await?;
        Some((Ok::<_, actix_web::Error>(chunk), w))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// The state of one open stream.
struct Watch {
    st: State,
    p: Principal,
    thumbnails: bool,
    until: Instant,
    last: Option<String>,
    last_sent: Instant,
    first: bool,
}

impl Watch {
    /// The next chunk to send, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if !self.first {
                actix_web::rt::time::sleep(STREAM_TICK).await;
            }
            self.first = false;
            if self.st.is_draining() || Instant::now() >= self.until {
                return None;
            }
            let sessions = summaries(&self.st, &self.p, self.thumbnails).await;
            let data = match sessions {
                Ok(sessions) => serde_json::to_string(&Dashboard {
                    viewer: Viewer::of(&self.p),
                    sessions,
                })
                .ok()?,
                // A backend listing failed (the Kubernetes API): log it, keep the stream.
                Err(e) => {
                    tracing::warn!(error = %e, "dashboard listing failed");
                    continue;
                }
            };
            if self.last.as_deref() != Some(data.as_str()) {
                let chunk = Bytes::from(format!("event: sessions\ndata: {data}\n\n"));
                self.last = Some(data);
                self.last_sent = Instant::now();
                return Some(chunk);
            }
            if self.last_sent.elapsed() >= KEEPALIVE {
                self.last_sent = Instant::now();
                return Some(Bytes::from_static(b": keepalive\n\n"));
            }
        }
    }
}
