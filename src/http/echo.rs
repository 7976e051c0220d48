//! A conformance echo endpoint for frame-level tests: the same decoder, limits and outbound
//! queue as the attach endpoint, echoing messages back. Mounted only when
//! `server.conformance_echo = true`, which prod refuses.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use attachd_actors::connection::Inbound;
use attachd_actors::outbound::{self, OutFrame};
use attachd_actors::protocol::close;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::error::ApiError;
use crate::state::AppState;
use crate::ws::socket::WsSocket;
use crate::ws::upgrade::{self, Accept, Upgraded};

/// `GET /__conformance/echo`.
pub async fn echo(req: HttpRequest, st: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if actix_http::ws::verify_handshake(req.head()).is_err() || !upgrade::can_take_socket(&req) {
        return Err(ApiError::UpgradeRequired);
    }
    let ws = &st.settings.ws;
    let mut resp = actix_http::ws::handshake_response(req.head());
    let offered_v1 = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim() == "attach.v1"));
    if offered_v1 {
        resp.insert_header((header::SEC_WEBSOCKET_PROTOCOL, "attach.v1"));
    }
    let (tx, rx) = outbound::channel(ws.max_outbound_bytes);
    let max_message = ws.max_message_bytes;
    Ok(upgrade::switching_protocols(
        resp,
        Accept::new(move |up: Upgraded| {
            let mut socket = WsSocket::new(up.io, &up.early, up.permit, rx, max_message);
            actix_web::rt::spawn(async move {
                while let Some(frame) = socket.next().await {
                    let out = match frame {
                        Inbound::Text(t) => OutFrame::Text(Bytes::from(t)),
                        Inbound::Binary(b) => OutFrame::Binary(b),
                        Inbound::Ping(p) => OutFrame::Pong(p),
                        Inbound::Pong | Inbound::Silent => continue,
                        Inbound::Close(_) => OutFrame::Close(close::NORMAL),
                        Inbound::Violation(code) => OutFrame::Close(code),
                    };
                    let last = matches!(out, OutFrame::Close(_));
                    if tx.push(out).is_err() || last {
                        break;
                    }
                }
                // Write the close and wait (bounded by the socket) for the peer's close or EOF.
                while socket.next().await.is_some() {}
            });
        }),
    ))
}
