//! Scenarios 8 and 9: the files vault shares with others, and what it prints for shells.
//!
//! 8. Writers of the AWS config from two vault directories at once (the lock is beside the
//!    file, so they take turns), a user's edits between bursts, and `recent` written by
//!    parallel exports: nothing any of them wrote may be lost.
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

pub(super) fn config_writers(ctx: &Ctx<'_>, _rng: &mut Rng) -> Result<Section> {
    let (n, rounds) = ((ctx.opts.writers / 2).max(2), ctx.opts.writer_rounds);
    let env = ctx.file_env(false);
    env.write_config("[profile base]\nregion = us-east-1\n");
    let dirs = [env.dir.path().join("v1"), env.dir.path().join("v2")];
    let mut failed = Vec::new();
    let mut expected = Vec::new();
    let mut edits = Vec::new();
    let add = |dir: &std::path::Path, profile: &str, i: u64| {
        let (id, secret) = fake_key(i);
        let mut cmd = ctx.vault(&env, &["add", "--env", profile]);
        cmd.env("AWS_VAULT_FILE_DIR", dir)
            .env("AWS_ACCESS_KEY_ID", id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd.spawn()
    };
    for round in 0..rounds {
        let mut children = Vec::new();
        for i in 0..n {
            for (d, dir) in dirs.iter().enumerate() {
                let profile = format!("d{d}-r{round}-{i}");
                let child = add(dir, &profile, (round * 1000 + i * 2 + d) as u64 + 1)
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
    let lost_sections = expected
        .iter()
        .filter(|p| !config.contains(&format!("[profile {p}]\n")))
        .count();
    let lost_edits = edits
        .iter()
        .filter(|e| !config.contains(e.as_str()))
        .count();
    let mut aws_dir = write_dirs(&env);
    aws_dir.extend(dirs.iter().cloned());
    let temps = temp_files(&aws_dir);
    let lost_recent = recent_under_load(ctx)?;

    let mut s = Section::new(8, "");
    let _ = writeln!(
        s.md,
        "{rounds} round(s) of {n} `vault add --env` into each of two vault directories at once, \
         all appending to one AWS config; the user edits the file between rounds. Then 10 \
         exports of 10 profiles at once, each putting its name first in `recent`."
    );
    if !failed.is_empty() {
        let _ = writeln!(s.md, "\nfailed: {}", failed.join("; "));
    }
    let total = expected.len();
    s.rows = vec![
        Row::zero(
            8,
            &format!("config sections lost (of {total})"),
            lost_sections,
        ),
        Row::zero(8, &format!("user edits lost (of {rounds})"), lost_edits),
        Row::zero(8, "adds that failed", failed.len()),
        Row::zero(8, "temp files left", temps),
        Row::zero(8, "names lost from `recent` (of 10)", lost_recent),
    ];
    s.json = json!({
        "adds": total, "sections_lost": lost_sections, "edits_lost": lost_edits,
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
