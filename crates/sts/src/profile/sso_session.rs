//! IAM Identity Center sign-ins as the config file describes them: `[sso-session NAME]`
//! sections, a profile's SSO keys (`sso_session`, or the legacy `sso_start_url` +
//! `sso_region`, with `sso_account_id` + `sso_role_name`), checked as the SDKs check them,
//! and the sign-in `vault sso login|logout NAME` means.

use crate::config::ConfigFile;
use crate::origin::{Origin, Sourced};

use super::checks::is_account_id;
use super::error::ProfileError;
use super::read::Reader;

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
pub(super) type SsoTarget = (Sourced<String>, Sourced<String>);

/// The sign-in a profile names (`sso_session`, or legacy `sso_start_url` + `sso_region`), and
/// the account and role when it names one. `None` for profiles without SSO keys.
pub(super) fn sso_of(
    reader: &Reader<'_>,
    profile: &str,
) -> Result<Option<(SsoSession, Option<SsoTarget>)>, ProfileError> {
    let keys = SsoKeys {
        session_name: reader.get(profile, "sso_session")?,
        start_url: reader.get(profile, "sso_start_url")?,
        region: reader.get(profile, "sso_region")?,
        account: reader.get(profile, "sso_account_id")?,
        role: reader.get(profile, "sso_role_name")?,
    };
    if keys.session_name.is_none()
        && keys.start_url.is_none()
        && keys.account.is_none()
        && keys.role.is_none()
    {
        return Ok(None);
    }
    let sso = match &keys.session_name {
        Some(name) => named_session(reader.config, profile, name, &keys)?,
        None => legacy_session(profile, &keys)?,
    };
    let target = target_of(profile, keys.account, keys.role)?;
    Ok(Some((sso, target)))
}

/// A profile's SSO keys, each read through `include_profile`.
struct SsoKeys {
    session_name: Option<Sourced<String>>,
    start_url: Option<Sourced<String>>,
    region: Option<Sourced<String>>,
    account: Option<Sourced<String>>,
    role: Option<Sourced<String>>,
}

/// A key of `profile` that is not valid.
fn invalid(profile: &str, key: &'static str, origin: &Origin, reason: String) -> ProfileError {
    ProfileError::Invalid {
        key,
        profile: profile.to_owned(),
        origin: origin.clone(),
        reason,
    }
}

/// The `[sso-session]` section a profile's `sso_session` names, which the profile's own SSO
/// keys must not contradict.
fn named_session(
    config: &ConfigFile,
    profile: &str,
    name: &Sourced<String>,
    keys: &SsoKeys,
) -> Result<SsoSession, ProfileError> {
    let session = sso_session(config, &name.value).map_err(|e| match e {
        ProfileError::SsoSession { reason, .. } if !config.has_sso_session(&name.value) => {
            invalid(profile, "sso_session", &name.origin, reason)
        }
        other => other,
    })?;
    // The SDKs refuse a profile whose own SSO keys disagree with its session.
    for (mine, theirs, key) in [
        (&keys.start_url, &session.start_url, "sso_start_url"),
        (&keys.region, &session.region, "sso_region"),
    ] {
        if let Some(mine) = mine
            && mine.value.trim() != theirs.value
        {
            return Err(invalid(
                profile,
                key,
                &mine.origin,
                format!(
                    "{:?} contradicts sso-session {} ({}), which says {:?}; remove it from the profile",
                    mine.value, name.value, theirs.origin, theirs.value
                ),
            ));
        }
    }
    Ok(session)
}

/// The legacy form: `sso_start_url` and `sso_region` in the profile itself.
fn legacy_session(profile: &str, keys: &SsoKeys) -> Result<SsoSession, ProfileError> {
    let Some(start_url) = &keys.start_url else {
        let (key, origin) = match (&keys.account, &keys.role) {
            (Some(a), _) => ("sso_account_id", &a.origin),
            (_, Some(r)) => ("sso_role_name", &r.origin),
            _ => unreachable!("checked above"),
        };
        return Err(invalid(
            profile,
            key,
            origin,
            "it needs sso_session (naming an [sso-session] section) or sso_start_url and sso_region".into(),
        ));
    };
    let Some(region) = &keys.region else {
        return Err(invalid(
            profile,
            "sso_start_url",
            &start_url.origin,
            "the legacy SSO form needs sso_region too (or use sso_session, which can refresh)"
                .into(),
        ));
    };
    Ok(SsoSession {
        key: start_url.value.trim().to_owned(),
        session: None,
        start_url: Sourced::new(start_url.value.trim().to_owned(), start_url.origin.clone()),
        region: Sourced::new(region.value.trim().to_owned(), region.origin.clone()),
        scopes: Vec::new(),
    })
}

/// The account and role an SSO profile signs in to: both or neither.
fn target_of(
    profile: &str,
    account: Option<Sourced<String>>,
    role: Option<Sourced<String>>,
) -> Result<Option<SsoTarget>, ProfileError> {
    match (account, role) {
        (Some(account), Some(role)) => {
            let digits = account.value.trim();
            if !is_account_id(digits) {
                return Err(invalid(
                    profile,
                    "sso_account_id",
                    &account.origin,
                    format!("{:?} is not a 12-digit AWS account id", account.value),
                ));
            }
            Ok(Some((
                Sourced::new(digits.to_owned(), account.origin),
                Sourced::new(role.value.trim().to_owned(), role.origin),
            )))
        }
        (Some(account), None) => Err(invalid(
            profile,
            "sso_account_id",
            &account.origin,
            "it needs sso_role_name too: the role to sign in to in that account".into(),
        )),
        (None, Some(role)) => Err(invalid(
            profile,
            "sso_role_name",
            &role.origin,
            "it needs sso_account_id too: the account the role is in".into(),
        )),
        (None, None) => Ok(None),
    }
}

/// The sign-in, account id and role name a profile's own SSO keys name (read through
/// `include_profile`, checked as for `exec`); `None` when it names no account and role.
/// `vault sso accounts` and `populate` use it to find the profiles a role already has.
pub fn sso_role_of(
    config: &ConfigFile,
    profile: &str,
) -> Result<Option<(SsoSession, String, String)>, ProfileError> {
    let reader = Reader { config };
    Ok(match sso_of(&reader, profile)? {
        Some((sso, Some((account, role)))) => Some((sso, account.value, role.value)),
        _ => None,
    })
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
