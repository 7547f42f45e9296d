//! `vault doctor [--json]`: one line per check, each with what to do when it is not well.
//! Exit 0 when every check passed (warnings allowed), 1 otherwise. Reads only; never asks
//! for a passphrase; the one network call is an unsigned GET to STS for its clock.

use std::io::Write;

use serde::Serialize;
use vault_store::{BackendKind, Vault};
use vault_sts::aws::clock_skew;
use vault_sts::config::ConfigFile;
use vault_sts::profile::{self, Overrides};

use crate::cli::DoctorArgs;
use crate::context::Context;
use crate::error::{CommandError, CommandResult, Kind, escaped};
use crate::settings;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Serialize)]
struct Check {
    check: &'static str,
    status: Status,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

fn check(check: &'static str, status: Status, message: String, fix: Option<String>) -> Check {
    Check {
        check,
        status,
        message,
        fix,
    }
}

pub fn run(ctx: &Context, args: DoctorArgs) -> CommandResult {
    let mut checks = Vec::new();
    let config = config_check(ctx, &mut checks);
    let stored = vault_checks(ctx, &mut checks);
    if let Some(config) = &config {
        profile_checks(ctx, config, &stored, &mut checks);
        checks.push(clock_check(ctx, config));
    }
    checks.push(environment_check(ctx));
    let failed = checks.iter().any(|c| c.status == Status::Fail);
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        super::write_json(&mut out, &checks)
    } else {
        checks.iter().try_for_each(|c| {
            let mark = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            writeln!(out, "{mark}  {:<12} {}", c.check, c.message)?;
            match &c.fix {
                Some(fix) => writeln!(out, "      {:<12} fix: {fix}", ""),
                None => Ok(()),
            }
        })
    };
    written.map_err(|e| CommandError::output("the report", e))?;
    match failed {
        true => Err(CommandError::new(
            Kind::User,
            "vault doctor found problems (above)",
        )),
        false => Ok(()),
    }
}

/// The config file parses.
fn config_check(ctx: &Context, checks: &mut Vec<Check>) -> Option<ConfigFile> {
    match ConfigFile::load(&ctx.config_path) {
        Ok(config) => {
            checks.push(check(
                "config",
                Status::Ok,
                format!(
                    "{} parses: {} profiles, {} sso-sessions",
                    ctx.config_path.display(),
                    config.profile_names().len(),
                    config.sso_session_names().len()
                ),
                None,
            ));
            Some(config)
        }
        Err(e) => {
            checks.push(check(
                "config",
                Status::Fail,
                e.to_string(),
                Some(format!(
                    "fix the line named in {}",
                    ctx.config_path.display()
                )),
            ));
            None
        }
    }
}

/// The vault: its directory and files (open checks their owner and modes), its backend.
/// Returns the profiles with a stored key.
fn vault_checks(ctx: &Context, checks: &mut Vec<Check>) -> Vec<String> {
    let vault = match ctx.open_vault() {
        Ok(vault) => Some(vault),
        Err(e) => {
            checks.push(check(
                "vault files",
                Status::Fail,
                e.message.clone(),
                Some("see `vault --debug list` for the cause".to_owned()),
            ));
            None
        }
    };
    let mut stored = Vec::new();
    if let Some(vault) = &vault {
        checks.push(check(
            "vault files",
            Status::Ok,
            match vault.exists() {
                true => format!("{} is private to you", vault.dir().display()),
                false => format!(
                    "no vault yet in {} (`vault add` makes one)",
                    vault.dir().display()
                ),
            },
            None,
        ));
        stored = vault
            .credential_profiles()
            .map(|c| c.into_iter().map(|c| c.profile).collect())
            .unwrap_or_default();
        checks.push(backend_check(vault));
    }
    stored
}

/// Every profile's chain resolves.
fn profile_checks(ctx: &Context, config: &ConfigFile, stored: &[String], checks: &mut Vec<Check>) {
    let has_key = |name: &str| stored.iter().any(|s| s == name);
    let mut broken = 0;
    let names = config.profile_names();
    for name in &names {
        if let Err(e) = profile::resolve(config, name, &Overrides::default(), &has_key) {
            broken += 1;
            checks.push(check(
                "profile",
                Status::Fail,
                e.to_string(),
                Some(format!(
                    "fix [profile {}] in {}",
                    escaped(name),
                    ctx.config_path.display()
                )),
            ));
        }
    }
    if broken == 0 {
        checks.push(check(
            "profiles",
            Status::Ok,
            format!(
                "all {} profiles resolve to a source of credentials",
                names.len()
            ),
            None,
        ));
    }
}

/// The clock, against STS's: signatures more than 5 minutes off are refused.
fn clock_check(ctx: &Context, config: &ConfigFile) -> Check {
    let profile = ctx.settings.profile.as_deref().unwrap_or("default");
    let aws = ctx.aws(config, profile, None);
    match clock_skew(&aws) {
        Ok(skew) if skew.num_seconds().abs() < 60 => check(
            "clock",
            Status::Ok,
            format!("within {} s of STS", skew.num_seconds().abs()),
            None,
        ),
        Ok(skew) => check(
            "clock",
            if skew.num_seconds().abs() >= 300 { Status::Fail } else { Status::Warn },
            format!("{} s {} STS", skew.num_seconds().abs(), if skew.num_seconds() > 0 { "ahead of" } else { "behind" }),
            Some("sync the clock (timedatectl set-ntp true); STS refuses requests more than 5 minutes off".to_owned()),
        ),
        Err(e) => check(
            "clock",
            Status::Warn,
            format!("not checked: {e}"),
            Some("offline? the check needs STS".to_owned()),
        ),
    }
}

/// The variables that change what vault does (only names for secrets).
fn environment_check(ctx: &Context) -> Check {
    let set: Vec<String> = settings::VARIABLES
        .iter()
        .filter(|v| ctx.settings.is_set(v.name))
        .map(|v| match ctx.settings.value(v.name) {
            Some(value) => format!("{}={}", v.name, escaped(&value)),
            None => format!("{} (set)", v.name),
        })
        .collect();
    let key_in_env = ctx.settings.is_set(settings::ACCESS_KEY_ID);
    check(
        "environment",
        if key_in_env { Status::Warn } else { Status::Ok },
        match set.is_empty() {
            true => "no AWS_* variable changes what vault does".to_owned(),
            false => format!("set: {}", set.join(", ")),
        },
        key_in_env.then(|| {
            "AWS_ACCESS_KEY_ID is set: tools see those credentials; `vault add --env NAME` stores them, then unset them".to_owned()
        }),
    )
}

/// The backend: reachable, and for keyring backends, the vault key readable.
fn backend_check(vault: &Vault) -> Check {
    let kind = vault
        .backend()
        .or_else(BackendKind::platform_default)
        .unwrap_or(BackendKind::File);
    if let Err(reason) = vault_store::probe_backend(kind) {
        return check(
            "backend",
            Status::Fail,
            format!("{} is not reachable: {reason}", kind.name()),
            Some(match kind {
                BackendKind::SecretService => "start a Secret Service (gnome-keyring-daemon) on the session bus with an unlocked default collection, or use --backend file".to_owned(),
                _ => "choose another with --backend or AWS_VAULT_BACKEND".to_owned(),
            }),
        );
    }
    match (vault.exists(), kind) {
        (false, _) => check(
            "backend",
            Status::Ok,
            format!(
                "{} is reachable; a new vault would keep its key there",
                kind.name()
            ),
            None,
        ),
        (true, BackendKind::File) => check(
            "backend",
            Status::Ok,
            format!(
                "file (passphrase); {}",
                match vault.is_unlocked() {
                    true => "unlocked now (`vault lock` closes it)",
                    false => "locked (`vault unlock` opens it for a while)",
                }
            ),
            None,
        ),
        (true, _) => match vault.unlock() {
            Ok(()) => check(
                "backend",
                Status::Ok,
                format!("{}: the vault key is there and opens", kind.name()),
                None,
            ),
            Err(e) => check(
                "backend",
                Status::Fail,
                format!("{}: {e}", kind.name()),
                Some("unlock the keyring, or see docs/backends.md".to_owned()),
            ),
        },
    }
}
