//! Where the vault key is protected: an OS keyring entry, or a passphrase.
//!
//! Only the vault key (one age X25519 identity, ~74 bytes) ever goes into a keyring, so the
//! keyring is asked for exactly one entry per process and is never enumerated.
//!
//! Keyring calls are blocking. The Secret Service client runs its own small executor; calling
//! it from inside a tokio runtime thread can deadlock, so callers keep store calls off the
//! async runtime (the binary opens the vault before it starts one).
//!
//! The Secret Service is reached through the `secret-service` crate directly (a `plain`
//! session, see [`crate::secret_service`]); the other keyrings through keyring-core's
//! store crates.

use std::sync::Arc;

use keyring_core::{CredentialStore, Entry};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::names::{BackendKind, KEYRING_SERVICE};
#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
use crate::secret_service::{self, SecretServiceKeyring};

/// Whether `kind` can be reached here (for `file`: always). The error says why not.
pub fn probe(kind: BackendKind) -> std::result::Result<(), String> {
    match kind {
        BackendKind::File => Ok(()),
        #[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
        BackendKind::SecretService => SecretServiceKeyring::connect()?.probe(),
        _ => open_store(kind).map(|_| ()),
    }
}

/// A connection to one OS keyring.
pub(crate) struct Keyring {
    kind: BackendKind,
    store: Store,
}

enum Store {
    Core(Arc<CredentialStore>),
    #[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
    /// Connected per operation: a read needs no connection of the crate's (see
    /// `secret_service::get`).
    SecretService,
}

impl Keyring {
    /// Connects; fails with `BackendUnavailable` when the keyring cannot be reached.
    pub(crate) fn connect(kind: BackendKind) -> Result<Keyring> {
        let store = open_store(kind).map_err(|reason| Error::BackendUnavailable {
            backend: kind,
            reason,
        })?;
        Ok(Keyring { kind, store })
    }

    fn entry(store: &Arc<CredentialStore>, vault_id: &str) -> keyring_core::Result<Entry> {
        store.build(KEYRING_SERVICE, vault_id, None)
    }

    /// The stored secret, `None` when there is no such entry.
    pub(crate) fn get(&self, vault_id: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        match &self.store {
            Store::Core(store) => match Self::entry(store, vault_id).and_then(|e| e.get_secret()) {
                Ok(secret) => Ok(Some(Zeroizing::new(secret))),
                Err(keyring_core::Error::NoEntry) => Ok(None),
                Err(e) => Err(self.failure(e)),
            },
            #[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
            Store::SecretService => secret_service::get(vault_id).map_err(|e| self.refused(e)),
        }
    }

    pub(crate) fn set(&self, vault_id: &str, secret: &[u8]) -> Result<()> {
        match &self.store {
            Store::Core(store) => Self::entry(store, vault_id)
                .and_then(|e| e.set_secret(secret))
                .map_err(|e| self.failure(e)),
            #[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
            Store::SecretService => SecretServiceKeyring::connect()
                .map_err(secret_service::Failure::Unavailable)
                .and_then(|ss| ss.set(vault_id, secret))
                .map_err(|e| self.refused(e)),
        }
    }

    /// Deletes the entry; `false` when there was none.
    pub(crate) fn delete(&self, vault_id: &str) -> Result<bool> {
        match &self.store {
            Store::Core(store) => {
                match Self::entry(store, vault_id).and_then(|e| e.delete_credential()) {
                    Ok(()) => Ok(true),
                    Err(keyring_core::Error::NoEntry) => Ok(false),
                    Err(e) => Err(self.failure(e)),
                }
            }
            #[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
            Store::SecretService => SecretServiceKeyring::connect()
                .map_err(secret_service::Failure::Unavailable)
                .and_then(|ss| ss.delete(vault_id))
                .map_err(|e| self.refused(e)),
        }
    }

    #[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
    fn refused(&self, e: secret_service::Failure) -> Error {
        match e {
            secret_service::Failure::Unavailable(reason) => Error::BackendUnavailable {
                backend: self.kind,
                reason,
            },
            secret_service::Failure::Refused(reason) => Error::Backend {
                backend: self.kind,
                reason,
            },
        }
    }

    fn failure(&self, e: keyring_core::Error) -> Error {
        let reason = describe(&e);
        match e {
            keyring_core::Error::NoStorageAccess(_) => Error::BackendUnavailable {
                backend: self.kind,
                reason,
            },
            _ => Error::Backend {
                backend: self.kind,
                reason,
            },
        }
    }
}

/// keyring-core's `BadEncoding`/`BadDataFormat` carry the raw secret bytes in their Debug
/// output; only the Display text (which omits them) is ever used.
fn describe(e: &keyring_core::Error) -> String {
    match e {
        keyring_core::Error::BadEncoding(_) | keyring_core::Error::BadDataFormat(..) => {
            "the stored entry is not in the expected format".to_owned()
        }
        other => other.to_string(),
    }
}

fn open_store(kind: BackendKind) -> Result<Store, String> {
    match kind {
        #[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
        BackendKind::SecretService => {
            // No connection or probe here: the operation that follows fails the same way when
            // no provider answers, and each is more round trips through the bus and the
            // daemon (a cold read is two; docs/performance.md).
            Ok(Store::SecretService)
        }
        #[cfg(target_os = "linux")]
        BackendKind::KeyCtl => {
            let store = linux_keyutils_keyring_store::Store::new()
                .map_err(|e| format!("the kernel keyring is not usable here ({e})"))?;
            Ok(Store::Core(store))
        }
        #[cfg(target_os = "macos")]
        BackendKind::Keychain => {
            let store = apple_native_keyring_store::keychain::Store::new()
                .map_err(|e| format!("cannot open the login keychain ({e})"))?;
            Ok(Store::Core(store))
        }
        #[cfg(windows)]
        BackendKind::WinCred => {
            let store = windows_native_keyring_store::Store::new()
                .map_err(|e| format!("cannot open the Credential Manager ({e})"))?;
            Ok(Store::Core(store))
        }
        BackendKind::File => Err("the file backend has no keyring".to_owned()),
        _ => Err(format!(
            "not available on this platform (available here: {})",
            BackendKind::supported_names().join(", ")
        )),
    }
}
