//! Starting and stopping the gateway: builds the state, binds the API and admin listeners
//! (TLS when configured), and drains on SIGTERM within `server.drain_timeout`.
//! Over 500 lines: `run` is one sequence (stores, state, listeners, serve, drain) whose steps
//! share its locals; the TLS and drain helpers beside it serve only that sequence.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_http::body::MessageBody;
use actix_http::error::DispatchError;
use actix_http::{HttpService, Protocol, Request, Response};
use actix_service::{
    fn_service, map_config, IntoServiceFactory, ServiceFactory, ServiceFactoryExt,
};
use actix_tls::accept::rustls_0_23::{Acceptor, TlsStream};
use actix_tls::accept::TlsError;
use actix_web::dev::{AppConfig, ServiceRequest, ServiceResponse};
use actix_web::rt::net::TcpStream;
use actix_web::{middleware, web, App, HttpServer};
use attachd_actors::audit::record::{outcomes, types};
use attachd_actors::audit::{Audit, AuditConfig, AuditEvent};
use attachd_actors::hub::Drain;
use attachd_actors::lease::LocalLeases;
use attachd_actors::limits::LocalLimiter;
use attachd_actors::metrics;
use futures_util::future::ready;

use crate::auth::{Authenticator, Principal};
use crate::capacity::{self, Capacity};
use crate::catalog::{Catalog, KubeCatalog};
use crate::config::Settings;
use crate::http;
use crate::http::wire::{Draining, Guarded};
use crate::listen::{BindError, Listeners};
use crate::scope::Scope;
use crate::secret::new_secret;
use crate::state::AppState;
use crate::telemetry;
use crate::tickets::LocalTickets;
use crate::ws::upgrade::UpgradeFactory;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad configuration (names the key).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The audit log could not be opened or its chain does not verify.
    #[error("audit log: {0}")]
    Audit(String),
    /// The recorder could not start.
    #[error("recording: {0}")]
    Recording(String),
    /// A listener could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// TLS material could not be loaded.
    #[error("{key}: {reason}")]
    Tls {
        /// The config key.
        key: &'static str,
        /// What failed.
        reason: String,
    },
    /// The server failed while running.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

fn tls_config(s: &Settings) -> Result<Option<rustls::ServerConfig>, StartError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert), Some(key)) = (&s.server.tls_cert, &s.server.tls_key) else {
        return Ok(None);
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| StartError::Tls {
            key: "server.tls_cert",
            reason: format!("{}: {e}", cert.display()),
        })?;
    if certs.is_empty() {
        return Err(StartError::Tls {
            key: "server.tls_cert",
            reason: format!("{}: no certificate found", cert.display()),
        });
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| StartError::Tls {
        key: "server.tls_key",
        reason: format!("{}: {e}", key.display()),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Tls {
            key: "server.tls_cert",
            reason: e.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| StartError::Tls {
            key: "server.tls_key",
            reason: e.to_string(),
        })?;
    Ok(Some(cfg))
}

/// The stores that replicas share through Redis, or their per-process versions.
struct Stores {
    bus: Option<attachd_actors::redis::bus::ControlBus>,
    tickets: Arc<dyn crate::tickets::TicketStore>,
    limiter: Arc<dyn attachd_actors::limits::Limiter>,
    leases: Arc<dyn attachd_actors::lease::LeaseStore>,
    health: Option<Arc<attachd_actors::redis::RedisHealth>>,
    /// The shared connection, which also anchors the audit chain's head.
    redis: Option<attachd_actors::redis::RedisShared>,
}

async fn shared_stores(s: &Settings) -> Result<Stores, StartError> {
    use attachd_actors::redis::{lease::RedisLeases, limiter::RedisLimiter, OnError, RedisShared};
    let Some(topology) = s.redis.topology() else {
        return Ok(Stores {
            tickets: Arc::new(LocalTickets::new()),
            limiter: Arc::new(LocalLimiter::new()),
            leases: Arc::new(LocalLeases::new()),
            health: None,
            bus: None,
            redis: None,
        });
    };
    let policy = match s.redis.on_error {
        crate::config::RedisOnError::Local => OnError::Local,
        crate::config::RedisOnError::Deny => OnError::Deny,
        crate::config::RedisOnError::Allow => OnError::Allow,
    };
    let redis = RedisShared::new(&topology, &s.redis.key_prefix, policy).map_err(|e| {
        crate::config::ConfigError {
            key: s.redis.topology_key().into(),
            message: e.to_string(),
        }
    })?;
    if let Err(e) = redis.ping().await {
        tracing::error!(error = %e, "redis is not reachable at start; applying redis.on_error until it is");
    }
    // Slots of a replica that dies without closing expire after three missed heartbeats.
    let slot_ttl = s.ws.ping_interval * 3;
    Ok(Stores {
        tickets: Arc::new(crate::tickets::RedisTickets::new(redis.clone())),
        limiter: Arc::new(RedisLimiter::start(redis.clone(), slot_ttl)),
        leases: Arc::new(RedisLeases::new(redis.clone())),
        health: Some(redis.health()),
        redis: Some(redis.clone()),
        bus: Some(attachd_actors::redis::bus::ControlBus::new(
            redis.clone(),
            &format!("r-{}", uuid::Uuid::new_v4().simple()),
        )),
    })
}

/// Writes the dev token to `dev-token` beside the audit log (owner-only), for the command-line
/// client's `--token-file`; each start replaces it.
fn write_dev_token(settings: &Settings, token: &str) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = settings
        .audit
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let path = dir.join("dev-token");
    let _ = std::fs::remove_file(&path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    writeln!(f, "{token}")?;
    Ok(path)
}

/// Runs the gateway until SIGTERM/SIGINT and a completed drain.
/// Serves on `listeners` (bound first, see `listen.rs`) until SIGTERM, then drains.
pub async fn run(settings: Settings, listeners: Listeners) -> Result<(), StartError> {
    settings.validate()?;
    telemetry::init(!settings.is_dev());
    metrics::init();
    http::attach::init_metrics();
    if let Some(n) = settings.session.scrollback_bytes {
        tracing::warn!(
            scrollback_bytes = n,
            "session.scrollback_bytes is retired and ignored: joiners get a terminal snapshot \
             (session.history_lines) and resumes replay from session.replay_bytes"
        );
    }
    let tls = tls_config(&settings)?;

    let dev_token = settings.is_dev().then(|| new_secret("adt_"));
    let auth = Authenticator::new(
        &settings.auth,
        dev_token.as_deref().map(|t| {
            (
                t,
                Principal {
                    subject: "dev".into(),
                    name: None,
                    tenant: "dev".into(),
                    scopes: Scope::ALL.to_vec(),
                },
            )
        }),
    )?;

    let audit = Audit::start(AuditConfig {
        path: settings.audit.path.clone(),
        max_file_bytes: settings.audit.max_file_bytes.as_u64(),
    })
    .map_err(|e| StartError::Audit(e.to_string()))?;
    // Dev origins name the port actually bound (`:0` included).
    let origins = settings.effective_origins(listeners.api_addr().port());
    let capacity = Capacity::new(capacity::max_connections(settings.server.max_connections));
    let shared = shared_stores(&settings).await?;
    if let Some(redis) = &shared.redis {
        attachd_actors::audit::remote::anchor_in_redis(&audit, redis.clone()).await;
    }
    // The probe that the sink works (durable, like every record): until it is, health says
    // failing, so the replica is not ready and, under `deny`, refuses tickets and attaches.
    let started = AuditEvent::new(types::SERVER_STARTED, outcomes::OK)
        .field_str("version", env!("CARGO_PKG_VERSION"));
    if let Err(e) = audit.record(started).await {
        tracing::error!(error = %e, "the audit log cannot be written at start");
    }
    let kube = match settings.session.backend {
        crate::config::BackendKind::Local => None,
        crate::config::BackendKind::Kube => Some(KubeCatalog::connect(&settings).await.map_err(
            |e| crate::config::ConfigError {
                key: "kube.api_url".into(),
                message: e.to_string(),
            },
        )?),
    };
    let bus = shared.bus.clone();
    let recorder = crate::recording::start(&settings.recording, audit.clone())
        .map_err(StartError::Recording)?;
    let catalog = Catalog::new(
        &settings,
        kube,
        shared.leases.clone(),
        audit.clone(),
        bus,
        recorder.clone(),
    );
    let settings = Arc::new(settings);
    if let Some(bus) = &shared.bus {
        let registry = catalog.sessions.clone();
        actix_web::rt::spawn(bus.clone().subscribe(move |note| {
            if let Some(hub) = registry.hub(&note.session_id) {
                let _ = hub.try_send(attachd_actors::hub::RemoteControl(note));
            }
        }));
    }
    let state = web::Data::new(AppState {
        settings: settings.clone(),
        auth,
        tickets: shared.tickets,
        limiter: shared.limiter,
        leases: shared.leases,
        redis: shared.health,
        catalog,
        audit: audit.clone(),
        recorder,
        origins,
        draining: Default::default(),
        capacity: capacity.clone(),
    });

    let web_root = settings.server.web_root.clone();
    let max_body = settings.server.max_body_bytes;
    let echo = settings.server.conformance_echo;
    let has_tls = tls.is_some();
    let app_state = state.clone();
    let make_app = move || {
        let root = web_root.clone();
        App::new()
            .app_data(app_state.clone())
            .wrap(middleware::from_fn(http::json_errors))
            .wrap(middleware::from_fn(telemetry::request_log))
            .wrap(middleware::from_fn(http::deadline::body_deadline))
            .wrap(http::web::security_headers(has_tls))
            .configure(|c| http::configure(c, max_body, echo))
            .configure(|c| http::web::configure(c, &root))
    };
    let (bound, admin_bound) = (listeners.api_addr(), listeners.admin_addr());
    let builder = actix_server::Server::build()
        .shutdown_timeout(settings.server.drain_timeout.as_secs().max(1))
        .disable_signals();
    let handshake_timeout = settings.server.handshake_timeout;
    let conns = Draining::default();
    let conns_drain = conns.clone();
    // Every request runs through the app; `Upgrade: websocket` ones through `UpgradeFactory`,
    // which hands the socket of an accepted handshake to its connection (see ws::upgrade).
    // Request heads are checked (and their deadline kept) by `http::wire`, so actix-http's own
    // head timer is off and its empty error answers never happen.
    macro_rules! http_service {
        () => {
            HttpService::build()
                .client_request_timeout(Duration::ZERO)
                .client_disconnect_timeout(Duration::ZERO)
                .upgrade(UpgradeFactory(app_factory(make_app())))
                .finish(app_factory(make_app()))
        };
    }
    // Each connection takes its place in `server.max_connections` here (see capacity.rs);
    // one past the headroom is dropped, so closed, before anything is read.
    let builder = match tls {
        Some(cfg) => builder.listen("attachd", listeners.api, move || {
            tls_connections(
                cfg.clone(),
                handshake_timeout,
                conns.clone(),
                capacity.clone(),
            )
            .and_then(http_service!().map_err(TlsError::Service))
        }),
        None => builder.listen("attachd", listeners.api, move || {
            let (conns, capacity) = (conns.clone(), capacity.clone());
            fn_service(move |io: TcpStream| {
                let peer = io.peer_addr().ok();
                ready(match capacity.admit() {
                    Some(permit) => Ok((
                        Guarded::new(io, handshake_timeout, conns.clone(), permit),
                        Protocol::Http1,
                        peer,
                    )),
                    None => Err(over_capacity()),
                })
            })
            .and_then(http_service!())
        }),
    }?;
    let server = builder.run();

    let admin_state = state.clone();
    // The probes answer here whatever the API listener holds; this listener's own connections
    // are few and come out of the open-file reserve.
    let admin = HttpServer::new(move || {
        App::new()
            .app_data(admin_state.clone())
            .route("/metrics", web::get().to(http::ops::metrics))
            .route("/healthz", web::get().to(http::ops::healthz))
            .route("/readyz", web::get().to(http::ops::readyz))
    })
    .workers(1)
    .max_connections(capacity::ADMIN_CONNECTIONS)
    .disable_signals();
    let admin = admin.listen(listeners.admin)?.run();

    let scheme = if has_tls { "https" } else { "http" };
    // One line names the bound addresses (the real ports when `:0` was configured).
    tracing::info!(
        listen = %bound,
        admin = %admin_bound,
        env = ?settings.env,
        "attachd listening"
    );
    if let Some(t) = &dev_token {
        let addr = bound;
        println!("attachd dev mode: http API and web client on {scheme}://{addr}/");
        println!("  open {scheme}://{addr}/ in a browser and paste the token below (shown once):");
        println!("  dev API token: {t}");
        match write_dev_token(&settings, t) {
            Ok(path) => println!(
                "  command line: attachd sessions list --token-file {}",
                path.display()
            ),
            Err(e) => tracing::warn!(error = %e, "the dev token file could not be written"),
        }
        println!("  metrics on http://{admin_bound}/metrics");
    }

    let handle = server.handle();
    let admin_handle = admin.handle();
    let drain_state = state.clone();
    actix_web::rt::spawn(async move {
        wait_for_signal().await;
        drain(drain_state, &conns_drain, settings.server.drain_timeout).await;
        handle.stop(true).await;
        admin_handle.stop(false).await;
    });
    let (a, b) = futures_util::future::join(server, admin).await;
    a?;
    b?;
    let _ = audit.flush().await;
    Ok(())
}

/// The error that ends a connection accepted past `server.max_connections` and its headroom.
fn over_capacity() -> DispatchError {
    DispatchError::Io(std::io::Error::other("at capacity"))
}

/// TLS connections (HTTP/1.1 by ALPN) with their request heads checked by `http::wire`. A TLS
/// connection takes its place in `server.max_connections` once its handshake is done
/// (handshakes in progress are bounded by actix-tls, 256 per worker).
fn tls_connections(
    mut cfg: rustls::ServerConfig,
    head_timeout: Duration,
    drain: Draining,
    capacity: Arc<Capacity>,
) -> impl ServiceFactory<
    TcpStream,
    Config = (),
    Response = (
        Guarded<TlsStream<TcpStream>>,
        Protocol,
        Option<std::net::SocketAddr>,
    ),
    Error = TlsError<std::io::Error, DispatchError>,
    InitError = (),
> {
    cfg.alpn_protocols.insert(0, b"http/1.1".to_vec());
    Acceptor::new(cfg)
        .map_init_err(|_| ())
        .map_err(TlsError::into_service_error)
        .and_then(move |io: TlsStream<TcpStream>| {
            let peer = io.get_ref().0.peer_addr().ok();
            ready(match capacity.admit() {
                Some(permit) => Ok((
                    Guarded::new(io, head_timeout, drain.clone(), permit),
                    Protocol::Http1,
                    peer,
                )),
                None => Err(TlsError::Service(over_capacity())),
            })
        })
}

/// The app as an HTTP service. `AppConfig` only feeds `connection_info()` and `url_for`, which
/// attachd does not use (TLS-dependent headers come from the settings), so its default does.
fn app_factory<T, B>(
    app: App<T>,
) -> impl ServiceFactory<
    Request,
    Config = (),
    Response = ServiceResponse<B>,
    Error = Response<actix_http::body::BoxBody>,
    InitError = (),
>
where
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    map_config(
        app.into_factory()
            .map_err(|e: actix_web::Error| e.error_response().into()),
        |_| AppConfig::default(),
    )
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// SIGTERM: refuse new work, tell every participant `shutdown` + 1001, wait for them to go.
/// HTTP connections close once between requests, so none holds the process past its drain.
async fn drain(state: web::Data<AppState>, conns: &Draining, timeout: Duration) {
    tracing::info!("draining");
    state.draining.store(true, Ordering::Release);
    conns.start();
    for hub in state.catalog.sessions.hubs() {
        let _ = hub.send(Drain).await;
    }
    let deadline = Instant::now() + timeout.saturating_sub(Duration::from_millis(500));
    while Instant::now() < deadline {
        let open: i64 = ["driver", "observer"]
            .iter()
            .map(|r| metrics::CONNECTIONS.with_label_values(&[r]).get())
            .sum();
        if open <= 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Some(r) = &state.recorder {
        // The last chunk of every recording is sealed and chained before the audit flush.
        r.seal_all(Duration::from_millis(400)).await;
    }
    if let Err(e) = state.audit.flush().await {
        tracing::error!(error = %e, "audit flush failed during drain");
    }
    tracing::info!("drained");
}
