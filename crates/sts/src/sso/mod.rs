//! IAM Identity Center (SSO): signing in, keeping the tokens in the vault, refreshing them,
//! and getting role credentials from the portal.
//!
//! One sign-in serves every process: the token of a session is read, refreshed or obtained
//! under the vault lock `locks/sso-<digest>.lock`, and whoever gets the lock re-reads the
//! vault first. So 32 processes that all find no token make one RegisterClient, one browser
//! visit and one CreateToken; the other 31 wait and use the result. A token with less than
//! [`REFRESH_AHEAD`] left is refreshed (`CreateToken` with the refresh token) before use.
//! A refresh refused (`invalid_grant`) or a token the portal refuses (401) leads to exactly
//! one new sign-in.
//!
//! The person approves in a browser; this crate never opens one itself. It hands the page
//! to the caller's [`SignIn`], then either serves the loopback redirect (authorization code
//! with PKCE, RFC 7636/8252) or polls for the device code's approval (RFC 8628).
//!
//! The parts, each using only those before it: `error` (`SsoError`) → `prompt` (what the
//! caller's [`SignIn`] shows, and `Approval`: the wait for the person) → `cli_cache` (the
//! AWS CLI's token files) → `oidc` (RegisterClient, CreateToken) → `token` (the vault's
//! tokens: lock, freshness, refresh, import, keep) → `loopback` (the redirect listener) →
//! `pkce`, `device` (the two sign-in flows) → `portal` (role credentials, accounts, Logout)
//! → this file ([`Sso`], which ties them together).

mod cli_cache;
mod device;
mod error;
pub(crate) mod loopback;
mod oidc;
pub(crate) mod pkce;
mod portal;
mod prompt;
mod token;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use chrono::Utc;
use secrecy::SecretString;
use vault_store::{Credentials, SsoToken, SsoTokenInfo, Vault};

use crate::aws::{Aws, AwsError, Waiting};
use crate::profile::SsoSession;

pub use cli_cache::cli_cache_file_name;
pub use error::{ShowError, SsoError};
pub use portal::SsoAccount;
pub use prompt::{Flow, SignIn, SignInPrompt};
pub use token::REFRESH_AHEAD;

use prompt::Approval;
use token::{Tokens, forget_tokens};

/// A failed sign-in also fails the commands that asked for a token up to this long after it
/// failed (and all that asked before): a burst of commands started together fails together,
/// even those that reached the lock only after the sign-in's process gave it up.
const FAILURE_COVERS_BEFORE: Duration = Duration::from_secs(5);

/// Choices for the SSO side of one command.
#[derive(Clone, Debug)]
pub struct SsoOptions {
    pub flow: Flow,
    /// Also write each token to the AWS CLI's cache (`--cli-cache`, `AWS_VAULT_SSO_CLI_CACHE`).
    pub cli_cache: bool,
    /// The AWS CLI's token cache directory (`~/.aws/sso/cache`), when there is a home.
    pub cli_cache_dir: Option<PathBuf>,
    /// The longest a sign-in may wait for the person (10 minutes).
    pub timeout: Duration,
}

/// The SSO side of one command: tokens in the vault, calls through [`Aws`], new sign-ins
/// shown by the caller's [`SignIn`].
pub struct Sso<'a> {
    tokens: Tokens<'a>,
    sign_in: &'a dyn SignIn,
    options: &'a SsoOptions,
}

impl std::fmt::Debug for Sso<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sso")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<'a> Sso<'a> {
    pub fn new(
        vault: &'a Vault,
        aws: &'a Aws,
        sign_in: &'a dyn SignIn,
        options: &'a SsoOptions,
    ) -> Self {
        Sso {
            tokens: Tokens {
                vault,
                aws,
                waiting: None,
                cli_cache_dir: options.cli_cache_dir.as_deref(),
                cli_cache: options.cli_cache,
                sign_in_timeout: options.timeout,
            },
            sign_in,
            options,
        }
    }

    /// Tell `waiting` when another process holds the sign-in's lock.
    pub fn telling(mut self, waiting: &'a dyn Waiting) -> Self {
        self.tokens.waiting = Some(waiting);
        self
    }

    /// A role's credentials from the portal. A token the portal refuses is dropped and the
    /// person signs in again, once.
    pub fn role_credentials(
        &self,
        sso: &SsoSession,
        account_id: &str,
        role_name: &str,
        profile: &str,
    ) -> Result<Credentials, SsoError> {
        let aws = self.tokens.aws;
        self.with_token(sso, |token| {
            portal::role_credentials(aws, sso, token, account_id, role_name, profile)
        })
    }

    /// `call` with a usable token. A token the portal refuses (401: expired early, revoked)
    /// is dropped and the person signs in again, once; every portal call goes through here.
    fn with_token<T>(
        &self,
        sso: &SsoSession,
        call: impl Fn(&SecretString) -> Result<T, AwsError>,
    ) -> Result<T, SsoError> {
        let token = self.access_token(sso)?;
        match call(&token) {
            Err(e) if e.code() == Some("UnauthorizedException") => {
                tracing::debug!(sso = %sso.label(), "the portal refused the token; signing in again");
                self.tokens.invalidate(sso, &token)?;
                let token = self.access_token(sso)?;
                Ok(call(&token)?)
            }
            other => Ok(other?),
        }
    }

    /// A usable access token: the vault's, refreshed if near its end, else one from the AWS
    /// CLI's cache, else a new sign-in.
    pub fn access_token(&self, sso: &SsoSession) -> Result<SecretString, SsoError> {
        let tokens = &self.tokens;
        let asked = SystemTime::now();
        if let Some(token) = tokens.usable(sso)? {
            return Ok(token);
        }
        let _lock = tokens.lock(sso)?;
        if let Some(token) = tokens.usable(sso)? {
            tracing::debug!(sso = %sso.label(), "another process signed in");
            return Ok(token);
        }
        // The sign-in we waited for failed: say why, as its process did, instead of opening
        // a browser of our own (16 waiters would be 16 tabs, one after the other).
        let since = asked.checked_sub(FAILURE_COVERS_BEFORE).unwrap_or(asked);
        if let Some(message) = tokens.vault.failure_since(&token::lock_name(sso), since)? {
            return Err(SsoError::FailedElsewhere {
                label: sso.label(),
                message,
            });
        }
        let mut held = tokens.vault.sso_token(&sso.key)?;
        if let Some(held) = &mut held
            && let Some(token) = tokens.refresh(sso, held)?
        {
            return Ok(token);
        }
        if let Some(token) = tokens.import_cli_cache(sso, held.as_ref())? {
            return Ok(token);
        }
        let token = self.sign_in_locked(sso, held.as_ref())?;
        Ok(token
            .secrets
            .access_token
            .clone()
            .expect("a sign-in yields a token"))
    }

    /// `vault sso login`: a new sign-in whatever the vault holds. Returns what was stored.
    pub fn sign_in(&self, sso: &SsoSession) -> Result<SsoTokenInfo, SsoError> {
        let _lock = self.tokens.lock(sso)?;
        let held = self.tokens.vault.sso_token(&sso.key)?;
        Ok(self.sign_in_locked(sso, held.as_ref())?.info)
    }

    /// `vault sso logout`: the portal's Logout (when a token is held), then the tokens are
    /// forgotten (the client registration is kept until it expires). Returns whether a
    /// token was held.
    pub fn logout(&self, sso: &SsoSession) -> Result<bool, SsoError> {
        let tokens = &self.tokens;
        let _lock = tokens.lock(sso)?;
        let Some(mut held) = tokens.vault.sso_token(&sso.key)? else {
            return Ok(false);
        };
        let had_token = held.secrets.access_token.is_some();
        if let (Some(token), Some(expires)) = (&held.secrets.access_token, held.info.token_expires)
            && expires > Utc::now()
        {
            portal::logout(tokens.aws, sso, token)?;
        }
        if held.info.cli_cache
            && let Some(path) = tokens.cli_cache_path(sso)
        {
            let _ = std::fs::remove_file(path);
        }
        forget_tokens(&mut held);
        held.info.cli_cache = false;
        tokens.vault.store_sso_token(&held)?;
        Ok(had_token)
    }

    /// Every account the sign-in reaches and its roles (ListAccounts, ListAccountRoles; all
    /// pages), sorted by account name, then role. A refused token means one new sign-in.
    pub fn accounts(&self, sso: &SsoSession) -> Result<Vec<SsoAccount>, SsoError> {
        let aws = self.tokens.aws;
        self.with_token(sso, |token| portal::accounts(aws, sso, token))
    }

    /// [`Sso::sign_in_flow`], noting its failure beside the lock for the processes waiting
    /// on it (and clearing the note on success). The caller holds the lock.
    fn sign_in_locked(
        &self,
        sso: &SsoSession,
        held: Option<&SsoToken>,
    ) -> Result<SsoToken, SsoError> {
        let vault = self.tokens.vault;
        let name = token::lock_name(sso);
        match self.sign_in_flow(sso, held) {
            Ok(token) => {
                vault.clear_failure(&name)?;
                Ok(token)
            }
            Err(e) => {
                if let Err(note) = vault.note_failure(&name, &e.to_string()) {
                    tracing::debug!(error = %note, "cannot note the failed sign-in");
                }
                Err(e)
            }
        }
    }

    /// Registers if needed, runs the flow, stores the token. The caller holds the lock.
    fn sign_in_flow(
        &self,
        sso: &SsoSession,
        held: Option<&SsoToken>,
    ) -> Result<SsoToken, SsoError> {
        // The legacy form is what the AWS CLI did before sso-session: the device flow, no
        // scopes, no refresh token.
        let flow = match sso.refreshable() {
            true => self.options.flow,
            false => Flow::DeviceCode,
        };
        let approval = Approval::new(self.sign_in, self.options.timeout);
        let aws = self.tokens.aws;
        let mut token = self
            .tokens
            .sign_in_registered(sso, held, flow, |token| match flow {
                Flow::AuthorizationCode => pkce::authorization_code(aws, &approval, sso, token),
                Flow::DeviceCode => device::device_code(aws, &approval, sso, token),
            })?;
        token.info.cli_cache = token.info.cli_cache || self.options.cli_cache;
        self.tokens.keep(sso, &token)?;
        Ok(token)
    }
}
