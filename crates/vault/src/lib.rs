//! The encrypted store of `vault`: long-lived AWS key pairs, cached session credentials and
//! IAM Identity Center and console (AWS Sign-In) sign-ins.
//!
//! Everything at rest is encrypted with [age] to one per-vault X25519 key, the *vault key*.
//! Only the vault key is protected by a backend: an OS keyring entry ([`BackendKind`]), or a
//! passphrase (age scrypt) for the `file` backend. See `docs/backends.md` for the threat
//! model.
//!
//! This crate does no network I/O, never prints, and never prompts: a passphrase comes from
//! the caller's [`PassphraseSource`].

#![forbid(unsafe_code)]

mod backend;
mod console;
mod error;
mod framed;
mod fsio;
mod names;
mod secret;
#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
mod secret_service;
mod sso;
mod store;
pub mod unlocked;

pub use backend::probe as probe_backend;
pub use console::{ConsoleSecrets, ConsoleSignIn, ConsoleSignInInfo};
pub use error::{Error, PassphraseError, Result};
pub use fsio::{FileLock, ReadError, is_dev_null, lock_beside, read_regular, replace_file};
pub use names::{BackendKind, UnknownBackend};
pub use secret::{Credentials, redact_key_id};
pub use sso::{SsoSecrets, SsoToken, SsoTokenInfo};
pub use store::containers::{
    CONTAINERS_FILE, ContainerClient, read_container_clients, token_digest, validate_client_name,
};
pub use store::credentials::CredentialInfo;
pub use store::sessions::{Session, SessionInfo, SessionList};
pub use store::{BackendChoice, PassphraseSource, Vault, validate_profile_name};

/// Re-exported so callers build secrets with the same type the store uses.
pub use secrecy::{ExposeSecret, SecretString};
