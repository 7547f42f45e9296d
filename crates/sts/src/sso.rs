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

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use chrono::{DateTime, TimeZone, Utc};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use vault_store::{Credentials, SsoSecrets, SsoToken, SsoTokenInfo, Vault};

use crate::aws::{Aws, AwsError, Service, Waiting};
use crate::profile::SsoSession;

/// Tokens with less than this left are refreshed before use.
pub const REFRESH_AHEAD: Duration = Duration::from_secs(15 * 60);
/// A token that cannot be refreshed is used while at least this is left.
const LAST_USE: Duration = Duration::from_secs(60);
/// A client registration is renewed when less than this is left.
const REGISTRATION_AHEAD: Duration = Duration::from_secs(3600);
/// How long a lock may take before [`Waiting`] hears of it.
const WAIT_NOTICE_AFTER: Duration = Duration::from_secs(1);
/// The loopback redirect registered for the authorization code flow; any port is accepted
/// for 127.0.0.1 (RFC 8252 §7.3), the actual one is sent with each request.
const REDIRECT_REGISTERED: &str = "http://127.0.0.1/oauth/callback";
const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
const GRANT_REFRESH: &str = "refresh_token";
/// The name the portal shows for the registered client.
const CLIENT_NAME: &str = "vault";

/// How the person approves a new sign-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// A browser on this machine: authorization code with PKCE and a loopback redirect.
    AuthorizationCode,
    /// Any browser, anywhere: a device code to approve (`--use-device-code`, SSH sessions).
    DeviceCode,
}

/// What the caller is asked to show the person.
#[derive(Debug)]
pub struct SignInPrompt<'a> {
    /// `sso-session corp`, or the start URL.
    pub label: &'a str,
    /// The page to approve the sign-in on.
    pub url: &'a str,
    /// The code the page shows (device flow): the person checks that it matches.
    pub user_code: Option<&'a str>,
    pub flow: Flow,
}

/// The caller's way of getting a person to a page: a browser, or a line on the terminal.
pub trait SignIn {
    /// The error is a message for the user.
    fn show(&self, prompt: &SignInPrompt<'_>) -> Result<(), String>;
}

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

#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error(transparent)]
    Store(#[from] vault_store::Error),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("the sign-in to {label} was denied in the browser")]
    Denied { label: String },
    #[error("the sign-in code for {label} expired before it was approved")]
    Expired { label: String },
    #[error("the sign-in to {label} was not approved within {}", crate::duration::display(*.after))]
    TimedOut { label: String, after: Duration },
    #[error("cannot show the sign-in page for {label}: {message}")]
    Show { label: String, message: String },
    #[error("the sign-in to {label} failed: {message}")]
    Failed { label: String, message: String },
    #[error("cannot listen on 127.0.0.1 for the browser's redirect: {0}")]
    Listen(std::io::Error),
    #[error("cannot write the AWS CLI's token cache {path}: {message}")]
    CliCache { path: PathBuf, message: String },
}

/// One sign-in's registration and token, as the flows pass them around.
type Token = SsoToken;

/// The SSO side of one command: tokens in `vault`, calls through `aws`.
pub struct Sso<'a> {
    vault: &'a Vault,
    aws: &'a Aws,
    sign_in: &'a dyn SignIn,
    options: &'a SsoOptions,
    waiting: Option<&'a dyn Waiting>,
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
            vault,
            aws,
            sign_in,
            options,
            waiting: None,
        }
    }

    /// Tell `waiting` when another process holds the sign-in's lock.
    pub fn telling(mut self, waiting: &'a dyn Waiting) -> Self {
        self.waiting = Some(waiting);
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
        let token = self.access_token(sso)?;
        match self.get_role_credentials(sso, &token, account_id, role_name, profile) {
            Err(SsoError::Aws(e)) if e.code() == Some("UnauthorizedException") => {
                tracing::debug!(sso = %sso.label(), "the portal refused the token; signing in again");
                self.invalidate(sso, &token)?;
                let token = self.access_token(sso)?;
                self.get_role_credentials(sso, &token, account_id, role_name, profile)
            }
            other => other,
        }
    }

    /// A usable access token: the vault's, refreshed if near its end, else one from the AWS
    /// CLI's cache, else a new sign-in.
    pub fn access_token(&self, sso: &SsoSession) -> Result<SecretString, SsoError> {
        if let Some(token) = self.usable(sso)? {
            return Ok(token);
        }
        let _lock = self.lock(sso)?;
        if let Some(token) = self.usable(sso)? {
            tracing::debug!(sso = %sso.label(), "another process signed in");
            return Ok(token);
        }
        let held = self.vault.sso_token(&sso.key)?;
        if let Some(held) = &held
            && let Some(token) = self.try_refresh(sso, held)?
        {
            return Ok(token);
        }
        if let Some(token) = self.import_cli_cache(sso, held.as_ref())? {
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
        let _lock = self.lock(sso)?;
        let held = self.vault.sso_token(&sso.key)?;
        Ok(self.sign_in_locked(sso, held.as_ref())?.info)
    }

    /// `vault sso logout`: the portal's Logout (when a token is held), then the tokens are
    /// forgotten (the client registration is kept until it expires). Returns whether a
    /// token was held.
    pub fn logout(&self, sso: &SsoSession) -> Result<bool, SsoError> {
        let _lock = self.lock(sso)?;
        let Some(mut held) = self.vault.sso_token(&sso.key)? else {
            return Ok(false);
        };
        let had_token = held.secrets.access_token.is_some();
        if let (Some(token), Some(expires)) = (&held.secrets.access_token, held.info.token_expires)
            && expires > Utc::now()
        {
            let portal = self.aws.sso_portal(&sso.region.value);
            let request = portal.logout().access_token(token.expose_secret());
            match self.aws.call(Service::Sso, "Logout", request.send()) {
                Ok(_) => {}
                // A token the portal no longer knows is as logged out as it gets.
                Err(e) => {
                    let e = self.aws.error(Service::Sso, "Logout", &sso.label(), e);
                    if e.code() != Some("UnauthorizedException") {
                        return Err(e.into());
                    }
                }
            }
        }
        if held.info.cli_cache
            && let Some(path) = self.cli_cache_path(sso)
        {
            let _ = std::fs::remove_file(path);
        }
        forget_tokens(&mut held);
        held.info.cli_cache = false;
        self.vault.store_sso_token(&held)?;
        Ok(had_token)
    }

    /// Every account the sign-in reaches and its roles (ListAccounts, ListAccountRoles; all
    /// pages), sorted by account name, then role.
    pub fn accounts(&self, sso: &SsoSession) -> Result<Vec<SsoAccount>, SsoError> {
        let token = self.access_token(sso)?;
        let portal = self.aws.sso_portal(&sso.region.value);
        let label = sso.label();
        let mut accounts = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let request = portal
                .list_accounts()
                .access_token(token.expose_secret())
                .set_next_token(next.take());
            let page = self
                .aws
                .call(Service::Sso, "ListAccounts", request.send())
                .map_err(|e| self.aws.error(Service::Sso, "ListAccounts", &label, e))?;
            for account in page.account_list.unwrap_or_default() {
                let Some(id) = account.account_id else {
                    continue;
                };
                accounts.push(SsoAccount {
                    name: account.account_name.unwrap_or_else(|| id.clone()),
                    id,
                    roles: Vec::new(),
                });
            }
            match page.next_token {
                Some(t) if !t.is_empty() => next = Some(t),
                _ => break,
            }
        }
        for account in &mut accounts {
            let mut next: Option<String> = None;
            loop {
                let request = portal
                    .list_account_roles()
                    .access_token(token.expose_secret())
                    .account_id(&account.id)
                    .set_next_token(next.take());
                let page = self
                    .aws
                    .call(Service::Sso, "ListAccountRoles", request.send())
                    .map_err(|e| self.aws.error(Service::Sso, "ListAccountRoles", &label, e))?;
                account.roles.extend(
                    page.role_list
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|r| r.role_name),
                );
                match page.next_token {
                    Some(t) if !t.is_empty() => next = Some(t),
                    _ => break,
                }
            }
            account.roles.sort();
        }
        accounts.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(accounts)
    }

    // ----- the token -----

    /// The vault's token when it can be used as is.
    fn usable(&self, sso: &SsoSession) -> Result<Option<SecretString>, SsoError> {
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

    fn lock(&self, sso: &SsoSession) -> Result<vault_store::FileLock, SsoError> {
        let name = format!("sso-{}", digest(&sso.key));
        Ok(self
            .vault
            .named_lock_telling(&name, WAIT_NOTICE_AFTER, &mut || {
                if let Some(waiting) = self.waiting {
                    waiting.waiting_for(&format!(
                        "another vault process signing in to {}",
                        sso.label()
                    ));
                }
            })?)
    }

    /// Refreshes a held token that has a refresh token. `None` when there is nothing to
    /// refresh with, or the refresh was refused (the tokens are dropped then).
    fn try_refresh(
        &self,
        sso: &SsoSession,
        held: &SsoToken,
    ) -> Result<Option<SecretString>, SsoError> {
        let Some(refresh) = &held.secrets.refresh_token else {
            return Ok(None);
        };
        if held.info.start_url != sso.start_url.value || !registration_fresh(&held.info) {
            return Ok(None);
        }
        let request = self
            .create_token(sso, held, GRANT_REFRESH)
            .refresh_token(refresh.expose_secret());
        tracing::debug!(sso = %sso.label(), "refreshing the SSO token");
        match self
            .aws
            .call(Service::SsoOidc, "CreateToken", request.send())
        {
            Ok(out) => {
                let mut token = held.clone();
                apply_token(
                    &mut token,
                    out.access_token,
                    out.expires_in,
                    out.refresh_token,
                );
                self.keep(sso, &token)?;
                Ok(token.secrets.access_token)
            }
            Err(e) => {
                let e = self
                    .aws
                    .error(Service::SsoOidc, "CreateToken", &sso.label(), e);
                match e.code() {
                    Some(
                        "InvalidGrantException"
                        | "ExpiredTokenException"
                        | "InvalidClientException"
                        | "UnauthorizedClientException"
                        | "AccessDeniedException",
                    ) => {
                        tracing::debug!(sso = %sso.label(), code = e.code(), "the refresh was refused; signing in again");
                        let mut dropped = held.clone();
                        forget_tokens(&mut dropped);
                        self.vault.store_sso_token(&dropped)?;
                        Ok(None)
                    }
                    // Unreachable: a token that still works is better than none.
                    _ => match (&held.secrets.access_token, held.info.token_expires) {
                        (Some(t), Some(expires)) if expires > Utc::now() + chrono_of(LAST_USE) => {
                            tracing::debug!(sso = %sso.label(), "refresh failed ({e}); using the token while it lasts");
                            Ok(Some(t.clone()))
                        }
                        _ => Err(e.into()),
                    },
                }
            }
        }
    }

    /// Drops the held token if it is still `rejected` (another process may have replaced it
    /// already), and a CLI cache file holding it.
    fn invalidate(&self, sso: &SsoSession, rejected: &SecretString) -> Result<(), SsoError> {
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
            && read_cli_cache(&path)
                .is_some_and(|c| c.access_token.expose_secret() == rejected.expose_secret())
        {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }

    /// A valid token the AWS CLI left in its cache (`aws sso login`), taken into the vault.
    fn import_cli_cache(
        &self,
        sso: &SsoSession,
        held: Option<&SsoToken>,
    ) -> Result<Option<SecretString>, SsoError> {
        let Some(path) = self.cli_cache_path(sso) else {
            return Ok(None);
        };
        let Some(cached) = read_cli_cache(&path) else {
            return Ok(None);
        };
        if cached.start_url != sso.start_url.value
            || cached.expires_at <= Utc::now() + chrono_of(LAST_USE)
        {
            return Ok(None);
        }
        tracing::debug!(sso = %sso.label(), "using the token the AWS CLI cached");
        let (client_id, client_secret, registration_expires) =
            match (cached.client_id, cached.client_secret) {
                (Some(id), Some(secret)) => (
                    id,
                    secret,
                    cached.registration_expires_at.unwrap_or(cached.expires_at),
                ),
                // The legacy cache holds no registration: keep the vault's, if any.
                _ => match held {
                    Some(h) => (
                        h.secrets.client_id.clone(),
                        h.secrets.client_secret.clone(),
                        h.info.registration_expires,
                    ),
                    None => (String::new(), SecretString::from(""), Utc::now()),
                },
            };
        let token = Token {
            info: SsoTokenInfo {
                key: sso.key.clone(),
                start_url: sso.start_url.value.clone(),
                region: sso.region.value.clone(),
                scopes: held.map(|h| h.info.scopes.clone()).unwrap_or_default(),
                grant_types: held.map(|h| h.info.grant_types.clone()).unwrap_or_default(),
                cli_cache: held.is_some_and(|h| h.info.cli_cache) || self.options.cli_cache,
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
        };
        self.vault.store_sso_token(&token)?;
        Ok(token.secrets.access_token)
    }

    /// Registers if needed, runs the flow, stores the token. The caller holds the lock.
    fn sign_in_locked(&self, sso: &SsoSession, held: Option<&SsoToken>) -> Result<Token, SsoError> {
        // The legacy form is what the AWS CLI did before sso-session: the device flow, no
        // scopes, no refresh token.
        let flow = match sso.refreshable() {
            true => self.options.flow,
            false => Flow::DeviceCode,
        };
        let mut token = self.registration(sso, held, flow)?;
        let deadline = Instant::now() + self.options.timeout;
        let out = match flow {
            Flow::AuthorizationCode => self.authorization_code(sso, &token, deadline)?,
            Flow::DeviceCode => self.device_code(sso, &token, deadline)?,
        };
        apply_token(&mut token, out.0, out.1, out.2);
        token.info.cli_cache = token.info.cli_cache || self.options.cli_cache;
        self.keep(sso, &token)?;
        Ok(token)
    }

    /// The held client registration when it fits the flow and has time left, else a new one.
    fn registration(
        &self,
        sso: &SsoSession,
        held: Option<&SsoToken>,
        flow: Flow,
    ) -> Result<Token, SsoError> {
        let grant = match flow {
            Flow::AuthorizationCode => GRANT_AUTHORIZATION_CODE,
            Flow::DeviceCode => GRANT_DEVICE_CODE,
        };
        if let Some(held) = held
            && held.info.start_url == sso.start_url.value
            && held.info.scopes == sso.scopes
            && registration_fresh(&held.info)
            && !held.secrets.client_id.is_empty()
            && (held.info.grant_types.is_empty() && flow == Flow::DeviceCode
                || held.info.grant_types.iter().any(|g| g == grant))
        {
            return Ok(held.clone());
        }
        let oidc = self.aws.sso_oidc(&sso.region.value);
        let mut request = oidc
            .register_client()
            .client_name(CLIENT_NAME)
            .client_type("public");
        let mut grant_types = Vec::new();
        if !sso.scopes.is_empty() {
            grant_types = vec![grant.to_owned(), GRANT_REFRESH.to_owned()];
            request = request
                .set_scopes(Some(sso.scopes.clone()))
                .set_grant_types(Some(grant_types.clone()));
        }
        if flow == Flow::AuthorizationCode {
            request = request
                .redirect_uris(REDIRECT_REGISTERED)
                .issuer_url(&sso.start_url.value);
        }
        tracing::debug!(sso = %sso.label(), "registering the client");
        let out = self
            .aws
            .call(Service::SsoOidc, "RegisterClient", request.send())
            .map_err(|e| {
                self.aws
                    .error(Service::SsoOidc, "RegisterClient", &sso.label(), e)
            })?;
        let incomplete =
            |what| AwsError::incomplete(Service::SsoOidc, "RegisterClient", &sso.label(), what);
        let client_id = out.client_id.ok_or_else(|| incomplete("clientId"))?;
        let client_secret = out
            .client_secret
            .ok_or_else(|| incomplete("clientSecret"))?;
        let registration_expires = Utc
            .timestamp_opt(out.client_secret_expires_at, 0)
            .single()
            .ok_or_else(|| incomplete("valid clientSecretExpiresAt"))?;
        Ok(Token {
            info: SsoTokenInfo {
                key: sso.key.clone(),
                start_url: sso.start_url.value.clone(),
                region: sso.region.value.clone(),
                scopes: sso.scopes.clone(),
                grant_types,
                cli_cache: held.is_some_and(|h| h.info.cli_cache),
                registration_expires,
                token_expires: None,
                refreshable: false,
            },
            secrets: SsoSecrets {
                client_id,
                client_secret: SecretString::from(client_secret),
                access_token: None,
                refresh_token: None,
            },
        })
    }

    /// The authorization code flow: the browser approves and is redirected to a one-shot
    /// server on 127.0.0.1 with the code; `state` and the PKCE verifier tie it to us.
    fn authorization_code(
        &self,
        sso: &SsoSession,
        token: &Token,
        deadline: Instant,
    ) -> Result<TokenAnswer, SsoError> {
        let label = sso.label();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(SsoError::Listen)?;
        let port = listener.local_addr().map_err(SsoError::Listen)?.port();
        listener.set_nonblocking(true).map_err(SsoError::Listen)?;
        let redirect_uri = format!("http://127.0.0.1:{port}/oauth/callback");
        let verifier = zeroize::Zeroizing::new(random_url_safe(64));
        let challenge = B64URL.encode(Sha256::digest(verifier.as_bytes()));
        let state = random_url_safe(16);
        let url = format!(
            "{}/authorize?{}",
            self.oidc_base(sso),
            form_urlencoded::Serializer::new(String::new())
                .append_pair("response_type", "code")
                .append_pair("client_id", &token.secrets.client_id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("state", &state)
                .append_pair("code_challenge_method", "S256")
                .append_pair("scopes", &sso.scopes.join(" "))
                .append_pair("code_challenge", &challenge)
                .finish()
        );
        self.sign_in
            .show(&SignInPrompt {
                label: &label,
                url: &url,
                user_code: None,
                flow: Flow::AuthorizationCode,
            })
            .map_err(|message| SsoError::Show {
                label: label.clone(),
                message,
            })?;
        let code = self
            .aws
            .block_on(loopback::wait_for_code(listener, &state, deadline))
            .map_err(|end| match end {
                loopback::End::Denied => SsoError::Denied {
                    label: label.clone(),
                },
                loopback::End::TimedOut => SsoError::TimedOut {
                    label: label.clone(),
                    after: self.options.timeout,
                },
                loopback::End::Failed(message) => SsoError::Failed {
                    label: label.clone(),
                    message,
                },
                loopback::End::Io(e) => SsoError::Listen(e),
            })?;
        let request = self
            .create_token(sso, token, GRANT_AUTHORIZATION_CODE)
            .code(code.as_str())
            .redirect_uri(&redirect_uri)
            .code_verifier(verifier.as_str());
        let out = self
            .aws
            .block_on(request.send())
            .map_err(|e| self.aws.error(Service::SsoOidc, "CreateToken", &label, e))?;
        Ok((out.access_token, out.expires_in, out.refresh_token))
    }

    /// The device authorization flow: the person approves a code on any device; we poll.
    fn device_code(
        &self,
        sso: &SsoSession,
        token: &Token,
        deadline: Instant,
    ) -> Result<TokenAnswer, SsoError> {
        let label = sso.label();
        let oidc = self.aws.sso_oidc(&sso.region.value);
        let request = oidc
            .start_device_authorization()
            .client_id(&token.secrets.client_id)
            .client_secret(token.secrets.client_secret.expose_secret())
            .start_url(&sso.start_url.value);
        let device = self.aws.block_on(request.send()).map_err(|e| {
            self.aws
                .error(Service::SsoOidc, "StartDeviceAuthorization", &label, e)
        })?;
        let incomplete =
            |what| AwsError::incomplete(Service::SsoOidc, "StartDeviceAuthorization", &label, what);
        let device_code =
            zeroize::Zeroizing::new(device.device_code.ok_or_else(|| incomplete("deviceCode"))?);
        let url = device
            .verification_uri_complete
            .or(device.verification_uri)
            .ok_or_else(|| incomplete("verificationUri"))?;
        self.sign_in
            .show(&SignInPrompt {
                label: &label,
                url: &url,
                user_code: device.user_code.as_deref(),
                flow: Flow::DeviceCode,
            })
            .map_err(|message| SsoError::Show {
                label: label.clone(),
                message,
            })?;
        let expires = Instant::now() + Duration::from_secs(device.expires_in.max(1) as u64);
        let mut interval = Duration::from_secs(device.interval.clamp(1, 60) as u64);
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(SsoError::TimedOut {
                    label,
                    after: self.options.timeout,
                });
            }
            if now >= expires {
                return Err(SsoError::Expired { label });
            }
            std::thread::sleep(interval.min(deadline - now));
            let request = self
                .create_token(sso, token, GRANT_DEVICE_CODE)
                .device_code(device_code.as_str());
            match self.aws.block_on(request.send()) {
                Ok(out) => return Ok((out.access_token, out.expires_in, out.refresh_token)),
                Err(e) => {
                    let e = self.aws.error(Service::SsoOidc, "CreateToken", &label, e);
                    match e.code() {
                        Some("AuthorizationPendingException") => {}
                        // RFC 8628 §3.5: five seconds more on every slow_down.
                        Some("SlowDownException") => interval += Duration::from_secs(5),
                        Some("ExpiredTokenException") => return Err(SsoError::Expired { label }),
                        Some("AccessDeniedException") => return Err(SsoError::Denied { label }),
                        _ => return Err(e.into()),
                    }
                }
            }
        }
    }

    /// A CreateToken request of the registered client for `grant`.
    fn create_token(
        &self,
        sso: &SsoSession,
        token: &Token,
        grant: &str,
    ) -> aws_sdk_ssooidc::operation::create_token::builders::CreateTokenFluentBuilder {
        self.aws
            .sso_oidc(&sso.region.value)
            .create_token()
            .client_id(&token.secrets.client_id)
            .client_secret(token.secrets.client_secret.expose_secret())
            .grant_type(grant)
    }

    /// Stores the token in the vault, and in the AWS CLI's cache when the user chose that.
    fn keep(&self, sso: &SsoSession, token: &Token) -> Result<(), SsoError> {
        self.vault.store_sso_token(token)?;
        if token.info.cli_cache
            && let Some(path) = self.cli_cache_path(sso)
        {
            write_cli_cache(&path, sso, token)?;
        }
        Ok(())
    }

    fn get_role_credentials(
        &self,
        sso: &SsoSession,
        token: &SecretString,
        account_id: &str,
        role_name: &str,
        profile: &str,
    ) -> Result<Credentials, SsoError> {
        let portal = self.aws.sso_portal(&sso.region.value);
        let request = portal
            .get_role_credentials()
            .access_token(token.expose_secret())
            .account_id(account_id)
            .role_name(role_name);
        let out = self
            .aws
            .call(Service::Sso, "GetRoleCredentials", request.send())
            .map_err(|e| {
                self.aws
                    .error(Service::Sso, "GetRoleCredentials", profile, e)
            })?;
        let incomplete =
            |what| AwsError::incomplete(Service::Sso, "GetRoleCredentials", profile, what);
        let c = out
            .role_credentials
            .ok_or_else(|| incomplete("roleCredentials"))?;
        Ok(Credentials {
            access_key_id: SecretString::from(
                c.access_key_id.ok_or_else(|| incomplete("accessKeyId"))?,
            ),
            secret_access_key: SecretString::from(
                c.secret_access_key
                    .ok_or_else(|| incomplete("secretAccessKey"))?,
            ),
            session_token: Some(SecretString::from(
                c.session_token.ok_or_else(|| incomplete("sessionToken"))?,
            )),
            expiration: Some(
                Utc.timestamp_millis_opt(c.expiration)
                    .single()
                    .ok_or_else(|| incomplete("valid expiration"))?,
            ),
        })
    }

    /// Where the browser goes for the authorization code flow: the OIDC endpoint override
    /// when there is one (as the SDK resolves it), else the region's OIDC host.
    fn oidc_base(&self, sso: &SsoSession) -> String {
        match &self.aws.settings().endpoints.sso_oidc {
            Some(e) => e.value.trim_end_matches('/').to_owned(),
            None => format!("https://oidc.{}.amazonaws.com", sso.region.value),
        }
    }

    fn cli_cache_path(&self, sso: &SsoSession) -> Option<PathBuf> {
        self.options
            .cli_cache_dir
            .as_ref()
            .map(|dir| dir.join(cli_cache_file_name(&sso.key)))
    }
}

/// An account the sign-in reaches, with its roles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoAccount {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
}

/// access token, lifetime in seconds, refresh token: what CreateToken answers.
type TokenAnswer = (Option<String>, i32, Option<String>);

fn apply_token(
    token: &mut Token,
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

fn forget_tokens(token: &mut Token) {
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

fn random_url_safe(bytes: usize) -> String {
    let mut buf = zeroize::Zeroizing::new(vec![0u8; bytes]);
    getrandom::fill(&mut buf).expect("the OS random source works");
    B64URL.encode(&*buf)
}

// ----- the AWS CLI's token cache -----

/// The AWS CLI's file name for a sign-in: the SHA-1 of the session name (or of the start URL
/// for the legacy form), in hex.
pub fn cli_cache_file_name(key: &str) -> String {
    use sha1::Digest as _;
    format!("{}.json", hex::encode(sha1::Sha1::digest(key.as_bytes())))
}

struct CliCached {
    start_url: String,
    access_token: SecretString,
    expires_at: DateTime<Utc>,
    refresh_token: Option<SecretString>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    registration_expires_at: Option<DateTime<Utc>>,
}

/// The CLI writes `2026-12-02T10:00:00Z`; older releases wrote `...UTC`.
fn parse_cli_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(text.trim_end_matches("UTC"), "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|t| t.and_utc())
        })
}

fn read_cli_cache(path: &Path) -> Option<CliCached> {
    let bytes = zeroize::Zeroizing::new(std::fs::read(path).ok()?);
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let text = |name: &str| value.get(name).and_then(|v| v.as_str());
    Some(CliCached {
        start_url: text("startUrl")?.to_owned(),
        access_token: SecretString::from(text("accessToken")?),
        expires_at: parse_cli_time(text("expiresAt")?)?,
        refresh_token: text("refreshToken").map(SecretString::from),
        client_id: text("clientId").map(str::to_owned),
        client_secret: text("clientSecret").map(SecretString::from),
        registration_expires_at: text("registrationExpiresAt").and_then(parse_cli_time),
    })
}

fn write_cli_cache(path: &Path, sso: &SsoSession, token: &Token) -> Result<(), SsoError> {
    let failed = |message: String| SsoError::CliCache {
        path: path.to_owned(),
        message,
    };
    let (Some(access), Some(expires)) = (&token.secrets.access_token, token.info.token_expires)
    else {
        return Ok(());
    };
    let stamp = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut value = serde_json::json!({
        "startUrl": sso.start_url.value,
        "region": sso.region.value,
        "accessToken": access.expose_secret(),
        "expiresAt": stamp(expires),
    });
    if sso.refreshable() {
        let map = value.as_object_mut().expect("an object");
        map.insert("clientId".into(), token.secrets.client_id.clone().into());
        map.insert(
            "clientSecret".into(),
            token.secrets.client_secret.expose_secret().into(),
        );
        map.insert(
            "registrationExpiresAt".into(),
            stamp(token.info.registration_expires).into(),
        );
        if let Some(refresh) = &token.secrets.refresh_token {
            map.insert("refreshToken".into(), refresh.expose_secret().into());
        }
    }
    let bytes = zeroize::Zeroizing::new(serde_json::to_vec(&value).expect("JSON serialises"));
    drop(value);
    if let Some(dir) = path.parent() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|e| failed(e.to_string()))?;
    }
    let existed = path.exists();
    vault_store::replace_file(path, &bytes).map_err(|e| failed(e.to_string()))?;
    // A new file holds tokens: the user's alone, as the CLI makes it.
    #[cfg(unix)]
    if !existed {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| failed(e.to_string()))?;
    }
    #[cfg(not(unix))]
    let _ = existed;
    Ok(())
}

/// The one-shot HTTP server on 127.0.0.1 that receives the browser's redirect.
mod loopback {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::{Request, Response, StatusCode};
    use hyper_util::rt::TokioIo;
    use tokio::sync::mpsc;

    #[derive(Debug)]
    pub enum End {
        Denied,
        TimedOut,
        Failed(String),
        Io(std::io::Error),
    }

    const DONE_PAGE: &str = "<!doctype html><title>vault</title><p>Signed in. You can close this tab and return to the terminal.</p>";
    const DENIED_PAGE: &str =
        "<!doctype html><title>vault</title><p>The sign-in was not approved.</p>";

    /// Serves `GET /oauth/callback` until one carries our `state` (a request with another
    /// state is answered 400 and ignored: it is not ours), or the deadline.
    pub async fn wait_for_code(
        listener: std::net::TcpListener,
        state: &str,
        deadline: Instant,
    ) -> Result<zeroize::Zeroizing<String>, End> {
        let listener = tokio::net::TcpListener::from_std(listener).map_err(End::Io)?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Result<zeroize::Zeroizing<String>, End>>();
        let state: Arc<str> = Arc::from(state);
        let sent = Arc::new(Mutex::new(false));
        let sleep = tokio::time::sleep_until(deadline.into());
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return Err(End::TimedOut),
                Some(result) = rx.recv() => return result,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let (tx, state, sent) = (tx.clone(), state.clone(), sent.clone());
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                            let answer = answer(&request, &state, &tx, &sent);
                            async move { Ok::<_, Infallible>(answer) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        }
    }

    fn answer(
        request: &Request<hyper::body::Incoming>,
        state: &str,
        tx: &mpsc::UnboundedSender<Result<zeroize::Zeroizing<String>, End>>,
        sent: &Mutex<bool>,
    ) -> Response<Full<Bytes>> {
        let page = |status: StatusCode, body: &'static str| {
            let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
            *response.status_mut() = status;
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        };
        if request.method() != hyper::Method::GET || request.uri().path() != "/oauth/callback" {
            return page(StatusCode::NOT_FOUND, "<!doctype html><p>Not found.</p>");
        }
        let query = request.uri().query().unwrap_or("");
        let (mut code, mut got_state, mut error, mut description) = (None, None, None, None);
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*name {
                "code" => code = Some(zeroize::Zeroizing::new(value.into_owned())),
                "state" => got_state = Some(value.into_owned()),
                "error" => error = Some(value.into_owned()),
                "error_description" => description = Some(value.into_owned()),
                _ => {}
            }
        }
        if got_state.as_deref() != Some(state) {
            return page(
                StatusCode::BAD_REQUEST,
                "<!doctype html><p>This sign-in link is not the one vault is waiting for.</p>",
            );
        }
        let mut done = sent.lock().unwrap_or_else(|e| e.into_inner());
        if *done {
            return page(StatusCode::OK, DONE_PAGE);
        }
        *done = true;
        match (code, error) {
            (Some(code), None) => {
                let _ = tx.send(Ok(code));
                page(StatusCode::OK, DONE_PAGE)
            }
            (_, Some(error)) if error == "access_denied" => {
                let _ = tx.send(Err(End::Denied));
                page(StatusCode::OK, DENIED_PAGE)
            }
            (_, error) => {
                let _ = tx.send(Err(End::Failed(match (error, description) {
                    (Some(e), Some(d)) => format!("{e}: {d}"),
                    (Some(e), None) => e,
                    _ => "the redirect carried no code".to_owned(),
                })));
                page(StatusCode::BAD_REQUEST, DENIED_PAGE)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_cache_names_match_the_aws_cli() {
        // sha1("my-sso") as the CLI computes it for `sso_session = my-sso`.
        assert_eq!(
            cli_cache_file_name("my-sso"),
            format!("{}.json", {
                use sha1::Digest as _;
                hex::encode(sha1::Sha1::digest(b"my-sso"))
            })
        );
        assert_eq!(cli_cache_file_name("my-sso").len(), 45);
    }

    #[test]
    fn cli_times_in_both_spellings() {
        let want: DateTime<Utc> = "2026-12-02T10:00:00Z".parse().unwrap();
        assert_eq!(parse_cli_time("2026-12-02T10:00:00Z"), Some(want));
        assert_eq!(parse_cli_time("2026-12-02T10:00:00UTC"), Some(want));
        assert_eq!(parse_cli_time("soon"), None);
    }

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
}
