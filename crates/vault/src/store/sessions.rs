//! Cached sessions (`sessions.json`): one entry per cache key, the credentials sealed, what
//! `list` shows in the clear. Only a cache: a damaged file is discarded with a reason and an
//! entry that does not open is treated as absent, but a newer release's file is left alone.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::payload::open_payload;
use super::{Entries, SESSIONS_FILE, Vault};
use crate::error::{Error, Result};
use crate::framed::{self, FramedJson, WriteLock};
use crate::secret::Credentials;

#[derive(Serialize, Deserialize)]
pub(super) struct SessionRecord {
    profile: String,
    source_profile: String,
    description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
    expires: DateTime<Utc>,
    data: String,
}

impl FramedJson for Entries<SessionRecord> {
    const FILE: &'static str = SESSIONS_FILE;
    const FORMAT: &'static str = "vault-sessions";
}

type SessionsBody = Entries<SessionRecord>;

/// What is known about a cached session without decrypting it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// The cache key (a digest of everything that shapes the session).
    pub key: String,
    /// The profile it was minted for.
    pub profile: String,
    /// The profile whose stored key minted it; dropping that key drops the session.
    pub source_profile: String,
    /// What kind of session it is, e.g. "AssumeRole arn:aws:iam::…:role/x".
    pub description: String,
    /// The AWS account of the credentials, when STS said so.
    pub account_id: Option<String>,
    pub expires: DateTime<Utc>,
}

/// A cached session: its metadata and its credentials.
#[derive(Debug)]
pub struct Session {
    pub info: SessionInfo,
    pub credentials: Credentials,
}

/// Cached sessions as read from disk, plus why the file was discarded if it was damaged.
#[derive(Debug, Default)]
pub struct SessionList {
    pub sessions: Vec<SessionInfo>,
    /// Set when the sessions file was unreadable and is treated as empty.
    pub discarded: Option<String>,
}

impl Vault {
    /// Cached sessions that have not expired. A damaged file reads as empty, with the reason.
    pub fn sessions(&self) -> Result<SessionList> {
        let (body, discarded) = self.read_sessions()?;
        let now = Utc::now();
        Ok(SessionList {
            sessions: body
                .entries
                .into_iter()
                .filter(|(_, r)| r.expires > now)
                .map(|(key, r)| r.info(&key))
                .collect(),
            discarded,
        })
    }

    /// The cached session under `key`, if present, unexpired and readable. An entry that does
    /// not decrypt is treated as absent (the cache is disposable).
    pub fn session(&self, key: &str) -> Result<Option<Session>> {
        let (mut body, _) = self.read_sessions()?;
        let Some(record) = body.entries.remove(key) else {
            return Ok(None);
        };
        if record.expires <= Utc::now() {
            return Ok(None);
        }
        let identity = self.identity()?;
        let credentials = match open_payload(identity, &record.data)
            .ok()
            .and_then(|plain| Credentials::decode(&plain, &record.profile).ok())
        {
            Some(c) => c,
            None => {
                tracing::warn!(key, "cached session does not decrypt; ignoring it");
                return Ok(None);
            }
        };
        Ok(Some(Session {
            info: record.info(key),
            credentials,
        }))
    }

    /// Caches a session. Expired entries are purged on the way.
    pub fn store_session(&self, info: &SessionInfo, credentials: &Credentials) -> Result<()> {
        let data = self.seal(&credentials.encode(&info.profile))?;
        let lock = self.write_lock()?;
        let (mut body, _) = self.read_sessions()?;
        let now = Utc::now();
        body.entries.retain(|_, r| r.expires > now);
        body.entries.insert(
            info.key.clone(),
            SessionRecord {
                profile: info.profile.clone(),
                source_profile: info.source_profile.clone(),
                description: info.description.clone(),
                account_id: info.account_id.clone(),
                expires: info.expires,
                data,
            },
        );
        lock.write(&body)
    }

    /// Removes the cached sessions matching `filter`; returns how many (expired ones are
    /// purged too but not counted).
    pub fn remove_sessions(&self, filter: impl Fn(&SessionInfo) -> bool) -> Result<usize> {
        if !self.exists() {
            return Ok(0);
        }
        let lock = self.write_lock()?;
        self.remove_sessions_locked(&lock, filter)
    }

    pub(super) fn remove_sessions_locked(
        &self,
        lock: &WriteLock,
        filter: impl Fn(&SessionInfo) -> bool,
    ) -> Result<usize> {
        let (body, discarded) = self.read_sessions()?;
        let now = Utc::now();
        let before = body.entries.len();
        let mut removed = 0;
        let mut kept = SessionsBody::default();
        for (key, record) in body.entries {
            if record.expires <= now {
                continue;
            }
            if filter(&record.info(&key)) {
                removed += 1;
                continue;
            }
            kept.entries.insert(key, record);
        }
        if kept.entries.len() != before || discarded.is_some() {
            lock.write(&kept)?;
        }
        Ok(removed)
    }

    /// The cache, or an empty one and the reason when the file is damaged.
    fn read_sessions(&self) -> Result<(SessionsBody, Option<String>)> {
        match framed::read::<SessionsBody>(&self.dir) {
            Ok(body) => Ok((body.unwrap_or_default(), None)),
            Err(e @ Error::Damaged { .. }) => {
                tracing::warn!("discarding the session cache: {e}");
                Ok((SessionsBody::default(), Some(e.to_string())))
            }
            // A newer release's cache is left alone rather than silently replaced, and a file
            // that cannot be read is not known to be damaged.
            Err(e) => Err(e),
        }
    }
}

impl SessionRecord {
    fn info(&self, key: &str) -> SessionInfo {
        SessionInfo {
            key: key.to_owned(),
            profile: self.profile.clone(),
            source_profile: self.source_profile.clone(),
            description: self.description.clone(),
            account_id: self.account_id.clone(),
            expires: self.expires,
        }
    }
}
