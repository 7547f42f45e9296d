//! `vault sso populate`: a profile for every account and role a sign-in reaches, appended to
//! the config file with every other byte left as it was, under names no other section has
//! (`names`); `--prune` removes the sections it wrote whose role is gone.

mod names;

use std::collections::BTreeSet;
use std::io::Write;

use vault_sts::config::{AwsFile, ConfigFile};
use vault_sts::profile;
use vault_sts::sso::SsoAccount;

use super::{not_a_sign_in, profiles_by_role, reachable, session_named};
use crate::cli::SsoPopulateArgs;
use crate::context::Context;
use crate::error::{CommandError, CommandResult, Kind, escaped};
use names::{InFile, Named, PLACEHOLDERS, Renamed, Role, Template};

pub(super) fn populate(ctx: &Context, args: SsoPopulateArgs) -> CommandResult {
    // The flags first: a mistake in one costs no sign-in and changes nothing.
    let template = checked_flags(&args)?;
    let config = ctx.load_config()?;
    let session = session_named(ctx, &config, args.session.clone(), "populate")?;
    if !config.has_sso_session(&session) {
        // Only a real session: the profiles written name it in `sso_session`.
        let e = profile::sso_session(&config, &session).expect_err("no such session");
        return Err(not_a_sign_in(ctx, &config, e));
    }
    let sso =
        profile::sso_session(&config, &session).map_err(|e| not_a_sign_in(ctx, &config, e))?;
    let accounts = reachable(ctx, &config, &session, &sso)?;
    let roles = roles_of(&accounts);
    let plan = Plan {
        args: &args,
        session: &session,
        template: &template,
        accounts: &accounts,
        roles: &roles,
    };
    let path = &ctx.config_path;

    if args.dry_run {
        let current = ConfigFile::load(path)?;
        let change = plan.change(&current)?;
        let diff = similar::TextDiff::from_lines(current.text.as_str(), change.text.as_str());
        let shown = path.display().to_string();
        let mut out = std::io::stdout().lock();
        write!(
            out,
            "{}",
            diff.unified_diff().context_radius(2).header(&shown, &shown)
        )
        .map_err(|e| CommandError::output("the diff", e))?;
        tell_renamed(&change.named);
        eprintln!(
            "Would add {} and remove {} profiles in {} (nothing written).",
            change.added(),
            change.pruned.len(),
            path.display()
        );
        return Ok(());
    }
    // The sign-in may have taken minutes: the change is made to the file as it is now,
    // read again under the lock every writer of it takes, so no edit made meanwhile is lost,
    // and the names are checked against what it holds now.
    let change = vault_sts::config::locked(path, AwsFile::Config, || {
        let current = ConfigFile::load(path)?;
        let change = plan.change(&current);
        if let Ok(change) = &change
            && change.text != current.text
        {
            vault_sts::config::replace_config(path, &change.text)?;
        }
        Ok(change)
    })??;
    tell_renamed(&change.named);
    eprintln!(
        "{} reaches {} roles in {} accounts: added {} profiles{} in {}.",
        escaped(&sso.label()),
        roles.len(),
        accounts.len(),
        change.added(),
        match args.prune {
            true => format!(", removed {}", change.pruned.len()),
            false => String::new(),
        },
        path.display()
    );
    Ok(())
}

/// `--prefix`, `--profile-template` and `--region`, checked before anything is read; the
/// template parsed.
fn checked_flags(args: &SsoPopulateArgs) -> CommandResult<Template> {
    let prefix = args.prefix.as_str();
    if !prefix.is_empty() && vault_store::validate_profile_name(&format!("{prefix}x")).is_err() {
        return Err(CommandError::new(
            Kind::Usage,
            format!(
                "--prefix {prefix:?} cannot start a profile name: use letters, digits and _ - / . % @ : +"
            ),
        ));
    }
    let template = Template::parse(&args.profile_template).map_err(|e| {
        CommandError::new(
            Kind::Usage,
            format!("--profile-template {:?}: {e}", args.profile_template),
        )
        .hint(format!(
            "the placeholders are {}, e.g. --profile-template '{{account_name}}-{{role_name}}'",
            PLACEHOLDERS
                .iter()
                .map(|p| format!("{{{p}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    if let Some(region) = &args.region
        && !looks_like_a_region(region)
    {
        return Err(CommandError::new(
            Kind::Usage,
            format!("--region {region:?} is not an AWS region name"),
        )
        .hint("name one as the AWS CLI does, e.g. --region eu-west-1"));
    }
    Ok(template)
}

/// `eu-west-1`, `us-gov-east-1`, `cn-northwest-1`, `eusc-de-east-1`: lower-case words and a
/// number, joined by `-`. A typo is caught here rather than by every later command.
pub(crate) fn looks_like_a_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let Some((number, words)) = parts.split_last() else {
        return false;
    };
    words.len() >= 2
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && (1..=2).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// Every role to write, in the listing's order (accounts by name then id, roles by name),
/// each once. The portal is not the file's author: an account id or role name that IAM
/// could not have made (and that could break the file) is left out, and said.
fn roles_of(accounts: &[SsoAccount]) -> Vec<Role> {
    let mut seen = BTreeSet::new();
    let mut roles = Vec::new();
    for account in accounts {
        for role in &account.roles {
            let valid = profile::is_account_id(&account.id)
                && (1..=64).contains(&role.len())
                && role.chars().all(profile::session_name_char);
            if !valid {
                eprintln!(
                    "vault: skipped role {:?} of account {:?}: not a role name and account id IAM makes",
                    role, account.id
                );
                continue;
            }
            if seen.insert((account.id.clone(), role.clone())) {
                roles.push(Role {
                    account_id: account.id.clone(),
                    account_name: account.name.clone(),
                    role: role.clone(),
                });
            }
        }
    }
    roles
}

/// What one run writes: the same for `--dry-run` and the real run.
struct Plan<'a> {
    args: &'a SsoPopulateArgs,
    session: &'a str,
    template: &'a Template,
    accounts: &'a [SsoAccount],
    roles: &'a [Role],
}

/// The new text of the file, the name of every role (with whether it was there already),
/// and the profiles `--prune` removed.
struct Change {
    text: String,
    named: Vec<Named>,
    pruned: Vec<String>,
}

impl Change {
    fn added(&self) -> usize {
        self.named.iter().filter(|n| !n.in_file).count()
    }
}

impl Plan<'_> {
    /// The comment vault writes above each section it adds, naming the session, so a later
    /// run (and `--prune`) knows which sections are its own.
    fn marker(&self) -> String {
        format!("# vault sso populate: {}", self.session)
    }

    /// `current` with, under `--prune`, the sections this session's runs wrote whose role is
    /// gone removed, then a section for each role the file has no profile for appended.
    /// Every other byte stays.
    fn change(&self, current: &ConfigFile) -> CommandResult<Change> {
        let (mut text, pruned) = match self.args.prune {
            true => self.pruned(current),
            false => (current.text.clone(), Vec::new()),
        };
        let mut in_file = InFile {
            names: current
                .profile_names()
                .into_iter()
                .filter(|n| !pruned.contains(n))
                .collect(),
            roles: profiles_by_role(current, |s| s.session.as_deref() == Some(self.session)),
        };
        for held in in_file.roles.values_mut() {
            held.retain(|n| !pruned.contains(n));
        }
        // Headers the SDK parser reads as no profile still make a section botocore's strict
        // reader would see twice.
        in_file
            .names
            .extend(text.lines().filter_map(section_profile));
        let named = names::choose(
            self.template,
            &self.args.prefix,
            self.session,
            self.roles,
            &in_file,
        );
        let marker = self.marker();
        for n in named.iter().filter(|n| !n.in_file) {
            let role = &n.role;
            vault_store::validate_profile_name(&n.name).map_err(|e| {
                CommandError::user(format!(
                    "no profile written for role {} of account {} ({}): {e}",
                    role.role,
                    escaped(&role.account_name),
                    role.account_id
                ))
                .hint("use a shorter --prefix or --profile-template; nothing was written")
            })?;
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            if !text.is_empty() && !text.ends_with("\n\n") {
                text.push('\n');
            }
            text.push_str(&format!(
                "{marker}\n[profile {}]\nsso_session = {}\nsso_account_id = {}\nsso_role_name = {}\n",
                n.name, self.session, role.account_id, role.role
            ));
            if let Some(region) = &self.args.region {
                text.push_str(&format!("region = {region}\n"));
            }
        }
        Ok(Change {
            text,
            named,
            pruned,
        })
    }

    /// The text without the sections this session's runs wrote (the marker line, the header
    /// after it, and the lines up to a blank line, the next header or marker) whose account
    /// and role the sign-in no longer lists; and their names.
    fn pruned(&self, current: &ConfigFile) -> (String, Vec<String>) {
        let marker = self.marker();
        let listed: BTreeSet<(&str, &str)> = self
            .accounts
            .iter()
            .flat_map(|a| a.roles.iter().map(|r| (a.id.as_str(), r.as_str())))
            .collect();
        let text = &current.text;
        let mut out = String::with_capacity(text.len());
        let mut pruned = Vec::new();
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i];
            if line.trim_end() == marker {
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
                // A section whose keys someone removed is left alone: it is no longer
                // clearly a role's.
                let gone = header.and_then(section_profile).filter(|name| {
                    match (
                        current.get(name, "sso_account_id"),
                        current.get(name, "sso_role_name"),
                    ) {
                        (Some((account, _)), Some((role, _))) => {
                            !listed.contains(&(account.trim(), role.trim()))
                        }
                        _ => false,
                    }
                });
                if let Some(name) = gone {
                    pruned.push(name);
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
        (out, pruned)
    }
}

/// `[profile NAME]` → NAME.
fn section_profile(line: &str) -> Option<String> {
    let inner = line.trim().strip_prefix('[')?.split(']').next()?.trim();
    Some(inner.strip_prefix("profile")?.trim().to_owned())
}

/// One line per profile written under another name than the template's, with why.
fn tell_renamed(named: &[Named]) {
    for n in named.iter().filter(|n| !n.in_file) {
        let Some((wanted, why)) = &n.renamed else {
            continue;
        };
        let r = &n.role;
        let why = match why {
            Renamed::SameAfterCleaning { others } => format!(
                "its name is the same as that of {} once cleaned",
                others
                    .iter()
                    .map(|(name, id)| format!("account {name:?} ({id})"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
            Renamed::NothingLeft => "no character of its name can be in a profile name".into(),
            Renamed::InFile => {
                "the config file has a profile of that name for another account or role".into()
            }
            Renamed::InRun { by } => format!(
                "role {} of account {:?} ({}) has that name",
                by.role, by.account_name, by.account_id
            ),
        };
        eprintln!(
            "Named {} (not {wanted}) for role {} of account {}: {}.",
            n.name,
            r.role,
            format_args!("{:?} ({})", r.account_name, r.account_id),
            escaped(&why)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_look_like_regions() {
        for good in [
            "eu-west-1",
            "us-gov-west-1",
            "cn-northwest-1",
            "ap-southeast-5",
            "eusc-de-east-1",
            "us-isob-east-1",
        ] {
            assert!(looks_like_a_region(good), "{good}");
        }
        for bad in [
            "",
            "eu",
            "eu-west",
            "EU-WEST-1",
            "eu-west-1a",
            "eu west 1",
            "eu--1",
            "eu-west-100",
            "eu-west-1\n",
        ] {
            assert!(!looks_like_a_region(bad), "{bad:?}");
        }
    }

    #[test]
    fn section_headers_name_their_profile() {
        assert_eq!(section_profile("[profile a/b]\n").as_deref(), Some("a/b"));
        assert_eq!(section_profile("  [ profile x ]").as_deref(), Some("x"));
        assert_eq!(section_profile("[default]"), None);
    }
}
