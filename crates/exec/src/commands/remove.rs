//! `vault remove PROFILE`: delete a stored key pair and the sessions it minted.

use crate::cli::RemoveArgs;
use crate::context::Context;
use crate::error::{CommandError, CommandResult};
use crate::prompt;

pub fn run(ctx: &Context, args: RemoveArgs) -> CommandResult {
    let vault = ctx.open_vault()?;
    if !vault.has_credentials(&args.profile)? {
        return Err(CommandError::user(format!(
            "the vault holds no key pair for profile {:?}",
            args.profile
        ))
        .hint("`vault list --credentials` shows the profiles that have one"));
    }
    if !args.force {
        let question = format!("Delete the key pair of profile {:?}?", args.profile);
        match prompt::confirm(&question).map_err(CommandError::user)? {
            Some(true) => {}
            Some(false) => return Err(CommandError::user("nothing deleted")),
            None => {
                return Err(
                    CommandError::user("there is no terminal to confirm the deletion on").hint(
                        format!("pass --force: vault remove --force {}", args.profile),
                    ),
                );
            }
        }
    }
    vault.remove_credentials(&args.profile)?;
    eprintln!(
        "Deleted the key pair of profile {:?} and its cached sessions.",
        args.profile
    );
    Ok(())
}
