//! The `vault` binary: glue between the command line, the terminal, the store and STS.

#![forbid(unsafe_code)]
// The binary is the one place that talks to the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod commands;
mod context;
mod error;
mod mfa;
mod process;
mod prompt;
mod server;
mod supervise;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    init_tracing(cli.debug);
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            e.print();
            ExitCode::from(e.code)
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
        "warn,vault=debug,vault_store=debug,vault_sts=debug,aws_config=info,aws_sdk_sts=info",
    );
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
