//! Credential servers for long jobs: an ECS-style container endpoint and an IMDSv2 endpoint,
//! both on 127.0.0.1 and a port the OS picks, both renewing credentials ahead of expiry.
//!
//! Threads: the HTTP server runs on a small tokio runtime of its own. Credentials are owned by
//! the main thread (which holds the vault and the minter, neither of which may run on an async
//! runtime thread); it publishes rendered answers into [`Shared`], and handlers that find
//! nothing fresh ask it for a renewal through a channel.

pub mod broker;
pub mod ecs;
#[cfg(test)]
mod fuzz;
pub mod imds;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::mpsc::Sender;
use std::sync::{Arc, RwLock};
use std::time::Duration as StdDuration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use secrecy::ExposeSecret;
use serde::Serialize;
use vault_store::Credentials;
use zeroize::Zeroizing;

use crate::process::rfc3339;

/// Credentials handed out always have at least this long left: botocore refreshes 15 minutes
/// before expiry (10 mandatory), so anything shorter would make every SDK call refresh.
pub const MIN_HANDED_OUT: chrono::Duration = chrono::Duration::minutes(15);
/// Renew this long before expiry, in the background (and never hand out a cached session
/// with less left, so a renewal is not undone by the cache).
pub const RENEW_AHEAD: std::time::Duration = std::time::Duration::from_secs(20 * 60);

/// Which endpoint to serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Ecs,
    Imds { allow_v1: bool },
}

/// Answers rendered once per set of credentials. The bodies hold secrets: they live in
/// zeroizing buffers, shared with hyper without copies, and are wiped when the last reader
/// drops them.
#[derive(Debug)]
pub struct Published {
    pub ecs: Bytes,
    pub imds: Bytes,
    pub expires: DateTime<Utc>,
    /// The account of these credentials, for the IMDS identity document.
    pub account_id: Option<String>,
    /// The access key id, redacted, for the broker's audit log.
    pub key_id_redacted: String,
}

impl Published {
    pub fn render(credentials: &Credentials, account_id: Option<&str>) -> Option<Published> {
        let expires = credentials.expiration?;
        let token = credentials.session_token.as_ref()?;
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Ecs<'a> {
            access_key_id: &'a str,
            secret_access_key: &'a str,
            token: &'a str,
            expiration: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            account_id: Option<&'a str>,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Imds<'a> {
            code: &'a str,
            last_updated: String,
            r#type: &'a str,
            access_key_id: &'a str,
            secret_access_key: &'a str,
            token: &'a str,
            expiration: String,
        }
        let ecs = Ecs {
            access_key_id: credentials.access_key_id.expose_secret(),
            secret_access_key: credentials.secret_access_key.expose_secret(),
            token: token.expose_secret(),
            expiration: rfc3339(expires),
            account_id,
        };
        let imds = Imds {
            code: "Success",
            last_updated: rfc3339(Utc::now()),
            r#type: "AWS-HMAC",
            access_key_id: credentials.access_key_id.expose_secret(),
            secret_access_key: credentials.secret_access_key.expose_secret(),
            token: token.expose_secret(),
            expiration: rfc3339(expires),
        };
        let secret_bytes = |value: &dyn erased::Json| -> Bytes {
            let mut buf = Zeroizing::new(Vec::with_capacity(2048));
            value.write(&mut buf);
            Bytes::from_owner(buf)
        };
        Some(Published {
            ecs: secret_bytes(&ecs),
            imds: secret_bytes(&imds),
            expires,
            account_id: account_id.map(str::to_owned),
            key_id_redacted: vault_store::redact_key_id(credentials.access_key_id.expose_secret()),
        })
    }

    /// Whether these credentials may still be handed out: more than `min_left` to go.
    pub fn fresh(&self, now: DateTime<Utc>, min_left: chrono::Duration) -> bool {
        self.expires - now > min_left
    }
}

mod erased {
    /// Serialises straight into a caller's (zeroizing) buffer.
    pub trait Json {
        fn write(&self, out: &mut Vec<u8>);
    }
    impl<T: serde::Serialize> Json for T {
        fn write(&self, out: &mut Vec<u8>) {
            serde_json::to_writer(out, self).expect("credentials serialise");
        }
    }
}

/// A request from a handler to the credential owner: renew, then answer on `reply`.
pub type RenewReply = tokio::sync::oneshot::Sender<Result<Arc<Published>, String>>;

/// One set of credentials being served: the answer published now, and the way to ask its
/// owner (the thread holding the vault and the minter) for a renewal.
pub struct Supply {
    pub current: RwLock<Option<Arc<Published>>>,
    pub renew: std::sync::Mutex<Sender<RenewReply>>,
    /// Hand out only credentials with more than this left: 15 minutes, or `AWS_MIN_TTL`
    /// when that is longer.
    pub min_left: chrono::Duration,
}

impl Supply {
    pub fn new(renew: Sender<RenewReply>, min_left: chrono::Duration) -> Supply {
        Supply {
            current: RwLock::new(None),
            renew: std::sync::Mutex::new(renew),
            min_left,
        }
    }

    /// The published answer, fresh or not.
    pub fn published(&self) -> Option<Arc<Published>> {
        self.current.read().expect("not poisoned").clone()
    }

    /// The published answer if it may still be handed out.
    pub fn fresh(&self) -> Option<Arc<Published>> {
        self.published()
            .filter(|p| p.fresh(Utc::now(), self.min_left))
    }

    /// Fresh credentials: the published ones, or renewed ones (waiting for the owner).
    pub async fn credentials(&self) -> Result<Arc<Published>, String> {
        if let Some(p) = self.fresh() {
            return Ok(p);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.renew.lock().expect("not poisoned").send(tx);
        if sent.is_err() {
            return Err("vault is shutting down".into());
        }
        match tokio::time::timeout(StdDuration::from_secs(300), rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("vault is shutting down".into()),
            Err(_) => {
                Err("timed out waiting for new credentials (an MFA prompt unanswered?)".into())
            }
        }
    }

    pub fn publish(&self, published: Arc<Published>) {
        *self.current.write().expect("not poisoned") = Some(published);
    }
}

/// State shared by the handlers of `exec --server`/`--imds`.
pub struct Shared {
    pub kind: Protocol,
    pub port: u16,
    /// The ECS endpoint's bearer token (exact match of the Authorization header).
    pub ecs_token: String,
    /// Key for IMDS session tokens (HMAC of their expiry).
    pub imds_key: [u8; 32],
    pub supply: Supply,
    /// The role name shown by the IMDS endpoint.
    pub role_name: String,
    pub region: String,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("kind", &self.kind)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Fresh credentials: the published ones, or renewed ones (waiting for the owner).
    pub async fn credentials(&self) -> Result<Arc<Published>, String> {
        self.supply.credentials().await
    }
}

/// What a server answers: one request at a time, told who asked.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> impl std::future::Future<Output = Response<Full<Bytes>>> + Send;
}

impl Handler for Shared {
    async fn handle(&self, req: Request<Incoming>, _peer: SocketAddr) -> Response<Full<Bytes>> {
        let response = match self.kind {
            Protocol::Ecs => ecs::handle(&req, self).await,
            Protocol::Imds { allow_v1 } => imds::handle(&req, self, allow_v1).await,
        };
        // The path only: never headers (they carry tokens).
        tracing::debug!(method = %req.method(), path = req.uri().path(), status = response.status().as_u16(), "credential server");
        response
    }
}

/// Random bytes from the OS, URL-safe base64.
pub fn random_token(bytes: usize) -> String {
    use base64::Engine as _;
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// A listener on 127.0.0.1 and a port the OS picks.
pub fn bind() -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// A client must send a whole request head within this long.
const HEADER_READ_TIMEOUT: StdDuration = StdDuration::from_secs(5);
/// A keep-alive connection with no request for this long is closed.
const IDLE_TIMEOUT: StdDuration = StdDuration::from_secs(20);
/// At most this many connections; past it, an idle one is closed for the new one: first those
/// that never completed a request, then the longest idle. A neighbour holding connections
/// open cannot lock the child out, nor close its keep-alive connections.
const MAX_CONNECTIONS: usize = 128;

/// One open connection: whether it is serving a request, and since when it is idle.
struct Conn {
    in_flight: std::sync::atomic::AtomicUsize,
    /// Whether it ever completed a request: a client's keep-alive connection has, a
    /// neighbour's held-open one has not, and is closed first.
    served: std::sync::atomic::AtomicBool,
    /// Milliseconds since the server started, at the last request's end (or the accept).
    idle_since: std::sync::atomic::AtomicU64,
    close: tokio::sync::Notify,
}

/// The open connections, to enforce the cap and the idle timeout.
#[derive(Default)]
struct Conns {
    open: std::sync::Mutex<std::collections::BTreeMap<u64, Arc<Conn>>>,
}

impl Conns {
    /// Registers a connection, first closing the longest-idle one when at the cap.
    fn admit(&self, id: u64, now_ms: u64) -> Arc<Conn> {
        use std::sync::atomic::Ordering::Relaxed;
        let conn = Arc::new(Conn {
            in_flight: 0.into(),
            served: false.into(),
            idle_since: now_ms.into(),
            close: tokio::sync::Notify::new(),
        });
        let mut open = self.open.lock().expect("not poisoned");
        if open.len() >= MAX_CONNECTIONS {
            let oldest = open
                .iter()
                .filter(|(_, c)| c.in_flight.load(Relaxed) == 0)
                .min_by_key(|(_, c)| (c.served.load(Relaxed), c.idle_since.load(Relaxed)))
                .map(|(id, _)| *id);
            if let Some(oldest) = oldest.and_then(|id| open.remove(&id)) {
                oldest.close.notify_one();
            }
        }
        open.insert(id, conn.clone());
        conn
    }

    fn remove(&self, id: u64) {
        self.open.lock().expect("not poisoned").remove(&id);
    }

    /// Closes the connections idle for longer than [`IDLE_TIMEOUT`].
    fn reap(&self, now_ms: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let limit = IDLE_TIMEOUT.as_millis() as u64;
        let mut open = self.open.lock().expect("not poisoned");
        open.retain(|_, c| {
            let idle = c.in_flight.load(Relaxed) == 0
                && now_ms.saturating_sub(c.idle_since.load(Relaxed)) > limit;
            if idle {
                c.close.notify_one();
            }
            !idle
        });
    }
}

/// Serves on `listener` from a background runtime until the process exits.
pub fn spawn<H: Handler>(listener: TcpListener, handler: Arc<H>) -> std::io::Result<()> {
    spawn_all(vec![listener], handler)
}

/// Serves on every listener, each with its own connection limits, from one background
/// runtime until the process exits.
pub fn spawn_all<H: Handler>(listeners: Vec<TcpListener>, handler: Arc<H>) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vault-server")
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("vault-server".into())
        .spawn(move || {
            runtime.block_on(async move {
                let mut tasks = tokio::task::JoinSet::new();
                for listener in listeners {
                    tasks.spawn(serve(listener, handler.clone()));
                }
                while tasks.join_next().await.is_some() {}
            })
        })?;
    Ok(())
}

async fn serve<H: Handler>(listener: TcpListener, handler: Arc<H>) {
    use std::sync::atomic::Ordering::Relaxed;
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("credential server: {e}");
            return;
        }
    };
    let started = std::time::Instant::now();
    let now_ms = move || started.elapsed().as_millis() as u64;
    let conns = Arc::new(Conns::default());
    {
        let conns = conns.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(StdDuration::from_secs(1));
            loop {
                tick.tick().await;
                conns.reap(now_ms());
            }
        });
    }
    let mut next_id = 0u64;
    // Out of file descriptors (EMFILE) and the like: wait before trying again, longer each
    // time, so the loop cannot spin, and say so once, not once per attempt.
    let mut backoff = StdDuration::ZERO;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => {
                backoff = StdDuration::ZERO;
                accepted
            }
            Err(e) => {
                if backoff.is_zero() {
                    tracing::debug!("accept: {e}; backing off");
                }
                backoff =
                    (backoff * 2).clamp(StdDuration::from_millis(10), StdDuration::from_secs(1));
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let id = next_id;
        let conn = conns.admit(id, now_ms());
        let handler = handler.clone();
        let conns = conns.clone();
        tokio::spawn(async move {
            let counted = conn.clone();
            let service = service_fn(move |req| {
                let handler = handler.clone();
                let conn = counted.clone();
                async move {
                    conn.in_flight.fetch_add(1, Relaxed);
                    let response = handler.handle(req, peer).await;
                    conn.idle_since.store(now_ms(), Relaxed);
                    conn.served.store(true, Relaxed);
                    conn.in_flight.fetch_sub(1, Relaxed);
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let connection = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = conn.close.notified() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(HEADER_READ_TIMEOUT, connection).await;
                }
            }
            conns.remove(id);
        });
    }
}

/// A JSON error body as the container endpoint contract has it: `{"code","message"}`.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts")
}

pub fn ok(content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", content_type)
        .body(Full::new(body))
        .expect("static response parts")
}

pub fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("static response parts")
}
