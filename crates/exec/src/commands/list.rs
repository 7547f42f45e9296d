//! `vault list`: profiles of the config file, stored key pairs, cached sessions. Reads only
//! plaintext metadata: no keyring access, no passphrase.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

use vault_sts::config::ConfigFile;
use vault_sts::profile::{self, BaseSource, Overrides};

use crate::cli::ListArgs;
use crate::context::Context;
use crate::error::{CommandError, CommandResult};

#[derive(Serialize)]
struct Row {
    profile: String,
    in_config: bool,
    /// The profile whose stored key pair this profile uses, if any.
    credentials: Option<String>,
    sessions: Vec<SessionRow>,
}

/// An SSO sign-in: what it is and how long its token lasts. No secret.
#[derive(Serialize)]
struct SsoRow {
    session: String,
    start_url: String,
    region: String,
    /// None once signed out.
    token_expires: Option<DateTime<Utc>>,
    seconds_left: Option<i64>,
    refreshable: bool,
    cli_cache: bool,
}

#[derive(Serialize)]
struct SessionRow {
    kind: String,
    expires: DateTime<Utc>,
    seconds_left: i64,
}

pub fn run(ctx: &Context, args: ListArgs) -> CommandResult {
    let config = ctx.load_config()?;
    let vault = ctx.open_vault()?;
    let stored: BTreeSet<String> = vault
        .credential_profiles()?
        .into_iter()
        .map(|c| c.profile)
        .collect();
    let sessions = vault.sessions()?;
    if let Some(reason) = &sessions.discarded {
        eprintln!("vault: warning: ignoring the damaged session cache ({reason})");
    }
    let config_names = config.profile_names();
    let now = Utc::now();
    let sso: Vec<SsoRow> = match vault.exists() {
        true => vault.sso_tokens()?,
        false => Vec::new(),
    }
    .into_iter()
    .map(|t| SsoRow {
        seconds_left: t
            .token_expires
            .map(|e| (e - now).num_seconds())
            .filter(|s| *s > 0),
        session: t.key,
        start_url: t.start_url,
        region: t.region,
        token_expires: t.token_expires,
        refreshable: t.refreshable,
        cli_cache: t.cli_cache,
    })
    .collect();

    let mut out = std::io::stdout().lock();
    let result = if args.profiles {
        write_names(&mut out, &config_names)
    } else if args.credentials {
        write_names(&mut out, &stored)
    } else if args.sso {
        match args.json {
            true => super::write_json(&mut out, &sso),
            false => write_sso(&mut out, &sso),
        }
    } else if args.sessions {
        let with_sessions: BTreeSet<String> = sessions
            .sessions
            .iter()
            .map(|s| s.profile.clone())
            .collect();
        write_names(&mut out, &with_sessions)
    } else {
        let mut rows: BTreeMap<String, Row> = BTreeMap::new();
        let names = config_names.iter().chain(stored.iter());
        for name in names {
            rows.entry(name.clone()).or_insert_with(|| Row {
                profile: name.clone(),
                in_config: config.has_profile(name),
                credentials: key_behind(&config, name, &stored),
                sessions: Vec::new(),
            });
        }
        for session in &sessions.sessions {
            let row = rows.entry(session.profile.clone()).or_insert_with(|| Row {
                profile: session.profile.clone(),
                in_config: config.has_profile(&session.profile),
                credentials: None,
                sessions: Vec::new(),
            });
            row.sessions.push(SessionRow {
                kind: session
                    .description
                    .split_whitespace()
                    .next()
                    .unwrap_or("session")
                    .to_owned(),
                expires: session.expires,
                seconds_left: (session.expires - now).num_seconds(),
            });
        }
        let rows: Vec<Row> = rows.into_values().collect();
        if args.json {
            super::write_json(&mut out, &rows)
        } else {
            let console = match vault.exists() {
                true => vault.console_sign_ins()?,
                false => Vec::new(),
            };
            write_table(&mut out, &rows)
                .and_then(|()| match sso.is_empty() {
                    true => Ok(()),
                    false => writeln!(out).and_then(|()| write_sso(&mut out, &sso)),
                })
                .and_then(|()| match console.is_empty() {
                    true => Ok(()),
                    false => writeln!(out).and_then(|()| write_console(&mut out, &console, now)),
                })
        }
    };
    result.map_err(|e| CommandError::output("the list", e))
}

/// The stored key a profile's credentials start from, when its chain resolves to one.
fn key_behind(config: &ConfigFile, name: &str, stored: &BTreeSet<String>) -> Option<String> {
    let has_key = |p: &str| stored.contains(p);
    let resolved = profile::resolve(config, name, &Overrides::default(), &has_key).ok()?;
    Some(match resolved.source {
        BaseSource::StoredKey => resolved.base,
        BaseSource::CredentialSource(kind) => kind.value.name().to_owned(),
        BaseSource::WebIdentity { .. } => "web identity".to_owned(),
        BaseSource::Process(_) => format!("{} (credential_process)", resolved.base),
        BaseSource::Sso { sso, .. } => sso.label(),
        BaseSource::LoginSession(_) => format!("{} (console session)", resolved.base),
    })
}

fn write_sso(out: &mut dyn Write, rows: &[SsoRow]) -> std::io::Result<()> {
    let cells: Vec<[String; 3]> = rows
        .iter()
        .map(|r| {
            let token = match r.seconds_left {
                Some(left) => format!(
                    "{}{}",
                    format_left(left),
                    if r.refreshable { " (refreshable)" } else { "" }
                ),
                None if r.token_expires.is_some() => "expired".to_owned(),
                None => "signed out".to_owned(),
            };
            [r.session.clone(), r.start_url.clone(), token]
        })
        .collect();
    write_columns(out, ["SSO sign-in", "Start URL", "Token"], &cells)
}

/// The console sessions `vault signin` keeps: whose, where, and how long they last.
fn write_console(
    out: &mut dyn Write,
    held: &[vault_store::ConsoleSignInInfo],
    now: DateTime<Utc>,
) -> std::io::Result<()> {
    let cells: Vec<[String; 3]> = held
        .iter()
        .map(|h| {
            let until = h.refreshable_until();
            let left = (h.expires - now).num_seconds();
            let state = match (left > 0, until > now) {
                (_, false) => "ended (12 hours)".to_owned(),
                (true, true) => format!(
                    "{} (refreshable until {})",
                    format_left(left),
                    until.with_timezone(&chrono::Local).format("%H:%M")
                ),
                (false, true) => format!(
                    "expired (refreshable until {})",
                    until.with_timezone(&chrono::Local).format("%H:%M")
                ),
            };
            [h.key.clone(), h.region.clone(), state]
        })
        .collect();
    write_columns(out, ["Console session", "Region", "Credentials"], &cells)
}

/// A table of three columns, the first two padded to their widest cell.
fn write_columns(
    out: &mut dyn Write,
    header: [&str; 3],
    cells: &[[String; 3]],
) -> std::io::Result<()> {
    let width = |i: usize| super::column_width(&header, cells, i);
    let (w0, w1) = (width(0), width(1));
    writeln!(out, "{:<w0$}  {:<w1$}  {}", header[0], header[1], header[2])?;
    for [a, b, c] in cells {
        writeln!(out, "{a:<w0$}  {b:<w1$}  {c}")?;
    }
    Ok(())
}

fn write_names<'a>(
    out: &mut dyn Write,
    names: impl IntoIterator<Item = &'a String>,
) -> std::io::Result<()> {
    names.into_iter().try_for_each(|n| writeln!(out, "{n}"))
}

fn write_table(out: &mut dyn Write, rows: &[Row]) -> std::io::Result<()> {
    let cells: Vec<[String; 3]> = rows
        .iter()
        .map(|r| {
            let sessions = if r.sessions.is_empty() {
                "-".to_owned()
            } else {
                r.sessions
                    .iter()
                    .map(|s| format!("{}:{}", s.kind, format_left(s.seconds_left)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            [
                r.profile.clone(),
                r.credentials.clone().unwrap_or_else(|| "-".to_owned()),
                sessions,
            ]
        })
        .collect();
    let headers = ["Profile", "Credentials", "Sessions"];
    let width = |i: usize| super::column_width(&headers, &cells, i);
    let (w0, w1) = (width(0), width(1));
    writeln!(
        out,
        "{:<w0$}  {:<w1$}  {}",
        headers[0], headers[1], headers[2]
    )?;
    writeln!(out, "{:<w0$}  {:<w1$}  ========", "=======", "===========")?;
    for [a, b, c] in &cells {
        writeln!(out, "{a:<w0$}  {b:<w1$}  {c}")?;
    }
    Ok(())
}

/// 3725 → "1h2m", 59 → "59s", three days → "3d".
fn format_left(seconds: i64) -> String {
    let s = seconds.max(0);
    if s >= 48 * 3600 {
        return format!("{}d", s / 86400);
    }
    match (s / 3600, (s % 3600) / 60) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m"),
        (h, m) => format!("{h}h{m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left() {
        assert_eq!(format_left(3725), "1h2m");
        assert_eq!(format_left(59), "59s");
        assert_eq!(format_left(600), "10m");
        assert_eq!(format_left(-5), "0s");
    }
}
