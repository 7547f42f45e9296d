//! `vault import [PROFILE...] [--remove]`: long-lived keys from the plaintext shared
//! credentials file into the vault, and (with `--remove`) out of the plaintext file, so a
//! new user's first step is also a security gain. Temporary keys (with a session token) are
//! refused: they expire, and the vault mints its own.

use secrecy::SecretString;
use vault_store::{Credentials, validate_profile_name};
use vault_sts::config::{self, AwsFile, CredentialsFile};

use crate::cli::ImportArgs;
use crate::context::Context;
use crate::error::{CommandError, CommandResult, Kind, escaped};

pub fn run(ctx: &Context, args: ImportArgs) -> CommandResult {
    let path = config::credentials_path(ctx.settings.shared_credentials_file.as_deref())?;
    let file = CredentialsFile::load(&path)?;
    let available = file.profile_names();
    let wanted: Vec<String> = match args.profiles.is_empty() {
        // All of them: temporary ones are left out, and said so.
        true => available
            .iter()
            .filter(|p| file.get(p, "aws_access_key_id").is_some())
            .filter(|p| {
                let temporary = file.get(p, "aws_session_token").is_some();
                if temporary {
                    eprintln!(
                        "vault: leaving out profile {}: temporary credentials (aws_session_token)",
                        escaped(p)
                    );
                }
                !temporary
            })
            .cloned()
            .collect(),
        false => args.profiles.clone(),
    };
    if wanted.is_empty() {
        return Err(CommandError::user(format!(
            "{} holds no access keys to import",
            path.display()
        ))
        .hint("store a key pair by hand with `vault add NAME`"));
    }
    // Every profile is checked before anything is stored: a refused one changes nothing.
    let mut pairs = Vec::new();
    for profile in &wanted {
        validate_profile_name(profile)?;
        let shown = escaped(profile);
        let (Some(id), Some(secret)) = (
            file.get(profile, "aws_access_key_id"),
            file.get(profile, "aws_secret_access_key"),
        ) else {
            return Err(CommandError::new(
                Kind::User,
                format!("{} has no key pair for profile {shown}", path.display()),
            )
            .hint(format!(
                "profiles with keys there: {}",
                with_keys(&file).join(", ")
            )));
        };
        if file.get(profile, "aws_session_token").is_some() {
            return Err(CommandError::user(format!(
                "profile {shown} in {} holds temporary credentials (it has aws_session_token); only long-lived keys are imported",
                path.display()
            ))
            .hint("leave it out, or name the profiles with long-lived keys: vault import NAME..."));
        }
        pairs.push((
            profile.clone(),
            Credentials::long_lived(
                SecretString::from(id.trim()),
                SecretString::from(secret.trim()),
            ),
        ));
    }
    for (_, credentials) in &pairs {
        crate::commands::add::check_shapes(credentials)?;
    }

    let mut vault = ctx.open_vault()?;
    if let Some(notice) = vault.create_if_missing()? {
        eprintln!("vault: {notice}");
    }
    for (profile, credentials) in &pairs {
        if vault.has_credentials(profile)? && !args.force {
            return Err(CommandError::user(format!(
                "the vault already holds a key pair for profile {}",
                escaped(profile)
            ))
            .hint("pass --force to replace it"));
        }
        vault.store_credentials(profile, credentials)?;
        eprintln!(
            "Imported the key of profile {} into the vault.",
            escaped(profile)
        );
    }
    for (profile, _) in &pairs {
        config::ensure_profile_section(&ctx.config_path, profile)?;
    }
    if args.remove {
        // Re-read under the lock beside the file: someone may have edited it meanwhile.
        config::locked(&path, AwsFile::Credentials, || {
            let current = CredentialsFile::load(&path)?;
            let mut text = current.text.clone();
            for (profile, _) in &pairs {
                text = config::without_key_pair(&text, profile);
            }
            if text != current.text {
                config::replace_aws_file(&path, AwsFile::Credentials, &text)?;
            }
            Ok(())
        })
        .map_err(|e| {
            CommandError::from(e)
                .hint("the keys are in the vault; delete them from the file by hand")
        })?;
        eprintln!(
            "Removed {} from {}; every other line is as it was.",
            match pairs.len() {
                1 => "the key".to_owned(),
                n => format!("{n} keys"),
            },
            path.display()
        );
    } else {
        eprintln!(
            "The keys are still in plaintext in {}; `vault import --remove` takes them out.",
            path.display()
        );
    }
    Ok(())
}

fn with_keys(file: &CredentialsFile) -> Vec<String> {
    let names: Vec<String> = file
        .profile_names()
        .into_iter()
        .filter(|p| file.get(p, "aws_access_key_id").is_some())
        .collect();
    match names.is_empty() {
        true => vec!["none".into()],
        false => names,
    }
}
