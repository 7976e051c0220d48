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

#[test]
fn sequences_are_never_held_or_joined() {
    let mut t = TermState::new(20, 3, 0);
    t.feed("a\u{308}\r\n\x1b[1m".as_bytes());
    t.feed("\u{301}x".as_bytes());
    assert_eq!(
        t.clusters.held(),
        "x",
        "a mark after a sequence has no base"
    );
    assert_eq!(t.screen_text()[0].trim_end(), "a\u{308}");
    t.feed("\x1b]2;e\u{301}\x07".as_bytes());
    assert_eq!(t.modes.state().title.as_deref(), Some("e\u{301}"));
}

#[test]
fn erased_cells_keep_only_the_pens_background() {
    let mut t = TermState::new(10, 3, 10);
    t.feed(b"text\x1b[7;3;31;44m\x1b[2J\x1b[Hx\x1b[2;1H\x1b[K\x1b[3;5H\x1b[2X");
    let screen = t.vt.screen();
    let cells = |row: usize| screen.line(row).unwrap().cells().to_vec();
    let x = cells(0)[0];
    assert!(
        x.pen().is_inverse() && x.pen().is_italic(),
        "printed with the whole pen"
    );
    for cell in cells(0)[1..].iter().chain(&cells(1)).chain(&cells(2)) {
        let p = cell.pen();
        assert_eq!(p.background(), Some(avt::Color::Indexed(4)));
        assert!(p.foreground().is_none() && !p.is_inverse() && !p.is_italic());
    }
    t.feed(b"y\r");
    assert!(
        t.vt.screen().line(2).unwrap().cells()[4].pen().is_inverse(),
        "the pen is back"
    );
    assert_eq!(t.history_len(), 0, "ED 2 pushes nothing into the history");
}
