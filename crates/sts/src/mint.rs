//! Running a plan: reuse cached sessions, mint the missing ones, cache them, one process at
//! a time per session. The calls themselves are made by [`crate::aws::sts_calls`] (STS and
//! the SDK's providers), [`crate::credential_process`] and [`crate::sso`]; this module only
//! decides when to make them: the cache and lock policy. A console session
//! ([`crate::signin`]) is read, never cached here (the AWS CLI's cache is its cache), under
//! its own lock, taken inside the step locks.
//!
//! Single flight across processes: each step's session is minted under a lock named after its
//! cache key. Whoever gets the lock re-reads the cache first, so when sixteen processes want
//! the same session, one calls STS (and asks for one MFA code) and fifteen reuse its result.
//! Locks are taken from the requested profile's step down to the key's, the same order in
//! every process, so they cannot deadlock.
//!
//! Vault and keyring calls happen on the caller's thread; only the HTTP calls run inside
//! [`Aws`]'s current-thread runtime (`block_on` per call), so no keyring call is ever made
//! from an async runtime thread.

use chrono::{DateTime, Utc};
use vault_store::{Credentials, SessionInfo, Vault};

use crate::aws::sts_calls::{self, Issued, MfaCode, RoleSession, SourceError};
use crate::aws::{Aws, AwsError, Waiting};
use crate::child::Launcher;
use crate::credential_process::{self, CredentialProcessError};
use crate::mfa::{self, MfaError, MfaSource};
use crate::plan::{Plan, Step, StepKind};
use crate::profile::RoleSpec;
use crate::signin::{Console, LoginError};
use crate::sso::{Sso, SsoError};

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error(transparent)]
    Store(#[from] vault_store::Error),
    #[error("profile {0:?} needs a stored key, and the vault has none for it")]
    NoStoredKey(String),
    #[error(transparent)]
    Mfa(#[from] MfaError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The SDK's environment / container / instance provider, or the web identity token
    /// file, gave no credentials.
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Process(#[from] CredentialProcessError),
    #[error(transparent)]
    Sso(#[from] SsoError),
    /// A console session (`login_session`) gave no credentials (boxed: its refusals carry
    /// the service's words, and every `Result` of the minter would be as large).
    #[error(transparent)]
    Login(Box<LoginError>),
    /// An SSO profile, and the caller gave no way to sign in.
    #[error("profile {0:?} signs in with SSO, which this command cannot do")]
    NoSso(String),
}

impl From<LoginError> for MintError {
    fn from(e: LoginError) -> Self {
        MintError::Login(Box::new(e))
    }
}

/// What the plan produced.
#[derive(Debug)]
pub struct Minted {
    pub credentials: Credentials,
    /// The AWS account of the final credentials, when STS said so.
    pub account_id: Option<String>,
    /// Steps that called STS (or ran a process) in this run; empty when all came from the
    /// cache.
    pub minted: Vec<String>,
    /// Things that went wrong but did not stop the credentials (the cache could not be
    /// written: the disk is full or read-only). For the user, one line each.
    pub warnings: Vec<String>,
}

/// How long a lock may take before [`Waiting`] hears of it.
const WAIT_NOTICE_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs plans against one vault.
pub struct Minter<'a> {
    vault: &'a Vault,
    mfa: &'a dyn MfaSource,
    launcher: &'a dyn Launcher,
    aws: &'a Aws,
    sso: Option<Sso<'a>>,
    /// The AWS CLI's console sessions, for `login_session` profiles.
    console: Option<Console<'a>>,
    /// Session name used when a profile names none.
    default_session_name: String,
    warnings: std::cell::RefCell<Vec<String>>,
    waiting: Option<&'a dyn Waiting>,
    /// A cache key whose session is treated as stale when it ends at or before this time
    /// ([`Minter::renew_early`]).
    stale: std::cell::RefCell<Option<(String, DateTime<Utc>)>>,
    /// Cache keys in the order their locks were taken (what the lock-order test reads).
    #[cfg(test)]
    locked: std::cell::RefCell<Vec<String>>,
}

impl std::fmt::Debug for Minter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minter")
            .field("aws", &self.aws)
            .finish_non_exhaustive()
    }
}

impl<'a> Minter<'a> {
    pub fn new(
        vault: &'a Vault,
        mfa: &'a dyn MfaSource,
        launcher: &'a dyn Launcher,
        aws: &'a Aws,
    ) -> Self {
        Minter {
            vault,
            mfa,
            launcher,
            aws,
            sso: None,
            console: None,
            default_session_name: format!("vault-{}", Utc::now().timestamp()),
            warnings: Default::default(),
            waiting: None,
            stale: Default::default(),
            #[cfg(test)]
            locked: Default::default(),
        }
    }

    /// Tell `waiting` when a lock keeps us waiting.
    pub fn telling(mut self, waiting: &'a dyn Waiting) -> Self {
        self.waiting = Some(waiting);
        self
    }

    /// Sign in to IAM Identity Center through `sso` for SSO profiles.
    pub fn with_sso(mut self, sso: Sso<'a>) -> Self {
        self.sso = Some(sso);
        self
    }

    /// Read console sessions (`login_session`) through `console`.
    pub fn with_console(mut self, console: Console<'a>) -> Self {
        self.console = Some(console);
        self
    }

    /// The credentials of the plan's final step: cached, or minted now.
    pub fn credentials(&self, plan: &Plan) -> Result<Minted, MintError> {
        let mut minted = Vec::new();
        let got = self.obtain(plan, plan.steps.len() - 1, &mut minted)?;
        Ok(Minted {
            credentials: got.credentials,
            account_id: got.account_id,
            minted,
            warnings: self.warnings.take(),
        })
    }

    /// The cached session of a step, if it has more than the plan's minimum TTL left.
    pub fn cached(
        &self,
        plan: &Plan,
        step: &Step,
    ) -> Result<Option<vault_store::Session>, MintError> {
        let Some(key) = &step.cache_key else {
            return Ok(None);
        };
        if !self.vault.exists() {
            return Ok(None);
        }
        let Some(session) = self.vault.session(key)? else {
            return Ok(None);
        };
        if let Some((stale_key, until)) = &*self.stale.borrow()
            && stale_key == key
            && session.info.expires <= *until
        {
            return Ok(None);
        }
        let left = session.info.expires - Utc::now();
        let min = chrono::Duration::from_std(plan.min_ttl.value).unwrap_or(chrono::Duration::MAX);
        if left <= min {
            tracing::debug!(step = step.name(), profile = %step.profile, "cached session is inside the minimum TTL");
            return Ok(None);
        }
        Ok(Some(session))
    }

    /// The plan's cached step that asks for an MFA code, and when its cached session ends.
    /// `None`: no such step, no vault to cache in, or nothing cached yet.
    pub fn mfa_session(&self, plan: &Plan) -> Result<Option<(usize, DateTime<Utc>)>, MintError> {
        let Some((index, key)) = plan.steps.iter().enumerate().find_map(|(i, step)| {
            step.cache_key
                .as_ref()
                .filter(|_| step.needs_mfa())
                .map(|key| (i, key))
        }) else {
            return Ok(None);
        };
        if !self.vault.exists() {
            return Ok(None);
        }
        Ok(self.vault.session(key)?.map(|s| (index, s.info.expires)))
    }

    /// Mints step `index` again now, although its cached session (ending at `ends`) still
    /// lasts: the MFA session of a long job, renewed while a person can still be asked. A
    /// session another process minted meanwhile (one that ends later) is used instead. The
    /// steps that called STS.
    pub fn renew_early(
        &self,
        plan: &Plan,
        index: usize,
        ends: DateTime<Utc>,
    ) -> Result<Vec<String>, MintError> {
        let key = plan.steps[index].cache_key.clone();
        *self.stale.borrow_mut() = key.map(|key| (key, ends));
        let mut minted = Vec::new();
        let result = self.obtain(plan, index, &mut minted);
        self.stale.take();
        result.map(|_| minted)
    }

    /// The credentials of step `index`: cached, or minted now under the step's lock (its
    /// upstream steps first, each the same way).
    fn obtain(
        &self,
        plan: &Plan,
        index: usize,
        minted: &mut Vec<String>,
    ) -> Result<Issued, MintError> {
        let step = &plan.steps[index];
        let Some(key) = &step.cache_key else {
            return self.uncached_base(step);
        };
        if let Some(session) = self.cached(plan, step)? {
            tracing::debug!(step = step.name(), profile = %step.profile, "using cached session");
            return Ok(from_cache(session));
        }
        let _lock = self.lock(step, key)?;
        // Someone else may have minted it while we waited.
        if let Some(session) = self.cached(plan, step)? {
            tracing::debug!(step = step.name(), profile = %step.profile, "another process minted it");
            return Ok(from_cache(session));
        }
        let got = self.mint(plan, index, minted)?;
        minted.push(step.describe());
        self.keep(plan, step, key, &got)?;
        Ok(got)
    }

    /// The lock of the step cached under `key`, held while it is minted. Without a vault
    /// (CI with only credential_source or web identity) there is nothing to cache in, so
    /// nothing to lock; a lock that cannot be made (read-only vault directory) only costs
    /// single flight.
    fn lock(&self, step: &Step, key: &str) -> Result<Option<vault_store::FileLock>, MintError> {
        if !self.vault.exists() {
            return Ok(None);
        }
        let lock = match self
            .vault
            .named_lock_telling(key, WAIT_NOTICE_AFTER, &mut || {
                if let Some(waiting) = self.waiting {
                    waiting.waiting_for(&format!(
                        "another vault process minting {} for profile {:?}",
                        step.describe(),
                        step.profile
                    ));
                }
            }) {
            Ok(lock) => Some(lock),
            Err(vault_store::Error::Io { path, source }) => {
                self.warn(format!(
                    "cannot lock {} ({source}); other vault processes may mint the same session",
                    path.display()
                ));
                None
            }
            Err(e) => return Err(e.into()),
        };
        #[cfg(test)]
        if lock.is_some() {
            self.locked.borrow_mut().push(key.to_owned());
        }
        Ok(lock)
    }

    /// Mints step `index` now, from its upstream step's credentials (obtained first) and an
    /// MFA code when the step carries one.
    fn mint(
        &self,
        plan: &Plan,
        index: usize,
        minted: &mut Vec<String>,
    ) -> Result<Issued, MintError> {
        let step = &plan.steps[index];
        let upstream = match index {
            0 => None,
            _ => Some(self.obtain(plan, index - 1, minted)?.credentials),
        };
        let code = match step.needs_mfa() {
            true => {
                let serial = plan
                    .mfa_serial
                    .as_ref()
                    .expect("a step needing MFA has a serial");
                Some((serial, mfa::code_from(self.mfa, &serial.value)?))
            }
            false => None,
        };
        let mfa = code.as_ref().map(|(serial, code)| MfaCode {
            serial: &serial.value,
            code,
        });
        let (aws, profile) = (self.aws, step.profile.as_str());
        let duration = step.duration.as_ref().map(|d| d.value);
        tracing::debug!(step = step.name(), profile = %step.profile, "calling STS");
        Ok(match &step.kind {
            StepKind::StoredKey | StepKind::Source(_) | StepKind::LoginSession(_) => {
                unreachable!(
                    "the stored key, credential_source and console sessions are not minted"
                )
            }
            StepKind::CredentialProcess(command) => Issued {
                credentials: credential_process::run(profile, command, self.launcher)?,
                account_id: None,
            },
            StepKind::SsoRole {
                sso,
                account_id,
                role_name,
            } => {
                let signer = self
                    .sso
                    .as_ref()
                    .ok_or_else(|| MintError::NoSso(step.profile.clone()))?;
                Issued {
                    credentials: signer.role_credentials(
                        sso,
                        &account_id.value,
                        &role_name.value,
                        profile,
                    )?,
                    account_id: Some(account_id.value.clone()),
                }
            }
            StepKind::WebIdentity { role, token_file } => {
                let token = sts_calls::web_identity_token(token_file, profile)?;
                let name = self.session_name(role);
                let session = RoleSession {
                    name: &name,
                    duration,
                    policy: plan.policy_for(index),
                };
                sts_calls::assume_role_with_web_identity(aws, role, &token, session, profile)?
            }
            StepKind::GetSessionToken { .. } => {
                sts_calls::get_session_token(aws, upstream.as_ref(), duration, mfa, profile)?
            }
            StepKind::AssumeRole { role, .. } => {
                let name = self.session_name(role);
                let session = RoleSession {
                    name: &name,
                    duration,
                    policy: plan.policy_for(index),
                };
                let upstream = upstream.as_ref();
                sts_calls::assume_role(aws, upstream, role, session, mfa, profile)?
            }
        })
    }

    /// Caches what was minted. The cache is disposable: credentials STS already gave are
    /// handed out even when they cannot be cached.
    fn keep(&self, plan: &Plan, step: &Step, key: &str, got: &Issued) -> Result<(), MintError> {
        // Credentials without an expiry (a credential_process handing out long-lived keys)
        // are used but not cached.
        let Some(expires) = got.credentials.expiration else {
            return Ok(());
        };
        if !self.vault.exists() {
            return Ok(());
        }
        let stored = self.vault.store_session(
            &SessionInfo {
                key: key.to_owned(),
                profile: step.profile.clone(),
                source_profile: plan.owner(),
                description: step.describe(),
                account_id: got.account_id.clone(),
                expires,
            },
            &got.credentials,
        );
        match stored {
            Ok(()) => {}
            Err(vault_store::Error::Io { path, source }) => self.warn(format!(
                "could not cache the session in {} ({}); it will be minted again next time",
                path.display(),
                match source.kind() {
                    std::io::ErrorKind::StorageFull => "no space left on device".to_owned(),
                    _ => source.to_string(),
                }
            )),
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// The first credentials of a chain that are not cached by us: the stored key, the
    /// SDK's environment / instance / container providers (which cache and refresh
    /// themselves), or a console session (the AWS CLI's cache, refreshed by aws-config).
    fn uncached_base(&self, step: &Step) -> Result<Issued, MintError> {
        let credentials = match &step.kind {
            StepKind::StoredKey => self
                .vault
                .credentials(&step.profile)?
                .ok_or_else(|| MintError::NoStoredKey(step.profile.clone()))?,
            StepKind::Source(kind) => {
                sts_calls::source_credentials(self.aws, kind.value, &step.profile)?
            }
            StepKind::LoginSession(login) => {
                let own;
                let console = match &self.console {
                    Some(console) => console,
                    None => {
                        own = Console::new(self.vault, self.aws, None);
                        &own
                    }
                };
                let got = console.credentials(login, &step.profile)?;
                return Ok(Issued {
                    credentials: got.credentials,
                    account_id: got.account_id,
                });
            }
            _ => unreachable!(
                "only the stored key, credential_source and console sessions go uncached"
            ),
        };
        Ok(Issued {
            credentials,
            account_id: None,
        })
    }

    fn warn(&self, warning: String) {
        tracing::debug!("{warning}");
        self.warnings.borrow_mut().push(warning);
    }

    /// The profile's `role_session_name`, else this run's default.
    fn session_name(&self, role: &RoleSpec) -> String {
        role.session_name
            .as_ref()
            .map(|n| n.value.clone())
            .unwrap_or_else(|| self.default_session_name.clone())
    }
}

/// A cached session as a step's credentials.
fn from_cache(session: vault_store::Session) -> Issued {
    Issued {
        credentials: session.credentials,
        account_id: session.info.account_id,
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::path::Path;
    use std::time::Duration;

    use secrecy::{ExposeSecret, SecretString};
    use vault_store::{BackendChoice, BackendKind, PassphraseSource};

    use super::*;
    use crate::aws::AwsSettings;
    use crate::origin::{Origin, Sourced};

    struct Pass;
    impl PassphraseSource for Pass {
        fn passphrase(
            &self,
            _: &Path,
            _: bool,
        ) -> Result<SecretString, vault_store::PassphraseError> {
            Ok(SecretString::from("unit-test passphrase"))
        }
    }

    /// Fails the test if a step asks for a code: none of these plans needs one.
    struct NoMfa;
    impl MfaSource for NoMfa {
        fn code(&self, serial: &str) -> Result<SecretString, crate::mfa::CodeUnavailable> {
            panic!("asked for an MFA code for {serial}")
        }
        fn origin(&self) -> crate::mfa::MfaOrigin {
            crate::mfa::MfaOrigin::Terminal
        }
    }

    struct NoChildren;
    impl Launcher for NoChildren {
        fn command(&self, program: &OsStr) -> std::process::Command {
            panic!("started {program:?}")
        }
        fn output(
            &self,
            _: std::process::Command,
            what: &str,
        ) -> Result<crate::child::HelperOutput, crate::child::HelperError> {
            panic!("ran {what}")
        }
    }

    fn vault(dir: &Path) -> Vault {
        let mut vault = Vault::open(
            dir,
            BackendChoice::Explicit(BackendKind::File),
            Box::new(Pass),
        )
        .unwrap();
        vault.create_if_missing().unwrap();
        vault
    }

    /// An endpoint nothing listens on: any STS call would fail, so a test that succeeds
    /// made none.
    fn aws() -> Aws {
        Aws::new(AwsSettings {
            profile: "lab".into(),
            region: "us-east-1".into(),
            endpoints: Default::default(),
            timeouts: crate::aws::Timeouts::DEFAULT.within(Duration::from_millis(500)),
        })
    }

    fn step(kind: StepKind, key: Option<&str>) -> Step {
        Step {
            kind,
            profile: "base".into(),
            duration: None,
            cache_key: key.map(str::to_owned),
            notes: Vec::new(),
        }
    }

    /// stored key → GetSessionToken (cache key `gst`) → AssumeRole (cache key `role`).
    fn plan(min_ttl_minutes: u64) -> Plan {
        let role = crate::profile::RoleSpec {
            arn: Sourced::new(
                "arn:aws:iam::123456789012:role/lab".to_owned(),
                Origin::Default,
            ),
            session_name: None,
            external_id: None,
            duration: None,
            session_tags: None,
            transitive_tags: None,
            source_identity: None,
        };
        Plan {
            profile: "lab".into(),
            base: "base".into(),
            steps: vec![
                step(StepKind::StoredKey, None),
                step(StepKind::GetSessionToken { mfa: false }, Some("gst")),
                step(
                    StepKind::AssumeRole {
                        role: Box::new(role),
                        mfa: false,
                        chained: false,
                    },
                    Some("role"),
                ),
            ],
            region: None,
            mfa_serial: None,
            mfa_process: None,
            min_ttl: Sourced::new(Duration::from_secs(min_ttl_minutes * 60), Origin::Default),
            policy: None,
        }
    }

    fn cache(vault: &Vault, key: &str, minutes_left: i64, account: Option<&str>) {
        let credentials = Credentials {
            access_key_id: SecretString::from(format!("ASIA-{key}")),
            secret_access_key: SecretString::from("s"),
            session_token: Some(SecretString::from("t")),
            expiration: Some(Utc::now() + chrono::Duration::minutes(minutes_left)),
        };
        vault
            .store_session(
                &SessionInfo {
                    key: key.into(),
                    profile: "lab".into(),
                    source_profile: "base".into(),
                    description: "AssumeRole".into(),
                    account_id: account.map(str::to_owned),
                    expires: credentials.expiration.unwrap(),
                },
                &credentials,
            )
            .unwrap();
    }

    #[test]
    fn a_fresh_cached_session_is_used_without_a_call() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(dir.path());
        cache(&vault, "role", 50, Some("123456789012"));
        let aws = aws();
        let minter = Minter::new(&vault, &NoMfa, &NoChildren, &aws);
        let got = minter.credentials(&plan(15)).unwrap();
        assert_eq!(got.credentials.access_key_id.expose_secret(), "ASIA-role");
        assert_eq!(got.account_id.as_deref(), Some("123456789012"));
        assert!(got.minted.is_empty());
        // The cache is read before any lock: a warm run takes none.
        assert!(minter.locked.borrow().is_empty());
    }

    #[test]
    fn a_session_inside_the_minimum_ttl_is_minted_again() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(dir.path());
        // 10 minutes left: good enough for a 5-minute minimum, not for 15.
        cache(&vault, "role", 10, None);
        let aws = aws();
        let minter = Minter::new(&vault, &NoMfa, &NoChildren, &aws);
        assert!(minter.credentials(&plan(5)).unwrap().minted.is_empty());
        // With 15 minutes required it goes down the chain; the vault has no key for the
        // base, which is where it stops (before any call).
        let err = minter.credentials(&plan(15)).unwrap_err();
        assert!(
            matches!(err, MintError::NoStoredKey(ref p) if p == "base"),
            "{err}"
        );
    }

    #[test]
    fn locks_are_taken_from_the_requested_step_down() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(dir.path());
        let aws = aws();
        let minter = Minter::new(&vault, &NoMfa, &NoChildren, &aws);
        let err = minter.credentials(&plan(15)).unwrap_err();
        assert!(matches!(err, MintError::NoStoredKey(_)), "{err}");
        assert_eq!(*minter.locked.borrow(), ["role", "gst"]);
    }

    #[test]
    fn without_a_vault_nothing_is_locked_or_cached() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(
            dir.path().join("none"),
            BackendChoice::Explicit(BackendKind::File),
            Box::new(Pass),
        )
        .unwrap();
        let aws = aws();
        let minter = Minter::new(&vault, &NoMfa, &NoChildren, &aws);
        assert!(minter.credentials(&plan(15)).is_err());
        assert!(minter.locked.borrow().is_empty());
        assert!(!dir.path().join("none").exists());
    }

    #[test]
    fn renew_early_mints_a_fresh_mfa_session_again_and_uses_a_later_one() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(dir.path());
        let mut plan = plan(15);
        plan.steps[1].kind = StepKind::GetSessionToken { mfa: true };
        plan.mfa_serial = Some(Sourced::new(
            "arn:aws:iam::123456789012:mfa/a".to_owned(),
            Origin::Default,
        ));
        let aws = aws();
        let minter = Minter::new(&vault, &NoMfa, &NoChildren, &aws);
        assert!(minter.mfa_session(&plan).unwrap().is_none());
        cache(&vault, "gst", 300, None);
        let (index, ends) = minter.mfa_session(&plan).unwrap().unwrap();
        assert_eq!(index, 1);
        // Five hours left, and still minted again: down to the (missing) stored key.
        let err = minter.renew_early(&plan, index, ends).unwrap_err();
        assert!(matches!(err, MintError::NoStoredKey(_)), "{err}");
        // The override ends with the call: the cached session serves again.
        assert!(minter.cached(&plan, &plan.steps[1]).unwrap().is_some());
        // Another process renewed it meanwhile (it ends later): used, nothing minted.
        cache(&vault, "gst", 400, None);
        assert!(minter.renew_early(&plan, index, ends).unwrap().is_empty());
    }
}
