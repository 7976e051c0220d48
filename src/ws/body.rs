//! The outbound queue as a response body: each queued frame becomes one unmasked server frame.
//! A close frame ends the body, which makes actix-http close the socket.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::Error;
use attachd_actors::outbound::{OutFrame, OutboundRx};
use attachd_actors::protocol::close;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;

/// Streams a connection's outbound queue as WebSocket frames.
pub struct FrameBody {
    rx: OutboundRx,
    finished: bool,
}

impl FrameBody {
    /// Wraps a queue.
    pub fn new(rx: OutboundRx) -> Self {
        FrameBody {
            rx,
            finished: false,
        }
    }
}

/// Encodes one server frame (FIN set, unmasked).
pub fn encode(opcode: u8, payload: &[u8]) -> Bytes {
    let len = payload.len();
    let mut out = BytesMut::with_capacity(len + 10);
    out.put_u8(0x80 | opcode);
    if len < 126 {
        out.put_u8(len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.put_u8(126);
        out.put_u16(len as u16);
    } else {
        out.put_u8(127);
        out.put_u64(len as u64);
    }
    out.extend_from_slice(payload);
    out.freeze()
}

fn close_payload(code: u16) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(close::reason(code).as_bytes());
    p
}

impl Stream for FrameBody {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.rx).poll_next(cx) {
            Poll::Ready(Some(frame)) => {
                let bytes = match frame {
                    OutFrame::Text(b) => encode(0x1, &b),
                    OutFrame::Binary(b) => encode(0x2, &b),
                    OutFrame::Ping(b) => encode(0x9, &b),
                    OutFrame::Pong(b) => encode(0xA, &b[..b.len().min(125)]),
                    OutFrame::Close(code) => {
                        self.finished = true;
                        encode(0x8, &close_payload(code))
                    }
                };
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lengths() {
        assert_eq!(&encode(2, b"hi")[..], &[0x82, 2, b'h', b'i']);
        assert_eq!(&encode(2, &[0; 200])[..4], &[0x82, 126, 0, 200]);
        assert_eq!(
            &encode(2, &vec![0; 70000])[..10],
            &[0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]
        );
    }
}
