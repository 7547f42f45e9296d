//! `vault unlock` / `vault lock`: keep a passphrase vault's key open for an idle timeout, or
//! forget it now. See `docs/backends.md` for where it is kept and who can reach it.

use vault_sts::duration;

use crate::cli::UnlockArgs;
use crate::context::Context;
use crate::error::{CommandError, CommandResult};
use crate::settings;

pub fn unlock(ctx: &Context, args: UnlockArgs) -> CommandResult {
    // clap has checked --for (a duration longer than 0).
    let idle = match args.for_ {
        Some(d) => d,
        None => ctx.settings.unlock_timeout.ok_or_else(|| {
            CommandError::user(format!(
                "unlocking is turned off ({}=0)",
                settings::UNLOCK_TIMEOUT
            ))
            .hint("pass --for DURATION, or unset the variable")
        })?,
    };
    let vault = ctx.open_vault()?;
    if !vault.exists() {
        return Err(CommandError::user(format!(
            "there is no vault in {} yet",
            vault.dir().display()
        ))
        .hint("`vault add PROFILE` creates one"));
    }
    if vault.unlock_for(idle)? {
        eprintln!(
            "Unlocked the vault in {} until {} pass without use (or `vault lock`).",
            vault.dir().display(),
            duration::display(idle)
        );
    } else {
        let backend = vault.backend().map(|b| b.to_string()).unwrap_or_default();
        eprintln!("The {backend} backend keeps the vault key itself: there is nothing to unlock.");
    }
    Ok(())
}

pub fn lock(ctx: &Context) -> CommandResult {
    let vault = ctx.open_vault()?;
    if vault.forget_unlock() {
        match vault.backend() {
            Some(vault_store::BackendKind::File) | None => {
                eprintln!("Locked: the next command asks for the passphrase.")
            }
            Some(backend) => eprintln!("Locked: the next command asks the {backend} backend."),
        }
    } else {
        eprintln!("The vault was not unlocked.");
    }
    Ok(())
}
