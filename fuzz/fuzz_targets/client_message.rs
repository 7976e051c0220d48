//! Client text frames after the upgrade: `ClientMessage::parse` on any UTF-8 text.
//! A parsed resize is always within 1..=1000; an error never panics and stays bounded.
#![no_main]

use attachd_actors::protocol::{ClientMessage, MAX_TERMINAL_DIM};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ClientMessage::parse(text) {
        Ok(ClientMessage::Resize { cols, rows }) => {
            assert!((1..=MAX_TERMINAL_DIM).contains(&cols), "cols {cols}");
            assert!((1..=MAX_TERMINAL_DIM).contains(&rows), "rows {rows}");
        }
        Ok(ClientMessage::Control { .. } | ClientMessage::Ack { .. }) => {}
        // The error goes back to the client in an `error` frame: it must not grow past the input.
        Err(why) => assert!(
            why.len() <= text.len() + 256,
            "error text {} bytes",
            why.len()
        ),
    }
});
