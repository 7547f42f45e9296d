//! `sdk-caller`: an aws-sdk-rust client for the end-to-end tests. It loads credentials,
//! region and endpoint the way any Rust program does (`aws_config`'s default chain, so the
//! ECS container endpoint, IMDS, credential_process and `AWS_ENDPOINT_URL` all apply), calls
//! STS GetCallerIdentity and prints the caller's ARN. On failure it prints the error with
//! its sources and exits non-zero.

// Its output is the ARN on stdout, its failure an error on stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::error::Error;
use std::process::ExitCode;

use aws_config::BehaviorVersion;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let config = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let sts = aws_sdk_sts::Client::new(&config);
    match sts.get_caller_identity().send().await {
        Ok(identity) => match identity.arn() {
            Some(arn) => {
                println!("{arn}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("sdk-caller: GetCallerIdentity answered without an Arn");
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            // The SDK's Display is terse ("dispatch failure"); the causes say why.
            let mut message = format!("sdk-caller: GetCallerIdentity failed: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                message.push_str(&format!("\n  caused by: {cause}"));
                source = cause.source();
            }
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
