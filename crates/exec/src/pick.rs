//! Which profile a command is about when none is named: `AWS_PROFILE` (as ByteNess aws-vault
//! does), else, on a terminal, a picker with type-to-filter (fuzzy), most recently used first;
//! without a terminal, a usage error that says how to name one. Also "did you mean" for a
//! misspelt name.

use vault_store::Vault;
use vault_sts::config::ConfigFile;

use crate::context::Context;
use crate::error::{CommandError, CommandResult, Kind};

/// The profile named, or the one `AWS_PROFILE` or the person picks. `command` is for the
/// message ("exec").
pub fn profile(ctx: &Context, named: Option<String>, command: &str) -> CommandResult<String> {
    let chosen = match named.or_else(|| ctx.settings.profile.clone()) {
        Some(name) => name,
        None => pick(ctx, command)?,
    };
    Ok(chosen)
}

/// Remembers that `profile` was just used (the picker lists recent ones first). Best effort:
/// it is only an ordering.
pub fn note_use(vault: &Vault, profile: &str) {
    if vault.exists() {
        vault.note_recent(profile);
    }
}

fn pick(ctx: &Context, command: &str) -> CommandResult<String> {
    let usage = || {
        CommandError::new(
            Kind::Usage,
            format!("vault {command} needs a profile, and there is no terminal to pick one on"),
        )
        .hint(format!(
            "name it (`vault {command} PROFILE`), or set AWS_PROFILE"
        ))
    };
    let Some(term) = crate::prompt::picker_terminal() else {
        return Err(usage());
    };
    let config = ctx.load_config()?;
    let vault = ctx.open_vault()?;
    let mut names = config.profile_names();
    if vault.exists() {
        names.extend(vault.credential_profiles()?.into_iter().map(|c| c.profile));
    }
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Err(CommandError::user(format!(
            "there are no profiles in {} and no stored keys to pick from",
            ctx.config_path.display()
        ))
        .hint("store a key with `vault add NAME`, or add [profile NAME] to the config file"));
    }
    let recent = match vault.exists() {
        true => vault.recent_profiles(),
        false => Vec::new(),
    };
    // Most recently used first, the rest by name.
    names.sort_by_key(|n| recent.iter().position(|r| r == n).unwrap_or(usize::MAX));
    let chosen = dialoguer::FuzzySelect::new()
        .with_prompt(format!("vault {command}: profile (type to filter)"))
        .items(&names)
        .default(0)
        .interact_on_opt(&term)
        .map_err(|e| CommandError::user(format!("the profile picker failed: {e}")))?;
    match chosen {
        Some(i) => Ok(names.swap_remove(i)),
        None => Err(CommandError::new(Kind::Usage, "no profile picked")),
    }
}

/// The name in `config` (or the vault's stored keys) closest to `wanted`, when one is close
/// enough to be a slip of the keyboard.
pub fn did_you_mean(config: &ConfigFile, stored: &[String], wanted: &str) -> Option<String> {
    let limit = (wanted.chars().count() / 3).max(1);
    config
        .profile_names()
        .into_iter()
        .chain(stored.iter().cloned())
        .map(|name| (strsim::damerau_levenshtein(&name, wanted), name))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, name)| name)
}
