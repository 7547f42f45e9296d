//! What can be wrong with a profile, each problem naming the profile and, where it helps,
//! the file and line: one type for every part of resolving, so callers match on variants.

use std::path::PathBuf;

use crate::origin::Origin;

/// Problems with profiles, each naming the profile and, where it helps, the file and line.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("profile {name:?} is not in {config} and has no stored key in the vault")]
    Unknown { name: String, config: PathBuf },
    #[error("source_profile cycle: {0}")]
    Cycle(String),
    #[error("include_profile cycle: {0}")]
    IncludeCycle(String),
    #[error(
        "source_profile {missing:?} of profile {profile:?} ({origin}) is not in the config file and has no stored key"
    )]
    MissingSource {
        missing: String,
        profile: String,
        origin: Origin,
    },
    #[error(
        "include_profile {missing:?} of profile {profile:?} ({origin}) is not in the config file"
    )]
    MissingInclude {
        missing: String,
        profile: String,
        origin: Origin,
    },
    #[error("profile {profile:?} needs a stored key, and the vault has none for it")]
    NoStoredKey { profile: String },
    #[error(
        "profile {profile:?} sets role_arn ({origin}) but no source_profile, so there are no credentials to assume it with"
    )]
    NoSource { profile: String, origin: Origin },
    /// `role_arn` beside a sign-in's keys with no `source_profile`: botocore ("Partial
    /// credentials found in assume-role") and aws-sdk-rust ("profile must contain
    /// `source_profile` or `credential_source`") both refuse it, so vault does too.
    #[error(
        "profile {profile:?} sets role_arn ({origin}) and the keys of {}, but no source_profile; the AWS CLI and the SDKs refuse such a profile",
        if *console { "a console session (login_session)" } else { "an IAM Identity Center sign-in" }
    )]
    RoleBesideSignIn {
        profile: String,
        /// The sign-in is a console session of `aws login` (`login_session`), not SSO.
        console: bool,
        origin: Origin,
        /// The profile's sign-in keys, as `key = value` lines for a profile of their own.
        sign_in: Vec<String>,
        role_arn: String,
    },
    #[error("sso-session {session:?} ({origin}): {reason}")]
    SsoSession {
        session: String,
        origin: Origin,
        reason: String,
    },
    #[error("{key} of profile {profile:?} ({origin}) is not valid: {reason}")]
    Invalid {
        key: &'static str,
        profile: String,
        origin: Origin,
        reason: String,
    },
}
