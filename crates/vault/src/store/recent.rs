//! Recently used profiles (`recent`): plain names, most recent first, for the picker's
//! order. Only an ordering: unreadable means none, and a failed write is no error.

use super::{RECENT_FILE, Vault, validate_profile_name};
use crate::fsio;

/// How many recent profiles are remembered.
const RECENT_KEPT: usize = 20;

impl Vault {
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
}
