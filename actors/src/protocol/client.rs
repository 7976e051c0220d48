//! Client → server JSON messages (`ClientMessage`, `ControlAction`): parsing and bounds, with
//! error texts that never repeat the caller's input.

use serde::{Deserialize, Serialize};

/// Client → server JSON messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ClientMessage {
    /// New terminal size (holder only).
    Resize {
        /// Columns, 1..=1000.
        cols: u32,
        /// Rows, 1..=1000.
        rows: u32,
    },
    /// Acquire, release, request, grant or deny control (driver role only).
    Control {
        /// What to do.
        action: ControlAction,
        /// The requester's connection id (`grant` and `deny` only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// Output up to `offset` has been rendered (SPEC §8 flow control).
    Ack {
        /// Output offset.
        offset: u64,
    },
}

/// `control.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ControlAction {
    /// Take the free seat.
    Acquire,
    /// Give the seat up.
    Release,
    /// Ask the holder for the seat (acquires it when free).
    Request,
    /// The holder hands the seat to the requester `to`.
    Grant,
    /// The holder refuses `to`'s request.
    Deny,
}

/// Longest accepted connection id in `control.to`.
pub const MAX_CONNECTION_ID: usize = 64;

/// Largest accepted terminal dimension.
pub const MAX_TERMINAL_DIM: u32 = 1000;

impl ClientMessage {
    /// Serializes the message to its JSON text (what a client sends).
    pub fn to_json(&self) -> String {
        // Serializing these plain enums cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// Parses and validates a client text message; the error text is safe to echo.
    pub fn parse(text: &str) -> Result<Self, String> {
        // The error text never repeats the caller's input.
        let msg: ClientMessage = serde_json::from_str(text).map_err(|e| {
            if e.is_syntax() || e.is_eof() {
                String::from("message is not valid JSON")
            } else {
                String::from("unknown message type or invalid fields")
            }
        })?;
        if let ClientMessage::Control { action, to } = &msg {
            let answer = matches!(action, ControlAction::Grant | ControlAction::Deny);
            match to {
                None if answer => return Err(String::from("grant and deny need `to`")),
                Some(_) if !answer => {
                    return Err(String::from("`to` belongs to grant and deny only"))
                }
                Some(t) if t.is_empty() || t.len() > MAX_CONNECTION_ID => {
                    return Err(String::from("`to` is not a connection id"))
                }
                _ => {}
            }
        }
        if let ClientMessage::Resize { cols, rows } = msg {
            if !(1..=MAX_TERMINAL_DIM).contains(&cols) || !(1..=MAX_TERMINAL_DIM).contains(&rows) {
                return Err(format!(
                    "resize out of range: cols and rows must be 1..={MAX_TERMINAL_DIM}"
                ));
            }
        }
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_serialize_as_clients_send_them() {
        let ack = ClientMessage::Ack { offset: 9 };
        assert_eq!(ack.to_json(), r#"{"type":"ack","offset":9}"#);
        assert_eq!(ClientMessage::parse(&ack.to_json()), Ok(ack));
        let resize = ClientMessage::Resize { cols: 80, rows: 24 };
        assert_eq!(resize.to_json(), r#"{"type":"resize","cols":80,"rows":24}"#);
        let acquire = ClientMessage::Control {
            action: ControlAction::Acquire,
            to: None,
        };
        assert_eq!(
            acquire.to_json(),
            r#"{"type":"control","action":"acquire"}"#
        );
    }

    #[test]
    fn parses_and_bounds_client_messages() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"resize","cols":80,"rows":24}"#),
            Ok(ClientMessage::Resize { cols: 80, rows: 24 })
        );
        assert!(ClientMessage::parse(r#"{"type":"resize","cols":0,"rows":24}"#).is_err());
        assert!(ClientMessage::parse(r#"{"type":"resize","cols":1001,"rows":24}"#).is_err());
        assert!(ClientMessage::parse(r#"{"type":"resize","cols":-1,"rows":24}"#).is_err());
        assert_eq!(
            ClientMessage::parse(r#"{"type":"control","action":"acquire"}"#),
            Ok(ClientMessage::Control {
                action: ControlAction::Acquire,
                to: None
            })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"control","action":"grant","to":"c-1"}"#),
            Ok(ClientMessage::Control {
                action: ControlAction::Grant,
                to: Some("c-1".into())
            })
        );
        assert!(ClientMessage::parse(r#"{"type":"control","action":"deny"}"#).is_err());
        assert!(ClientMessage::parse(r#"{"type":"control","action":"request","to":"c"}"#).is_err());
        assert!(ClientMessage::parse(r#"{"type":"control","action":"grant","to":""}"#).is_err());
        assert!(ClientMessage::parse(r#"{"type":"control","action":"steal"}"#).is_err());
        assert!(ClientMessage::parse(r#"{"type":"nope"}"#).is_err());
        assert_eq!(
            ClientMessage::parse(r#"{"type":"ack","offset":12345}"#),
            Ok(ClientMessage::Ack { offset: 12345 })
        );
        assert!(ClientMessage::parse(r#"{"type":"ack","offset":-1}"#).is_err());
        assert!(ClientMessage::parse(r#"{"type":"ack"}"#).is_err());
        assert!(ClientMessage::parse("not json").is_err());
    }
}
