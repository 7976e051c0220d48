//! Wire formats of the servers under test: how stdin is framed and what a received frame
//! means (terminal output, the "attached" signal, a keep-alive to answer, a close).

use bytes::Bytes;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use attachd_actors::protocol::ServerFrame;

use crate::cli::Proto;

/// What one received WebSocket message means to a client.
#[derive(Debug)]
pub enum Decoded {
    /// Terminal output bytes.
    Output(Bytes),
    /// The server says the client is attached (attachd `hello`, terminado `setup`,
    /// socket.io namespace connect).
    Ready,
    /// A message that needs an answer on the same socket (engine.io ping → pong,
    /// engine.io open → namespace connect).
    Reply(Message),
    /// The server closed (with a close code when it gave one).
    Closed(Option<u16>),
    /// Another attachd text frame (`snapshot`, `size`, `participants`, ...).
    Frame(Box<ServerFrame>),
    /// Anything else (control frames, participant counts, pings handled by tungstenite).
    Other,
}

/// The WebSocket path for attaching to `session` (a terminado terminal name for terminado).
pub fn ws_path(proto: Proto, session: &str) -> String {
    match proto {
        Proto::Attachd => format!("/api/v1/sessions/{session}/attach"),
        Proto::Terminado => format!("/websocket/{session}"),
        Proto::Wetty => "/wetty/socket.io/?EIO=4&transport=websocket".to_string(),
        Proto::Floor => "/floor".to_string(),
    }
}

/// One stdin message carrying `data`.
pub fn encode_input(proto: Proto, data: &[u8]) -> Message {
    match proto {
        Proto::Attachd | Proto::Floor => Message::binary(data.to_vec()),
        Proto::Terminado => {
            let s = String::from_utf8_lossy(data);
            Message::text(serde_json::json!(["stdin", s]).to_string())
        }
        Proto::Wetty => {
            let s = String::from_utf8_lossy(data);
            Message::text(format!("42{}", serde_json::json!(["input", s])))
        }
    }
}

/// Interprets one received message.
pub fn decode(proto: Proto, msg: Message) -> Decoded {
    match msg {
        Message::Close(c) => Decoded::Closed(c.map(|c| u16::from(c.code))),
        Message::Binary(b) if matches!(proto, Proto::Attachd | Proto::Floor) => Decoded::Output(b),
        Message::Text(t) => match proto {
            Proto::Attachd | Proto::Floor => attachd_text(t.as_str()),
            Proto::Terminado => terminado_text(t.as_str()),
            Proto::Wetty => engine_io_text(t.as_str()),
        },
        _ => Decoded::Other,
    }
}

fn attachd_text(t: &str) -> Decoded {
    // `type` comes first in every attachd JSON frame: avoid parsing output-path frames fully.
    if t.starts_with(r#"{"type":"hello""#) {
        return Decoded::Ready;
    }
    match ServerFrame::parse(t) {
        Some(ServerFrame::Hello { .. }) => Decoded::Ready,
        Some(f) => Decoded::Frame(Box::new(f)),
        None => Decoded::Other,
    }
}

fn terminado_text(t: &str) -> Decoded {
    let Ok(Value::Array(a)) = serde_json::from_str::<Value>(t) else {
        return Decoded::Other;
    };
    match (a.first().and_then(Value::as_str), a.get(1)) {
        (Some("stdout"), Some(Value::String(s))) => Decoded::Output(Bytes::from(s.clone())),
        (Some("setup"), _) => Decoded::Ready,
        (Some("disconnect"), _) => Decoded::Closed(None),
        _ => Decoded::Other,
    }
}

/// engine.io v4 packets over WebSocket, carrying socket.io v5 packets (`4` + `0|2..`).
fn engine_io_text(t: &str) -> Decoded {
    match t.as_bytes().first() {
        // open: connect to the default namespace.
        Some(b'0') => Decoded::Reply(Message::text("40")),
        // ping → pong.
        Some(b'2') => Decoded::Reply(Message::text("3")),
        Some(b'1') => Decoded::Closed(None),
        Some(b'4') => socket_io_packet(&t[1..]),
        _ => Decoded::Other,
    }
}

fn socket_io_packet(p: &str) -> Decoded {
    if p.starts_with('0') {
        return Decoded::Ready;
    }
    if p.starts_with('1') {
        return Decoded::Closed(None);
    }
    let Some(body) = p.strip_prefix('2') else {
        return Decoded::Other;
    };
    let Ok(Value::Array(a)) = serde_json::from_str::<Value>(body) else {
        return Decoded::Other;
    };
    match (a.first().and_then(Value::as_str), a.get(1)) {
        (Some("data"), Some(Value::String(s))) => Decoded::Output(Bytes::from(s.clone())),
        (Some("logout"), _) => Decoded::Closed(None),
        _ => Decoded::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminado_frames() {
        let m = Message::text(r#"["stdout", "hi\r\n"]"#);
        assert!(matches!(decode(Proto::Terminado, m), Decoded::Output(b) if &b[..] == b"hi\r\n"));
        let m = Message::text(r#"["setup", {}]"#);
        assert!(matches!(decode(Proto::Terminado, m), Decoded::Ready));
        assert_eq!(
            encode_input(Proto::Terminado, b"a")
                .into_text()
                .unwrap()
                .as_str(),
            r#"["stdin","a"]"#
        );
    }

    #[test]
    fn socket_io_frames() {
        assert!(matches!(
            decode(Proto::Wetty, Message::text(r#"0{"sid":"x"}"#)),
            Decoded::Reply(_)
        ));
        assert!(matches!(
            decode(Proto::Wetty, Message::text(r#"40{"sid":"y"}"#)),
            Decoded::Ready
        ));
        let m = Message::text(r#"42["data","x"]"#);
        assert!(matches!(decode(Proto::Wetty, m), Decoded::Output(b) if &b[..] == b"x"));
        assert_eq!(
            encode_input(Proto::Wetty, b"z")
                .into_text()
                .unwrap()
                .as_str(),
            r#"42["input","z"]"#
        );
    }

    #[test]
    fn attachd_frames() {
        let hello = Message::text(r#"{"type":"hello","session_id":"s"}"#);
        assert!(matches!(decode(Proto::Attachd, hello), Decoded::Ready));
        let p = Message::text(r#"{"type":"participants","drivers":1,"observers":0}"#);
        assert!(matches!(
            decode(Proto::Attachd, p),
            Decoded::Frame(f) if matches!(*f, ServerFrame::Participants { drivers: 1, observers: 0 })
        ));
        let s = r#"{"type":"snapshot","offset":9,"cols":80,"rows":24,"reason":"resync","skipped_bytes":3}"#;
        assert!(matches!(
            decode(Proto::Attachd, Message::text(s)),
            Decoded::Frame(f) if matches!(*f, ServerFrame::Snapshot { cols: 80, rows: 24, .. })
        ));
        let unknown = Message::text(r#"{"type":"from-a-newer-server"}"#);
        assert!(matches!(decode(Proto::Attachd, unknown), Decoded::Other));
        let b = Message::binary(vec![1, 2]);
        assert!(matches!(decode(Proto::Attachd, b), Decoded::Output(_)));
    }

    #[test]
    fn floor_frames_are_attachds_subset() {
        let hello = Message::text(r#"{"type":"hello"}"#);
        assert!(matches!(decode(Proto::Floor, hello), Decoded::Ready));
        let b = Message::binary(vec![7]);
        assert!(matches!(decode(Proto::Floor, b), Decoded::Output(o) if o[..] == [7]));
        assert!(matches!(encode_input(Proto::Floor, b"k"), Message::Binary(b) if &b[..] == b"k"));
        assert_eq!(ws_path(Proto::Floor, ""), "/floor");
    }
}
