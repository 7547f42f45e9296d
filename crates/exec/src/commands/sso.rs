//! `vault sso login|logout|populate|accounts`: IAM Identity Center sign-ins by hand, and the
//! accounts and roles a sign-in reaches: listed (`accounts`), or a profile for each written
//! to the config file (`populate`).

mod accounts;
mod populate;

pub(crate) use populate::looks_like_a_region;

use std::collections::BTreeMap;

use chrono::Local;
use vault_sts::aws::Aws;
use vault_sts::config::ConfigFile;
use vault_sts::origin::{Origin, Sourced};
use vault_sts::plan::sso_owner;
use vault_sts::profile::{self, ProfileError, SsoSession};
use vault_sts::sso::{Sso, SsoAccount};

use crate::cli::{SignInArgs, SsoCommand, SsoLoginArgs, SsoLogoutArgs};
use crate::context::Context;
use crate::error::{CommandError, CommandResult, Kind, escaped, profile_error, sso_error};
use crate::prompt::Notices;
use crate::sso::{self as signin, Browser};

pub fn run(ctx: &Context, command: SsoCommand) -> CommandResult {
    match command {
        SsoCommand::Login(args) => login(ctx, args),
        SsoCommand::Logout(args) => logout(ctx, args),
        SsoCommand::Populate(args) => populate::populate(ctx, args),
        SsoCommand::Accounts(args) => accounts::accounts(ctx, args),
    }
}

/// The AWS side for a sign-in: the profile's endpoint settings when NAME is a profile.
fn aws_for(ctx: &Context, config: &ConfigFile, name: &str, sso: &SsoSession) -> Aws {
    let profile = match config.has_profile(name) {
        true => name,
        false => "default",
    };
    ctx.aws(config, profile, Some(sso.region.value.clone()))
}

/// A name that is neither a usable profile nor an sso-session of `config`.
fn not_a_sign_in(ctx: &Context, config: &ConfigFile, e: ProfileError) -> CommandError {
    let suggestion = match &e {
        ProfileError::Unknown { name, .. } => crate::pick::did_you_mean(config, &[], name),
        _ => None,
    };
    profile_error(e, &ctx.config_path, suggestion)
}

fn login(ctx: &Context, args: SsoLoginArgs) -> CommandResult {
    let config = ctx.load_config()?;
    let sso =
        profile::sign_in_named(&config, &args.name).map_err(|e| not_a_sign_in(ctx, &config, e))?;
    let mut vault = ctx.open_vault()?;
    if let Some(notice) = vault.create_if_missing()? {
        eprintln!("vault: {notice}");
    }
    let aws = aws_for(ctx, &config, &args.name, &sso);
    let options = signin::options(&args.sign_in, args.cli_cache, &ctx.settings);
    let browser = Browser::new(&args.sign_in, &ctx.settings);
    let info = Sso::new(&vault, &aws, &browser, &options)
        .telling(&Notices)
        .sign_in(&sso)
        .map_err(sso_error)?;
    let until = info
        .token_expires
        .map(|t| t.with_timezone(&Local).format("%H:%M").to_string())
        .unwrap_or_else(|| "?".into());
    let refresh = match info.refreshable {
        true => "it is refreshed without a browser while the session lasts",
        false if sso.refreshable() => "no refresh token was issued: sign in again when it ends",
        false => {
            "legacy profiles cannot refresh (use an [sso-session]): sign in again when it ends"
        }
    };
    eprintln!(
        "Signed in to {}; the token lasts until {until} and {refresh}.",
        escaped(&sso.label())
    );
    if info.cli_cache
        && let Some(dir) = signin::cli_cache_dir()
    {
        eprintln!(
            "The AWS CLI and SDKs share it through {}.",
            dir.join(vault_sts::sso::cli_cache_file_name(&sso.key))
                .display()
        );
    }
    Ok(())
}

fn logout(ctx: &Context, args: SsoLogoutArgs) -> CommandResult {
    let config = ctx.load_config()?;
    let vault = ctx.open_vault()?;
    let held = match vault.exists() {
        true => vault.sso_tokens()?,
        false => Vec::new(),
    };
    let sessions: Vec<SsoSession> = match &args.name {
        Some(name) => {
            vec![
                profile::sign_in_named(&config, name)
                    .map_err(|e| not_a_sign_in(ctx, &config, e))?,
            ]
        }
        // Every sign-in the vault holds, as it was recorded.
        None => held
            .iter()
            .map(|info| SsoSession {
                key: info.key.clone(),
                session: (info.key != info.start_url).then(|| info.key.clone()),
                start_url: Sourced::new(info.start_url.clone(), Origin::Default),
                region: Sourced::new(info.region.clone(), Origin::Default),
                scopes: info.scopes.clone(),
            })
            .collect(),
    };
    if sessions.is_empty() {
        eprintln!("No SSO sign-ins in the vault.");
        return Ok(());
    }
    let options = signin::options(&SignInArgs::default(), false, &ctx.settings);
    let browser = Browser::new(&SignInArgs::default(), &ctx.settings);
    for sso in sessions {
        let name = args.name.as_deref().unwrap_or(&sso.key);
        let aws = aws_for(ctx, &config, name, &sso);
        let signed_in = match held.iter().any(|h| h.key == sso.key) {
            true => Sso::new(&vault, &aws, &browser, &options)
                .telling(&Notices)
                .logout(&sso)
                .map_err(sso_error)?,
            false => false,
        };
        let owner = sso_owner(&sso.key);
        let removed = match vault.exists() {
            true => vault.remove_sessions(|s| s.source_profile == owner)?,
            false => 0,
        };
        let label = sso.label();
        let label = escaped(&label);
        match (signed_in, removed) {
            (false, 0) => eprintln!("Not signed in to {label}."),
            (_, n) => eprintln!(
                "Signed out of {label}{}.",
                match n {
                    0 => String::new(),
                    1 => "; removed 1 role session".to_owned(),
                    n => format!("; removed {n} role sessions"),
                }
            ),
        }
    }
    Ok(())
}

/// The sign-in a command is about: the one named, else the config file's only
/// `[sso-session]`. Several, or none, and the person has to say.
fn session_named(
    ctx: &Context,
    config: &ConfigFile,
    named: Option<String>,
    command: &str,
) -> CommandResult<String> {
    if let Some(name) = named {
        return Ok(name);
    }
    let mut sessions = config.sso_session_names();
    let path = ctx.config_path.display();
    match sessions.len() {
        1 => Ok(sessions.remove(0)),
        0 => {
            let mut hint = "add an [sso-session NAME] section with sso_start_url and sso_region \
                            (docs/sso.md shows one)"
                .to_owned();
            if command == "accounts" {
                hint.push_str(", or name a profile that signs in with SSO");
            }
            Err(CommandError::new(
                Kind::Config,
                format!(
                    "vault sso {command} needs an sso-session, and {path} has no [sso-session] section"
                ),
            )
            .hint(hint))
        }
        n => Err(CommandError::new(
            Kind::Usage,
            format!(
                "vault sso {command} needs an sso-session, and {path} has {n}: {}",
                sessions.join(", ")
            ),
        )
        .hint(format!("name one: `vault sso {command} {}`", sessions[0]))),
    }
}

/// The profiles of `config` for each (account id, role name) of the sign-ins `same` accepts,
/// sorted by name. A profile that assumes a role (`role_arn`) from there is a profile for
/// that other role; one the SDKs would refuse is no profile at all.
fn profiles_by_role(
    config: &ConfigFile,
    same: impl Fn(&SsoSession) -> bool,
) -> BTreeMap<(String, String), Vec<String>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for name in config.profile_names() {
        if config.get(&name, "role_arn").is_some() {
            continue;
        }
        if let Ok(Some((sso, account, role))) = profile::sso_role_of(config, &name)
            && same(&sso)
        {
            out.entry((account, role)).or_default().push(name);
        }
    }
    out
}

/// Every account and role `sso` reaches, signing in first when the vault holds no usable
/// token (and again, once, when the portal refuses the one it holds).
fn reachable(
    ctx: &Context,
    config: &ConfigFile,
    name: &str,
    sso: &SsoSession,
) -> CommandResult<Vec<SsoAccount>> {
    let mut vault = ctx.open_vault()?;
    if let Some(notice) = vault.create_if_missing()? {
        eprintln!("vault: {notice}");
    }
    let aws = aws_for(ctx, config, name, sso);
    let options = signin::options(&SignInArgs::default(), false, &ctx.settings);
    let browser = Browser::new(&SignInArgs::default(), &ctx.settings);
    Sso::new(&vault, &aws, &browser, &options)
        .telling(&Notices)
        .accounts(sso)
        .map_err(sso_error)
}
