//! `vault exec --explain`: the plan in words. Reads only plaintext metadata (no passphrase,
//! no keyring, no STS call), so it is safe to run anywhere.

use std::fmt::Write as _;
use std::io::Write;

use chrono::{DateTime, Utc};
use vault_sts::aws::Service;
use vault_sts::duration;
use vault_sts::plan::{Plan, Step, StepKind};

use crate::error::{CommandError, CommandResult};
use crate::prepare::Prepared;

pub fn print(p: &Prepared) -> CommandResult {
    let plan = &p.plan;
    let sessions = p.vault.sessions()?;
    let mut out = String::new();
    header(&mut out, p);
    let now = Utc::now();
    let mut cannot_run = None;
    for (i, step) in plan.steps.iter().enumerate() {
        let mut line = format!("  {}. {}", i + 1, step.describe());
        if let Some(d) = &step.duration {
            let _ = write!(line, ", {} ({})", duration::display(d.value), d.origin);
        }
        let _ = writeln!(out, "{line}");
        let status = match (&step.kind, &p.missing_key) {
            (StepKind::StoredKey, Some(missing)) => format!(
                "missing: the vault has no key for {missing:?}; store it with `vault add {missing}`"
            ),
            (StepKind::LoginSession(login), _) => {
                let (status, missing) = login_status(p, login, now);
                cannot_run = missing;
                status
            }
            _ => cache_status(plan, step, &sessions.sessions, now),
        };
        let _ = writeln!(out, "       {status}");
        step_details(&mut out, p, step);
        if plan.policy_for(i).is_some() {
            policy_details(&mut out, plan);
        }
        for note in &step.notes {
            let _ = writeln!(out, "       note: {note}");
        }
    }
    let _ = writeln!(out, "\nNothing was run and no STS call was made.");
    if let Some(missing) = &p.missing_key {
        let _ = writeln!(
            out,
            "It cannot run yet: the stored key of {missing:?} is missing (vault add {missing})."
        );
    }
    if let Some(why) = cannot_run {
        let _ = writeln!(out, "It cannot run yet: {why}.");
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .map_err(|e| CommandError::output("the plan", e))
}

/// Region, endpoint, MFA and reuse: what holds for every step.
fn header(out: &mut String, p: &Prepared) {
    let plan = &p.plan;
    let _ = writeln!(out, "Plan for profile {:?}:", plan.profile);
    match &plan.region {
        Some(r) => {
            let _ = writeln!(out, "  region        {} ({})", r.value, r.origin);
        }
        None => {
            let _ = writeln!(out, "  region        none set (STS calls go to us-east-1)");
        }
    }
    let _ = writeln!(
        out,
        "  STS endpoint  {}",
        match &p.aws.settings().endpoints.sts {
            Some(e) => format!("{} ({})", e.value, e.origin),
            None => p.aws.settings().describe_endpoint(Service::Sts),
        }
    );
    if let Some(serial) = &plan.mfa_serial {
        let _ = writeln!(out, "  MFA device    {} ({})", serial.value, serial.origin);
        let _ = writeln!(
            out,
            "  MFA codes     from {}",
            vault_sts::mfa::MfaSource::origin(&p.mfa)
        );
    }
    let _ = writeln!(
        out,
        "  reuse         cached sessions with more than {} left ({})",
        duration::display(plan.min_ttl.value),
        plan.min_ttl.origin
    );
    let _ = writeln!(out);
}

/// Whether a step will call STS: cached and fresh enough, or not.
fn cache_status(
    plan: &Plan,
    step: &Step,
    sessions: &[vault_store::SessionInfo],
    now: DateTime<Utc>,
) -> String {
    match &step.cache_key {
        None if matches!(step.kind, StepKind::Source(_)) => {
            "from the SDK's provider, each time (it caches and refreshes by itself)".to_owned()
        }
        None => format!("from the vault: the long-lived key of {:?}", step.profile),
        Some(key) => match sessions.iter().find(|s| &s.key == key) {
            Some(s)
                if s.expires - now
                    > chrono::Duration::from_std(plan.min_ttl.value)
                        .unwrap_or(chrono::Duration::MAX) =>
            {
                format!(
                    "cached, {} left: no STS call",
                    duration::display((s.expires - now).to_std().unwrap_or_default())
                )
            }
            Some(_) => "cached, but inside the minimum TTL: will call STS".to_owned(),
            None => "not cached: will call STS".to_owned(),
        },
    }
}

/// Where each of a step's values comes from.
fn step_details(out: &mut String, p: &Prepared, step: &Step) {
    if let StepKind::AssumeRole { role, mfa, chained } = &step.kind {
        let _ = writeln!(out, "       role_arn           {}", role.arn.origin);
        if let Some(e) = &role.external_id {
            let _ = writeln!(out, "       external_id        {} ({})", e.value, e.origin);
        }
        if let Some(n) = &role.session_name {
            let _ = writeln!(out, "       role_session_name  {} ({})", n.value, n.origin);
        }
        if *chained {
            let _ = writeln!(
                out,
                "       assumed with the previous role's credentials (role chaining)"
            );
        }
        if *mfa {
            let _ = writeln!(out, "       carries the MFA code itself");
        }
    }
    match &step.kind {
        StepKind::Source(kind) => {
            let _ = writeln!(out, "       credential_source  {}", kind.origin);
        }
        StepKind::CredentialProcess(command) => {
            let _ = writeln!(
                out,
                "       credential_process {} ({})",
                command.value, command.origin
            );
        }
        StepKind::SsoRole {
            sso,
            account_id,
            role_name,
        } => {
            let _ = writeln!(
                out,
                "       sso_start_url      {} ({})",
                sso.start_url.value, sso.start_url.origin
            );
            let _ = writeln!(
                out,
                "       sso_region         {} ({})",
                sso.region.value, sso.region.origin
            );
            let _ = writeln!(out, "       sso_account_id     {}", account_id.origin);
            let _ = writeln!(out, "       sso_role_name      {}", role_name.origin);
            let token = sessions_sso(p, &sso.key);
            let _ = writeln!(out, "       sign-in            {token}");
        }
        StepKind::LoginSession(login) => {
            let _ = writeln!(out, "       login_session      {}", login.arn.origin);
            if let Some(region) = &login.region {
                let _ = writeln!(
                    out,
                    "       Sign-In region     {} ({})",
                    region.value, region.origin
                );
            }
            let _ = writeln!(
                out,
                "       Sign-In endpoint   {}",
                match &p.aws.settings().endpoints.signin {
                    Some(e) => format!("{} ({})", e.value, e.origin),
                    None => "AWS Sign-In of that region".to_owned(),
                }
            );
        }
        StepKind::WebIdentity { role, token_file } => {
            let _ = writeln!(out, "       role_arn           {}", role.arn.origin);
            let _ = writeln!(
                out,
                "       web_identity_token_file {} ({})",
                token_file.value, token_file.origin
            );
        }
        _ => {}
    }
    if let StepKind::AssumeRole { role, .. } = &step.kind {
        if let Some(tags) = &role.session_tags {
            let shown: Vec<String> = tags.value.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(
                out,
                "       session_tags       {} ({})",
                shown.join(","),
                tags.origin
            );
        }
        if let Some(keys) = &role.transitive_tags {
            let _ = writeln!(
                out,
                "       transitive_session_tags {} ({})",
                keys.value.join(","),
                keys.origin
            );
        }
        if let Some(id) = &role.source_identity {
            let _ = writeln!(
                out,
                "       source_identity    {} ({})",
                id.value, id.origin
            );
        }
    }
    if let StepKind::GetSessionToken { mfa: true } = step.kind {
        let _ = writeln!(out, "       carries the MFA code");
    }
}

/// Where a console session's credentials come from and how long they last, from the AWS
/// CLI's cache file (its expiry only; nothing refreshed, nothing secret read), and why the
/// plan cannot run, when it cannot.
fn login_status(
    p: &Prepared,
    login: &vault_sts::profile::LoginSession,
    now: DateTime<Utc>,
) -> (String, Option<String>) {
    if let Ok(Some(held)) = p.console().held_info(login) {
        return held_status(p, &held, now);
    }
    let sign_in = format!("aws login --profile {}", p.plan.base);
    let Some(path) = p.console().cache_path(login) else {
        return (
            format!(
                "missing: no home directory to find the AWS CLI's cache in; set AWS_LOGIN_CACHE_DIRECTORY or sign in with `{sign_in}`"
            ),
            Some(format!(
                "no AWS CLI cache of the console session ({sign_in})"
            )),
        );
    };
    let summary = match vault_sts::signin::summary(&path) {
        Ok(Some(s)) => s,
        Ok(None) => {
            return (
                format!(
                    "missing: no console session in the AWS CLI's cache ({}); sign in with `{sign_in}`",
                    path.display()
                ),
                Some(format!("the console session is missing ({sign_in})")),
            );
        }
        Err(e) => {
            return (
                format!(
                    "unreadable: the AWS CLI's cache {} ({e}); sign in again with `{sign_in}`",
                    path.display()
                ),
                Some(format!(
                    "the console session's cache is unreadable ({sign_in})"
                )),
            );
        }
    };
    let mut line = format!("AWS CLI cache ({})", path.display());
    let refresh_ahead = chrono::Duration::minutes(5);
    let mut missing = None;
    match summary.expires {
        Some(e) if e - now > refresh_ahead => {
            let _ = write!(
                line,
                ", expires in {} ({} local)",
                duration::display((e - now).to_std().unwrap_or_default()),
                e.with_timezone(&chrono::Local).format("%H:%M")
            );
        }
        Some(e) if e > now => {
            let _ = write!(
                line,
                ", expires in {}",
                duration::display((e - now).to_std().unwrap_or_default())
            );
        }
        Some(_) => line.push_str(", expired"),
        None => line.push_str(", expiry unknown"),
    }
    match (summary.refreshable, summary.expires) {
        (true, Some(e)) if e - now > refresh_ahead => line.push_str(
            "; refreshable (refresh token held; the session itself lasts at most 12 h from `aws login`)",
        ),
        (true, _) => line.push_str(
            "; will be refreshed now (AWS Sign-In CreateOAuth2Token, one process for all)",
        ),
        (false, Some(e)) if e > now => line.push_str("; no refresh token: not refreshable"),
        (false, _) => {
            let _ = write!(line, "; no refresh token: sign in again with `{sign_in}`");
            missing = Some(format!("the console session ended ({sign_in})"));
        }
    }
    (line, missing)
}

/// A console session `vault signin` keeps: when its credentials end and until when it can
/// be refreshed (12 hours from the sign-in), from the vault's plaintext metadata only.
fn held_status(
    p: &Prepared,
    held: &vault_store::ConsoleSignInInfo,
    now: DateTime<Utc>,
) -> (String, Option<String>) {
    let local = |t: DateTime<Utc>| t.with_timezone(&chrono::Local).format("%H:%M").to_string();
    let until = held.refreshable_until();
    let sign_in = format!("vault signin {}", p.plan.base);
    let mut line = "kept encrypted in the vault (vault signin".to_owned();
    if held.cli_cache {
        line.push_str(", with the AWS CLI's copy");
    }
    line.push(')');
    let ahead = chrono::Duration::from_std(vault_sts::signin::REFRESH_AHEAD).unwrap_or_default();
    if held.expires - now > ahead {
        let _ = write!(
            line,
            ", expires in {} ({} local)",
            duration::display((held.expires - now).to_std().unwrap_or_default()),
            local(held.expires)
        );
    } else {
        line.push_str(
            ", will be refreshed now (AWS Sign-In CreateOAuth2Token, one process for all)",
        );
    }
    if until > now {
        let _ = write!(line, "; refreshable until {} local", local(until));
        (line, None)
    } else {
        let _ = write!(
            line,
            "; the 12 hours of the sign-in are over: sign in again with `{sign_in}`"
        );
        (line, Some(format!("the console session ended ({sign_in})")))
    }
}

/// What the vault holds for a sign-in, from plaintext metadata only.
fn sessions_sso(p: &crate::prepare::Prepared, key: &str) -> String {
    let Ok(tokens) = p.vault.sso_tokens() else {
        return "unknown (the vault cannot be read)".to_owned();
    };
    let now = Utc::now();
    match tokens.into_iter().find(|t| t.key == key) {
        Some(t) => match t.token_expires {
            Some(e) if e > now => format!(
                "token with {} left{}",
                duration::display((e - now).to_std().unwrap_or_default()),
                if t.refreshable {
                    ", refreshed without a browser"
                } else {
                    ""
                }
            ),
            Some(_) if t.refreshable => "token expired; it will be refreshed".to_owned(),
            _ => "signed out: the next use opens the browser".to_owned(),
        },
        None => "not signed in: the next use opens the browser".to_owned(),
    }
}

/// The session policy the final step carries, and where it came from.
fn policy_details(out: &mut String, plan: &Plan) {
    let Some(policy) = &plan.policy else {
        return;
    };
    if let Some(doc) = &policy.document {
        let from = match &doc.value.file {
            Some(file) => format!("{file}, {}", doc.origin),
            None => doc.origin.to_string(),
        };
        let _ = writeln!(
            out,
            "       session policy     {} ({from}; {} characters packed, of 2048)",
            doc.value.packed,
            doc.value.packed.chars().count()
        );
    }
    for arn in &policy.arns {
        let _ = writeln!(
            out,
            "       policy_arn         {} ({})",
            arn.value, arn.origin
        );
    }
    let _ = writeln!(
        out,
        "       narrowed: cached apart from sessions without this policy"
    );
}
