//! `vault add PROFILE`: store a long-lived key pair.

use secrecy::{ExposeSecret, SecretString};
use vault_store::{Credentials, validate_profile_name};
use vault_sts::config;

use crate::cli::AddArgs;
use crate::context::Context;
use crate::error::{CommandError, CommandResult};
use crate::prompt;
use crate::settings;

pub fn run(ctx: &Context, args: AddArgs) -> CommandResult {
    validate_profile_name(&args.profile)?;
    let add_config = args.add_config || !args.no_add_config;
    // A config file that will not take the section is refused before the key is stored:
    // a failed command changes nothing.
    if add_config {
        ctx.load_config()?;
    }
    let mut vault = ctx.open_vault()?;

    if vault.has_credentials(&args.profile)? && !args.force {
        let question = format!(
            "The vault already holds a key pair for profile {:?}. Replace it?",
            args.profile
        );
        match prompt::confirm(&question).map_err(CommandError::user)? {
            Some(true) => {}
            Some(false) => return Err(CommandError::user("nothing changed")),
            None => {
                return Err(CommandError::user(format!(
                    "the vault already holds a key pair for profile {:?}",
                    args.profile
                ))
                .hint("pass --force to replace it"));
            }
        }
    }

    let credentials = if args.env {
        from_env()?
    } else {
        from_terminal()?
    };
    check_shapes(&credentials)?;

    if let Some(notice) = vault.create_if_missing()? {
        eprintln!("vault: {notice}");
    }
    vault.store_credentials(&args.profile, &credentials)?;
    eprintln!(
        "Added credentials to profile {:?} in the vault ({}).",
        args.profile,
        vault.dir().display()
    );

    // Under the lock beside the config file, read afresh (config::ensure_profile_section).
    if add_config && config::ensure_profile_section(&ctx.config_path, &args.profile)? {
        eprintln!(
            "Added [profile {}] to {}.",
            args.profile,
            ctx.config_path.display()
        );
    }
    Ok(())
}

fn from_env() -> CommandResult<Credentials> {
    let (id, secret) = settings::key_pair().map_err(|name| {
        CommandError::user(format!("--env was given but {name} is not set"))
            .hint("export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or drop --env to type them")
    })?;
    Ok(Credentials::long_lived(id, secret))
}

fn from_terminal() -> CommandResult<Credentials> {
    let no_terminal = || {
        CommandError::user("there is no terminal to type the key pair on")
            .hint("pass --env to read AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead")
    };
    let id = prompt::ask_line("Enter Access Key ID: ")
        .map_err(CommandError::user)?
        .ok_or_else(no_terminal)?;
    let secret = prompt::ask_hidden("Enter Secret Access Key: ")
        .map_err(CommandError::user)?
        .ok_or_else(no_terminal)?;
    Ok(Credentials::long_lived(SecretString::from(id), secret))
}

/// Catches typos and pastes of the wrong thing before anything is written. Messages describe
/// the problem without echoing the value.
pub fn check_shapes(credentials: &Credentials) -> CommandResult {
    let id = credentials.access_key_id.expose_secret();
    let secret = credentials.secret_access_key.expose_secret();
    let id_ok = (16..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !id_ok {
        return Err(CommandError::user(format!(
            "that access key id is not valid: expected 16 to 128 upper-case letters and digits \
             (like AKIAIOSFODNN7EXAMPLE), got {} characters{}",
            id.chars().count(),
            if id
                .bytes()
                .any(|b| !(b.is_ascii_uppercase() || b.is_ascii_digit()))
            {
                " including others"
            } else {
                ""
            }
        ))
        .hint(
            "nothing was stored; copy the key id from the IAM console or the CSV you downloaded",
        ));
    }
    let secret_ok = secret.len() == 40
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+' | b'='));
    if !secret_ok {
        return Err(CommandError::user(format!(
            "that secret access key is not valid: expected 40 characters of A-Z, a-z, 0-9, / + =, \
             got {} characters{}",
            secret.chars().count(),
            if secret
                .bytes()
                .any(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+' | b'=')))
            {
                " including others"
            } else {
                ""
            }
        ))
        .hint("nothing was stored; check for a truncated paste or surrounding spaces"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(id: &str, secret: &str) -> Credentials {
        Credentials::long_lived(id.into(), secret.into())
    }

    #[test]
    fn shapes() {
        let good_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        assert!(check_shapes(&creds("AKIAIOSFODNN7EXAMPLE", good_secret)).is_ok());
        assert!(check_shapes(&creds("AKIA123", good_secret)).is_err());
        assert!(check_shapes(&creds("akiaiosfodnn7example", good_secret)).is_err());
        assert!(check_shapes(&creds("AKIAIOSFODNN7EXAMPLE", "")).is_err());
        assert!(check_shapes(&creds("AKIAIOSFODNN7EXAMPLE", &good_secret[1..])).is_err());
        let bad = check_shapes(&creds(
            "AKIAIOSFODNN7EXAMPLE",
            &good_secret.replace('/', "!"),
        ))
        .unwrap_err();
        assert!(!bad.message.contains("EXAMPLEKEY"), "{}", bad.message);
    }
}
