//! A role to assume, as one profile describes it: `role_arn` and the keys that shape its
//! session (external id, session name, duration, session tags, source identity), read
//! through `include_profile` and checked before any call.

use std::time::Duration;

use crate::duration;
use crate::origin::Sourced;

use super::checks::{validate_role_arn, validate_session_name};
use super::error::ProfileError;
use super::read::Reader;

/// A role to assume, as one profile describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleSpec {
    pub arn: Sourced<String>,
    pub external_id: Option<Sourced<String>>,
    pub session_name: Option<Sourced<String>>,
    pub duration: Option<Sourced<Duration>>,
    /// `session_tags = k=v,k2=v2`
    pub session_tags: Option<Sourced<Vec<(String, String)>>>,
    /// `transitive_session_tags = k,k2`
    pub transitive_tags: Option<Sourced<Vec<String>>>,
    pub source_identity: Option<Sourced<String>>,
}

impl RoleSpec {
    /// The partition part of the ARN (`aws`, `aws-cn`, `aws-us-gov`, ...).
    pub fn partition(&self) -> &str {
        self.arn.value.split(':').nth(1).unwrap_or("aws")
    }

    /// The role name (last path segment), for messages.
    pub fn name(&self) -> &str {
        self.arn.value.rsplit('/').next().unwrap_or(&self.arn.value)
    }
}

/// The role of `profile`, whose `role_arn` is `arn`. `session_name_override` wins over the
/// profile's `role_session_name` (the environment's, for the requested profile only).
pub(super) fn role_spec(
    reader: &Reader<'_>,
    profile: &str,
    arn: Sourced<String>,
    session_name_override: Option<&Sourced<String>>,
) -> Result<RoleSpec, ProfileError> {
    validate_role_arn(&arn, profile)?;
    let mut session_name = reader.get(profile, "role_session_name")?;
    if let Some(n) = session_name_override {
        session_name = Some(n.clone());
    }
    if let Some(n) = &session_name {
        validate_session_name(n, profile)?;
    }
    let duration = match reader.get(profile, "duration_seconds")? {
        Some(d) => {
            let value = duration::parse(&d.value).map_err(|reason| ProfileError::Invalid {
                key: "duration_seconds",
                profile: profile.to_owned(),
                origin: d.origin.clone(),
                reason,
            })?;
            Some(Sourced::new(value, d.origin))
        }
        None => None,
    };
    let session_tags = match reader.get(profile, "session_tags")? {
        Some(tags) => {
            let mut pairs = Vec::new();
            for item in tags
                .value
                .split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
            {
                let Some((k, v)) = item.split_once('=') else {
                    return Err(ProfileError::Invalid {
                        key: "session_tags",
                        profile: profile.to_owned(),
                        origin: tags.origin,
                        reason: format!(
                            "{item:?} is not key=value (write session_tags = team=infra,env=lab)"
                        ),
                    });
                };
                pairs.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            Some(Sourced::new(pairs, tags.origin))
        }
        None => None,
    };
    let transitive_tags = reader.get(profile, "transitive_session_tags")?.map(|t| {
        Sourced::new(
            t.value
                .split(',')
                .map(|k| k.trim().to_owned())
                .filter(|k| !k.is_empty())
                .collect(),
            t.origin,
        )
    });
    Ok(RoleSpec {
        arn,
        external_id: reader.get(profile, "external_id")?,
        session_name,
        duration,
        session_tags,
        transitive_tags,
        source_identity: reader.get(profile, "source_identity")?,
    })
}
