//! `vault signin PROFILE` / `vault signout PROFILE`: the console sign-in `aws login` does
//! (a browser, PKCE, a DPoP key), with the session kept encrypted in the vault instead of a
//! plaintext file; the profile gets `login_session` as `aws login` writes it, so the AWS
//! CLI's config means the same to every tool. The flow itself is `vault_sts::signin`.

use chrono::Local;
use vault_sts::signin::{Console, SignInOptions};

use crate::cli::{SigninArgs, SignoutArgs};
use crate::context::Context;
use crate::error::{CommandError, CommandResult, Kind, escaped, login_error_for, signin_error};
use crate::prompt::{self, Notices};
use crate::sso::ConsolePage;

pub fn signin(ctx: &Context, args: SigninArgs) -> CommandResult {
    let profile = profile_of(ctx, args.profile.clone())?;
    let config = ctx.load_config()?;
    let keys_file =
        vault_sts::config::credentials_path(ctx.settings.shared_credentials_file.as_deref())
            .ok()
            .and_then(|path| vault_sts::config::CredentialsFile::load(&path).ok())
            .filter(|file| file.get(&profile, "aws_access_key_id").is_some())
            .map(|_| "an access key in the shared credentials file");
    if let Some(kind) = other_credentials(&config, &profile).or(keys_file) {
        return Err(CommandError::new(
            Kind::Config,
            format!(
                "profile {} already gets its credentials from {kind}",
                escaped(&profile)
            ),
        )
        .hint(format!(
            "sign in for a profile of its own (`vault signin {}-console`), or remove those keys from {}",
            escaped(&profile),
            ctx.config_path.display()
        )));
    }
    let region = args
        .region
        .clone()
        .or_else(|| config.get(&profile, "region").map(|(r, _)| r.to_owned()))
        .or_else(|| ctx.settings.region())
        .ok_or_else(|| {
            CommandError::new(
                Kind::Usage,
                format!("no AWS Sign-In region for profile {}", escaped(&profile)),
            )
            .hint("pass --region REGION (e.g. --region us-east-1), or set region in the profile")
        })?;
    // It goes into the Sign-In host name and, when the profile has none, the config file.
    if !super::sso::looks_like_a_region(&region) {
        return Err(CommandError::new(
            Kind::Usage,
            format!("{} is not an AWS region", escaped(&region)),
        )
        .hint("name one as the AWS CLI does, e.g. --region us-east-1"));
    }
    let page = ConsolePage::new(&ctx.settings, args.remote, args.no_browser);
    let remote = page.remote;
    if remote && !prompt::terminal_available() {
        return Err(CommandError::new(
            Kind::Usage,
            "the sign-in on another device needs a terminal here to type its code in",
        )
        .hint("run `vault signin` in a terminal (or with BROWSER set, on this machine)"));
    }
    let mut vault = ctx.open_vault()?;
    if let Some(notice) = vault.create_if_missing()? {
        eprintln!("vault: {notice}");
    }
    let aws_profile = match config.has_profile(&profile) {
        true => profile.as_str(),
        false => "default",
    };
    let aws = ctx.aws(&config, aws_profile, Some(region.clone()));
    let options = SignInOptions {
        region: region.clone(),
        remote,
        cli_cache: args.cli_cache,
        timeout: crate::sso::SIGN_IN_TIMEOUT,
    };
    let signed = vault_sts::signin::sign_in(&aws, &page, &page, &options)
        .map_err(|e| signin_error(e, &profile, remote))?;
    let arn = signed.info.key.clone();
    // The profile already names a session: only that identity may sign in for it.
    if let Some((existing, line)) = config.get(&profile, "login_session")
        && existing.trim() != arn
    {
        return Err(CommandError::new(
            Kind::User,
            format!(
                "you signed in as {}, but profile {} is for {} ({}{}); nothing was kept",
                escaped(&arn),
                escaped(&profile),
                escaped(existing.trim()),
                ctx.config_path.display(),
                line.map(|l| format!(":{l}")).unwrap_or_default()
            ),
        )
        .hint(format!(
            "sign in as that identity, or for another profile (`vault signin {}-2`)",
            escaped(&profile)
        )));
    }
    let cache_dir = crate::prepare::login_cache_dir(&ctx.settings);
    let console = Console::new(&vault, &aws, cache_dir.as_deref()).telling(&Notices);
    console
        .keep(&signed)
        .map_err(|e| login_error_for(e, &profile))?;
    let mut keys = vec![("login_session", arn.as_str())];
    if config.get(&profile, "region").is_none() {
        keys.push(("region", region.as_str()));
    }
    let written = vault_sts::config::add_profile_keys(&ctx.config_path, &profile, &keys)?;
    let until = signed
        .info
        .refreshable_until()
        .with_timezone(&Local)
        .format("%H:%M");
    eprintln!(
        "Signed in as {}; vault keeps the session encrypted and refreshes its credentials until {until}.",
        escaped(&arn)
    );
    if !written.is_empty() {
        eprintln!(
            "Profile {} in {} now sets {}.",
            escaped(&profile),
            ctx.config_path.display(),
            written.join(" and ")
        );
    }
    if signed.info.cli_cache
        && let Some(dir) = &cache_dir
    {
        eprintln!(
            "The AWS CLI and SDKs share it through {}.",
            vault_sts::signin::cache_path(dir, &arn).display()
        );
    }
    eprintln!(
        "Try: vault exec {} -- aws sts get-caller-identity",
        escaped(&profile)
    );
    Ok(())
}

pub fn signout(ctx: &Context, args: SignoutArgs) -> CommandResult {
    let profile = profile_of(ctx, args.profile)?;
    let config = ctx.load_config()?;
    // A session's ARN (as `vault list` shows it) names it without a profile: its profile
    // may be gone from the config file.
    let arn = match config.get(&profile, "login_session") {
        Some((arn, _)) => arn.trim().to_owned(),
        None if profile.starts_with("arn:") => profile.clone(),
        None => {
            eprintln!(
                "Profile {} has no console session (login_session); nothing to sign out of.",
                escaped(&profile)
            );
            return Ok(());
        }
    };
    let vault = ctx.open_vault()?;
    if !vault.exists() {
        eprintln!("vault keeps no console session of {}.", escaped(&arn));
        return Ok(());
    }
    let aws_profile = match config.has_profile(&profile) {
        true => profile.as_str(),
        false => "default",
    };
    let aws = ctx.aws(&config, aws_profile, None);
    let cache_dir = crate::prepare::login_cache_dir(&ctx.settings);
    let (had, removed) = Console::new(&vault, &aws, cache_dir.as_deref())
        .telling(&Notices)
        .sign_out(&arn)
        .map_err(|e| login_error_for(e, &profile))?;
    match had {
        true => eprintln!(
            "Signed out of {}: vault no longer keeps the session (credentials already handed out last until they end, 15 minutes at most).",
            escaped(&arn)
        ),
        false => eprintln!("vault keeps no console session of {}.", escaped(&arn)),
    }
    if let Some(path) = removed {
        eprintln!("Removed the AWS CLI's copy {}.", path.display());
    }
    Ok(())
}

/// The profile named, else `AWS_PROFILE`, else `default` (as `aws login` picks it).
fn profile_of(ctx: &Context, named: Option<String>) -> CommandResult<String> {
    let profile = named
        .or_else(|| ctx.settings.profile.clone())
        .unwrap_or_else(|| "default".to_owned());
    vault_store::validate_profile_name(&profile).map_err(|e| {
        CommandError::new(Kind::Usage, e.to_string()).hint("profile names are one word")
    })?;
    Ok(profile)
}

/// What else the profile gets credentials from, which would win over a console session
/// (refused before the browser opens, as `aws login` refuses).
fn other_credentials(
    config: &vault_sts::config::ConfigFile,
    profile: &str,
) -> Option<&'static str> {
    let has = |key: &str| config.get(profile, key).is_some();
    if has("web_identity_token_file") {
        Some("a web identity token (web_identity_token_file)")
    } else if has("sso_session") || has("sso_role_name") || has("sso_account_id") {
        Some("IAM Identity Center (sso_*)")
    } else if has("aws_access_key_id") {
        Some("an access key in the config file")
    } else if has("role_arn") {
        Some("a role (role_arn)")
    } else if has("credential_process") {
        Some("credential_process")
    } else {
        None
    }
}
