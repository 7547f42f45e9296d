//! One module per subcommand.

mod add;
mod list;
mod remove;

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
    }?;
    Ok(ExitCode::SUCCESS)
}
