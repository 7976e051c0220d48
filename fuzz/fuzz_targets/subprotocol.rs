//! `Sec-WebSocket-Protocol` offers: `parse_offer` over any set of header values. An accepted
//! offer either offered nothing or offered `attach.v1`; a refusal is 400 or 401, nothing else.
#![no_main]

use attachd::error::ApiError;
use attachd::http::attach::{parse_offer, Offer, PROTOCOL};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let values: Vec<&str> = text.split('\n').collect();
    match parse_offer(values.iter().copied()) {
        Ok(offer) => {
            if offer.any {
                assert!(offer.v1, "accepted an offer without {PROTOCOL}: {values:?}");
                assert!(
                    values
                        .iter()
                        .flat_map(|v| v.split(','))
                        .any(|e| e.trim() == PROTOCOL),
                    "v1 without an {PROTOCOL} entry"
                );
            } else {
                assert_eq!(offer, Offer::default());
            }
            if let Some(b) = &offer.bearer {
                assert!(b.len() <= text.len(), "bearer longer than the header");
            }
        }
        Err(ApiError::UnsupportedProtocol) | Err(ApiError::Unauthorized) => {}
        Err(e) => panic!("unexpected {e:?}"),
    }
});
