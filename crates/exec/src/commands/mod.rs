//! One module per subcommand.

mod add;
mod clear;
mod exec;
mod explain;
mod export;
mod list;
mod login;
mod remove;
mod rotate;
mod sso;
mod unlock;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::error::CommandResult;

pub fn run(cli: Cli) -> CommandResult<ExitCode> {
    let ctx = Context::from_cli(&cli)?;
    match cli.command {
        Command::Add(args) => add::run(&ctx, args),
        Command::List(args) => list::run(&ctx, args),
        Command::Remove(args) => remove::run(&ctx, args),
        Command::Exec(args) => return exec::run(&ctx, args),
        Command::Export(args) => export::run(&ctx, args),
        Command::Clear(args) => clear::run(&ctx, args),
        Command::Login(args) => login::run(&ctx, args),
        Command::Rotate(args) => rotate::run(&ctx, args),
        Command::Unlock(args) => unlock::unlock(&ctx, args),
        Command::Lock => unlock::lock(&ctx),
        Command::Sso(command) => sso::run(&ctx, command),
    }?;
    Ok(ExitCode::SUCCESS)
}
