//! Fuzz target for the credential servers' request handling: arbitrary methods, paths and
//! headers (the input's first line is `METHOD PATH`, the others `Name: value`) against the
//! ECS and IMDS handlers. Nothing may panic, and nothing but the child's token may get
//! credentials. See `vault_fuzz` for how targets run.

use std::sync::Arc;

use hyper::Request;
use secrecy::SecretString;
use vault_store::Credentials;

use super::{Protocol, Published, Shared, Supply};

const TOKEN: &str = "fuzz-ecs-token-000000000000000000000000000";

fn shared(kind: Protocol) -> Shared {
    let credentials = Credentials {
        access_key_id: SecretString::from("ASIAIOSFODNN7EXAMPLE"),
        secret_access_key: SecretString::from("fuzz-secret"),
        session_token: Some(SecretString::from("fuzz-token")),
        expiration: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
    };
    let (renew, _) = std::sync::mpsc::channel();
    let shared = Shared {
        kind,
        port: 8080,
        ecs_token: TOKEN.into(),
        imds_key: [3u8; 32],
        supply: Supply::new(renew, chrono::Duration::minutes(15)),
        role_name: "lab".into(),
        region: "eu-west-1".into(),
    };
    shared.supply.publish(Arc::new(
        Published::render(&credentials, Some("123456789012")).expect("renders"),
    ));
    shared
}

/// The request the input describes, when it is one hyper could have parsed.
fn request(input: &[u8]) -> Option<Request<()>> {
    let text = std::str::from_utf8(input).ok()?;
    let mut lines = text.split("\r\n");
    let (method, path) = lines.next()?.split_once(' ')?;
    let mut builder = Request::builder().method(method).uri(path);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        builder = builder.header(name.trim(), value.trim());
    }
    builder.body(()).ok()
}

#[test]
fn fuzz_server_requests() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let servers = [
        shared(Protocol::Ecs),
        shared(Protocol::Imds { allow_v1: false }),
        shared(Protocol::Imds { allow_v1: true }),
    ];
    let seeds: &[&[u8]] = &[
        b"GET /\r\nAuthorization: fuzz-ecs-token-000000000000000000000000000\r\nHost: 127.0.0.1:8080",
        b"PUT /latest/api/token\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\nHost: 127.0.0.1:8080",
        b"GET /latest/meta-data/iam/security-credentials/lab\r\nX-aws-ec2-metadata-token: AAAA\r\nHost: localhost:8080",
        b"GET /latest/dynamic/instance-identity/document\r\nHost: 127.0.0.1:8080\r\nOrigin: http://evil",
        b"POST /latest/api/token\r\nX-Forwarded-For: 1.2.3.4\r\nHost: 127.0.0.1:8080",
    ];
    let tokens: &[&[u8]] = &[
        b"\r\nHost: 127.0.0.1:8080",
        b"\r\nAuthorization: ",
        b"\r\nX-aws-ec2-metadata-token: ",
        b"\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600",
        b"/latest/meta-data/iam/security-credentials/",
        b"%2e%2e/",
        b"\r\nOrigin: null",
    ];
    vault_fuzz::fuzz("server_requests", seeds, tokens, |input| {
        let Some(req) = request(input) else {
            return;
        };
        for shared in &servers {
            let response = runtime.block_on(async {
                match shared.kind {
                    Protocol::Ecs => super::ecs::handle(&req, shared).await,
                    Protocol::Imds { allow_v1 } => {
                        super::imds::handle(&req, shared, allow_v1).await
                    }
                }
            });
            // The ECS endpoint answers credentials only to its exact token.
            if shared.kind == Protocol::Ecs && response.status() == 200 {
                let auth = req.headers().get("authorization").map(|v| v.as_bytes());
                assert_eq!(
                    auth,
                    Some(TOKEN.as_bytes()),
                    "credentials without the token"
                );
            }
        }
    });
}
