//! The `~` escape of the input stream, as ssh has it: `~.` at the start of a line detaches,
//! `~~` sends one `~`, and `~` before anything else is sent as typed. Pure, unit-tested.

/// What a chunk of keystrokes amounts to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scanned {
    /// Bytes to send, escapes removed.
    pub send: Vec<u8>,
    /// `~.` was typed: detach (bytes after it are discarded).
    pub detach: bool,
}

/// The escape state across chunks (a `~` may end one read and its partner start the next).
#[derive(Debug)]
pub struct EscapeScanner {
    line_start: bool,
    tilde: bool,
}

impl Default for EscapeScanner {
    fn default() -> Self {
        // The very first keystroke is at the start of a line.
        EscapeScanner {
            line_start: true,
            tilde: false,
        }
    }
}

impl EscapeScanner {
    /// Scans one chunk of keystrokes.
    pub fn scan(&mut self, input: &[u8]) -> Scanned {
        let mut send = Vec::with_capacity(input.len());
        for &b in input {
            if self.tilde {
                self.tilde = false;
                match b {
                    b'.' => {
                        return Scanned { send, detach: true };
                    }
                    b'~' => {
                        send.push(b'~');
                        self.line_start = false;
                        continue;
                    }
                    _ => send.push(b'~'),
                }
            } else if self.line_start && b == b'~' {
                self.tilde = true;
                continue;
            }
            send.push(b);
            self.line_start = b == b'\r' || b == b'\n';
        }
        Scanned {
            send,
            detach: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut s = EscapeScanner::default();
        let mut out = Vec::new();
        for c in chunks {
            let r = s.scan(c);
            out.extend(r.send);
            if r.detach {
                return (out, true);
            }
        }
        (out, false)
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
    }
}
