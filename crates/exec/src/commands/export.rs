//! `vault export PROFILE --format F`: print credentials for other tools. stdout carries only
//! the credentials; prompts go to the terminal.

use std::io::Write;

use secrecy::ExposeSecret;
use serde::Serialize;

use crate::cli::{ExportArgs, ExportFormat};
use crate::commands::creds::{self, Obtained};
use crate::context::Context;
use crate::error::{CommandError, CommandResult};
use crate::process;

pub fn run(ctx: &Context, args: ExportArgs) -> CommandResult {
    let mut prepared = creds::prepare(ctx, &args.credentials)?;
    if args.format == ExportFormat::Json {
        // SDKs refresh credential_process output 15 minutes before it expires: hand out
        // more than that, or every call would run us again.
        let floor = std::time::Duration::from_secs(16 * 60);
        if prepared.plan.min_ttl.value < floor {
            prepared.plan.min_ttl.value = floor;
        }
    }
    let obtained = creds::obtain(&prepared)?;
    let text = render(&args.credentials.profile, &obtained, args.format);
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| CommandError::user(format!("cannot write the credentials: {e}")))
}

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

fn render(profile: &str, obtained: &Obtained, format: ExportFormat) -> String {
    let c = &obtained.credentials;
    match format {
        ExportFormat::Json => {
            let out = ProcessOutput {
                version: 1,
                access_key_id: c.access_key_id.expose_secret(),
                secret_access_key: c.secret_access_key.expose_secret(),
                session_token: c.session_token.as_ref().map(|t| t.expose_secret()),
                expiration: c.expiration.map(process::rfc3339),
                account_id: obtained.account_id.as_deref(),
            };
            let mut json = serde_json::to_string(&out).expect("credentials serialise");
            json.push('\n');
            json
        }
        ExportFormat::Ini => {
            let mut s = format!(
                "[{profile}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                c.access_key_id.expose_secret(),
                c.secret_access_key.expose_secret()
            );
            if let Some(token) = &c.session_token {
                s.push_str(&format!("aws_session_token = {}\n", token.expose_secret()));
            }
            s
        }
        _ => {
            let vars = process::credential_vars(profile, c, obtained.region.as_deref(), false);
            vars.iter()
                .filter(|(name, _)| *name != "AWS_VAULT")
                .map(|(name, value)| match format {
                    ExportFormat::Env => format!("{name}={value}\n"),
                    ExportFormat::ExportEnv => format!("export {name}={}\n", sh_quote(value)),
                    ExportFormat::Fish => format!("set -gx {name} {}\n", sh_quote(value)),
                    ExportFormat::Powershell => {
                        format!("$env:{name} = '{}'\n", value.replace('\'', "''"))
                    }
                    ExportFormat::Json | ExportFormat::Ini => unreachable!(),
                })
                .collect()
        }
    }
}

/// Single quotes for sh and fish (values are base64-like; quoting is belt and braces).
fn sh_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}
