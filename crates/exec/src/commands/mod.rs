//! One module per subcommand.

pub mod add;
mod clear;
mod completion;
mod doctor;
mod exec;
mod explain;
mod export;
mod import;
mod list;
mod login;
mod migrate;
mod remove;
mod rotate;
mod shell_init;
mod sso;
mod unlock;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::error::CommandResult;
use crate::pick;

pub fn run(cli: Cli) -> CommandResult<ExitCode> {
    // These need no vault, no config file and no home.
    match cli.command {
        Command::Completion(args) => {
            return completion::completion(args).map(|()| ExitCode::SUCCESS);
        }
        Command::Man(args) => return completion::man(args).map(|()| ExitCode::SUCCESS),
        Command::ShellInit(args) => {
            return shell_init::shell_init(args).map(|()| ExitCode::SUCCESS);
        }
        Command::Use(args) => {
            return shell_init::use_without_function(args).map(|()| ExitCode::SUCCESS);
        }
        _ => {}
    }
    let ctx = Context::from_cli(&cli)?;
    match cli.command {
        Command::Add(args) => add::run(&ctx, args),
        Command::Import(args) => import::run(&ctx, args),
        Command::List(args) => list::run(&ctx, args),
        Command::Remove(args) => remove::run(&ctx, args),
        Command::Exec(mut args) => {
            args.credentials.profile = Some(pick::profile(
                &ctx,
                args.credentials.profile.take(),
                "exec",
            )?);
            return exec::run(&ctx, args);
        }
        Command::Export(mut args) => {
            args.credentials.profile = Some(pick::profile(
                &ctx,
                args.credentials.profile.take(),
                "export",
            )?);
            export::run(&ctx, args)
        }
        Command::Clear(args) => clear::run(&ctx, args),
        Command::Login(mut args) => {
            args.profile = Some(pick::profile(&ctx, args.profile.take(), "login")?);
            login::run(&ctx, args)
        }
        Command::Rotate(mut args) => {
            args.profile = Some(pick::profile(&ctx, args.profile.take(), "rotate")?);
            rotate::run(&ctx, args)
        }
        Command::Unlock(args) => unlock::unlock(&ctx, args),
        Command::Lock => unlock::lock(&ctx),
        Command::Doctor(args) => doctor::run(&ctx, args),
        Command::MigrateBackend(args) => migrate::run(&ctx, args),
        Command::Sso(command) => sso::run(&ctx, command),
        Command::Completion(_) | Command::Man(_) | Command::ShellInit(_) | Command::Use(_) => {
            unreachable!("run above")
        }
    }?;
    Ok(ExitCode::SUCCESS)
}
