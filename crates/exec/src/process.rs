//! Child processes: every program vault starts is made here, so none of them ever sees the
//! vault passphrase: `exec`'s command, `mfa_process`, `credential_process` sources, ykman and
//! the browser. Also aws-vault's environment contract for the child that gets credentials,
//! and exec (Unix) or spawn-and-wait.

use std::ffi::{OsStr, OsString};
use std::process::{Command, ExitCode};

use secrecy::ExposeSecret;
use vault_store::Credentials;
use zeroize::Zeroizing;

use crate::context::PASSPHRASE_ENV;
use crate::error::{CommandError, CommandResult, Kind};

/// Removed from the environment of a child that gets credentials, before anything is set:
/// stale credentials and profile selectors that would override ours (the passphrase is
/// removed from every child; see [`helper`]).
const STALE: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_FILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_PROFILE",
    "AWS_SDK_LOAD_CONFIG",
    "AWS_CREDENTIAL_EXPIRATION",
    // Would win over anything we set (the SDKs prefer container credentials).
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

/// Any program vault starts: our environment without the vault passphrase.
pub fn helper(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_remove(PASSPHRASE_ENV);
    cmd
}

/// A command line run through the platform's shell (`mfa_process`, as aws-vault runs it).
pub fn shell(line: &str) -> Command {
    if cfg!(windows) {
        let mut c = helper("cmd");
        c.args(["/C", line]);
        c
    } else {
        let mut c = helper("sh");
        c.args(["-c", line]);
        c
    }
}

/// The program that gets credentials (exec's command, the servers' child): a [`helper`]
/// without stale credentials or profile selectors either.
pub fn credential_child(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = helper(program);
    for name in STALE {
        cmd.env_remove(name);
    }
    cmd
}

/// How `vault_sts` starts its helpers (credential_process sources).
#[derive(Debug)]
pub struct Helpers;

impl vault_sts::child::Launcher for Helpers {
    fn command(&self, program: &OsStr) -> Command {
        helper(program)
    }
}

/// The variables to set for credentials handed over in the environment, in order. Values
/// are wiped when dropped.
pub fn credential_vars(
    profile: &str,
    credentials: &Credentials,
    region: Option<&str>,
    legacy: bool,
) -> Vec<(&'static str, Zeroizing<String>)> {
    let plain = |s: &str| Zeroizing::new(s.to_owned());
    let mut vars = vec![("AWS_VAULT", plain(profile))];
    if let Some(region) = region {
        vars.push(("AWS_REGION", plain(region)));
        vars.push(("AWS_DEFAULT_REGION", plain(region)));
    }
    let id = credentials.access_key_id.expose_secret();
    let secret = credentials.secret_access_key.expose_secret();
    vars.push(("AWS_ACCESS_KEY_ID", plain(id)));
    vars.push(("AWS_SECRET_ACCESS_KEY", plain(secret)));
    if legacy {
        vars.push(("AWS_ACCESS_KEY", plain(id)));
        vars.push(("AWS_SECRET_KEY", plain(secret)));
    }
    if let Some(token) = &credentials.session_token {
        vars.push(("AWS_SESSION_TOKEN", plain(token.expose_secret())));
        if legacy {
            vars.push(("AWS_SECURITY_TOKEN", plain(token.expose_secret())));
        }
    }
    if let Some(expiration) = credentials.expiration {
        vars.push(("AWS_CREDENTIAL_EXPIRATION", plain(&rfc3339(expiration))));
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

/// Runs the credential child with `vars` set. On Unix it replaces this process, so signals
/// and the exit status are its own; elsewhere we wait and pass the code on.
pub fn run(
    program: OsString,
    args: Vec<OsString>,
    vars: &[(&str, Zeroizing<String>)],
) -> CommandResult<ExitCode> {
    let mut cmd = credential_child(&program);
    cmd.args(&args);
    for (name, value) in vars {
        cmd.env(name, value.as_str());
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
        CommandError::new(Kind::ChildNotFound, format!("{shown}: command not found"))
            .hint("check the spelling, or give the full path of the program")
    } else {
        CommandError::new(Kind::ChildCannotRun, format!("cannot run {shown}: {err}"))
    }
}
