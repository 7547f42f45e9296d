//! `vault clear [PROFILE]`: forget cached sessions.

use crate::cli::ClearArgs;
use crate::context::Context;
use crate::error::CommandResult;

pub fn run(ctx: &Context, args: ClearArgs) -> CommandResult {
    let vault = ctx.open_vault()?;
    let removed =
        vault.remove_sessions(|s| args.profile.as_deref().is_none_or(|p| s.profile == p))?;
    let noun = if removed == 1 { "session" } else { "sessions" };
    match &args.profile {
        Some(p) => eprintln!("Cleared {removed} {noun} of profile {p:?}."),
        None => eprintln!("Cleared {removed} {noun}."),
    }
    Ok(())
}
