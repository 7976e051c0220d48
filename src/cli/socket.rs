//! Opening the attach WebSocket: TCP (and TLS for `wss://`), then the upgrade offering
//! `attach.v1` with the ticket in `Authorization`, never in the URL; no `Origin` is sent.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::WebSocketStream;

use crate::cli::api::Failure;

/// The subprotocol offered (SPEC §4).
pub const SUBPROTOCOL: &str = "attach.v1";

/// Longest wait for the TCP connect, TLS and upgrade together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A byte stream, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open attach socket.
pub type Socket = WebSocketStream<Box<dyn Io>>;

/// Connects to `url` (`ws://` or `wss://`) presenting `ticket`.
pub async fn connect(
    url: &Url,
    ticket: &str,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Socket, Failure> {
    tokio::time::timeout(CONNECT_TIMEOUT, open(url, ticket, tls))
        .await
        .unwrap_or_else(|_| {
            Err(Failure::Unreachable(
                "the attach handshake timed out".into(),
            ))
        })
}

async fn open(url: &Url, ticket: &str, tls: &Arc<rustls::ClientConfig>) -> Result<Socket, Failure> {
    let host = url
        .host_str()
        .ok_or_else(|| Failure::Local("the server URL has no host".into()))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| Failure::Local("the server URL has no port".into()))?;
    let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| Failure::Unreachable(format!("{host}:{port}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = if url.scheme() == "wss" {
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
            .map_err(|e| Failure::Local(format!("bad TLS server name {host}: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| Failure::Unreachable(format!("TLS with {host}:{port}: {e}")))?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| Failure::Local(format!("bad attach request: {e}")))?;
    let headers = req.headers_mut();
    let mut bearer = HeaderValue::from_str(&format!("Bearer {ticket}"))
        .map_err(|_| Failure::Local("the ticket is not a valid header value".into()))?;
    bearer.set_sensitive(true);
    headers.insert(header::AUTHORIZATION, bearer);
    headers.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SUBPROTOCOL),
    );
    match tokio_tungstenite::client_async(req, stream).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(resp)) => {
            let body = resp.body().as_deref().unwrap_or_default();
            Err(Failure::refused(
                resp.status().as_u16(),
                resp.headers(),
                body,
            ))
        }
        Err(e) => Err(Failure::Unreachable(format!("attach handshake: {e}"))),
    }
}
