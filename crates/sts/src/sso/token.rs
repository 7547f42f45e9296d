//! A sign-in's tokens as this command keeps them: in the vault, read, refreshed or replaced
//! under the sign-in's lock (`locks/sso-<digest>.lock`, so one process signs in for all),
//! copied to the AWS CLI's cache when the user chose that, taken from it (and refreshed)
//! when the CLI signed in, and written back to it when a refresh used the CLI's refresh
//! token; with the rules for when a held token or client registration still serves, and
//! for dropping a registration the service refuses.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use vault_store::{SsoSecrets, SsoToken, SsoTokenInfo, Vault};

use crate::aws::{Aws, AwsError, Service, Waiting};
use crate::profile::SsoSession;

use super::cli_cache::{self, CliCached, cli_cache_file_name};
use super::error::SsoError;
use super::oidc::{self, GRANT_AUTHORIZATION_CODE, GRANT_DEVICE_CODE, GRANT_REFRESH, TokenAnswer};
use super::prompt::Flow;

/// Tokens with less than this left are refreshed before use.
pub const REFRESH_AHEAD: Duration = Duration::from_secs(15 * 60);
/// A token that cannot be refreshed is used while at least this is left.
const LAST_USE: Duration = Duration::from_secs(60);
/// A client registration is renewed when less than this is left.
const REGISTRATION_AHEAD: Duration = Duration::from_secs(3600);
/// How long a lock may take before [`Waiting`] hears of it.
const WAIT_NOTICE_AFTER: Duration = Duration::from_secs(1);

/// The name of a sign-in's lock in the vault (and of the failure noted beside it).
pub(super) fn lock_name(sso: &SsoSession) -> String {
    format!("sso-{}", digest(&sso.key))
}

/// The vault (and the AWS CLI's cache) as the keeper of sign-ins' tokens.
pub(super) struct Tokens<'a> {
    pub(super) vault: &'a Vault,
    pub(super) aws: &'a Aws,
    pub(super) waiting: Option<&'a dyn Waiting>,
    /// The AWS CLI's token cache directory, when there is a home.
    pub(super) cli_cache_dir: Option<&'a Path>,
    /// New tokens go to the AWS CLI's cache too (`--cli-cache`).
    pub(super) cli_cache: bool,
    /// The longest a sign-in may take: no wait for another process's is longer.
    pub(super) sign_in_timeout: Duration,
}

/// How long past a sign-in's own timeout a waiter still waits (the holder's last calls).
const WAIT_BEYOND_SIGN_IN: Duration = Duration::from_secs(60);

impl Tokens<'_> {
    /// The vault's token when it can be used as is.
    pub(super) fn usable(&self, sso: &SsoSession) -> Result<Option<SecretString>, SsoError> {
        let Some(info) = self
            .vault
            .sso_tokens()?
            .into_iter()
            .find(|t| t.key == sso.key)
        else {
            return Ok(None);
        };
        if !fresh(&info, sso) {
            return Ok(None);
        }
        Ok(self
            .vault
            .sso_token(&sso.key)?
            .filter(|t| t.info.start_url == sso.start_url.value)
            .and_then(|t| t.secrets.access_token))
    }

    /// The sign-in's lock, waited for at most as long as a sign-in may take (and a minute).
    pub(super) fn lock(&self, sso: &SsoSession) -> Result<vault_store::FileLock, SsoError> {
        let limit = self.sign_in_timeout + WAIT_BEYOND_SIGN_IN;
        self.vault
            .named_lock_within(&lock_name(sso), WAIT_NOTICE_AFTER, limit, &mut || {
                if let Some(waiting) = self.waiting {
                    waiting.waiting_for(&format!(
                        "another vault process signing in to {}",
                        sso.label()
                    ));
                }
            })?
            .ok_or_else(|| SsoError::Busy {
                label: sso.label(),
                waited: limit,
            })
    }

    /// Refreshes a held token that has a refresh token. `None` when there is nothing to
    /// refresh with, or the refresh was refused: the tokens are dropped then, and `held` with
    /// them, and the client registration too when the service refused the client itself
    /// (else every later sign-in would fail with it until it expires, up to 90 days).
    pub(super) fn refresh(
        &self,
        sso: &SsoSession,
        held: &mut SsoToken,
    ) -> Result<Option<SecretString>, SsoError> {
        let Some(refresh) = held.secrets.refresh_token.clone() else {
            return Ok(None);
        };
        if held.info.start_url != sso.start_url.value || !registration_fresh(&held.info) {
            return Ok(None);
        }
        tracing::debug!(sso = %sso.label(), "refreshing the SSO token");
        match self.refresh_with(sso, held, &refresh)? {
            Refresh::Done(token) => {
                *held = token;
                Ok(held.secrets.access_token.clone())
            }
            Refresh::Refused { code, client } => {
                tracing::debug!(sso = %sso.label(), code = %code, client, "the refresh was refused; signing in again");
                forget_tokens(held);
                if client {
                    forget_registration(held);
                }
                self.vault.store_sso_token(held)?;
                Ok(None)
            }
            // Unreachable: a token that still works is better than none.
            Refresh::Failed(e) => match (&held.secrets.access_token, held.info.token_expires) {
                (Some(t), Some(expires)) if expires > Utc::now() + chrono_of(LAST_USE) => {
                    tracing::debug!(sso = %sso.label(), "refresh failed ({e}); using the token while it lasts");
                    Ok(Some(t.clone()))
                }
                _ => Err(e.into()),
            },
        }
    }

    /// CreateToken with `refresh`, `token`'s refresh token. New tokens are kept at once: in
    /// the vault, and in the AWS CLI's cache when its file holds the same refresh token or
    /// the user chose that.
    fn refresh_with(
        &self,
        sso: &SsoSession,
        token: &SsoToken,
        refresh: &SecretString,
    ) -> Result<Refresh, SsoError> {
        let request = oidc::create_token(self.aws, sso, token, GRANT_REFRESH)
            .refresh_token(refresh.expose_secret());
        let out = match self
            .aws
            .call(Service::SsoOidc, "CreateToken", request.send())
        {
            Ok(out) => out,
            Err(e) => {
                let e = self
                    .aws
                    .error(Service::SsoOidc, "CreateToken", &sso.label(), e);
                return Ok(match e.code() {
                    Some(
                        code @ ("InvalidGrantException"
                        | "ExpiredTokenException"
                        | "AccessDeniedException"
                        | "InvalidClientException"
                        | "UnauthorizedClientException"),
                    ) => Refresh::Refused {
                        code: code.to_owned(),
                        client: refuses_client(&e),
                    },
                    _ => Refresh::Failed(e),
                });
            }
        };
        let mut token = token.clone();
        apply_token(
            &mut token,
            out.access_token,
            out.expires_in,
            out.refresh_token,
        );
        self.vault.store_sso_token(&token)?;
        let shared = match self.cli_cache_path(sso) {
            Some(path) => cli_cache::write_back(&path, refresh, &token)?,
            None => false,
        };
        if shared {
            tracing::debug!(sso = %sso.label(), "wrote the refreshed token back to the AWS CLI's cache");
        } else if token.info.cli_cache
            && let Some(path) = self.cli_cache_path(sso)
        {
            cli_cache::write(&path, sso, &token)?;
        }
        Ok(Refresh::Done(token))
    }

    /// Drops the held token if it is still `rejected` (another process may have replaced it
    /// already), and a CLI cache file holding it.
    pub(super) fn invalidate(
        &self,
        sso: &SsoSession,
        rejected: &SecretString,
    ) -> Result<(), SsoError> {
        let _lock = self.lock(sso)?;
        if let Some(mut held) = self.vault.sso_token(&sso.key)?
            && held
                .secrets
                .access_token
                .as_ref()
                .is_some_and(|t| t.expose_secret() == rejected.expose_secret())
        {
            forget_tokens(&mut held);
            self.vault.store_sso_token(&held)?;
        }
        if let Some(path) = self.cli_cache_path(sso)
            && cli_cache::read(&path)
                .is_some_and(|c| c.access_token.expose_secret() == rejected.expose_secret())
        {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }

    /// A token the AWS CLI left in its cache (`aws sso login`), taken into the vault: as it
    /// is while it has time left, else (with less than [`REFRESH_AHEAD`] left, as botocore
    /// decides) refreshed first with its refresh token and registration, when it has them.
    /// The new tokens then go back into the CLI's file too (see [`cli_cache::write_back`]).
    pub(super) fn import_cli_cache(
        &self,
        sso: &SsoSession,
        held: Option<&SsoToken>,
    ) -> Result<Option<SecretString>, SsoError> {
        let Some(path) = self.cli_cache_path(sso) else {
            return Ok(None);
        };
        let Some(cached) = cli_cache::read(&path) else {
            return Ok(None);
        };
        if cached.start_url != sso.start_url.value {
            return Ok(None);
        }
        let now = Utc::now();
        let expires = cached.expires_at;
        let token = self.imported(sso, held, cached);
        if expires <= now + chrono_of(REFRESH_AHEAD)
            && let Some(refresh) = token.secrets.refresh_token.clone()
            && !token.secrets.client_id.is_empty()
            && token.info.registration_expires > now
        {
            tracing::debug!(sso = %sso.label(), "refreshing the token the AWS CLI cached");
            match self.refresh_with(sso, &token, &refresh)? {
                Refresh::Done(token) => return Ok(token.secrets.access_token),
                // Not the vault's to drop: the CLI's file stays as the CLI left it.
                Refresh::Refused { code, .. } => {
                    tracing::debug!(sso = %sso.label(), code = %code, "the AWS CLI's refresh token was refused");
                }
                Refresh::Failed(e) => {
                    tracing::debug!(sso = %sso.label(), "refreshing the AWS CLI's token failed ({e})");
                }
            }
        }
        if expires <= now + chrono_of(LAST_USE) {
            return Ok(None);
        }
        tracing::debug!(sso = %sso.label(), "using the token the AWS CLI cached");
        self.vault.store_sso_token(&token)?;
        Ok(token.secrets.access_token)
    }

    /// The CLI's cached token as the vault keeps one. Its client comes with the grant types
    /// and scopes the CLI registered it with, from the CLI's registration file, so a later
    /// sign-in reuses it only for the flow it was made for (botocore refuses a PKCE client
    /// for the device flow and the other way round). With no such file they are unknown: the
    /// client serves refreshes only ([`GRANT_REFRESH`] is all the token proves it has).
    fn imported(&self, sso: &SsoSession, held: Option<&SsoToken>, cached: CliCached) -> SsoToken {
        let (client_id, client_secret, registration_expires, scopes, grant_types) =
            match (cached.client_id, cached.client_secret) {
                (Some(id), Some(secret)) => {
                    let registered = self
                        .cli_cache_dir
                        .and_then(|dir| cli_cache::registration(dir, sso, &id));
                    let (scopes, grant_types) = match registered {
                        Some(r) => (r.scopes, r.grant_types),
                        None => (Vec::new(), vec![GRANT_REFRESH.to_owned()]),
                    };
                    let expires = cached.registration_expires_at.unwrap_or(cached.expires_at);
                    (id, secret, expires, scopes, grant_types)
                }
                // The legacy cache holds no registration: keep the vault's, if any.
                _ => match held {
                    Some(h) => (
                        h.secrets.client_id.clone(),
                        h.secrets.client_secret.clone(),
                        h.info.registration_expires,
                        h.info.scopes.clone(),
                        h.info.grant_types.clone(),
                    ),
                    None => (
                        String::new(),
                        SecretString::from(""),
                        Utc::now(),
                        Vec::new(),
                        Vec::new(),
                    ),
                },
            };
        SsoToken {
            info: SsoTokenInfo {
                key: sso.key.clone(),
                start_url: sso.start_url.value.clone(),
                region: sso.region.value.clone(),
                scopes,
                grant_types,
                cli_cache: held.is_some_and(|h| h.info.cli_cache) || self.cli_cache,
                registration_expires,
                token_expires: Some(cached.expires_at),
                refreshable: cached.refresh_token.is_some(),
            },
            secrets: SsoSecrets {
                client_id,
                client_secret,
                access_token: Some(cached.access_token),
                refresh_token: cached.refresh_token,
            },
        }
    }

    /// The held client registration when it fits the flow and has time left, else a new one.
    pub(super) fn registration(
        &self,
        sso: &SsoSession,
        held: Option<&SsoToken>,
        flow: Flow,
    ) -> Result<SsoToken, SsoError> {
        if let Some(held) = held
            && held.info.start_url == sso.start_url.value
            && held.info.scopes == sso.scopes
            && registration_fresh(&held.info)
            && !held.secrets.client_id.is_empty()
            && fits(&held.info.grant_types, flow)
        {
            return Ok(held.clone());
        }
        oidc::register(self.aws, sso, held, flow)
    }

    /// A sign-in's registration with `run`'s answer (`run` is the flow) taken in. A held
    /// registration the service refuses (revoked, or not for this grant) is dropped, in the
    /// vault too, and the flow runs again with a new one, once; a new one refused is an
    /// error, so this never loops.
    pub(super) fn sign_in_registered(
        &self,
        sso: &SsoSession,
        held: Option<&SsoToken>,
        flow: Flow,
        run: impl Fn(&SsoToken) -> Result<TokenAnswer, SsoError>,
    ) -> Result<SsoToken, SsoError> {
        let mut token = self.registration(sso, held, flow)?;
        let reused = held.filter(|h| {
            !h.secrets.client_id.is_empty() && h.secrets.client_id == token.secrets.client_id
        });
        let answer = match (run(&token), reused) {
            (Err(SsoError::Aws(e)), Some(held)) if refuses_client(&e) => {
                tracing::debug!(sso = %sso.label(), code = e.code(), "the held client registration was refused; registering again");
                let mut dropped = held.clone();
                forget_registration(&mut dropped);
                self.vault.store_sso_token(&dropped)?;
                token = oidc::register(self.aws, sso, Some(&dropped), flow)?;
                run(&token)?
            }
            (answer, _) => answer?,
        };
        let (access, expires_in, refresh) = answer;
        apply_token(&mut token, access, expires_in, refresh);
        Ok(token)
    }

    /// Stores the token in the vault, and in the AWS CLI's cache when the user chose that.
    pub(super) fn keep(&self, sso: &SsoSession, token: &SsoToken) -> Result<(), SsoError> {
        self.vault.store_sso_token(token)?;
        if token.info.cli_cache
            && let Some(path) = self.cli_cache_path(sso)
        {
            cli_cache::write(&path, sso, token)?;
        }
        Ok(())
    }

    pub(super) fn cli_cache_path(&self, sso: &SsoSession) -> Option<PathBuf> {
        self.cli_cache_dir
            .map(|dir| dir.join(cli_cache_file_name(&sso.key)))
    }
}

/// Takes CreateToken's answer into `token`.
pub(super) fn apply_token(
    token: &mut SsoToken,
    access: Option<String>,
    expires_in: i32,
    refresh: Option<String>,
) {
    let expires = Utc::now() + chrono::Duration::seconds(i64::from(expires_in.max(0)));
    token.secrets.access_token = access.map(SecretString::from);
    // A refresh answer may leave the refresh token out: the old one still holds.
    if let Some(refresh) = refresh {
        token.secrets.refresh_token = Some(SecretString::from(refresh));
    }
    token.info.token_expires = Some(expires);
    token.info.refreshable = token.secrets.refresh_token.is_some();
}

/// Drops the client registration (the service refused it), so the next sign-in registers
/// a new client instead of failing with this one until it expires.
fn forget_registration(token: &mut SsoToken) {
    token.secrets.client_id.clear();
    token.secrets.client_secret = SecretString::from("");
    token.info.registration_expires = chrono::DateTime::UNIX_EPOCH;
    token.info.scopes.clear();
    token.info.grant_types.clear();
}

/// Whether the service refused the client registration itself, not only a token or code.
fn refuses_client(e: &AwsError) -> bool {
    matches!(
        e.code(),
        Some("InvalidClientException" | "UnauthorizedClientException")
    )
}

/// Whether a client registered for `grant_types` may sign in with `flow`, as botocore
/// decides (`_is_registration_for_auth_code`): the PKCE flow needs `authorization_code`; the
/// device flow takes any other client, one that records no grant types included (the AWS
/// CLI recorded none before PKCE, and vault's older registrations neither), but not one
/// known only to refresh (an imported client whose registration is unknown).
fn fits(grant_types: &[String], flow: Flow) -> bool {
    let has = |grant: &str| grant_types.iter().any(|g| g == grant);
    match flow {
        Flow::AuthorizationCode => has(GRANT_AUTHORIZATION_CODE),
        Flow::DeviceCode => {
            !has(GRANT_AUTHORIZATION_CODE) && (grant_types.is_empty() || has(GRANT_DEVICE_CODE))
        }
    }
}

/// What a refresh came to.
enum Refresh {
    /// New tokens, kept.
    Done(SsoToken),
    /// The service refused (`code`): the refresh token is done for, and with `client` the
    /// registration too.
    Refused { code: String, client: bool },
    /// No verdict: the service was not reached, or answered something else.
    Failed(AwsError),
}

/// Drops the tokens, keeping the registration (until it expires).
pub(super) fn forget_tokens(token: &mut SsoToken) {
    token.secrets.access_token = None;
    token.secrets.refresh_token = None;
    token.info.token_expires = None;
    token.info.refreshable = false;
}

/// Whether the held token can be used without a refresh.
fn fresh(info: &SsoTokenInfo, sso: &SsoSession) -> bool {
    let Some(expires) = info.token_expires else {
        return false;
    };
    let ahead = match info.refreshable {
        true => REFRESH_AHEAD,
        false => LAST_USE,
    };
    info.start_url == sso.start_url.value && expires > Utc::now() + chrono_of(ahead)
}

fn registration_fresh(info: &SsoTokenInfo) -> bool {
    info.registration_expires > Utc::now() + chrono_of(REGISTRATION_AHEAD)
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn digest(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_depends_on_refreshability() {
        let sso = SsoSession {
            key: "corp".into(),
            session: Some("corp".into()),
            start_url: crate::origin::Sourced::new(
                "https://x.awsapps.com/start".into(),
                crate::origin::Origin::Default,
            ),
            region: crate::origin::Sourced::new("us-east-1".into(), crate::origin::Origin::Default),
            scopes: vec!["sso:account:access".into()],
        };
        let mut info = SsoTokenInfo {
            key: "corp".into(),
            start_url: "https://x.awsapps.com/start".into(),
            region: "us-east-1".into(),
            scopes: vec![],
            grant_types: vec![],
            cli_cache: false,
            registration_expires: Utc::now() + chrono::Duration::days(90),
            token_expires: Some(Utc::now() + chrono::Duration::minutes(10)),
            refreshable: true,
        };
        // Ten minutes left: refresh first.
        assert!(!fresh(&info, &sso));
        // Nothing to refresh with: use it while it lasts.
        info.refreshable = false;
        assert!(fresh(&info, &sso));
        // Another start URL's token never serves this session.
        info.start_url = "https://other.awsapps.com/start".into();
        assert!(!fresh(&info, &sso));
    }

    #[test]
    fn registrations_fit_flows_as_botocore_decides() {
        let grants = |g: &[&str]| g.iter().map(|g| g.to_string()).collect::<Vec<_>>();
        let pkce = grants(&[GRANT_AUTHORIZATION_CODE, GRANT_REFRESH]);
        let device = grants(&[GRANT_DEVICE_CODE, GRANT_REFRESH]);
        assert!(fits(&pkce, Flow::AuthorizationCode));
        assert!(!fits(&pkce, Flow::DeviceCode));
        assert!(fits(&device, Flow::DeviceCode));
        assert!(!fits(&device, Flow::AuthorizationCode));
        // None recorded: a device client (the AWS CLI's, vault's older ones).
        assert!(fits(&[], Flow::DeviceCode));
        assert!(!fits(&[], Flow::AuthorizationCode));
        // An imported client of unknown registration serves refreshes only.
        let unknown = grants(&[GRANT_REFRESH]);
        assert!(!fits(&unknown, Flow::DeviceCode));
        assert!(!fits(&unknown, Flow::AuthorizationCode));
    }
}
