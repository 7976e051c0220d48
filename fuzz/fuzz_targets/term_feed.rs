//! Hostile terminal output: any bytes fed into a session's `TermState`, at any size, with a
//! resize in the middle; its snapshot, fed into a fresh `TermState`, must not panic either.
#![no_main]

use attachd_actors::term::TermState;
use libfuzzer_sys::fuzz_target;

/// Room a snapshot may take per cell (the widest SGR for one cell plus its characters).
const BYTES_PER_CELL: usize = 256;
/// Room for what is not a cell: modes, title, cursor, scroll region.
const STATE_BYTES: usize = 16 * 1024;

fuzz_target!(|data: &[u8]| {
    // Header: size, history, where to resize and to what; the rest is terminal output.
    let Some((head, body)) = data.split_first_chunk::<5>() else {
        return;
    };
    let (cols, rows) = (1 + head[0] as u16 % 200, 1 + head[1] as u16 % 80);
    let history = head[2] as usize % 50;
    let cut = body.len() * head[3] as usize / 255;
    let (cols2, rows2) = (1 + head[4] as u16 % 120, 1 + head[4].rotate_left(3) as u16 % 60);

    let mut term = TermState::new(cols, rows, history);
    term.feed(&body[..cut]);
    term.resize(cols2, rows2);
    term.feed(&body[cut..]);
    let snapshot = term.snapshot();
    // Bounded by the screen and history it describes, never by how much output came before.
    let bound = (rows2 as usize + history) * cols2 as usize * BYTES_PER_CELL + STATE_BYTES;
    assert!(
        snapshot.len() <= bound,
        "snapshot of {cols2}x{rows2}+{history} is {} bytes",
        snapshot.len()
    );

    let mut joiner = TermState::new(cols2, rows2, history);
    joiner.feed(&snapshot);
    let _ = joiner.snapshot();
});
