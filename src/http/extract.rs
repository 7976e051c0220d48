//! Request extractors of the HTTP layer: the bearer credential of a request and `Auth`, the
//! authenticated API caller (verified by `auth::Authenticator`), or 401.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// The bearer credential of a request, if any.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// Extractor: the authenticated API caller, or 401.
pub struct Auth(pub Principal);

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        ready(match (state, bearer(req)) {
            (Some(st), Some(tok)) => st.auth.verify(tok).map(Auth),
            (None, _) => Err(ApiError::Internal("state missing".into())),
            (_, None) => Err(ApiError::Unauthorized),
        })
    }
}
