//! One module per subcommand.

pub mod add;
mod clear;
mod completion;
mod container;
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
mod serve;
mod shell_init;
mod signin;
mod sso;
mod unlock;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::error::CommandResult;
use crate::pick;
use crate::prepare::Request;
use crate::settings::Settings;

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
        Command::TieToParent(args) => return crate::process::tie_to_parent(args),
        _ => {}
    }
    let ctx = Context::from_cli(&cli, Settings::from_env()?)?;
    match cli.command {
        Command::Add(args) => add::run(&ctx, args),
        Command::Import(args) => import::run(&ctx, args),
        Command::List(args) => list::run(&ctx, args),
        Command::Remove(args) => remove::run(&ctx, args),
        Command::Exec(args) => {
            let profile = pick::profile(&ctx, args.credentials.profile.clone(), "exec")?;
            return exec::run(&ctx, Request::new(profile, &args.credentials), args);
        }
        Command::Export(args) => {
            let profile = pick::profile(&ctx, args.credentials.profile.clone(), "export")?;
            export::run(&ctx, Request::new(profile, &args.credentials), args)
        }
        Command::Clear(args) => clear::run(&ctx, args),
        Command::Login(args) => {
            let profile = pick::profile(&ctx, args.profile.clone(), "login")?;
            login::run(&ctx, profile, args)
        }
        Command::Rotate(args) => {
            let profile = pick::profile(&ctx, args.profile.clone(), "rotate")?;
            rotate::run(&ctx, profile, args)
        }
        Command::Unlock(args) => unlock::unlock(&ctx, args),
        Command::Lock => unlock::lock(&ctx),
        Command::Doctor(args) => doctor::run(&ctx, args),
        Command::MigrateBackend(args) => migrate::run(&ctx, args),
        Command::Sso(command) => sso::run(&ctx, command),
        Command::Signin(args) => signin::signin(&ctx, args),
        Command::Signout(args) => signin::signout(&ctx, args),
        Command::Container(command) => return container::run(&ctx, command),
        Command::Serve(args) => return serve::run(&ctx, args),
        Command::Completion(_)
        | Command::Man(_)
        | Command::ShellInit(_)
        | Command::Use(_)
        | Command::TieToParent(_) => {
            unreachable!("run above")
        }
    }?;
    Ok(ExitCode::SUCCESS)
}

/// `value` as pretty JSON and a newline: what every `--json` prints.
pub(crate) fn write_json(
    out: &mut dyn std::io::Write,
    value: &impl serde::Serialize,
) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(std::io::Error::other)?;
    writeln!(out)
}

/// The width of column `i` of a table: its widest cell or its header, in characters.
pub(crate) fn column_width<const N: usize>(
    header: &[&str; N],
    cells: &[[String; N]],
    i: usize,
) -> usize {
    cells
        .iter()
        .map(|c| c[i].chars().count())
        .chain([header[i].chars().count()])
        .max()
        .unwrap_or(0)
}
