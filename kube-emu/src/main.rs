//! kube-emu: an EMULATION of the few Kubernetes API endpoints attachd uses, for tests. It is not a
//! Kubernetes server: pods are local `/bin/sh` processes on real PTYs behind the real pod API shapes.

mod api;
mod cli;
mod pods;
mod remotecommand;
mod selector;
mod ws;

use std::{io::Write, net::TcpListener, sync::Arc};

use actix_web::{middleware, web, App, HttpServer};
use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::{api::AppState, cli::Args, pods::Registry};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let token = args.bearer_token()?;
    let shell: Vec<String> = args.shell.split_whitespace().map(str::to_owned).collect();
    let registry = Arc::new(Registry::start(&args.namespace, args.pods, &shell)?);
    let listener = TcpListener::bind(args.listen)?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this line to learn the port; it must come first on stdout.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{addr}")?;
    stdout.flush()?;
    drop(stdout);
    tracing::info!(%addr, namespace = %args.namespace, "kube-emu serves an EMULATION of the Kubernetes pod API (not a Kubernetes server)");

    let state = web::Data::new(AppState {
        registry: Arc::clone(&registry),
        token,
        max_protocol: args.max_protocol,
    });
    let served = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(middleware::from_fn(api::require_bearer))
            .configure(api::routes)
    })
    .workers(args.workers.max(1))
    .shutdown_timeout(1)
    // Close a finished stream's TCP connection at once, as the API server does; lingering for the
    // client's FIN would delay the end a client like tungstenite waits for.
    .client_disconnect_timeout(std::time::Duration::ZERO)
    .listen(listener)?
    .run()
    .await;
    registry.shutdown();
    served
}
