//! `vault exec PROFILE -- CMD`: run a command with the profile's credentials.

use std::process::ExitCode;

use crate::cli::ExecArgs;
use crate::commands::explain;
use crate::context::Context;
use crate::error::{CommandError, CommandResult};
use crate::prepare::{self, Request};
use crate::process;
use crate::server::Protocol;
use crate::settings;
use crate::supervise;

pub fn run(ctx: &Context, request: Request, args: ExecArgs) -> CommandResult<ExitCode> {
    if let Some(current) = &ctx.settings.in_vault {
        return Err(CommandError::user(format!(
            "already inside `vault exec` for profile {current:?} (AWS_VAULT is set); \
             its credentials would stack under new ones"
        ))
        .hint("exit that shell first (after `vault use`: `vault use --unset`), or `unset AWS_VAULT` if you really mean to nest"));
    }
    let request = Request {
        plan_only: args.explain,
        ..request
    };
    let prepared = prepare::prepare(ctx, &request)?;
    if args.explain {
        explain::print(&prepared)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.server || args.imds {
        let (program, argv) = process::command_line(args.command, &ctx.settings);
        let kind = if args.server {
            Protocol::Ecs
        } else {
            Protocol::Imds {
                allow_v1: args.imds_v1,
            }
        };
        return supervise::run(
            prepared,
            supervise::Options {
                kind,
                lazy: args.lazy,
                profile: request.profile.clone(),
                program,
                args: argv,
                ask_ahead: ctx.settings.mfa_ask_ahead,
            },
        );
    }
    let obtained = prepared.obtain()?;
    let vars = process::credential_vars(
        &request.profile,
        &obtained.credentials,
        obtained.region.as_deref(),
        args.legacy_env,
    );
    if args.command.is_empty() && ctx.settings.help_message {
        eprintln!(
            "vault: starting a subshell with the credentials of {}; `exit` leaves it ({}=1 silences this)",
            crate::error::escaped(&request.profile),
            settings::DISABLE_HELP_MESSAGE
        );
    }
    let (program, argv) = process::command_line(args.command, &ctx.settings);
    process::run(program, argv, &vars)
}
