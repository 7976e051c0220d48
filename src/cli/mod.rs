//! The command-line client: `attachd attach` (a raw terminal on a session, with resume) and
//! `attachd sessions` (the session API as tables or JSON). Nothing in the gateway imports it.

pub mod api;
pub mod args;
pub mod asking;
pub mod attach;
pub mod client;
pub mod escape;
pub mod explain;
pub mod input;
pub mod local;
pub mod offset;
pub mod sessions;
pub mod socket;
pub mod table;
pub mod terminal;
pub mod throttle;
pub mod tls;
pub mod token;

pub use args::{AttachArgs, SessionsArgs};

/// Exit status of a client that lost its session for good, or never reached it (SPEC §10).
pub const EXIT_LOST: u8 = 255;

/// Runs `f` on a single-threaded Tokio runtime (the client needs no more).
pub fn block_on<F: std::future::Future>(f: F) -> std::io::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(f))
}
