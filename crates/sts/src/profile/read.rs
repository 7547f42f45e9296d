//! Reading one key of a profile as the SDKs do: from the profile itself, else from the
//! profiles its `include_profile` chain names, with the file and line it was found on.

use crate::config::ConfigFile;
use crate::origin::{Origin, Sourced};

use super::error::ProfileError;

/// Reads profiles of one config file, following `include_profile`.
pub(super) struct Reader<'a> {
    pub(super) config: &'a ConfigFile,
}

impl Reader<'_> {
    /// A key of a profile or of the profiles it includes.
    pub(super) fn get(
        &self,
        profile: &str,
        key: &str,
    ) -> Result<Option<Sourced<String>>, ProfileError> {
        let mut seen = vec![profile.to_owned()];
        let mut current = profile.to_owned();
        loop {
            if let Some((value, line)) = self.config.get(&current, key) {
                return Ok(Some(Sourced::new(
                    value.to_owned(),
                    self.origin(&current, line),
                )));
            }
            let Some((include, line)) = self.config.get(&current, "include_profile") else {
                return Ok(None);
            };
            if !self.config.has_profile(include) {
                return Err(ProfileError::MissingInclude {
                    missing: include.to_owned(),
                    profile: current.clone(),
                    origin: self.origin(&current, line),
                });
            }
            if seen.iter().any(|s| s == include) {
                seen.push(include.to_owned());
                return Err(ProfileError::IncludeCycle(seen.join(" → ")));
            }
            seen.push(include.to_owned());
            current = include.to_owned();
        }
    }

    fn origin(&self, profile: &str, line: Option<usize>) -> Origin {
        Origin::Config {
            path: self.config.path.clone(),
            line,
            profile: profile.to_owned(),
        }
    }
}
