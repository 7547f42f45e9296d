//! `vault migrate-backend`: the vault key moved to another backend. Apart from creation and
//! opening because its order is what makes it safe: new copy, `vault.json` rewritten, and
//! only then the old copy removed.

use age::secrecy::ExposeSecret;

use super::key::supported;
use super::{Meta, Vault, read_meta};
use crate::backend::Keyring;
use crate::error::{Error, Result};
use crate::names::BackendKind;
use crate::unlocked;

impl Vault {
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
        supported(to)?;
        let identity = self.identity()?.clone();
        let secret_key = identity.to_string();
        let lock = self.write_lock()?;
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
        lock.write(&moved)?;
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
}
