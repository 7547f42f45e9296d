//! `vault container add|list|env|remove|rotate|log`: the clients of the credential broker
//! (`vault serve`). Each client has one token, bound to one profile; the vault keeps only
//! the token's digest, and the token file is the one plaintext copy (see docs/containers.md).

use std::collections::HashMap;
use std::io::{BufRead, Seek, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde::Serialize;
use vault_store::ContainerClient;

use crate::audit::{self, Entry};
use crate::cli::{
    ContainerAddArgs, ContainerCommand, ContainerEnvArgs, ContainerEnvFormat, ContainerListArgs,
    ContainerLogArgs,
};
use crate::context::Context;
use crate::error::{CommandError, CommandResult, escaped};
use crate::prepare::{self, Request};

pub fn run(ctx: &Context, command: ContainerCommand) -> CommandResult<ExitCode> {
    match command {
        ContainerCommand::Add(args) => add(ctx, args),
        ContainerCommand::List(args) => list(ctx, args),
        ContainerCommand::Env(args) => env(ctx, args),
        ContainerCommand::Remove(args) => remove(ctx, &args.name),
        ContainerCommand::Rotate(args) => rotate(ctx, &args.name),
        ContainerCommand::Log(args) => log(ctx, args),
    }
    .map(|()| ExitCode::SUCCESS)
}

fn add(ctx: &Context, args: ContainerAddArgs) -> CommandResult {
    vault_store::validate_client_name(&args.name)?;
    // The profile must resolve now, not at the container's first request: the same checks
    // and messages as `vault exec --explain`, and no call to AWS.
    let request = Request {
        plan_only: true,
        ..Request::profile(args.profile.clone())
    };
    let prepared = prepare::prepare(ctx, &request)?;
    if let Some(key) = &prepared.missing_key {
        eprintln!(
            "vault: warning: profile {:?} starts from the key of {key:?}, which the vault does not \
             hold yet; add it before the client asks: vault add {key}",
            args.profile
        );
    }
    let mut vault = prepared.vault;
    if let Some(notice) = vault.create_if_missing()? {
        eprintln!("vault: {notice}");
    }
    let token_file = match args.token_file {
        Some(path) => Some(std::path::absolute(&path).map_err(CommandError::user)?),
        None => None,
    };
    let expires = match args.expires {
        None => None,
        // Too far to count is refused: it must not quietly become "never".
        Some(d) => Some(
            chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| Utc::now().checked_add_signed(d))
                .ok_or_else(|| {
                    CommandError::new(
                        crate::error::Kind::Usage,
                        "--expires is too far ahead to be a date",
                    )
                    .hint("leave --expires out for a token that never expires")
                })?,
        ),
    };
    let client = vault.add_container_client(&args.name, &args.profile, token_file, expires)?;
    eprintln!(
        "Added container client {:?} for profile {:?}; its token is in {}",
        client.name,
        client.profile,
        client.token_file.display()
    );
    eprintln!(
        "Next: vault serve, then `vault container env {} --format docker` (or env, compose)",
        client.name
    );
    Ok(())
}

#[derive(Serialize)]
struct Row {
    name: String,
    profile: String,
    token_file: String,
    created: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotated: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<DateTime<Utc>>,
    expired: bool,
    /// The last request answered with credentials, from the audit log.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_use: Option<String>,
}

fn list(ctx: &Context, args: ContainerListArgs) -> CommandResult {
    let vault = ctx.open_vault_as_found()?;
    let clients = vault.container_clients()?;
    let mut last_use: HashMap<String, String> = HashMap::new();
    for entry in audit::read(vault.dir()) {
        if let (Some(client), "ok") = (entry.client, entry.result.as_str()) {
            last_use.insert(client, entry.time);
        }
    }
    let now = Utc::now();
    let rows: Vec<Row> = clients
        .into_iter()
        .map(|c| Row {
            expired: c.expired(now),
            last_use: last_use.remove(&c.name),
            token_file: c.token_file.display().to_string(),
            name: c.name,
            profile: c.profile,
            created: c.created,
            rotated: c.rotated,
            expires: c.expires,
        })
        .collect();
    let mut out = std::io::stdout().lock();
    let result = if args.json {
        super::write_json(&mut out, &rows)
    } else if rows.is_empty() {
        eprintln!("No container clients; add one: vault container add NAME PROFILE");
        Ok(())
    } else {
        write_table(&mut out, &rows, now)
    };
    result.map_err(|e| CommandError::output("the list", e))
}

fn write_table(out: &mut dyn Write, rows: &[Row], now: DateTime<Utc>) -> std::io::Result<()> {
    let local = |t: &DateTime<Utc>| {
        t.with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    let header = [
        "Client",
        "Profile",
        "Created",
        "Expires",
        "Last use",
        "Token file",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let expires = match &r.expires {
                None => "never".to_owned(),
                Some(e) if *e <= now => format!("expired {}", local(e)),
                Some(e) => local(e),
            };
            let last_use = r
                .last_use
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| local(&t.with_timezone(&Utc)))
                .unwrap_or_else(|| "-".to_owned());
            [
                escaped(&r.name).into_owned(),
                escaped(&r.profile).into_owned(),
                local(&r.created),
                expires,
                last_use,
                escaped(&r.token_file).into_owned(),
            ]
        })
        .collect();
    let width = |i: usize| super::column_width(&header, &cells, i);
    let widths: Vec<usize> = (0..5).map(width).collect();
    let line = |out: &mut dyn Write, c: [&str; 6]| {
        for (cell, w) in c.iter().zip(&widths) {
            write!(out, "{cell:<w$}  ")?;
        }
        writeln!(out, "{}", c[5])
    };
    line(out, header)?;
    for c in &cells {
        line(out, [&c[0], &c[1], &c[2], &c[3], &c[4], &c[5]])?;
    }
    Ok(())
}

fn client(ctx: &Context, name: &str) -> CommandResult<ContainerClient> {
    let vault = ctx.open_vault_as_found()?;
    vault
        .container_clients()?
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| vault_store::Error::NoSuchClient { name: name.into() }.into())
}

/// The URI the SDKs fetch: `http://ADDR/` (IPv6 in brackets).
fn full_uri(listen: SocketAddr) -> String {
    format!("http://{listen}/")
}

fn env(ctx: &Context, args: ContainerEnvArgs) -> CommandResult {
    let client = client(ctx, &args.name)?;
    let uri = full_uri(args.listen);
    let host_file = client.token_file.display().to_string();
    for (what, value) in [
        ("the token file's path", host_file.as_str()),
        ("--network", &args.network),
        ("--mount-at", &args.mount_at),
    ] {
        if value.chars().any(char::is_control) {
            return Err(CommandError::user(format!(
                "{what} holds a control character, which no format can carry safely; nothing \
                 was printed"
            )));
        }
    }
    let loopback = args.listen.ip().is_loopback();
    if args.format != ContainerEnvFormat::Env && loopback {
        eprintln!(
            "vault: warning: a container cannot reach {} on the host; serve on the network's \
             gateway (vault serve --listen 169.254.170.2:9911, docs/containers.md) and pass the \
             same --listen here",
            args.listen
        );
    }
    // The token file is mounted through its directory: a file bind mount would keep the old
    // file after `rotate` replaces it.
    let dir = client.token_file.parent().unwrap_or(Path::new("/"));
    let file_name = client
        .token_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "token".into());
    let inside = format!("{}/{file_name}", args.mount_at.trim_end_matches('/'));
    let dir = dir.display().to_string();
    let text = match args.format {
        ContainerEnvFormat::Env => format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI={uri}\nAWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={host_file}\n"
        ),
        ContainerEnvFormat::Docker => format!(
            "--network {} -e AWS_CONTAINER_CREDENTIALS_FULL_URI={} -e AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={} -v {}\n",
            sh_quote(&args.network),
            sh_quote(&uri),
            sh_quote(&inside),
            sh_quote(&format!("{dir}:{}:ro", args.mount_at)),
        ),
        ContainerEnvFormat::Compose => {
            let q = |s: &str| serde_json::to_string(s).expect("a string serialises");
            format!(
                "# vault container {name} (profile {profile}): merge into the service\n\
                 networks:\n  - {network}\n\
                 environment:\n  AWS_CONTAINER_CREDENTIALS_FULL_URI: {uri}\n  AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: {inside}\n\
                 volumes:\n  - type: bind\n    source: {dir}\n    target: {target}\n    read_only: true\n",
                name = client.name,
                profile = q(&client.profile).trim_matches('"'),
                network = q(&args.network),
                uri = q(&uri),
                inside = q(&inside),
                dir = q(&dir),
                target = q(&args.mount_at),
            )
        }
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| CommandError::output("the variables", e))
}

/// `value` for a POSIX shell: as it is when it is plain, else in single quotes.
fn sh_quote(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/_-.:=@%+,".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        return value.to_owned();
    }
    format!("'{}'", value.replace('\'', r"'\''"))
}

fn remove(ctx: &Context, name: &str) -> CommandResult {
    let vault = ctx.open_vault_as_found()?;
    match vault.remove_container_client(name)? {
        Some(client) => {
            eprintln!(
                "Removed container client {:?} (profile {:?}); its token no longer works, also \
                 in a running vault serve",
                client.name, client.profile
            );
            Ok(())
        }
        None => Err(vault_store::Error::NoSuchClient { name: name.into() }.into()),
    }
}

fn rotate(ctx: &Context, name: &str) -> CommandResult {
    let vault = ctx.open_vault_as_found()?;
    let client = vault.rotate_container_client(name)?;
    eprintln!(
        "Wrote a new token for {:?} to {}; the old one no longer works (the SDKs read the file \
         again on their next fetch)",
        client.name,
        client.token_file.display()
    );
    Ok(())
}

fn log(ctx: &Context, args: ContainerLogArgs) -> CommandResult {
    let vault = ctx.open_vault_as_found()?;
    let dir = vault.dir().to_owned();
    let wanted = |e: &Entry| {
        args.name
            .as_deref()
            .is_none_or(|n| e.client.as_deref() == Some(n))
    };
    let mut out = std::io::stdout().lock();
    let mut print = |e: &Entry| -> CommandResult {
        if !wanted(e) {
            return Ok(());
        }
        let line = match args.json {
            true => serde_json::to_string(e).expect("an entry serialises"),
            false => human(e),
        };
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| CommandError::output("the log", e))
    };
    if !args.follow {
        for e in audit::read(&dir) {
            print(&e)?;
        }
        return Ok(());
    }
    // Follow: the rotated file once, then the current one from where reading stopped,
    // starting over when it is replaced (rotated).
    let path = dir.join(audit::LOG_FILE);
    if let Ok(file) = std::fs::File::open(audit::rotated(&path)) {
        for e in audit::parse_lines(std::io::BufReader::new(file)) {
            print(&e)?;
        }
    }
    let mut position = 0u64;
    let mut identity = None;
    let mut pending = Vec::new();
    loop {
        if let Ok(mut file) = std::fs::File::open(&path) {
            let now = file_identity(&file);
            if now != identity {
                identity = now;
                position = 0;
                pending.clear();
            }
            if file.seek(std::io::SeekFrom::Start(position)).is_ok() {
                let mut reader = std::io::BufReader::new(file);
                loop {
                    let mut chunk = Vec::new();
                    let n = reader.read_until(b'\n', &mut chunk).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    position += n as u64;
                    pending.extend_from_slice(&chunk);
                    if pending.ends_with(b"\n") {
                        if let Ok(e) = serde_json::from_slice::<Entry>(&pending) {
                            print(&e)?;
                        }
                        pending.clear();
                    }
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[cfg(unix)]
fn file_identity(file: &std::fs::File) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_identity(file: &std::fs::File) -> Option<(u64, u64)> {
    file.metadata()
        .ok()
        .and_then(|m| m.created().ok())
        .map(|t| {
            let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            (d.as_secs(), u64::from(d.subsec_nanos()))
        })
}

/// One entry as a line for people.
fn human(e: &Entry) -> String {
    let mut line = format!(
        "{}  {:<11}  {}  {}",
        e.time,
        e.result,
        e.source,
        escaped(e.client.as_deref().unwrap_or("-"))
    );
    if let Some(profile) = &e.profile {
        line.push_str(&format!(" → {}", escaped(profile)));
    }
    if let Some(role) = &e.role_arn {
        line.push_str(&format!(" ({})", escaped(role)));
    }
    if let Some(key) = &e.access_key_id {
        line.push_str(&format!("  {key}"));
    }
    if let Some(reason) = &e.reason {
        line.push_str(&format!("  {}", escaped(reason)));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_keeps_plain_paths_and_quotes_the_rest() {
        assert_eq!(sh_quote("/home/a/x:/run/v:ro"), "/home/a/x:/run/v:ro");
        assert_eq!(sh_quote("/home/a b/it's"), r"'/home/a b/it'\''s'");
        assert_eq!(sh_quote("$(id)"), "'$(id)'");
        assert_eq!(sh_quote(""), "''");
    }

    #[test]
    fn the_uri_brackets_ipv6() {
        assert_eq!(
            full_uri("[fd00:ec2::23]:9911".parse().unwrap()),
            "http://[fd00:ec2::23]:9911/"
        );
        assert_eq!(
            full_uri("169.254.170.2:9911".parse().unwrap()),
            "http://169.254.170.2:9911/"
        );
    }
}
