//! Incremental, lossy UTF-8 decoding of terminal output for the emulator, which reads `&str`.
//! A character split across two output chunks is carried over; invalid bytes become U+FFFD.

/// Decodes a byte stream chunk by chunk, carrying an incomplete trailing character.
#[derive(Debug, Default, Clone)]
pub struct Utf8Stream {
    carry: [u8; 4],
    carry_len: usize,
}

impl Utf8Stream {
    /// Bytes of an incomplete character held back from the last chunk.
    pub fn pending(&self) -> &[u8] {
        &self.carry[..self.carry_len]
    }

    /// Decodes `input`, calling `sink` with each run of text (in order).
    pub fn decode(&mut self, input: &[u8], mut sink: impl FnMut(&str)) {
        self.decode_dyn(input, &mut sink);
    }

    fn decode_dyn(&mut self, mut input: &[u8], sink: &mut dyn FnMut(&str)) {
        if self.carry_len > 0 {
            // Complete the carried character with as few bytes as it needs.
            while self.carry_len < 4 && !input.is_empty() {
                self.carry[self.carry_len] = input[0];
                self.carry_len += 1;
                input = &input[1..];
                match std::str::from_utf8(&self.carry[..self.carry_len]) {
                    Ok(s) => {
                        sink(s);
                        self.carry_len = 0;
                        break;
                    }
                    Err(e) if e.error_len().is_some() => {
                        // Not a valid start after all: one replacement, then rescan the rest.
                        sink("\u{FFFD}");
                        let bad = e.error_len().unwrap_or(1).max(1);
                        let rest = self.carry[bad.min(self.carry_len)..self.carry_len].to_vec();
                        self.carry_len = 0;
                        self.decode_dyn(&rest, sink);
                        break;
                    }
                    Err(_) => {}
                }
            }
            if self.carry_len > 0 {
                return;
            }
        }
        loop {
            match std::str::from_utf8(input) {
                Ok(s) => {
                    if !s.is_empty() {
                        sink(s);
                    }
                    return;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    if valid > 0 {
                        sink(std::str::from_utf8(&input[..valid]).unwrap_or_default());
                    }
                    match e.error_len() {
                        Some(n) => {
                            sink("\u{FFFD}");
                            input = &input[valid + n..];
                        }
                        None => {
                            let tail = &input[valid..];
                            self.carry[..tail.len()].copy_from_slice(tail);
                            self.carry_len = tail.len();
                            return;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> String {
        let mut d = Utf8Stream::default();
        let mut out = String::new();
        for c in chunks {
            d.decode(c, |s| out.push_str(s));
        }
        out
    }

    #[test]
    fn characters_split_across_chunks_are_joined() {
        let s = "a中b😀c".as_bytes();
        for cut in 0..s.len() {
            assert_eq!(run(&[&s[..cut], &s[cut..]]), "a中b😀c", "cut at {cut}");
        }
        let one_by_one: Vec<&[u8]> = s.chunks(1).collect();
        assert_eq!(run(&one_by_one), "a中b😀c");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        assert_eq!(run(&[b"a\xffb"]), "a\u{FFFD}b");
        assert_eq!(run(&[b"a\xe4", b"b"]), "a\u{FFFD}b");
        assert_eq!(run(&[b"\xe4\xb8", b"\xff"]), "\u{FFFD}\u{FFFD}");
    }

    #[test]
    fn pending_holds_an_incomplete_tail() {
        let mut d = Utf8Stream::default();
        d.decode("中".as_bytes().get(..2).unwrap(), |_| {});
        assert_eq!(d.pending(), &"中".as_bytes()[..2]);
    }
}
