//! Configuration: `config::load` on any TOML file (dev and prod), then `Settings::validate`.
//! A configuration that validates in prod always has TLS, credentials and exact origins.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use attachd::config::{is_exact_origin, load, Env};
use libfuzzer_sys::fuzz_target;

fn path() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        std::env::temp_dir().join(format!("attachd-fuzz-config-{}.toml", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let dev = data[0] & 1 == 1;
    std::fs::write(path(), &data[1..]).expect("write the config file");
    let Ok(settings) = load(Some(path().as_path()), dev) else {
        return;
    };
    if settings.validate().is_err() {
        return;
    }
    let _ = settings.effective_origins(settings.server.listen.port());
    if settings.env == Env::Prod {
        let s = &settings.server;
        assert!(
            s.tls_cert.is_some() || s.tls_terminated_upstream,
            "prod without TLS"
        );
        assert!(!s.conformance_echo, "prod with the echo endpoint");
        assert!(
            !settings.auth.static_tokens.is_empty() || settings.auth.jwt.is_some(),
            "prod without credentials"
        );
        for t in &settings.auth.static_tokens {
            assert!(!t.scopes.iter().any(|s| s == "*"), "wildcard scope in prod");
        }
    }
    assert!(settings
        .server
        .allowed_origins
        .iter()
        .all(|o| is_exact_origin(o)));
});
