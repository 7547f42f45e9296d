//! Resolving a profile name into the chain of profiles that produces its credentials, with
//! the origin (file:line, environment variable, flag) of every value used.
//!
//! The rules, written up for users in `docs/config.md`:
//! - A profile with `role_arn` is assumed from the credentials of its `source_profile`
//!   (`source_profile` naming the profile itself means its own stored key).
//! - A profile without `role_arn` uses its own stored key, or, with `source_profile`, that
//!   profile's credentials.
//! - `include_profile = other` copies the keys of `other` that this profile does not set.
//! - `[default]` is an ordinary profile: its keys do not leak into others (aws-vault lets
//!   `mfa_serial` and `region` leak; write `include_profile = default` to get that).
//! - `mfa_serial`, `mfa_process` and `region` come from the requested profile, else the
//!   nearest profile down the chain that sets them; environment and flags override.
//! - A profile with `sso_session` (or the legacy `sso_start_url`) and `sso_account_id` +
//!   `sso_role_name` gets its credentials from IAM Identity Center; it is a chain source like
//!   a stored key (`source_profile = my-sso` + `role_arn` assumes a role from them).
//!   `role_arn` in the SSO profile itself, with no `source_profile`, is an error, as in
//!   botocore and aws-sdk-rust.
//! - A profile with `login_session` (written by `aws login`) gets its credentials from the
//!   AWS CLI's console-session cache; a chain source the same way, with the same refusal of
//!   `role_arn` beside it.
//!
//! The parts, each using only those before it: `error` (`ProfileError`), `read` (a key
//! through `include_profile`), `checks` (ARNs, MFA devices, session names, account ids),
//! `sso_session` (`[sso-session]` sections and a profile's SSO keys), `role` (`RoleSpec`),
//! `resolve` (the chain). This file only names what the rest of the crate uses.

// Profile errors carry the file and line they are about; they are built once, on the way out.
#![allow(clippy::result_large_err)]

mod checks;
mod error;
mod read;
mod resolve;
mod role;
mod sso_session;
#[cfg(test)]
mod tests;

pub use checks::{is_account_id, session_name_char};
pub use error::ProfileError;
pub use resolve::{
    BaseSource, CredentialSourceKind, Link, LoginSession, Overrides, Resolved, resolve,
    resolve_without_key,
};
pub use role::RoleSpec;
pub use sso_session::{DEFAULT_SSO_SCOPE, SsoSession, sign_in_named, sso_role_of, sso_session};
