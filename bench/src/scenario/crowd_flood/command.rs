//! What the driver types: a flood (`seq` lines, base64 lines, coloured numbers), then a known
//! final screen ending in a marker and a cursor position, then a shell that prints no more.

use crate::screen::ScreenView;

/// The last thing drawn, on row 12 (1-based) from column 10; never typed literally.
pub const MARKER: &str = "FLOOD-END-42";
const MARKER_AT: (u16, u16) = (12, 10);
/// Where the drawing leaves the cursor (1-based).
const CURSOR_AT: (u16, u16) = (14, 21);
/// The smallest terminal the drawing fits.
pub const MIN_SIZE: (u16, u16) = (40, 16);

/// The final screen: attributes reset, screen cleared, a few distinctive lines (some with
/// colours), the marker, then the cursor moved to its place.
pub fn final_drawing() -> Vec<u8> {
    let lines: [(u16, u16, &str); 5] = [
        (2, 3, "attachd crowd-flood: the final screen"),
        (4, 5, "\x1b[1;33mbold yellow\x1b[0m, then plain"),
        (6, 7, "\x1b[37;44mwhite on blue\x1b[0m"),
        (8, 1, "0123456789abcdefghijklmnopqrstuvwxyz"),
        (10, 30, "\x1b[7minverse\x1b[0m"),
    ];
    let mut d = String::from("\x1b[0m\x1b[H\x1b[2J");
    for (row, col, text) in lines {
        d.push_str(&format!("\x1b[{row};{col}H{text}"));
    }
    d.push_str(&format!("\x1b[{};{}H{MARKER}", MARKER_AT.0, MARKER_AT.1));
    d.push_str(&format!("\x1b[{};{}H", CURSOR_AT.0, CURSOR_AT.1));
    d.into_bytes()
}

/// Whether `view` shows the end of the drawing: the marker in place and the cursor after it.
/// Everything drawn before the marker is then on the screen too (output is in order).
pub fn at_end(view: &ScreenView) -> bool {
    view.cursor() == Some((CURSOR_AT.0 - 1, CURSOR_AT.1 - 1))
        && view.shows_at(MARKER_AT.0 - 1, MARKER_AT.1 - 1, MARKER)
}

/// The screen the drawing leaves in a fresh `cols`×`rows` terminal.
pub fn drawn_screen(cols: u16, rows: u16) -> ScreenView {
    let mut v = ScreenView::sized(cols, rows);
    v.feed(&final_drawing());
    v
}

/// How many `seq 1 N` lines make at least `bytes` bytes.
fn seq_count(bytes: u64) -> u64 {
    let (mut n, mut total, mut width, mut next_width_at) = (0u64, 0u64, 1u64, 10u64);
    while total < bytes {
        n += 1;
        if n == next_width_at {
            width += 1;
            next_width_at *= 10;
        }
        total += width + 1;
    }
    n
}

/// `bytes` as a `printf` format of octal escapes only (so the marker's text is never echoed).
fn octal(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:03o}")).collect()
}

/// The shell line: about `bytes` of flood, the final drawing, and `exec sleep` (no prompt
/// comes back to change the screen).
pub fn command(bytes: u64) -> String {
    let third = bytes / 3;
    let seq = seq_count(third);
    // base64 -w 76: 77 output bytes per 57 input bytes.
    let random = third * 57 / 77;
    // One coloured number: ESC[3f;4bm, 7 digits, ESC[0m and a separator, 20 bytes.
    let numbers = third / 20;
    format!(
        "seq 1 {seq}; head -c {random} /dev/urandom | base64; \
         awk 'BEGIN{{for(i=0;i<{numbers};i++)printf \"\\033[%d;%dm%07d\\033[0m%s\",31+i%7,40+i%8,i,(i%10==9)?\"\\n\":\" \"}}'; \
         printf '{}'; exec sleep 86400\n",
        octal(&final_drawing())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_count_matches_seq_output() {
        let len = |n: u64| (1..=n).map(|i| i.to_string().len() as u64 + 1).sum::<u64>();
        for bytes in [1, 2, 19, 20, 21, 200, 5_000, 123_456] {
            let n = seq_count(bytes);
            assert!(len(n) >= bytes && len(n - 1) < bytes, "{bytes} bytes: {n}");
        }
    }

    #[test]
    fn the_drawing_ends_at_the_marker_and_fits() {
        let v = drawn_screen(MIN_SIZE.0, MIN_SIZE.1);
        assert!(at_end(&v));
        assert!(v.text().contains("white on blue"));
        let mut partial = ScreenView::sized(80, 24);
        let d = final_drawing();
        partial.feed(&d[..d.len() - 3]);
        assert!(!at_end(&partial), "the cursor move comes last");
    }

    #[test]
    fn the_typed_line_never_shows_the_marker() {
        let line = command(3_000);
        assert!(!line.contains(MARKER));
        assert!(!line.contains("final screen"));
        assert!(line.ends_with("exec sleep 86400\n"));
    }

    #[test]
    fn the_shell_prints_the_drawing_byte_for_byte() {
        let line = command(3_000);
        let fmt = line
            .split("printf '")
            .nth(1)
            .and_then(|s| s.split('\'').next())
            .expect("printf format in the line");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '{fmt}'"))
            .output()
            .expect("sh runs");
        assert_eq!(out.stdout, final_drawing());
    }
}
