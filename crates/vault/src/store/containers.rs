//! The credential broker's clients (`containers.json`): each a name, the one profile it is
//! bound to, the SHA-256 of its token, where its token file is, and when it was made, last
//! rotated and ends.
//!
//! The token itself is kept only in its token file (0600, in a 0700 directory of its own),
//! which is what a container mounts read-only; the registry holds its digest, so a copy of
//! the vault directory yields no usable token. Tokens are 32 bytes from the OS. The registry
//! is framed and written under the vault's write lock like every other vault file; it holds
//! no secret and needs no vault key, so the broker re-reads it on every request and
//! `remove`/`rotate` take effect at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Vault;
use crate::error::{Error, Result};
use crate::framed::{self, FramedJson};
use crate::fsio;

/// The registry's file in the vault directory.
pub const CONTAINERS_FILE: &str = "containers.json";
/// Where token files go unless the user names a path: `containers/<name>/token`.
const TOKENS_DIR: &str = "containers";
const TOKEN_FILE: &str = "token";
/// Token length in bytes, before encoding.
const TOKEN_BYTES: usize = 32;

/// One client of the broker, as the registry keeps it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContainerClient {
    pub name: String,
    pub profile: String,
    /// Hex SHA-256 of the token as it appears in the token file (and the Authorization
    /// header).
    pub token_sha256: String,
    pub token_file: PathBuf,
    /// Whether vault chose `token_file` (under the vault directory), so `remove` may delete
    /// its directory too.
    #[serde(default)]
    pub token_dir_owned: bool,
    pub created: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
}

impl ContainerClient {
    /// Whether the client's token is past its end.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_some_and(|end| end <= now)
    }
}

#[derive(Default, Serialize, Deserialize)]
struct Registry {
    clients: BTreeMap<String, ContainerClient>,
}

impl FramedJson for Registry {
    const FILE: &'static str = CONTAINERS_FILE;
    const FORMAT: &'static str = "vault-containers";
}

/// The hex SHA-256 of a token, as the registry keeps it.
pub fn token_digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// The clients registered in the vault directory `dir` (none without a registry). Needs no
/// vault key: the broker reads it on every request.
pub fn read_container_clients(dir: &Path) -> Result<Vec<ContainerClient>> {
    Ok(framed::read::<Registry>(dir)?
        .unwrap_or_default()
        .clients
        .into_values()
        .collect())
}

/// Client names name a directory and appear in logs: short, plain, not hidden.
pub fn validate_client_name(name: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c);
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 64 {
        Some("it is longer than 64 characters")
    } else if !name.chars().all(allowed) {
        Some("only letters, digits and _ - . are allowed")
    } else if name.starts_with('.') {
        Some("it must not start with a dot")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidClientName {
            name: name.chars().take(40).collect(),
            reason,
        }),
        None => Ok(()),
    }
}

/// A new token: 32 bytes from the OS, URL-safe base64 (what goes in the file and the
/// Authorization header).
fn new_token() -> Result<SecretString> {
    use base64::Engine as _;
    let mut bytes = zeroize::Zeroizing::new([0u8; TOKEN_BYTES]);
    getrandom::fill(bytes.as_mut())
        .map_err(|e| Error::io(Path::new("/dev/urandom"), std::io::Error::other(e)))?;
    Ok(SecretString::from(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[..]),
    ))
}

impl Vault {
    /// The registry's path, for a broker that watches it.
    pub fn containers_file(&self) -> PathBuf {
        framed::path::<Registry>(self.dir())
    }

    /// The registered clients, by name.
    pub fn container_clients(&self) -> Result<Vec<ContainerClient>> {
        read_container_clients(self.dir())
    }

    /// Registers `name` for `profile` with a new token, written to `token_file` (default:
    /// `containers/<name>/token` under the vault directory). The token file is written
    /// first; if the registry cannot be, it is removed again.
    pub fn add_container_client(
        &self,
        name: &str,
        profile: &str,
        token_file: Option<PathBuf>,
        expires: Option<DateTime<Utc>>,
    ) -> Result<ContainerClient> {
        validate_client_name(name)?;
        super::validate_profile_name(profile)?;
        let lock = self.write_lock()?;
        let mut registry = framed::read::<Registry>(self.dir())?.unwrap_or_default();
        if registry.clients.contains_key(name) {
            return Err(Error::ClientExists {
                name: name.to_owned(),
            });
        }
        let (token_file, owned) = match token_file {
            Some(path) => (path, false),
            None => (
                self.dir().join(TOKENS_DIR).join(name).join(TOKEN_FILE),
                true,
            ),
        };
        if owned {
            let parent = token_file.parent().expect("a file under the vault");
            fsio::create_private_dir(parent)?;
        } else if token_file.exists() || token_file.symlink_metadata().is_ok() {
            // Never overwrite a file the user had: the path may be a typo for another.
            return Err(Error::io(
                &token_file,
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a file is there already; name a new path",
                ),
            ));
        }
        check_token_dir(&token_file)?;
        let token = new_token()?;
        fsio::write_secret_no_follow(&token_file, token.expose_secret().as_bytes())?;
        let client = ContainerClient {
            name: name.to_owned(),
            profile: profile.to_owned(),
            token_sha256: hex::encode(token_digest(token.expose_secret().as_bytes())),
            token_file: token_file.clone(),
            token_dir_owned: owned,
            created: Utc::now(),
            rotated: None,
            expires,
        };
        registry.clients.insert(name.to_owned(), client.clone());
        if let Err(e) = lock.write(&registry) {
            let _ = std::fs::remove_file(&token_file);
            return Err(e);
        }
        Ok(client)
    }

    /// A new token for `name`, written over its token file (atomically: a reader sees the
    /// old token or the new one); the old one stops working once the registry is written.
    pub fn rotate_container_client(&self, name: &str) -> Result<ContainerClient> {
        let lock = self.write_lock()?;
        let mut registry = framed::read::<Registry>(self.dir())?.unwrap_or_default();
        let client = registry
            .clients
            .get_mut(name)
            .ok_or_else(|| Error::NoSuchClient {
                name: name.to_owned(),
            })?;
        check_token_dir(&client.token_file)?;
        let token = new_token()?;
        fsio::write_secret_no_follow(&client.token_file, token.expose_secret().as_bytes())?;
        client.token_sha256 = hex::encode(token_digest(token.expose_secret().as_bytes()));
        client.rotated = Some(Utc::now());
        let client = client.clone();
        lock.write(&registry)?;
        Ok(client)
    }

    /// Revokes `name`: out of the registry first (a running broker refuses its token from
    /// the next request), then its token file is deleted. `None`: no such client.
    pub fn remove_container_client(&self, name: &str) -> Result<Option<ContainerClient>> {
        let lock = self.write_lock()?;
        let mut registry = framed::read::<Registry>(self.dir())?.unwrap_or_default();
        let Some(client) = registry.clients.remove(name) else {
            return Ok(None);
        };
        lock.write(&registry)?;
        // Only a regular file is deleted; a symlink put in its place goes, not its target.
        if let Ok(meta) = std::fs::symlink_metadata(&client.token_file)
            && (meta.is_file() || meta.file_type().is_symlink())
        {
            let _ = std::fs::remove_file(&client.token_file);
        }
        if client.token_dir_owned
            && let Some(dir) = client.token_file.parent()
        {
            let _ = std::fs::remove_dir(dir);
        }
        Ok(Some(client))
    }
}

/// The directory of a token file must be the user's alone: anyone else who can write there
/// could swap the file for a link, or read a token meant for a container.
#[cfg(unix)]
fn check_token_dir(token_file: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let dir = match token_file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let meta = std::fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
    let reason = if !meta.is_dir() {
        Some("it is not a directory".to_owned())
    } else if meta.uid() != nix::unistd::geteuid().as_raw() {
        Some("another user owns it".to_owned())
    } else if meta.mode() & 0o077 != 0 {
        Some(format!(
            "others can read or change it (mode {:o})",
            meta.mode() & 0o777
        ))
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::NotPrivate {
            path: dir.to_owned(),
            reason: format!("{reason}; a token file needs a directory of its own (0700)"),
            fix: Some(format!("mkdir -m 700 DIR, or chmod 700 {}", dir.display())),
        }),
        None => Ok(()),
    }
}

#[cfg(not(unix))]
fn check_token_dir(_token_file: &Path) -> Result<()> {
    Ok(())
}
