//! The EC2 instance metadata service, IMDSv2 style, on 127.0.0.1 (no root, no link-local
//! alias): `PUT /latest/api/token` gives a session token; every `GET` must carry it.
//!
//! Session tokens are stateless: base64url(expiry ‖ HMAC-SHA256(server key, expiry)), so the
//! server keeps nothing per client and checks them in constant time.
//!
//! Browser defences: the `Host` header must name this listener (DNS rebinding), a request with
//! an `Origin` header is refused (a web page must not read credentials), and so is a token
//! request carrying `X-Forwarded-For` (it came through a proxy), as on real instances.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use chrono::Utc;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use sha2::Sha256;

use super::{Shared, ok, text};

const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
const CREDENTIALS: &str = "/latest/meta-data/iam/security-credentials";
const CREDENTIALS_EXTENDED: &str = "/latest/meta-data/iam/security-credentials-extended";

pub async fn handle<B>(req: &Request<B>, shared: &Shared, allow_v1: bool) -> Response<Full<Bytes>> {
    if !host_is_ours(req, shared.port) {
        return text(StatusCode::FORBIDDEN, "Forbidden: unexpected Host header");
    }
    if req.headers().contains_key(hyper::header::ORIGIN) {
        return text(
            StatusCode::FORBIDDEN,
            "Forbidden: requests from web pages are refused",
        );
    }
    match *req.method() {
        Method::PUT if req.uri().path() == "/latest/api/token" => issue_token(req, shared),
        Method::GET => {
            match token_state(req, shared) {
                Token::Valid => {}
                Token::Missing if allow_v1 => {}
                Token::Missing | Token::Invalid => {
                    return text(StatusCode::UNAUTHORIZED, "Unauthorized");
                }
            }
            answer(req.uri().path(), shared).await
        }
        Method::PUT => text(StatusCode::NOT_FOUND, "Not Found"),
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
    }
}

fn host_is_ours<B>(req: &Request<B>, port: u16) -> bool {
    let Some(host) = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    // Host names are case-insensitive (RFC 9110).
    host.eq_ignore_ascii_case(&format!("127.0.0.1:{port}"))
        || host.eq_ignore_ascii_case(&format!("localhost:{port}"))
}

fn issue_token<B>(req: &Request<B>, shared: &Shared) -> Response<Full<Bytes>> {
    if req.headers().contains_key("x-forwarded-for") {
        return text(StatusCode::FORBIDDEN, "Forbidden");
    }
    let ttl = req
        .headers()
        .get(TTL_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|t| (1..=21600).contains(t));
    let Some(ttl) = ttl else {
        return text(
            StatusCode::BAD_REQUEST,
            "Bad Request: X-aws-ec2-metadata-token-ttl-seconds must be 1 to 21600",
        );
    };
    let expires = Utc::now().timestamp() + i64::from(ttl);
    let token = sign(&shared.imds_key, expires);
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/plain")
        // aws-sdk-rust refuses a token answer without the TTL echoed back.
        .header(TTL_HEADER, ttl.to_string())
        .body(Full::new(Bytes::from(token)))
        .expect("static response parts")
}

enum Token {
    Valid,
    Missing,
    Invalid,
}

fn token_state<B>(req: &Request<B>, shared: &Shared) -> Token {
    match req.headers().get(TOKEN_HEADER) {
        None => Token::Missing,
        Some(value) => match value
            .to_str()
            .ok()
            .and_then(|t| verify(&shared.imds_key, t))
        {
            Some(expires) if expires > Utc::now().timestamp() => Token::Valid,
            _ => Token::Invalid,
        },
    }
}

fn mac(key: &[u8; 32], expires: i64) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(&expires.to_be_bytes());
    mac
}

pub fn sign(key: &[u8; 32], expires: i64) -> String {
    let tag = mac(key, expires).finalize().into_bytes();
    let mut raw = expires.to_be_bytes().to_vec();
    raw.extend_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(raw)
}

/// The token's expiry (unix seconds) when its tag is right.
pub fn verify(key: &[u8; 32], token: &str) -> Option<i64> {
    let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
    if raw.len() != 8 + 32 {
        return None;
    }
    let expires = i64::from_be_bytes(raw[..8].try_into().ok()?);
    mac(key, expires).verify_slice(&raw[8..]).ok()?;
    Some(expires)
}

async fn answer(path: &str, shared: &Shared) -> Response<Full<Bytes>> {
    let trimmed = path.trim_end_matches('/');
    for base in [CREDENTIALS, CREDENTIALS_EXTENDED] {
        if trimmed == base {
            return ok("text/plain", Bytes::from(shared.role_name.clone()));
        }
        if let Some(name) = trimmed.strip_prefix(base).and_then(|r| r.strip_prefix('/')) {
            if name != shared.role_name {
                return text(StatusCode::NOT_FOUND, "Not Found");
            }
            return match shared.credentials().await {
                Ok(published) => ok("application/json", published.imds.clone()),
                Err(message) => {
                    let body = serde_json::json!({
                        "Code": "CredentialsUnavailable",
                        "Message": message,
                        "LastUpdated": crate::process::rfc3339(Utc::now()),
                    });
                    Response::builder()
                        .status(StatusCode::SERVICE_UNAVAILABLE)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(body.to_string())))
                        .expect("static response parts")
                }
            };
        }
    }
    let region = shared.region.as_str();
    match trimmed {
        "/latest/meta-data" => ok("text/plain", Bytes::from_static(b"iam/\nplacement/")),
        "/latest/meta-data/iam" => ok("text/plain", Bytes::from_static(b"security-credentials/")),
        "/latest/meta-data/placement" => ok(
            "text/plain",
            Bytes::from_static(b"availability-zone\nregion"),
        ),
        "/latest/meta-data/placement/region" => ok("text/plain", Bytes::from(region.to_owned())),
        "/latest/meta-data/placement/availability-zone" => {
            ok("text/plain", Bytes::from(format!("{region}a")))
        }
        "/latest/dynamic/instance-identity/document" => {
            // The account of the credentials being served (none before the first mint).
            let account_id = shared.supply.published().and_then(|p| p.account_id.clone());
            let doc = serde_json::json!({
                "region": region,
                "availabilityZone": format!("{region}a"),
                "accountId": account_id.unwrap_or_default(),
                "instanceId": "i-0000000000000vault",
                "instanceType": "vault.local",
                "imageId": "ami-00000000000000000",
                "architecture": std::env::consts::ARCH,
                "privateIp": "127.0.0.1",
                "version": "2017-09-30",
            });
            ok("application/json", Bytes::from(doc.to_string()))
        }
        _ => text(StatusCode::NOT_FOUND, "Not Found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_their_key() {
        let key = [7u8; 32];
        let token = sign(&key, 1_900_000_000);
        assert_eq!(verify(&key, &token), Some(1_900_000_000));
        assert_eq!(verify(&[8u8; 32], &token), None);
        let mut tampered = URL_SAFE_NO_PAD.decode(&token).unwrap();
        tampered[7] ^= 1;
        assert_eq!(verify(&key, &URL_SAFE_NO_PAD.encode(tampered)), None);
        assert_eq!(verify(&key, "nope"), None);
    }
}
