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

// Profile errors carry the file and line they are about; they are built once, on the way out.
#![allow(clippy::result_large_err)]

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::ConfigFile;
use crate::duration;

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A key in the config file (line when known).
    Config {
        path: PathBuf,
        line: Option<usize>,
        profile: String,
    },
    /// An environment variable.
    Env(&'static str),
    /// A command-line flag.
    Flag(&'static str),
    /// vault's default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Config {
                path,
                line: Some(line),
                ..
            } => write!(f, "{}:{line}", path.display()),
            Origin::Config { path, .. } => write!(f, "{}", path.display()),
            Origin::Env(name) => write!(f, "${name}"),
            Origin::Flag(name) => write!(f, "{name}"),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// A value and its origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub origin: Origin,
}

impl<T> Sourced<T> {
    pub fn new(value: T, origin: Origin) -> Self {
        Sourced { value, origin }
    }
}

/// Problems with profiles, each naming the profile and, where it helps, the file and line.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("profile {name:?} is not in {config} and has no stored key in the vault")]
    Unknown { name: String, config: PathBuf },
    #[error("source_profile cycle: {0}")]
    Cycle(String),
    #[error("include_profile cycle: {0}")]
    IncludeCycle(String),
    #[error(
        "source_profile {missing:?} of profile {profile:?} ({origin}) is not in the config file and has no stored key"
    )]
    MissingSource {
        missing: String,
        profile: String,
        origin: Origin,
    },
    #[error(
        "include_profile {missing:?} of profile {profile:?} ({origin}) is not in the config file"
    )]
    MissingInclude {
        missing: String,
        profile: String,
        origin: Origin,
    },
    #[error("profile {profile:?} needs a stored key, and the vault has none for it")]
    NoStoredKey { profile: String },
    #[error(
        "profile {profile:?} sets role_arn ({origin}) but no source_profile, so there are no credentials to assume it with"
    )]
    NoSource { profile: String, origin: Origin },
    #[error("sso-session {session:?} ({origin}): {reason}")]
    SsoSession {
        session: String,
        origin: Origin,
        reason: String,
    },
    #[error("{key} of profile {profile:?} ({origin}) is not valid: {reason}")]
    Invalid {
        key: &'static str,
        profile: String,
        origin: Origin,
        reason: String,
    },
}

/// Values that override the config file (environment and flags).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub region: Option<Sourced<String>>,
    pub mfa_serial: Option<Sourced<String>>,
    pub role_arn: Option<Sourced<String>>,
    pub role_session_name: Option<Sourced<String>>,
}

impl Overrides {
    /// aws-vault's environment overrides, read through `get`.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Overrides {
        let pick = |names: &[&'static str]| {
            names.iter().find_map(|name| {
                get(name)
                    .filter(|v| !v.is_empty())
                    .map(|v| Sourced::new(v, Origin::Env(name)))
            })
        };
        Overrides {
            region: pick(&["AWS_REGION", "AWS_DEFAULT_REGION"]),
            mfa_serial: pick(&["AWS_MFA_SERIAL"]),
            role_arn: pick(&["AWS_ROLE_ARN"]),
            role_session_name: pick(&["AWS_ROLE_SESSION_NAME"]),
        }
    }
}

/// Endpoint overrides in force for the services vault calls. aws-config resolves and applies
/// them for the actual calls; this copy is for cache keys, messages and `--explain`.
#[derive(Clone, Debug, Default)]
pub struct Endpoints {
    pub sts: Option<Sourced<String>>,
    pub iam: Option<Sourced<String>>,
    /// The SSO portal (role credentials, accounts, logout).
    pub sso: Option<Sourced<String>>,
    /// The SSO OIDC service (client registration, tokens; the browser's authorize page).
    pub sso_oidc: Option<Sourced<String>>,
}

impl Endpoints {
    /// As the SDKs read them: `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`, then the
    /// profile's `endpoint_url`, none of them under `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`.
    pub fn from_env(
        config: &ConfigFile,
        profile: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Endpoints {
        if get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v == "true") {
            return Endpoints::default();
        }
        let of = |service_env: &'static str| {
            [service_env, "AWS_ENDPOINT_URL"]
                .into_iter()
                .find_map(|name| {
                    get(name)
                        .filter(|v| !v.is_empty())
                        .map(|url| Sourced::new(url, Origin::Env(name)))
                })
                .or_else(|| {
                    config.get(profile, "endpoint_url").map(|(url, line)| {
                        Sourced::new(
                            url.to_owned(),
                            Origin::Config {
                                path: config.path.clone(),
                                line,
                                profile: profile.to_owned(),
                            },
                        )
                    })
                })
        };
        Endpoints {
            sts: of("AWS_ENDPOINT_URL_STS"),
            iam: of("AWS_ENDPOINT_URL_IAM"),
            sso: of("AWS_ENDPOINT_URL_SSO"),
            sso_oidc: of("AWS_ENDPOINT_URL_SSO_OIDC"),
        }
    }
}

/// The characters STS allows in session names (role sessions, federation tokens): `[\w+=,.@-]`.
pub fn session_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// A role to assume, as one profile describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleSpec {
    pub arn: Sourced<String>,
    pub external_id: Option<Sourced<String>>,
    pub session_name: Option<Sourced<String>>,
    pub duration: Option<Sourced<Duration>>,
    /// `session_tags = k=v,k2=v2`
    pub session_tags: Option<Sourced<Vec<(String, String)>>>,
    /// `transitive_session_tags = k,k2`
    pub transitive_tags: Option<Sourced<Vec<String>>>,
    pub source_identity: Option<Sourced<String>>,
}

impl RoleSpec {
    /// The partition part of the ARN (`aws`, `aws-cn`, `aws-us-gov`, ...).
    pub fn partition(&self) -> &str {
        self.arn.value.split(':').nth(1).unwrap_or("aws")
    }

    /// The role name (last path segment), for messages.
    pub fn name(&self) -> &str {
        self.arn.value.rsplit('/').next().unwrap_or(&self.arn.value)
    }
}

/// One profile of the chain and the role it adds, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub profile: String,
    pub role: Option<RoleSpec>,
}

/// `credential_source` values (the AWS CLI's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialSourceKind {
    Environment,
    Ec2InstanceMetadata,
    EcsContainer,
}

impl CredentialSourceKind {
    pub fn name(self) -> &'static str {
        match self {
            CredentialSourceKind::Environment => "Environment",
            CredentialSourceKind::Ec2InstanceMetadata => "Ec2InstanceMetadata",
            CredentialSourceKind::EcsContainer => "EcsContainer",
        }
    }
}

/// The scope that lets a sign-in list accounts and get role credentials.
pub const DEFAULT_SSO_SCOPE: &str = "sso:account:access";

/// An IAM Identity Center sign-in, as an `[sso-session]` section (or a legacy profile)
/// describes it. Every profile naming the same session shares one sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoSession {
    /// The vault's name for its tokens: the session name, or the start URL (legacy).
    pub key: String,
    /// The sso-session name; `None` for the legacy form, which gets no refresh token.
    pub session: Option<String>,
    pub start_url: Sourced<String>,
    pub region: Sourced<String>,
    /// `sso_registration_scopes` (empty for the legacy form).
    pub scopes: Vec<String>,
}

impl SsoSession {
    /// Whether its tokens can be refreshed without a browser.
    pub fn refreshable(&self) -> bool {
        self.session.is_some()
    }

    /// How messages name it: `sso-session corp`, or the start URL.
    pub fn label(&self) -> String {
        match &self.session {
            Some(name) => format!("sso-session {name}"),
            None => self.start_url.value.clone(),
        }
    }
}

/// The config file itself, for problems no one line has.
fn whole_file(config: &ConfigFile) -> Origin {
    Origin::Config {
        path: config.path.clone(),
        line: None,
        profile: String::new(),
    }
}

/// The `[sso-session NAME]` section, checked as the SDKs check it.
pub fn sso_session(config: &ConfigFile, name: &str) -> Result<SsoSession, ProfileError> {
    let origin_of = |line: Option<usize>| Origin::Config {
        path: config.path.clone(),
        line,
        profile: format!("sso-session {name}"),
    };
    if !config.has_sso_session(name) {
        return Err(ProfileError::SsoSession {
            session: name.to_owned(),
            origin: whole_file(config),
            reason: format!(
                "there is no [sso-session {name}] section in the file; add one with sso_start_url and sso_region"
            ),
        });
    }
    let header = origin_of(config.sso_session_line(name));
    let required = |key: &'static str| -> Result<Sourced<String>, ProfileError> {
        match config.sso_session_get(name, key) {
            Some((value, line)) if !value.trim().is_empty() => {
                Ok(Sourced::new(value.trim().to_owned(), origin_of(line)))
            }
            _ => Err(ProfileError::SsoSession {
                session: name.to_owned(),
                origin: header.clone(),
                reason: format!("{key} is missing; add `{key} = ...` to the section"),
            }),
        }
    };
    let start_url = required("sso_start_url")?;
    let region = required("sso_region")?;
    let scopes = match config.sso_session_get(name, "sso_registration_scopes") {
        Some((value, _)) => value
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        None => vec![DEFAULT_SSO_SCOPE.to_owned()],
    };
    Ok(SsoSession {
        key: name.to_owned(),
        session: Some(name.to_owned()),
        start_url,
        region,
        scopes,
    })
}

/// An SSO profile's account id and role name.
type SsoTarget = (Sourced<String>, Sourced<String>);

/// The sign-in a profile names (`sso_session`, or legacy `sso_start_url` + `sso_region`), and
/// the account and role when it names one. `None` for profiles without SSO keys.
fn sso_of(
    reader: &Reader<'_>,
    profile: &str,
) -> Result<Option<(SsoSession, Option<SsoTarget>)>, ProfileError> {
    let session_name = reader.get(profile, "sso_session")?;
    let start_url = reader.get(profile, "sso_start_url")?;
    let region = reader.get(profile, "sso_region")?;
    let account = reader.get(profile, "sso_account_id")?;
    let role = reader.get(profile, "sso_role_name")?;
    if session_name.is_none() && start_url.is_none() && account.is_none() && role.is_none() {
        return Ok(None);
    }
    let invalid = |key: &'static str, origin: &Origin, reason: String| ProfileError::Invalid {
        key,
        profile: profile.to_owned(),
        origin: origin.clone(),
        reason,
    };
    let sso = match &session_name {
        Some(name) => {
            let session = sso_session(reader.config, &name.value).map_err(|e| match e {
                ProfileError::SsoSession { reason, .. }
                    if !reader.config.has_sso_session(&name.value) =>
                {
                    invalid("sso_session", &name.origin, reason)
                }
                other => other,
            })?;
            // The SDKs refuse a profile whose own SSO keys disagree with its session.
            for (mine, theirs, key) in [
                (&start_url, &session.start_url, "sso_start_url"),
                (&region, &session.region, "sso_region"),
            ] {
                if let Some(mine) = mine
                    && mine.value.trim() != theirs.value
                {
                    return Err(invalid(
                        key,
                        &mine.origin,
                        format!(
                            "{:?} contradicts sso-session {} ({}), which says {:?}; remove it from the profile",
                            mine.value, name.value, theirs.origin, theirs.value
                        ),
                    ));
                }
            }
            session
        }
        None => {
            let Some(start_url) = start_url else {
                let (key, origin) = match (&account, &role) {
                    (Some(a), _) => ("sso_account_id", &a.origin),
                    (_, Some(r)) => ("sso_role_name", &r.origin),
                    _ => unreachable!("checked above"),
                };
                return Err(invalid(
                    key,
                    origin,
                    "it needs sso_session (naming an [sso-session] section) or sso_start_url and sso_region".into(),
                ));
            };
            let Some(region) = region else {
                return Err(invalid(
                    "sso_start_url",
                    &start_url.origin,
                    "the legacy SSO form needs sso_region too (or use sso_session, which can refresh)".into(),
                ));
            };
            SsoSession {
                key: start_url.value.trim().to_owned(),
                session: None,
                start_url: Sourced::new(start_url.value.trim().to_owned(), start_url.origin),
                region: Sourced::new(region.value.trim().to_owned(), region.origin),
                scopes: Vec::new(),
            }
        }
    };
    let target = match (account, role) {
        (Some(account), Some(role)) => {
            let digits = account.value.trim();
            if digits.len() != 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    "sso_account_id",
                    &account.origin,
                    format!("{:?} is not a 12-digit AWS account id", account.value),
                ));
            }
            Some((
                Sourced::new(digits.to_owned(), account.origin),
                Sourced::new(role.value.trim().to_owned(), role.origin),
            ))
        }
        (Some(account), None) => {
            return Err(invalid(
                "sso_account_id",
                &account.origin,
                "it needs sso_role_name too: the role to sign in to in that account".into(),
            ));
        }
        (None, Some(role)) => {
            return Err(invalid(
                "sso_role_name",
                &role.origin,
                "it needs sso_account_id too: the account the role is in".into(),
            ));
        }
        (None, None) => None,
    };
    Ok(Some((sso, target)))
}

/// The sign-in `name` means for `vault sso login|logout`: an `[sso-session NAME]`, else the
/// session of the profile NAME (followed down its `source_profile` chain).
pub fn sign_in_named(config: &ConfigFile, name: &str) -> Result<SsoSession, ProfileError> {
    if config.has_sso_session(name) {
        return sso_session(config, name);
    }
    let reader = Reader { config };
    let mut current = name.to_owned();
    let mut seen = Vec::new();
    while config.has_profile(&current) && !seen.contains(&current) {
        seen.push(current.clone());
        if let Some((sso, _)) = sso_of(&reader, &current)? {
            return Ok(sso);
        }
        match reader.get(&current, "source_profile")? {
            Some(next) => current = next.value,
            None => break,
        }
    }
    Err(ProfileError::SsoSession {
        session: name.to_owned(),
        origin: whole_file(config),
        reason: format!(
            "no [sso-session {name}] section and no profile {name:?} that signs in with SSO; sessions here: {}",
            match config.sso_session_names() {
                names if names.is_empty() => "none".to_owned(),
                names => names.join(", "),
            }
        ),
    })
}

/// Where the first credentials of a chain come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaseSource {
    /// A long-lived key pair in the vault.
    StoredKey,
    /// `credential_source`: the environment, the instance role, or the container role,
    /// through the SDK's own providers.
    CredentialSource(Sourced<CredentialSourceKind>),
    /// `web_identity_token_file` + `role_arn`: AssumeRoleWithWebIdentity (CI OIDC).
    WebIdentity {
        role: Box<RoleSpec>,
        token_file: Sourced<String>,
    },
    /// `credential_process`: an external program (SAML tools) prints credentials.
    Process(Sourced<String>),
    /// IAM Identity Center: a role's credentials from the SSO portal.
    Sso {
        sso: Box<SsoSession>,
        account_id: Sourced<String>,
        role_name: Sourced<String>,
    },
}

impl BaseSource {
    /// A digest of who the outside base credentials are, so sessions they minted are reused
    /// only for the same credentials: the environment's key id, the container or instance
    /// endpoint, or the web identity token. None for sources the vault itself identifies.
    pub fn fingerprint(&self, get: impl Fn(&str) -> Option<String>) -> Option<String> {
        use sha2::{Digest, Sha256};
        let material = match self {
            BaseSource::CredentialSource(kind) => match kind.value {
                CredentialSourceKind::Environment => get("AWS_ACCESS_KEY_ID")?,
                CredentialSourceKind::EcsContainer => [
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                ]
                .iter()
                .filter_map(|n| get(n))
                .collect::<Vec<_>>()
                .join("|"),
                CredentialSourceKind::Ec2InstanceMetadata => {
                    get("AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or_default()
                }
            },
            BaseSource::WebIdentity { token_file, .. } => {
                std::fs::read_to_string(&token_file.value).ok()?
            }
            BaseSource::StoredKey | BaseSource::Process(_) | BaseSource::Sso { .. } => {
                return None;
            }
        };
        Some(hex::encode(&Sha256::digest(material.as_bytes())[..12]))
    }
}

/// A profile resolved down to the stored key that backs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The requested profile.
    pub name: String,
    /// From the requested profile (first) down to the base.
    pub links: Vec<Link>,
    /// The profile whose credentials start the chain.
    pub base: String,
    /// Where those credentials come from.
    pub source: BaseSource,
    pub region: Option<Sourced<String>>,
    pub mfa_serial: Option<Sourced<String>>,
    pub mfa_process: Option<Sourced<String>>,
}

impl Resolved {
    /// The roles to assume, from the one closest to the key up to the requested profile's.
    pub fn roles(&self) -> impl Iterator<Item = (&str, &RoleSpec)> {
        self.links
            .iter()
            .rev()
            .filter_map(|l| l.role.as_ref().map(|r| (l.profile.as_str(), r)))
    }
}

/// Reads profiles of one config file, following `include_profile`.
struct Reader<'a> {
    config: &'a ConfigFile,
}

impl Reader<'_> {
    /// A key of a profile or of the profiles it includes.
    fn get(&self, profile: &str, key: &str) -> Result<Option<Sourced<String>>, ProfileError> {
        let mut seen = vec![profile.to_owned()];
        let mut current = profile.to_owned();
        loop {
            if let Some((value, line)) = self.config.get(&current, key) {
                return Ok(Some(Sourced::new(
                    value.to_owned(),
                    self.origin(&current, line),
                )));
            }
            let Some((include, line)) = self.config.get(&current, "include_profile") else {
                return Ok(None);
            };
            if !self.config.has_profile(include) {
                return Err(ProfileError::MissingInclude {
                    missing: include.to_owned(),
                    profile: current.clone(),
                    origin: self.origin(&current, line),
                });
            }
            if seen.iter().any(|s| s == include) {
                seen.push(include.to_owned());
                return Err(ProfileError::IncludeCycle(seen.join(" → ")));
            }
            seen.push(include.to_owned());
            current = include.to_owned();
        }
    }

    fn origin(&self, profile: &str, line: Option<usize>) -> Origin {
        Origin::Config {
            path: self.config.path.clone(),
            line,
            profile: profile.to_owned(),
        }
    }
}

/// Resolves `name`. `has_key` tells whether the vault holds a key pair for a profile.
pub fn resolve(
    config: &ConfigFile,
    name: &str,
    overrides: &Overrides,
    has_key: &dyn Fn(&str) -> bool,
) -> Result<Resolved, ProfileError> {
    let reader = Reader { config };
    if !config.has_profile(name) && !has_key(name) {
        return Err(ProfileError::Unknown {
            name: name.to_owned(),
            config: config.path.clone(),
        });
    }

    let mut links = Vec::new();
    let mut visited: Vec<String> = Vec::new();
    let mut current = name.to_owned();
    let (base, source) = loop {
        if visited.contains(&current) {
            visited.push(current);
            return Err(ProfileError::Cycle(visited.join(" → ")));
        }
        visited.push(current.clone());

        let is_requested = links.is_empty();
        let mut role_arn = reader.get(&current, "role_arn")?;
        if is_requested && let Some(arn) = &overrides.role_arn {
            role_arn = Some(arn.clone());
        }
        let source_profile = reader.get(&current, "source_profile")?;
        let credential_source = reader.get(&current, "credential_source")?;
        let process = reader.get(&current, "credential_process")?;
        let token_file = reader.get(&current, "web_identity_token_file")?;
        let sso = sso_of(&reader, &current)?;
        // The SDKs refuse a profile that names two sources of the credentials behind its role.
        if let (Some(sp), Some(cs)) = (&source_profile, &credential_source) {
            return Err(ProfileError::Invalid {
                key: "credential_source",
                profile: current,
                origin: cs.origin.clone(),
                reason: format!(
                    "the profile also sets source_profile ({}); it must name one source of credentials, not both",
                    sp.origin
                ),
            });
        }

        let role = match role_arn {
            Some(arn) => Some(role_spec(&reader, &current, arn, is_requested, overrides)?),
            None => None,
        };

        // A role assumed with a web identity token needs no other credentials.
        if let (Some(role), Some(token_file)) = (&role, &token_file) {
            let source = BaseSource::WebIdentity {
                role: Box::new(role.clone()),
                token_file: token_file.clone(),
            };
            links.push(Link {
                profile: current.clone(),
                role: None,
            });
            break (current, source);
        }
        if role.is_none()
            && let Some(cs) = &credential_source
        {
            return Err(ProfileError::Invalid {
                key: "credential_source",
                profile: current,
                origin: cs.origin.clone(),
                reason:
                    "it needs role_arn: it names where the credentials to assume the role come from"
                        .into(),
            });
        }
        let has_role = role.is_some();
        links.push(Link {
            profile: current.clone(),
            role,
        });

        if has_role && let Some(cs) = credential_source {
            let kind = match cs.value.as_str() {
                "Environment" => CredentialSourceKind::Environment,
                "Ec2InstanceMetadata" => CredentialSourceKind::Ec2InstanceMetadata,
                "EcsContainer" => CredentialSourceKind::EcsContainer,
                other => {
                    return Err(ProfileError::Invalid {
                        key: "credential_source",
                        profile: current,
                        origin: cs.origin,
                        reason: format!(
                            "{other:?} is not one of Environment, Ec2InstanceMetadata, EcsContainer"
                        ),
                    });
                }
            };
            break (
                current,
                BaseSource::CredentialSource(Sourced::new(kind, cs.origin)),
            );
        }
        // IAM Identity Center starts the chain here, unless the role names another source.
        if source_profile.is_none()
            && let Some((sso, target)) = sso
        {
            let Some((account_id, role_name)) = target else {
                let origin = sso.start_url.origin.clone();
                return Err(ProfileError::Invalid {
                    key: "sso_session",
                    profile: current,
                    origin,
                    reason: format!(
                        "the profile names a sign-in ({}) but no role; add sso_account_id and sso_role_name (or sign in with `vault sso login`)",
                        sso.label()
                    ),
                });
            };
            break (
                current,
                BaseSource::Sso {
                    sso: Box::new(sso),
                    account_id,
                    role_name,
                },
            );
        }
        match source_profile {
            // `source_profile = self`: this profile's own stored key.
            Some(src) if src.value == current => break (current, BaseSource::StoredKey),
            Some(src) => {
                if !config.has_profile(&src.value) && !has_key(&src.value) {
                    return Err(ProfileError::MissingSource {
                        missing: src.value,
                        profile: current,
                        origin: src.origin,
                    });
                }
                current = src.value;
            }
            None if has_key(&current) => break (current, BaseSource::StoredKey),
            None if process.is_some() => {
                let process = process.expect("checked");
                break (current, BaseSource::Process(process));
            }
            None if has_role => {
                let origin = links
                    .last()
                    .and_then(|l| l.role.as_ref())
                    .map(|r| r.arn.origin.clone())
                    .unwrap_or(Origin::Default);
                return Err(ProfileError::NoSource {
                    profile: current,
                    origin,
                });
            }
            None => break (current, BaseSource::StoredKey),
        }
    };
    if matches!(source, BaseSource::StoredKey) && !has_key(&base) {
        return Err(ProfileError::NoStoredKey { profile: base });
    }

    let nearest = |key: &str| -> Result<Option<Sourced<String>>, ProfileError> {
        for link in &links {
            if let Some(v) = reader.get(&link.profile, key)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    };
    let region = match &overrides.region {
        Some(r) => Some(r.clone()),
        None => nearest("region")?,
    };
    let mfa_serial = match &overrides.mfa_serial {
        Some(m) => Some(m.clone()),
        None => nearest("mfa_serial")?,
    };
    let mfa_process = nearest("mfa_process")?;
    if let Some(serial) = &mfa_serial {
        validate_mfa_serial(serial, name)?;
    }
    Ok(Resolved {
        name: name.to_owned(),
        links,
        base,
        source,
        region,
        mfa_serial,
        mfa_process,
    })
}

fn role_spec(
    reader: &Reader<'_>,
    profile: &str,
    arn: Sourced<String>,
    is_requested: bool,
    overrides: &Overrides,
) -> Result<RoleSpec, ProfileError> {
    validate_role_arn(&arn, profile)?;
    let mut session_name = reader.get(profile, "role_session_name")?;
    if is_requested && let Some(n) = &overrides.role_session_name {
        session_name = Some(n.clone());
    }
    if let Some(n) = &session_name {
        let ok = (2..=64).contains(&n.value.len()) && n.value.chars().all(session_name_char);
        if !ok {
            return Err(ProfileError::Invalid {
                key: "role_session_name",
                profile: profile.to_owned(),
                origin: n.origin.clone(),
                reason: "2 to 64 characters of letters, digits and _+=,.@-".into(),
            });
        }
    }
    let duration = match reader.get(profile, "duration_seconds")? {
        Some(d) => {
            let value = duration::parse(&d.value).map_err(|reason| ProfileError::Invalid {
                key: "duration_seconds",
                profile: profile.to_owned(),
                origin: d.origin.clone(),
                reason,
            })?;
            Some(Sourced::new(value, d.origin))
        }
        None => None,
    };
    let session_tags = match reader.get(profile, "session_tags")? {
        Some(tags) => {
            let mut pairs = Vec::new();
            for item in tags
                .value
                .split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
            {
                let Some((k, v)) = item.split_once('=') else {
                    return Err(ProfileError::Invalid {
                        key: "session_tags",
                        profile: profile.to_owned(),
                        origin: tags.origin,
                        reason: format!(
                            "{item:?} is not key=value (write session_tags = team=infra,env=lab)"
                        ),
                    });
                };
                pairs.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            Some(Sourced::new(pairs, tags.origin))
        }
        None => None,
    };
    let transitive_tags = reader.get(profile, "transitive_session_tags")?.map(|t| {
        Sourced::new(
            t.value
                .split(',')
                .map(|k| k.trim().to_owned())
                .filter(|k| !k.is_empty())
                .collect(),
            t.origin,
        )
    });
    Ok(RoleSpec {
        arn,
        external_id: reader.get(profile, "external_id")?,
        session_name,
        duration,
        session_tags,
        transitive_tags,
        source_identity: reader.get(profile, "source_identity")?,
    })
}

/// `arn:PARTITION:iam::ACCOUNT:role/NAME` (NAME may have a path).
fn validate_role_arn(arn: &Sourced<String>, profile: &str) -> Result<(), ProfileError> {
    let parts: Vec<&str> = arn.value.splitn(6, ':').collect();
    let problem = if arn
        .value
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        Some("it contains a control character or whitespace")
    } else if parts.len() != 6 || parts[0] != "arn" {
        Some("expected arn:aws:iam::123456789012:role/NAME")
    } else if !parts[1].starts_with("aws") {
        Some("unknown partition")
    } else if parts[2] != "iam" {
        Some("not an IAM ARN")
    } else if parts[4].len() != 12 || !parts[4].bytes().all(|b| b.is_ascii_digit()) {
        Some("the account id must be 12 digits")
    } else if !parts[5].starts_with("role/") || parts[5].len() <= "role/".len() {
        Some("expected role/NAME after the account id")
    } else {
        None
    };
    match problem {
        Some(reason) => Err(ProfileError::Invalid {
            key: "role_arn",
            profile: profile.to_owned(),
            origin: arn.origin.clone(),
            reason: format!("{:?} is not a valid role ARN: {reason}", arn.value),
        }),
        None => Ok(()),
    }
}

/// An MFA device ARN (`arn:aws:iam::ACCOUNT:mfa/NAME`) or a hardware serial (`GAHT12345678`).
fn validate_mfa_serial(serial: &Sourced<String>, profile: &str) -> Result<(), ProfileError> {
    let v = &serial.value;
    let ok = if v.starts_with("arn:") {
        v.contains(":mfa/") || v.contains(":u2f/")
    } else {
        (9..=256).contains(&v.len())
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "=,.@:/-".contains(c))
    };
    if ok {
        Ok(())
    } else {
        Err(ProfileError::Invalid {
            key: "mfa_serial",
            profile: profile.to_owned(),
            origin: serial.origin.clone(),
            reason: format!("{v:?} is not an MFA device ARN (arn:aws:iam::123456789012:mfa/NAME)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> (tempfile::TempDir, ConfigFile) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, text).unwrap();
        let config = ConfigFile::load(&path).unwrap();
        (dir, config)
    }

    const CHAIN: &str = "\
[default]
region = us-east-1
mfa_serial = arn:aws:iam::111111111111:mfa/default

[profile base]
region = eu-west-1
mfa_serial = arn:aws:iam::111111111111:mfa/alice

[profile lab]
source_profile = base
role_arn = arn:aws:iam::222222222222:role/lab
external_id = ext-1

[profile lab-admin]
source_profile = lab
role_arn = arn:aws:iam::333333333333:role/admin
role_session_name = alice

[profile loop-a]
source_profile = loop-b
role_arn = arn:aws:iam::222222222222:role/a
[profile loop-b]
source_profile = loop-a
role_arn = arn:aws:iam::222222222222:role/b

[profile plain]
";

    fn only(names: &'static [&'static str]) -> impl Fn(&str) -> bool {
        move |n| names.contains(&n)
    }

    #[test]
    fn chain_resolves_to_base_with_origins() {
        let (_d, c) = config(CHAIN);
        let r = resolve(&c, "lab-admin", &Overrides::default(), &only(&["base"])).unwrap();
        assert_eq!(r.base, "base");
        let names: Vec<&str> = r.links.iter().map(|l| l.profile.as_str()).collect();
        assert_eq!(names, ["lab-admin", "lab", "base"]);
        let roles: Vec<&str> = r.roles().map(|(p, _)| p).collect();
        assert_eq!(roles, ["lab", "lab-admin"]);
        assert_eq!(r.region.as_ref().unwrap().value, "eu-west-1");
        let mfa = r.mfa_serial.unwrap();
        assert!(mfa.value.ends_with("mfa/alice"));
        assert_eq!(mfa.origin.to_string(), format!("{}:7", c.path.display()));
        let lab = r.links[1].role.as_ref().unwrap();
        assert_eq!(lab.external_id.as_ref().unwrap().value, "ext-1");
    }

    #[test]
    fn default_does_not_leak() {
        let (_d, c) = config(CHAIN);
        let r = resolve(&c, "plain", &Overrides::default(), &only(&["plain"])).unwrap();
        assert!(r.mfa_serial.is_none());
        assert!(r.region.is_none());
    }

    #[test]
    fn overrides_win() {
        let (_d, c) = config(CHAIN);
        let o = Overrides::from_env(|n| match n {
            "AWS_DEFAULT_REGION" => Some("ap-south-1".into()),
            "AWS_ROLE_SESSION_NAME" => Some("ci-run".into()),
            _ => None,
        });
        let r = resolve(&c, "lab", &o, &only(&["base"])).unwrap();
        assert_eq!(r.region.unwrap().origin, Origin::Env("AWS_DEFAULT_REGION"));
        let role = r.links[0].role.as_ref().unwrap();
        assert_eq!(role.session_name.as_ref().unwrap().value, "ci-run");
    }

    #[test]
    fn errors_name_the_problem() {
        let (_d, c) = config(CHAIN);
        let none = only(&[]);
        assert!(matches!(
            resolve(&c, "nope", &Overrides::default(), &none),
            Err(ProfileError::Unknown { .. })
        ));
        let e = resolve(&c, "loop-a", &Overrides::default(), &none).unwrap_err();
        assert_eq!(
            e.to_string(),
            "source_profile cycle: loop-a → loop-b → loop-a"
        );
        assert!(matches!(
            resolve(&c, "lab", &Overrides::default(), &none),
            Err(ProfileError::NoStoredKey { .. })
        ));

        let (_d, c) = config(
            "[profile x]\nsource_profile = gone\nrole_arn = arn:aws:iam::123456789012:role/x\n\
             [profile bad]\nsource_profile = bad2\nrole_arn = arn:aws:iam::123:rol\n[profile bad2]\n\
             [profile slow]\nsource_profile = bad2\nrole_arn = arn:aws:iam::123456789012:role/x\nduration_seconds = 1h?\n",
        );
        let e = resolve(&c, "x", &Overrides::default(), &only(&["x"])).unwrap_err();
        assert!(e.to_string().contains("\"gone\""), "{e}");
        let e = resolve(&c, "bad", &Overrides::default(), &only(&["bad2"])).unwrap_err();
        assert!(e.to_string().contains("role_arn"), "{e}");
        assert!(e.to_string().contains(":6)"), "{e}");
        let e = resolve(&c, "slow", &Overrides::default(), &only(&["bad2"])).unwrap_err();
        assert!(e.to_string().contains("duration_seconds"), "{e}");

        // Ambiguous, as the SDKs see it; a NUL in an ARN.
        let (_d, c) = config(
            "[profile both]\nsource_profile = base\ncredential_source = Environment\n\
             role_arn = arn:aws:iam::123456789012:role/x\n[profile base]\n\
             [profile nul]\nsource_profile = base\nrole_arn = arn:aws:iam::123456789012:role/x\0y\n",
        );
        let e = resolve(&c, "both", &Overrides::default(), &only(&["base"])).unwrap_err();
        assert!(e.to_string().contains("not both"), "{e}");
        let e = resolve(&c, "nul", &Overrides::default(), &only(&["base"])).unwrap_err();
        assert!(e.to_string().contains("control character"), "{e}");
    }

    #[test]
    fn include_profile_fills_gaps() {
        let (_d, c) = config(
            "[profile common]\nregion = eu-central-1\nmfa_serial = arn:aws:iam::123456789012:mfa/a\n\
             [profile lab]\ninclude_profile = common\nsource_profile = base\n\
             role_arn = arn:aws:iam::123456789012:role/lab\n[profile base]\n",
        );
        let r = resolve(&c, "lab", &Overrides::default(), &only(&["base"])).unwrap();
        assert_eq!(r.region.unwrap().value, "eu-central-1");
        assert!(r.mfa_serial.is_some());
    }

    #[test]
    fn self_source_and_vault_only_profiles() {
        let (_d, c) = config(
            "[profile me]\nsource_profile = me\nrole_arn = arn:aws:iam::123456789012:role/x\n",
        );
        let r = resolve(&c, "me", &Overrides::default(), &only(&["me"])).unwrap();
        assert_eq!(r.base, "me");
        assert_eq!(r.links.len(), 1);
        assert_eq!(r.roles().count(), 1);
        let r = resolve(&c, "ghost", &Overrides::default(), &only(&["ghost"])).unwrap();
        assert_eq!(r.base, "ghost");
        assert_eq!(r.roles().count(), 0);
    }
}

/// Fuzz target (see `vault_fuzz`): any bytes as the AWS config file; every profile in it
/// resolves or gives an error, and each resolved one plans or gives an error: no panic.
#[cfg(test)]
#[test]
fn fuzz_config_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    let seeds: &[&[u8]] = &[
        b"[profile base]\nregion = eu-west-1\nmfa_serial = arn:aws:iam::123456789012:mfa/a\n\
          [profile lab]\nsource_profile = base\nrole_arn = arn:aws:iam::123456789012:role/lab\n\
          duration_seconds = 1h\nsession_tags = a=b,c=d\ntransitive_session_tags = a\n",
        b"[default]\nregion = us-east-1\n[profile ci]\nrole_arn = arn:aws:iam::123456789012:role/ci\n\
          web_identity_token_file = /nonexistent\n[profile sr]\ncredential_source = Environment\n\
          role_arn = arn:aws:iam::123456789012:role/x\n",
        b"[profile a]\ninclude_profile = b\n[profile b]\ninclude_profile = a\nsource_profile = a\n\
          role_arn = arn:aws:iam::123456789012:role/x\n[services s]\nsts =\n  endpoint_url = http://x\n",
    ];
    let tokens: &[&[u8]] = &[
        b"\n[profile ",
        b"]\n",
        b"\nsource_profile = ",
        b"\nrole_arn = arn:aws:iam::123456789012:role/",
        b"\ninclude_profile = ",
        b"\nduration_seconds = ",
        b"\ncredential_process = ",
        b"\nmfa_serial = ",
        b"\n  continued = x",
        b"#",
        b";",
        b"=",
        b"\xff",
    ];
    let has_key = |n: &str| n.len().is_multiple_of(2);
    vault_fuzz::fuzz("config_resolution", seeds, tokens, |input| {
        std::fs::write(&path, input).unwrap();
        let Ok(config) = ConfigFile::load(&path) else {
            return;
        };
        for name in config.profile_names() {
            let Ok(resolved) = resolve(&config, &name, &Overrides::default(), &has_key) else {
                continue;
            };
            let options = crate::plan::PlanOptions {
                no_session: false,
                duration: None,
                ttls: crate::plan::Ttls::from_env(|_| None).unwrap(),
                endpoint: None,
                sso_endpoint: None,
                source_fingerprint: None,
            };
            let _ = crate::plan::plan(&resolved, &options);
            let _ = ConfigFile::load_for(&path, &name);
        }
    });
}
