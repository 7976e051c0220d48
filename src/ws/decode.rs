//! Client frames → `Inbound`, without I/O: reassembles fragments within `ws.max_message_bytes`,
//! checks UTF-8 of whole text messages, and turns every framing violation into its close code.

use actix_codec::Decoder;
use actix_http::ws::{Codec, Frame, Item, ProtocolError};
use attachd_actors::connection::Inbound;
use attachd_actors::protocol::close;
use bytes::{Bytes, BytesMut};

/// Decodes bytes read from a client into frames. After a close or a violation it is done.
pub struct FrameDecoder {
    buf: BytesMut,
    codec: Codec,
    max_message: usize,
    partial: Option<(bool, BytesMut)>,
    done: bool,
}

impl FrameDecoder {
    /// A decoder refusing messages over `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::new(),
            codec: Codec::new().max_size(max_message),
            max_message,
            partial: None,
            done: false,
        }
    }

    /// Appends bytes read from the socket (ignored once done).
    pub fn feed(&mut self, bytes: &[u8]) {
        if !self.done {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Whether a close or a violation ended the stream of frames.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The next complete frame, if the buffer holds one. An idle decoder holds no buffer.
    pub fn next_message(&mut self) -> Option<Inbound> {
        if self.done {
            return None;
        }
        let item = self.next_frame();
        match &item {
            Some(Inbound::Violation(_) | Inbound::Close(_)) => {
                self.done = true;
                self.buf = BytesMut::new();
                self.partial = None;
            }
            None if self.buf.is_empty() => self.buf = BytesMut::new(),
            _ => {}
        }
        item
    }

    /// Refuses a frame as soon as its header declares too much, before buffering it.
    fn check_header(&self) -> Option<Inbound> {
        let b = &self.buf[..];
        if b.len() < 2 {
            return None;
        }
        let opcode = b[0] & 0x0F;
        let len = match b[1] & 0x7F {
            126 if b.len() >= 4 => u64::from(u16::from_be_bytes([b[2], b[3]])),
            127 if b.len() >= 10 => {
                u64::from_be_bytes([b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9]])
            }
            126 | 127 => return None,
            n => u64::from(n),
        };
        if opcode >= 0x8 && len > 125 {
            return Some(Inbound::Violation(close::PROTOCOL_ERROR));
        }
        let already: u64 = match (opcode, &self.partial) {
            (0x0, Some((_, acc))) => acc.len() as u64,
            _ => 0,
        };
        if already.saturating_add(len) > self.max_message as u64 {
            return Some(Inbound::Violation(close::MESSAGE_TOO_BIG));
        }
        None
    }

    /// Decodes one frame from the buffer, if complete.
    fn next_frame(&mut self) -> Option<Inbound> {
        loop {
            if let Some(v) = self.check_header() {
                return Some(v);
            }
            let frame = match self.codec.decode(&mut self.buf) {
                Ok(Some(f)) => f,
                Ok(None) => return None,
                Err(e) => return Some(Inbound::Violation(violation_code(&e))),
            };
            match frame {
                Frame::Text(b) => return Some(text(b)),
                Frame::Binary(b) => return Some(Inbound::Binary(b)),
                Frame::Ping(b) => return Some(Inbound::Ping(b)),
                Frame::Pong(_) => return Some(Inbound::Pong),
                Frame::Close(reason) => {
                    return Some(Inbound::Close(reason.map(|r| u16::from(r.code))))
                }
                Frame::Continuation(item) => {
                    if let Some(done) = self.continuation(item) {
                        return Some(done);
                    }
                }
            }
        }
    }

    fn continuation(&mut self, item: Item) -> Option<Inbound> {
        let (first, is_text, data, last) = match item {
            Item::FirstText(b) => (true, true, b, false),
            Item::FirstBinary(b) => (true, false, b, false),
            Item::Continue(b) => (false, false, b, false),
            Item::Last(b) => (false, false, b, true),
        };
        if first {
            self.partial = Some((is_text, BytesMut::new()));
        }
        let Some((is_text, acc)) = self.partial.as_mut() else {
            return Some(Inbound::Violation(close::PROTOCOL_ERROR));
        };
        if acc.len() + data.len() > self.max_message {
            self.partial = None;
            return Some(Inbound::Violation(close::MESSAGE_TOO_BIG));
        }
        acc.extend_from_slice(&data);
        let is_text = *is_text;
        if !last {
            return None;
        }
        let (_, acc) = self.partial.take()?;
        let whole = acc.freeze();
        Some(if is_text {
            text(whole)
        } else {
            Inbound::Binary(whole)
        })
    }
}

fn text(b: Bytes) -> Inbound {
    match String::from_utf8(b.to_vec()) {
        Ok(s) => Inbound::Text(s),
        Err(_) => Inbound::Violation(close::INVALID_PAYLOAD),
    }
}

/// The close code for a codec error.
pub fn violation_code(e: &ProtocolError) -> u16 {
    match e {
        ProtocolError::Overflow => close::MESSAGE_TOO_BIG,
        ProtocolError::Io(io)
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<std::str::Utf8Error>()) =>
        {
            close::INVALID_PAYLOAD
        }
        _ => close::PROTOCOL_ERROR,
    }
}
