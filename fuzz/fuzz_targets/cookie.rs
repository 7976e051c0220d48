//! Cookie headers as attachd reads them: actix-web's `HttpRequest::cookie` behind
//! `attach::cookie_ticket`, over one or more `Cookie` header lines.
#![no_main]

use actix_web::http::header::{HeaderValue, COOKIE};
use attachd::http::attach::cookie_ticket;
use attachd::tickets::well_formed;
use libfuzzer_sys::fuzz_target;

fn percent_decode(data: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'%' && i + 2 < data.len() {
            if let (Some(h), Some(l)) = (hex(data[i + 1]), hex(data[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(data[i]);
        i += 1;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let mut req = actix_web::test::TestRequest::default();
    let mut lines = 0;
    for line in data.split(|b| *b == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            req = req.append_header((COOKIE, v));
            lines += 1;
        }
    }
    let req = req.to_http_request();
    let ticket = cookie_ticket(&req);
    if let Some(t) = &ticket {
        assert!(lines > 0, "a ticket from no Cookie header");
        let _ = well_formed(t);
        // The value comes from an `attach_ticket` pair somewhere in the headers (actix
        // percent-decodes cookie names and values).
        let decoded = percent_decode(data);
        assert!(
            decoded
                .windows(b"attach_ticket".len())
                .any(|w| w == b"attach_ticket"),
            "ticket {t:?} without an attach_ticket name"
        );
    }
});
