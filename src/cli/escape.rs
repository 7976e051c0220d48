//! The `~` escapes of the input stream, as ssh has them: at the start of a line `~.` detaches,
//! `~r` asks for control, `~?` lists the escapes, `~~` sends one `~`; while a request for
//! control waits for our answer, `~y` grants and `~n` denies it anywhere in a line. Pure.

/// An escape typed by the person at the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// `~.`: leave the session running and exit.
    Detach,
    /// `~r`: ask the holder for control.
    Request,
    /// `~y`: give control to the waiting requester.
    Grant,
    /// `~n`: refuse the waiting requester.
    Deny,
    /// `~?`: list the escapes.
    Help,
}

/// What `~?` prints.
pub const HELP: &str = "escapes at the start of a line: ~. detach, ~r ask for control, \
~? this list, ~~ send ~; while someone asks you for control, ~y gives it and ~n denies, \
anywhere in a line";

/// A part of a chunk of keystrokes, in the order typed.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// Bytes to send, escapes removed.
    Keys(Vec<u8>),
    /// An escape; after `Detach` the rest of the chunk is discarded.
    Escape(Escape),
}

/// The escape state across chunks (a `~` may end one read and its partner start the next).
#[derive(Debug)]
pub struct EscapeScanner {
    line_start: bool,
    /// A `~` is held; `Some(true)` when it was typed at the start of a line.
    tilde: Option<bool>,
    /// A request for control waits for our answer: `~` escapes anywhere in a line.
    answering: bool,
}

impl Default for EscapeScanner {
    fn default() -> Self {
        // The very first keystroke is at the start of a line.
        EscapeScanner {
            line_start: true,
            tilde: None,
            answering: false,
        }
    }
}

impl EscapeScanner {
    /// Whether a request for control waits for our answer (arms `~y` and `~n`).
    pub fn set_answering(&mut self, answering: bool) {
        self.answering = answering;
    }

    /// Scans one chunk of keystrokes.
    pub fn scan(&mut self, input: &[u8]) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut send = Vec::with_capacity(input.len());
        for &b in input {
            if let Some(at_start) = self.tilde.take() {
                if let Some(e) = self.escape(b, at_start) {
                    if !send.is_empty() {
                        out.push(Piece::Keys(std::mem::take(&mut send)));
                    }
                    out.push(Piece::Escape(e));
                    if e == Escape::Detach {
                        return out;
                    }
                    // An escape leaves the line where it was.
                    self.line_start = at_start;
                    continue;
                }
                send.push(b'~');
                if b == b'~' {
                    self.line_start = false;
                    continue;
                }
            } else if b == b'~' && (self.line_start || self.answering) {
                self.tilde = Some(self.line_start);
                continue;
            }
            send.push(b);
            self.line_start = b == b'\r' || b == b'\n';
        }
        if !send.is_empty() {
            out.push(Piece::Keys(send));
        }
        out
    }

    fn escape(&self, b: u8, at_start: bool) -> Option<Escape> {
        match b {
            b'.' if at_start => Some(Escape::Detach),
            b'r' if at_start => Some(Escape::Request),
            b'?' if at_start => Some(Escape::Help),
            b'y' if self.answering => Some(Escape::Grant),
            b'n' if self.answering => Some(Escape::Deny),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys sent and the escapes seen, over `chunks`.
    fn scan_with(s: &mut EscapeScanner, chunks: &[&[u8]]) -> (Vec<u8>, Vec<Escape>) {
        let mut keys = Vec::new();
        let mut escapes = Vec::new();
        for c in chunks {
            for p in s.scan(c) {
                match p {
                    Piece::Keys(k) => keys.extend(k),
                    Piece::Escape(e) => escapes.push(e),
                }
            }
        }
        (keys, escapes)
    }

    fn scan_all(chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let (keys, escapes) = scan_with(&mut EscapeScanner::default(), chunks);
        (keys, escapes.contains(&Escape::Detach))
    }

    #[test]
    fn tilde_dot_detaches_only_at_line_start() {
        assert_eq!(scan_all(&[b"~."]), (vec![], true));
        assert_eq!(scan_all(&[b"ls\r~.rest"]), (b"ls\r".to_vec(), true));
        assert_eq!(scan_all(&[b"ls\n~."]), (b"ls\n".to_vec(), true));
        assert_eq!(scan_all(&[b"a~."]), (b"a~.".to_vec(), false));
        assert_eq!(scan_all(&[b"\r~", b"."]), (b"\r".to_vec(), true));
    }

    #[test]
    fn double_tilde_sends_one_and_other_keys_pass() {
        assert_eq!(scan_all(&[b"~~."]), (b"~.".to_vec(), false));
        assert_eq!(scan_all(&[b"~", b"~"]), (b"~".to_vec(), false));
        assert_eq!(scan_all(&[b"~x"]), (b"~x".to_vec(), false));
        assert_eq!(scan_all(&[b"~\r~."]), (b"~\r".to_vec(), true));
        assert_eq!(scan_all(&[b"cd ~/src\r"]), (b"cd ~/src\r".to_vec(), false));
        // Without a request waiting, `~y` and `~n` are keys like any other.
        assert_eq!(scan_all(&[b"~y~n"]), (b"~y~n".to_vec(), false));
    }

    #[test]
    fn request_and_help_at_line_start_keep_the_keys_around_them_in_order() {
        let mut s = EscapeScanner::default();
        let pieces = s.scan(b"~rls\r~?x~r");
        assert_eq!(
            pieces,
            vec![
                Piece::Escape(Escape::Request),
                Piece::Keys(b"ls\r".to_vec()),
                Piece::Escape(Escape::Help),
                Piece::Keys(b"x~r".to_vec()),
            ]
        );
        // After an escape at the start of a line, the line still starts there.
        assert_eq!(
            scan_with(&mut EscapeScanner::default(), &[b"~r~."]).1,
            vec![Escape::Request, Escape::Detach]
        );
    }

    #[test]
    fn answers_work_anywhere_in_a_line_only_while_a_request_waits() {
        let mut s = EscapeScanner::default();
        s.set_answering(true);
        assert_eq!(
            scan_with(&mut s, &[b"vim x~", b"y"]),
            (b"vim x".to_vec(), vec![Escape::Grant])
        );
        assert_eq!(
            scan_with(&mut s, &[b"a~nb"]),
            (b"ab".to_vec(), vec![Escape::Deny])
        );
        // Mid-line, `~.` and `~r` are still typed as they are, and `~~` is one `~`.
        assert_eq!(
            scan_with(&mut s, &[b"a~.~r~~"]),
            (b"a~.~r~".to_vec(), vec![])
        );
        s.set_answering(false);
        assert_eq!(scan_with(&mut s, &[b"a~y"]), (b"a~y".to_vec(), vec![]));
    }
}
