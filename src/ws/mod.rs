//! The WebSocket frame layer of the attach endpoint, on actix-http's RFC 6455 codec: decoding
//! client frames under attachd's limits, and writing the outbound queue as frames.

pub mod body;
pub mod decode;
