//! The last `session.scrollback_bytes` of terminal output, replayed to late joiners.
//! A ring of shared chunks: appending never copies output, replay is one contiguous copy.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// Keeps the newest `capacity` bytes of output.
#[derive(Debug)]
pub struct Scrollback {
    chunks: VecDeque<Bytes>,
    len: usize,
    capacity: usize,
}

impl Scrollback {
    /// An empty ring holding at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        Scrollback {
            chunks: VecDeque::new(),
            len: 0,
            capacity,
        }
    }

    /// Appends output, dropping the oldest bytes beyond capacity.
    pub fn push(&mut self, chunk: &Bytes) {
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

    /// The retained bytes, oldest first.
    pub fn snapshot(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.len);
        for c in &self.chunks {
            out.extend_from_slice(c);
        }
        out.freeze()
    }

    /// Number of retained bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is retained.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_bytes() {
        let mut s = Scrollback::new(8);
        s.push(&Bytes::from_static(b"hello "));
        s.push(&Bytes::from_static(b"world"));
        assert_eq!(&s.snapshot()[..], b"lo world");
        s.push(&Bytes::from_static(b"0123456789"));
        assert_eq!(&s.snapshot()[..], b"23456789");
        assert_eq!(s.len(), 8);
        let mut z = Scrollback::new(0);
        z.push(&Bytes::from_static(b"x"));
        assert!(z.is_empty());
    }
}
