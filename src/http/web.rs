//! The browser client, served from `server.web_root`, and the security headers every
//! response carries (CSP, frame and sniffing protection, HSTS on TLS).

use std::path::Path;

use actix_files::Files;
use actix_web::middleware::DefaultHeaders;
use actix_web::web::{self, ServiceConfig};
use actix_web::HttpResponse;

/// The Content-Security-Policy of the web client: no inline script, same-origin only.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'";

/// Headers added to every response.
pub fn security_headers(tls: bool) -> DefaultHeaders {
    let mut h = DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        .add(("Cross-Origin-Resource-Policy", "same-origin"))
        .add((
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=()",
        ))
        .add(("Content-Security-Policy", CSP));
    if tls {
        h = h.add((
            "Strict-Transport-Security",
            "max-age=63072000; includeSubDomains",
        ));
    }
    h
}

async fn not_built() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("The attachd web client is not built. Run `make web` (npm ci && npm run build in web/) and restart.\n")
}

/// Mounts the static client at `/`, or a note saying how to build it.
pub fn configure(cfg: &mut ServiceConfig, root: &Path) {
    if root.join("index.html").is_file() {
        cfg.service(
            Files::new("/", root)
                .index_file("index.html")
                .prefer_utf8(true)
                .default_handler(web::to(crate::http::not_found)),
        );
    } else {
        cfg.route("/", web::get().to(not_built))
            .default_service(web::to(crate::http::not_found));
    }
}
