//! Console sessions `vault signin` keeps in the vault: their credentials while fresh, else a
//! refresh (CreateOAuth2Token, `refresh_token` grant, a DPoP proof with the held key) whose
//! rotated refresh token is stored before anything else uses it.
//!
//! One refresh serves every process: it runs under `locks/login-held-<digest>.lock`, and
//! whoever gets the lock reads the vault again first. A refresh refused (the 12 hours are
//! over, the password changed) is noted beside the lock, so the processes that waited for it
//! fail with its reason instead of each spending a call on a token already refused; a
//! refresh that got no answer is not (the next command tries again). A command given a way
//! to show a sign-in page ([`super::Reauth`]) signs in again instead, under the same lock, so
//! of 32 commands that find the session over one opens the page and 31 use its result.
//!
//! With `--cli-cache` the AWS CLI's file holds the same session, and the AWS CLI or an SDK
//! may refresh from it, rotating the token vault holds. A refresh refused is then retried
//! once with the file's token when it differs (and its credentials taken as they are when
//! still fresh), and every refresh writes the file too, while it is there (`aws logout`
//! removing it ends the sharing).

use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use vault_store::{ConsoleSignIn, Credentials};

use super::dpop::DpopKey;
use super::flow::{Exchange, exchange};
use super::{Console, ConsoleCredentials, LoginError, cli_file};
use crate::profile::LoginSession;

/// Credentials ending sooner than this are refreshed first (as aws-config does).
pub const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);
/// A refusal also fails the commands that asked up to this long before it was noted.
const FAILURE_COVERS_BEFORE: Duration = Duration::from_secs(5);

/// The name of a held session's lock in the vault.
pub(super) fn lock_name(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("login-held-{}", hex::encode(&digest[..12]))
}

fn fresh(held: &ConsoleSignIn) -> bool {
    held.info.expires - Utc::now() > chrono::Duration::from_std(REFRESH_AHEAD).unwrap_or_default()
}

/// AWS Sign-In refused the refresh token itself (`AccessDeniedException`: expired, revoked,
/// used already, the password changed): only a new sign-in helps. Its other refusals
/// (throttling, its own errors) do not end the session.
fn ends_session(e: &LoginError) -> bool {
    matches!(e, LoginError::Refused { code, .. } if code == "AccessDeniedException")
}

/// Credentials another process just refreshed are used when they last this long yet.
const USABLE_FOR: chrono::Duration = chrono::Duration::seconds(30);

fn usable_now(held: &ConsoleSignIn) -> bool {
    held.info.expires - Utc::now() > USABLE_FOR
}

fn credentials_of(held: &ConsoleSignIn) -> ConsoleCredentials {
    let s = &held.secrets;
    ConsoleCredentials {
        credentials: Credentials {
            access_key_id: s.access_key_id.clone(),
            secret_access_key: s.secret_access_key.clone(),
            session_token: Some(s.session_token.clone()),
            expiration: Some(held.info.expires),
        },
        account_id: Some(held.info.account_id.clone()),
    }
}

impl Console<'_> {
    /// The credentials of a session the vault holds: fresh ones as they are, else refreshed
    /// under the session's lock.
    pub(super) fn held_credentials(
        &self,
        login: &LoginSession,
        profile: &str,
        held: ConsoleSignIn,
    ) -> Result<ConsoleCredentials, LoginError> {
        if fresh(&held) {
            return Ok(credentials_of(&held));
        }
        let key = held.info.key.clone();
        let seen_expiry = held.info.expires;
        let asked = SystemTime::now();
        let name = lock_name(&key);
        let _lock = self.lock(&name, &key)?;
        let Some(mut held) = self.vault.console_sign_in(&key)? else {
            // Signed out meanwhile: what is left is the AWS CLI's cache, if any.
            return self.cli_cache_credentials(login, profile);
        };
        // Another process refreshed while we waited: its credentials serve this command even
        // when the service hands out short ones (inside the refresh window), or every waiter
        // would refresh again in turn.
        if fresh(&held) || (held.info.expires != seen_expiry && usable_now(&held)) {
            tracing::debug!(session = %key, "another process refreshed the console session");
            return Ok(credentials_of(&held));
        }
        let since = asked.checked_sub(FAILURE_COVERS_BEFORE).unwrap_or(asked);
        if let Some(message) = self.vault.failure_since(&name, since)? {
            return Err(LoginError::FailedElsewhere { arn: key, message });
        }
        match self.refresh_held(&mut held, profile) {
            Ok(()) => {
                self.vault.clear_failure(&name)?;
                Ok(credentials_of(&held))
            }
            // Only the session's refusal is noted for the waiters: the token is spent or the
            // session over, so their own tries would be refused too. No answer, or the
            // service's own trouble, is worth a retry (and no browser).
            Err(refused) if ends_session(&refused) => {
                let e = match self.reauth {
                    Some(reauth) => match self.sign_in_again(reauth, &held) {
                        Ok(new) => {
                            self.vault.clear_failure(&name)?;
                            return Ok(credentials_of(&new));
                        }
                        Err(e) => e,
                    },
                    None => refused,
                };
                if let Err(note) = self.vault.note_failure(&name, &e.to_string()) {
                    tracing::debug!(error = %note, "cannot note the failed refresh");
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// The browser sign-in again for the session `held` had, stored as it was kept (with
    /// the AWS CLI's copy when it had one). The caller holds the lock.
    fn sign_in_again(
        &self,
        reauth: super::Reauth<'_>,
        held: &ConsoleSignIn,
    ) -> Result<ConsoleSignIn, LoginError> {
        let arn = held.info.key.clone();
        let options = super::SignInOptions {
            region: held.info.region.clone(),
            remote: reauth.remote,
            cli_cache: held.info.cli_cache,
            timeout: reauth.timeout,
        };
        let signed =
            super::sign_in(self.aws, reauth.show, reauth.paste, &options).map_err(|source| {
                LoginError::SignIn {
                    arn: arn.clone(),
                    source,
                }
            })?;
        if signed.info.key != arn {
            return Err(LoginError::OtherIdentity {
                expected: arn,
                got: signed.info.key,
            });
        }
        match self.keep_locked(&signed) {
            // The vault has it: the command goes on without the AWS CLI's copy.
            Err(LoginError::CliFile { path, message }) => tracing::warn!(
                "signed in again, but the AWS CLI's copy {} is not written: {message}",
                path.display()
            ),
            other => other?,
        }
        Ok(signed)
    }

    /// Refreshes `held` and stores the result (and writes the AWS CLI's file when kept).
    /// The caller holds the lock.
    fn refresh_held(&self, held: &mut ConsoleSignIn, profile: &str) -> Result<(), LoginError> {
        let cli_path = self.cli_path_of(held);
        match self.refresh_once(held, profile) {
            Err(refused) if ends_session(&refused) && cli_path.is_some() => {
                let path = cli_path.expect("checked");
                let Some(newer) = self.newer_in_cli_file(held, &path) else {
                    return Err(refused);
                };
                tracing::debug!(
                    "vault's refresh token was refused; the AWS CLI's file holds a newer one"
                );
                *held = newer;
                if !fresh(held) {
                    self.refresh_once(held, profile)?;
                }
                self.vault.store_console_sign_in(held)?;
                Ok(())
            }
            other => other,
        }
    }

    /// One refresh of `held` with its own token; on success the rotated token is stored and
    /// the AWS CLI's file written (when kept).
    fn refresh_once(&self, held: &mut ConsoleSignIn, profile: &str) -> Result<(), LoginError> {
        let arn = held.info.key.clone();
        let key = DpopKey::from_stored(&held.secrets.dpop_key).map_err(|message| {
            LoginError::HeldDamaged {
                arn: arn.clone(),
                message,
            }
        })?;
        let body = aws_sdk_signin::types::CreateOAuth2TokenRequestBody::builder()
            .client_id(&held.info.client_id)
            .grant_type("refresh_token")
            .refresh_token(held.secrets.refresh_token.expose_secret())
            .build()
            .map_err(|e| LoginError::HeldDamaged {
                arn: arn.clone(),
                message: e.to_string(),
            })?;
        let answer = exchange(self.aws, &held.info.region, &key, body).map_err(|e| match e {
            Exchange::Refused {
                code,
                reason,
                message,
            } => LoginError::Refused {
                profile: profile.to_owned(),
                arn: arn.clone(),
                code,
                reason,
                message,
                in_vault: true,
            },
            Exchange::Unreachable { endpoint, message } => LoginError::Unreachable {
                arn: arn.clone(),
                endpoint,
                message,
            },
            Exchange::Answer(message) => LoginError::HeldDamaged {
                arn: arn.clone(),
                message,
            },
        })?;
        let s = &mut held.secrets;
        s.access_key_id = answer.access_key_id;
        s.secret_access_key = answer.secret_access_key;
        s.session_token = answer.session_token;
        s.refresh_token = answer.refresh_token;
        held.info.expires = answer.expires;
        // The old refresh token is spent: the new one is stored before anything else.
        self.vault.store_console_sign_in(held)?;
        // Only over a file that is still there: `aws logout` removing it is respected.
        if let Some(path) = self.cli_path_of(held)
            && path.exists()
            && let Err(message) = cli_file::write(&path, held)
        {
            tracing::warn!(
                "the console session is refreshed, but the AWS CLI's copy {} is not: {message}",
                path.display()
            );
        }
        Ok(())
    }

    /// Where the AWS CLI's copy of `held` is, when the user keeps one.
    fn cli_path_of(&self, held: &ConsoleSignIn) -> Option<std::path::PathBuf> {
        match held.info.cli_cache {
            true => self
                .cache_dir
                .map(|dir| super::cache_path(dir, &held.info.key)),
            false => None,
        }
    }

    /// The AWS CLI's copy of the session when its refresh token is not the one vault holds:
    /// the AWS CLI or an SDK refreshed from the file since.
    fn newer_in_cli_file(&self, held: &ConsoleSignIn, path: &Path) -> Option<ConsoleSignIn> {
        let read = cli_file::read(path, held);
        match read {
            Ok(Some(file)) => {
                let differs = file.secrets.refresh_token.expose_secret()
                    != held.secrets.refresh_token.expose_secret();
                differs.then_some(file)
            }
            Ok(None) => None,
            Err(message) => {
                tracing::debug!(
                    "the AWS CLI's copy {} is unusable: {message}",
                    path.display()
                );
                None
            }
        }
    }
}

/// A `SecretString` from a JSON string field, if there.
pub(super) fn secret_field(value: &serde_json::Value, name: &str) -> Option<SecretString> {
    value[name].as_str().map(SecretString::from)
}
