//! Scenarios 3 and 4: many vault processes at once. Every writer takes `vault.lock` and
//! re-reads before it changes anything, so no write may be lost, whatever the interleaving.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;
use vault_harness::TestEnv;

use super::{
    Ctx, Rng, Row, Section, fake_key, first_line, role_config, temp_files, wait_all, write_dirs,
};
use crate::Result;

fn add_vars(i: u64) -> [(String, String); 2] {
    let (id, secret) = fake_key(i);
    [
        ("AWS_ACCESS_KEY_ID".to_owned(), id),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), secret),
    ]
}

/// The profiles a stored key is listed for, and the config's `[profile x]` names.
fn store_state(ctx: &Ctx<'_>, env: &TestEnv) -> Result<(BTreeSet<String>, BTreeSet<String>)> {
    let listed = ctx.ok(env, &["list", "--credentials"], &[])?;
    let config = fs::read_to_string(env.config_path()).unwrap_or_default();
    let sections = config
        .lines()
        .filter_map(|l| l.trim().strip_prefix("[profile ")?.strip_suffix(']'))
        .map(str::to_owned)
        .collect();
    Ok((listed.lines().map(str::to_owned).collect(), sections))
}

/// Profiles in `expected` whose key does not read back as `fake_key(i)`.
fn unreadable(ctx: &Ctx<'_>, env: &TestEnv, expected: &BTreeMap<String, u64>) -> Vec<String> {
    expected
        .iter()
        .filter(|(profile, i)| {
            let out = ctx
                .ok(
                    env,
                    &["export", "--no-session", "--format", "json", profile],
                    &[],
                )
                .unwrap_or_default();
            !out.contains(&fake_key(**i).0)
        })
        .map(|(p, _)| p.clone())
        .collect()
}

pub(super) fn writers(ctx: &Ctx<'_>, _rng: &mut Rng) -> Result<Section> {
    let (n, rounds) = (ctx.opts.writers, ctx.opts.writer_rounds);
    let env = ctx.file_env(false);
    env.write_config("[profile base]\nregion = us-east-1\n");
    let _unlocked = ctx.seed(&env, &fake_key(0))?;
    let mut failed = Vec::new();
    let (mut missing_keys, mut missing_sections, mut unreadable_keys) = (0, 0, 0);
    let mut burst_ms = Vec::new();
    for round in 0..rounds {
        let mut expected = BTreeMap::new();
        let start = Instant::now();
        let children = (0..n)
            .map(|i| {
                let profile = format!("w{round}-{i}");
                let key = (round * 1000 + i) as u64 + 1;
                expected.insert(profile.clone(), key);
                let mut cmd = ctx.vault(&env, &["add", "--env", &profile]);
                cmd.envs(add_vars(key))
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped());
                cmd.spawn().map(|c| (profile, c))
            })
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| format!("cannot start vault: {e}"))?;
        failed.extend(wait_all(children)?);
        burst_ms.push(start.elapsed().as_secs_f64() * 1e3);
        let (listed, sections) = store_state(ctx, &env)?;
        missing_keys += expected.keys().filter(|p| !listed.contains(*p)).count();
        missing_sections += expected.keys().filter(|p| !sections.contains(*p)).count();
        unreadable_keys += unreadable(ctx, &env, &expected).len();
    }
    let temps = temp_files(&write_dirs(&env));
    let mut s = Section::new(3, "");
    let _ = writeln!(
        s.md,
        "{rounds} round(s) of {n} `vault add --env wR-I` started at once on one unlocked \
         passphrase vault (each also appends its `[profile wR-I]` to the config). After each \
         round: `vault list --credentials` must name all {n}, the config must have all {n} \
         sections, and each key must read back (`export --no-session`). Wall time per burst: \
         {}.",
        burst_ms
            .iter()
            .map(|ms| format!("{ms:.0} ms"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !failed.is_empty() {
        let _ = writeln!(s.md, "\nfailed: {}", failed.join("; "));
    }
    s.rows = vec![
        Row::check(
            3,
            &format!("{n} concurrent adds × {rounds}: all present"),
            format!("{} of {}", n * rounds - missing_keys, n * rounds),
            "all",
            missing_keys == 0,
        ),
        Row::check(
            3,
            "config sections present",
            format!("{} of {}", n * rounds - missing_sections, n * rounds),
            "all",
            missing_sections == 0,
        ),
        Row::zero(3, "concurrent adds failing", failed.len()),
        Row::zero(3, "keys not reading back", unreadable_keys),
        Row::zero(3, "temp files left", temps),
    ];
    s.json = json!({
        "writers": n, "rounds": rounds, "burst_ms": burst_ms, "failed": failed,
        "missing_keys": missing_keys, "missing_sections": missing_sections,
        "unreadable_keys": unreadable_keys, "temps": temps,
    });
    Ok(s)
}

const KINDS: [&str; 6] = ["add", "remove", "exec", "export", "list", "clear"];
/// Relative frequency of each kind, in KINDS order.
const WEIGHTS: [u64; 6] = [2, 1, 3, 3, 2, 1];

#[derive(Default)]
struct Tally {
    ops: BTreeMap<&'static str, (usize, usize, f64)>,
    failures: BTreeMap<String, usize>,
    /// The profiles each worker left stored, with their key numbers.
    stored: BTreeMap<String, u64>,
}

pub(super) fn mixed(ctx: &Ctx<'_>, rng: &mut Rng) -> Result<Section> {
    let env = ctx.file_env(true);
    let (key, role_arn) = ctx.moto_identity("stress-mixed");
    env.write_config(&role_config(&role_arn));
    let _unlocked = ctx.seed(&env, &key)?;
    let seconds = ctx.opts.load_seconds;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tally = Mutex::new(Tally::default());
    let sts_before = ctx.moto.sts_calls().len();
    std::thread::scope(|scope| {
        for w in 0..ctx.opts.workers {
            let mut rng = Rng::new(rng.next());
            let (env, tally) = (&env, &tally);
            scope.spawn(move || worker(ctx, env, w, &mut rng, deadline, tally));
        }
    });
    let sts = ctx.moto.sts_calls().len() - sts_before;
    let tally = tally.into_inner().map_err(|_| "a worker panicked")?;

    // The store must match exactly what the workers did.
    let (listed, _) = store_state(ctx, &env)?;
    let mut expected: BTreeSet<String> = tally.stored.keys().cloned().collect();
    expected.insert("base".to_owned());
    let mismatch = listed.symmetric_difference(&expected).count();
    let unreadable_keys = unreadable(ctx, &env, &tally.stored);
    let temps = temp_files(&write_dirs(&env));

    let total: usize = tally.ops.values().map(|v| v.0).sum();
    let failures: usize = tally.failures.values().sum();
    let mut s = Section::new(4, "");
    let _ = writeln!(
        s.md,
        "{} workers for {seconds} s, each running one vault command after another, picked at \
         random (weights add 2, remove 1, exec 3, export 3, list 2, clear 1) on one unlocked \
         passphrase vault whose `role` profile assumes a moto role: `add --env` of a new \
         profile, `remove -f` of one the worker added, `exec role -- true`, `export --format \
         json role`, `list`, `clear`. No failure is expected: every one counts. At the end the \
         stored profiles must be exactly `base` and those added and not removed, each reading \
         back. STS requests: {sts}.\n",
        ctx.opts.workers
    );
    s.md.push_str("| kind | runs | failed | mean |\n|---|---:|---:|---:|\n");
    for kind in KINDS {
        let (n, f, ms) = tally.ops.get(kind).copied().unwrap_or_default();
        let _ = writeln!(
            s.md,
            "| {kind} | {n} | {f} | {:.0} ms |",
            if n > 0 { ms / n as f64 } else { 0.0 }
        );
    }
    for (message, n) in &tally.failures {
        let _ = writeln!(s.md, "\nfailure ({n}×): {message}");
    }
    s.rows = vec![
        Row::info(
            4,
            &format!("ops in {seconds} s ({} workers)", ctx.opts.workers),
            format!(
                "{total} ({})",
                KINDS
                    .iter()
                    .map(|k| format!("{k} {}", tally.ops.get(k).map_or(0, |v| v.0)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Row::zero(4, "failed ops", failures),
        Row::zero(4, "stored profiles not matching the ops", mismatch),
        Row::zero(4, "stored keys not reading back", unreadable_keys.len()),
        Row::zero(4, "temp files left", temps),
    ];
    s.json = json!({
        "workers": ctx.opts.workers, "seconds": seconds, "sts_requests": sts,
        "ops": tally.ops.iter().map(|(k, (n, f, ms))| (k.to_string(), json!({"runs": n, "failed": f, "total_ms": ms}))).collect::<serde_json::Map<_, _>>(),
        "failures": tally.failures, "mismatch": mismatch, "unreadable": unreadable_keys,
        "temps": temps,
    });
    Ok(s)
}

fn worker(
    ctx: &Ctx<'_>,
    env: &TestEnv,
    w: usize,
    rng: &mut Rng,
    deadline: Instant,
    tally: &Mutex<Tally>,
) {
    let mut mine: Vec<(String, u64)> = Vec::new();
    let mut next = 0u64;
    while Instant::now() < deadline {
        let mut pick = rng.below(WEIGHTS.iter().sum());
        let mut kind = KINDS.len() - 1;
        for (i, weight) in WEIGHTS.iter().enumerate() {
            if pick < *weight {
                kind = i;
                break;
            }
            pick -= weight;
        }
        if KINDS[kind] == "remove" && mine.is_empty() {
            kind = 0;
        }
        let mut removed = None;
        let mut added = None;
        let mut cmd = match KINDS[kind] {
            "add" => {
                next += 1;
                let profile = format!("m{w}-{next}");
                let i = 1_000_000 * (w as u64 + 1) + next;
                let mut cmd = ctx.vault(env, &["add", "--env", &profile]);
                cmd.envs(add_vars(i));
                added = Some((profile, i));
                cmd
            }
            "remove" => {
                let (profile, i) = mine.swap_remove(rng.below(mine.len() as u64) as usize);
                let cmd = ctx.vault(env, &["remove", "-f", &profile]);
                removed = Some((profile, i));
                cmd
            }
            "exec" => ctx.vault(env, &["exec", "role", "--", "true"]),
            "export" => ctx.vault(env, &["export", "--format", "json", "role"]),
            "list" => ctx.vault(env, &["list"]),
            _ => ctx.vault(env, &["clear"]),
        };
        let start = Instant::now();
        let out = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output();
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let ok = out.as_ref().is_ok_and(|o| o.status.success());
        // A failed add stores nothing; a failed remove leaves the key where it was.
        match (ok, added, removed) {
            (true, Some(a), _) => mine.push(a),
            (false, _, Some(r)) => mine.push(r),
            _ => {}
        }
        let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
        let entry = t.ops.entry(KINDS[kind]).or_default();
        entry.0 += 1;
        entry.2 += ms;
        if !ok {
            entry.1 += 1;
            let message = match &out {
                Ok(o) => format!(
                    "{} ({}): {}",
                    KINDS[kind],
                    o.status,
                    first_line(&String::from_utf8_lossy(&o.stderr))
                ),
                Err(e) => format!("{}: cannot run: {e}", KINDS[kind]),
            };
            *t.failures.entry(message).or_default() += 1;
        }
    }
    let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
    t.stored.extend(mine);
}
