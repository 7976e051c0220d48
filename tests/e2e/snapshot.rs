//! The server's emulator (`TermState`) judged without a server: each test program's output on
//! a real PTY is cut at an offset, and its snapshot there plus the rest must render as the whole.

use attachd_actors::term::TermState;

use crate::judge::{self, Side};

/// History lines the emulator keeps and the judge compares (`session.history_lines`).
const HISTORY: usize = 1000;
use crate::support::*;

/// A program's whole output on a `cols`×`rows` PTY and the offset after its phase 1.
fn record(name: &str, args: &[&str], cols: u16, rows: u16) -> (Vec<u8>, usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.bin");
    let programs = repo_root().join("tests/tools/programs");
    let (recorder, script) = (
        programs.join("record.py"),
        programs.join(format!("{name}.py")),
    );
    let size = format!("{cols}x{rows}");
    let mut argv = vec![
        recorder.to_str().unwrap(),
        "--size",
        &size,
        "--out",
        out.to_str().unwrap(),
        "--",
        "python3",
        script.to_str().unwrap(),
    ];
    argv.extend_from_slice(args);
    let run = python3(&argv);
    assert!(
        run.status.success(),
        "record.py {name}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).expect("record report");
    let phase1 = report["phase1"].as_u64().expect("phase1") as usize;
    (std::fs::read(&out).expect("recording"), phase1)
}

/// The snapshot a joiner at `cut` gets: the output so far fed as the PTY delivers it.
fn snapshot_at(stream: &[u8], cut: usize, cols: u16, rows: u16) -> Vec<u8> {
    let mut term = TermState::new(cols, rows, HISTORY);
    for chunk in stream[..cut].chunks(4096) {
        term.feed(chunk);
    }
    term.snapshot()
}

/// For every cut: the whole stream, and the snapshot at the cut plus the rest, render alike.
fn assert_snapshots_reproduce(name: &str, args: &[&str], size: (u16, u16), cuts: &[Cut]) {
    let (cols, rows) = size;
    let (stream, phase1) = record(name, args, cols, rows);
    let mut failures = Vec::new();
    for cut in cuts {
        let at = cut.offset(&stream, phase1);
        let snap = snapshot_at(&stream, at, cols, rows);
        let whole = Side {
            cols,
            rows,
            parts: &[&stream],
        };
        let joined = Side {
            cols,
            rows,
            parts: &[&snap, &stream[at..]],
        };
        let report = judge::compare_with_history(&whole, &joined, HISTORY);
        if report["equal"] != true {
            failures.push(format!(
                "{name} cut at {at} of {} ({cut:?}): {} of {} rows equal, {} differences; first: {:#}",
                stream.len(),
                report["rows_equal"],
                report["rows"],
                report["diff_count"],
                report["diffs"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Where a joiner arrives.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// Between the program's phases: the program is waiting, its output complete.
    Phase1,
    /// At this fraction of the output, wherever that falls.
    Fraction(f64),
    /// Three bytes into the first escape sequence after this fraction.
    InSequence(f64),
    /// After the first byte of the first multi-byte character after this fraction.
    InCharacter(f64),
}

impl Cut {
    fn offset(self, stream: &[u8], phase1: usize) -> usize {
        let after = |f: f64, pick: fn(&u8) -> bool, into: usize| {
            let from = (stream.len() as f64 * f) as usize;
            let at = stream[from..].iter().position(pick).expect("no such byte") + from;
            at + into
        };
        match self {
            Cut::Phase1 => phase1,
            Cut::Fraction(f) => (stream.len() as f64 * f) as usize,
            Cut::InSequence(f) => after(f, |&b| b == 0x1b, 3),
            Cut::InCharacter(f) => after(f, |&b| b >= 0xc0, 1),
        }
    }
}

#[test]
fn snapshot_of_the_one_line_updater_reproduces_its_screen() {
    assert_snapshots_reproduce("updater", &["--kb", "200"], (80, 24), &[Cut::Phase1]);
}

#[test]
fn snapshot_of_the_alternate_screen_reproduces_colours_modes_and_the_normal_screen() {
    assert_snapshots_reproduce("altscreen", &[], (100, 30), &[Cut::Phase1]);
}

#[test]
fn snapshot_inside_a_scroll_region_keeps_the_region() {
    assert_snapshots_reproduce("scrollregion", &[], (80, 24), &[Cut::Phase1]);
}

#[test]
fn snapshot_reproduces_wide_characters() {
    assert_snapshots_reproduce("unicode", &["--precomposed"], (90, 20), &[Cut::Phase1]);
}

#[test]
fn snapshot_keeps_combining_characters() {
    // `e` + U+0301 is one cell showing `é`, in the stream and in the snapshot alike.
    assert_snapshots_reproduce("unicode", &[], (90, 20), &[Cut::Phase1]);
}

#[test]
fn snapshot_taken_anywhere_in_a_flood_reproduces_the_screen() {
    let cuts = [
        Cut::Phase1,
        Cut::Fraction(0.31),
        Cut::Fraction(0.5),
        Cut::Fraction(0.77),
        // Near the end: most of the history then comes from the snapshot.
        Cut::Fraction(0.995),
        Cut::InSequence(0.4),
        Cut::InSequence(0.9),
    ];
    assert_snapshots_reproduce("flood", &["--mb", "1", "--mb2", "1"], (80, 24), &cuts);
}

#[test]
fn snapshot_taken_anywhere_in_full_screen_output_reproduces_the_screen() {
    let cuts = [
        Cut::Fraction(0.2),
        Cut::Fraction(0.45),
        Cut::Fraction(0.9),
        Cut::InSequence(0.3),
        Cut::InSequence(0.6),
    ];
    for (name, size) in [("altscreen", (100, 30)), ("scrollregion", (80, 24))] {
        assert_snapshots_reproduce(name, &[], size, &cuts);
    }
}

#[test]
fn snapshot_taken_inside_a_character_or_a_sequence_reproduces_the_screen() {
    let cuts = [
        Cut::InCharacter(0.3),
        Cut::InCharacter(0.7),
        Cut::InSequence(0.5),
    ];
    // Precomposed accents: combining marks are the other test's subject.
    assert_snapshots_reproduce("unicode", &["--precomposed"], (90, 20), &cuts);
}

/// On an 80x24 terminal: `stream`, and the snapshot after it, render alike (history too).
fn assert_snapshot_renders_as(stream: &[u8], what: &str) {
    let mut term = TermState::new(80, 24, HISTORY);
    term.feed(stream);
    let snap = term.snapshot();
    let side = |parts| Side {
        cols: 80,
        rows: 24,
        parts,
    };
    let (whole, joined): (&[&[u8]], &[&[u8]]) = (&[stream], &[&snap]);
    judge::assert_equal(
        &judge::compare_with_history(&side(whole), &side(joined), HISTORY),
        what,
    );
}

#[test]
fn snapshot_after_clear_has_no_history() {
    // What `clear` prints for TERM=xterm-256color: home, erase the screen, erase the scrollback.
    let mut stream = Vec::new();
    for n in 0..40 {
        stream.extend_from_slice(format!("secret line {n}\r\n").as_bytes());
    }
    stream.extend_from_slice(b"\x1b[H\x1b[2J\x1b[3J$ ");
    assert_snapshot_renders_as(&stream, "after clear");
}

#[test]
fn snapshot_keeps_the_wrapped_line_cut_by_the_top_of_the_screen() {
    // One short line, then lines two rows long: the line just above the screen continues
    // on the screen's first row (a soft wrap across the history boundary).
    let mut stream = b"first\r\n".to_vec();
    for n in 0..20 {
        stream.extend_from_slice(format!("line {n:02} {}\r\n", "x".repeat(150)).as_bytes());
    }
    assert_snapshot_renders_as(&stream, "wrapped line at the top of the screen");
}

#[test]
fn snapshot_shows_cells_erased_under_a_reversed_pen_as_xterm_does() {
    // xterm and xterm.js erase with the background colour only: the erased screen is not
    // reversed, italic or struck through, only the character drawn after it is.
    assert_snapshot_renders_as(
        b"some text\x1b[7;3;9;44m\x1b[2J\x1b[1;1Hx\x1b[0m\x1b[3;1H\x1b[7m\x1b[K\x1b[0m",
        "erased under a reversed pen",
    );
}

#[test]
fn snapshot_reads_alike_on_a_terminal_without_rep_or_colon_colours() {
    // Runs of one character (which `avt` dumps as REP) in 256-colour and truecolour pens
    // (dumped as 38:5:n and 38:2:r:g:b), on the screen and in the history.
    let mut stream = Vec::new();
    for n in 0..30 {
        stream.extend_from_slice(
            format!(
                "\x1b[38;5;{n}m{}\x1b[48;2;{};20;30m{}\x1b[0m {n}\r\n",
                "=".repeat(30),
                n * 8,
                " ".repeat(20)
            )
            .as_bytes(),
        );
    }
    stream.extend_from_slice("\x1b[1;31m中中中中\x1b[0m----------".as_bytes());
    let mut term = TermState::new(80, 24, HISTORY);
    term.feed(&stream);
    let snap = term.snapshot();
    let text = String::from_utf8_lossy(&snap);
    for seq in text.split('\x1b').skip(1) {
        let Some(body) = seq.strip_prefix('[') else {
            continue;
        };
        let end = body
            .find(|c: char| ('\u{40}'..='\u{7e}').contains(&c))
            .expect("a complete CSI");
        let (params, fin) = (&body[..end], &body[end..end + 1]);
        assert_ne!(fin, "b", "REP in the snapshot: CSI {params}b");
        assert!(
            !params.contains(':'),
            "a colon parameter: CSI {params}{fin}"
        );
    }
    let side = |parts| Side {
        cols: 80,
        rows: 24,
        parts,
    };
    let (whole, joined): (&[&[u8]], &[&[u8]]) = (&[&stream], &[&snap]);
    judge::assert_equal(
        &judge::compare_on_plain_terminal(&side(whole), &side(joined), HISTORY),
        "snapshot on a terminal without REP or colon SGR",
    );
}
