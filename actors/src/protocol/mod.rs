//! The attach.v1 wire vocabulary: server JSON frames, client JSON messages and close codes.
//! Pure data and parsing; sockets and framing live elsewhere.

mod client;
pub mod close;
mod control;
mod moderation;
mod server;

pub use client::{ClientMessage, ControlAction, MAX_CONNECTION_ID, MAX_TERMINAL_DIM};
pub use control::{ControlReason, HolderView, RequestOutcome, Role};
pub use moderation::ModerationState;
pub use server::{ErrorCode, HelloControl, HelloLimits, ServerFrame, SnapshotReason, TermSize};
