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

/// The operation the login provider calls when it refreshes.
const CREATE_TOKEN: &str = "CreateOAuth2Token";
/// How long a lock may take before [`Waiting`] hears of it.
const WAIT_NOTICE_AFTER: Duration = Duration::from_secs(1);
/// How long past one AWS call's bound a waiter still waits for another process's refresh.
const WAIT_BEYOND_CALL: Duration = Duration::from_secs(60);
/// The most of the cache file read for `--explain` (the AWS CLI's is a few kilobytes).
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
    },
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
    use std::io::Read;
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
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_CACHE_FILE)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
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

/// Console sessions' credentials for one command.
pub struct Console<'a> {
    vault: &'a Vault,
    aws: &'a Aws,
    /// The AWS CLI's login cache directory; `None` when there is no home to find it in.
    cache_dir: Option<&'a Path>,
    waiting: Option<&'a dyn Waiting>,
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
        }
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
    pub fn credentials(
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
        let _lock = self.lock(&path, &arn)?;
        // Read again under the lock: the provider reads the file itself, after whoever held
        // the lock before us wrote it.
        if !path.exists() {
            return Err(LoginError::NoCache {
                profile: profile.to_owned(),
                arn,
                path,
            });
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
    fn lock(&self, path: &Path, arn: &str) -> Result<Option<vault_store::FileLock>, LoginError> {
        let limit = self.aws.settings().timeouts.operation + WAIT_BEYOND_CALL;
        let got =
            self.vault
                .named_lock_within(&lock_name(path), WAIT_NOTICE_AFTER, limit, &mut || {
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
        use aws_sdk_signin::error::ProvideErrorMetadata;
        use aws_sdk_signin::operation::create_o_auth2_token::CreateOAuth2TokenError;
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if let Some(refused) = s.downcast_ref::<CreateOAuth2TokenError>() {
                let reason = match refused {
                    CreateOAuth2TokenError::AccessDeniedException(a) => {
                        Some(a.error.as_str().to_owned())
                    }
                    CreateOAuth2TokenError::ValidationException(v) => {
                        Some(v.error.as_str().to_owned())
                    }
                    _ => None,
                };
                return match refused.code() {
                    Some(code) => LoginError::Refused {
                        profile: profile.to_owned(),
                        arn: arn.to_owned(),
                        code: code.to_owned(),
                        reason,
                        message: refused.message().unwrap_or("no message").to_owned(),
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
