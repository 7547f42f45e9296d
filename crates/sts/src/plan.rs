//! From a resolved profile to the list of STS calls that produce its credentials: a pure
//! function, so every rule is tested without a network and `--explain` shows exactly what
//! will run.
//!
//! | profile                              | steps                                              |
//! |--------------------------------------|----------------------------------------------------|
//! | stored key, `--no-session`           | the key itself                                     |
//! | stored key                           | GetSessionToken (1 h; with MFA if `mfa_serial`)    |
//! | role, no MFA                         | AssumeRole from the key                            |
//! | role + MFA                           | GetSessionToken with MFA (8 h), AssumeRole         |
//! | role → role                          | (MFA session), AssumeRole, AssumeRole (chained ≤ 1 h) |
//! | role + MFA, first role > 1 h         | AssumeRole from the key with MFA (each mint)       |
//! | SSO (`sso_account_id`, `sso_role_name`) | GetRoleCredentials (the portal's lifetime)      |
//! | role from an SSO profile             | GetRoleCredentials, AssumeRole (chained ≤ 1 h)     |
//! | `login_session` (`aws login`)        | the console session (AWS CLI cache, refreshed)     |
//! | role from a `login_session` profile  | the console session, AssumeRole (chained ≤ 1 h)    |
//!
//! Every step but the key has a cache key covering all that shapes its result; the MFA
//! session's key does not depend on the role, so one MFA session serves every role reached
//! through the same key and MFA device.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::duration;
use crate::origin::{Origin, Sourced};
use crate::policy::SessionPolicy;
use crate::profile::{
    BaseSource, CredentialSourceKind, LoginSession, Resolved, RoleSpec, SsoSession,
};

/// STS limits, in one place for every command (the console's sessions have the same ones:
/// a role's `SessionDuration` up to 12 h, a federation token up to 36 h).
pub const MIN_DURATION: Duration = Duration::from_secs(900);
pub const MAX_ASSUME_ROLE: Duration = Duration::from_secs(12 * 3600);
pub const MAX_SESSION_TOKEN: Duration = Duration::from_secs(36 * 3600);
pub const MAX_FEDERATION_TOKEN: Duration = MAX_SESSION_TOKEN;
/// AWS caps sessions of chained roles (and roles assumed with session-token credentials).
const CHAIN_CAP: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
#[error("invalid duration {value:?} ({origin}): {reason}")]
pub struct DurationError {
    pub value: String,
    pub origin: Origin,
    pub reason: String,
}

/// Lifetimes: aws-vault's defaults and environment variables.
#[derive(Clone, Debug)]
pub struct Ttls {
    /// GetSessionToken for a profile without a role (`AWS_SESSION_TOKEN_TTL`, 1 h).
    pub session_token: Sourced<Duration>,
    /// The MFA session used to assume roles (`AWS_CHAINED_SESSION_TOKEN_TTL`, 8 h).
    pub chained_session_token: Sourced<Duration>,
    /// AssumeRole (`AWS_ASSUME_ROLE_TTL`, 1 h).
    pub assume_role: Sourced<Duration>,
    /// Cached sessions are reused while more than this is left (`AWS_MIN_TTL`, 15 min).
    pub min_ttl: Sourced<Duration>,
}

impl Ttls {
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Ttls, DurationError> {
        let ttl = |name: &'static str, default: u64| -> Result<Sourced<Duration>, DurationError> {
            match get(name).filter(|v| !v.is_empty()) {
                Some(text) => duration::parse(&text)
                    .map(|d| Sourced::new(d, Origin::Env(name)))
                    .map_err(|reason| DurationError {
                        value: text,
                        origin: Origin::Env(name),
                        reason,
                    }),
                None => Ok(Sourced::new(Duration::from_secs(default), Origin::Default)),
            }
        };
        Ok(Ttls {
            session_token: ttl("AWS_SESSION_TOKEN_TTL", 3600)?,
            chained_session_token: ttl("AWS_CHAINED_SESSION_TOKEN_TTL", 8 * 3600)?,
            assume_role: ttl("AWS_ASSUME_ROLE_TTL", 3600)?,
            min_ttl: ttl("AWS_MIN_TTL", 15 * 60)?,
        })
    }
}

/// What the caller asked for beyond the profile.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// `--no-session`: no GetSessionToken.
    pub no_session: bool,
    /// `--duration`: the final step's lifetime.
    pub duration: Option<Sourced<Duration>>,
    pub ttls: Ttls,
    /// The STS endpoint override in force, if any (part of every cache key, so sessions
    /// from a test endpoint never serve the real one).
    pub endpoint: Option<String>,
    /// The SSO portal endpoint override, if any (part of SSO role sessions' keys).
    pub sso_endpoint: Option<String>,
    /// The AWS Sign-In endpoint override, if any (part of the keys of sessions minted from a
    /// console session).
    pub signin_endpoint: Option<String>,
    /// A digest of the base credentials' identity when they come from outside the vault
    /// (environment key id, web identity token), so sessions they minted are not reused
    /// for other credentials.
    pub source_fingerprint: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// The long-lived key pair from the vault.
    StoredKey,
    /// Credentials from the SDK's environment / instance / container provider.
    Source(Sourced<CredentialSourceKind>),
    /// Credentials printed by `credential_process`.
    CredentialProcess(Sourced<String>),
    /// GetRoleCredentials from the SSO portal, with the sign-in's access token.
    SsoRole {
        sso: Box<SsoSession>,
        account_id: Sourced<String>,
        role_name: Sourced<String>,
    },
    /// The console session of `aws login`: credentials from the AWS CLI's cache, refreshed
    /// (CreateOAuth2Token) by aws-config's login provider when they are about to end. Not
    /// cached by vault: the AWS CLI's cache is their cache.
    LoginSession(Box<LoginSession>),
    /// AssumeRoleWithWebIdentity with the token in a file.
    WebIdentity {
        role: Box<RoleSpec>,
        token_file: Sourced<String>,
    },
    /// GetSessionToken; `mfa` when it carries the MFA code.
    GetSessionToken { mfa: bool },
    /// AssumeRole; `mfa` when it carries the MFA code itself; `chained` when assumed with
    /// role credentials.
    AssumeRole {
        role: Box<RoleSpec>,
        mfa: bool,
        chained: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub kind: StepKind,
    /// The profile this step belongs to (the role's profile, or the key's).
    pub profile: String,
    /// Requested lifetime (none for the stored key).
    pub duration: Option<Sourced<Duration>>,
    /// Where the result is cached (none for the stored key).
    pub cache_key: Option<String>,
    /// Things worth telling the user (caps applied, why a step was chosen).
    pub notes: Vec<String>,
}

impl Step {
    pub fn name(&self) -> &'static str {
        match self.kind {
            StepKind::StoredKey => "stored key",
            StepKind::Source(_) => "credential_source",
            StepKind::CredentialProcess(_) => "credential_process",
            StepKind::WebIdentity { .. } => "AssumeRoleWithWebIdentity",
            StepKind::SsoRole { .. } => "GetRoleCredentials",
            StepKind::LoginSession(_) => "login_session",
            StepKind::GetSessionToken { .. } => "GetSessionToken",
            StepKind::AssumeRole { .. } => "AssumeRole",
        }
    }

    pub fn needs_mfa(&self) -> bool {
        matches!(
            self.kind,
            StepKind::GetSessionToken { mfa: true } | StepKind::AssumeRole { mfa: true, .. }
        )
    }

    /// A short description for `vault list` and messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            StepKind::StoredKey => format!("stored key of {}", self.profile),
            StepKind::Source(kind) => format!("credential_source {}", kind.value.name()),
            StepKind::CredentialProcess(_) => format!("credential_process of {}", self.profile),
            StepKind::WebIdentity { role, .. } => {
                format!("AssumeRoleWithWebIdentity {}", role.arn.value)
            }
            StepKind::SsoRole {
                account_id,
                role_name,
                ..
            } => format!(
                "SSO role {} in account {}",
                role_name.value, account_id.value
            ),
            StepKind::LoginSession(login) => format!("console session of {}", login.arn.value),
            StepKind::GetSessionToken { mfa: true } => "GetSessionToken with MFA".to_owned(),
            StepKind::GetSessionToken { mfa: false } => "GetSessionToken".to_owned(),
            StepKind::AssumeRole { role, .. } => format!("AssumeRole {}", role.arn.value),
        }
    }
}

/// The steps, from the stored key (first) to the requested profile's credentials (last).
#[derive(Clone, Debug)]
pub struct Plan {
    pub profile: String,
    pub base: String,
    pub steps: Vec<Step>,
    pub region: Option<Sourced<String>>,
    pub mfa_serial: Option<Sourced<String>>,
    pub mfa_process: Option<Sourced<String>>,
    pub min_ttl: Sourced<Duration>,
    /// The session policy asked for; sent with the final step when it can carry one
    /// ([`Plan::policy_carried`]).
    pub policy: Option<SessionPolicy>,
}

impl Plan {
    /// Who the plan's cached sessions belong to: the stored key's profile (removing the key
    /// drops them), or `sso <session>` for SSO sign-ins (logging out drops them). The space
    /// keeps it apart from every profile name.
    pub fn owner(&self) -> String {
        match &self.steps[0].kind {
            StepKind::SsoRole { sso, .. } => sso_owner(&sso.key),
            _ => self.base.clone(),
        }
    }

    /// Whether the final step takes the session policy: an AssumeRole or
    /// AssumeRoleWithWebIdentity does; GetSessionToken and the sources do not.
    pub fn policy_carried(&self) -> bool {
        self.policy.is_some()
            && matches!(
                self.final_step().kind,
                StepKind::AssumeRole { .. } | StepKind::WebIdentity { .. }
            )
    }

    /// The session policy to send with step `index`: only the final one carries it.
    pub fn policy_for(&self, index: usize) -> Option<&SessionPolicy> {
        (index + 1 == self.steps.len() && self.policy_carried())
            .then_some(self.policy.as_ref())
            .flatten()
    }

    /// The profile whose role the final credentials belong to, if any.
    pub fn final_step(&self) -> &Step {
        self.steps
            .last()
            .expect("a plan has at least the stored key")
    }
}

/// The owner of the sessions an SSO sign-in minted (see [`Plan::owner`]).
pub fn sso_owner(key: &str) -> String {
    format!("sso {key}")
}

/// Builds the plan. Pure: no I/O.
pub fn plan(resolved: &Resolved, options: &PlanOptions) -> Result<Plan, DurationError> {
    let parts = KeyParts {
        partition: partition_of(resolved.region.as_ref().map(|r| r.value.as_str())),
        endpoint: options.endpoint.as_deref().unwrap_or("-"),
        serial: resolved.mfa_serial.as_ref().map(|s| s.value.as_str()),
    };
    let (first, key_id) = first_step(resolved, options, &parts)?;
    let mut steps = vec![first];
    let roles: Vec<(&str, &RoleSpec)> = resolved.roles().collect();
    if roles.is_empty() {
        steps.extend(session_token_step(resolved, options, &parts, &key_id)?);
    } else {
        steps.extend(role_steps(resolved, options, &parts, &roles, key_id)?);
    }
    Ok(finish(resolved, &options.ttls, steps))
}

/// What the cache keys of a plan's STS steps share besides their upstream.
struct KeyParts<'a> {
    /// The partition of the profile's region.
    partition: &'static str,
    /// The STS endpoint override, or `-`.
    endpoint: &'a str,
    /// The MFA device, when the profile names one.
    serial: Option<&'a str>,
}

/// The step that starts the chain (where its first credentials come from), and the
/// identity the cache keys of the steps after it build on.
fn first_step(
    resolved: &Resolved,
    options: &PlanOptions,
    parts: &KeyParts<'_>,
) -> Result<(Step, String), DurationError> {
    let fingerprint = options.source_fingerprint.as_deref().unwrap_or("-");
    Ok(match &resolved.source {
        BaseSource::StoredKey => (
            Step {
                kind: StepKind::StoredKey,
                profile: resolved.base.clone(),
                duration: None,
                cache_key: None,
                notes: Vec::new(),
            },
            format!("key|{}", resolved.base),
        ),
        BaseSource::CredentialSource(kind) => (
            Step {
                kind: StepKind::Source(kind.clone()),
                profile: resolved.base.clone(),
                duration: None,
                cache_key: None,
                notes: Vec::new(),
            },
            // Sessions minted from other source credentials must not be reused.
            format!(
                "source|{}|{}|{fingerprint}",
                resolved.base,
                kind.value.name()
            ),
        ),
        BaseSource::Process(command) => {
            let key = cache_key(&["credential_process", &resolved.base, &command.value]);
            (
                Step {
                    kind: StepKind::CredentialProcess(command.clone()),
                    profile: resolved.base.clone(),
                    duration: None,
                    cache_key: Some(key.clone()),
                    notes: vec!["cached in the vault until the Expiration it reports".into()],
                },
                key,
            )
        }
        BaseSource::Sso {
            sso,
            account_id,
            role_name,
        } => sso_step(resolved, options, sso, account_id, role_name),
        BaseSource::WebIdentity { role, token_file } => {
            web_identity_step(resolved, options, parts, role, token_file)?
        }
        BaseSource::LoginSession(login) => (
            Step {
                kind: StepKind::LoginSession(login.clone()),
                profile: resolved.base.clone(),
                duration: None,
                cache_key: None,
                notes: vec![
                    "from the AWS CLI's cache of `aws login`, refreshed by aws-config's login provider when it ends within 5 minutes (one process at a time)".into(),
                ],
            },
            // Sessions minted from it belong to that identity and the Sign-In endpoint.
            cache_key(&[
                "login_session",
                &resolved.base,
                login.arn.value.trim(),
                options.signin_endpoint.as_deref().unwrap_or("-"),
            ]),
        ),
    })
}

/// GetRoleCredentials from the SSO portal, as the first step.
fn sso_step(
    resolved: &Resolved,
    options: &PlanOptions,
    sso: &SsoSession,
    account_id: &Sourced<String>,
    role_name: &Sourced<String>,
) -> (Step, String) {
    let key = cache_key(&[
        "GetRoleCredentials",
        &sso.key,
        &sso.start_url.value,
        &account_id.value,
        &role_name.value,
        options.sso_endpoint.as_deref().unwrap_or("-"),
    ]);
    let note = match sso.refreshable() {
        true => format!(
            "signed in through {}; the token is refreshed without a browser",
            sso.label()
        ),
        false => format!(
            "legacy SSO profile (sso_start_url without sso_session): its token cannot be refreshed, so you sign in again when it expires; move the keys to an [sso-session] section to refresh ({})",
            sso.start_url.origin
        ),
    };
    let step = Step {
        kind: StepKind::SsoRole {
            sso: Box::new(sso.clone()),
            account_id: account_id.clone(),
            role_name: role_name.clone(),
        },
        profile: resolved.base.clone(),
        duration: None,
        cache_key: Some(key.clone()),
        notes: vec![note],
    };
    (step, key)
}

/// AssumeRoleWithWebIdentity with the token in a file, as the first step.
fn web_identity_step(
    resolved: &Resolved,
    options: &PlanOptions,
    parts: &KeyParts<'_>,
    role: &RoleSpec,
    token_file: &Sourced<String>,
) -> Result<(Step, String), DurationError> {
    let duration = checked(
        role.duration
            .clone()
            .unwrap_or_else(|| options.ttls.assume_role.clone()),
        MAX_ASSUME_ROLE,
    )?;
    let key = cache_key(&[
        "AssumeRoleWithWebIdentity",
        &role.arn.value,
        role.session_name.as_ref().map_or("-", |v| v.value.as_str()),
        &token_file.value,
        options.source_fingerprint.as_deref().unwrap_or("-"),
        &duration.value.as_secs().to_string(),
        role.partition(),
        parts.endpoint,
    ]);
    let step = Step {
        kind: StepKind::WebIdentity {
            role: Box::new(role.clone()),
            token_file: token_file.clone(),
        },
        profile: resolved.base.clone(),
        duration: Some(duration),
        cache_key: Some(key.clone()),
        notes: Vec::new(),
    };
    Ok((step, key))
}

/// For a profile without a role: GetSessionToken from the stored key (with MFA when the
/// profile names a device), unless `--no-session` or the credentials come from elsewhere.
fn session_token_step(
    resolved: &Resolved,
    options: &PlanOptions,
    parts: &KeyParts<'_>,
    key_id: &str,
) -> Result<Option<Step>, DurationError> {
    if !matches!(resolved.source, BaseSource::StoredKey) || options.no_session {
        return Ok(None);
    }
    let duration = checked(
        options
            .duration
            .clone()
            .unwrap_or_else(|| options.ttls.session_token.clone()),
        MAX_SESSION_TOKEN,
    )?;
    Ok(Some(Step {
        kind: StepKind::GetSessionToken {
            mfa: parts.serial.is_some(),
        },
        profile: resolved.base.clone(),
        cache_key: Some(session_token_key(parts, key_id, &duration)),
        duration: Some(duration),
        notes: Vec::new(),
    }))
}

/// The cache key of a GetSessionToken from `upstream`.
fn session_token_key(parts: &KeyParts<'_>, upstream: &str, duration: &Sourced<Duration>) -> String {
    cache_key(&[
        upstream,
        "GetSessionToken",
        parts.serial.unwrap_or("-"),
        &duration.value.as_secs().to_string(),
        parts.partition,
        parts.endpoint,
    ])
}

/// For a profile with roles: the MFA session when one serves them, then one AssumeRole per
/// role, from the one closest to the key up to the requested profile's.
fn role_steps(
    resolved: &Resolved,
    options: &PlanOptions,
    parts: &KeyParts<'_>,
    roles: &[(&str, &RoleSpec)],
    key_id: String,
) -> Result<Vec<Step>, DurationError> {
    let ttls = &options.ttls;
    let last = roles.len() - 1;
    let role_duration = |i: usize, role: &RoleSpec| -> Result<Sourced<Duration>, DurationError> {
        let asked = if i == last {
            options.duration.clone().or_else(|| role.duration.clone())
        } else {
            role.duration.clone()
        };
        checked(
            asked.unwrap_or_else(|| ttls.assume_role.clone()),
            MAX_ASSUME_ROLE,
        )
    };
    let first_duration = role_duration(0, roles[0].1)?;
    let stored_key = matches!(resolved.source, BaseSource::StoredKey);
    // Session-token credentials can only assume roles for up to an hour; longer roles are
    // assumed straight from the key, with the MFA code on the AssumeRole itself.
    let mfa_session = stored_key
        && parts.serial.is_some()
        && !options.no_session
        && first_duration.value <= CHAIN_CAP;

    let mut steps = Vec::new();
    let mut upstream = key_id;
    if mfa_session {
        let duration = checked(ttls.chained_session_token.clone(), MAX_SESSION_TOKEN)?;
        let key = session_token_key(parts, &upstream, &duration);
        steps.push(Step {
            kind: StepKind::GetSessionToken { mfa: true },
            profile: resolved.base.clone(),
            cache_key: Some(key.clone()),
            duration: Some(duration),
            notes: vec!["the MFA session: shared by every role reached through this key".into()],
        });
        upstream = key;
    }

    let base_is_role = base_is_role(&resolved.source);
    for (i, (profile, role)) in roles.iter().enumerate() {
        let duration = if i == 0 {
            first_duration.clone()
        } else {
            role_duration(i, role)?
        };
        let call = RoleCall {
            profile,
            role,
            duration,
            chained: i > 0 || base_is_role,
            after_mfa_session: mfa_session,
            mfa: i == 0 && parts.serial.is_some() && !mfa_session,
        };
        let step = assume_role_step(call, parts, &upstream, options.no_session);
        upstream = step
            .cache_key
            .clone()
            .expect("an AssumeRole step is cached");
        steps.push(step);
    }
    Ok(steps)
}

/// Whether the chain's first credentials are a role's (instance, container, web identity,
/// SAML, SSO), which makes every AssumeRole after them a chained one.
fn base_is_role(source: &BaseSource) -> bool {
    match source {
        BaseSource::StoredKey => false,
        BaseSource::CredentialSource(kind) => kind.value != CredentialSourceKind::Environment,
        // A console session's credentials are session credentials too: roles assumed with
        // them are capped at an hour, as STS caps chained roles.
        BaseSource::Process(_)
        | BaseSource::WebIdentity { .. }
        | BaseSource::Sso { .. }
        | BaseSource::LoginSession(_) => true,
    }
}

/// One AssumeRole of the chain, as [`role_steps`] decided it.
struct RoleCall<'a> {
    profile: &'a str,
    role: &'a RoleSpec,
    duration: Sourced<Duration>,
    /// Assumed with role credentials.
    chained: bool,
    /// Assumed with the MFA session's credentials.
    after_mfa_session: bool,
    /// Carries the MFA code itself.
    mfa: bool,
}

/// The AssumeRole step of `call`, assumed with the credentials cached under `upstream`;
/// durations AWS would cap are capped here, with a note saying so.
fn assume_role_step(
    call: RoleCall<'_>,
    parts: &KeyParts<'_>,
    upstream: &str,
    no_session: bool,
) -> Step {
    let RoleCall {
        profile,
        role,
        mut duration,
        chained,
        after_mfa_session,
        mfa,
    } = call;
    let mut notes = Vec::new();
    let cap_reason = if chained {
        Some("chained role sessions")
    } else if after_mfa_session {
        Some("roles assumed with session-token credentials")
    } else {
        None
    };
    if let Some(reason) = cap_reason
        && duration.value > CHAIN_CAP
    {
        notes.push(format!(
            "{reason} are capped at 1h by AWS; {} asked for {} ({})",
            profile,
            duration::display(duration.value),
            duration.origin
        ));
        duration = Sourced::new(CHAIN_CAP, duration.origin);
    }
    // Only a stored key has an MFA session to skip; a role's credentials (SSO, a console
    // session) carry the code on the AssumeRole whatever its length.
    if mfa && !no_session && !chained {
        notes.push(format!(
            "longer than 1h ({}): assumed straight from the key with MFA, asking for a code at each mint",
            duration::display(duration.value)
        ));
    }
    let key = cache_key(&[
        upstream,
        "AssumeRole",
        &role.arn.value,
        role.external_id.as_ref().map_or("-", |v| v.value.as_str()),
        role.session_name.as_ref().map_or("-", |v| v.value.as_str()),
        if mfa {
            parts.serial.unwrap_or("-")
        } else {
            "-"
        },
        &duration.value.as_secs().to_string(),
        role.partition(),
        parts.endpoint,
        &tags_text(role),
    ]);
    Step {
        kind: StepKind::AssumeRole {
            role: Box::new(role.clone()),
            mfa,
            chained,
        },
        profile: profile.to_owned(),
        cache_key: Some(key),
        duration: Some(duration),
        notes,
    }
}

/// Session tags, transitive keys and source identity, for the cache key.
fn tags_text(role: &RoleSpec) -> String {
    let tags = role.session_tags.as_ref().map_or(String::new(), |t| {
        t.value
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    });
    let transitive = role
        .transitive_tags
        .as_ref()
        .map_or(String::new(), |t| t.value.join(","));
    let identity = role
        .source_identity
        .as_ref()
        .map_or("", |s| s.value.as_str());
    format!("{tags}|{transitive}|{identity}")
}

fn finish(resolved: &Resolved, ttls: &Ttls, mut steps: Vec<Step>) -> Plan {
    let policy = resolved.session_policy.clone();
    // A narrowed session gets a key of its own; without a policy every key stays as it was,
    // so the sessions vaults already hold stay valid.
    if let Some(policy) = &policy
        && let Some(last) = steps.last_mut()
        && matches!(
            last.kind,
            StepKind::AssumeRole { .. } | StepKind::WebIdentity { .. }
        )
        && let Some(key) = &last.cache_key
    {
        last.cache_key = Some(cache_key(&[key, "policy", &policy.digest()]));
    }
    Plan {
        policy,
        profile: resolved.name.clone(),
        base: resolved.base.clone(),
        steps,
        region: resolved.region.clone(),
        mfa_serial: resolved.mfa_serial.clone(),
        mfa_process: resolved.mfa_process.clone(),
        min_ttl: ttls.min_ttl.clone(),
    }
}

fn checked(d: Sourced<Duration>, max: Duration) -> Result<Sourced<Duration>, DurationError> {
    let reason = if d.value < MIN_DURATION {
        "STS sessions last at least 15m (900s)"
    } else if d.value > max {
        if max == MAX_ASSUME_ROLE {
            "AssumeRole sessions last at most 12h"
        } else {
            "GetSessionToken sessions last at most 36h"
        }
    } else {
        return Ok(d);
    };
    Err(DurationError {
        value: duration::display(d.value),
        origin: d.origin,
        reason: reason.to_owned(),
    })
}

/// `cn-north-1` → `aws-cn`; `us-gov-west-1` → `aws-us-gov`; anything else → `aws`.
pub fn partition_of(region: Option<&str>) -> &'static str {
    match region {
        Some(r) if r.starts_with("cn-") => "aws-cn",
        Some(r) if r.starts_with("us-gov-") => "aws-us-gov",
        Some(r) if r.starts_with("us-iso-") => "aws-iso",
        Some(r) if r.starts_with("us-isob-") => "aws-iso-b",
        _ => "aws",
    }
}

fn cache_key(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..16])
}

#[cfg(test)]
mod tests;
