//! The one-shot HTTP server on 127.0.0.1 that receives the browser's redirect in the
//! authorization code flow: it answers the page, hands over the code (or the refusal) once,
//! and ignores requests that do not carry our `state`.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

#[derive(Debug)]
pub enum End {
    Denied,
    TimedOut,
    Failed(String),
    /// The redirect carried an OAuth error other than `access_denied` (RFC 6749 §4.1.2.1).
    Refused {
        error: String,
        description: Option<String>,
    },
    Io(std::io::Error),
}

const DONE_PAGE: &str = "<!doctype html><title>vault</title><p>Signed in. You can close this tab and return to the terminal.</p>";
const DENIED_PAGE: &str = "<!doctype html><title>vault</title><p>The sign-in was not approved.</p>";

/// Serves `GET /oauth/callback` until one carries our `state` (a request with another
/// state is answered 400 and ignored: it is not ours), or the deadline.
pub async fn wait_for_code(
    listener: std::net::TcpListener,
    state: &str,
    deadline: Instant,
) -> Result<zeroize::Zeroizing<String>, End> {
    let listener = tokio::net::TcpListener::from_std(listener).map_err(End::Io)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Result<zeroize::Zeroizing<String>, End>>();
    let state: Arc<str> = Arc::from(state);
    let sent = Arc::new(Mutex::new(false));
    let sleep = tokio::time::sleep_until(deadline.into());
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = &mut sleep => return Err(End::TimedOut),
            Some(result) = rx.recv() => return result,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let (tx, state, sent) = (tx.clone(), state.clone(), sent.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                        let answer = answer(&request, &state, &tx, &sent);
                        async move { Ok::<_, Infallible>(answer) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

fn answer(
    request: &Request<hyper::body::Incoming>,
    state: &str,
    tx: &mpsc::UnboundedSender<Result<zeroize::Zeroizing<String>, End>>,
    sent: &Mutex<bool>,
) -> Response<Full<Bytes>> {
    let page = |status: StatusCode, body: &'static str| {
        let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *response.status_mut() = status;
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
        );
        response
    };
    if request.method() != hyper::Method::GET || request.uri().path() != "/oauth/callback" {
        return page(StatusCode::NOT_FOUND, "<!doctype html><p>Not found.</p>");
    }
    let query = request.uri().query().unwrap_or("");
    let (mut code, mut got_state, mut error, mut description) = (None, None, None, None);
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "code" => code = Some(zeroize::Zeroizing::new(value.into_owned())),
            "state" => got_state = Some(value.into_owned()),
            "error" => error = Some(value.into_owned()),
            "error_description" => description = Some(value.into_owned()),
            _ => {}
        }
    }
    if got_state.as_deref() != Some(state) {
        return page(
            StatusCode::BAD_REQUEST,
            "<!doctype html><p>This sign-in link is not the one vault is waiting for.</p>",
        );
    }
    let mut done = sent.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return page(StatusCode::OK, DONE_PAGE);
    }
    *done = true;
    match (code, error) {
        (Some(code), None) => {
            let _ = tx.send(Ok(code));
            page(StatusCode::OK, DONE_PAGE)
        }
        (_, Some(error)) if error == "access_denied" => {
            let _ = tx.send(Err(End::Denied));
            page(StatusCode::OK, DENIED_PAGE)
        }
        (_, Some(error)) => {
            let _ = tx.send(Err(End::Refused { error, description }));
            page(StatusCode::BAD_REQUEST, DENIED_PAGE)
        }
        (None, None) => {
            let _ = tx.send(Err(End::Failed("the redirect carried no code".to_owned())));
            page(StatusCode::BAD_REQUEST, DENIED_PAGE)
        }
    }
}
