//! The vault key: made with the vault, opened at most once per process from wherever it is
//! kept (unlocked in the kernel, wrapped under the environment's passphrase, behind the
//! passphrase with scrypt, or in an OS keyring), and used to seal and open entries.

use std::time::Duration;

use age::secrecy::{ExposeSecret, SecretString};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::Utc;
use zeroize::Zeroizing;

use super::payload::{decrypt, encrypt, open_payload};
use super::{BackendChoice, Meta, Vault, parse_backend, read_meta};
use crate::backend::Keyring;
use crate::error::{Error, Result};
use crate::framed::{self, FramedJson};
use crate::fsio;
use crate::names::BackendKind;
use crate::unlocked;

/// The named lock around scrypt (one opening of the vault key at a time).
const UNLOCK_LOCK: &str = "unlock";

/// scrypt work factor for the passphrase (N = 2^18: ~256 MiB, ~0.5 s). Pinned, not
/// calibrated per machine, so a vault made on a fast desktop opens on a slow laptop.
const SCRYPT_LOG_N: u8 = 18;
/// The largest work factor accepted when opening, so a tampered file cannot demand hours.
const SCRYPT_MAX_LOG_N: u8 = 20;

impl Vault {
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

    /// Creates the vault if it does not exist. Returns a notice for the user when the default
    /// OS keyring was unreachable and the `file` backend was chosen instead.
    pub fn create_if_missing(&mut self) -> Result<Option<String>> {
        if self.meta.is_some() {
            return Ok(None);
        }
        fsio::create_private_dir(&self.dir)?;
        let lock = self.write_lock()?;
        // Another process may have created it while we waited for the lock.
        if let Some(meta) = read_meta(&self.dir)? {
            self.meta = Some(meta);
            return Ok(None);
        }
        let (backend, notice) = self.pick_new_backend()?;
        let identity = age::x25519::Identity::generate();
        let id = random_hex(8)?;
        let secret_key = identity.to_string();
        let (backend, notice) = match backend {
            BackendKind::File => (backend, notice),
            _ => self.keep_in_keyring(backend, notice, &id, &secret_key)?,
        };
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
        lock.write(&meta)?;
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

    /// Stores a new vault key in the keyring `backend`; returns the backend that keeps it.
    fn keep_in_keyring(
        &self,
        backend: BackendKind,
        notice: Option<String>,
        id: &str,
        secret_key: &SecretString,
    ) -> Result<(BackendKind, Option<String>)> {
        // The real test of a keyring is storing in it: a Secret Service whose default
        // collection is locked or missing (headless Linux) accepts connections and then
        // refuses. Chosen by default, such a keyring gives way to the file backend.
        let stored = Keyring::connect(backend)
            .and_then(|k| k.set(id, secret_key.expose_secret().as_bytes()));
        match stored {
            Ok(()) => Ok((backend, notice)),
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
                Ok((BackendKind::File, None))
            }
            Err(e) => Err(e),
        }
    }

    /// The vault key encrypted (age scrypt) under a new passphrase, asked for twice.
    pub(super) fn wrap_under_new_passphrase(&self, secret_key: &SecretString) -> Result<String> {
        let passphrase = self.ask_passphrase(true)?;
        let mut recipient = age::scrypt::Recipient::new(passphrase);
        recipient.set_work_factor(SCRYPT_LOG_N);
        let wrapped = encrypt(&recipient, secret_key.expose_secret().as_bytes())
            .map_err(|e| Error::io(&self.dir, e))?;
        Ok(BASE64.encode(wrapped))
    }

    /// The passphrase from the caller's source; `creating` asks for a new one.
    fn ask_passphrase(&self, creating: bool) -> Result<SecretString> {
        self.passphrase
            .passphrase(&self.dir, creating)
            .map_err(Error::PassphraseUnavailable)
    }

    fn pick_new_backend(&self) -> Result<(BackendKind, Option<String>)> {
        match self.choice {
            BackendChoice::Explicit(kind) => Ok((supported(kind)?, None)),
            BackendChoice::Default => Ok((
                BackendKind::platform_default().unwrap_or(BackendKind::File),
                None,
            )),
        }
    }

    /// `plain` encrypted to the vault's recorded public key, base64 for a JSON field.
    pub(super) fn seal(&self, plain: &[u8]) -> Result<String> {
        let recipient = self.recipient()?;
        let sealed = encrypt(&recipient, plain).map_err(|e| Error::io(&self.dir, e))?;
        Ok(BASE64.encode(sealed))
    }

    /// The entry `key` of `F`'s file, decrypted and decoded; a failure names the entry.
    pub(super) fn open_entry<F: FramedJson, T>(
        &self,
        key: &str,
        data: &str,
        decode: impl FnOnce(&[u8], &str) -> Result<T, &'static str>,
    ) -> Result<T> {
        let damaged = |reason: &dyn std::fmt::Display| {
            Error::damaged(
                framed::path::<F>(&self.dir),
                format!("entry {key:?}: {reason}"),
            )
        };
        let plain = open_payload(self.identity()?, data).map_err(|reason| damaged(&reason))?;
        decode(&plain, key).map_err(|reason| damaged(&reason))
    }

    fn recipient(&self) -> Result<age::x25519::Recipient> {
        self.meta()?
            .recipient
            .parse()
            .map_err(|_| Error::damaged(self.meta_path(), "public key is malformed"))
    }

    /// Opens the vault key: from the OS keyring, or by asking for the passphrase. At most once
    /// per `Vault`.
    pub fn unlock(&self) -> Result<()> {
        self.identity().map(|_| ())
    }

    /// The vault key, opened once: as kept unlocked or wrapped when it is, else read from its
    /// backend (for `file`, after taking the scrypt lock and looking again for a kept copy).
    pub(super) fn identity(&self) -> Result<&age::x25519::Identity> {
        if let Some(identity) = self.identity.get() {
            return Ok(identity);
        }
        let meta = self.meta()?;
        let backend = parse_backend(&self.dir, &meta.backend)?;
        if keeps_unlocked(backend)
            && let Some(kept) = unlocked::get(&meta.id)
        {
            match meta.key_from(&kept) {
                Ok(identity) => {
                    tracing::debug!("vault key kept unlocked in the kernel keyring");
                    return Ok(self.identity.get_or_init(|| identity));
                }
                // Not this vault's key (a vault recreated under the same id?): drop it.
                Err(_) => {
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
                && let Ok(identity) = meta.key_from(&kept)
            {
                return Ok(self.identity.get_or_init(|| identity));
            }
        }
        let secret = self.read_key(meta, backend)?;
        let text = std::str::from_utf8(&secret)
            .map_err(|_| Error::damaged(self.meta_path(), "vault key is not text"))?
            .trim();
        let identity = meta
            .key_from(text)
            .map_err(|reason| Error::damaged(self.meta_path(), reason))?;
        self.keep_opened(meta, backend, text, from_env.as_ref());
        Ok(self.identity.get_or_init(|| identity))
    }

    /// The vault key as `backend` keeps it: unwrapped with the passphrase (scrypt), or read
    /// from the OS keyring.
    fn read_key(&self, meta: &Meta, backend: BackendKind) -> Result<Zeroizing<Vec<u8>>> {
        if backend != BackendKind::File {
            return Keyring::connect(backend)?
                .get(&meta.id)?
                .ok_or_else(|| Error::KeyMissing {
                    dir: self.dir.clone(),
                    backend,
                });
        }
        let wrapped = meta
            .wrapped_key
            .as_deref()
            .ok_or_else(|| Error::damaged(self.meta_path(), "no wrapped key"))?;
        let wrapped = BASE64
            .decode(wrapped)
            .map_err(|_| Error::damaged(self.meta_path(), "wrapped key is not base64"))?;
        let passphrase = self.ask_passphrase(false)?;
        tracing::debug!("opening the vault key with scrypt");
        let mut scrypt = age::scrypt::Identity::new(passphrase);
        scrypt.set_max_work_factor(SCRYPT_MAX_LOG_N);
        match decrypt(&scrypt, &wrapped) {
            Ok(plain) => Ok(plain),
            Err(age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys) => {
                Err(Error::WrongPassphrase {
                    dir: self.dir.clone(),
                })
            }
            Err(e) => Err(Error::damaged(self.meta_path(), e.to_string())),
        }
    }

    /// Keeps a freshly opened vault key (`text`) for later commands, as asked; failing to is
    /// no error.
    fn keep_opened(
        &self,
        meta: &Meta,
        backend: BackendKind,
        text: &str,
        from_env: Option<&SecretString>,
    ) {
        if keeps_unlocked(backend)
            && let Some(idle) = self.remember
            && let Err(e) = unlocked::put(&meta.id, text, idle)
        {
            tracing::debug!("not keeping the vault unlocked: {e}");
        }
        if let (Some(passphrase), Some(idle)) = (from_env, self.remember_wrapped)
            && let Some(wrapped) = unlocked::wrap(passphrase.expose_secret(), &meta.id, text)
            && let Err(e) = unlocked::put_env(&meta.id, &wrapped, idle)
        {
            tracing::debug!("not keeping the wrapped vault key: {e}");
        }
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
        let identity = meta.key_from(&text).ok()?;
        tracing::debug!("vault key kept wrapped under the passphrase from the environment");
        Some(identity)
    }
}

impl Meta {
    /// `text` as this vault's key: it must parse, and its public key must be the recorded one
    /// (a kept or stored key of another vault is never used). The error says which failed.
    fn key_from(&self, text: &str) -> Result<age::x25519::Identity, &'static str> {
        let identity: age::x25519::Identity = text.parse().map_err(|_| "vault key is malformed")?;
        if identity.to_public().to_string() != self.recipient {
            return Err("the vault key does not match the recorded public key");
        }
        Ok(identity)
    }
}

/// `kind`, when this build can use it; otherwise an error naming the ones it can.
pub(super) fn supported(kind: BackendKind) -> Result<BackendKind> {
    if kind.is_supported() {
        return Ok(kind);
    }
    Err(Error::BackendUnavailable {
        backend: kind,
        reason: format!(
            "not available on this platform (available here: {})",
            BackendKind::supported_names().join(", ")
        ),
    })
}

/// Backends whose opened vault key is kept in the kernel for the idle timeout: the passphrase
/// (to skip scrypt and the prompt) and the Secret Service (to skip the D-Bus connection and its
/// key exchange on every command; whoever can read the kept key could ask the Secret Service
/// for it just as well).
fn keeps_unlocked(backend: BackendKind) -> bool {
    matches!(backend, BackendKind::File | BackendKind::SecretService)
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| Error::io(".", std::io::Error::other(e)))?;
    Ok(hex::encode(buf))
}
