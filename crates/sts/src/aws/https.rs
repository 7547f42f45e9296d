//! One GET over HTTPS (or HTTP, for a local stand-in) with the SDK's TLS stack, for what is
//! no SDK operation: the federation endpoint's sign-in token and STS's `Date` header.

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::error_chain;

/// The status, the body and the `Date` header.
pub async fn get(uri: hyper::Uri) -> Result<(u16, Vec<u8>, Option<String>), String> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("no TLS root certificates: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let request = hyper::Request::get(uri)
        .header("user-agent", concat!("vault/", env!("CARGO_PKG_VERSION")))
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let response =
        tokio::time::timeout(std::time::Duration::from_secs(20), client.request(request))
            .await
            .map_err(|_| "timed out after 20 s".to_owned())?
            .map_err(|e| error_chain(&e))?;
    let status = response.status().as_u16();
    let date = response
        .headers()
        .get(hyper::header::DATE)
        .and_then(|d| d.to_str().ok())
        .map(str::to_owned);
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes()
        .to_vec();
    Ok((status, body, date))
}
