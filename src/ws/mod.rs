//! The WebSocket layer of the attach endpoint, on actix-http's RFC 6455 codec: the socket
//! hand-over after the handshake, decoding client frames under attachd's limits, and writing.

pub mod decode;
pub mod frame;
pub mod socket;
pub mod upgrade;
