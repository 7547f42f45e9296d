//! The vault: a directory of files and a lock.
//!
//! ```text
//! vault.json         the vault's public key, id and backend (+ the passphrase-wrapped key for `file`)
//! credentials.json   long-lived key pairs, each entry age-encrypted to the vault key
//! sessions.json      cached session credentials, same scheme; disposable
//! sso.json           IAM Identity Center sign-ins (registration, access and refresh tokens)
//! recent             profile names, most recently used first (the picker's order)
//! containers.json    the credential broker's clients (profile, token digest, token file)
//! vault.lock         exclusive lock taken by every writer
//! ```
//!
//! Profile names, timestamps and expiry times are stored in the clear so `list` needs neither
//! the keyring nor the passphrase; key ids, secrets and tokens only inside age ciphertexts,
//! each bound to its profile name. Writers lock, re-read, change, and replace atomically, so
//! sixteen concurrent `add`s all land. A damaged sessions file is discarded (it is only a
//! cache); a damaged credentials file is an error and is never rewritten.
//!
//! This module holds the directory (its files' names, `vault.json`, opening, locks); each
//! submodule adds to [`Vault`] what one job needs.

mod console;
pub(crate) mod containers;
pub(crate) mod credentials;
mod key;
mod migrate;
mod payload;
mod recent;
pub(crate) mod sessions;
mod sso;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use age::secrecy::SecretString;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, PassphraseError, Result};
use crate::framed::{self, FramedJson, WriteLock};
use crate::fsio::{self, FileLock};
use crate::names::{BackendKind, SESSIONS_FILE};

const META_FILE: &str = "vault.json";
const CREDENTIALS_FILE: &str = "credentials.json";
const SSO_FILE: &str = "sso.json";
const CONSOLE_FILE: &str = "console.json";
const RECENT_FILE: &str = "recent";

/// Supplies the passphrase of a `file` vault. Implemented by the binary (terminal prompt,
/// `AWS_VAULT_FILE_PASSPHRASE`); the store itself never prompts.
pub trait PassphraseSource {
    /// `creating` is true when a new vault is being made: the source should ask twice.
    fn passphrase(
        &self,
        dir: &Path,
        creating: bool,
    ) -> std::result::Result<SecretString, PassphraseError>;

    /// Told something the person should read before being asked (e.g. that no OS keyring
    /// was usable, so a passphrase is about to be chosen). Default: nothing.
    fn notice(&self, _text: &str) {}

    /// The passphrase when the environment hands it over (no one is asked): such a vault
    /// key may be kept wrapped under it (see [`crate::unlocked::wrap`]).
    fn environment_passphrase(&self) -> Option<SecretString> {
        None
    }
}

/// Names what picks the backend of a vault that does not exist yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    /// `--backend` / `AWS_VAULT_BACKEND`: that one or an error.
    Explicit(BackendKind),
    /// The platform's OS keyring when reachable, otherwise `file`.
    Default,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    id: String,
    backend: String,
    recipient: String,
    created: DateTime<Utc>,
    /// `file` backend only: the vault key, age-encrypted with the passphrase (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wrapped_key: Option<String>,
}

impl FramedJson for Meta {
    const FILE: &'static str = META_FILE;
    const FORMAT: &'static str = "vault-meta";
}

/// The body of the files that map a name to an encrypted record (credentials, sessions,
/// sign-ins).
#[derive(Serialize, Deserialize)]
struct Entries<R> {
    entries: BTreeMap<String, R>,
}

impl<R> Default for Entries<R> {
    fn default() -> Self {
        Entries {
            entries: BTreeMap::new(),
        }
    }
}

/// An open vault directory. Cheap to open: nothing is decrypted until needed.
pub struct Vault {
    dir: PathBuf,
    choice: BackendChoice,
    passphrase: Box<dyn PassphraseSource>,
    meta: Option<Meta>,
    identity: OnceLock<age::x25519::Identity>,
    /// `file` backend: keep the opened vault key for this idle time after asking.
    remember: Option<Duration>,
    /// `file` backend, passphrase from the environment: keep the opened vault key wrapped
    /// under that passphrase for this idle time.
    remember_wrapped: Option<Duration>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("dir", &self.dir)
            .field("backend", &self.backend())
            .field("unlocked", &self.identity.get().is_some())
            .finish()
    }
}

impl Vault {
    /// Opens the vault in `dir` (which may not exist yet). Reads only its metadata.
    pub fn open(
        dir: impl Into<PathBuf>,
        choice: BackendChoice,
        passphrase: Box<dyn PassphraseSource>,
    ) -> Result<Vault> {
        let dir = dir.into();
        fsio::check_private(
            &dir,
            &[
                META_FILE,
                CREDENTIALS_FILE,
                SESSIONS_FILE,
                SSO_FILE,
                CONSOLE_FILE,
                containers::CONTAINERS_FILE,
            ],
        )?;
        let meta = read_meta(&dir)?;
        if let (Some(meta), BackendChoice::Explicit(requested)) = (&meta, choice) {
            let actual = parse_backend(&dir, &meta.backend)?;
            if actual != requested {
                return Err(Error::BackendMismatch {
                    dir,
                    actual,
                    requested,
                });
            }
        }
        Ok(Vault {
            dir,
            choice,
            passphrase,
            meta,
            identity: OnceLock::new(),
            remember: None,
            remember_wrapped: None,
        })
    }

    /// The platform's default location: `<data dir>/vault` (e.g. `~/.local/share/vault`).
    pub fn default_dir() -> Option<PathBuf> {
        dirs::data_dir().map(|d| d.join("vault"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the vault has been created (its key exists).
    pub fn exists(&self) -> bool {
        self.meta.is_some()
    }

    /// The backend protecting the vault key: the recorded one, or the explicit choice.
    pub fn backend(&self) -> Option<BackendKind> {
        match (&self.meta, self.choice) {
            (Some(meta), _) => meta.backend.parse().ok(),
            (None, BackendChoice::Explicit(kind)) => Some(kind),
            (None, BackendChoice::Default) => None,
        }
    }

    fn meta(&self) -> Result<&Meta> {
        self.meta.as_ref().ok_or_else(|| Error::Io {
            path: self.meta_path(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no vault here yet"),
        })
    }

    fn meta_path(&self) -> PathBuf {
        framed::path::<Meta>(&self.dir)
    }

    fn write_lock(&self) -> Result<WriteLock> {
        WriteLock::acquire(&self.dir)
    }

    /// A lock file for callers that need mutual exclusion on something in this vault (e.g.
    /// minting one session at a time per cache key). `name` must be a plain file name.
    pub fn named_lock(&self, name: &str) -> Result<FileLock> {
        self.named_lock_telling(name, Duration::MAX, &mut || {})
    }

    /// [`Vault::named_lock`], calling `waiting` once if the lock is not free within
    /// `patience`.
    pub fn named_lock_telling(
        &self,
        name: &str,
        patience: Duration,
        waiting: &mut dyn FnMut(),
    ) -> Result<FileLock> {
        debug_assert!(!name.contains(['/', '\\']));
        let dir = self.dir.join("locks");
        fsio::create_private_dir(&dir)?;
        FileLock::acquire_telling(&dir.join(format!("{name}.lock")), patience, waiting)
    }

    /// [`Vault::named_lock_telling`] that gives up (`None`) once `limit` has passed.
    pub fn named_lock_within(
        &self,
        name: &str,
        patience: Duration,
        limit: Duration,
        waiting: &mut dyn FnMut(),
    ) -> Result<Option<FileLock>> {
        debug_assert!(!name.contains(['/', '\\']));
        let dir = self.dir.join("locks");
        fsio::create_private_dir(&dir)?;
        FileLock::acquire_within(&dir.join(format!("{name}.lock")), patience, limit, waiting)
    }

    /// Notes beside lock `name` that the work it guards just failed, and why: waiters that
    /// get the lock next read it ([`Vault::failure_since`]) instead of each trying again.
    /// `message` must hold no secret: it is stored in the clear.
    pub fn note_failure(&self, name: &str, message: &str) -> Result<()> {
        let note = FailureNote {
            at_ms: millis_since_epoch(std::time::SystemTime::now()),
            message: message.to_owned(),
        };
        let bytes = serde_json::to_vec(&note).expect("a note serialises");
        fsio::write_atomic(&self.failure_path(name), &bytes)
    }

    /// The failure noted beside lock `name` at or after `since`, if any. A note that does
    /// not read counts as none.
    pub fn failure_since(
        &self,
        name: &str,
        since: std::time::SystemTime,
    ) -> Result<Option<String>> {
        let Some(bytes) = fsio::read_optional(&self.failure_path(name))? else {
            return Ok(None);
        };
        Ok(serde_json::from_slice::<FailureNote>(&bytes)
            .ok()
            .filter(|note| note.at_ms >= millis_since_epoch(since))
            .map(|note| note.message))
    }

    /// Removes the note beside lock `name` (the work succeeded).
    pub fn clear_failure(&self, name: &str) -> Result<()> {
        let path = self.failure_path(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&path, e)),
            _ => Ok(()),
        }
    }

    fn failure_path(&self, name: &str) -> PathBuf {
        self.dir.join("locks").join(format!("{name}.failed"))
    }

    /// The entries of `R`'s file; none when there is no file yet.
    fn read_entries<R>(&self) -> Result<Entries<R>>
    where
        Entries<R>: FramedJson,
    {
        Ok(framed::read(&self.dir)?.unwrap_or_default())
    }

    /// Puts `record` under `key` in `R`'s file. A file that does not read is left as it is.
    fn insert_entry<R>(&self, lock: &WriteLock, key: &str, record: R) -> Result<()>
    where
        Entries<R>: FramedJson,
    {
        let mut body = self.read_entries()?;
        body.entries.insert(key.to_owned(), record);
        lock.write(&body)
    }

    /// Removes `key` from `R`'s file; whether it was there. A file that does not read is left
    /// as it is, and one without `key` is not rewritten.
    fn remove_entry<R>(&self, lock: &WriteLock, key: &str) -> Result<bool>
    where
        Entries<R>: FramedJson,
    {
        let mut body = self.read_entries::<R>()?;
        let removed = body.entries.remove(key).is_some();
        if removed {
            lock.write(&body)?;
        }
        Ok(removed)
    }
}

fn read_meta(dir: &Path) -> Result<Option<Meta>> {
    let meta = framed::read::<Meta>(dir)?;
    if let Some(meta) = &meta {
        parse_backend(dir, &meta.backend)?;
    }
    Ok(meta)
}

fn parse_backend(dir: &Path, name: &str) -> Result<BackendKind> {
    name.parse().map_err(|_| {
        Error::damaged(
            framed::path::<Meta>(dir),
            format!("unknown backend {name:?}"),
        )
    })
}

/// Profile names are stored as JSON keys and in the config file's section headers.
pub fn validate_profile_name(name: &str) -> Result<()> {
    // The AWS SDKs' profile-name grammar (`[profile NAME]` must parse back to NAME), so a
    // name vault writes into the config file can never break it.
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_-/.%@:+".contains(c);
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.chars().count() > MAX_PROFILE_NAME {
        Some("it is longer than 128 characters")
    } else if !name.chars().all(allowed) {
        Some("only letters, digits and _ - / . % @ : + are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidProfileName {
            name: shown_name(name),
            reason,
        }),
        None => Ok(()),
    }
}

/// Profile names are at most this long.
pub const MAX_PROFILE_NAME: usize = 128;

/// A name as messages show it: escaped (the error's Debug quoting), at most 40 characters.
fn shown_name(name: &str) -> String {
    match name.char_indices().nth(40) {
        Some((end, _)) => format!("{}…", &name[..end]),
        None => name.to_owned(),
    }
}

/// What [`Vault::note_failure`] keeps beside a lock.
#[derive(serde::Serialize, serde::Deserialize)]
struct FailureNote {
    at_ms: u64,
    message: String,
}

fn millis_since_epoch(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
