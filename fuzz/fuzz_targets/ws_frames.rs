//! WebSocket frames from a client: attachd's `FrameDecoder` (actix-http's RFC 6455 codec plus
//! attachd's reassembly, UTF-8 and size checks) fed in arbitrary chunks.
#![no_main]

use attachd::ws::decode::FrameDecoder;
use attachd_actors::connection::Inbound;
use attachd_actors::protocol::close;
use libfuzzer_sys::fuzz_target;

/// attachd's smallest allowed `ws.max_message_bytes` (reachable by the fuzzer) and its default.
const MAX_SIZES: [usize; 2] = [1024, 1_048_576];

/// Structured mode: the input is a list of frames, masked here as a client must.
fn frames(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 2 <= data.len() {
        let head = data[i];
        let len = (data[i + 1] as usize) % 200;
        i += 2;
        let payload = &data[i..(i + len).min(data.len())];
        i += payload.len();
        out.push(head);
        if payload.len() < 126 {
            out.push(0x80 | payload.len() as u8);
        } else {
            out.push(0x80 | 126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(j, b)| b ^ mask[j % 4]));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (mode, chunk, rest) = (data[0], data[1], &data[2..]);
    let max = MAX_SIZES[(mode & 1) as usize];
    let wire = if mode & 0x80 != 0 {
        frames(rest)
    } else {
        rest.to_vec()
    };
    // Deliver the bytes in chunks of 1..=256 bytes, like a slow or fragmenting network.
    let step = chunk as usize + 1;
    let mut decoder = FrameDecoder::new(max);
    let mut ended = false;
    for piece in wire.chunks(step) {
        decoder.feed(piece);
        while let Some(item) = decoder.next_message() {
            assert!(!ended, "an item after a close or violation");
            match item {
                Inbound::Text(t) => assert!(t.len() <= max, "text of {} > {max}", t.len()),
                Inbound::Binary(b) => assert!(b.len() <= max, "binary of {} > {max}", b.len()),
                // RFC 6455 §5.5: control frames carry at most 125 bytes.
                Inbound::Ping(p) => assert!(p.len() <= 125, "ping of {} bytes", p.len()),
                Inbound::Pong => {}
                // Told by the heartbeat, never decoded.
                Inbound::Silent => panic!("the decoder yielded Silent"),
                Inbound::Close(_) => ended = true,
                Inbound::Violation(code) => {
                    assert!(
                        [
                            close::PROTOCOL_ERROR,
                            close::INVALID_PAYLOAD,
                            close::MESSAGE_TOO_BIG
                        ]
                        .contains(&code),
                        "unexpected close code {code}"
                    );
                    ended = true;
                }
            }
        }
        assert_eq!(
            ended,
            decoder.is_done(),
            "done flag disagrees with the frames seen"
        );
    }
});
