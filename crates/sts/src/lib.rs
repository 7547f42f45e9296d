//! Profiles from the AWS config file, the plan of calls they imply, and minting and caching
//! session credentials through the AWS SDK.
//!
//! Modules by job, each depending only on those before it in this list (the crate root's
//! [`error_chain`] and [`shell_split`] depend on nothing):
//! [`duration`] and [`origin`] (where a value came from), [`config`] (the file),
//! [`endpoints`] (endpoint overrides), [`policy`] (session policies, checked),
//! [`profile`] (a profile's chain), [`plan`] (pure),
//! [`aws`] (runtime, SDK config, errors, [`aws::Waiting`]; [`aws::sts_calls`] builds the
//! requests that mint credentials), [`mfa`] and [`child`] (what the caller supplies),
//! [`credential_process`], [`iam`] (rotation calls), [`console`] (sign-in links), [`sso`]
//! (IAM Identity Center sign-ins, tokens and role credentials), [`signin`] (the console
//! sessions of `aws login`, through aws-config's login provider), and [`mint`] (the plan
//! runner: the cache and its locks). The folders `profile`, `aws` and `sso` keep the same rule among
//! their files; each one's doc gives its order.
//!
//! This crate never prompts and never prints: MFA codes come from a caller-supplied
//! [`mfa::MfaSource`], helper processes are built by a caller-supplied [`child::Launcher`],
//! SSO sign-in pages are shown by a caller-supplied [`sso::SignIn`], waits are told to a
//! caller-supplied [`aws::Waiting`], and everything else it has to say is returned as values
//! or errors.

#![forbid(unsafe_code)]

pub mod aws;
pub mod child;
pub mod config;
pub mod console;
pub mod credential_process;
pub mod duration;
pub mod endpoints;
pub mod iam;
pub mod mfa;
pub mod mint;
pub mod origin;
pub mod plan;
pub mod policy;
pub mod profile;
pub mod signin;
pub mod sso;

/// Splits a command line the way the SDKs split `credential_process` (shell-style, no shell).
pub fn shell_split(line: &str) -> Result<Vec<String>, String> {
    shell_words::split(line).map_err(|e| e.to_string())
}

/// An error and its sources on one line, as the user needs them to tell what failed.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
