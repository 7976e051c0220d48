//! `query_has_credential` against a reference: the query as `application/x-www-form-urlencoded`
//! (what actix-web's `Query` and browsers use). Any credential name must be caught, exactly.
#![no_main]

use attachd::http::attach::{query_has_credential, URL_CREDENTIAL_PARAMS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let got = query_has_credential(query);
    let reference = form_urlencoded::parse(query.as_bytes()).any(|(k, _)| {
        URL_CREDENTIAL_PARAMS
            .iter()
            .any(|p| k.eq_ignore_ascii_case(p))
    });
    assert_eq!(
        got, reference,
        "query_has_credential({query:?}) = {got}, form-urlencoded says {reference}"
    );
});
