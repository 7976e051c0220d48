//! Minimal server-side WebSocket plumbing on actix-http's frame codec: the 101 response with the
//! negotiated subprotocol, a bounded outbound queue, and whole inbound messages (fragments joined).

use std::collections::VecDeque;

use actix_codec::{Decoder, Encoder};
use actix_http::{
    body::{BodyStream, MessageBody},
    ws::{self, Codec, Frame, Item, Message, ProtocolError},
};
use actix_web::{http::header, web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::mpsc;

/// Largest inbound message the emulator accepts (the kubelet's limit is larger; tests never get close).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// Outbound messages queued before the session task waits for the client.
const OUTBOUND_CAPACITY: usize = 64;

/// A whole inbound message.
#[derive(Debug)]
pub enum Inbound {
    /// A binary message (fragments already joined).
    Binary(Bytes),
    /// A text message; the channel protocols never use text.
    Text,
    /// A ping with its payload; the caller answers with a pong.
    Ping(Bytes),
    /// The client started the closing handshake.
    Close,
}

/// Sending half of an upgraded connection; dropping it ends the response (and the connection).
#[derive(Clone)]
pub struct Outbound {
    tx: mpsc::Sender<Message>,
}

impl Outbound {
    /// Queues one message; `false` once the client is gone.
    pub async fn send(&self, msg: Message) -> bool {
        self.tx.send(msg).await.is_ok()
    }

    /// Queues a binary frame whose first byte is `channel`; `false` once the client is gone.
    pub async fn channel(&self, channel: u8, data: &[u8]) -> bool {
        let mut frame = BytesMut::with_capacity(data.len() + 1);
        frame.extend_from_slice(&[channel]);
        frame.extend_from_slice(data);
        self.send(Message::Binary(frame.freeze())).await
    }

    /// Sends a normal close frame.
    pub async fn close(&self) {
        let reason = ws::CloseReason {
            code: ws::CloseCode::Normal,
            description: None,
        };
        let _ = self.send(Message::Close(Some(reason))).await;
    }
}

/// Receiving half of an upgraded connection.
pub struct InboundStream {
    payload: web::Payload,
    codec: Codec,
    buf: BytesMut,
    fragments: Option<(bool, BytesMut)>,
    ready: VecDeque<Inbound>,
}

impl InboundStream {
    /// Next whole message; `None` when the client is gone or broke the protocol.
    pub async fn next(&mut self) -> Option<Inbound> {
        loop {
            if let Some(msg) = self.ready.pop_front() {
                return Some(msg);
            }
            match self.codec.decode(&mut self.buf) {
                Ok(Some(frame)) => {
                    if let Err(err) = self.accept(frame) {
                        tracing::debug!(%err, "dropping websocket after a protocol error");
                        return None;
                    }
                    continue;
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::debug!(%err, "dropping websocket after a protocol error");
                    return None;
                }
            }
            match self.payload.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(_)) | None => return None,
            }
        }
    }

    fn accept(&mut self, frame: Frame) -> Result<(), ProtocolError> {
        let msg = match frame {
            Frame::Binary(b) => Inbound::Binary(b),
            Frame::Text(_) => Inbound::Text,
            Frame::Ping(p) => Inbound::Ping(p),
            Frame::Pong(_) => return Ok(()),
            Frame::Close(_) => Inbound::Close,
            Frame::Continuation(item) => match self.join(item)? {
                Some(msg) => msg,
                None => return Ok(()),
            },
        };
        self.ready.push_back(msg);
        Ok(())
    }

    fn join(&mut self, item: Item) -> Result<Option<Inbound>, ProtocolError> {
        let (binary, data, last) = match item {
            Item::FirstBinary(b) => (Some(true), b, false),
            Item::FirstText(b) => (Some(false), b, false),
            Item::Continue(b) => (None, b, false),
            Item::Last(b) => (None, b, true),
        };
        if let Some(binary) = binary {
            if self.fragments.is_some() {
                return Err(ProtocolError::ContinuationStarted);
            }
            self.fragments = Some((binary, BytesMut::new()));
        }
        let Some((binary, buf)) = self.fragments.as_mut() else {
            return Err(ProtocolError::ContinuationNotStarted);
        };
        if buf.len() + data.len() > MAX_MESSAGE_BYTES {
            return Err(ProtocolError::Overflow);
        }
        buf.extend_from_slice(&data);
        if !last {
            return Ok(None);
        }
        let binary = *binary;
        let whole = self
            .fragments
            .take()
            .map(|(_, b)| b.freeze())
            .unwrap_or_default();
        Ok(Some(if binary {
            Inbound::Binary(whole)
        } else {
            Inbound::Text
        }))
    }
}

/// Completes the upgrade with `protocol` selected; the caller drives the returned halves.
/// Fails with a human-readable reason when the request is not a valid WebSocket handshake.
pub fn upgrade(
    req: &HttpRequest,
    payload: web::Payload,
    protocol: &'static str,
) -> Result<(HttpResponse, Outbound, InboundStream), String> {
    let mut builder = ws::handshake(req.head()).map_err(|err| err.to_string())?;
    builder.insert_header((header::SEC_WEBSOCKET_PROTOCOL, protocol));
    let (tx, rx) = mpsc::channel::<Message>(OUTBOUND_CAPACITY);
    let body =
        futures_util::stream::unfold((Some(rx), Codec::new()), |(rx, mut codec)| async move {
            let mut rx = rx?;
            let msg = rx.recv().await?;
            let closing = matches!(msg, Message::Close(_));
            let mut out = BytesMut::new();
            if let Err(err) = codec.encode(msg, &mut out) {
                tracing::warn!(%err, "websocket frame encoding failed");
                return None;
            }
            // Nothing may follow a close frame: the stream (and the connection) ends after it.
            let rx = (!closing).then_some(rx);
            Some((Ok::<Bytes, actix_web::Error>(out.freeze()), (rx, codec)))
        });
    let response = builder
        .message_body(BodyStream::new(body).boxed())
        .map_err(|err| err.to_string())?;
    let inbound = InboundStream {
        payload,
        codec: Codec::new().max_size(MAX_MESSAGE_BYTES),
        buf: BytesMut::new(),
        fragments: None,
        ready: VecDeque::new(),
    };
    Ok((HttpResponse::from(response), Outbound { tx }, inbound))
}
