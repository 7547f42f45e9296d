//! Long-lived key pairs (`credentials.json`): one entry per profile, the pair sealed and
//! bound to the profile's name, when it was added in the clear. A damaged file is an error
//! and is never rewritten: unlike the session cache it holds what cannot be minted again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::sessions::SessionInfo;
use super::{CREDENTIALS_FILE, Entries, Vault, validate_profile_name};
use crate::error::Result;
use crate::framed::FramedJson;
use crate::secret::Credentials;

#[derive(Serialize, Deserialize)]
pub(super) struct CredentialRecord {
    added: DateTime<Utc>,
    data: String,
}

impl FramedJson for Entries<CredentialRecord> {
    const FILE: &'static str = CREDENTIALS_FILE;
    const FORMAT: &'static str = "vault-credentials";
}

/// What `list` shows about a stored key pair: no secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialInfo {
    pub profile: String,
    pub added: DateTime<Utc>,
}

impl Vault {
    /// Profiles with a stored key pair, sorted by name. Needs no key and no passphrase.
    pub fn credential_profiles(&self) -> Result<Vec<CredentialInfo>> {
        Ok(self
            .read_entries::<CredentialRecord>()?
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
        Ok(self
            .read_entries::<CredentialRecord>()?
            .entries
            .contains_key(profile))
    }

    /// The stored key pair of `profile`, decrypted.
    pub fn credentials(&self, profile: &str) -> Result<Option<Credentials>> {
        let body = self.read_entries::<CredentialRecord>()?;
        let Some(record) = body.entries.get(profile) else {
            return Ok(None);
        };
        self.open_entry::<Entries<CredentialRecord>, _>(profile, &record.data, Credentials::decode)
            .map(Some)
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
        let lock = self.write_lock()?;
        let record = CredentialRecord {
            added: Utc::now(),
            data,
        };
        self.insert_entry(&lock, profile, record)?;
        self.remove_sessions_locked(&lock, sessions_of(profile))?;
        Ok(())
    }

    /// Removes the key pair of `profile` and the sessions it minted. Returns whether a key
    /// pair was there.
    pub fn remove_credentials(&self, profile: &str) -> Result<bool> {
        if !self.exists() {
            return Ok(false);
        }
        let lock = self.write_lock()?;
        let removed = self.remove_entry::<CredentialRecord>(&lock, profile)?;
        self.remove_sessions_locked(&lock, sessions_of(profile))?;
        Ok(removed)
    }
}

/// The sessions that go with `profile`'s key pair: minted from it, or for it.
fn sessions_of(profile: &str) -> impl Fn(&SessionInfo) -> bool {
    move |s| s.source_profile == profile || s.profile == profile
}
