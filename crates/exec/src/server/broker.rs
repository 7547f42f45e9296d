//! `vault serve`'s endpoint: the container credential protocol for many clients, each
//! answered with the credentials of the one profile its token is bound to.
//!
//! The token alone decides: no path, header or query names a profile. The registry
//! (`containers.json`, digests only) is read again whenever the file changes, so a client
//! removed or rotated while serving is refused from its next request. Credentials are minted
//! by one worker thread per profile (which owns the vault and the minter, off the async
//! runtime); a handler that finds nothing fresh asks its profile's worker, so clients of
//! one profile share one mint, and a profile that cannot be minted holds up no other.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use subtle::ConstantTimeEq;
use vault_store::ContainerClient;

use super::{Handler, RenewReply, Supply, json_error, ok};
use crate::audit::{AuditLog, Entry};

/// One profile being served: its credentials and, once its worker knows, its role.
pub struct Slot {
    pub profile: String,
    pub supply: Supply,
    pub role_arn: RwLock<Option<String>>,
}

/// What a worker needs to start serving a profile.
pub struct Start {
    pub slot: Arc<Slot>,
    pub renew: std::sync::mpsc::Receiver<RenewReply>,
}

/// The registry as last read, and what it was read from.
#[derive(Default)]
struct Snapshot {
    stamp: Option<Stamp>,
    clients: Vec<(ContainerClient, [u8; 32])>,
    /// The clients by their digest's first 8 bytes. A lookup there tells nothing of a token:
    /// a guess's digest shares 8 bytes with a registered one only by a 2^-64 chance, and
    /// what decides is the constant-time comparison of the whole digest after it.
    by_prefix: HashMap<u64, Vec<usize>>,
    /// The registry did not read: nobody is served until it does.
    error: Option<String>,
}

/// What tells a changed registry file: a new file (inode) for every write, its size and
/// times.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64, i64, i64),
}

/// A digest's first 8 bytes, the registry's index.
fn prefix(digest: &[u8; 32]) -> u64 {
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        #[cfg(unix)]
        inode: {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec())
        },
    })
}

/// The broker's state, shared by the handlers.
pub struct Broker {
    dir: PathBuf,
    registry_path: PathBuf,
    snapshot: RwLock<Arc<Snapshot>>,
    slots: RwLock<HashMap<String, Arc<Slot>>>,
    start: Box<dyn Fn(Start) + Send + Sync>,
    audit: AuditLog,
    min_left: chrono::Duration,
}

/// Why a request gets no credentials.
enum Refusal {
    Denied(&'static str),
    Unavailable(String),
}

impl Broker {
    /// `start` hands a new profile's worker to the thread that runs workers.
    pub fn new(
        vault_dir: &Path,
        min_left: chrono::Duration,
        start: Box<dyn Fn(Start) + Send + Sync>,
    ) -> Broker {
        Broker {
            dir: vault_dir.to_owned(),
            registry_path: vault_dir.join(vault_store::CONTAINERS_FILE),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            slots: RwLock::new(HashMap::new()),
            start,
            audit: AuditLog::new(vault_dir),
            min_left,
        }
    }

    /// The registry, read again if its file changed since the last request.
    fn registry(&self) -> Arc<Snapshot> {
        let now = stamp(&self.registry_path);
        {
            let current = self.snapshot.read().expect("not poisoned");
            if current.stamp == now && (now.is_some() || current.clients.is_empty()) {
                return current.clone();
            }
        }
        let fresh = match vault_store::read_container_clients(&self.dir) {
            Ok(clients) => {
                let clients: Vec<(ContainerClient, [u8; 32])> = clients
                    .into_iter()
                    .filter_map(|c| {
                        let digest: [u8; 32] =
                            hex::decode(&c.token_sha256).ok()?.try_into().ok()?;
                        Some((c, digest))
                    })
                    .collect();
                let mut by_prefix: HashMap<u64, Vec<usize>> = HashMap::new();
                for (i, (_, digest)) in clients.iter().enumerate() {
                    by_prefix.entry(prefix(digest)).or_default().push(i);
                }
                Snapshot {
                    stamp: now,
                    clients,
                    by_prefix,
                    error: None,
                }
            }
            Err(e) => Snapshot {
                stamp: now,
                error: Some(e.to_string()),
                ..Snapshot::default()
            },
        };
        let fresh = Arc::new(fresh);
        *self.snapshot.write().expect("not poisoned") = fresh.clone();
        fresh
    }

    /// The client whose token is `given`: its SHA-256, found by the first 8 bytes and
    /// compared whole in constant time. The token itself is never compared, and the time
    /// taken tells nothing about it.
    fn authenticate(&self, given: Option<&[u8]>) -> Result<(Arc<Snapshot>, usize), Refusal> {
        let registry = self.registry();
        if let Some(error) = &registry.error {
            return Err(Refusal::Unavailable(format!(
                "the client registry cannot be read: {error}"
            )));
        }
        let Some(given) = given.filter(|g| !g.is_empty()) else {
            return Err(Refusal::Denied(
                "no Authorization token (set AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)",
            ));
        };
        let digest = vault_store::token_digest(given);
        let mut found = None;
        let candidates = registry.by_prefix.get(&prefix(&digest));
        for &i in candidates.into_iter().flatten() {
            if bool::from(registry.clients[i].1.ct_eq(&digest)) {
                found = Some(i);
            }
        }
        let i = found.ok_or(Refusal::Denied("unknown or revoked token"))?;
        if registry.clients[i].0.expired(chrono::Utc::now()) {
            return Err(Refusal::Denied("the token has expired"));
        }
        Ok((registry, i))
    }

    /// Writes the audit lines still queued (the broker is about to exit).
    pub fn flush_audit(&self) {
        self.audit.flush();
    }

    /// The profile's slot; the first request for a profile starts its worker.
    pub fn slot(&self, profile: &str) -> Arc<Slot> {
        if let Some(slot) = self.slots.read().expect("not poisoned").get(profile) {
            return slot.clone();
        }
        let mut slots = self.slots.write().expect("not poisoned");
        if let Some(slot) = slots.get(profile) {
            return slot.clone();
        }
        let (renew_tx, renew_rx) = std::sync::mpsc::channel();
        let slot = Arc::new(Slot {
            profile: profile.to_owned(),
            supply: Supply::new(renew_tx, self.min_left),
            role_arn: RwLock::new(None),
        });
        slots.insert(profile.to_owned(), slot.clone());
        (self.start)(Start {
            slot: slot.clone(),
            renew: renew_rx,
        });
        slot
    }

    async fn answer(&self, req: &Request<Incoming>, entry: &mut Entry) -> Response<Full<Bytes>> {
        let given = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        let (registry, i) = match self.authenticate(given) {
            Ok(found) => found,
            Err(refusal) => return refused(refusal, entry),
        };
        let client = &registry.clients[i].0;
        entry.client = Some(client.name.clone());
        entry.profile = Some(client.profile.clone());
        // The request line must be exactly `GET /`: a path or query cannot choose anything,
        // and one that tries is not quietly answered.
        if req.uri().path_and_query().map(|p| p.as_str()) != Some("/") {
            entry.result = "not-found".into();
            entry.reason = Some("credentials are served at / only".into());
            return json_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "credentials are served at / only; the token alone decides the profile",
            );
        }
        let slot = self.slot(&client.profile);
        let answer = slot.supply.credentials().await;
        entry.role_arn = slot.role_arn.read().expect("not poisoned").clone();
        match answer {
            Ok(published) => {
                entry.result = "ok".into();
                entry.access_key_id = Some(published.key_id_redacted.clone());
                ok("application/json", published.ecs.clone())
            }
            Err(message) => refused(Refusal::Unavailable(message), entry),
        }
    }
}

fn refused(refusal: Refusal, entry: &mut Entry) -> Response<Full<Bytes>> {
    match refusal {
        Refusal::Denied(reason) => {
            entry.result = "denied".into();
            entry.reason = Some(reason.into());
            json_error(StatusCode::FORBIDDEN, "AccessDenied", reason)
        }
        Refusal::Unavailable(reason) => {
            entry.result = "unavailable".into();
            let response = json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "CredentialsUnavailable",
                &reason,
            );
            entry.reason = Some(reason);
            response
        }
    }
}

impl Handler for Broker {
    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        if req.uri().path() == "/health" && req.method() == Method::GET {
            return ok("text/plain", Bytes::new());
        }
        if req.method() != Method::GET {
            return json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "only GET is served",
            );
        }
        let at = std::time::SystemTime::now();
        let mut entry = Entry {
            source: peer.to_string(),
            ..Entry::default()
        };
        let response = self.answer(&req, &mut entry).await;
        // The path only: never headers (they carry tokens).
        tracing::debug!(
            path = req.uri().path(),
            status = response.status().as_u16(),
            client = entry.client.as_deref().unwrap_or("-"),
            "broker"
        );
        self.audit.write(at, entry);
        response
    }
}
