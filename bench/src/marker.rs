//! Finds a marker in a byte stream that arrives in arbitrary chunks, and delimits and hashes
//! the stream section between a start and an end marker (for byte-exact fan-out checks).

use memchr::memmem;
use xxhash_rust::xxh3::Xxh3;

/// Finds `needle` across chunk boundaries.
pub struct Scanner {
    needle: Vec<u8>,
    tail: Vec<u8>,
}

impl Scanner {
    /// A scanner for `needle` (non-empty).
    pub fn new(needle: &[u8]) -> Self {
        Scanner {
            needle: needle.to_vec(),
            tail: Vec::with_capacity(needle.len()),
        }
    }

    /// Feeds a chunk; returns the offset in `chunk` just past the first match, if any.
    pub fn feed(&mut self, chunk: &[u8]) -> Option<usize> {
        let n = self.needle.len();
        // A match straddling the previous chunk: search tail + the chunk's first n-1 bytes.
        if !self.tail.is_empty() {
            let head = &chunk[..chunk.len().min(n - 1)];
            let mut joined = Vec::with_capacity(self.tail.len() + head.len());
            joined.extend_from_slice(&self.tail);
            joined.extend_from_slice(head);
            if let Some(i) = memmem::find(&joined, &self.needle) {
                let end = i + n - self.tail.len();
                self.tail.clear();
                return Some(end);
            }
        }
        if let Some(i) = memmem::find(chunk, &self.needle) {
            self.tail.clear();
            return Some(i + n);
        }
        // Keep the last n-1 bytes seen (a match may start there).
        if chunk.len() >= n - 1 {
            self.tail.clear();
            self.tail.extend_from_slice(&chunk[chunk.len() - (n - 1)..]);
        } else {
            self.tail.extend_from_slice(chunk);
            let excess = self.tail.len().saturating_sub(n - 1);
            self.tail.drain(..excess);
        }
        None
    }
}

/// Where a [`Section`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the start marker.
    Before,
    /// Between the markers.
    Inside,
    /// The end marker was seen.
    Done,
}

/// The bytes after `start` up to and including `end`: counted and hashed.
pub struct Section {
    start: Scanner,
    end: Scanner,
    hasher: Xxh3,
    /// Bytes inside the section so far.
    pub bytes: u64,
    /// Current phase.
    pub phase: Phase,
}

impl Section {
    /// A section delimited by two markers.
    pub fn new(start: &[u8], end: &[u8]) -> Self {
        Section {
            start: Scanner::new(start),
            end: Scanner::new(end),
            hasher: Xxh3::new(),
            bytes: 0,
            phase: Phase::Before,
        }
    }

    /// Feeds a chunk; returns the phase after it.
    pub fn feed(&mut self, chunk: &[u8]) -> Phase {
        let mut rest = chunk;
        if self.phase == Phase::Before {
            match self.start.feed(rest) {
                Some(off) => {
                    self.phase = Phase::Inside;
                    rest = &rest[off..];
                }
                None => return self.phase,
            }
        }
        if self.phase == Phase::Inside {
            let take = match self.end.feed(rest) {
                Some(off) => {
                    self.phase = Phase::Done;
                    &rest[..off]
                }
                None => rest,
            };
            self.hasher.update(take);
            self.bytes += take.len() as u64;
        }
        self.phase
    }

    /// The hash of the section so far.
    pub fn digest(&self) -> u64 {
        self.hasher.digest()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_across_chunks() {
        let mut s = Scanner::new(b"END-42");
        assert_eq!(s.feed(b"xxxxEN"), None);
        assert_eq!(s.feed(b"D-"), None);
        assert_eq!(s.feed(b"42yy"), Some(2));
        let mut s = Scanner::new(b"END-42");
        assert_eq!(s.feed(b"aEND-42b"), Some(7));
    }

    #[test]
    fn section_is_chunking_independent() {
        let stream = b"echo S-$((1))\r\nS-1abcdefghijE-2\r\n$ ".to_vec();
        let whole = {
            let mut s = Section::new(b"S-1", b"E-2");
            assert_eq!(s.feed(&stream), Phase::Done);
            (s.bytes, s.digest())
        };
        for size in 1..stream.len() {
            let mut s = Section::new(b"S-1", b"E-2");
            for c in stream.chunks(size) {
                s.feed(c);
            }
            assert_eq!(s.phase, Phase::Done, "chunk size {size}");
            assert_eq!((s.bytes, s.digest()), whole, "chunk size {size}");
        }
        assert_eq!(whole.0, b"abcdefghijE-2".len() as u64);
    }
}
