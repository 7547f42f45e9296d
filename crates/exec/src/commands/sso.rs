//! `vault sso login|logout|populate`: IAM Identity Center sign-ins by hand, and profiles for
//! every account and role a sign-in reaches.

use std::io::Write;

use chrono::Local;
use vault_sts::aws::Aws;
use vault_sts::config::{AwsFile, ConfigFile};
use vault_sts::origin::{Origin, Sourced};
use vault_sts::plan::sso_owner;
use vault_sts::profile::{self, ProfileError, SsoSession};
use vault_sts::sso::{Sso, SsoAccount};

use crate::cli::{SignInArgs, SsoCommand, SsoLoginArgs, SsoLogoutArgs, SsoPopulateArgs};
use crate::context::Context;
use crate::error::{CommandError, CommandResult, Kind, escaped, profile_error, sso_error};
use crate::prompt::Notices;
use crate::sso::{self as signin, Browser};

pub fn run(ctx: &Context, command: SsoCommand) -> CommandResult {
    match command {
        SsoCommand::Login(args) => login(ctx, args),
        SsoCommand::Logout(args) => logout(ctx, args),
        SsoCommand::Populate(args) => populate(ctx, args),
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

/// The comment vault writes above each section it adds, naming the session, so a later run
/// (and `--prune`) knows which sections are its own.
fn marker(session: &str) -> String {
    format!("# vault sso populate: {session}")
}

/// The profile name for a role: `<prefix><account>/<role>`, the account's name with every
/// run of characters a profile name cannot hold turned into `-` (its id when nothing is
/// left, or when two accounts share a name).
pub fn profile_name(prefix: &str, account: &str, role: &str) -> String {
    let mut slug = String::new();
    for c in account.chars() {
        let keep = c.is_ascii_alphanumeric() || "_.-".contains(c);
        match keep {
            true => slug.push(c),
            false if !slug.ends_with('-') => slug.push('-'),
            false => {}
        }
    }
    let role: String = role
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() || "_.-+@".contains(c) {
            true => c,
            false => '-',
        })
        .collect();
    format!("{prefix}{}/{role}", slug.trim_matches('-'))
}

/// One generated section: its name and what it says.
struct Generated {
    name: String,
    account: String,
    role: String,
}

fn wanted(args: &SsoPopulateArgs, accounts: &[SsoAccount]) -> Vec<Generated> {
    let mut out = Vec::new();
    for account in accounts {
        let shared = accounts.iter().filter(|a| a.name == account.name).count() > 1;
        let shown = match shared || account.name.trim().is_empty() {
            true => format!("{}-{}", account.name, account.id),
            false => account.name.clone(),
        };
        for role in &account.roles {
            let mut name = profile_name(&args.prefix, &shown, role);
            if name.starts_with('/') {
                name = profile_name(&args.prefix, &account.id, role);
            }
            out.push(Generated {
                name,
                account: account.id.clone(),
                role: role.clone(),
            });
        }
    }
    out
}

fn populate(ctx: &Context, args: SsoPopulateArgs) -> CommandResult {
    let config = ctx.load_config()?;
    if !config.has_sso_session(&args.session) {
        // Only a real session: the profiles written name it in `sso_session`.
        let e = profile::sso_session(&config, &args.session).expect_err("no such session");
        return Err(not_a_sign_in(ctx, &config, e));
    }
    let sso =
        profile::sso_session(&config, &args.session).map_err(|e| not_a_sign_in(ctx, &config, e))?;
    if let Some(name) = std::iter::once(args.prefix.as_str())
        .find(|p| !p.is_empty() && vault_store::validate_profile_name(&format!("{p}x")).is_err())
    {
        return Err(CommandError::new(
            Kind::Usage,
            format!(
                "--prefix {name:?} cannot start a profile name: use letters, digits and _ - / . % @ : +"
            ),
        ));
    }
    let mut vault = ctx.open_vault()?;
    if let Some(notice) = vault.create_if_missing()? {
        eprintln!("vault: {notice}");
    }
    let aws = aws_for(ctx, &config, &args.session, &sso);
    let options = signin::options(&SignInArgs::default(), false, &ctx.settings);
    let browser = Browser::new(&SignInArgs::default(), &ctx.settings);
    let accounts = Sso::new(&vault, &aws, &browser, &options)
        .telling(&Notices)
        .accounts(&sso)
        .map_err(sso_error)?;
    let generated = wanted(&args, &accounts);

    if args.dry_run {
        let (after, added, pruned) = rewrite(&config.text, &config, &args, &generated);
        let before = config.text.as_str();
        let diff = similar::TextDiff::from_lines(before, after.as_str());
        let path = ctx.config_path.display().to_string();
        let mut out = std::io::stdout().lock();
        write!(
            out,
            "{}",
            diff.unified_diff().context_radius(2).header(&path, &path)
        )
        .map_err(|e| CommandError::output("the diff", e))?;
        eprintln!(
            "Would add {added} and remove {pruned} profiles in {} (nothing written).",
            ctx.config_path.display()
        );
        return Ok(());
    }
    // The sign-in may have taken minutes: the change is made to the file as it is now,
    // read again under the lock every writer of it takes, so no edit made meanwhile is lost.
    let path = &ctx.config_path;
    let (added, pruned) = vault_sts::config::locked(path, AwsFile::Config, || {
        let current = ConfigFile::load(path)?;
        let (after, added, pruned) = rewrite(&current.text, &current, &args, &generated);
        if after != current.text {
            vault_sts::config::replace_config(path, &after)?;
        }
        Ok((added, pruned))
    })?;
    eprintln!(
        "{} reaches {} roles in {} accounts: added {added} profiles{} in {}.",
        escaped(&sso.label()),
        generated.len(),
        accounts.len(),
        match args.prune {
            true => format!(", removed {pruned}"),
            false => String::new(),
        },
        ctx.config_path.display()
    );
    Ok(())
}

/// The file with the missing generated sections appended and, with `--prune`, the
/// generated sections whose role is gone removed. Every other byte stays.
fn rewrite(
    text: &str,
    config: &ConfigFile,
    args: &SsoPopulateArgs,
    generated: &[Generated],
) -> (String, usize, usize) {
    let marker = marker(&args.session);
    let mut out = String::with_capacity(text.len());
    let mut pruned = 0;
    // Our own sections: the marker line, the header after it, and the lines up to the next
    // header or comment line that starts another block.
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if args.prune && line.trim_end() == marker {
            let mut end = i + 1;
            let mut header = None;
            if end < lines.len() && lines[end].trim_start().starts_with('[') {
                header = Some(lines[end]);
                end += 1;
                while end < lines.len()
                    && !lines[end].trim_start().starts_with('[')
                    && lines[end].trim_end() != marker
                    && !lines[end].trim().is_empty()
                {
                    end += 1;
                }
            }
            let name = header.and_then(section_profile);
            let gone = name
                .as_deref()
                .is_some_and(|n| !generated.iter().any(|g| g.name == n));
            if gone {
                pruned += 1;
                // Its blank separator line goes with it.
                if end < lines.len() && lines[end].trim().is_empty() {
                    end += 1;
                }
                i = end;
                continue;
            }
        }
        out.push_str(line);
        i += 1;
    }
    let mut added = 0;
    for g in generated {
        if config.has_profile(&g.name) {
            continue;
        }
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        if !out.is_empty() && !out.ends_with("\n\n") {
            out.push('\n');
        }
        out.push_str(&format!(
            "{marker}\n[profile {}]\nsso_session = {}\nsso_account_id = {}\nsso_role_name = {}\n",
            g.name, args.session, g.account, g.role
        ));
        added += 1;
    }
    (out, added, pruned)
}

/// `[profile NAME]` → NAME.
fn section_profile(line: &str) -> Option<String> {
    let inner = line.trim().strip_prefix('[')?.split(']').next()?.trim();
    Some(inner.strip_prefix("profile")?.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_rule() {
        assert_eq!(profile_name("", "Lab", "ReadOnly"), "Lab/ReadOnly");
        assert_eq!(
            profile_name("corp-", "My Team (prod)", "Admin"),
            "corp-My-Team-prod/Admin"
        );
        assert_eq!(profile_name("", "Lab", "Read Only"), "Lab/Read-Only");
        for name in [
            profile_name("", "Ünïcode & co", "R"),
            profile_name("p/", "a", "b"),
        ] {
            vault_store::validate_profile_name(&name).unwrap();
        }
    }
}
