//! A conformance echo endpoint for frame-level tests: the same decoder, limits and outbound
//! queue as the attach endpoint, echoing messages back. Mounted only when
//! `server.conformance_echo = true`, which prod refuses.

use actix_web::body::MessageBody;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use attachd_actors::connection::Inbound;
use attachd_actors::outbound::{self, OutFrame};
use attachd_actors::protocol::close;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::error::ApiError;
use crate::state::AppState;
use crate::ws::body::FrameBody;
use crate::ws::decode::FrameDecoder;

/// `GET /__conformance/echo`.
pub async fn echo(
    req: HttpRequest,
    payload: web::Payload,
    st: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if actix_http::ws::verify_handshake(req.head()).is_err() {
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
    let mut decoder = FrameDecoder::new(payload, ws.max_message_bytes);
    actix_web::rt::spawn(async move {
        while let Some(frame) = decoder.next().await {
            let out = match frame {
                Inbound::Text(t) => OutFrame::Text(Bytes::from(t)),
                Inbound::Binary(b) => OutFrame::Binary(b),
                Inbound::Ping(p) => OutFrame::Pong(p),
                Inbound::Pong => continue,
                Inbound::Close(_) => OutFrame::Close(close::NORMAL),
                Inbound::Violation(code) => OutFrame::Close(code),
            };
            let last = matches!(out, OutFrame::Close(_));
            if tx.push(out).is_err() || last {
                break;
            }
        }
    });
    let body = actix_web::body::BodyStream::new(FrameBody::new(rx)).boxed();
    resp.message_body(body)
        .map(HttpResponse::from)
        .map_err(|e| ApiError::Internal(e.to_string()))
}
