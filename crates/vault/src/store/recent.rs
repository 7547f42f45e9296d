//! Recently used profiles (`recent`): names, most recent first, for the picker's order.
//! Framed and written under the vault's write lock like every other vault file, so parallel
//! commands never lose each other's names; still only an ordering: unreadable means none,
//! and a failed write is no error.

use serde::{Deserialize, Serialize};

use super::{RECENT_FILE, Vault, validate_profile_name};
use crate::error::Error;
use crate::framed::{self, FramedJson};

/// How many recent profiles are remembered.
const RECENT_KEPT: usize = 20;

#[derive(Default, Serialize, Deserialize)]
struct Recent {
    profiles: Vec<String>,
}

impl FramedJson for Recent {
    const FILE: &'static str = RECENT_FILE;
    const FORMAT: &'static str = "vault-recent";
}

impl Vault {
    /// Profile names, most recently used first. Missing or unreadable: none (it is only an
    /// ordering). A file from before it was framed (one name a line) is read as it was.
    pub fn recent_profiles(&self) -> Vec<String> {
        let names = match framed::read::<Recent>(&self.dir) {
            Ok(recent) => recent.unwrap_or_default().profiles,
            Err(Error::Damaged { .. }) => std::fs::read_to_string(self.dir.join(RECENT_FILE))
                .map(|text| text.lines().map(str::to_owned).collect())
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        names
            .into_iter()
            .filter(|p| validate_profile_name(p).is_ok())
            .collect()
    }

    /// Puts `profile` first among the recent ones. Writes only when it is not first already,
    /// so a script running the same profile again and again never writes (nor locks);
    /// failures are ignored.
    pub fn note_recent(&self, profile: &str) {
        if self.recent_profiles().first().map(String::as_str) == Some(profile)
            || validate_profile_name(profile).is_err()
        {
            return;
        }
        let Ok(lock) = self.write_lock() else {
            return;
        };
        // Read again under the lock: another command may have just added its name.
        let mut recent = self.recent_profiles();
        recent.retain(|p| p != profile);
        recent.insert(0, profile.to_owned());
        recent.truncate(RECENT_KEPT);
        let _ = lock.write(&Recent { profiles: recent });
    }
}
