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
    let text = render(&request.profile, &obtained, args.format, args.for_use);
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
) -> Zeroizing<String> {
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
                let value = value.as_str();
                // Values are base64-like; quoting is belt and braces. Written straight into
                // `out` so no unzeroized copy of a value is made.
                match format {
                    ExportFormat::Env => {
                        let _ = writeln!(out, "{name}={value}");
                    }
                    ExportFormat::ExportEnv | ExportFormat::Fish => {
                        let _ = match format {
                            ExportFormat::Fish => write!(out, "set -gx {name} "),
                            _ => write!(out, "export {name}="),
                        };
                        push_quoted(&mut out, value, r"'\''");
                    }
                    ExportFormat::Powershell => {
                        let _ = write!(out, "$env:{name} = ");
                        push_quoted(&mut out, value, "''");
                    }
                    ExportFormat::Json | ExportFormat::Ini => unreachable!(),
                }
            }
        }
    }
    out
}

/// `value` in single quotes followed by a newline, each `'` written as `escaped_quote`.
fn push_quoted(out: &mut String, value: &str, escaped_quote: &str) {
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str(escaped_quote),
            c => out.push(c),
        }
    }
    out.push_str("'\n");
}
