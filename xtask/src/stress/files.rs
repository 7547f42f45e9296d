//! Scenarios 8 and 9: the files vault shares with others, and what it prints for shells.
//!
//! 8. Writers of the AWS files from two vault directories at once through every path that
//!    writes them (`add`, `import --remove`, `sso populate`; the lock is beside the file, so
//!    they take turns), a user's edits between bursts, and `recent` written by parallel
//!    exports: nothing any of them wrote may be lost or written twice.
//! 9. The odd-file catalogue (a device, a FIFO, `/dev/zero`, a huge file, a BOM, indented
//!    headers) as the config, each refused or read with its time and peak memory; and
//!    hostile values through every shell format into its real shell: nothing may run.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Instant;

use serde_json::json;

use super::{Ctx, Rng, Row, Section, fake_key, temp_files, wait_all, write_dirs};
use crate::Result;
use crate::bench::measure::wait_rusage;

/// The SSO session every vault directory of scenario 8 signs in to once; its `populate`
/// then writes the stand-in's four account/role profiles.
const SSO_SESSION: &str = "\
[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = us-east-1
sso_registration_scopes = sso:account:access
";

/// The profiles the stand-in's accounts and roles give `sso populate corp`.
const POPULATED: [&str; 4] = [
    "Lab/Admin",
    "Lab/ReadOnly",
    "Prod-Account/ReadOnly",
    "Sandbox/Dev",
];

pub(super) fn config_writers(ctx: &Ctx<'_>, _rng: &mut Rng) -> Result<Section> {
    let (n, rounds) = ((ctx.opts.writers / 2).max(2), ctx.opts.writer_rounds);
    let mut env = ctx.file_env(false);
    let stand_in = vault_harness::sso::SsoStandIn::start(&env, &ctx.moto.endpoint);
    stand_in.control(json!({"accounts": [
        {"accountId": "111111111111", "accountName": "Lab", "roles": ["ReadOnly", "Admin"]},
        {"accountId": "222222222222", "accountName": "Prod Account", "roles": ["ReadOnly"]},
        {"accountId": "333333333333", "accountName": "Sandbox", "roles": ["Dev"]},
    ]}));
    let browser = vault_harness::sso::browser_script(&env, &env.dir.path().join("browser-calls"));
    env.set("AWS_ENDPOINT_URL_SSO", &stand_in.endpoint)
        .set("AWS_ENDPOINT_URL_SSO_OIDC", &stand_in.endpoint)
        .set("BROWSER", browser);
    env.write_config(&format!(
        "[profile base]\nregion = us-east-1\n\n{SSO_SESSION}"
    ));
    let credentials = env.home().join(".aws/credentials");
    let kept = "[kept]\naws_access_key_id = user-kept-id\naws_secret_access_key = user-kept\n";
    fs::write(&credentials, kept).map_err(|e| e.to_string())?;
    let dirs = [env.dir.path().join("v1"), env.dir.path().join("v2")];
    for dir in &dirs {
        let mut cmd = ctx.vault(&env, &["sso", "login", "corp"]);
        cmd.env("AWS_VAULT_FILE_DIR", dir);
        let out = cmd
            .output()
            .map_err(|e| format!("cannot start vault: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "sso login in {}: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let mut failed = Vec::new();
    let mut expected = Vec::new();
    let mut imported = Vec::new();
    let mut edits = Vec::new();
    let vault_in = |dir: &std::path::Path, args: &[&str]| {
        let mut cmd = ctx.vault(&env, args);
        cmd.env("AWS_VAULT_FILE_DIR", dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    };
    for round in 0..rounds {
        // The user puts two key pairs in the credentials file for `import --remove` to take.
        let mut text = fs::read_to_string(&credentials).map_err(|e| e.to_string())?;
        for d in 0..dirs.len() {
            let (id, secret) = fake_key((90_000 + round * 10 + d) as u64);
            let _ = writeln!(
                text,
                "[imp-d{d}-r{round}]\naws_access_key_id = {id}\naws_secret_access_key = {secret}"
            );
        }
        fs::write(&credentials, text).map_err(|e| e.to_string())?;
        let mut children = Vec::new();
        for (d, dir) in dirs.iter().enumerate() {
            let profile = format!("imp-d{d}-r{round}");
            let child = vault_in(dir, &["import", "--remove", &profile])
                .spawn()
                .map_err(|e| format!("cannot start vault: {e}"))?;
            imported.push(profile.clone());
            children.push((format!("import {profile}"), child));
            let child = vault_in(dir, &["sso", "populate", "corp"])
                .spawn()
                .map_err(|e| format!("cannot start vault: {e}"))?;
            children.push((format!("populate in v{d}"), child));
        }
        for i in 0..n {
            for (d, dir) in dirs.iter().enumerate() {
                let profile = format!("d{d}-r{round}-{i}");
                let (id, secret) = fake_key((round * 1000 + i * 2 + d) as u64 + 1);
                let child = vault_in(dir, &["add", "--env", &profile])
                    .env("AWS_ACCESS_KEY_ID", id)
                    .env("AWS_SECRET_ACCESS_KEY", secret)
                    .spawn()
                    .map_err(|e| format!("cannot start vault: {e}"))?;
                expected.push(profile.clone());
                children.push((profile, child));
            }
        }
        failed.extend(wait_all(children)?);
        // The user edits the file between bursts, as an editor would: the whole file.
        let edit = format!("# the user's edit {round}");
        let mut text = fs::read_to_string(env.config_path()).map_err(|e| e.to_string())?;
        let _ = writeln!(text, "{edit}");
        fs::write(env.config_path(), text).map_err(|e| e.to_string())?;
        edits.push(edit);
    }
    let config = fs::read_to_string(env.config_path()).map_err(|e| e.to_string())?;
    let lost: Vec<&str> = expected
        .iter()
        .map(String::as_str)
        .chain(POPULATED)
        .filter(|p| !config.contains(&format!("[profile {p}]\n")))
        .collect();
    let lost_sections = lost.len();
    let lost_edits = edits
        .iter()
        .filter(|e| !config.contains(e.as_str()))
        .count();
    let mut headers = std::collections::BTreeMap::new();
    for line in config.lines().filter(|l| l.starts_with('[')) {
        *headers.entry(line).or_insert(0usize) += 1;
    }
    let duplicates: usize = headers.values().map(|c| c - 1).sum();
    let left = fs::read_to_string(&credentials).map_err(|e| e.to_string())?;
    let not_removed = imported
        .iter()
        .filter(|p| left.contains(&format!("[{p}]")))
        .count();
    let kept_lost = usize::from(!left.contains(kept));
    let mut aws_dir = write_dirs(&env);
    aws_dir.extend(dirs.iter().cloned());
    let temps = temp_files(&aws_dir);
    let lost_recent = recent_under_load(ctx)?;
    drop(stand_in);

    let mut s = Section::new(8, "");
    let _ = writeln!(
        s.md,
        "{rounds} round(s) in which two vault directories, each signed in to one SSO session, \
         write the same AWS files at once: per directory {n} `vault add --env`, one \
         `vault import --remove` of a key pair the user just put in the credentials file and \
         one `vault sso populate`; the user edits the config between rounds. Then 10 exports \
         of 10 profiles at once, each putting its name first in `recent`."
    );
    if !failed.is_empty() {
        let _ = writeln!(s.md, "\nfailed: {}", failed.join("; "));
    }
    if !lost.is_empty() {
        let _ = writeln!(s.md, "\nsections lost: {}", lost.join(", "));
    }
    let total = expected.len() + POPULATED.len();
    s.rows = vec![
        Row::zero(
            8,
            &format!("config sections lost (of {total})"),
            lost_sections,
        ),
        Row::zero(8, "config sections written twice", duplicates),
        Row::zero(8, &format!("user edits lost (of {rounds})"), lost_edits),
        Row::zero(
            8,
            &format!(
                "imported keys left in the credentials file (of {})",
                imported.len()
            ),
            not_removed,
        ),
        Row::zero(8, "the user's own credentials section lost", kept_lost),
        Row::zero(8, "adds, imports and populates that failed", failed.len()),
        Row::zero(8, "temp files left", temps),
        Row::zero(8, "names lost from `recent` (of 10)", lost_recent),
    ];
    s.json = json!({
        "adds": expected.len(), "imports": imported.len(), "populates": rounds * 2,
        "sections_lost": lost_sections, "duplicates": duplicates, "edits_lost": lost_edits,
        "imports_left": not_removed, "kept_lost": kept_lost,
        "failed": failed, "temp_files": temps, "recent_lost": lost_recent,
    });
    Ok(s)
}

/// Ten `export`s of ten credential_process profiles at once; how many names `recent` lost.
fn recent_under_load(ctx: &Ctx<'_>) -> Result<usize> {
    let env = ctx.file_env(false);
    let _unlocked = ctx.seed(&env, &fake_key(0))?;
    let script = env.dir.path().join("cp.sh");
    let (id, secret) = fake_key(1);
    let answer = json!({
        "Version": 1, "AccessKeyId": id, "SecretAccessKey": secret,
        "SessionToken": "t", "Expiration": "2999-01-01T00:00:00Z",
    });
    fs::write(&script, format!("#!/bin/sh\nprintf '%s' '{answer}'\n"))
        .map_err(|e| e.to_string())?;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    let names: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
    env.write_config(
        &names
            .iter()
            .map(|n| format!("[profile {n}]\ncredential_process = {}\n", script.display()))
            .collect::<String>(),
    );
    let children = names
        .iter()
        .map(|n| {
            ctx.vault(&env, &["export", "--format", "json", n])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        })
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| format!("cannot start vault: {e}"))?;
    for mut child in children {
        child.wait().map_err(|e| e.to_string())?;
    }
    let recent = fs::read_to_string(env.vault_dir().join("recent")).unwrap_or_default();
    Ok(names
        .iter()
        .filter(|n| !recent.contains(&format!("\"{n}\"")))
        .count())
}

/// The most memory any refusal may take.
const REFUSAL_PEAK_KIB: u64 = 50 * 1024;

pub(super) fn odd_files_and_output(ctx: &Ctx<'_>, _rng: &mut Rng) -> Result<Section> {
    let env = ctx.file_env(false);
    let dir = env.dir.path();
    let fifo = dir.join("fifo");
    env.output(env.command("mkfifo").arg(&fifo));
    let huge = dir.join("huge");
    fs::write(&huge, vec![b'#'; 17 * 1024 * 1024]).map_err(|e| e.to_string())?;
    let bom = dir.join("bom");
    fs::write(&bom, "\u{feff}[profile base]\nregion = us-east-1\n").map_err(|e| e.to_string())?;
    let indented = dir.join("indented");
    fs::write(&indented, "  [profile base]\nregion = us-east-1\n").map_err(|e| e.to_string())?;
    let cases: [(&str, &std::path::Path, bool); 6] = [
        ("/dev/zero", std::path::Path::new("/dev/zero"), false),
        ("a FIFO", &fifo, false),
        ("a 17 MiB file", &huge, false),
        ("a BOM", &bom, false),
        (
            "an indented header (a section, as for the AWS CLI)",
            &indented,
            true,
        ),
        ("/dev/null (empty)", std::path::Path::new("/dev/null"), true),
    ];
    let mut s = Section::new(9, "");
    let _ = writeln!(
        s.md,
        "`vault list` with each odd file as `AWS_CONFIG_FILE` (bounded by `timeout 20`): the \
         verdict, the time and the peak RSS (wait4). Then hostile values (quotes, `$()`, \
         backticks, `\\'`, the typographic quotes) as a credential_process's session token \
         through `export-env` into bash and zsh and `fish` into fish: a marker file must \
         never appear, and each shell must read the value back unchanged."
    );
    let mut wrong = 0;
    let mut hung = 0;
    let mut worst_kib = 0;
    for (name, path, valid) in cases {
        let mut cmd = env.command("timeout");
        cmd.arg("20")
            .arg(&ctx.bin)
            .arg("list")
            .env("AWS_CONFIG_FILE", path)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let start = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start vault: {e}"))?;
        let (status, kib) = wait_rusage(child)?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        worst_kib = worst_kib.max(kib);
        if status.code() == Some(124) {
            hung += 1;
        } else if status.success() != valid {
            wrong += 1;
        }
        s.rows.push(Row::info(
            9,
            &format!("`list` on {name}"),
            format!(
                "{} in {ms:.0} ms, peak {:.1} MiB",
                if status.success() { "read" } else { "refused" },
                kib as f64 / 1024.0
            ),
        ));
    }
    let (ran, misread) = hostile_output(ctx)?;
    s.rows.extend([
        Row::zero(9, "odd files hung", hung),
        Row::zero(9, "odd files with the wrong verdict", wrong),
        Row::check(
            9,
            "peak RSS of any of them",
            format!("{:.1} MiB", worst_kib as f64 / 1024.0),
            "< 50 MiB",
            worst_kib < REFUSAL_PEAK_KIB,
        ),
        Row::zero(9, "hostile values that ran code", ran),
        Row::zero(9, "hostile values read back changed", misread),
    ]);
    s.json = json!({
        "hung": hung, "wrong": wrong, "peak_kib": worst_kib, "ran": ran, "misread": misread,
    });
    Ok(s)
}

/// Hostile session tokens through `export-env` (bash, zsh) and `fish` (fish): how many ran
/// code, and how many came back changed.
fn hostile_output(ctx: &Ctx<'_>) -> Result<(usize, usize)> {
    let env = ctx.file_env(false);
    let dir = env.dir.path();
    let marker = dir.join("PWNED");
    let answer = dir.join("answer.json");
    let script = dir.join("cp.sh");
    fs::write(&script, format!("#!/bin/sh\ncat '{}'\n", answer.display()))
        .map_err(|e| e.to_string())?;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    env.write_config(&format!(
        "[profile p]\ncredential_process = {}\nregion = us-east-1\n",
        script.display()
    ));
    let m = marker.display().to_string();
    let values = [
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("'; touch {m}; echo '"),
        format!("\\'; touch {m}; echo \\"),
        format!("\"; touch {m}; echo \""),
        "\u{2018}\u{2019}\u{201A}\u{201B}".to_owned(),
        "$HOME ${HOME} !! * ~ #".to_owned(),
    ];
    let (mut ran, mut misread) = (0, 0);
    for value in &values {
        let (id, secret) = fake_key(2);
        let json = json!({
            "Version": 1, "AccessKeyId": id, "SecretAccessKey": secret,
            "SessionToken": value, "Expiration": "2999-01-01T00:00:00Z",
        });
        fs::write(&answer, json.to_string()).map_err(|e| e.to_string())?;
        for (shell, format, read) in [
            (
                "bash",
                "export-env",
                "eval \"$(cat \"$1\")\"; printf %s \"$AWS_SESSION_TOKEN\"",
            ),
            (
                "zsh",
                "export-env",
                "eval \"$(cat \"$1\")\"; printf %s \"$AWS_SESSION_TOKEN\"",
            ),
            (
                "fish",
                "fish",
                "source $argv[1]; printf %s \"$AWS_SESSION_TOKEN\"",
            ),
        ] {
            let out = ctx.ok(&env, &["export", "p", "--format", format], &[])?;
            let file = dir.join("out");
            fs::write(&file, out).map_err(|e| e.to_string())?;
            let mut cmd = env.command(shell);
            cmd.arg("-c").arg(read);
            if shell != "fish" {
                cmd.arg(shell);
            }
            cmd.arg(&file);
            let got = env.output(&mut cmd);
            if marker.exists() {
                ran += 1;
                let _ = fs::remove_file(&marker);
            }
            if got.stdout != *value {
                misread += 1;
            }
        }
    }
    Ok((ran, misread))
}
