//! Scenarios 1 and 2: SIGKILL at random points of writes. "A crash leaves the old file or
//! the new one" means: what a run reported stored is there and decrypts, nothing is damaged,
//! and the temp files a killed writer leaves are cleaned by the next write (under the lock).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vault_harness::TestEnv;

use super::{
    Ctx, Outcome, Rng, Row, Section, fake_key, first_line, kill_after, median, role_config,
    temp_files, write_dirs,
};
use crate::Result;

/// Runs `vault ARGS` with `vars`, killing it after `delay`.
fn killed_run(
    ctx: &Ctx<'_>,
    env: &TestEnv,
    args: &[&str],
    vars: &[(&str, &str)],
    delay: Option<Duration>,
) -> Result<Outcome> {
    let mut cmd = ctx.vault(env, args);
    for (name, value) in vars {
        cmd.env(name, value);
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start vault: {e}"))?;
    kill_after(child, delay)
}

/// The kill window over a finished run's median time: most kills land inside the run.
const WINDOW: f64 = 1.5;

/// The kill delay: one run in five is left to finish; the others die uniformly within
/// `0..window` ms, `window` being 1.5 times a finished run's median time, so kills land
/// everywhere from exec to exit.
fn delay(rng: &mut Rng, window_ms: f64) -> Option<Duration> {
    if rng.below(5) == 0 {
        None
    } else {
        Some(Duration::from_micros(rng.below((window_ms * 1e3) as u64)))
    }
}

/// Median wall time of `runs` finished runs of `run` (each after an untimed `before`), ms.
fn calibrate(
    runs: usize,
    mut before: impl FnMut() -> Result,
    mut run: impl FnMut(usize) -> Result,
) -> Result<f64> {
    let mut ms = Vec::new();
    for i in 0..runs {
        before()?;
        let t = Instant::now();
        run(i)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(&mut ms))
}

/// The stored key of `profile`, read back through `export --no-session` (decrypts it).
fn stored_key(ctx: &Ctx<'_>, env: &TestEnv, profile: &str) -> Result<String> {
    let out = ctx.ok(
        env,
        &["export", "--no-session", "--format", "json", profile],
        &[],
    )?;
    let json: Value = serde_json::from_str(&out).map_err(|e| format!("not JSON: {e}"))?;
    Ok(json["AccessKeyId"].as_str().unwrap_or_default().to_owned())
}

fn lines(text: &str) -> BTreeSet<String> {
    text.lines().map(|l| l.trim().to_owned()).collect()
}

pub(super) fn adds(ctx: &Ctx<'_>, rng: &mut Rng) -> Result<Section> {
    let n = ctx.opts.adds;
    let env = ctx.file_env(false);
    env.write_config("[profile base]\nregion = us-east-1\n");
    let _unlocked = ctx.seed(&env, &fake_key(0))?;
    let add = |profile: &str, i: u64, delay: Option<Duration>| {
        let (id, secret) = fake_key(i);
        killed_run(
            ctx,
            &env,
            &["add", "--env", profile],
            &[
                ("AWS_ACCESS_KEY_ID", &id),
                ("AWS_SECRET_ACCESS_KEY", &secret),
            ],
            delay,
        )
    };
    let window = WINDOW
        * calibrate(
            5,
            || Ok(()),
            |i| {
                let profile = format!("calibrate-{i}");
                match add(&profile, 100_000 + i as u64, None)? {
                    o if o.succeeded() => Ok(()),
                    o => Err(format!("vault add {profile} failed: {o:?}")),
                }
            },
        )?;

    let (mut reported, mut killed, mut failed_exit) = (Vec::new(), 0usize, Vec::new());
    for i in 0..n {
        let profile = format!("k{i}");
        match add(&profile, i as u64 + 1, delay(rng, window))? {
            o if o.succeeded() => reported.push((profile, i as u64 + 1)),
            Outcome::Killed => killed += 1,
            Outcome::Exited(status) => failed_exit.push(format!("{profile}: {status}")),
        }
    }

    // Right after the kills, before any further write.
    let temps_left = temp_files(&write_dirs(&env));
    let list = ctx.run(&env, &["list"], &[]);
    let credentials = ctx.run(&env, &["list", "--credentials"], &[]);
    let profiles = ctx.run(&env, &["list", "--profiles"], &[]);
    let present = lines(&credentials.stdout);
    let config = fs::read_to_string(env.config_path()).unwrap_or_default();
    let sections = lines(&config);

    let mut lost = Vec::new();
    let mut missing_section = 0;
    for (profile, i) in &reported {
        match stored_key(ctx, &env, profile) {
            Ok(id) if id == fake_key(*i).0 => {}
            Ok(_) => lost.push(format!("{profile}: another key")),
            Err(e) => lost.push(format!("{profile}: {e}")),
        }
        if !sections.contains(&format!("[profile {profile}]")) {
            missing_section += 1;
        }
    }
    // Kept although the run was killed (after its rename): must decrypt too.
    let reported_names: BTreeSet<&str> = reported.iter().map(|(p, _)| p.as_str()).collect();
    let mut corrupt = Vec::new();
    let mut kept_unreported = 0;
    for profile in present.iter().filter(|p| p.starts_with('k')) {
        if reported_names.contains(profile.as_str()) {
            continue;
        }
        kept_unreported += 1;
        let i: u64 = profile[1..].parse().unwrap_or(0) + 1;
        match stored_key(ctx, &env, profile) {
            Ok(id) if id == fake_key(i).0 => {}
            Ok(_) => corrupt.push(format!("{profile}: another key")),
            Err(e) => corrupt.push(format!("{profile}: {e}")),
        }
    }

    // One more successful write cleans what the killed writers left.
    let after = add("after-kills", 999_999, None)?;
    let temps_after = temp_files(&write_dirs(&env));

    let damaged = [&list, &credentials, &profiles]
        .iter()
        .filter(|r| !r.status.success())
        .count();
    let mut s = Section::new(1, "");
    let _ = write!(
        s.md,
        "{n} `vault add --env kN` runs (file vault, AWS_VAULT_FILE_PASSPHRASE set and the \
         vault unlocked, so the run's time is vault's own: open, lock, re-read, encrypt, temp \
         file, fsync, rename, then the same for `~/.aws/config`). One run in five finishes; \
         the others get SIGKILL after a uniform delay in 0..{window:.0} ms (1.5 times the \
         median of 5 finished runs). Then: `vault list`, `list --credentials`, `list --profiles`; \
         every profile whose add exited 0 read back with `vault export --no-session` (the key \
         decrypted and compared), and every other stored `kN` too; the config checked for each \
         reported `[profile kN]`; `.*.tmp` files in the vault dir and `~/.aws` counted before \
         and after one more successful `vault add`.\n\n\
         Reported stored: {}; killed: {killed}; exited non-zero: {}; stored although killed \
         (after the rename): {kept_unreported}.\n",
        reported.len(),
        failed_exit.len(),
    );
    for (what, list) in [
        ("lost", &lost),
        ("corrupt", &corrupt),
        ("failed", &failed_exit),
    ] {
        if !list.is_empty() {
            let _ = writeln!(s.md, "\n{what}: {}", list.join("; "));
        }
    }
    s.rows = vec![
        Row::info(
            1,
            "add runs: finished ok / killed / kill window",
            format!("{} / {killed} / {window:.0} ms", reported.len()),
        ),
        Row::zero(1, "reported stored but lost or not decrypting", lost.len()),
        Row::zero(1, "stored keys that do not decrypt", corrupt.len()),
        Row::zero(1, "files damaged (`vault list*` failing)", damaged),
        Row::zero(
            1,
            "reported adds without their config section",
            missing_section,
        ),
        Row::zero(1, "adds exiting non-zero without a kill", failed_exit.len()),
        Row::info(1, "temp files left by the kills", temps_left.to_string()),
        Row::zero(
            1,
            "temp files after one more write",
            temps_after + usize::from(!after.succeeded()),
        ),
    ];
    if damaged > 0 {
        let _ = writeln!(
            s.md,
            "\nlist: {}; --credentials: {}; --profiles: {}",
            first_line(&list.stderr),
            first_line(&credentials.stderr),
            first_line(&profiles.stderr)
        );
    }
    s.json = json!({
        "runs": n, "kill_window_ms": window, "reported": reported.len(), "killed": killed,
        "stored_although_killed": kept_unreported, "lost": lost, "corrupt": corrupt,
        "exited_non_zero": failed_exit, "temps_after_kills": temps_left,
        "temps_after_one_write": temps_after, "config_sections_missing": missing_section,
    });
    Ok(s)
}

pub(super) fn mints(ctx: &Ctx<'_>, rng: &mut Rng) -> Result<Section> {
    let n = ctx.opts.mints;
    let env = ctx.file_env(true);
    let (key, role_arn) = ctx.moto_identity("stress-mint");
    env.write_config(&role_config(&role_arn));
    let _unlocked = ctx.seed(&env, &key)?;
    let export = ["export", "--format", "json", "role"];
    let window = WINDOW
        * calibrate(
            5,
            || ctx.ok(&env, &["clear"], &[]).map(drop),
            |_| ctx.ok(&env, &export, &[]).map(drop),
        )?;

    let (mut finished, mut killed) = (0usize, 0usize);
    let mut unreadable = Vec::new();
    let mut not_recovered = Vec::new();
    let sts_before = ctx.moto.sts_calls().len();
    for i in 0..n {
        ctx.ok(&env, &["clear"], &[])?;
        match killed_run(ctx, &env, &export, &[], delay(rng, window))? {
            o if o.succeeded() => finished += 1,
            Outcome::Killed => killed += 1,
            Outcome::Exited(status) => not_recovered.push(format!("run {i}: exited {status}")),
        }
        // The cache as the killed run left it: readable, and the next export works from it
        // or mints again.
        let sessions = ctx.run(&env, &["list", "--sessions"], &[]);
        if !sessions.status.success() {
            unreadable.push(format!("run {i}: {}", first_line(&sessions.stderr)));
        }
        let next = ctx.run(&env, &export, &[]);
        let has_key = serde_json::from_str::<Value>(&next.stdout)
            .ok()
            .is_some_and(|j| j["AccessKeyId"].as_str().is_some());
        if !next.status.success() || !has_key {
            not_recovered.push(format!("run {i}: {}", first_line(&next.stderr)));
        }
    }
    let sts = ctx.moto.sts_calls().len() - sts_before;
    let base = stored_key(ctx, &env, "base");
    let lost = usize::from(!matches!(&base, Ok(id) if *id == key.0));
    let list = ctx.run(&env, &["list"], &[]);
    ctx.ok(&env, &["clear"], &[])?;
    let temps = temp_files(&write_dirs(&env));

    let mut s = Section::new(2, "");
    let _ = write!(
        s.md,
        "{n} cold `vault export --format json role` (AssumeRole of a moto role from the stored \
         key of `base`, through AWS_ENDPOINT_URL), `vault clear` before each. One in five \
         finishes; the others get SIGKILL after a uniform delay in 0..{window:.0} ms (1.5 times \
         the median of 5 cold exports). After each: `vault list --sessions` (the cache as the kill \
         left it) and one more export, which must hand out credentials (from the cache or by \
         minting again). At the end `base`'s key is read back (`export --no-session`), \
         `vault list` must work, and after one `vault clear` no `.*.tmp` may be left.\n\n\
         Finished: {finished}; killed: {killed}; STS requests in all: {sts}.\n"
    );
    for (what, list) in [
        ("unreadable", &unreadable),
        ("not recovered", &not_recovered),
    ] {
        if !list.is_empty() {
            let _ = writeln!(s.md, "\n{what}: {}", list.join("; "));
        }
    }
    if let Err(e) = &base {
        let _ = writeln!(s.md, "\nbase: {e}");
    }
    s.rows = vec![
        Row::info(
            2,
            "cold mints: finished / killed / kill window",
            format!("{finished} / {killed} / {window:.0} ms"),
        ),
        Row::zero(2, "lost (stored key unreadable after the kills)", lost),
        Row::zero(
            2,
            "corrupt (cache or vault unreadable after a kill)",
            unreadable.len() + usize::from(!list.status.success()),
        ),
        Row::zero(
            2,
            "exports failing right after a killed one",
            not_recovered.len(),
        ),
        Row::zero(2, "temp files after one more write", temps),
    ];
    s.json = json!({
        "runs": n, "kill_window_ms": window, "finished": finished, "killed": killed,
        "sts_requests": sts, "unreadable": unreadable, "not_recovered": not_recovered,
        "base_key_readable": lost == 0, "temps_after_one_write": temps,
    });
    Ok(s)
}
