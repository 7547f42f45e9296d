//! `vault login PROFILE`: the AWS console, signed in as the profile.
//!
//! Role credentials (from any source) go to the federation endpoint as they are; a plain IAM
//! user's stored key goes through GetFederationToken first. The sign-in URL is a credential:
//! it is printed only with `--stdout`, handed only to the browser, and never logged.
//! `VAULT_FEDERATION_ENDPOINT` replaces the federation endpoint (for tests and proxies).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use vault_sts::console::{self, Destination};
use vault_sts::duration;
use vault_sts::plan::{MAX_ASSUME_ROLE, MAX_FEDERATION_TOKEN, MIN_DURATION, StepKind};

use crate::cli::LoginArgs;
use crate::context::Context;
use crate::error::{CommandError, CommandResult, Kind};
use crate::prepare::{self, Request};
use crate::process;
use crate::settings::{self, Settings};

const DEFAULT_FEDERATION_TOKEN: Duration = Duration::from_secs(12 * 3600);

pub fn run(ctx: &Context, profile: String, args: LoginArgs) -> CommandResult {
    // --region picks the console's region, not the STS endpoint's.
    let request = Request {
        mfa_token: args.mfa_token.clone().map(|c| c.0),
        policy: args.policy.session_policy(),
        uncarried_policy_ok: true,
        ..Request::profile(profile)
    };
    let prepared = prepare::prepare(ctx, &request)?;
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
        let lifetime = args.duration.unwrap_or(DEFAULT_FEDERATION_TOKEN);
        check_range(
            lifetime,
            MAX_FEDERATION_TOKEN,
            "a federated console session",
        )?;
        let policy = prepared.plan.policy.as_ref();
        let base = &prepared.plan.base;
        let token = console::federation_token(&prepared.aws, base, &key, lifetime, policy)
            .map_err(|e| {
                CommandError::from_error(Kind::User, e)
                    .hint("the IAM user needs sts:GetFederationToken")
            })?;
        // AWS refuses SessionDuration for federation-token sessions.
        (token, None)
    } else {
        let obtained = prepared.obtain()?;
        if let Some(d) = args.duration {
            check_range(d, MAX_ASSUME_ROLE, "a role's console session")?;
        }
        (obtained.credentials, args.duration)
    };

    let destination = Destination {
        federation_endpoint: ctx
            .settings
            .federation_endpoint
            .clone()
            .unwrap_or_else(|| Destination::default_endpoint(region.as_deref())),
        region,
        path: args.path.clone(),
        session_duration,
    };
    let url = console::sign_in_url(&prepared.aws, &credentials, &destination).map_err(|e| {
        CommandError::from_error(Kind::User, e).hint(format!(
            "check the network, or {} if you set it",
            settings::FEDERATION_ENDPOINT
        ))
    })?;
    tracing::debug!(profile = %request.profile, "built the console sign-in URL (not shown)");

    if args.stdout {
        let mut out = std::io::stdout().lock();
        return writeln!(out, "{}", url.expose_secret())
            .map_err(|e| CommandError::output("the URL", e));
    }
    open_browser(&url, &ctx.settings)
}

/// `what` lasts between [`MIN_DURATION`] and `max`.
fn check_range(d: Duration, max: Duration, what: &str) -> CommandResult {
    if (MIN_DURATION..=max).contains(&d) {
        return Ok(());
    }
    let (min, max) = (duration::display(MIN_DURATION), duration::display(max));
    Err(
        CommandError::user(format!("{what} lasts between {min} and {max}"))
            .hint(format!("pass --duration between {min} and {max}")),
    )
}

/// `$BROWSER` (a command line; the page's path is appended), else the platform's opener.
///
/// The sign-in URL is a credential, and a command line is visible to every local user
/// (`ps`): the browser gets the path of a page, readable only by us, that sends it on.
fn open_browser(url: &SecretString, settings: &Settings) -> CommandResult {
    // SIGINT, SIGTERM or SIGHUP while the page exists must not leave it (and the sign-in
    // token in it) on disk: they only set this flag, and the page is dropped on the way out.
    let stop = stop_on_signals();
    let page = redirect_page(url, settings.runtime_dir.as_deref())
        .map_err(|e| CommandError::user(format!("cannot write the sign-in page: {e}")))?;
    let mut child = process::start_browser(settings.browser.as_deref(), page.path().as_os_str())
        .map_err(|e| e.hint("set BROWSER, or pass --stdout and open the link yourself"))?;
    // A browser still running after the helper time limit is the browser itself, in the
    // foreground, with the page: left to the person.
    let status = process::wait_for_browser(&mut child, settings.helper_timeout)
        .map_err(|e| CommandError::user(format!("waiting for the browser: {e}")))?;
    let stopped = || CommandError::user("stopped by a signal; the sign-in page was removed");
    if stop.load(Ordering::Relaxed) {
        return Err(stopped());
    }
    if let Some(status) = status
        && !status.success()
    {
        return Err(
            CommandError::user(format!("the browser command failed ({status})"))
                .hint("set BROWSER, or pass --stdout and open the link yourself"),
        );
    }
    wait_until_read(page.path(), Duration::from_secs(3), &stop);
    if stop.load(Ordering::Relaxed) {
        return Err(stopped());
    }
    eprintln!("Opened the AWS console in your browser.");
    // Dropping `page` deletes it.
    Ok(())
}

/// A 0600 page in a per-user directory that sends the browser on to `url`.
fn redirect_page(
    url: &SecretString,
    runtime_dir: Option<&std::path::Path>,
) -> std::io::Result<tempfile::NamedTempFile> {
    let dir = runtime_dir
        .filter(|d| d.is_dir())
        .map(std::path::Path::to_owned)
        .unwrap_or_else(std::env::temp_dir);
    // tempfile creates the file readable and writable by its owner only.
    let mut page = tempfile::Builder::new()
        .prefix("vault-login-")
        .suffix(".html")
        .tempfile_in(dir)?;
    let mut escaped = zeroize::Zeroizing::new(String::with_capacity(url.expose_secret().len() * 2));
    for c in url.expose_secret().chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            c => escaped.push(c),
        }
    }
    let html = zeroize::Zeroizing::new(format!(
        "<!doctype html><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\">\
         <meta http-equiv=\"refresh\" content=\"0;url={}\"><title>AWS console</title>\
         <a href=\"{}\">Sign in to the AWS console</a>\n",
        *escaped, *escaped
    ));
    page.write_all(html.as_bytes())?;
    page.flush()?;
    Ok(page)
}

/// Openers hand the path to a running browser and return before it reads the page; give it
/// a moment (the access time changes when it does), then the page is deleted.
/// A flag the signals that would end vault set instead, for as long as the process runs
/// (`vault login` ends right after).
fn stop_on_signals() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    #[cfg(unix)]
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        let _ = signal_hook::flag::register(signal, stop.clone());
    }
    stop
}

fn wait_until_read(path: &std::path::Path, limit: Duration, stop: &AtomicBool) {
    let accessed = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.accessed()).ok();
    let written = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let start = std::time::Instant::now();
    while start.elapsed() < limit && !stop.load(Ordering::Relaxed) {
        if let (Some(read), Some(written)) = (accessed(path), written)
            && read > written
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
