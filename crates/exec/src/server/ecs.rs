//! The container credentials endpoint (what ECS tasks see): `GET /` with the exact
//! `Authorization` token answers `{"AccessKeyId","SecretAccessKey","Token","Expiration"}`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use subtle::ConstantTimeEq;

use super::{Shared, json_error, ok};

pub async fn handle<B>(req: &Request<B>, shared: &Shared) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "only GET is served",
        );
    }
    let given = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .unwrap_or(b"");
    // Constant time: the comparison must not tell how much of a guess was right.
    if !bool::from(given.ct_eq(shared.ecs_token.as_bytes())) {
        return json_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "missing or wrong Authorization token (use AWS_CONTAINER_AUTHORIZATION_TOKEN)",
        );
    }
    if req.uri().path() != "/" {
        return json_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "credentials are served at /",
        );
    }
    match shared.credentials().await {
        Ok(published) => ok("application/json", published.ecs.clone()),
        Err(message) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "CredentialsUnavailable",
            &message,
        ),
    }
}
