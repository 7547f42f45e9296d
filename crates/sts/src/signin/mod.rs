//! Console sessions as a source: a profile with `login_session`, which `aws login` (AWS CLI
//! 2.32+) writes beside a token cache, `~/.aws/login/cache/<sha256 of the trimmed
//! login_session>.json` (or `AWS_LOGIN_CACHE_DIRECTORY`), holding 15-minute credentials, a
//! refresh token and the P-256 key of its DPoP proofs.
//!
//! The field's own code does the work: aws-config's login provider (its `credentials-login`
//! feature, aws-sdk-signin underneath) reads that file, refreshes the credentials with
//! CreateOAuth2Token and a DPoP proof when they end within 5 minutes, and writes the new ones
//! (and the rotated refresh token) back, so the AWS CLI and every SDK keep working on the same
//! file. This module only adds what one process cannot know: other processes. Every read goes
//! through the provider under `locks/login-<digest>.lock` in the vault, so the provider
//! reads the file afresh under the lock, and of 32 processes that find the credentials ending
//! one refreshes and 31 read its result (a refresh token works once: a second refresh with it
//! would be refused). That lock is taken inside the step locks, as the SSO token lock is.
//!
//! Besides, [`summary`] reads the file's non-secret fields for `--explain` (when the
//! credentials end, whether a refresh token is there), and nothing of it is ever printed.
//!
//! `vault signin` (`flow`) does the browser sign-in itself and keeps the session encrypted in
//! the vault instead (`held`): such a session is used before the AWS CLI's file, refreshed
//! with vault's own DPoP proofs (`dpop`), and written to that file only when the user asks
//! (`--cli-cache`, `cli_file`).

mod cli_file;
mod dpop;
mod flow;
mod held;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use vault_store::{Credentials, Vault};
use zeroize::Zeroizing;

use crate::aws::{Aws, Service, Waiting};
use crate::error_chain;
use crate::profile::LoginSession;

pub use dpop::DpopKey;
pub use flow::{CROSS_DEVICE, PastedCode, SAME_DEVICE, SignInError, SignInOptions, sign_in};
pub use held::REFRESH_AHEAD;

/// The operation the login provider calls when it refreshes.
const CREATE_TOKEN: &str = "CreateOAuth2Token";
/// How long a lock may take before [`Waiting`] hears of it.
const WAIT_NOTICE_AFTER: Duration = Duration::from_secs(1);
/// How long past one AWS call's bound a waiter still waits for another process's refresh.
const WAIT_BEYOND_CALL: Duration = Duration::from_secs(60);
/// The most of a cache file read (the AWS CLI's is a few kilobytes).
const MAX_CACHE_FILE: u64 = 1 << 20;

/// A console session's credentials could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// No cache file: `aws login` never ran for this session here, or its file was removed.
    #[error(
        "profile {profile:?} uses the console session of {arn}, and the AWS CLI's cache has none ({})",
        path.display()
    )]
    NoCache {
        profile: String,
        arn: String,
        path: PathBuf,
    },
    /// No home directory and no `AWS_LOGIN_CACHE_DIRECTORY`: nowhere to look.
    #[error(
        "profile {profile:?} uses the console session of {arn}, but there is no home directory to find the AWS CLI's cache in"
    )]
    NoCacheDir { profile: String, arn: String },
    /// AWS Sign-In refused the refresh: the session ended (12 hours at most), the password
    /// changed, or the refresh token was used already.
    #[error(
        "AWS Sign-In refused to refresh the console session of {arn} for profile {profile:?}: {code}{}: {message}",
        reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
    )]
    Refused {
        profile: String,
        arn: String,
        /// The service's error shape (`AccessDeniedException`, `ValidationException`, ...).
        code: String,
        /// Its `error` field (`TOKEN_EXPIRED`, ...), when it sent one.
        reason: Option<String>,
        message: String,
        /// The session is the one `vault signin` keeps in the vault (else the AWS CLI's).
        in_vault: bool,
    },
    /// Another process's refresh of the same session was refused moments ago.
    #[error("the console session of {arn} could not be refreshed: {message}")]
    FailedElsewhere { arn: String, message: String },
    /// The vault's copy of the session cannot be used (its key, or the service's answer).
    #[error("the console session of {arn} kept in the vault cannot be used: {message}")]
    HeldDamaged { arn: String, message: String },
    /// The session ended, and signing in again did not complete.
    #[error("the console session of {arn} ended, and signing in again failed: {source}")]
    SignIn {
        arn: String,
        #[source]
        source: SignInError,
    },
    /// Signing in again was done as another identity than the session's.
    #[error(
        "the console session of {expected} ended, and the sign-in was as {got}; nothing was kept"
    )]
    OtherIdentity { expected: String, got: String },
    /// `--cli-cache`: the AWS CLI's copy could not be written.
    #[error("cannot write the AWS CLI's copy of the console session ({}): {message}", path.display())]
    CliFile { path: PathBuf, message: String },
    /// No answer from AWS Sign-In.
    #[error(
        "cannot reach AWS Sign-In at {endpoint} to refresh the console session of {arn}: {message}"
    )]
    Unreachable {
        arn: String,
        endpoint: String,
        message: String,
    },
    /// Anything else the provider said (a cache file it cannot read or parse).
    #[error("no credentials from the console session of {arn} for profile {profile:?}: {message}")]
    Failed {
        profile: String,
        arn: String,
        path: PathBuf,
        message: String,
    },
    /// Another vault process held the session's lock for longer than a refresh can take.
    #[error(
        "another vault process has been refreshing the console session of {arn} for over {} s",
        waited.as_secs()
    )]
    Busy { arn: String, waited: Duration },
    #[error(transparent)]
    Store(#[from] vault_store::Error),
}

/// Where the AWS CLI keeps the cache of `login_session` under `cache_dir`: the SHA-256 of the
/// trimmed value, in hex, `.json` (as the AWS CLI and aws-config name it).
pub fn cache_path(cache_dir: &Path, login_session: &str) -> PathBuf {
    let digest = Sha256::digest(login_session.trim().as_bytes());
    cache_dir.join(format!("{}.json", hex::encode(digest)))
}

/// The name of a console session's lock in the vault.
fn lock_name(path: &Path) -> String {
    let digest = Sha256::digest(path.to_string_lossy().as_bytes());
    format!("login-{}", hex::encode(&digest[..12]))
}

/// What `--explain` says about a console session's cache: read, never refreshed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheSummary {
    pub path: PathBuf,
    /// When the cached credentials end, if the file says.
    pub expires: Option<DateTime<Utc>>,
    /// A refresh token is there, so they can be refreshed (until the session's end, 12 h
    /// after `aws login` at most; the file does not say when that is).
    pub refreshable: bool,
}

/// The non-secret fields of the cache file at `path`. `Ok(None)`: there is no such file.
pub fn summary(path: &Path) -> Result<Option<CacheSummary>, String> {
    #[derive(serde::Deserialize)]
    struct AccessToken {
        #[serde(rename = "expiresAt")]
        expires_at: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Cached {
        #[serde(rename = "accessToken")]
        access_token: Option<AccessToken>,
        #[serde(rename = "refreshToken")]
        refresh_token: Option<serde::de::IgnoredAny>,
    }
    let Some(bytes) = read_cache_file(path)? else {
        return Ok(None);
    };
    // Only the expiry and whether a refresh token is there; the secrets are skipped unread.
    let cached: Cached = serde_json::from_slice(&bytes)
        .map_err(|e| format!("not the AWS CLI's JSON (line {})", e.line()))?;
    let expires = cached
        .access_token
        .and_then(|t| t.expires_at)
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc));
    Ok(Some(CacheSummary {
        path: path.to_owned(),
        expires,
        refreshable: cached.refresh_token.is_some(),
    }))
}

/// The AWS CLI's cache file at `path`, whole: only a regular file of at most 1 MiB (a FIFO
/// or a device put there cannot hang or flood us). `Ok(None)`: there is none.
fn read_cache_file(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
    vault_store::read_regular(path, MAX_CACHE_FILE)
        .map(|bytes| bytes.map(Zeroizing::new))
        .map_err(|e| e.to_string())
}

/// Console sessions' credentials for one command.
pub struct Console<'a> {
    vault: &'a Vault,
    aws: &'a Aws,
    /// The AWS CLI's login cache directory; `None` when there is no home to find it in.
    cache_dir: Option<&'a Path>,
    waiting: Option<&'a dyn Waiting>,
    /// How to sign in again when a session the vault keeps has ended; without it, commands
    /// say `vault signin`.
    reauth: Option<Reauth<'a>>,
}

/// How a command signs in again, once for every process waiting, when the refresh of a
/// session the vault keeps is refused (its 12 hours are over): the page, the code typed in
/// the flow on another device, and how long the person has.
#[derive(Clone, Copy)]
pub struct Reauth<'a> {
    pub show: &'a dyn crate::sso::SignIn,
    pub paste: &'a dyn PastedCode,
    pub remote: bool,
    pub timeout: Duration,
}

impl std::fmt::Debug for Reauth<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reauth")
            .field("remote", &self.remote)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Console<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

/// A console session's credentials, and the account they belong to.
#[derive(Debug)]
pub struct ConsoleCredentials {
    pub credentials: Credentials,
    pub account_id: Option<String>,
}

impl<'a> Console<'a> {
    pub fn new(vault: &'a Vault, aws: &'a Aws, cache_dir: Option<&'a Path>) -> Console<'a> {
        Console {
            vault,
            aws,
            cache_dir,
            waiting: None,
            reauth: None,
        }
    }

    /// Sign in again through `reauth` when a kept session has ended.
    pub fn signing_in(mut self, reauth: Reauth<'a>) -> Self {
        self.reauth = Some(reauth);
        self
    }

    /// Tell `waiting` when another process's refresh keeps us waiting.
    pub fn telling(mut self, waiting: &'a dyn Waiting) -> Self {
        self.waiting = Some(waiting);
        self
    }

    /// Where `login`'s cache is, when there is a cache directory.
    pub fn cache_path(&self, login: &LoginSession) -> Option<PathBuf> {
        self.cache_dir.map(|dir| cache_path(dir, &login.arn.value))
    }

    /// The session's credentials: the cached ones, or new ones if they end within 5
    /// minutes, from aws-config's login provider under the session's lock.
    /// The session `vault signin` keeps in the vault is used first, else the AWS CLI's.
    pub fn credentials(
        &self,
        login: &LoginSession,
        profile: &str,
    ) -> Result<ConsoleCredentials, LoginError> {
        if let Some(held) = self.held(login)? {
            return self.held_credentials(login, profile, held);
        }
        self.cli_cache_credentials(login, profile)
    }

    /// What the vault knows of `login`'s session without decrypting it, when it keeps one.
    pub fn held_info(
        &self,
        login: &LoginSession,
    ) -> Result<Option<vault_store::ConsoleSignInInfo>, LoginError> {
        Ok(self.vault.console_sign_in_info(login.arn.value.trim())?)
    }

    /// The vault's copy of `login`'s session, decrypted, when it keeps one.
    fn held(&self, login: &LoginSession) -> Result<Option<vault_store::ConsoleSignIn>, LoginError> {
        let key = login.arn.value.trim();
        if self.vault.console_sign_in_info(key)?.is_none() {
            return Ok(None);
        }
        Ok(self.vault.console_sign_in(key)?)
    }

    /// Stores a new sign-in (and, when asked, the AWS CLI's copy), under the session's lock
    /// so no refresh of an older sign-in interleaves.
    pub fn keep(&self, signed_in: &vault_store::ConsoleSignIn) -> Result<(), LoginError> {
        let key = &signed_in.info.key;
        let name = held::lock_name(key);
        let _lock = self.lock(&name, key)?;
        self.keep_locked(signed_in)?;
        self.vault.clear_failure(&name)?;
        Ok(())
    }

    /// Stores a sign-in in the vault, then the AWS CLI's copy when it is kept. The caller
    /// holds the session's lock.
    fn keep_locked(&self, signed_in: &vault_store::ConsoleSignIn) -> Result<(), LoginError> {
        self.vault.store_console_sign_in(signed_in)?;
        if signed_in.info.cli_cache
            && let Some(dir) = self.cache_dir
        {
            let path = cache_path(dir, &signed_in.info.key);
            cli_file::write(&path, signed_in)
                .map_err(|message| LoginError::CliFile { path, message })?;
        }
        Ok(())
    }

    /// `vault signout`: forgets the vault's copy of the session of `arn` and removes the
    /// AWS CLI's copy when vault wrote it (`--cli-cache`). Returns what was there: the
    /// vault's copy, and the file removed.
    pub fn sign_out(&self, arn: &str) -> Result<(bool, Option<PathBuf>), LoginError> {
        let key = arn.trim();
        let name = held::lock_name(key);
        let _lock = self.lock(&name, key)?;
        let info = self.vault.console_sign_in_info(key)?;
        let mut removed = None;
        if let Some(info) = &info
            && info.cli_cache
            && let Some(dir) = self.cache_dir
        {
            let path = cache_path(dir, key);
            match std::fs::remove_file(&path) {
                Ok(()) => removed = Some(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(LoginError::CliFile {
                        path,
                        message: e.to_string(),
                    });
                }
            }
        }
        let had = self.vault.remove_console_sign_in(key)?;
        Ok((had, removed))
    }

    /// The AWS CLI's cache file through aws-config's provider.
    fn cli_cache_credentials(
        &self,
        login: &LoginSession,
        profile: &str,
    ) -> Result<ConsoleCredentials, LoginError> {
        let arn = login.arn.value.clone();
        let path = self
            .cache_path(login)
            .ok_or_else(|| LoginError::NoCacheDir {
                profile: profile.to_owned(),
                arn: arn.clone(),
            })?;
        let _lock = self.lock(&lock_name(&path), &arn)?;
        // Read again under the lock: the provider reads the file itself, after whoever held
        // the lock before us wrote it.
        match std::fs::metadata(&path) {
            Err(_) => {
                return Err(LoginError::NoCache {
                    profile: profile.to_owned(),
                    arn,
                    path,
                });
            }
            // The provider would open a FIFO and wait for a writer forever.
            Ok(meta) if !meta.is_file() => {
                return Err(LoginError::Failed {
                    profile: profile.to_owned(),
                    arn,
                    path,
                    message: "it is not a regular file".to_owned(),
                });
            }
            Ok(_) => {}
        }
        let provider = aws_config::login::LoginCredentialsProvider::builder(arn.clone())
            .configure(
                &self
                    .aws
                    .provider_config(login.region.as_ref().map(|r| r.value.as_str())),
            )
            .build();
        let provided = self.aws.call(
            Service::Signin,
            CREATE_TOKEN,
            aws_credential_types::provider::ProvideCredentials::provide_credentials(&provider),
        );
        let c = provided.map_err(|e| self.error(e, profile, &arn, &path))?;
        Ok(ConsoleCredentials {
            credentials: Credentials {
                access_key_id: SecretString::from(c.access_key_id()),
                secret_access_key: SecretString::from(c.secret_access_key()),
                session_token: c.session_token().map(SecretString::from),
                expiration: c.expiry().map(DateTime::<Utc>::from),
            },
            account_id: c.account_id().map(|a| a.as_str().to_owned()),
        })
    }

    /// The session's lock, waited for at most as long as one refresh may take (and a
    /// minute). A lock that cannot be made (a read-only vault directory) only costs single
    /// flight.
    fn lock(&self, name: &str, arn: &str) -> Result<Option<vault_store::FileLock>, LoginError> {
        // A holder may be waiting for the person to sign in again.
        let longest = match &self.reauth {
            Some(reauth) => reauth.timeout.max(self.aws.settings().timeouts.operation),
            None => self.aws.settings().timeouts.operation,
        };
        let limit = longest + WAIT_BEYOND_CALL;
        let got = self
            .vault
            .named_lock_within(name, WAIT_NOTICE_AFTER, limit, &mut || {
                if let Some(waiting) = self.waiting {
                    waiting.waiting_for(&format!(
                        "another vault process refreshing the console session of {arn}"
                    ));
                }
            });
        match got {
            Ok(Some(lock)) => Ok(Some(lock)),
            Ok(None) => Err(LoginError::Busy {
                arn: arn.to_owned(),
                waited: limit,
            }),
            Err(vault_store::Error::Io { path, source }) => {
                tracing::debug!(
                    "cannot lock {} ({source}); other processes may refresh the same console session",
                    path.display()
                );
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The provider's error as one of ours: AWS Sign-In's refusal (its error code, read from
    /// the SDK's error in the chain), no answer, or anything else.
    fn error(
        &self,
        e: aws_credential_types::provider::error::CredentialsError,
        profile: &str,
        arn: &str,
        path: &Path,
    ) -> LoginError {
        use aws_sdk_signin::operation::create_o_auth2_token::CreateOAuth2TokenError;
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if let Some(refused) = s.downcast_ref::<CreateOAuth2TokenError>() {
                return match flow::refusal(refused) {
                    Some((code, reason, message)) => LoginError::Refused {
                        profile: profile.to_owned(),
                        arn: arn.to_owned(),
                        code,
                        reason,
                        message,
                        in_vault: false,
                    },
                    // Errors without a code are the ones no answer carried: the connection.
                    None => LoginError::Unreachable {
                        arn: arn.to_owned(),
                        endpoint: self.aws.settings().describe_endpoint(Service::Signin),
                        message: error_chain(&e),
                    },
                };
            }
            source = s.source();
        }
        LoginError::Failed {
            profile: profile.to_owned(),
            arn: arn.to_owned(),
            path: path.to_owned(),
            message: error_chain(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file name aws-config's own tests expect for this ARN.
    #[test]
    fn the_cache_is_named_as_the_aws_cli_names_it() {
        let path = cache_path(
            Path::new("/home/.aws/login/cache"),
            " arn:aws:iam::0123456789012:user/Admin\n",
        );
        assert_eq!(
            path,
            Path::new(
                "/home/.aws/login/cache/36db1d138ff460920374e4c3d8e01f53f9f73537e89c88d639f68393df0e2726.json"
            )
        );
        assert!(lock_name(&path).starts_with("login-"));
        assert_eq!(lock_name(&path).len(), "login-".len() + 24);
    }

    #[test]
    fn summaries_read_the_expiry_and_nothing_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        assert_eq!(summary(&path), Ok(None));
        std::fs::write(
            &path,
            r#"{"accessToken":{"accessKeyId":"a","secretAccessKey":"b","sessionToken":"c","accountId":"123456789012","expiresAt":"2030-01-02T03:04:05Z"},"tokenType":"aws_sigv4","refreshToken":"r","clientId":"arn:aws:signin:::devtools/same-device","dpopKey":"k"}"#,
        )
        .unwrap();
        let s = summary(&path).unwrap().unwrap();
        assert_eq!(
            s.expires,
            Some(
                DateTime::parse_from_rfc3339("2030-01-02T03:04:05Z")
                    .unwrap()
                    .into()
            )
        );
        assert!(s.refreshable);
        std::fs::write(&path, r#"{"accessToken":{}}"#).unwrap();
        let s = summary(&path).unwrap().unwrap();
        assert_eq!((s.expires, s.refreshable), (None, false));
        std::fs::write(&path, "not json").unwrap();
        assert!(summary(&path).unwrap_err().contains("line 1"));
    }
}
