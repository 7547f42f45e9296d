//! The child process: aws-vault's environment contract, and exec (Unix) or spawn-and-wait.

use std::ffi::OsString;
use std::process::{Command, ExitCode};

use secrecy::ExposeSecret;
use vault_store::Credentials;

use crate::error::{CommandError, CommandResult};

/// Removed from the child's environment before anything is set: stale credentials, profile
/// selectors that would override ours, and the vault passphrase.
pub const REMOVED: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_FILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_PROFILE",
    "AWS_SDK_LOAD_CONFIG",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_VAULT_FILE_PASSPHRASE",
    // Would win over anything we set (the SDKs prefer container credentials).
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

/// The variables to set for credentials handed over in the environment, in order.
pub fn credential_vars(
    profile: &str,
    credentials: &Credentials,
    region: Option<&str>,
    legacy: bool,
) -> Vec<(&'static str, String)> {
    let mut vars = vec![("AWS_VAULT", profile.to_owned())];
    if let Some(region) = region {
        vars.push(("AWS_REGION", region.to_owned()));
        vars.push(("AWS_DEFAULT_REGION", region.to_owned()));
    }
    let id = credentials.access_key_id.expose_secret().to_owned();
    let secret = credentials.secret_access_key.expose_secret().to_owned();
    vars.push(("AWS_ACCESS_KEY_ID", id.clone()));
    vars.push(("AWS_SECRET_ACCESS_KEY", secret.clone()));
    if legacy {
        vars.push(("AWS_ACCESS_KEY", id));
        vars.push(("AWS_SECRET_KEY", secret));
    }
    if let Some(token) = &credentials.session_token {
        vars.push(("AWS_SESSION_TOKEN", token.expose_secret().to_owned()));
        if legacy {
            vars.push(("AWS_SECURITY_TOKEN", token.expose_secret().to_owned()));
        }
    }
    if let Some(expiration) = credentials.expiration {
        vars.push(("AWS_CREDENTIAL_EXPIRATION", rfc3339(expiration)));
    }
    vars
}

/// `2026-01-02T03:04:05Z`: RFC 3339, UTC, whole seconds (what the SDKs and aws-vault write).
pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The command to run: the given one, else `$SHELL`, else `/bin/sh`.
pub fn command_line(given: Vec<OsString>) -> (OsString, Vec<OsString>) {
    let mut given = given.into_iter();
    match given.next() {
        Some(program) => (program, given.collect()),
        None => (
            std::env::var_os("SHELL")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| default_shell().into()),
            Vec::new(),
        ),
    }
}

fn default_shell() -> &'static str {
    if cfg!(windows) { "cmd.exe" } else { "/bin/sh" }
}

/// Runs the child with `vars` set after removing [`REMOVED`]. On Unix the child replaces this
/// process, so signals and the exit status are its own; elsewhere we wait and pass the code on.
pub fn run(
    program: OsString,
    args: Vec<OsString>,
    vars: &[(&str, String)],
) -> CommandResult<ExitCode> {
    let mut cmd = Command::new(&program);
    cmd.args(&args);
    for name in REMOVED {
        cmd.env_remove(name);
    }
    for (name, value) in vars {
        cmd.env(name, value);
    }
    let shown = program.to_string_lossy().into_owned();
    exec(cmd, &shown)
}

#[cfg(unix)]
fn exec(mut cmd: Command, shown: &str) -> CommandResult<ExitCode> {
    use std::os::unix::process::CommandExt;
    let err = cmd.exec();
    Err(spawn_error(err, shown))
}

#[cfg(not(unix))]
fn exec(mut cmd: Command, shown: &str) -> CommandResult<ExitCode> {
    let status = cmd.status().map_err(|e| spawn_error(e, shown))?;
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}

pub fn spawn_error(err: std::io::Error, shown: &str) -> CommandError {
    if err.kind() == std::io::ErrorKind::NotFound {
        CommandError {
            code: 127,
            message: format!("{shown}: command not found"),
            hints: vec!["check the spelling, or give the full path of the program".into()],
        }
    } else {
        CommandError {
            code: 126,
            message: format!("cannot run {shown}: {err}"),
            hints: Vec::new(),
        }
    }
}
