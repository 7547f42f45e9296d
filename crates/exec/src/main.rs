//! The `vault` binary: glue between the command line, the terminal, the store and STS.

#![forbid(unsafe_code)]
// The binary is the one place that talks to the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod audit;
mod cli;
mod commands;
mod complete;
mod context;
mod error;
mod mfa;
mod pick;
mod prepare;
mod process;
mod prompt;
mod server;
mod settings;
mod sso;
mod supervise;

use std::process::ExitCode;

use clap::Parser;

use crate::error::Kind;

fn main() -> ExitCode {
    // Tab in a shell with `vault completion` loaded: answer and exit before anything else.
    clap_complete::CompleteEnv::with_factory(<cli::Cli as clap::CommandFactory>::command)
        .var(complete::COMPLETE_ENV)
        .complete();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors.
            return match e.use_stderr() {
                true => ExitCode::from(Kind::Usage.exit_code()),
                false => ExitCode::SUCCESS,
            };
        }
    };
    let debug = cli.debug;
    init_tracing(debug);
    // A panic is a bug: the default hook has printed where; say so and exit 255, not 101.
    match std::panic::catch_unwind(move || commands::run(cli)) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            e.print(debug);
            ExitCode::from(e.exit_code())
        }
        Err(_) => {
            eprintln!("vault: internal error: this is a bug in vault; please report it");
            ExitCode::from(Kind::Internal.exit_code())
        }
    }
}

/// `--debug`: our own crates at debug, the AWS SDK at info (its debug output is verbose and
/// not reviewed for secrets).
fn init_tracing(debug: bool) {
    if !debug {
        return;
    }
    let filter = tracing_subscriber::EnvFilter::new(
        "warn,vault=debug,vault_store=debug,vault_sts=debug,aws_config=info,aws_sdk_sts=info,aws_sdk_sso=info,aws_sdk_ssooidc=info",
    );
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
