//! `vault export PROFILE --format F`: print credentials for other tools. stdout carries only
//! the credentials; prompts go to the terminal.

use std::fmt::Write as _;
use std::io::Write;

use secrecy::ExposeSecret;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::cli::{ExportArgs, ExportFormat};
use crate::context::Context;
use crate::error::{CommandError, CommandResult};
use crate::prepare::{self, Obtained, Request};
use crate::process;

pub fn run(ctx: &Context, request: Request, args: ExportArgs) -> CommandResult {
    let mut prepared = prepare::prepare(ctx, &request)?;
    if args.format == ExportFormat::Json {
        // SDKs refresh credential_process output 15 minutes before it expires: hand out
        // more than that, or every call would run us again.
        let floor = std::time::Duration::from_secs(16 * 60);
        if prepared.plan.min_ttl.value < floor {
            prepared.plan.min_ttl.value = floor;
        }
    }
    let obtained = prepared.obtain()?;
    let text = render(&request.profile, &obtained, args.format, args.for_use)?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| CommandError::output("the credentials", e))
}

/// Where `vault use` keeps the names it set, for `vault use --unset`.
pub const USE_VARS: &str = "__VAULT_USE_VARS";

/// The credential_process contract, version 1.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessOutput<'a> {
    version: u8,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
}

/// The whole output, built in one zeroizing buffer (it is all secrets).
/// With `for_use`, the shell formats also carry `AWS_VAULT` and `__VAULT_USE_VARS`, the
/// names set, for the `vault use` function (`vault shell-init`).
fn render(
    profile: &str,
    obtained: &Obtained,
    format: ExportFormat,
    for_use: bool,
) -> CommandResult<Zeroizing<String>> {
    let c = &obtained.credentials;
    let mut out = Zeroizing::new(String::with_capacity(4096));
    match format {
        ExportFormat::Json => {
            let json = ProcessOutput {
                version: 1,
                access_key_id: c.access_key_id.expose_secret(),
                secret_access_key: c.secret_access_key.expose_secret(),
                session_token: c.session_token.as_ref().map(|t| t.expose_secret()),
                expiration: c.expiration.map(process::rfc3339),
                account_id: obtained.account_id.as_deref(),
            };
            let bytes = Zeroizing::new(serde_json::to_vec(&json).expect("credentials serialise"));
            out.push_str(std::str::from_utf8(&bytes).expect("JSON is UTF-8"));
            out.push('\n');
        }
        ExportFormat::Ini => {
            refuse_unsafe("the profile name", profile, format)?;
            refuse_unsafe("aws_access_key_id", c.access_key_id.expose_secret(), format)?;
            refuse_unsafe(
                "aws_secret_access_key",
                c.secret_access_key.expose_secret(),
                format,
            )?;
            if let Some(token) = &c.session_token {
                refuse_unsafe("aws_session_token", token.expose_secret(), format)?;
            }
            let _ = write!(
                out,
                "[{profile}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                c.access_key_id.expose_secret(),
                c.secret_access_key.expose_secret()
            );
            if let Some(token) = &c.session_token {
                let _ = writeln!(out, "aws_session_token = {}", token.expose_secret());
            }
        }
        _ => {
            let mut vars = process::credential_vars(profile, c, obtained.region.as_deref(), false);
            vars.retain(|(name, _)| for_use || *name != "AWS_VAULT");
            if for_use {
                let names: Vec<&str> = vars.iter().map(|(name, _)| *name).collect();
                vars.push((USE_VARS, Zeroizing::new(names.join(" "))));
            }
            for (name, value) in &vars {
                refuse_unsafe(name, value, format)?;
            }
            for (name, value) in &vars {
                let value = value.as_str();
                // Values are base64-like; quoting is belt and braces. Written straight into
                // `out` so no unzeroized copy of a value is made.
                match format {
                    ExportFormat::Env => {
                        let _ = writeln!(out, "{name}={value}");
                    }
                    ExportFormat::ExportEnv => {
                        let _ = write!(out, "export {name}=");
                        push_quoted(&mut out, value, &[('\'', r"'\''")]);
                    }
                    ExportFormat::Fish => {
                        // In fish, `\'` and `\\` are escapes even inside single quotes.
                        let _ = write!(out, "set -gx {name} ");
                        push_quoted(&mut out, value, &[('\'', r"\'"), ('\\', r"\\")]);
                    }
                    ExportFormat::Powershell => {
                        // The typographic single quotes were refused above.
                        let _ = write!(out, "$env:{name} = ");
                        push_quoted(&mut out, value, &[('\'', "''")]);
                    }
                    ExportFormat::Json | ExportFormat::Ini => unreachable!(),
                }
            }
        }
    }
    Ok(out)
}

/// `value` in single quotes followed by a newline, each character of `escapes` written as
/// its replacement.
fn push_quoted(out: &mut String, value: &str, escapes: &[(char, &str)]) {
    out.push('\'');
    for c in value.chars() {
        match escapes.iter().find(|(e, _)| *e == c) {
            Some((_, replacement)) => out.push_str(replacement),
            None => out.push(c),
        }
    }
    out.push_str("'\n");
}

/// The first character of `value` that would change what `format`'s output means once a
/// shell or parser reads it: any control character (a line break in `env` or `ini` starts
/// a new entry, NUL ends a C string, escape sequences drive a terminal), and for PowerShell
/// the typographic single quotes (U+2018–U+201B) it takes for `'`. Credentials, regions and
/// profile names never hold one.
fn unsafe_char(value: &str, format: ExportFormat) -> Option<(usize, char)> {
    value.chars().enumerate().find(|(_, c)| {
        c.is_control()
            || (format == ExportFormat::Powershell && ('\u{2018}'..='\u{201B}').contains(c))
    })
}

/// Refuses a value [`unsafe_char`] finds a character in. The value is never shown (it may
/// be a secret): only which one, the character's code point and its position.
fn refuse_unsafe(name: &str, value: &str, format: ExportFormat) -> CommandResult {
    let Some((at, c)) = unsafe_char(value, format) else {
        return Ok(());
    };
    let format_name = clap::ValueEnum::to_possible_value(&format)
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default();
    Err(CommandError::user(format!(
        "{name} holds the character U+{:04X} (at position {}), which --format {format_name} \
         cannot carry safely; nothing was printed",
        c as u32,
        at + 1
    ))
    .hint(
        "check where the value comes from: the profile's region or name in the config file, \
         or what its credential_process prints",
    ))
}
