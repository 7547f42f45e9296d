//! The vault: a directory with three files and a lock.
//!
//! ```text
//! vault.json         the vault's public key, id and backend (+ the passphrase-wrapped key for `file`)
//! credentials.json   long-lived key pairs, each entry age-encrypted to the vault key
//! sessions.json      cached session credentials, same scheme; disposable
//! sso.json           IAM Identity Center sign-ins (registration, access and refresh tokens)
//! recent             profile names, most recently used first (the picker's order)
//! vault.lock         exclusive lock taken by every writer
//! ```
//!
//! Profile names, timestamps and expiry times are stored in the clear so `list` needs neither
//! the keyring nor the passphrase; key ids, secrets and tokens only inside age ciphertexts,
//! each bound to its profile name. Writers lock, re-read, change, and replace atomically, so
//! sixteen concurrent `add`s all land. A damaged sessions file is discarded (it is only a
//! cache); a damaged credentials file is an error and is never rewritten.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::iter;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use age::secrecy::{ExposeSecret, SecretString};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::backend::{BackendKind, Keyring};
use crate::error::{Error, Result};
use crate::fsio::{self, FileLock};
use crate::secret::Credentials;
use crate::sso::{SsoSecrets, SsoToken, SsoTokenInfo};
use crate::unlocked;

const META_FILE: &str = "vault.json";
const CREDENTIALS_FILE: &str = "credentials.json";
const SESSIONS_FILE: &str = "sessions.json";
const SSO_FILE: &str = "sso.json";
const RECENT_FILE: &str = "recent";
/// How many recent profiles are remembered.
const RECENT_KEPT: usize = 20;
const LOCK_FILE: &str = "vault.lock";
/// The named lock around scrypt (one opening of the vault key at a time).
const UNLOCK_LOCK: &str = "unlock";

const META_FORMAT: &str = "vault-meta";
const CREDENTIALS_FORMAT: &str = "vault-credentials";
const SESSIONS_FORMAT: &str = "vault-sessions";
const SSO_FORMAT: &str = "vault-sso";
const FORMAT_VERSION: u32 = 1;

/// scrypt work factor for the passphrase (N = 2^18: ~256 MiB, ~0.5 s). Pinned, not
/// calibrated per machine, so a vault made on a fast desktop opens on a slow laptop.
const SCRYPT_LOG_N: u8 = 18;
/// The largest work factor accepted when opening, so a tampered file cannot demand hours.
const SCRYPT_MAX_LOG_N: u8 = 20;

/// Supplies the passphrase of a `file` vault. Implemented by the binary (terminal prompt,
/// `AWS_VAULT_FILE_PASSPHRASE`); the store itself never prompts.
pub trait PassphraseSource {
    /// `creating` is true when a new vault is being made: the source should ask twice.
    /// The error is a message for the user.
    fn passphrase(&self, dir: &Path, creating: bool) -> Result<SecretString, String>;

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

#[derive(Serialize, Deserialize, Default)]
struct CredentialsBody {
    entries: BTreeMap<String, CredentialRecord>,
}

#[derive(Serialize, Deserialize)]
struct CredentialRecord {
    added: DateTime<Utc>,
    data: String,
}

#[derive(Serialize, Deserialize, Default)]
struct SsoBody {
    entries: BTreeMap<String, SsoRecord>,
}

#[derive(Serialize, Deserialize)]
struct SsoRecord {
    start_url: String,
    region: String,
    scopes: Vec<String>,
    #[serde(default)]
    grant_types: Vec<String>,
    #[serde(default)]
    cli_cache: bool,
    registration_expires: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_expires: Option<DateTime<Utc>>,
    refreshable: bool,
    data: String,
}

#[derive(Serialize, Deserialize, Default)]
struct SessionsBody {
    entries: BTreeMap<String, SessionRecord>,
}

#[derive(Serialize, Deserialize)]
struct SessionRecord {
    profile: String,
    source_profile: String,
    description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
    expires: DateTime<Utc>,
    data: String,
}

/// What `list` shows about a stored key pair: no secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialInfo {
    pub profile: String,
    pub added: DateTime<Utc>,
}

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
            &[META_FILE, CREDENTIALS_FILE, SESSIONS_FILE, SSO_FILE],
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

    /// After the passphrase opens the vault key, keep it unlocked for `idle` (see
    /// [`crate::unlocked`]). Off by default: scripts that pass the passphrase keep their
    /// behaviour.
    pub fn remember_unlock(&mut self, idle: Option<Duration>) {
        self.remember = idle;
    }

    /// With a passphrase from the environment: keep the opened vault key wrapped under it
    /// for `idle`, so later commands presenting the same passphrase skip scrypt.
    pub fn remember_wrapped(&mut self, idle: Option<Duration>) {
        self.remember_wrapped = idle;
    }

    /// Opens the vault key and keeps it unlocked for `idle`, whatever `remember_unlock` says.
    /// For keyring backends there is nothing to keep: returns `Ok(false)`.
    pub fn unlock_for(&self, idle: Duration) -> Result<bool> {
        let meta = self.meta()?;
        if parse_backend(&self.dir, &meta.backend)? != BackendKind::File {
            return Ok(false);
        }
        // Before the passphrase is asked for: where nothing can be kept, asking is wasted.
        unlocked::supported().map_err(|e| Error::UnlockUnavailable(e.0))?;
        let identity = self.identity()?;
        unlocked::put(&meta.id, identity.to_string().expose_secret(), idle)
            .map_err(|e| Error::UnlockUnavailable(e.0))?;
        Ok(true)
    }

    /// Forgets a kept vault key now. Returns whether one was kept.
    pub fn forget_unlock(&self) -> bool {
        self.meta
            .as_ref()
            .is_some_and(|meta| unlocked::forget(&meta.id))
    }

    /// Whether the vault key is kept unlocked (pushes its idle timeout back).
    pub fn is_unlocked(&self) -> bool {
        self.meta
            .as_ref()
            .is_some_and(|meta| unlocked::get(&meta.id).is_some())
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

    /// Creates the vault if it does not exist. Returns a notice for the user when the default
    /// OS keyring was unreachable and the `file` backend was chosen instead.
    pub fn create_if_missing(&mut self) -> Result<Option<String>> {
        if self.meta.is_some() {
            return Ok(None);
        }
        fsio::create_private_dir(&self.dir)?;
        let _lock = self.write_lock()?;
        // Another process may have created it while we waited for the lock.
        if let Some(meta) = read_meta(&self.dir)? {
            self.meta = Some(meta);
            return Ok(None);
        }
        let (mut backend, mut notice) = self.pick_new_backend()?;
        let identity = age::x25519::Identity::generate();
        let id = random_hex(8)?;
        let secret_key = identity.to_string();
        if backend != BackendKind::File {
            // The real test of a keyring is storing in it: a Secret Service whose default
            // collection is locked or missing (headless Linux) accepts connections and then
            // refuses. Chosen by default, such a keyring gives way to the file backend.
            let stored = Keyring::connect(backend)
                .and_then(|k| k.set(&id, secret_key.expose_secret().as_bytes()));
            match stored {
                Ok(()) => {}
                Err(e) if self.choice == BackendChoice::Default => {
                    // One short line before the passphrase is asked for; the keyring's own
                    // (often long D-Bus) error only under --debug.
                    tracing::debug!("the default keyring refused the vault key: {e}");
                    self.passphrase.notice(&format!(
                        "no OS keyring is usable here ({} refused); keeping the vault key in the \
                         passphrase-protected file backend instead (choose with --backend or \
                         AWS_VAULT_BACKEND)",
                        backend.name()
                    ));
                    notice = None;
                    backend = BackendKind::File;
                }
                Err(e) => return Err(e),
            }
        }
        let mut meta = Meta {
            id,
            backend: backend.name().to_owned(),
            recipient: identity.to_public().to_string(),
            created: Utc::now(),
            wrapped_key: None,
        };
        if backend == BackendKind::File {
            meta.wrapped_key = Some(self.wrap_under_new_passphrase(&secret_key)?);
        }
        let body = serde_json::to_vec_pretty(&meta).expect("meta serialises");
        fsio::write_atomic(
            &self.dir.join(META_FILE),
            &fsio::frame(META_FORMAT, FORMAT_VERSION, &body),
        )?;
        // The single-flight lock of opening the key exists from the start, so a command that
        // fails to open the vault (wrong passphrase) leaves the directory as it found it.
        drop(self.named_lock(UNLOCK_LOCK)?);
        if backend == BackendKind::File
            && let Some(idle) = self.remember
            && let Err(e) = unlocked::put(&meta.id, secret_key.expose_secret(), idle)
        {
            tracing::debug!("not keeping the new vault unlocked: {e}");
        }
        tracing::debug!(dir = %self.dir.display(), %backend, "created vault");
        let _ = self.identity.set(identity);
        self.meta = Some(meta);
        Ok(notice)
    }

    /// The vault key encrypted (age scrypt) under a new passphrase, asked for twice.
    fn wrap_under_new_passphrase(&self, secret_key: &SecretString) -> Result<String> {
        let passphrase = self
            .passphrase
            .passphrase(&self.dir, true)
            .map_err(Error::PassphraseUnavailable)?;
        let mut recipient = age::scrypt::Recipient::new(passphrase);
        recipient.set_work_factor(SCRYPT_LOG_N);
        let wrapped = encrypt(&recipient, secret_key.expose_secret().as_bytes())
            .map_err(|e| Error::io(&self.dir, e))?;
        Ok(BASE64.encode(wrapped))
    }

    fn pick_new_backend(&self) -> Result<(BackendKind, Option<String>)> {
        match self.choice {
            BackendChoice::Explicit(kind) => {
                if !kind.is_supported() {
                    return Err(Error::BackendUnavailable {
                        backend: kind,
                        reason: format!(
                            "not available on this platform (available here: {})",
                            BackendKind::supported_names().join(", ")
                        ),
                    });
                }
                Ok((kind, None))
            }
            BackendChoice::Default => Ok((
                BackendKind::platform_default().unwrap_or(BackendKind::File),
                None,
            )),
        }
    }

    /// Moves the vault key to backend `to` (a keyring, or `file` behind a new passphrase)
    /// without touching a stored key pair: the key is opened where it is, stored in the new
    /// place, `vault.json` is rewritten atomically to name it, and only then is the old copy
    /// removed (a keyring entry deleted, a kept unlocked key forgotten). A failure before the
    /// rewrite changes nothing. Returns where it was.
    pub fn migrate_backend(&mut self, to: BackendKind) -> Result<BackendKind> {
        let from = self.backend().ok_or_else(|| {
            Error::io(self.meta_path(), std::io::Error::other("no vault here yet"))
        })?;
        if from == to {
            return Ok(from);
        }
        if !to.is_supported() {
            return Err(Error::BackendUnavailable {
                backend: to,
                reason: format!(
                    "not available on this platform (available here: {})",
                    BackendKind::supported_names().join(", ")
                ),
            });
        }
        let identity = self.identity()?.clone();
        let secret_key = identity.to_string();
        let _lock = self.write_lock()?;
        let meta = read_meta(&self.dir)?
            .ok_or_else(|| Error::damaged(self.meta_path(), "vault.json went away"))?;
        let mut moved = Meta {
            id: meta.id.clone(),
            backend: to.name().to_owned(),
            recipient: meta.recipient.clone(),
            created: meta.created,
            wrapped_key: None,
        };
        if to == BackendKind::File {
            moved.wrapped_key = Some(self.wrap_under_new_passphrase(&secret_key)?);
        } else {
            Keyring::connect(to)?.set(&meta.id, secret_key.expose_secret().as_bytes())?;
        }
        let body = serde_json::to_vec_pretty(&moved).expect("meta serialises");
        fsio::write_atomic(
            &self.meta_path(),
            &fsio::frame(META_FORMAT, FORMAT_VERSION, &body),
        )?;
        // The new place holds the key: the old copy goes.
        unlocked::forget(&meta.id);
        if from != BackendKind::File
            && let Err(e) = Keyring::connect(from).and_then(|k| k.delete(&meta.id))
        {
            tracing::warn!("the vault key is moved, but its old {from} entry stays: {e}");
        }
        self.meta = Some(moved);
        Ok(from)
    }

    /// Opens the vault key: from the OS keyring, or by asking for the passphrase. At most once
    /// per `Vault`.
    pub fn unlock(&self) -> Result<()> {
        self.identity().map(|_| ())
    }

    fn identity(&self) -> Result<&age::x25519::Identity> {
        if let Some(identity) = self.identity.get() {
            return Ok(identity);
        }
        let meta = self.meta()?;
        let backend = parse_backend(&self.dir, &meta.backend)?;
        if keeps_unlocked(backend)
            && let Some(kept) = unlocked::get(&meta.id)
        {
            match kept.parse::<age::x25519::Identity>() {
                Ok(identity) if identity.to_public().to_string() == meta.recipient => {
                    tracing::debug!("vault key kept unlocked in the kernel keyring");
                    return Ok(self.identity.get_or_init(|| identity));
                }
                // Not this vault's key (a vault recreated under the same id?): drop it.
                _ => {
                    unlocked::forget(&meta.id);
                }
            }
        }
        let from_env = match backend {
            BackendKind::File => self.passphrase.environment_passphrase(),
            _ => None,
        };
        if let Some(identity) = self.kept_wrapped(meta, from_env.as_ref()) {
            return Ok(self.identity.get_or_init(|| identity));
        }
        // One scrypt at a time per vault: whoever waited finds the key kept by the first (32
        // parallel credential_process calls need one scrypt's memory, not 32). Best effort: a
        // read-only vault directory still opens.
        let _single_flight = match backend {
            BackendKind::File => self.named_lock(UNLOCK_LOCK).ok(),
            _ => None,
        };
        if backend == BackendKind::File {
            if let Some(identity) = self.kept_wrapped(meta, from_env.as_ref()) {
                return Ok(self.identity.get_or_init(|| identity));
            }
            if let Some(kept) = unlocked::get(&meta.id)
                && let Ok(identity) = kept.parse::<age::x25519::Identity>()
                && identity.to_public().to_string() == meta.recipient
            {
                return Ok(self.identity.get_or_init(|| identity));
            }
        }
        let secret: Zeroizing<Vec<u8>> = if backend == BackendKind::File {
            let wrapped = meta
                .wrapped_key
                .as_deref()
                .ok_or_else(|| Error::damaged(self.meta_path(), "no wrapped key"))?;
            let wrapped = BASE64
                .decode(wrapped)
                .map_err(|_| Error::damaged(self.meta_path(), "wrapped key is not base64"))?;
            let passphrase = self
                .passphrase
                .passphrase(&self.dir, false)
                .map_err(Error::PassphraseUnavailable)?;
            tracing::debug!("opening the vault key with scrypt");
            let mut scrypt = age::scrypt::Identity::new(passphrase);
            scrypt.set_max_work_factor(SCRYPT_MAX_LOG_N);
            match decrypt(&scrypt, &wrapped) {
                Ok(plain) => plain,
                Err(age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys) => {
                    return Err(Error::WrongPassphrase {
                        dir: self.dir.clone(),
                    });
                }
                Err(e) => return Err(Error::damaged(self.meta_path(), e.to_string())),
            }
        } else {
            Keyring::connect(backend)?
                .get(&meta.id)?
                .ok_or_else(|| Error::KeyMissing {
                    dir: self.dir.clone(),
                    backend,
                })?
        };
        let text = std::str::from_utf8(&secret)
            .map_err(|_| Error::damaged(self.meta_path(), "vault key is not text"))?;
        let identity: age::x25519::Identity = text
            .trim()
            .parse()
            .map_err(|_| Error::damaged(self.meta_path(), "vault key is malformed"))?;
        if identity.to_public().to_string() != meta.recipient {
            return Err(Error::damaged(
                self.meta_path(),
                "the vault key does not match the recorded public key",
            ));
        }
        if keeps_unlocked(backend)
            && let Some(idle) = self.remember
            && let Err(e) = unlocked::put(&meta.id, text.trim(), idle)
        {
            tracing::debug!("not keeping the vault unlocked: {e}");
        }
        if let (Some(passphrase), Some(idle)) = (&from_env, self.remember_wrapped)
            && let Some(wrapped) = unlocked::wrap(passphrase.expose_secret(), &meta.id, text.trim())
            && let Err(e) = unlocked::put_env(&meta.id, &wrapped, idle)
        {
            tracing::debug!("not keeping the wrapped vault key: {e}");
        }
        Ok(self.identity.get_or_init(|| identity))
    }

    /// The vault key kept wrapped under `passphrase`, when it opens with it.
    fn kept_wrapped(
        &self,
        meta: &Meta,
        passphrase: Option<&SecretString>,
    ) -> Option<age::x25519::Identity> {
        let passphrase = passphrase?;
        let wrapped = unlocked::get_env(&meta.id)?;
        let text = unlocked::unwrap(passphrase.expose_secret(), &meta.id, &wrapped)?;
        let identity: age::x25519::Identity = text.parse().ok()?;
        if identity.to_public().to_string() != meta.recipient {
            return None;
        }
        tracing::debug!("vault key kept wrapped under the passphrase from the environment");
        Some(identity)
    }

    fn meta(&self) -> Result<&Meta> {
        self.meta.as_ref().ok_or_else(|| Error::Io {
            path: self.meta_path(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no vault here yet"),
        })
    }

    fn recipient(&self) -> Result<age::x25519::Recipient> {
        self.meta()?
            .recipient
            .parse()
            .map_err(|_| Error::damaged(self.meta_path(), "public key is malformed"))
    }

    fn meta_path(&self) -> PathBuf {
        self.dir.join(META_FILE)
    }

    fn write_lock(&self) -> Result<FileLock> {
        FileLock::acquire(&self.dir.join(LOCK_FILE))
    }

    // ----- long-lived credentials -----

    /// Profiles with a stored key pair, sorted by name. Needs no key and no passphrase.
    pub fn credential_profiles(&self) -> Result<Vec<CredentialInfo>> {
        Ok(self
            .read_credentials()?
            .entries
            .into_iter()
            .map(|(profile, record)| CredentialInfo {
                profile,
                added: record.added,
            })
            .collect())
    }

    /// Whether `profile` has a stored key pair. Needs no key.
    pub fn has_credentials(&self, profile: &str) -> Result<bool> {
        Ok(self.read_credentials()?.entries.contains_key(profile))
    }

    /// The stored key pair of `profile`, decrypted.
    pub fn credentials(&self, profile: &str) -> Result<Option<Credentials>> {
        let body = self.read_credentials()?;
        let Some(record) = body.entries.get(profile) else {
            return Ok(None);
        };
        let path = self.dir.join(CREDENTIALS_FILE);
        let identity = self.identity()?;
        let plain = open_payload(identity, &record.data)
            .map_err(|reason| Error::damaged(&path, format!("entry {profile:?}: {reason}")))?;
        Credentials::decode(&plain, profile)
            .map(Some)
            .map_err(|reason| Error::damaged(&path, format!("entry {profile:?}: {reason}")))
    }

    /// Stores (or replaces) the key pair of `profile` and drops the sessions it minted.
    /// Creates the vault first if needed.
    pub fn store_credentials(&mut self, profile: &str, credentials: &Credentials) -> Result<()> {
        validate_profile_name(profile)?;
        self.create_if_missing()?;
        // Prove we hold the vault key before encrypting to the recorded public key: a
        // tampered vault.json must not make us encrypt a new key to someone else.
        self.identity()?;
        let data = self.seal(&credentials.encode(profile))?;
        let _lock = self.write_lock()?;
        let mut body = self.read_credentials()?;
        body.entries.insert(
            profile.to_owned(),
            CredentialRecord {
                added: Utc::now(),
                data,
            },
        );
        self.write_credentials(&body)?;
        self.remove_sessions_locked(|s| s.source_profile == profile || s.profile == profile)?;
        Ok(())
    }

    /// Removes the key pair of `profile` and the sessions it minted. Returns whether a key
    /// pair was there.
    pub fn remove_credentials(&self, profile: &str) -> Result<bool> {
        if !self.exists() {
            return Ok(false);
        }
        let _lock = self.write_lock()?;
        let mut body = self.read_credentials()?;
        let removed = body.entries.remove(profile).is_some();
        if removed {
            self.write_credentials(&body)?;
        }
        self.remove_sessions_locked(|s| s.source_profile == profile || s.profile == profile)?;
        Ok(removed)
    }

    fn read_credentials(&self) -> Result<CredentialsBody> {
        let path = self.dir.join(CREDENTIALS_FILE);
        let Some(bytes) = fsio::read_optional(&path)? else {
            return Ok(CredentialsBody::default());
        };
        let body = fsio::unframe(&path, CREDENTIALS_FORMAT, FORMAT_VERSION, &bytes)?;
        serde_json::from_slice(body).map_err(|e| Error::damaged(&path, e.to_string()))
    }

    fn write_credentials(&self, body: &CredentialsBody) -> Result<()> {
        let json = serde_json::to_vec_pretty(body).expect("credentials serialise");
        fsio::write_atomic(
            &self.dir.join(CREDENTIALS_FILE),
            &fsio::frame(CREDENTIALS_FORMAT, FORMAT_VERSION, &json),
        )
    }

    // ----- cached sessions -----

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
        let _lock = self.write_lock()?;
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
        self.write_sessions(&body)
    }

    /// Removes the cached sessions matching `filter`; returns how many (expired ones are
    /// purged too but not counted).
    pub fn remove_sessions(&self, filter: impl Fn(&SessionInfo) -> bool) -> Result<usize> {
        if !self.exists() {
            return Ok(0);
        }
        let _lock = self.write_lock()?;
        self.remove_sessions_locked(filter)
    }

    fn remove_sessions_locked(&self, filter: impl Fn(&SessionInfo) -> bool) -> Result<usize> {
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
            self.write_sessions(&kept)?;
        }
        Ok(removed)
    }

    fn read_sessions(&self) -> Result<(SessionsBody, Option<String>)> {
        let path = self.dir.join(SESSIONS_FILE);
        let Some(bytes) = fsio::read_optional(&path)? else {
            return Ok((SessionsBody::default(), None));
        };
        let parsed =
            fsio::unframe(&path, SESSIONS_FORMAT, FORMAT_VERSION, &bytes).and_then(|body| {
                serde_json::from_slice(body).map_err(|e| Error::damaged(&path, e.to_string()))
            });
        match parsed {
            Ok(body) => Ok((body, None)),
            // A newer release's cache is left alone rather than silently replaced.
            Err(e @ Error::UnsupportedVersion { .. }) => Err(e),
            Err(e) => {
                tracing::warn!("discarding the session cache: {e}");
                Ok((SessionsBody::default(), Some(e.to_string())))
            }
        }
    }

    fn write_sessions(&self, body: &SessionsBody) -> Result<()> {
        let json = serde_json::to_vec_pretty(body).expect("sessions serialise");
        fsio::write_atomic(
            &self.dir.join(SESSIONS_FILE),
            &fsio::frame(SESSIONS_FORMAT, FORMAT_VERSION, &json),
        )
    }

    // ----- recently used profiles -----

    /// Profile names, most recently used first. Missing or unreadable: none (it is only an
    /// ordering).
    pub fn recent_profiles(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join(RECENT_FILE))
            .map(|text| {
                text.lines()
                    .filter(|l| validate_profile_name(l).is_ok())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Puts `profile` first among the recent ones. Writes only when it is not first already,
    /// so a script running the same profile again and again never writes; failures are
    /// ignored.
    pub fn note_recent(&self, profile: &str) {
        let mut recent = self.recent_profiles();
        if recent.first().map(String::as_str) == Some(profile)
            || validate_profile_name(profile).is_err()
        {
            return;
        }
        recent.retain(|p| p != profile);
        recent.insert(0, profile.to_owned());
        recent.truncate(RECENT_KEPT);
        let mut text = recent.join("\n");
        text.push('\n');
        let _ = fsio::write_atomic(&self.dir.join(RECENT_FILE), text.as_bytes());
    }

    // ----- SSO sign-ins -----

    /// The SSO sign-ins held, sorted by key. Needs no key and no passphrase.
    pub fn sso_tokens(&self) -> Result<Vec<SsoTokenInfo>> {
        Ok(self
            .read_sso()?
            .entries
            .iter()
            .map(|(key, r)| r.info(key))
            .collect())
    }

    /// The sign-in under `key`, decrypted.
    pub fn sso_token(&self, key: &str) -> Result<Option<SsoToken>> {
        let body = self.read_sso()?;
        let Some(record) = body.entries.get(key) else {
            return Ok(None);
        };
        let path = self.dir.join(SSO_FILE);
        let identity = self.identity()?;
        let plain = open_payload(identity, &record.data)
            .map_err(|reason| Error::damaged(&path, format!("entry {key:?}: {reason}")))?;
        let secrets = SsoSecrets::decode(&plain, key)
            .map_err(|reason| Error::damaged(&path, format!("entry {key:?}: {reason}")))?;
        Ok(Some(SsoToken {
            info: record.info(key),
            secrets,
        }))
    }

    /// Stores (or replaces) a sign-in. The vault must exist (callers that may sign in create
    /// it first, where a new vault's passphrase can be asked for).
    pub fn store_sso_token(&self, token: &SsoToken) -> Result<()> {
        let key = &token.info.key;
        let plain = token.secrets.encode(key).ok_or_else(|| {
            Error::damaged(
                self.dir.join(SSO_FILE),
                format!("entry {key:?}: a token holds a line break"),
            )
        })?;
        self.identity()?;
        let data = self.seal(&plain)?;
        let _lock = self.write_lock()?;
        let mut body = self.read_sso()?;
        let info = &token.info;
        body.entries.insert(
            key.clone(),
            SsoRecord {
                start_url: info.start_url.clone(),
                region: info.region.clone(),
                scopes: info.scopes.clone(),
                grant_types: info.grant_types.clone(),
                cli_cache: info.cli_cache,
                registration_expires: info.registration_expires,
                token_expires: info.token_expires,
                refreshable: info.refreshable,
                data,
            },
        );
        self.write_sso(&body)
    }

    /// Removes the sign-in under `key` entirely (registration included). Returns whether
    /// one was there.
    pub fn remove_sso_token(&self, key: &str) -> Result<bool> {
        if !self.exists() {
            return Ok(false);
        }
        let _lock = self.write_lock()?;
        let mut body = self.read_sso()?;
        let removed = body.entries.remove(key).is_some();
        if removed {
            self.write_sso(&body)?;
        }
        Ok(removed)
    }

    fn read_sso(&self) -> Result<SsoBody> {
        let path = self.dir.join(SSO_FILE);
        let Some(bytes) = fsio::read_optional(&path)? else {
            return Ok(SsoBody::default());
        };
        let body = fsio::unframe(&path, SSO_FORMAT, FORMAT_VERSION, &bytes)?;
        serde_json::from_slice(body).map_err(|e| Error::damaged(&path, e.to_string()))
    }

    fn write_sso(&self, body: &SsoBody) -> Result<()> {
        let json = serde_json::to_vec_pretty(body).expect("sign-ins serialise");
        fsio::write_atomic(
            &self.dir.join(SSO_FILE),
            &fsio::frame(SSO_FORMAT, FORMAT_VERSION, &json),
        )
    }

    // ----- payload encryption -----

    fn seal(&self, plain: &[u8]) -> Result<String> {
        let recipient = self.recipient()?;
        let sealed = encrypt(&recipient, plain).map_err(|e| Error::io(&self.dir, e))?;
        Ok(BASE64.encode(sealed))
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
}

impl SsoRecord {
    fn info(&self, key: &str) -> SsoTokenInfo {
        SsoTokenInfo {
            key: key.to_owned(),
            start_url: self.start_url.clone(),
            region: self.region.clone(),
            scopes: self.scopes.clone(),
            grant_types: self.grant_types.clone(),
            cli_cache: self.cli_cache,
            registration_expires: self.registration_expires,
            token_expires: self.token_expires,
            refreshable: self.refreshable,
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

/// Backends whose opened vault key is kept in the kernel for the idle timeout: the passphrase
/// (to skip scrypt and the prompt) and the Secret Service (to skip the D-Bus connection and its
/// key exchange on every command; whoever can read the kept key could ask the Secret Service
/// for it just as well).
fn keeps_unlocked(backend: BackendKind) -> bool {
    matches!(backend, BackendKind::File | BackendKind::SecretService)
}

fn read_meta(dir: &Path) -> Result<Option<Meta>> {
    let path = dir.join(META_FILE);
    let Some(bytes) = fsio::read_optional(&path)? else {
        return Ok(None);
    };
    let body = fsio::unframe(&path, META_FORMAT, FORMAT_VERSION, &bytes)?;
    let meta: Meta =
        serde_json::from_slice(body).map_err(|e| Error::damaged(&path, e.to_string()))?;
    parse_backend(dir, &meta.backend)?;
    Ok(Some(meta))
}

fn parse_backend(dir: &Path, name: &str) -> Result<BackendKind> {
    name.parse()
        .map_err(|_| Error::damaged(dir.join(META_FILE), format!("unknown backend {name:?}")))
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

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| Error::io(".", std::io::Error::other(e)))?;
    Ok(hex::encode(buf))
}

fn open_payload(
    identity: &age::x25519::Identity,
    data: &str,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let sealed = BASE64.decode(data).map_err(|_| "not base64".to_owned())?;
    decrypt(identity, &sealed).map_err(|e| format!("does not decrypt ({e})"))
}

fn encrypt(recipient: &dyn age::Recipient, plain: &[u8]) -> std::io::Result<Vec<u8>> {
    let encryptor =
        age::Encryptor::with_recipients(iter::once(recipient)).map_err(std::io::Error::other)?;
    let mut out = Vec::with_capacity(plain.len() + 256);
    let mut writer = encryptor.wrap_output(&mut out)?;
    writer.write_all(plain)?;
    writer.finish()?;
    Ok(out)
}

fn decrypt(
    identity: &dyn age::Identity,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, age::DecryptError> {
    let decryptor = age::Decryptor::new_buffered(sealed)?;
    let mut reader = decryptor.decrypt(iter::once(identity))?;
    let mut out = Zeroizing::new(Vec::with_capacity(sealed.len()));
    reader.read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    struct Fixed(&'static str, Rc<Cell<u32>>);
    impl PassphraseSource for Fixed {
        fn passphrase(&self, _: &Path, _: bool) -> Result<SecretString, String> {
            self.1.set(self.1.get() + 1);
            Ok(SecretString::from(self.0))
        }
    }

    fn open(dir: &Path, pass: &'static str) -> (Vault, Rc<Cell<u32>>) {
        let asked = Rc::new(Cell::new(0));
        let vault = Vault::open(
            dir,
            BackendChoice::Explicit(BackendKind::File),
            Box::new(Fixed(pass, asked.clone())),
        )
        .unwrap();
        (vault, asked)
    }

    fn key(id: &str) -> Credentials {
        Credentials::long_lived(id.into(), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into())
    }

    #[test]
    fn file_backend_round_trip_and_wrong_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let (mut vault, asked) = open(dir.path(), "correct horse");
        vault
            .store_credentials("lab", &key("AKIAIOSFODNN7EXAMPLE"))
            .unwrap();
        assert_eq!(asked.get(), 1, "asked once, when creating");

        let (vault, asked) = open(dir.path(), "correct horse");
        assert_eq!(vault.credential_profiles().unwrap()[0].profile, "lab");
        assert_eq!(asked.get(), 0, "listing needs no passphrase");
        let creds = vault.credentials("lab").unwrap().unwrap();
        assert_eq!(creds.access_key_id.expose_secret(), "AKIAIOSFODNN7EXAMPLE");
        vault.credentials("lab").unwrap();
        assert_eq!(asked.get(), 1, "asked at most once per process");

        let (vault, _) = open(dir.path(), "wrong");
        let err = vault.credentials("lab").unwrap_err();
        assert!(matches!(err, Error::WrongPassphrase { .. }), "{err:?}");

        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            // locks/ holds empty lock files.
            if path.is_dir() {
                continue;
            }
            let bytes = std::fs::read(path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains("AKIAIOSFODNN7EXAMPLE"));
            assert!(!text.contains("EXAMPLEKEY"));
        }
    }

    #[test]
    fn sessions_are_dropped_with_their_key_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let (mut vault, _) = open(dir.path(), "pw");
        vault
            .store_credentials("base", &key("AKIAIOSFODNN7EXAMPLE"))
            .unwrap();
        let mut session = key("ASIAIOSFODNN7EXAMPLE");
        session.session_token = Some("tok".into());
        let info = |k: &str, profile: &str, mins: i64| SessionInfo {
            key: k.to_owned(),
            profile: profile.to_owned(),
            source_profile: "base".to_owned(),
            description: "AssumeRole".to_owned(),
            account_id: None,
            expires: Utc::now() + chrono::Duration::minutes(mins),
        };
        vault
            .store_session(&info("k1", "lab", 60), &session)
            .unwrap();
        vault
            .store_session(&info("k2", "prod", 60), &session)
            .unwrap();
        vault
            .store_session(&info("k3", "old", -1), &session)
            .unwrap();
        let listed = vault.sessions().unwrap().sessions;
        assert_eq!(listed.len(), 2);
        let back = vault.session("k1").unwrap().unwrap();
        assert_eq!(
            back.credentials.session_token.unwrap().expose_secret(),
            "tok"
        );
        assert!(vault.session("k3").unwrap().is_none());

        assert_eq!(vault.remove_sessions(|s| s.profile == "lab").unwrap(), 1);
        assert!(vault.remove_credentials("base").unwrap());
        assert!(vault.sessions().unwrap().sessions.is_empty());
    }

    #[test]
    fn damaged_session_file_is_discarded_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let (mut vault, _) = open(dir.path(), "pw");
        vault
            .store_credentials("base", &key("AKIAIOSFODNN7EXAMPLE"))
            .unwrap();
        std::fs::write(dir.path().join(SESSIONS_FILE), b"garbage").unwrap();
        let list = vault.sessions().unwrap();
        assert!(list.sessions.is_empty());
        assert!(list.discarded.is_some());
        assert!(vault.credentials("base").unwrap().is_some());
    }

    #[test]
    fn profile_names_are_checked() {
        let long = "x".repeat(10_000);
        for bad in [
            "",
            "a b",
            "a\nb",
            "[x]",
            "a;b",
            "a#b",
            "a]b",
            "a\u{1b}[2Jb",
            &long,
        ] {
            assert!(validate_profile_name(bad).is_err(), "{bad:?}");
        }
        let shown = validate_profile_name(&long).unwrap_err().to_string();
        assert!(shown.len() < 200, "{shown}");
        validate_profile_name("team/lab-1.admin@x").unwrap();
    }

    /// Fuzz targets (see `vault_fuzz`): whatever bytes sit in credentials.json or
    /// sessions.json (the framing, the JSON, the age payloads), reading the vault answers
    /// with data or an error, never a panic, and a damaged credentials file is never
    /// rewritten.
    #[test]
    fn fuzz_vault_files() {
        let dir = tempfile::tempdir().unwrap();
        let (mut vault, _) = open(dir.path(), "fuzz");
        vault.create_if_missing().unwrap();
        vault
            .store_credentials("lab", &key("AKIAIOSFODNN7EXAMPLE"))
            .unwrap();
        let mut session = key("ASIAIOSFODNN7EXAMPLE");
        session.session_token = Some("tok".into());
        let info = SessionInfo {
            key: "k".to_owned(),
            profile: "lab".to_owned(),
            source_profile: "lab".to_owned(),
            description: "AssumeRole".to_owned(),
            account_id: Some("123456789012".to_owned()),
            expires: Utc::now() + chrono::Duration::minutes(30),
        };
        vault.store_session(&info, &session).unwrap();
        for (target, file) in [
            ("vault_credentials_file", CREDENTIALS_FILE),
            ("vault_sessions_file", SESSIONS_FILE),
        ] {
            let path = dir.path().join(file);
            let seed = std::fs::read(&path).unwrap();
            let tokens: &[&[u8]] = &[
                b"\"sha256\":\"",
                b"\"version\":2",
                b"age-encryption.org/v1",
                b"\"entries\":{",
                b"\"expires\":\"2999-01-01T00:00:00Z\"",
                b"YWdl",
                b"\n",
            ];
            vault_fuzz::fuzz(target, &[&seed], tokens, |input| {
                std::fs::write(&path, input).unwrap();
                let _ = vault.credential_profiles();
                let _ = vault.credentials("lab");
                let _ = vault.sessions();
                let _ = vault.session("k");
                if file == CREDENTIALS_FILE && vault.credential_profiles().is_err() {
                    // A damaged credentials file is refused, and stays as it was.
                    let _ = vault.remove_credentials("lab");
                    assert_eq!(std::fs::read(&path).unwrap(), input);
                }
            });
            std::fs::write(&path, &seed).unwrap();
        }
    }
}
