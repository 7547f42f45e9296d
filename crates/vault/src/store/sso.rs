//! IAM Identity Center sign-ins at rest (`sso.json`): one entry per sso-session (or legacy
//! start URL), its secrets sealed (see [`crate::sso`]), what `list` shows in the clear.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Entries, SSO_FILE, Vault};
use crate::error::{Error, Result};
use crate::framed::{self, FramedJson};
use crate::sso::{SsoSecrets, SsoToken, SsoTokenInfo};

#[derive(Serialize, Deserialize)]
pub(super) struct SsoRecord {
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

impl FramedJson for Entries<SsoRecord> {
    const FILE: &'static str = SSO_FILE;
    const FORMAT: &'static str = "vault-sso";
}

impl Vault {
    /// The SSO sign-ins held, sorted by key. Needs no key and no passphrase.
    pub fn sso_tokens(&self) -> Result<Vec<SsoTokenInfo>> {
        Ok(self
            .read_entries::<SsoRecord>()?
            .entries
            .iter()
            .map(|(key, r)| r.info(key))
            .collect())
    }

    /// The sign-in under `key`, decrypted.
    pub fn sso_token(&self, key: &str) -> Result<Option<SsoToken>> {
        let body = self.read_entries::<SsoRecord>()?;
        let Some(record) = body.entries.get(key) else {
            return Ok(None);
        };
        let secrets =
            self.open_entry::<Entries<SsoRecord>, _>(key, &record.data, SsoSecrets::decode)?;
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
                framed::path::<Entries<SsoRecord>>(&self.dir),
                format!("entry {key:?}: a token holds a line break"),
            )
        })?;
        self.identity()?;
        let data = self.seal(&plain)?;
        let lock = self.write_lock()?;
        let info = &token.info;
        let record = SsoRecord {
            start_url: info.start_url.clone(),
            region: info.region.clone(),
            scopes: info.scopes.clone(),
            grant_types: info.grant_types.clone(),
            cli_cache: info.cli_cache,
            registration_expires: info.registration_expires,
            token_expires: info.token_expires,
            refreshable: info.refreshable,
            data,
        };
        self.insert_entry(&lock, key, record)
    }

    /// Removes the sign-in under `key` entirely (registration included). Returns whether
    /// one was there.
    pub fn remove_sso_token(&self, key: &str) -> Result<bool> {
        if !self.exists() {
            return Ok(false);
        }
        let lock = self.write_lock()?;
        self.remove_entry::<SsoRecord>(&lock, key)
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
