//! The terminal state the screen emulator does not keep: input modes (keypad, bracketed paste,
//! mouse reporting and encodings, focus events) and the window title, tracked with `vte`.

/// Longest window title kept (bytes); longer titles are cut at a character boundary.
pub const MAX_TITLE_BYTES: usize = 1024;

/// Input modes and title, as set by the program so far.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ModeState {
    /// DECKPAM (`ESC =`) / DECNKM: application keypad.
    pub app_keypad: bool,
    /// DECSET 2004.
    pub bracketed_paste: bool,
    /// DECSET 1004.
    pub focus_events: bool,
    /// Mouse tracking: 9, 1000, 1002 or 1003 (0 = off).
    pub mouse_tracking: u16,
    /// Mouse encoding: 1005, 1006 or 1015 (0 = default X10 encoding).
    pub mouse_encoding: u16,
    /// OSC 0/2 window title.
    pub title: Option<String>,
}

impl ModeState {
    /// Appends the escape sequences that put a fresh terminal into this state.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        if let Some(t) = &self.title {
            out.extend_from_slice(b"\x1b]2;");
            out.extend_from_slice(t.as_bytes());
            out.push(0x07);
        }
        if self.app_keypad {
            out.extend_from_slice(b"\x1b=");
        }
        if self.bracketed_paste {
            out.extend_from_slice(b"\x1b[?2004h");
        }
        if self.focus_events {
            out.extend_from_slice(b"\x1b[?1004h");
        }
        if self.mouse_tracking != 0 {
            out.extend_from_slice(format!("\x1b[?{}h", self.mouse_tracking).as_bytes());
        }
        if self.mouse_encoding != 0 {
            out.extend_from_slice(format!("\x1b[?{}h", self.mouse_encoding).as_bytes());
        }
    }

    fn dec_mode(&mut self, mode: u16, on: bool) {
        match mode {
            66 => self.app_keypad = on,
            2004 => self.bracketed_paste = on,
            1004 => self.focus_events = on,
            9 | 1000 | 1002 | 1003 => {
                if on {
                    self.mouse_tracking = mode;
                } else if self.mouse_tracking == mode {
                    self.mouse_tracking = 0;
                }
            }
            1005 | 1006 | 1015 => {
                if on {
                    self.mouse_encoding = mode;
                } else if self.mouse_encoding == mode {
                    self.mouse_encoding = 0;
                }
            }
            _ => {}
        }
    }
}

/// Feeds output bytes through a `vte` parser into a [`ModeState`].
#[derive(Default)]
pub struct ModeTracker {
    parser: vte::Parser,
    state: ModeState,
}

impl std::fmt::Debug for ModeTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModeTracker")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl ModeTracker {
    /// Processes output bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.parser.advance(
            &mut Perform {
                state: &mut self.state,
            },
            bytes,
        );
    }

    /// The state so far.
    pub fn state(&self) -> &ModeState {
        &self.state
    }
}

struct Perform<'a> {
    state: &'a mut ModeState,
}

impl vte::Perform for Perform<'_> {
    fn csi_dispatch(
        &mut self,
        params: &vte::Params,
        intermediates: &[u8],
        ignore: bool,
        action: char,
    ) {
        if ignore {
            return;
        }
        match (intermediates, action) {
            ([b'?'], 'h' | 'l') => {
                let on = action == 'h';
                for p in params.iter() {
                    if let Some(&m) = p.first() {
                        self.state.dec_mode(m, on);
                    }
                }
            }
            // DECSTR (soft reset) turns keypad and mouse modes back to their defaults.
            ([b'!'], 'p') => {
                let title = self.state.title.take();
                *self.state = ModeState {
                    title,
                    ..ModeState::default()
                };
            }
            _ => {}
        }
    }

    fn esc_dispatch(&mut self, intermediates: &[u8], ignore: bool, byte: u8) {
        if ignore || !intermediates.is_empty() {
            return;
        }
        match byte {
            b'=' => self.state.app_keypad = true,
            b'>' => self.state.app_keypad = false,
            // RIS: full reset.
            b'c' => *self.state = ModeState::default(),
            _ => {}
        }
    }

    fn osc_dispatch(&mut self, params: &[&[u8]], _bell_terminated: bool) {
        let (Some(kind), Some(text)) = (params.first(), params.get(1)) else {
            return;
        };
        if *kind == b"0" || *kind == b"2" {
            // A title may contain ';' (split by vte into further params): join them back.
            let mut joined = text.to_vec();
            for more in &params[2..] {
                joined.push(b';');
                joined.extend_from_slice(more);
            }
            let mut title = String::from_utf8_lossy(&joined).into_owned();
            title.retain(|c| !c.is_control());
            if title.len() > MAX_TITLE_BYTES {
                let mut cut = MAX_TITLE_BYTES;
                while !title.is_char_boundary(cut) {
                    cut -= 1;
                }
                title.truncate(cut);
            }
            self.state.title = Some(title);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(bytes: &[u8]) -> ModeState {
        let mut t = ModeTracker::default();
        t.feed(bytes);
        t.state().clone()
    }

    #[test]
    fn dec_modes_keypad_and_title_are_tracked() {
        let s = track(b"\x1b[?2004h\x1b[?1002;1006h\x1b=\x1b]2;build: ok; 3/4\x07\x1b[?1004h");
        assert!(s.bracketed_paste && s.focus_events && s.app_keypad);
        assert_eq!((s.mouse_tracking, s.mouse_encoding), (1002, 1006));
        assert_eq!(s.title.as_deref(), Some("build: ok; 3/4"));
        let s = track(b"\x1b[?2004h\x1b[?1002h\x1b=\x1b[?2004l\x1b[?1002l\x1b>");
        assert_eq!(s, ModeState::default());
    }

    #[test]
    fn reset_clears_modes() {
        assert_eq!(track(b"\x1b[?2004h\x1b=\x1bc"), ModeState::default());
    }

    #[test]
    fn written_state_reproduces_itself() {
        let s = track(b"\x1b[?2004h\x1b[?1000h\x1b[?1015h\x1b=\x1b]0;t\x07");
        let mut out = Vec::new();
        s.write_to(&mut out);
        assert_eq!(track(&out), s);
    }

    #[test]
    fn an_unterminated_title_is_bounded() {
        let mut t = ModeTracker::default();
        t.feed(b"\x1b]2;");
        for _ in 0..1000 {
            t.feed(&[b'x'; 10_000]);
        }
        t.feed(b"\x07");
        assert!(t.state().title.as_ref().unwrap().len() <= MAX_TITLE_BYTES);
    }
}
