//! Console sign-ins at rest (`console.json`): one entry per AWS Sign-In session (its ARN),
//! its secrets sealed (see [`crate::console`]), what `list` and `--explain` show in the clear.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{CONSOLE_FILE, Entries, Vault};
use crate::console::{ConsoleSecrets, ConsoleSignIn, ConsoleSignInInfo};
use crate::error::{Error, Result};
use crate::framed::{self, FramedJson};

#[derive(Serialize, Deserialize)]
pub(super) struct ConsoleRecord {
    region: String,
    client_id: String,
    account_id: String,
    #[serde(default)]
    cli_cache: bool,
    signed_in: DateTime<Utc>,
    expires: DateTime<Utc>,
    data: String,
}

impl FramedJson for Entries<ConsoleRecord> {
    const FILE: &'static str = CONSOLE_FILE;
    const FORMAT: &'static str = "vault-console";
}

impl Vault {
    /// The console sign-ins held, sorted by session ARN. Needs no key and no passphrase.
    pub fn console_sign_ins(&self) -> Result<Vec<ConsoleSignInInfo>> {
        Ok(self
            .read_entries::<ConsoleRecord>()?
            .entries
            .iter()
            .map(|(key, r)| r.info(key))
            .collect())
    }

    /// What is known of the sign-in of session `key` without decrypting it.
    pub fn console_sign_in_info(&self, key: &str) -> Result<Option<ConsoleSignInInfo>> {
        Ok(self
            .read_entries::<ConsoleRecord>()?
            .entries
            .get(key)
            .map(|r| r.info(key)))
    }

    /// The sign-in of session `key`, decrypted.
    pub fn console_sign_in(&self, key: &str) -> Result<Option<ConsoleSignIn>> {
        let body = self.read_entries::<ConsoleRecord>()?;
        let Some(record) = body.entries.get(key) else {
            return Ok(None);
        };
        let secrets = self.open_entry::<Entries<ConsoleRecord>, _>(
            key,
            &record.data,
            ConsoleSecrets::decode,
        )?;
        Ok(Some(ConsoleSignIn {
            info: record.info(key),
            secrets,
        }))
    }

    /// Stores (or replaces) a sign-in. The vault must exist.
    pub fn store_console_sign_in(&self, sign_in: &ConsoleSignIn) -> Result<()> {
        let key = &sign_in.info.key;
        let plain = sign_in.secrets.encode(key).ok_or_else(|| {
            Error::damaged(
                framed::path::<Entries<ConsoleRecord>>(&self.dir),
                format!("entry {key:?}: a value holds a line break"),
            )
        })?;
        self.identity()?;
        let data = self.seal(&plain)?;
        let lock = self.write_lock()?;
        let info = &sign_in.info;
        let record = ConsoleRecord {
            region: info.region.clone(),
            client_id: info.client_id.clone(),
            account_id: info.account_id.clone(),
            cli_cache: info.cli_cache,
            signed_in: info.signed_in,
            expires: info.expires,
            data,
        };
        self.insert_entry(&lock, key, record)
    }

    /// Removes the sign-in of session `key`. Returns whether one was there.
    pub fn remove_console_sign_in(&self, key: &str) -> Result<bool> {
        if !self.exists() {
            return Ok(false);
        }
        let lock = self.write_lock()?;
        self.remove_entry::<ConsoleRecord>(&lock, key)
    }
}

impl ConsoleRecord {
    fn info(&self, key: &str) -> ConsoleSignInInfo {
        ConsoleSignInInfo {
            key: key.to_owned(),
            region: self.region.clone(),
            client_id: self.client_id.clone(),
            account_id: self.account_id.clone(),
            cli_cache: self.cli_cache,
            signed_in: self.signed_in,
            expires: self.expires,
        }
    }
}
