//! The independent screen judge (`tests/tools/screen.py`, on pyte) called from Rust, and the
//! tests that show it sees one-cell, cursor, wide-character and alternate-screen differences.

use serde_json::Value;

use crate::support::*;

/// The pyte version `screen.py` is pinned to (`.ci/run` installs it).
pub const PYTE_PIN: &str = "pyte==0.8.2";

/// One side of a comparison: a terminal size and the byte streams fed into it, in order.
pub struct Side<'a> {
    pub cols: u16,
    pub rows: u16,
    pub parts: &'a [&'a [u8]],
}

/// Feeds both sides into fresh pyte terminals and returns the judge's report
/// (`equal`, `rows_equal`, `rows`, `diff_count`, `diffs`, `a_state`, `b_state`).
pub fn compare(a: &Side, b: &Side) -> Value {
    compare_with_history(a, b, 0)
}

/// `compare`, and the last `history` lines scrolled off each normal screen too.
pub fn compare_with_history(a: &Side, b: &Side, history: usize) -> Value {
    run_compare(a, b, history, false)
}

/// `compare_with_history` with `b` read by a terminal that has neither REP nor colon SGR.
pub fn compare_on_plain_terminal(a: &Side, b: &Side, history: usize) -> Value {
    run_compare(a, b, history, true)
}

fn run_compare(a: &Side, b: &Side, history: usize, b_plain: bool) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args: Vec<String> = vec![repo_root()
        .join("tests/tools/screen.py")
        .display()
        .to_string()];
    args.push("compare".into());
    args.push(format!("--history={history}"));
    if b_plain {
        args.push("--b-plain".into());
    }
    for (name, side) in [("a", a), ("b", b)] {
        args.push(format!("--{name}-size"));
        args.push(format!("{}x{}", side.cols, side.rows));
        args.push(format!("--{name}"));
        for (i, part) in side.parts.iter().enumerate() {
            let path = dir.path().join(format!("{name}{i}.bin"));
            std::fs::write(&path, part).expect("write stream");
            args.push(path.display().to_string());
        }
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = python3(&refs);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() != Some(2),
        "the screen judge could not run (install it with `{PYTE_PIN}` via `pip install`): {stderr}"
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "the screen judge printed no report ({e}): {}{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The judge's rendering of `bytes` on a fresh `cols`×`rows` terminal: its state (`cursor`,
/// `modes`, `alternate_screen`, ...) and `display`, the rows as text.
pub fn render(cols: u16, rows: u16, bytes: &[u8]) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("stream.bin");
    std::fs::write(&file, bytes).expect("write stream");
    let script = repo_root().join("tests/tools/screen.py");
    let out = python3(&[
        &script.display().to_string(),
        "render",
        "--size",
        &format!("{cols}x{rows}"),
        &file.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "the screen judge failed (pip install {PYTE_PIN}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("judge report")
}

/// The rows pyte renders from `bytes` on a `cols`×`rows` terminal, trailing blanks dropped.
pub fn screen_rows(cols: u16, rows: u16, bytes: &[u8]) -> Vec<String> {
    render(cols, rows, bytes)["display"]
        .as_array()
        .expect("display")
        .iter()
        .map(|r| r.as_str().unwrap_or_default().trim_end().to_string())
        .collect()
}

/// Compares two streams on terminals of the same size.
pub fn compare_same(cols: u16, rows: u16, a: &[u8], b: &[u8]) -> Value {
    compare(
        &Side {
            cols,
            rows,
            parts: &[a],
        },
        &Side {
            cols,
            rows,
            parts: &[b],
        },
    )
}

/// Panics with the judge's first differences unless the report says the screens are equal.
pub fn assert_equal(report: &Value, what: &str) {
    assert_eq!(
        report["equal"], true,
        "{what}: the screens differ ({} of {} rows equal, {} differences); first: {:#}",
        report["rows_equal"], report["rows"], report["diff_count"], report["diffs"]
    );
}

/// The report's differences of kind `what` (`cell`, `cursor`, `modes`, ...).
fn diffs<'a>(report: &'a Value, what: &str) -> Vec<&'a Value> {
    report["diffs"]
        .as_array()
        .expect("diffs")
        .iter()
        .filter(|d| d["what"] == what)
        .collect()
}

#[test]
fn judge_finds_equal_screens_drawn_by_different_streams() {
    // Same cells, cursor and pen, reached by different sequences (CUP and a rewrite, SGR 31
    // against the same palette entry by index).
    let r = compare_same(
        20,
        4,
        b"hello\x1b[1;1H\x1b[31mJ\x1b[0m\x1b[2;3Hx",
        b"\x1b[38;5;1mJ\x1b[mello\r\n  x",
    );
    assert_equal(&r, "equal screens");
    assert_eq!(r["rows_equal"], 4);
}

#[test]
fn judge_sees_one_cell_that_differs_in_one_attribute() {
    for (sgr, field) in [
        ("1", "bold"),
        ("3", "italics"),
        ("4", "underscore"),
        ("7", "reverse"),
        ("9", "strikethrough"),
        ("32", "fg"),
        ("45", "bg"),
    ] {
        let a = format!("abc\x1b[{sgr}md\x1b[0mef");
        let r = compare_same(10, 3, a.as_bytes(), b"abcdef");
        assert_eq!(r["equal"], false, "SGR {sgr} unseen: {r}");
        assert_eq!(r["diff_count"], 1, "SGR {sgr}: {r}");
        let d = &r["diffs"][0];
        assert_eq!(
            (&d["what"], &d["row"], &d["col"]),
            (&"cell".into(), &0.into(), &3.into()),
            "{d}"
        );
        assert_eq!(d["fields"], serde_json::json!([field]), "SGR {sgr}: {d}");
        assert_eq!(r["rows_equal"], 2);
    }
}

#[test]
fn judge_sees_cursor_position_visibility_and_pen() {
    let r = compare_same(10, 3, b"abc", b"abc\x1b[2;2H");
    let c = diffs(&r, "cursor");
    assert_eq!(c.len(), 1, "{r}");
    assert_eq!((&c[0]["a"]["x"], &c[0]["b"]["x"]), (&3.into(), &1.into()));
    assert_eq!(r["rows_equal"], 3, "cells are equal: {r}");

    let r = compare_same(10, 3, b"abc\x1b[?25l", b"abc");
    let c = diffs(&r, "cursor");
    assert_eq!(c.len(), 1, "{r}");
    assert_eq!(
        (&c[0]["a"]["hidden"], &c[0]["b"]["hidden"]),
        (&true.into(), &false.into())
    );

    // The pen is what the next character is drawn with.
    let r = compare_same(10, 3, b"abc\x1b[1m", b"abc");
    assert_eq!(diffs(&r, "pen").len(), 1, "{r}");
}

#[test]
fn judge_sees_wide_and_combining_character_differences() {
    // A wide character fills two cells: a narrow one and a cursor jump is not the same.
    let r = compare_same(10, 3, "中x".as_bytes(), b"a\x1b[1;3Hx");
    let cells = diffs(&r, "cell");
    let cols: Vec<u64> = cells.iter().map(|d| d["col"].as_u64().unwrap()).collect();
    assert_eq!(cols, vec![0, 1], "the wide cell and its stub: {r}");
    assert_eq!(r["equal"], false);
    // Another wide character in the same place.
    let r = compare_same(10, 3, "中".as_bytes(), "丮".as_bytes());
    assert_eq!(diffs(&r, "cell").len(), 1, "{r}");
    // Same wide characters, same screens.
    assert_equal(
        &compare_same(10, 3, "中文".as_bytes(), "中\x1b[1;3H文".as_bytes()),
        "wide",
    );
    // A combining accent belongs to its cell.
    let r = compare_same(10, 3, "e\u{301}x".as_bytes(), b"ex");
    let cells = diffs(&r, "cell");
    assert_eq!(cells.len(), 1, "{r}");
    assert_eq!(cells[0]["fields"], serde_json::json!(["char"]));
    assert_equal(
        &compare_same(10, 3, "e\u{301}x".as_bytes(), "\u{e9}x".as_bytes()),
        "composed",
    );
}

#[test]
fn judge_sees_modes_title_and_the_screen_under_the_alternate_one() {
    let r = compare_same(10, 3, b"\x1b[?1h\x1b[?2004h\x1b=\x1b]2;t\x07", b"");
    let m = diffs(&r, "modes");
    assert_eq!(m.len(), 1, "{r}");
    for mode in ["?1", "?2004", "keypad_application"] {
        assert!(
            m[0]["a"].as_array().unwrap().contains(&mode.into()),
            "{mode}: {r}"
        );
    }
    assert_eq!(diffs(&r, "title").len(), 1, "{r}");

    // The alternate screen is emulated: what it shows, and the normal screen under it.
    let alt = b"main\x1b[?1049h\x1b[1;5HALT";
    assert_equal(&compare_same(10, 3, alt, alt), "same alternate screen");
    let r = compare_same(10, 3, alt, b"\x1b[?1049h\x1b[1;5HALT");
    let cells = diffs(&r, "cell");
    assert!(!cells.is_empty(), "{r}");
    assert!(
        cells
            .iter()
            .all(|d| d["screen"] == "normal_under_alternate"),
        "{r}"
    );
    let r = compare_same(10, 3, alt, b"main\x1b[1;5HALT");
    assert_eq!(diffs(&r, "alternate_screen").len(), 1, "{r}");
    // Leaving the alternate screen shows the normal one again, with its cursor.
    assert_equal(
        &compare_same(10, 3, b"main\x1b[?1049hALT\x1b[?1049l", b"main"),
        "left the alternate screen",
    );
}

#[test]
fn judge_reads_rep_and_colon_sgr_as_xterm_does() {
    assert_equal(&compare_same(10, 2, b"ab\x1b[3bc", b"abbbbc"), "REP");
    assert_eq!(compare_same(10, 2, b"ab\x1b[3b", b"abbb")["equal"], false);
    assert_equal(
        &compare_same(
            10,
            2,
            b"\x1b[38:5:1;48:2::1:2:3;1mX\x1b[4:3mY\x1b[4:0mZ",
            b"\x1b[31;48;2;1;2;3;1mX\x1b[4mY\x1b[24mZ",
        ),
        "colon SGR",
    );
}

#[test]
fn judge_erases_with_the_background_only_as_xterm_does() {
    // Erased cells keep the pen's background, not its reverse, italics or strikethrough.
    assert_equal(
        &compare_same(
            10,
            3,
            b"\x1b[7;3;9;44m\x1b[2J",
            b"\x1b[44m\x1b[2J\x1b[7;3;9m",
        ),
        "erase",
    );
    assert_equal(
        &compare_same(
            10,
            3,
            b"ab\x1b[7;41m\x1b[K\x1b[2X",
            b"ab\x1b[41m\x1b[K\x1b[7m",
        ),
        "erase in line and characters",
    );
    let r = compare_same(10, 3, b"\x1b[44m\x1b[2J\x1b[0m", b"");
    assert_eq!(r["rows_equal"], 0, "the background is kept: {r}");
}

#[test]
fn judge_compares_history_newest_first() {
    let side = |parts| Side {
        cols: 4,
        rows: 2,
        parts,
    };
    let lines: &[u8] = b"l1\r\nl2\r\nl3\r\nl4\r\nl5";
    let only: &[&[u8]] = &[lines];
    let more: &[&[u8]] = &[b"l0\r\n", lines];
    let other: &[&[u8]] = &[b"X1\r\nl2\r\nl3\r\nl4\r\nl5"];
    let (lines, more, other) = (side(only), side(more), side(other));
    assert_equal(
        &compare_with_history(&lines, &more, 2),
        "the same last two lines",
    );
    let r = compare_with_history(&lines, &more, 5);
    assert_eq!(diffs(&r, "history_lines").len(), 1, "{r}");
    let r = compare_with_history(&lines, &other, 5);
    let h = diffs(&r, "history");
    assert_eq!((h.len(), &h[0]["row"]), (1, &(-3).into()), "{r}");
    // Without history, only the screen counts.
    assert_equal(&compare(&lines, &other), "screens");
}

#[test]
fn judge_compares_terminals_of_different_sizes_as_different() {
    let r = compare(
        &Side {
            cols: 80,
            rows: 24,
            parts: &[b"x"],
        },
        &Side {
            cols: 100,
            rows: 30,
            parts: &[b"x"],
        },
    );
    assert_eq!(diffs(&r, "size").len(), 1, "{r}");
}
