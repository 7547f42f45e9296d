//! Profiles from the AWS config file, the plan of STS calls they imply, and minting and
//! caching session credentials through aws-sdk-sts.
//!
//! This crate never prompts and never prints: MFA codes come from a caller-supplied
//! [`mint::MfaSource`], and everything it has to say is returned as values or errors.

#![forbid(unsafe_code)]

pub mod config;
pub mod console;
pub mod credential_process;
pub mod duration;
pub mod mint;
pub mod plan;
pub mod profile;

/// Splits a command line the way the SDKs split `credential_process` (shell-style, no shell).
pub fn shell_split(line: &str) -> Result<Vec<String>, String> {
    shell_words::split(line).map_err(|e| e.to_string())
}
