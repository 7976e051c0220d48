//! Snapshot round trips: a fresh emulator fed a snapshot shows the same screen as the original.

use super::TermState;

fn replay(t: &TermState) -> TermState {
    let (c, r) = t.size();
    let mut fresh = TermState::new(c, r, t.history_limit());
    fresh.feed(&t.snapshot());
    fresh
}

fn same(a: &TermState, b: &TermState) {
    assert_eq!(a.screen_text(), b.screen_text());
    assert_eq!(a.vt.cursor(), b.vt.cursor());
    assert_eq!(a.vt.dump(), b.vt.dump(), "full state differs");
    assert_eq!(a.modes.state(), b.modes.state());
}

#[test]
fn a_drawn_screen_round_trips() {
    let mut t = TermState::new(40, 6, 100);
    t.feed(b"\x1b[2J\x1b[H\x1b[1;31mred\x1b[0m plain \x1b[44mblue bg\x1b[0m\r\n");
    t.feed("wide 中文 and ok\r\n\x1b[7minverse\x1b[27m".as_bytes());
    same(&t, &replay(&t));
}

#[test]
fn the_alternate_screen_keeps_the_primary_beneath() {
    let mut t = TermState::new(20, 4, 10);
    t.feed(b"$ vi file\r\n");
    t.feed(b"\x1b[?1049h\x1b[H\x1b[2J\x1b[32m~\x1b[0m\r\n~\r\n\x1b[?1h\x1b[?2004h");
    let mut r = replay(&t);
    same(&t, &r);
    t.feed(b"\x1b[?1049l");
    r.feed(b"\x1b[?1049l");
    same(&t, &r);
    assert!(r.screen_text()[0].starts_with("$ vi file"));
}

#[test]
fn scroll_region_and_modes_round_trip() {
    let mut t = TermState::new(30, 10, 10);
    t.feed(b"header\x1b[3;8r\x1b[8;1H");
    for i in 0..20 {
        t.feed(format!("line {i}\n\r").as_bytes());
    }
    t.feed(b"\x1b]2;my title\x07\x1b=\x1b[?1000h\x1b[?1006h");
    let mut r = replay(&t);
    same(&t, &r);
    // The region is in force in the copy too: more output scrolls the same rows.
    t.feed(b"more\nand more\n");
    r.feed(b"more\nand more\n");
    same(&t, &r);
}

#[test]
fn history_lands_above_the_screen() {
    let mut t = TermState::new(20, 3, 50);
    for i in 0..10 {
        t.feed(format!("\x1b[3{}mrow {i}\x1b[0m\r\n", i % 8).as_bytes());
    }
    let r = replay(&t);
    same(&t, &r);
    assert_eq!(r.history_len(), t.history_len());
    let a: Vec<String> =
        t.vt.primary_screen()
            .all_lines()
            .map(|l| l.text())
            .collect();
    let b: Vec<String> =
        r.vt.primary_screen()
            .all_lines()
            .map(|l| l.text())
            .collect();
    assert_eq!(a, b);
}

#[test]
fn a_split_character_or_sequence_completes_after_the_snapshot() {
    let mut t = TermState::new(20, 3, 0);
    let s = "ab中".as_bytes();
    t.feed(&s[..3]);
    t.feed(b"");
    let mut r = replay(&t);
    t.feed(&s[3..]);
    r.feed(&s[3..]);
    same(&t, &r);
    t.feed(b"\x1b[3");
    let mut r = replay(&t);
    t.feed(b"1mred");
    r.feed(b"1mred");
    same(&t, &r);
}

#[test]
fn hostile_output_stays_bounded_and_never_panics() {
    let mut t = TermState::new(80, 24, 100);
    t.feed(b"\x1b]2;");
    for _ in 0..100 {
        t.feed(&[b'x'; 100_000]);
    }
    for _ in 0..1000 {
        t.feed(b"\x1b[999;999H\x1b[?1049h\x1b[5000@\x1b[r\x1b[99999999X\x1bP\x1b[?1049l");
    }
    let line = vec![b'y'; 1 << 20];
    t.feed(&line);
    assert!(t.history_len() <= 100);
    assert!(t.snapshot().len() < 2 << 20);
    let _ = replay(&t);
}
