//! `vault completion SHELL` (the registration script of clap_complete's dynamic engine) and
//! the hidden `vault man DIR` (the man pages, from the same clap definitions), which
//! `cargo xtask dist` bundles.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};

use crate::cli::{Cli, CompletionArgs, CompletionShell, ManArgs};
use crate::complete::COMPLETE_ENV;
use crate::error::{CommandError, CommandResult};

pub fn completion(args: CompletionArgs) -> CommandResult {
    let shell: &dyn EnvCompleter = match args.shell {
        CompletionShell::Bash => &Bash,
        CompletionShell::Zsh => &Zsh,
        CompletionShell::Fish => &Fish,
        CompletionShell::Powershell => &Powershell,
        CompletionShell::Elvish => &Elvish,
    };
    let mut script = Vec::new();
    // The completer is found on PATH when Tab is pressed, so an upgraded vault completes
    // with its own flags.
    shell
        .write_registration(COMPLETE_ENV, "vault", "vault", "vault", &mut script)
        .map_err(|e| CommandError::output("the completion script", e))?;
    std::io::stdout()
        .lock()
        .write_all(&script)
        .map_err(|e| CommandError::output("the completion script", e))
}

pub fn man(args: ManArgs) -> CommandResult {
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| CommandError::user(format!("cannot create {}: {e}", args.dir.display())))?;
    clap_mangen::generate_to(Cli::command(), &args.dir).map_err(|e| {
        CommandError::user(format!(
            "cannot write the man pages to {}: {e}",
            args.dir.display()
        ))
    })
}
