//! The chain of one profile: from the requested profile down `source_profile` to the
//! profile whose credentials start it (a stored key, `credential_source`, a web identity
//! token, `credential_process`, an SSO sign-in, or a console session of `aws login`), with
//! the role each profile on the way adds and the region and MFA device that apply.

use crate::config::ConfigFile;
use crate::origin::{Origin, Sourced};
use crate::policy::{self, SessionPolicy};

use super::checks::validate_mfa_serial;
use super::error::ProfileError;
use super::read::Reader;
use super::role::{RoleSpec, role_spec};
use super::sso_session::{SsoSession, SsoTarget, sso_of};

/// Values that override the config file (environment and flags).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub region: Option<Sourced<String>>,
    pub mfa_serial: Option<Sourced<String>>,
    pub role_arn: Option<Sourced<String>>,
    pub role_session_name: Option<Sourced<String>>,
    /// `--policy`/`--policy-arn`: replace the profile's session policy keys entirely.
    pub session_policy: Option<SessionPolicy>,
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
            session_policy: None,
        }
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
    /// `login_session`: a console session of `aws login` (AWS CLI 2.32+), its credentials
    /// refreshed from the AWS CLI's token cache by aws-config's login provider.
    LoginSession(Box<LoginSession>),
}

/// A profile's `login_session`: whose console session it is, and the region of its
/// profile (where AWS Sign-In is asked for new credentials).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginSession {
    /// The ARN `aws login` wrote (`arn:aws:iam::123456789012:user/alice`), as written.
    pub arn: Sourced<String>,
    /// The `region` of the profile that holds `login_session`, if it sets one.
    pub region: Option<Sourced<String>>,
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
                crate::config::read_token_file(std::path::Path::new(&token_file.value))
                    .ok()?
                    .to_string()
            }
            BaseSource::StoredKey
            | BaseSource::Process(_)
            | BaseSource::Sso { .. }
            | BaseSource::LoginSession(_) => {
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
    /// What narrows the final session: the flags', else the requested profile's keys.
    pub session_policy: Option<SessionPolicy>,
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

impl Resolved {
    /// The profile whose stored key the chain starts from, when the vault has none for it.
    pub fn missing_key(&self, has_key: &dyn Fn(&str) -> bool) -> Option<&str> {
        (matches!(self.source, BaseSource::StoredKey) && !has_key(&self.base))
            .then_some(self.base.as_str())
    }
}

/// Resolves `name`. `has_key` tells whether the vault holds a key pair for a profile.
pub fn resolve(
    config: &ConfigFile,
    name: &str,
    overrides: &Overrides,
    has_key: &dyn Fn(&str) -> bool,
) -> Result<Resolved, ProfileError> {
    let resolved = resolve_without_key(config, name, overrides, has_key)?;
    if let Some(base) = resolved.missing_key(has_key) {
        return Err(ProfileError::NoStoredKey {
            profile: base.to_owned(),
        });
    }
    Ok(resolved)
}

/// [`resolve`], except that a stored key the vault lacks is not an error (see
/// [`Resolved::missing_key`]): `--explain` shows the plan when it is most needed.
pub fn resolve_without_key(
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
    let (links, base, source) = chain(&reader, name, overrides, has_key)?;

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
    let session_policy = match &overrides.session_policy {
        Some(p) => Some(p.clone()),
        None => session_policy(&reader, name)?,
    };
    Ok(Resolved {
        name: name.to_owned(),
        links,
        base,
        source,
        region,
        mfa_serial,
        mfa_process,
        session_policy,
    })
}

/// The requested profile's `vault_session_policy` (inline JSON or a file) and
/// `vault_session_policy_arns`, checked; named so no SDK reads them.
fn session_policy(
    reader: &Reader<'_>,
    profile: &str,
) -> Result<Option<SessionPolicy>, ProfileError> {
    let invalid = |key: &'static str, origin: &Origin, reason: String| ProfileError::Invalid {
        key,
        profile: profile.to_owned(),
        origin: origin.clone(),
        reason,
    };
    let document = match reader.get(profile, "vault_session_policy")? {
        Some(v) => {
            let doc = policy::document(&v.value)
                .map_err(|e| invalid("vault_session_policy", &v.origin, e))?;
            Some(Sourced::new(doc, v.origin))
        }
        None => None,
    };
    let arns = match reader.get(profile, "vault_session_policy_arns")? {
        Some(v) => policy::arns(&v.value)
            .map_err(|e| invalid("vault_session_policy_arns", &v.origin, e))?
            .into_iter()
            .map(|a| Sourced::new(a, v.origin.clone()))
            .collect(),
        None => Vec::new(),
    };
    Ok((document.is_some() || !arns.is_empty()).then_some(SessionPolicy { document, arns }))
}

/// Where the chain goes after one profile.
enum Next {
    /// This profile's credentials start the chain.
    Base(BaseSource),
    /// On to its `source_profile`.
    Source(String),
}

/// Follows `source_profile` from `name` down to the profile whose credentials start the
/// chain: the links on the way (requested profile first), that profile, and its source.
fn chain(
    reader: &Reader<'_>,
    name: &str,
    overrides: &Overrides,
    has_key: &dyn Fn(&str) -> bool,
) -> Result<(Vec<Link>, String, BaseSource), ProfileError> {
    let mut links = Vec::new();
    let mut visited: Vec<String> = Vec::new();
    let mut current = name.to_owned();
    loop {
        if visited.contains(&current) {
            visited.push(current);
            return Err(ProfileError::Cycle(visited.join(" → ")));
        }
        visited.push(current.clone());
        // Overrides from the environment and flags apply to the requested profile only.
        let requested = links.is_empty().then_some(overrides);
        match next_link(reader, &current, requested, has_key, &mut links)? {
            Next::Base(source) => return Ok((links, current, source)),
            Next::Source(profile) => current = profile,
        }
    }
}

/// The keys of one profile that say where its credentials come from.
struct SourceKeys {
    role: Option<RoleSpec>,
    source_profile: Option<Sourced<String>>,
    credential_source: Option<Sourced<String>>,
    process: Option<Sourced<String>>,
    token_file: Option<Sourced<String>>,
    sso: Option<(SsoSession, Option<SsoTarget>)>,
    login_session: Option<Sourced<String>>,
}

/// Reads [`SourceKeys`] of `profile` and refuses what the SDKs refuse; `requested` holds
/// the overrides when `profile` is the requested one.
fn source_keys(
    reader: &Reader<'_>,
    profile: &str,
    requested: Option<&Overrides>,
) -> Result<SourceKeys, ProfileError> {
    let mut role_arn = reader.get(profile, "role_arn")?;
    if let Some(arn) = requested.and_then(|o| o.role_arn.as_ref()) {
        role_arn = Some(arn.clone());
    }
    let source_profile = reader.get(profile, "source_profile")?;
    let credential_source = reader.get(profile, "credential_source")?;
    let process = reader.get(profile, "credential_process")?;
    let token_file = reader.get(profile, "web_identity_token_file")?;
    let sso = sso_of(reader, profile)?;
    let login_session = reader.get(profile, "login_session")?;
    if let Some(login) = &login_session
        && login.value.trim().is_empty()
    {
        return Err(ProfileError::Invalid {
            key: "login_session",
            profile: profile.to_owned(),
            origin: login.origin.clone(),
            reason: "it is empty; `aws login` writes the ARN of who signed in there".to_owned(),
        });
    }
    // The SDKs refuse a profile that names two sources of the credentials behind its role.
    if let (Some(sp), Some(cs)) = (&source_profile, &credential_source) {
        return Err(ProfileError::Invalid {
            key: "credential_source",
            profile: profile.to_owned(),
            origin: cs.origin.clone(),
            reason: format!(
                "the profile also sets source_profile ({}); it must name one source of credentials, not both",
                sp.origin
            ),
        });
    }
    let role = match role_arn {
        Some(arn) => {
            let session_name = requested.and_then(|o| o.role_session_name.as_ref());
            Some(role_spec(reader, profile, arn, session_name)?)
        }
        None => None,
    };
    Ok(SourceKeys {
        role,
        source_profile,
        credential_source,
        process,
        token_file,
        sso,
        login_session,
    })
}

/// Adds `current`'s link to `links` and says where the chain goes from there.
fn next_link(
    reader: &Reader<'_>,
    current: &str,
    requested: Option<&Overrides>,
    has_key: &dyn Fn(&str) -> bool,
    links: &mut Vec<Link>,
) -> Result<Next, ProfileError> {
    let keys = source_keys(reader, current, requested)?;
    // A role assumed with a web identity token needs no other credentials.
    if let (Some(role), Some(token_file)) = (&keys.role, &keys.token_file) {
        let source = BaseSource::WebIdentity {
            role: Box::new(role.clone()),
            token_file: token_file.clone(),
        };
        links.push(Link {
            profile: current.to_owned(),
            role: None,
        });
        return Ok(Next::Base(source));
    }
    // Both keys only make sense with a role (the SDKs' shared assume-role cases expect this
    // error for a token file without one).
    let needs_role = [
        (
            "web_identity_token_file",
            &keys.token_file,
            "the token is exchanged for that role's credentials (AssumeRoleWithWebIdentity)",
        ),
        (
            "credential_source",
            &keys.credential_source,
            "it names where the credentials to assume the role come from",
        ),
    ];
    for (key, value, why) in needs_role {
        if keys.role.is_none()
            && let Some(value) = value
        {
            return Err(ProfileError::Invalid {
                key,
                profile: current.to_owned(),
                origin: value.origin.clone(),
                reason: format!("it needs role_arn: {why}"),
            });
        }
    }
    let has_role = keys.role.is_some();
    links.push(Link {
        profile: current.to_owned(),
        role: keys.role,
    });

    if has_role && let Some(cs) = keys.credential_source {
        let kind = credential_source_kind(cs, current)?;
        return Ok(Next::Base(BaseSource::CredentialSource(kind)));
    }
    // IAM Identity Center starts the chain here, unless the role names another source.
    if keys.source_profile.is_none()
        && let Some((sso, target)) = keys.sso
    {
        if let Some(role) = links.last().and_then(|l| l.role.as_ref()) {
            return Err(role_beside_sign_in(current, role, &sso, target.as_ref()));
        }
        return sso_base(sso, target, current).map(Next::Base);
    }
    // A console session of `aws login` starts the chain here too (after SSO, before
    // credential_process and keys: aws-config's order), unless the role names another source.
    if keys.source_profile.is_none()
        && let Some(arn) = keys.login_session
    {
        if let Some(role) = links.last().and_then(|l| l.role.as_ref()) {
            return Err(role_beside_login_session(current, role, &arn));
        }
        let region = reader.get(current, "region")?;
        return Ok(Next::Base(BaseSource::LoginSession(Box::new(
            LoginSession { arn, region },
        ))));
    }
    match keys.source_profile {
        // `source_profile = self`: this profile's own stored key.
        Some(src) if src.value == current => Ok(Next::Base(BaseSource::StoredKey)),
        Some(src) => {
            if !reader.config.has_profile(&src.value) && !has_key(&src.value) {
                return Err(ProfileError::MissingSource {
                    missing: src.value,
                    profile: current.to_owned(),
                    origin: src.origin,
                });
            }
            Ok(Next::Source(src.value))
        }
        None if has_key(current) => Ok(Next::Base(BaseSource::StoredKey)),
        None if keys.process.is_some() => {
            let process = keys.process.expect("checked");
            Ok(Next::Base(BaseSource::Process(process)))
        }
        None if has_role => {
            let origin = links
                .last()
                .and_then(|l| l.role.as_ref())
                .map(|r| r.arn.origin.clone())
                .unwrap_or(Origin::Default);
            Err(ProfileError::NoSource {
                profile: current.to_owned(),
                origin,
            })
        }
        None => Ok(Next::Base(BaseSource::StoredKey)),
    }
}

/// A profile that would assume `role` from its own sign-in: refused as the AWS CLI and the
/// SDKs refuse it, with the sign-in's keys for the profile of their own that the fix needs.
fn role_beside_sign_in(
    profile: &str,
    role: &RoleSpec,
    sso: &SsoSession,
    target: Option<&SsoTarget>,
) -> ProfileError {
    let mut sign_in = match &sso.session {
        Some(name) => vec![format!("sso_session = {name}")],
        None => vec![
            format!("sso_start_url = {}", sso.start_url.value),
            format!("sso_region = {}", sso.region.value),
        ],
    };
    if let Some((account, role_name)) = target {
        sign_in.push(format!("sso_account_id = {}", account.value));
        sign_in.push(format!("sso_role_name = {}", role_name.value));
    }
    ProfileError::RoleBesideSignIn {
        profile: profile.to_owned(),
        console: false,
        origin: role.arn.origin.clone(),
        sign_in,
        role_arn: role.arn.value.clone(),
    }
}

/// A profile with `role_arn` and `login_session` but no `source_profile`: aws-config and
/// botocore take a role's credentials only from `source_profile` or `credential_source`, so
/// they refuse it; the fix is a profile of its own for the console session.
fn role_beside_login_session(
    profile: &str,
    role: &RoleSpec,
    login: &Sourced<String>,
) -> ProfileError {
    ProfileError::RoleBesideSignIn {
        profile: profile.to_owned(),
        console: true,
        origin: role.arn.origin.clone(),
        sign_in: vec![format!("login_session = {}", login.value)],
        role_arn: role.arn.value.clone(),
    }
}

/// A `credential_source` value as one of the names the AWS CLI knows.
fn credential_source_kind(
    cs: Sourced<String>,
    profile: &str,
) -> Result<Sourced<CredentialSourceKind>, ProfileError> {
    let kind = match cs.value.as_str() {
        "Environment" => CredentialSourceKind::Environment,
        "Ec2InstanceMetadata" => CredentialSourceKind::Ec2InstanceMetadata,
        "EcsContainer" => CredentialSourceKind::EcsContainer,
        other => {
            return Err(ProfileError::Invalid {
                key: "credential_source",
                profile: profile.to_owned(),
                origin: cs.origin,
                reason: format!(
                    "{other:?} is not one of Environment, Ec2InstanceMetadata, EcsContainer"
                ),
            });
        }
    };
    Ok(Sourced::new(kind, cs.origin))
}

/// An SSO profile as the start of a chain: it must name the account and role to sign in to.
fn sso_base(
    sso: SsoSession,
    target: Option<SsoTarget>,
    profile: &str,
) -> Result<BaseSource, ProfileError> {
    let Some((account_id, role_name)) = target else {
        let origin = sso.start_url.origin.clone();
        return Err(ProfileError::Invalid {
            key: "sso_session",
            profile: profile.to_owned(),
            origin,
            reason: format!(
                "the profile names a sign-in ({}) but no role; add sso_account_id and sso_role_name (or sign in with `vault sso login`)",
                sso.label()
            ),
        });
    };
    Ok(BaseSource::Sso {
        sso: Box::new(sso),
        account_id,
        role_name,
    })
}
