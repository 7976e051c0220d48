//! Ticket decoding: `tickets::well_formed` on any string, and the bearer-subprotocol path of
//! `parse_offer` (base64url, no padding, then UTF-8) round-tripping arbitrary bytes.
#![no_main]

use attachd::error::ApiError;
use attachd::http::attach::{parse_offer, BEARER_PREFIX, PROTOCOL};
use attachd::tickets::{well_formed, TICKET_PREFIX};
use base64::Engine;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if well_formed(&text) {
        assert_eq!(text.len(), TICKET_PREFIX.len() + 43);
        assert!(text.is_ascii());
    }

    // What the client encodes is what the server decodes.
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data);
    let header = format!("{PROTOCOL}, {BEARER_PREFIX}{b64}");
    match (
        parse_offer([header.as_str()].into_iter()),
        std::str::from_utf8(data),
    ) {
        (Ok(offer), Ok(s)) => {
            assert!(offer.v1 && offer.any);
            assert_eq!(offer.bearer.as_deref(), Some(s));
        }
        (Err(ApiError::Unauthorized), Err(_)) => {}
        (other, utf8) => panic!("{other:?} for utf8={:?}", utf8.is_ok()),
    }

    // The raw input as the base64 part: never a panic, only 401 when it does not decode.
    let raw = format!("{PROTOCOL},{BEARER_PREFIX}{text}");
    match parse_offer([raw.as_str()].into_iter()) {
        Ok(_) | Err(ApiError::Unauthorized) => {}
        Err(e) => panic!("unexpected {e:?}"),
    }
});
