//! Server frames on the wire: the header of an unmasked, final frame and the close payload.
//! Payloads are never copied here; the socket writes header and payload side by side.

use attachd_actors::outbound::OutFrame;
use attachd_actors::protocol::close;
use bytes::Bytes;

/// Longest server frame header: 2 bytes + a 64-bit length.
pub const MAX_HEADER: usize = 10;

/// The header of a server frame (FIN set, unmasked) carrying `len` payload bytes.
pub fn header(opcode: u8, len: usize) -> ([u8; MAX_HEADER], usize) {
    let mut h = [0u8; MAX_HEADER];
    h[0] = 0x80 | opcode;
    if len < 126 {
        h[1] = len as u8;
        (h, 2)
    } else if len <= usize::from(u16::MAX) {
        h[1] = 126;
        h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        (h, 4)
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        (h, 10)
    }
}

/// The opcode and payload of a queued frame (pongs are cut to the 125 bytes a control frame
/// may carry; a close carries its code and the SPEC's reason).
pub fn parts(frame: OutFrame) -> (u8, Bytes) {
    match frame {
        OutFrame::Text(b) => (0x1, b),
        OutFrame::Binary(b) => (0x2, b),
        OutFrame::Ping(b) => (0x9, b),
        OutFrame::Pong(b) => (0xA, b.slice(..b.len().min(125))),
        OutFrame::Close(code) => {
            let mut p = code.to_be_bytes().to_vec();
            p.extend_from_slice(close::reason(code).as_bytes());
            (0x8, Bytes::from(p))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lengths() {
        assert_eq!(header(2, 2), ([0x82, 2, 0, 0, 0, 0, 0, 0, 0, 0], 2));
        let (h, n) = header(2, 200);
        assert_eq!(&h[..n], &[0x82, 126, 0, 200]);
        let (h, n) = header(2, 70000);
        assert_eq!(&h[..n], &[0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }

    #[test]
    fn close_and_pong_payloads() {
        let (op, p) = parts(OutFrame::Close(1000));
        assert_eq!(op, 0x8);
        assert_eq!(&p[..2], &1000u16.to_be_bytes());
        let (op, p) = parts(OutFrame::Pong(Bytes::from(vec![7; 300])));
        assert_eq!((op, p.len()), (0xA, 125));
    }
}
