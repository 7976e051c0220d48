//! Request extractors of the HTTP layer: the bearer credential, `Auth` (the authenticated API
//! caller, verified by `auth::Authenticator`, or 401) and `JsonObject` (a JSON object body).

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
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req).map(str::to_owned);
        Box::pin(async move {
            match (state, token) {
                // A JWT of a JWKS issuer may wait for one bounded key fetch.
                (Some(st), Some(tok)) => st.auth.verify(&tok).await.map(Auth),
                (None, _) => Err(ApiError::Internal("state missing".into())),
                (_, None) => Err(ApiError::Unauthorized),
            }
        })
    }
}

/// A JSON request body that must be an object: serde alone would also read a struct from an
/// array (`[null, null]`), which the API's bodies never are.
pub struct JsonObject<T>(pub T);

impl<T: serde::de::DeserializeOwned + 'static> FromRequest for JsonObject<T> {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let object =
            web::Json::<serde_json::Map<String, serde_json::Value>>::from_request(req, payload);
        Box::pin(async move {
            let map = object.await?.into_inner();
            serde_json::from_value(serde_json::Value::Object(map))
                .map(JsonObject)
                .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")).into())
        })
    }
}
