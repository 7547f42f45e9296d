//! `vault migrate-backend --to NAME [--dry-run]`: the vault key to another backend, the
//! stored keys untouched (they are encrypted to the vault key, which does not change).

use crate::cli::MigrateBackendArgs;
use crate::context::Context;
use crate::error::{CommandError, CommandResult};

pub fn run(ctx: &Context, args: MigrateBackendArgs) -> CommandResult {
    // The vault as it is, whatever --backend / AWS_VAULT_BACKEND say (they name the target
    // here, not the source).
    let mut vault = ctx.open_vault_as_found()?;
    let Some(from) = vault.backend().filter(|_| vault.exists()) else {
        return Err(CommandError::user(format!(
            "there is no vault in {} to move",
            ctx.vault_dir.display()
        ))
        .hint(format!(
            "`vault add NAME --backend {}` makes one there",
            args.to.name()
        )));
    };
    if from == args.to {
        eprintln!(
            "The vault key is already in {}; nothing to move.",
            from.name()
        );
        return Ok(());
    }
    if args.dry_run {
        vault_store::probe_backend(args.to).map_err(|reason| {
            CommandError::user(format!("{} is not reachable: {reason}", args.to.name()))
        })?;
        eprintln!(
            "Would move the vault key of {} from {} to {} ({} stored keys stay as they are); {} is reachable. Nothing changed.",
            vault.dir().display(),
            from.name(),
            args.to.name(),
            vault.credential_profiles()?.len(),
            args.to.name()
        );
        return Ok(());
    }
    vault.migrate_backend(args.to)?;
    eprintln!(
        "Moved the vault key of {} from {} to {}; the old copy is gone. Use --backend {} (or unset AWS_VAULT_BACKEND) from now on.",
        vault.dir().display(),
        from.name(),
        args.to.name(),
        args.to.name()
    );
    Ok(())
}
