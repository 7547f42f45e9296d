//! Running a plan: reuse cached sessions, mint the missing ones through aws-sdk-sts, cache
//! them, one process at a time per session.
//!
//! Single flight across processes: each step's session is minted under a lock named after its
//! cache key. Whoever gets the lock re-reads the cache first, so when sixteen processes want
//! the same session, one calls STS (and asks for one MFA code) and fifteen reuse its result.
//! Locks are taken from the requested profile's step down to the key's, the same order in
//! every process, so they cannot deadlock.
//!
//! Vault and keyring calls happen on the caller's thread; only the HTTP calls run inside a
//! small current-thread tokio runtime (`block_on` per call), so no keyring call is ever made
//! from an async runtime thread.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use chrono::{DateTime, TimeZone, Utc};
use secrecy::{ExposeSecret, SecretString};
use vault_store::{Credentials, SessionInfo, Vault};

use crate::credential_process;
use crate::plan::{Plan, Step, StepKind};
use crate::profile::CredentialSourceKind;

/// Where MFA codes come from; implemented by the binary (flag, `mfa_process`, ykman, prompt).
pub trait MfaSource {
    /// A current code for the device `serial`. The error is a message for the user.
    fn code(&self, serial: &str) -> Result<SecretString, String>;
}

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error(transparent)]
    Store(#[from] vault_store::Error),
    #[error("profile {0:?} needs a stored key, and the vault has none for it")]
    NoStoredKey(String),
    #[error("{0}")]
    Mfa(String),
    #[error("the MFA code must be 6 digits")]
    BadMfaCode,
    #[error("STS refused {step} for profile {profile:?}: {code}: {message}")]
    Refused {
        step: String,
        profile: String,
        code: String,
        message: String,
    },
    #[error("cannot reach STS at {endpoint} for {step}: {message}")]
    Unreachable {
        step: String,
        endpoint: String,
        message: String,
    },
    #[error("STS call {step} failed: {message}")]
    Other { step: String, message: String },
    #[error("no credentials from {source_name} for profile {profile:?}: {message}")]
    Source {
        source_name: &'static str,
        profile: String,
        message: String,
    },
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    #[error("credential_process of profile {profile:?} ({origin}) {problem}")]
    Process {
        profile: String,
        origin: String,
        problem: String,
    },
}

/// What the plan produced.
#[derive(Debug)]
pub struct Minted {
    pub credentials: Credentials,
    /// The AWS account of the final credentials, when STS said so.
    pub account_id: Option<String>,
    /// Steps that called STS in this run (empty when everything came from the cache).
    pub minted: Vec<String>,
}

/// How to reach STS.
#[derive(Clone, Debug)]
pub struct StsSettings {
    /// The profile whose `endpoint_url` / `services` apply (the requested one).
    pub profile: String,
    /// The region for the STS endpoint (us-east-1 when nothing says otherwise).
    pub region: String,
    /// A human description of the endpoint, for errors.
    pub endpoint: String,
    pub connect_timeout: Duration,
}

/// Runs plans against one vault.
pub struct Minter<'a> {
    vault: &'a Vault,
    mfa: &'a dyn MfaSource,
    settings: StsSettings,
    client: std::cell::OnceCell<Client>,
    /// Session name used when a profile names none.
    default_session_name: String,
}

struct Client {
    runtime: tokio::runtime::Runtime,
    config: aws_types::SdkConfig,
}

impl std::fmt::Debug for Minter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minter")
            .field("settings", &self.settings)
            .finish()
    }
}

impl<'a> Minter<'a> {
    pub fn new(vault: &'a Vault, mfa: &'a dyn MfaSource, settings: StsSettings) -> Self {
        Minter {
            vault,
            mfa,
            settings,
            client: std::cell::OnceCell::new(),
            default_session_name: format!("vault-{}", Utc::now().timestamp()),
        }
    }

    /// The credentials of the plan's final step: cached, or minted now.
    pub fn credentials(&self, plan: &Plan) -> Result<Minted, MintError> {
        let mut minted = Vec::new();
        let (credentials, account_id) = self.obtain(plan, plan.steps.len() - 1, &mut minted)?;
        Ok(Minted {
            credentials,
            account_id,
            minted,
        })
    }

    /// The cached session of a step, if it has more than the minimum TTL left.
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
        let left = session.info.expires - Utc::now();
        let min = chrono::Duration::from_std(plan.min_ttl.value).unwrap_or(chrono::Duration::MAX);
        if left <= min {
            tracing::debug!(step = step.name(), profile = %step.profile, "cached session is inside the minimum TTL");
            return Ok(None);
        }
        Ok(Some(session))
    }

    fn obtain(
        &self,
        plan: &Plan,
        index: usize,
        minted: &mut Vec<String>,
    ) -> Result<(Credentials, Option<String>), MintError> {
        let step = &plan.steps[index];
        let Some(key) = &step.cache_key else {
            return Ok((self.uncached_base(step)?, None));
        };
        if let Some(session) = self.cached(plan, step)? {
            tracing::debug!(step = step.name(), profile = %step.profile, "using cached session");
            return Ok((session.credentials, account_of(&session.info.description)));
        }
        // Without a vault (CI with only credential_source or web identity) there is nothing
        // to cache in: mint and hand out.
        let _lock = match self.vault.exists() {
            true => Some(self.vault.named_lock(key)?),
            false => None,
        };
        // Someone else may have minted it while we waited.
        if let Some(session) = self.cached(plan, step)? {
            tracing::debug!(step = step.name(), profile = %step.profile, "another process minted it");
            return Ok((session.credentials, account_of(&session.info.description)));
        }
        let upstream = match index {
            0 => None,
            _ => Some(self.obtain(plan, index - 1, minted)?.0),
        };
        let code = if step.needs_mfa() {
            let serial = plan
                .mfa_serial
                .as_ref()
                .expect("a step needing MFA has a serial");
            let code = self.mfa.code(&serial.value).map_err(MintError::Mfa)?;
            let c = code.expose_secret();
            if c.len() != 6 || !c.bytes().all(|b| b.is_ascii_digit()) {
                return Err(MintError::BadMfaCode);
            }
            Some(code)
        } else {
            None
        };
        tracing::debug!(step = step.name(), profile = %step.profile, "calling STS");
        let (credentials, account_id) = match &step.kind {
            StepKind::CredentialProcess(command) => {
                (credential_process::run(&step.profile, command)?, None)
            }
            _ => self.call(plan, step, upstream.as_ref(), code.as_ref())?,
        };
        minted.push(step.describe());
        // Credentials without an expiry (a credential_process handing out long-lived keys)
        // are used but not cached.
        let Some(expires) = credentials.expiration else {
            return Ok((credentials, account_id));
        };
        if !self.vault.exists() {
            return Ok((credentials, account_id));
        }
        let mut description = step.describe();
        if let Some(account) = &account_id {
            description.push_str(&format!(" account={account}"));
        }
        self.vault.store_session(
            &SessionInfo {
                key: key.clone(),
                profile: step.profile.clone(),
                source_profile: plan.base.clone(),
                description,
                expires,
            },
            &credentials,
        )?;
        Ok((credentials, account_id))
    }

    /// The first credentials of a chain that are not cached by us: the stored key, or the
    /// SDK's environment / instance / container providers (which cache and refresh
    /// themselves).
    fn uncached_base(&self, step: &Step) -> Result<Credentials, MintError> {
        use aws_credential_types::provider::ProvideCredentials;
        let kind = match &step.kind {
            StepKind::StoredKey => {
                return self
                    .vault
                    .credentials(&step.profile)?
                    .ok_or_else(|| MintError::NoStoredKey(step.profile.clone()));
            }
            StepKind::Source(kind) => kind.value,
            _ => unreachable!("only the stored key and credential_source go uncached"),
        };
        let runtime = &self.client().runtime;
        let provided = match kind {
            CredentialSourceKind::Environment => runtime.block_on(
                aws_config::environment::EnvironmentVariableCredentialsProvider::new()
                    .provide_credentials(),
            ),
            CredentialSourceKind::Ec2InstanceMetadata => runtime.block_on(
                aws_config::imds::credentials::ImdsCredentialsProvider::builder()
                    .build()
                    .provide_credentials(),
            ),
            CredentialSourceKind::EcsContainer => runtime.block_on(
                aws_config::ecs::EcsCredentialsProvider::builder()
                    .build()
                    .provide_credentials(),
            ),
        };
        let c = provided.map_err(|e| MintError::Source {
            source_name: kind.name(),
            profile: step.profile.clone(),
            message: error_chain(&e),
        })?;
        Ok(Credentials {
            access_key_id: SecretString::from(c.access_key_id()),
            secret_access_key: SecretString::from(c.secret_access_key()),
            session_token: c.session_token().map(SecretString::from),
            expiration: c.expiry().map(DateTime::<Utc>::from),
        })
    }

    /// A federated user session for a plain IAM user's key (what the console needs when
    /// there is no role): named after the user, with an allow-all policy, so it has exactly
    /// the user's permissions.
    pub fn federation_token(
        &self,
        profile: &str,
        key: &Credentials,
        duration: Duration,
    ) -> Result<Credentials, MintError> {
        let client = self.client();
        let sts = self.sts_with(key);
        let who = client
            .runtime
            .block_on(sts.get_caller_identity().send())
            .map_err(|e| self.sts_error("GetCallerIdentity", profile, e))?;
        let name = who
            .arn
            .as_deref()
            .and_then(|arn| arn.rsplit('/').next())
            .unwrap_or(profile);
        // GetFederationToken names are 2-32 characters of [\w+=,.@-].
        let name: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(*c))
            .take(32)
            .collect();
        let name = if name.len() < 2 {
            "vault-user".to_owned()
        } else {
            name
        };
        const ALLOW_ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        let out = client
            .runtime
            .block_on(
                sts.get_federation_token()
                    .name(name)
                    .policy(ALLOW_ALL)
                    .duration_seconds(duration.as_secs().min(i32::MAX as u64) as i32)
                    .send(),
            )
            .map_err(|e| self.sts_error("GetFederationToken", profile, e))?;
        out.credentials
            .map(convert)
            .ok_or_else(|| MintError::Other {
                step: "GetFederationToken".into(),
                message: "the answer held no credentials".into(),
            })
    }

    /// The profile's `role_session_name`, else this run's default.
    fn session_name(&self, role: &crate::profile::RoleSpec) -> String {
        role.session_name
            .as_ref()
            .map(|n| n.value.clone())
            .unwrap_or_else(|| self.default_session_name.clone())
    }

    fn sts_with(&self, credentials: &Credentials) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&self.client().config)
                .credentials_provider(provider_of(credentials))
                .build(),
        )
    }

    fn iam(&self, credentials: &Credentials) -> aws_sdk_iam::Client {
        let client = self.client();
        aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(&client.config)
                .credentials_provider(provider_of(credentials))
                .build(),
        )
    }

    /// The IAM user name of a key (GetUser without a name).
    pub fn iam_user(&self, profile: &str, credentials: &Credentials) -> Result<String, MintError> {
        let out = self
            .client()
            .runtime
            .block_on(self.iam(credentials).get_user().send())
            .map_err(|e| self.sts_error("GetUser", profile, e))?;
        Ok(out.user.map(|u| u.user_name).unwrap_or_default())
    }

    /// CreateAccessKey for `user`; the new pair goes straight into secrets.
    pub fn create_access_key(
        &self,
        profile: &str,
        credentials: &Credentials,
        user: &str,
    ) -> Result<Credentials, MintError> {
        let out = self
            .client()
            .runtime
            .block_on(
                self.iam(credentials)
                    .create_access_key()
                    .user_name(user)
                    .send(),
            )
            .map_err(|e| self.sts_error("CreateAccessKey", profile, e))?;
        let key = out.access_key.ok_or_else(|| MintError::Other {
            step: "CreateAccessKey".into(),
            message: "the answer held no key".into(),
        })?;
        Ok(Credentials::long_lived(
            SecretString::from(key.access_key_id),
            SecretString::from(key.secret_access_key),
        ))
    }

    /// DeleteAccessKey of `key_id` for `user`, signed with `credentials`.
    pub fn delete_access_key(
        &self,
        profile: &str,
        credentials: &Credentials,
        user: &str,
        key_id: &str,
    ) -> Result<(), MintError> {
        self.client()
            .runtime
            .block_on(
                self.iam(credentials)
                    .delete_access_key()
                    .user_name(user)
                    .access_key_id(key_id)
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| self.sts_error("DeleteAccessKey", profile, e))
    }

    /// GetCallerIdentity with `credentials`, retried while IAM propagates a new key (AWS
    /// takes a few seconds); gives up after `attempts`.
    pub fn verify_key(
        &self,
        profile: &str,
        credentials: &Credentials,
        attempts: u32,
    ) -> Result<String, MintError> {
        let client = self.client();
        let sts = self.sts_with(credentials);
        let mut last = None;
        for attempt in 0..attempts.max(1) {
            if attempt > 0 {
                std::thread::sleep(Duration::from_secs(2));
            }
            match client.runtime.block_on(sts.get_caller_identity().send()) {
                Ok(out) => return Ok(out.arn.unwrap_or_default()),
                Err(e) => last = Some(self.sts_error("GetCallerIdentity", profile, e)),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// The console sign-in URL for `credentials` (see [`crate::console`]).
    pub fn console_url(
        &self,
        credentials: &Credentials,
        destination: &crate::console::Destination,
    ) -> Result<SecretString, MintError> {
        let client = self.client();
        Ok(client
            .runtime
            .block_on(crate::console::login_url(credentials, destination, "vault"))?)
    }

    fn client(&self) -> &Client {
        self.client.get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime builds");
            let loader = aws_config::defaults(BehaviorVersion::latest())
                .profile_name(&self.settings.profile)
                .region(aws_types::region::Region::new(self.settings.region.clone()))
                .no_credentials()
                .retry_config(RetryConfig::standard().with_max_attempts(3))
                .timeout_config(
                    TimeoutConfig::builder()
                        .connect_timeout(self.settings.connect_timeout)
                        .operation_attempt_timeout(Duration::from_secs(20))
                        .operation_timeout(Duration::from_secs(45))
                        .build(),
                );
            let config = runtime.block_on(loader.load());
            Client { runtime, config }
        })
    }

    fn call(
        &self,
        plan: &Plan,
        step: &Step,
        upstream: Option<&Credentials>,
        code: Option<&SecretString>,
    ) -> Result<(Credentials, Option<String>), MintError> {
        let client = self.client();
        let sts = match upstream {
            Some(upstream) => self.sts_with(upstream),
            // AssumeRoleWithWebIdentity is unsigned.
            None => aws_sdk_sts::Client::new(&client.config),
        };
        let seconds = step
            .duration
            .as_ref()
            .map(|d| d.value.as_secs().min(i32::MAX as u64) as i32);
        let serial = plan.mfa_serial.as_ref().map(|s| s.value.clone());
        let code = code.map(|c| c.expose_secret().to_owned());
        let name = step.name().to_owned();
        let result = match &step.kind {
            StepKind::StoredKey | StepKind::Source(_) | StepKind::CredentialProcess(_) => {
                unreachable!("not an STS call")
            }
            StepKind::WebIdentity { role, token_file } => {
                let token =
                    std::fs::read_to_string(&token_file.value).map_err(|e| MintError::Source {
                        source_name: "web_identity_token_file",
                        profile: step.profile.clone(),
                        message: format!(
                            "cannot read {} ({}): {e}",
                            token_file.value, token_file.origin
                        ),
                    })?;
                let session_name = self.session_name(role);
                let request = sts
                    .assume_role_with_web_identity()
                    .role_arn(&role.arn.value)
                    .role_session_name(session_name)
                    .web_identity_token(token.trim())
                    .set_duration_seconds(seconds);
                client
                    .runtime
                    .block_on(request.send())
                    .map(|out| {
                        (
                            out.credentials,
                            account_of_user(out.assumed_role_user.as_ref()),
                        )
                    })
                    .map_err(|e| self.sts_error(&name, &step.profile, e))
            }
            StepKind::GetSessionToken { mfa } => {
                let mut request = sts.get_session_token().set_duration_seconds(seconds);
                if *mfa {
                    request = request.set_serial_number(serial).set_token_code(code);
                }
                client
                    .runtime
                    .block_on(request.send())
                    .map(|out| (out.credentials, None))
                    .map_err(|e| self.sts_error(&name, &step.profile, e))
            }
            StepKind::AssumeRole { role, mfa, .. } => {
                let session_name = self.session_name(role);
                let tags = role.session_tags.as_ref().map(|t| {
                    t.value
                        .iter()
                        .filter_map(|(k, v)| {
                            aws_sdk_sts::types::Tag::builder()
                                .key(k)
                                .value(v)
                                .build()
                                .ok()
                        })
                        .collect::<Vec<_>>()
                });
                let mut request = sts
                    .assume_role()
                    .role_arn(&role.arn.value)
                    .role_session_name(session_name)
                    .set_duration_seconds(seconds)
                    .set_external_id(role.external_id.as_ref().map(|e| e.value.clone()))
                    .set_tags(tags)
                    .set_transitive_tag_keys(role.transitive_tags.as_ref().map(|t| t.value.clone()))
                    .set_source_identity(role.source_identity.as_ref().map(|s| s.value.clone()));
                if *mfa {
                    request = request.set_serial_number(serial).set_token_code(code);
                }
                client
                    .runtime
                    .block_on(request.send())
                    .map(|out| {
                        (
                            out.credentials,
                            account_of_user(out.assumed_role_user.as_ref()),
                        )
                    })
                    .map_err(|e| self.sts_error(&name, &step.profile, e))
            }
        }?;
        let (credentials, account) = result;
        let credentials = credentials.ok_or_else(|| MintError::Other {
            step: name,
            message: "the answer held no credentials".into(),
        })?;
        Ok((convert(credentials), account))
    }

    fn sts_error<E>(&self, step: &str, profile: &str, e: SdkError<E, HttpResponse>) -> MintError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match &e {
            SdkError::ServiceError(service) => {
                let err = service.err();
                // Some STS stand-ins (moto) wrap errors in <Errors>, which the SDK's parser
                // does not read; fall back to the raw body so the code is never lost.
                let body = service
                    .raw()
                    .body()
                    .bytes()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                let code = err
                    .code()
                    .map(str::to_owned)
                    .or_else(|| xml_field(&body, "Code"))
                    .unwrap_or_else(|| "unknown error".to_owned());
                let message = err
                    .message()
                    .map(str::to_owned)
                    .or_else(|| xml_field(&body, "Message"))
                    .unwrap_or_else(|| "no message".to_owned());
                MintError::Refused {
                    step: step.to_owned(),
                    profile: profile.to_owned(),
                    code,
                    message,
                }
            }
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => MintError::Unreachable {
                step: step.to_owned(),
                endpoint: self.settings.endpoint.clone(),
                message: error_chain(&e),
            },
            _ => MintError::Other {
                step: step.to_owned(),
                message: error_chain(&e),
            },
        }
    }
}

/// The text of the first `<name>...</name>` element in `body`.
fn xml_field(body: &str, name: &str) -> Option<String> {
    let start = body.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + body[start..].find(&format!("</{name}>"))?;
    Some(body[start..end].to_owned())
}

/// The account id in an assumed-role user's ARN (`arn:aws:sts::ACCOUNT:assumed-role/...`).
fn account_of_user(user: Option<&aws_sdk_sts::types::AssumedRoleUser>) -> Option<String> {
    user.and_then(|u| u.arn.split(':').nth(4))
        .map(str::to_owned)
}

fn provider_of(c: &Credentials) -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new(
        c.access_key_id.expose_secret(),
        c.secret_access_key.expose_secret(),
        c.session_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
        None,
        "vault",
    )
}

/// The account recorded in a cached session's description (`... account=123456789012`).
fn account_of(description: &str) -> Option<String> {
    description
        .split_whitespace()
        .find_map(|w| w.strip_prefix("account="))
        .map(str::to_owned)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Moves the SDK's strings into zeroizing secrets without copying them.
fn convert(c: aws_sdk_sts::types::Credentials) -> Credentials {
    let expiration = Utc
        .timestamp_opt(c.expiration.secs(), c.expiration.subsec_nanos())
        .single()
        .map(|t: DateTime<Utc>| t);
    Credentials {
        access_key_id: SecretString::from(c.access_key_id),
        secret_access_key: SecretString::from(c.secret_access_key),
        session_token: Some(SecretString::from(c.session_token)),
        expiration,
    }
}
