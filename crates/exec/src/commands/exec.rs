//! `vault exec PROFILE -- CMD`: run a command with the profile's credentials.

use std::process::ExitCode;

use crate::cli::ExecArgs;
use crate::commands::explain;
use crate::context::{Context, non_empty_env};
use crate::error::{CommandError, CommandResult};
use crate::prepare::{self, Request};
use crate::process;
use crate::server::Kind;
use crate::supervise;

pub fn run(ctx: &Context, args: ExecArgs) -> CommandResult<ExitCode> {
    if let Some(current) = non_empty_env("AWS_VAULT") {
        return Err(CommandError::user(format!(
            "already inside `vault exec` for profile {current:?} (AWS_VAULT is set); \
             its credentials would stack under new ones"
        ))
        .hint("exit that shell first (after `vault use`: `vault use --unset`), or `unset AWS_VAULT` if you really mean to nest"));
    }
    let request = Request {
        plan_only: args.explain,
        ..Request::from(&args.credentials)
    };
    let prepared = prepare::prepare(ctx, &request)?;
    if args.explain {
        explain::print(&prepared)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.server || args.imds {
        let (program, argv) = process::command_line(args.command);
        let kind = if args.server {
            Kind::Ecs
        } else {
            Kind::Imds {
                allow_v1: args.imds_v1,
            }
        };
        return supervise::run(
            prepared,
            supervise::Options {
                kind,
                lazy: args.lazy,
                profile: args.credentials.profile().to_owned(),
                program,
                args: argv,
            },
        );
    }
    let obtained = prepared.obtain()?;
    let vars = process::credential_vars(
        args.credentials.profile(),
        &obtained.credentials,
        obtained.region.as_deref(),
        args.legacy_env,
    );
    if args.command.is_empty() && non_empty_env(HELP_MESSAGE_ENV).is_none() {
        eprintln!(
            "vault: starting a subshell with the credentials of {}; `exit` leaves it ({HELP_MESSAGE_ENV}=1 silences this)",
            crate::error::escaped(args.credentials.profile())
        );
    }
    let (program, argv) = process::command_line(args.command);
    process::run(program, argv, &vars)
}

/// aws-vault's name for silencing the subshell notice.
const HELP_MESSAGE_ENV: &str = "AWS_VAULT_DISABLE_HELP_MESSAGE";
