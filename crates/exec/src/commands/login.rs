//! `vault login PROFILE`: the AWS console, signed in as the profile.
//!
//! Role credentials (from any source) go to the federation endpoint as they are; a plain IAM
//! user's stored key goes through GetFederationToken first. The sign-in URL is a credential:
//! it is printed only with `--stdout`, handed only to the browser, and never logged.
//! `VAULT_FEDERATION_ENDPOINT` replaces the federation endpoint (for tests and proxies).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use vault_sts::console::Destination;
use vault_sts::duration;
use vault_sts::mint::Minter;
use vault_sts::plan::StepKind;

use crate::cli::{CredentialArgs, LoginArgs};
use crate::commands::creds;
use crate::context::{Context, non_empty_env};
use crate::error::{CommandError, CommandResult};

pub const FEDERATION_ENDPOINT_ENV: &str = "VAULT_FEDERATION_ENDPOINT";
const DEFAULT_FEDERATION_TOKEN: Duration = Duration::from_secs(12 * 3600);

pub fn run(ctx: &Context, args: LoginArgs) -> CommandResult {
    let duration = match &args.duration {
        Some(text) => Some(duration::parse(text).map_err(|e| {
            CommandError::user(format!("invalid --duration: {e}"))
                .hint("durations look like 1h, 90m or 3600s")
        })?),
        None => None,
    };
    let credential_args = CredentialArgs {
        profile: args.profile.clone(),
        duration: None,
        no_session: false,
        // --region picks the console's region, not the STS endpoint's.
        region: None,
        mfa_token: args.mfa_token.clone(),
    };
    let prepared = creds::prepare(ctx, &credential_args)?;
    let minter = Minter::new(&prepared.vault, &prepared.mfa, prepared.sts.clone());
    let region = args
        .region
        .clone()
        .or_else(|| prepared.plan.region.as_ref().map(|r| r.value.clone()));
    let federated = matches!(
        prepared.plan.final_step().kind,
        StepKind::StoredKey | StepKind::GetSessionToken { .. }
    );

    let (credentials, session_duration) = if federated {
        // Session-token credentials cannot call GetFederationToken: use the stored key.
        let key = prepared
            .vault
            .credentials(&prepared.plan.base)?
            .ok_or_else(|| {
                CommandError::user(format!("no stored key for {:?}", prepared.plan.base))
            })?;
        let lifetime = duration.unwrap_or(DEFAULT_FEDERATION_TOKEN);
        if !(900..=129_600).contains(&lifetime.as_secs()) {
            return Err(CommandError::user(
                "a federated console session lasts between 15m and 36h",
            )
            .hint("pass --duration between 15m and 36h"));
        }
        let token = minter
            .federation_token(&prepared.plan.base, &key, lifetime)
            .map_err(|e| CommandError::user(e).hint("the IAM user needs sts:GetFederationToken"))?;
        // AWS refuses SessionDuration for federation-token sessions.
        (token, None)
    } else {
        let obtained = creds::obtain(&prepared)?;
        if let Some(d) = duration
            && !(900..=43_200).contains(&d.as_secs())
        {
            return Err(
                CommandError::user("a role's console session lasts between 15m and 12h")
                    .hint("pass --duration between 15m and 12h"),
            );
        }
        (obtained.credentials, duration)
    };

    let destination = Destination {
        federation_endpoint: non_empty_env(FEDERATION_ENDPOINT_ENV)
            .unwrap_or_else(|| Destination::default_endpoint(region.as_deref())),
        region,
        path: args.path.clone(),
        session_duration,
    };
    let url = minter
        .console_url(&credentials, &destination)
        .map_err(|e| {
            CommandError::user(e).hint(format!(
                "check the network, or {FEDERATION_ENDPOINT_ENV} if you set it"
            ))
        })?;
    tracing::debug!(profile = %args.profile, "built the console sign-in URL (not shown)");

    if args.stdout {
        let mut out = std::io::stdout().lock();
        return writeln!(out, "{}", url.expose_secret())
            .map_err(|e| CommandError::user(format!("cannot write the URL: {e}")));
    }
    open_browser(&url)
}

/// `$BROWSER` (a command line; the URL is appended), else the platform's opener.
fn open_browser(url: &SecretString) -> CommandResult {
    let mut cmd = match non_empty_env("BROWSER") {
        Some(browser) => {
            let words = vault_sts::shell_split(&browser).map_err(|e| {
                CommandError::user(format!("BROWSER is not a valid command line: {e}"))
            })?;
            let (program, rest) = words
                .split_first()
                .ok_or_else(|| CommandError::user("BROWSER is empty"))?;
            let mut cmd = Command::new(program);
            cmd.args(rest);
            cmd
        }
        None => platform_opener(),
    };
    cmd.arg(url.expose_secret())
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let status = cmd.status().map_err(|e| {
        CommandError::user(format!("cannot open a browser: {e}"))
            .hint("set BROWSER, or pass --stdout and open the link yourself")
    })?;
    if !status.success() {
        return Err(
            CommandError::user(format!("the browser command failed ({status})"))
                .hint("set BROWSER, or pass --stdout and open the link yourself"),
        );
    }
    eprintln!("Opened the AWS console in your browser.");
    Ok(())
}

fn platform_opener() -> Command {
    if cfg!(target_os = "macos") {
        Command::new("open")
    } else if cfg!(windows) {
        let mut c = Command::new("cmd");
        // `start` treats the first quoted argument as a window title.
        c.args(["/C", "start", ""]);
        c
    } else {
        Command::new("xdg-open")
    }
}
