//! The session's output ring: the newest `session.replay_bytes` of output with their offsets,
//! from which resumes are answered exactly and joiners catch up to the live stream.
//! A ring of shared chunks: appending never copies output.

use std::collections::VecDeque;

use bytes::Bytes;

/// Default `session.replay_bytes`.
pub const DEFAULT_REPLAY_BYTES: usize = 1 << 20;

/// The newest output, addressed by output offset.
#[derive(Debug)]
pub struct OutputRing {
    chunks: VecDeque<Bytes>,
    len: usize,
    capacity: usize,
    end: u64,
}

impl OutputRing {
    /// An empty ring holding at most `capacity` bytes; the session's output starts at `offset`.
    pub fn new(capacity: usize, offset: u64) -> Self {
        OutputRing {
            chunks: VecDeque::new(),
            len: 0,
            capacity,
            end: offset,
        }
    }

    /// Offset just past the newest byte (the session's output offset).
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Offset of the oldest byte still held.
    pub fn start(&self) -> u64 {
        self.end - self.len as u64
    }

    /// Appends output, dropping the oldest bytes beyond capacity.
    pub fn push(&mut self, chunk: &Bytes) {
        self.end += chunk.len() as u64;
        if self.capacity == 0 || chunk.is_empty() {
            return;
        }
        if chunk.len() >= self.capacity {
            self.chunks.clear();
            self.chunks
                .push_back(chunk.slice(chunk.len() - self.capacity..));
            self.len = self.capacity;
            return;
        }
        self.chunks.push_back(chunk.clone());
        self.len += chunk.len();
        while self.len > self.capacity {
            let excess = self.len - self.capacity;
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            if front.len() <= excess {
                self.len -= front.len();
                self.chunks.pop_front();
            } else {
                *front = front.slice(excess..);
                self.len -= excess;
            }
        }
    }

    /// The output from `offset` to the end, as shared chunks; `None` if the ring no longer
    /// holds `offset` or it lies in the future.
    pub fn since(&self, offset: u64) -> Option<Vec<Bytes>> {
        if offset < self.start() || offset > self.end {
            return None;
        }
        let mut skip = usize::try_from(offset - self.start()).ok()?;
        let mut out = Vec::new();
        for c in &self.chunks {
            if skip >= c.len() {
                skip -= c.len();
                continue;
            }
            out.push(c.slice(skip..));
            skip = 0;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(v: Vec<Bytes>) -> Vec<u8> {
        v.concat()
    }

    #[test]
    fn replays_exactly_from_any_held_offset() {
        let mut r = OutputRing::new(10, 100);
        r.push(&Bytes::from_static(b"abcd"));
        r.push(&Bytes::from_static(b"efgh"));
        assert_eq!((r.start(), r.end()), (100, 108));
        assert_eq!(joined(r.since(102).unwrap()), b"cdefgh");
        assert_eq!(joined(r.since(108).unwrap()), b"");
        r.push(&Bytes::from_static(b"ijkl"));
        assert_eq!((r.start(), r.end()), (102, 112));
        assert_eq!(joined(r.since(102).unwrap()), b"cdefghijkl");
        assert!(r.since(101).is_none());
        assert!(r.since(113).is_none());
    }

    #[test]
    fn a_chunk_larger_than_the_ring_keeps_its_tail() {
        let mut r = OutputRing::new(4, 0);
        r.push(&Bytes::from_static(b"0123456789"));
        assert_eq!((r.start(), r.end()), (6, 10));
        assert_eq!(joined(r.since(7).unwrap()), b"789");
    }

    #[test]
    fn a_zero_ring_still_counts_offsets() {
        let mut r = OutputRing::new(0, 5);
        r.push(&Bytes::from_static(b"xyz"));
        assert_eq!(r.end(), 8);
        assert_eq!(joined(r.since(8).unwrap()), b"");
        assert!(r.since(7).is_none());
    }
}
