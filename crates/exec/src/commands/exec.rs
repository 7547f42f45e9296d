//! `vault exec PROFILE -- CMD`: run a command with the profile's credentials.

use std::process::ExitCode;

use crate::cli::ExecArgs;
use crate::commands::{creds, explain};
use crate::context::{Context, non_empty_env};
use crate::error::{CommandError, CommandResult};
use crate::process;

pub fn run(ctx: &Context, args: ExecArgs) -> CommandResult<ExitCode> {
    if let Some(current) = non_empty_env("AWS_VAULT") {
        return Err(CommandError::user(format!(
            "already inside `vault exec` for profile {current:?} (AWS_VAULT is set); \
             its credentials would stack under new ones"
        ))
        .hint("exit that shell first, or `unset AWS_VAULT` if you really mean to nest"));
    }
    let prepared = creds::prepare(ctx, &args.credentials)?;
    if args.explain {
        explain::print(&prepared)?;
        return Ok(ExitCode::SUCCESS);
    }
    let obtained = creds::obtain(&prepared)?;
    let vars = process::credential_vars(
        &args.credentials.profile,
        &obtained.credentials,
        obtained.region.as_deref(),
        args.legacy_env,
    );
    let (program, argv) = process::command_line(args.command);
    process::run(program, argv, &vars)
}
