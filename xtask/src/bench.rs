//! `cargo xtask bench`: vault's performance, each figure next to its comparison, measured in the
//! same run and given as a ratio.
//!
//! Builds the release binary, starts its own moto (recording every request) and a private
//! gnome-keyring, creates a user, a key and a role in moto, stores the key in a passphrase vault
//! and in an OS-keyring vault, and measures:
//!
//! 1. warm `vault exec lab -- true` against `env AWS_ACCESS_KEY_ID=x true` and awsume;
//! 2. the cold role + MFA chain: wall time, STS requests (moto's recording), MFA prompts;
//! 3. 32 concurrent cold `vault export`: STS requests and MFA prompts;
//! 4. the `--server` and `--imds` endpoints under wrk against nginx returning the same JSON;
//! 5. warm exec with a 5,000-profile config against a 10-profile one;
//! 6. peak RSS of warm exec and of `vault unlock`.
//!
//! Process timings are interleaved (one run of each contender per round, the order rotating),
//! so a noisy neighbour slows all of them alike; every figure is the median of the measured
//! rounds after warm-up rounds, with min and max. The report goes to `target/bench/`:
//! `report.md`, `report.json` (every raw sample) and `chart.svg` (the ratios against their
//! targets). Every process started here is stopped by its PID; everything binds 127.0.0.1.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vault_harness::{Moto, SecretService, TestEnv, free_port, http_request, parse_env};

use crate::{Result, cargo, display, run as run_cmd, setup};

const PASSPHRASE: &str = "bench passphrase";
const MFA_SERIAL: &str = "arn:aws:iam::123456789012:mfa/bench";
const MFA_CODE: &str = "123456";
const SMALL_CONFIG: usize = 10;
const LARGE_CONFIG: usize = 5000;
const PARALLEL: usize = 32;
const WRK_THREADS: u32 = 2;
const WRK_CONNECTIONS: u32 = 32;
const MIB: f64 = 1024.0;

const USAGE: &str = "usage: cargo xtask bench [--runs N] [--warmup N] [--wrk-seconds S] \
    [--wrk-rounds N] [--no-build]\n\n  \
    --runs N         measured rounds per process-timing case (default 20, at least 10)\n  \
    --warmup N       unmeasured rounds first (default 3)\n  \
    --wrk-seconds S  length of each wrk run (default 10)\n  \
    --wrk-rounds N   wrk runs per server, interleaved (default 3)\n  \
    --no-build       use target/release/vault as it is";

struct Options {
    runs: usize,
    warmup: usize,
    wrk_seconds: u64,
    wrk_rounds: usize,
    build: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut opts = Options {
            runs: 20,
            warmup: 3,
            wrk_seconds: 10,
            wrk_rounds: 3,
            build: true,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut number = |name: &str| -> Result<u64> {
                args.next()
                    .and_then(|v| v.parse().ok())
                    .ok_or(format!("{name} needs a number\n\n{USAGE}"))
            };
            match arg.as_str() {
                "--runs" => opts.runs = number("--runs")? as usize,
                "--warmup" => opts.warmup = number("--warmup")? as usize,
                "--wrk-seconds" => opts.wrk_seconds = number("--wrk-seconds")?.max(1),
                "--wrk-rounds" => opts.wrk_rounds = number("--wrk-rounds")?.max(1) as usize,
                "--no-build" => opts.build = false,
                "-h" | "--help" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
            }
        }
        if opts.runs < 10 {
            return Err(format!(
                "--runs must be at least 10 (medians of fewer runs mean little here)\n\n{USAGE}"
            ));
        }
        opts.warmup = opts.warmup.max(1);
        Ok(opts)
    }
}

pub fn run(root: &Path, args: &[String]) -> Result {
    let opts = Options::parse(args)?;
    let started = Instant::now();

    eprintln!("xtask bench: installing the tools if missing (wrk, nginx-light, awsume, moto)");
    let rig = setup::bench_tools(root)?;
    eprintln!(
        "xtask bench: moto from {}, awsume from {}",
        rig.venv.display(),
        rig.awsume_venv.display()
    );

    let bin = root.join("target/release/vault");
    if opts.build {
        run_cmd(
            cargo()
                .current_dir(root)
                .args(["build", "--release", "-p", "vault-exec"]),
        )?;
    }
    if !bin.exists() {
        return Err(format!("{} was not built", bin.display()));
    }
    let out_dir = root.join("target/bench");
    fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let meta = machine_meta(root, &bin, &opts);

    // The passphrase vault's world. moto is declared after it, so moto stops first.
    eprintln!("xtask bench: starting moto, gnome-keyring; creating the key and the role");
    let mut file = TestEnv::new();
    let moto = Moto::start(&file);
    file.use_moto(&moto);
    file.set("AWS_VAULT_BACKEND", "file");
    let (key_id, secret) = moto.create_access_key(&file, "bench");
    let role_arn = moto.create_role(&file, "lab");

    // The OS-keyring vault: its own temp dir (a vault remembers its backend) and a private
    // D-Bus session bus with gnome-keyring.
    let mut keyring = TestEnv::new();
    let secret_service = SecretService::start(&mut keyring);
    keyring.use_moto(&moto);
    keyring.set("AWS_VAULT_BACKEND", "secret-service");

    let mut bench = Bench {
        opts: &opts,
        bin: bin.clone(),
        moto: &moto,
        file: &file,
        keyring: &keyring,
        role_arn,
        awsume: None,
    };
    for env in [&file, &keyring] {
        env.write_config(&config(env, &bench.role_arn, SMALL_CONFIG));
        bench.ok(
            env,
            &["add", "--env", "base", "--no-add-config"],
            &[
                ("AWS_ACCESS_KEY_ID", &key_id),
                ("AWS_SECRET_ACCESS_KEY", &secret),
                ("AWS_VAULT_FILE_PASSPHRASE", PASSPHRASE),
            ],
        )?;
    }
    // A second vault in the same gnome-keyring whose key is never kept in the kernel
    // (AWS_VAULT_UNLOCK_TIMEOUT=0): what a command pays when the kept key has idled out.
    let mut add =
        bench.uncached(bench.vault(&keyring, &["add", "--env", "base", "--no-add-config"]));
    add.env("AWS_ACCESS_KEY_ID", &key_id)
        .env("AWS_SECRET_ACCESS_KEY", &secret);
    let run = keyring.output(&mut add);
    if !run.status.success() {
        return Err(format!(
            "vault add (uncached keyring vault) failed: {}",
            run.stderr.trim()
        ));
    }
    bench.ok(
        &file,
        &["unlock", "--for", "1h"],
        &[("AWS_VAULT_FILE_PASSPHRASE", PASSPHRASE)],
    )?;
    let locks = [&file, &keyring].map(|env| LockOnDrop { env, bin: &bin });
    bench.awsume = Some(Awsume::prepare(
        &rig.awsume_venv,
        &file,
        &moto,
        &bench.role_arn,
        &key_id,
        &secret,
    ));

    let mut report = Report::default();
    eprintln!("xtask bench: 2. cold chain");
    bench.cold_chain(&mut report)?;
    eprintln!("xtask bench: 1. warm exec");
    let warm = bench.warm_exec(&mut report)?;
    eprintln!("xtask bench: 5. config scale");
    bench.config_scale(&mut report)?;
    eprintln!("xtask bench: 3. parallel cold");
    bench.parallel_cold(&mut report)?;
    eprintln!(
        "xtask bench: 4. servers (wrk: {} × {} s per server)",
        opts.wrk_rounds, opts.wrk_seconds
    );
    bench.servers(&mut report)?;
    eprintln!("xtask bench: 6. memory");
    bench.memory(&mut report, &warm)?;

    drop(locks);
    drop(secret_service);
    let mut meta = meta;
    meta["load_average_end"] = json!(load_average());
    meta["bench_seconds"] = json!(started.elapsed().as_secs());
    report.write(&out_dir, &meta)?;
    Ok(())
}

// ----- the world -----

/// `[profile base]`, `[profile lab]` (role + MFA from base, codes from `mfa_process`, which
/// counts its runs in `mfa-count`), and fillers up to `profiles` profiles; `lab` comes last.
fn config(env: &TestEnv, role_arn: &str, profiles: usize) -> String {
    let mut text = String::from("[profile base]\nregion = us-east-1\n\n");
    for i in 0..profiles.saturating_sub(2) {
        let _ = write!(
            text,
            "[profile team-{i}]\n\
             source_profile = base\n\
             role_arn = arn:aws:iam::123456789012:role/team-{i}\n\
             mfa_serial = {MFA_SERIAL}\n\
             region = eu-west-1\n\n"
        );
    }
    let counter = env.dir.path().join("mfa-count");
    let _ = write!(
        text,
        "[profile lab]\n\
         source_profile = base\n\
         role_arn = {role_arn}\n\
         mfa_serial = {MFA_SERIAL}\n\
         mfa_process = echo x >> {}; echo {MFA_CODE}\n\
         region = us-east-1\n",
        counter.display()
    );
    text
}

/// The STS actions of a plan, in order, from `vault exec --explain`: its numbered steps but
/// the stored key (`  2. GetSessionToken with MFA, 8h` → `GetSessionToken`).
fn sts_steps(explain: &str) -> Vec<String> {
    explain
        .lines()
        .filter_map(|line| {
            let (number, rest) = line.trim_start().split_once(". ")?;
            number.parse::<u32>().ok()?;
            let action = rest.split_whitespace().next()?;
            let is_action = action.len() > 1
                && action.chars().all(|c| c.is_ascii_alphabetic())
                && action.starts_with(|c: char| c.is_ascii_uppercase());
            is_action.then(|| action.to_owned())
        })
        .collect()
}

fn mfa_prompts(env: &TestEnv) -> usize {
    fs::read_to_string(env.dir.path().join("mfa-count"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

struct Bench<'a> {
    opts: &'a Options,
    bin: PathBuf,
    moto: &'a Moto,
    /// The passphrase vault, unlocked.
    file: &'a TestEnv,
    /// The OS-keyring vault.
    keyring: &'a TestEnv,
    role_arn: String,
    awsume: Option<std::result::Result<Awsume<'a>, String>>,
}

impl<'a> Bench<'a> {
    fn vault(&self, env: &TestEnv, args: &[&str]) -> Command {
        let mut cmd = env.command(&self.bin);
        cmd.args(args);
        cmd
    }

    /// Runs `vault ARGS`, which must succeed: its stdout.
    fn ok(&self, env: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> Result<String> {
        let mut cmd = self.vault(env, args);
        for (name, value) in vars {
            cmd.env(name, value);
        }
        let run = env.output(&mut cmd);
        if run.status.success() {
            Ok(run.stdout)
        } else {
            Err(format!(
                "`vault {}` failed ({}): {}",
                args.join(" "),
                run.status,
                run.stderr.trim()
            ))
        }
    }

    /// Points a command at the keyring env's second vault, whose key is never kept.
    fn uncached(&self, mut cmd: Command) -> Command {
        cmd.env(
            "AWS_VAULT_FILE_DIR",
            self.keyring.dir.path().join("vault-uncached"),
        )
        .env("AWS_VAULT_UNLOCK_TIMEOUT", "0");
        cmd
    }

    fn sts_len(&self) -> usize {
        self.moto.sts_calls().len()
    }

    fn floor(&self) -> Contender<'_> {
        Contender::new("floor: env AWS_ACCESS_KEY_ID=x true", move || {
            let mut cmd = self.file.command("env");
            cmd.args(["AWS_ACCESS_KEY_ID=x", "true"]);
            cmd
        })
    }

    fn awsume(&self) -> Option<&Awsume<'a>> {
        self.awsume.as_ref().and_then(|a| a.as_ref().ok())
    }

    fn awsume_note(&self) -> String {
        match &self.awsume {
            Some(Err(e)) => format!("\n**awsume could not be run against moto**: {e}\n"),
            _ => String::new(),
        }
    }

    // ----- 2. cold chain -----

    /// Role + MFA from an empty cache, interleaved with awsume from an empty cache and the
    /// floor. Leaves the cache warm.
    fn cold_chain(&self, report: &mut Report) -> Result {
        let explain = self.ok(self.file, &["exec", "--explain", "lab"], &[])?;
        let plan = sts_steps(&explain);
        if plan.is_empty() {
            return Err(format!(
                "no STS step in `vault exec --explain lab`:\n{explain}"
            ));
        }
        let mut contenders = vec![
            self.floor(),
            Contender::new("vault exec lab -- true, empty cache", || {
                self.vault(self.file, &["exec", "lab", "--", "true"])
            })
            .before(|| self.ok(self.file, &["clear"], &[]).map(|_| ()))
            .prompts(self.file),
        ];
        if let Some(awsume) = self.awsume() {
            contenders.push(
                Contender::new("awsume lab, empty cache", move || {
                    awsume.command(&format!("lab --mfa-token {MFA_CODE}"))
                })
                .before(move || awsume.clear_cache()),
            );
        }
        let series = self.interleave(&contenders)?;
        let (floor, vault) = (&series[0], &series[1]);
        let awsume = series.get(2);

        let exact = vault.sts.iter().all(|calls| *calls == plan);
        let one_prompt = vault.prompts.iter().all(|p| *p == 1);
        let per_run: Vec<usize> = vault.sts.iter().map(Vec::len).collect();

        let mut md = String::new();
        let _ = writeln!(
            md,
            "Profile `lab`: role `{}` assumed from the MFA session of the stored key `base` \
             (`mfa_process` supplies the code). `vault clear` before each vault run; awsume's \
             `~/.awsume/cache` removed before each awsume run.\n",
            self.role_arn
        );
        md.push_str("The plan (`vault exec --explain lab`, before the runs):\n\n```\n");
        md.push_str(explain.trim_end());
        md.push_str("\n```\n\n");
        md.push_str(&time_table(&series, Some(floor)));
        let _ = writeln!(
            md,
            "\nSTS requests per cold vault run (moto's recording): {} (expected {} = one per \
             plan step: {}); MFA prompts per run: {}.\n",
            summarize_counts(&per_run),
            plan.len(),
            plan.join(" → "),
            summarize_counts(&vault.prompts),
        );
        if let Some(awsume) = awsume {
            let per: Vec<usize> = awsume.sts.iter().map(Vec::len).collect();
            let _ = writeln!(
                md,
                "awsume's STS requests per cold run: {}.\n",
                summarize_counts(&per)
            );
        }
        md.push_str(&self.awsume_note());

        report.rows.push(Row::new(
            2,
            "cold chain: STS requests per run",
            summarize_counts(&per_run),
            format!("plan: {} steps", plan.len()),
            None,
            format!("= {} ({})", plan.len(), plan.join(" + ")),
            Verdict::pass_if(exact),
        ));
        report.rows.push(Row::new(
            2,
            "cold chain: MFA prompts per run",
            summarize_counts(&vault.prompts),
            String::new(),
            None,
            "= 1".into(),
            Verdict::pass_if(one_prompt),
        ));
        report.rows.push(Row::new(
            2,
            "cold chain: wall time vs floor",
            ms(vault.time().median),
            ms(floor.time().median),
            Some(vault.time().median / floor.time().median),
            "(no target)".into(),
            Verdict::Info,
        ));
        if let Some(awsume) = awsume {
            report.rows.push(Row::new(
                2,
                "cold chain: wall time vs awsume",
                ms(vault.time().median),
                ms(awsume.time().median),
                Some(vault.time().median / awsume.time().median),
                "(no target)".into(),
                Verdict::Info,
            ));
        }
        report.section(2, "Cold chain (role + MFA from an empty cache)", md);
        report.json["cold_chain"] = json!({
            "plan": plan,
            "series": series.iter().map(Series::json).collect::<Vec<_>>(),
            "exactly_one_request_per_step": exact,
        });
        Ok(())
    }

    // ----- 1. warm exec -----

    fn warm_exec(&self, report: &mut Report) -> Result<Vec<Series>> {
        // Each keyring vault's first run mints (and asks for a code) once.
        self.ok(self.keyring, &["exec", "lab", "--", "true"], &[])?;
        let mut first = self.uncached(self.vault(self.keyring, &["exec", "lab", "--", "true"]));
        let run = self.keyring.output(&mut first);
        if !run.status.success() {
            return Err(format!(
                "vault exec (uncached keyring vault) failed: {}",
                run.stderr.trim()
            ));
        }
        let mut contenders = vec![
            self.floor(),
            Contender::new("vault exec lab -- true (passphrase, unlocked)", || {
                self.vault(self.file, &["exec", "lab", "--", "true"])
            }),
            Contender::new("vault exec lab -- true (OS keyring: gnome-keyring)", || {
                self.vault(self.keyring, &["exec", "lab", "--", "true"])
            }),
            Contender::new(
                "vault exec lab -- true (OS keyring, key not kept: D-Bus every time)",
                || self.uncached(self.vault(self.keyring, &["exec", "lab", "--", "true"])),
            ),
        ];
        if let Some(awsume) = self.awsume() {
            // awsume caches the MFA session but assumes the role on every run (one
            // AssumeRole to moto each time); this is awsume as users run it, sourced.
            contenders.push(Contender::new(
                "awsume lab (sourced, MFA session cached)",
                move || awsume.command("lab"),
            ));
        }
        let series = self.interleave(&contenders)?;
        let floor = &series[0];
        let warm_sts: usize = series[1..4]
            .iter()
            .flat_map(|s| s.sts.iter().map(Vec::len))
            .sum();

        let mut md = String::new();
        md.push_str(
            "A cached role session (and MFA session): no STS request, no prompt. The passphrase \
             vault was opened once with `vault unlock`; the OS-keyring vault's key is in a \
             private gnome-keyring reached over D-Bus, and kept in the kernel keyring after the \
             first read, like an unlocked passphrase vault. The row \"key not kept\" is a second \
             vault in the same gnome-keyring with `AWS_VAULT_UNLOCK_TIMEOUT=0`: a D-Bus \
             connection and a Diffie-Hellman session on every command, which is what the first \
             command after the idle timeout pays.\n\n",
        );
        md.push_str(&time_table(&series, Some(floor)));
        let _ = writeln!(
            md,
            "\nSTS requests made by the warm vault runs: {warm_sts} (target 0)."
        );
        if let Some(awsume) = series.get(4) {
            let per: Vec<usize> = awsume.sts.iter().map(Vec::len).collect();
            let _ = writeln!(
                md,
                "awsume's STS requests per warm run: {} (it caches the MFA session, not the \
                 role's).",
                summarize_counts(&per)
            );
        }
        md.push_str(&self.awsume_note());

        let targets = [(1, 3.0, "passphrase, unlocked"), (2, 5.0, "OS keyring")];
        for (i, target, label) in targets {
            let ratio = series[i].time().median / floor.time().median;
            report.rows.push(Row::new(
                1,
                &format!("warm exec ({label}) vs floor"),
                ms(series[i].time().median),
                ms(floor.time().median),
                Some(ratio),
                format!("≤ {target}×"),
                Verdict::pass_if(ratio <= target),
            ));
            report.bars.push(Bar {
                label: format!("warm exec, {label} / floor (≤ {target}×)"),
                ratio,
                target: Some((Dir::AtMost, target)),
            });
        }
        let uncached = series[3].time().median / floor.time().median;
        report.rows.push(Row::new(
            1,
            "warm exec (OS keyring, key not kept) vs floor",
            ms(series[3].time().median),
            ms(floor.time().median),
            Some(uncached),
            "(first command after the idle timeout)".into(),
            Verdict::Info,
        ));
        report.bars.push(Bar {
            label: "OS keyring, key not kept / floor (info)".into(),
            ratio: uncached,
            target: None,
        });
        if let Some(awsume) = series.get(4) {
            let ratio = awsume.time().median / floor.time().median;
            report.rows.push(Row::new(
                1,
                "awsume (warm) vs floor",
                ms(awsume.time().median),
                ms(floor.time().median),
                Some(ratio),
                "(comparison)".into(),
                Verdict::Info,
            ));
            report.bars.push(Bar {
                label: "awsume, warm / floor (comparison)".into(),
                ratio,
                target: None,
            });
            let vs = awsume.time().median / series[1].time().median;
            report.rows.push(Row::new(
                1,
                "awsume vs vault (passphrase, unlocked)",
                ms(awsume.time().median),
                ms(series[1].time().median),
                Some(vs),
                "(comparison)".into(),
                Verdict::Info,
            ));
        }
        report.rows.push(Row::new(
            2,
            "warm exec: STS requests",
            warm_sts.to_string(),
            String::new(),
            None,
            "= 0".into(),
            Verdict::pass_if(warm_sts == 0),
        ));
        report.section(1, "Warm exec", md);
        report.json["warm_exec"] = json!({
            "series": series.iter().map(Series::json).collect::<Vec<_>>(),
            "warm_sts_requests": warm_sts,
        });
        Ok(series)
    }

    // ----- 5. config scale -----

    fn config_scale(&self, report: &mut Report) -> Result {
        let large = self.file.home().join(".aws/config-5000");
        let text = config(self.file, &self.role_arn, LARGE_CONFIG);
        fs::write(&large, &text).map_err(|e| format!("{}: {e}", large.display()))?;
        let contenders = vec![
            Contender::new("warm exec, 10-profile config", || {
                self.vault(self.file, &["exec", "lab", "--", "true"])
            }),
            Contender::new("warm exec, 5,000-profile config", || {
                let mut cmd = self.vault(self.file, &["exec", "lab", "--", "true"]);
                cmd.env("AWS_CONFIG_FILE", &large);
                cmd
            }),
        ];
        let series = self.interleave(&contenders)?;
        let ratio = series[1].time().median / series[0].time().median;
        let sts: usize = series.iter().flat_map(|s| s.sts.iter().map(Vec::len)).sum();
        let mut md = format!(
            "The same `lab` profile, last in a config of {SMALL_CONFIG} profiles and in one of \
             {LARGE_CONFIG} ({} KiB); cache warm (STS requests during these runs: {sts}).\n\n",
            text.len() / 1024
        );
        md.push_str(&time_table(&series, Some(&series[0])));
        report.rows.push(Row::new(
            5,
            "warm exec, 5,000 vs 10 profiles",
            ms(series[1].time().median),
            ms(series[0].time().median),
            Some(ratio),
            "≤ 2×".into(),
            Verdict::pass_if(ratio <= 2.0 && sts == 0),
        ));
        report.bars.push(Bar {
            label: "config 5,000 / 10 profiles (≤ 2×)".into(),
            ratio,
            target: Some((Dir::AtMost, 2.0)),
        });
        report.section(5, "Config scale", md);
        report.json["config_scale"] = json!({
            "large_config_bytes": text.len(),
            "series": series.iter().map(Series::json).collect::<Vec<_>>(),
        });
        Ok(())
    }

    // ----- 3. parallel cold -----

    fn parallel_cold(&self, report: &mut Report) -> Result {
        let args = ["export", "--format", "json", "lab"];
        let mut cold = Series::named(&format!("{PARALLEL} × vault export, empty cache"));
        let mut warm = Series::named(&format!("{PARALLEL} × vault export, warm cache"));
        let mut distinct_keys = Vec::new();
        let (mut gst, mut ar) = (Vec::new(), Vec::new());
        for round in 0..self.opts.warmup + self.opts.runs {
            for is_cold in [round % 2 == 0, round % 2 == 1] {
                if is_cold {
                    self.ok(self.file, &["clear"], &[])?;
                }
                let sts_before = self.sts_len();
                let prompts_before = mfa_prompts(self.file);
                let start = Instant::now();
                let children: Vec<Child> = (0..PARALLEL)
                    .map(|_| {
                        self.vault(self.file, &args)
                            .stdout(Stdio::piped())
                            .stderr(Stdio::piped())
                            .spawn()
                            .map_err(|e| format!("cannot start vault: {e}"))
                    })
                    .collect::<Result<_>>()?;
                let mut keys = Vec::new();
                for child in children {
                    let out = child
                        .wait_with_output()
                        .map_err(|e| format!("vault export: {e}"))?;
                    if !out.status.success() {
                        return Err(format!(
                            "vault export failed ({}): {}",
                            out.status,
                            String::from_utf8_lossy(&out.stderr).trim()
                        ));
                    }
                    let json: Value = serde_json::from_slice(&out.stdout)
                        .map_err(|e| format!("vault export printed no JSON: {e}"))?;
                    keys.push(json["AccessKeyId"].as_str().unwrap_or_default().to_owned());
                }
                let elapsed = start.elapsed().as_secs_f64() * 1e3;
                let calls: Vec<String> = self.moto.sts_actions()[sts_before..].to_vec();
                let prompts = mfa_prompts(self.file) - prompts_before;
                if round < self.opts.warmup {
                    continue;
                }
                keys.sort();
                keys.dedup();
                let series = if is_cold { &mut cold } else { &mut warm };
                series.ms.push(elapsed);
                series.prompts.push(prompts);
                if is_cold {
                    distinct_keys.push(keys.len());
                    gst.push(calls.iter().filter(|c| *c == "GetSessionToken").count());
                    ar.push(calls.iter().filter(|c| *c == "AssumeRole").count());
                }
                series.sts.push(calls);
            }
        }
        let all_one = |v: &[usize]| v.iter().all(|n| *n == 1);
        let pass = all_one(&gst)
            && all_one(&ar)
            && all_one(&cold.prompts)
            && cold.sts.iter().all(|c| c.len() == 2)
            && all_one(&distinct_keys);
        let warm_sts: usize = warm.sts.iter().map(Vec::len).sum();
        let mut md = format!(
            "{PARALLEL} `vault export --format json lab` started at once, {} rounds after {} \
             warm-up rounds; before each cold round `vault clear` empties the cache. A warm round \
             (same {PARALLEL} processes, cache full) follows each cold one as the comparison.\n\n",
            self.opts.runs, self.opts.warmup
        );
        md.push_str(&time_table(&[cold.clone(), warm.clone()], Some(&warm)));
        let _ = writeln!(
            md,
            "\nPer cold round: GetSessionToken {}, AssumeRole {}, all STS requests {}, MFA prompts \
             {}, distinct credentials handed out {}. Warm rounds: {warm_sts} STS requests, {} \
             prompts.",
            summarize_counts(&gst),
            summarize_counts(&ar),
            summarize_counts(&cold.sts.iter().map(Vec::len).collect::<Vec<_>>()),
            summarize_counts(&cold.prompts),
            summarize_counts(&distinct_keys),
            warm.prompts.iter().sum::<usize>(),
        );
        report.rows.push(Row::new(
            3,
            &format!("{PARALLEL} parallel cold exports: STS + prompts"),
            format!(
                "GST {}, AR {}, prompts {}",
                summarize_counts(&gst),
                summarize_counts(&ar),
                summarize_counts(&cold.prompts)
            ),
            String::new(),
            None,
            "1 GST + 1 AR, 1 prompt".into(),
            Verdict::pass_if(pass),
        ));
        report.rows.push(Row::new(
            3,
            &format!("{PARALLEL} parallel: cold burst vs warm burst"),
            ms(cold.time().median),
            ms(warm.time().median),
            Some(cold.time().median / warm.time().median),
            "(no target)".into(),
            Verdict::Info,
        ));
        report.section(3, "Parallel cold", md);
        report.json["parallel_cold"] = json!({
            "processes": PARALLEL,
            "cold": cold.json(),
            "warm": warm.json(),
            "get_session_token_per_round": gst,
            "assume_role_per_round": ar,
            "distinct_credentials_per_round": distinct_keys,
        });
        Ok(())
    }

    // ----- 4. servers -----

    fn servers(&self, report: &mut Report) -> Result {
        let seconds = self.opts.wrk_seconds;
        let rounds = self.opts.wrk_rounds;
        let sts_before = self.sts_len();

        // The ECS-style endpoint: its answer is also what nginx will return.
        let ecs = ServedVault::start(self, "--server")?;
        let token = ecs
            .env
            .get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
            .ok_or("the --server child has no AWS_CONTAINER_AUTHORIZATION_TOKEN")?
            .clone();
        let body = match http_request(ecs.port, "GET", "/", &[("Authorization", &token)], b"") {
            Some((200, body)) => body,
            other => return Err(format!("the --server endpoint answered {other:?}")),
        };
        let ecs_target = (
            format!("http://127.0.0.1:{}/", ecs.port),
            format!("Authorization: {token}"),
        );

        // The IMDSv2 endpoint, with a token fetched first.
        let imds = ServedVault::start(self, "--imds")?;
        let token = match http_request(
            imds.port,
            "PUT",
            "/latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", "21600")],
            b"",
        ) {
            Some((200, token)) => token,
            other => return Err(format!("the --imds token request answered {other:?}")),
        };
        let role = match http_request(
            imds.port,
            "GET",
            "/latest/meta-data/iam/security-credentials/",
            &[("X-aws-ec2-metadata-token", &token)],
            b"",
        ) {
            Some((200, role)) => role.trim().to_owned(),
            other => return Err(format!("the --imds role listing answered {other:?}")),
        };
        let imds_target = (
            format!(
                "http://127.0.0.1:{}/latest/meta-data/iam/security-credentials/{role}",
                imds.port
            ),
            format!("X-aws-ec2-metadata-token: {token}"),
        );

        // nginx returning the same JSON.
        let nginx = Nginx::start(self.file, &body)?;
        let nginx_target = (
            format!("http://127.0.0.1:{}/", nginx.port),
            "Authorization: x".to_owned(),
        );

        // All three stay up; a 2 s warm-up each, then `rounds` rounds of one wrk run per
        // server, the order rotating.
        let targets = [&nginx_target, &ecs_target, &imds_target];
        for (url, header) in targets {
            wrk(url, header, 2)?;
        }
        let mut results: [Vec<WrkResult>; 3] = Default::default();
        for round in 0..rounds {
            for k in 0..targets.len() {
                let i = (round + k) % targets.len();
                let (url, header) = targets[i];
                results[i].push(wrk(url, header, seconds)?);
            }
        }
        let rss = [
            nginx.rss_kib(),
            vm_hwm_kib(ecs.pid())?,
            vm_hwm_kib(imds.pid())?,
        ];
        drop(nginx);
        drop(imds);
        drop(ecs);
        let sts = self.sts_len() - sts_before;

        let mut md = format!(
            "`wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{seconds}s --latency`, {rounds} round(s) \
             per server (order rotating) after a 2 s warm-up each, against `vault exec --server \
             lab -- sleep` (with the child's `Authorization` token), `vault exec --imds lab -- \
             sleep` (IMDSv2 token from a PUT first; `GET …/security-credentials/{role}`), and \
             nginx (`nginx-light`, one worker, `return 200` with the --server answer's {} bytes \
             of JSON as a fixed string, keep-alive) on 127.0.0.1. wrk shares the 2 cores with \
             the server. Figures are medians over the rounds, with min–max. Peak RSS is \
             `VmHWM` of the vault process after all rounds (for nginx, master + worker). STS \
             requests during this case: {sts}.\n\n",
            body.len()
        );
        md.push_str("| server | requests/s | min–max | p50 | p99 | min–max | requests | errors | peak RSS |\n");
        md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        let names = ["nginx (floor)", "vault --server", "vault --imds"];
        let summary: Vec<WrkSummary> = results.iter().map(|r| WrkSummary::of(r)).collect();
        for i in 0..3 {
            let w = &summary[i];
            let _ = writeln!(
                md,
                "| {} | {:.0} | {:.0}–{:.0} | {} | {} | {}–{} | {} | {} | {:.1} MiB |",
                names[i],
                w.rps.median,
                w.rps.min,
                w.rps.max,
                ms(w.p50.median),
                ms(w.p99.median),
                ms(w.p99.min),
                ms(w.p99.max),
                w.requests,
                w.errors,
                rss[i] as f64 / MIB
            );
        }
        let nginx_w = &summary[0];
        for (i, kind) in [(1, "--server"), (2, "--imds")] {
            let w = &summary[i];
            let rps_ratio = w.rps.median / nginx_w.rps.median;
            let p99_ratio = w.p99.median / nginx_w.p99.median;
            report.rows.push(Row::new(
                4,
                &format!("{kind}: requests/s vs nginx"),
                format!("{:.0}/s", w.rps.median),
                format!("{:.0}/s", nginx_w.rps.median),
                Some(rps_ratio),
                "≥ 0.5×".into(),
                Verdict::pass_if(rps_ratio >= 0.5 && w.errors == 0),
            ));
            report.rows.push(Row::new(
                4,
                &format!("{kind}: p99 latency vs nginx"),
                ms(w.p99.median),
                ms(nginx_w.p99.median),
                Some(p99_ratio),
                "≤ 2×".into(),
                Verdict::pass_if(p99_ratio <= 2.0),
            ));
            report.rows.push(Row::new(
                4,
                &format!("{kind}: peak RSS of vault"),
                format!("{:.1} MiB", rss[i] as f64 / MIB),
                format!("nginx {:.1} MiB", rss[0] as f64 / MIB),
                None,
                "< 20 MiB".into(),
                Verdict::pass_if((rss[i] as f64) < 20.0 * MIB),
            ));
            report.bars.push(Bar {
                label: format!("{kind} req/s / nginx (≥ 0.5×)"),
                ratio: rps_ratio,
                target: Some((Dir::AtLeast, 0.5)),
            });
            report.bars.push(Bar {
                label: format!("{kind} p99 / nginx (≤ 2×)"),
                ratio: p99_ratio,
                target: Some((Dir::AtMost, 2.0)),
            });
        }
        report.section(4, "Servers", md);
        let runs = |i: usize| -> Value {
            json!({
                "peak_rss_kib": rss[i],
                "runs": results[i].iter().map(WrkResult::json).collect::<Vec<_>>(),
            })
        };
        report.json["servers"] = json!({
            "wrk": {"threads": WRK_THREADS, "connections": WRK_CONNECTIONS, "seconds": seconds, "rounds": rounds},
            "body_bytes": body.len(),
            "nginx": runs(0),
            "ecs": runs(1),
            "imds": runs(2),
            "sts_requests": sts,
        });
        Ok(())
    }

    // ----- 6. memory -----

    fn memory(&self, report: &mut Report, warm: &[Series]) -> Result {
        let unlock = Contender::new("vault unlock (scrypt)", || {
            let mut cmd = self.vault(self.file, &["unlock", "--for", "1h"]);
            cmd.env("AWS_VAULT_FILE_PASSPHRASE", PASSPHRASE);
            cmd
        });
        // scrypt costs ~0.5 s and 256 MiB each: one warm-up and the minimum of 10 runs. An
        // unlocked vault would not derive the key again, so each run starts locked (the last
        // one leaves it unlocked).
        let mut unlocks = Series::named(unlock.name);
        for round in 0..=10 {
            self.ok(self.file, &["lock"], &[])?;
            let sample = measure(&*unlock.make)?;
            if round > 0 {
                unlocks.ms.push(sample.ms);
                unlocks.rss_kib.push(sample.rss_kib);
            }
        }
        let floor = &warm[0];
        let mut md = String::from(
            "Peak RSS (`ru_maxrss` from wait4: the larger of vault and the program it execs \
             into) of the warm runs of case 1, and of `vault unlock`, whose scrypt (N = 2^18, \
             r = 8) needs 256 MiB by design, once per unlock.\n\n",
        );
        md.push_str("| process | median | min | max | runs |\n|---|---:|---:|---:|---:|\n");
        let mut all: Vec<&Series> = warm.iter().collect();
        all.push(&unlocks);
        for s in &all {
            let r = s.rss_mib();
            let _ = writeln!(
                md,
                "| {} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {} |",
                s.name,
                r.median,
                r.min,
                r.max,
                s.rss_kib.len()
            );
        }
        let t = unlocks.time();
        let _ = writeln!(
            md,
            "\n`vault unlock` wall time: median {}, min {}, max {}.",
            ms(t.median),
            ms(t.min),
            ms(t.max)
        );
        for (i, label) in [(1, "passphrase, unlocked"), (2, "OS keyring")] {
            let r = warm[i].rss_mib();
            report.rows.push(Row::new(
                6,
                &format!("peak RSS, warm exec ({label})"),
                format!("{:.1} MiB (max {:.1})", r.median, r.max),
                format!("floor {:.1} MiB", floor.rss_mib().median),
                Some(r.median / floor.rss_mib().median),
                "< 15 MiB".into(),
                Verdict::pass_if(r.max < 15.0),
            ));
        }
        let r = unlocks.rss_mib();
        report.rows.push(Row::new(
            6,
            "peak RSS, vault unlock",
            format!("{:.1} MiB (max {:.1})", r.median, r.max),
            "scrypt: 256 MiB".into(),
            Some(r.median / 256.0),
            "256 MiB once (< 384 MiB)".into(),
            Verdict::pass_if(r.max >= 256.0 && r.max < 384.0),
        ));
        report.section(6, "Memory", md);
        report.json["memory"] = json!({
            "warm_exec_rss_kib": warm.iter().map(|s| json!({"name": s.name, "rss_kib": s.rss_kib})).collect::<Vec<_>>(),
            "unlock": unlocks.json(),
        });
        Ok(())
    }

    // ----- measuring -----

    /// Runs each contender once per round, the order rotating, `warmup` rounds unmeasured
    /// then `runs` measured; notes each run's STS requests and MFA prompts.
    fn interleave(&self, contenders: &[Contender<'_>]) -> Result<Vec<Series>> {
        let mut series: Vec<Series> = contenders.iter().map(|c| Series::named(c.name)).collect();
        let n = contenders.len();
        for round in 0..self.opts.warmup + self.opts.runs {
            for k in 0..n {
                let i = (round + k) % n;
                let contender = &contenders[i];
                if let Some(before) = &contender.before {
                    before()?;
                }
                let sts_before = self.sts_len();
                let prompts_before = contender.prompts.map(mfa_prompts).unwrap_or(0);
                let sample = measure(&*contender.make)?;
                let calls = self.moto.sts_actions()[sts_before..].to_vec();
                let prompts = contender.prompts.map(mfa_prompts).unwrap_or(0) - prompts_before;
                if round >= self.opts.warmup {
                    let s = &mut series[i];
                    s.ms.push(sample.ms);
                    s.rss_kib.push(sample.rss_kib);
                    s.sts.push(calls);
                    s.prompts.push(prompts);
                }
            }
        }
        Ok(series)
    }
}

type Make<'a> = Box<dyn Fn() -> Command + 'a>;
type Hook<'a> = Box<dyn Fn() -> Result + 'a>;

/// One thing to time: how to make its command, what to do (untimed) before each run, and
/// whose `mfa-count` to watch.
struct Contender<'a> {
    name: &'a str,
    make: Make<'a>,
    before: Option<Hook<'a>>,
    prompts: Option<&'a TestEnv>,
}

impl<'a> Contender<'a> {
    fn new(name: &'a str, make: impl Fn() -> Command + 'a) -> Self {
        Contender {
            name,
            make: Box::new(make),
            before: None,
            prompts: None,
        }
    }

    fn before(mut self, hook: impl Fn() -> Result + 'a) -> Self {
        self.before = Some(Box::new(hook));
        self
    }

    fn prompts(mut self, env: &'a TestEnv) -> Self {
        self.prompts = Some(env);
        self
    }
}

/// The measured runs of one contender.
#[derive(Debug, Clone, Default)]
struct Series {
    name: String,
    ms: Vec<f64>,
    rss_kib: Vec<u64>,
    /// The STS actions each run made.
    sts: Vec<Vec<String>>,
    prompts: Vec<usize>,
}

impl Series {
    fn named(name: &str) -> Series {
        Series {
            name: name.to_owned(),
            ..Series::default()
        }
    }

    fn time(&self) -> Stats {
        Stats::of(&self.ms)
    }

    fn rss_mib(&self) -> Stats {
        let mib: Vec<f64> = self.rss_kib.iter().map(|k| *k as f64 / MIB).collect();
        Stats::of(&mib)
    }

    fn json(&self) -> Value {
        let t = self.time();
        json!({
            "name": self.name,
            "median_ms": t.median, "min_ms": t.min, "max_ms": t.max,
            "ms": self.ms,
            "maxrss_kib": self.rss_kib,
            "sts_requests": self.sts,
            "mfa_prompts": self.prompts,
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(values: &[f64]) -> Stats {
        if values.is_empty() {
            return Stats {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Stats {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }
}

struct Sample {
    ms: f64,
    rss_kib: u64,
}

/// Runs a command to completion (no input, output discarded): wall time from spawn to reap,
/// and peak RSS. A failure is an error carrying the command's stderr (from a second run).
fn measure(make: &dyn Fn() -> Command) -> Result<Sample> {
    let mut cmd = make();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let start = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", display(&cmd)))?;
    let (status, rss_kib) = wait_rusage(child)?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    if !status.success() {
        let again = make()
            .output()
            .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
            .unwrap_or_default();
        return Err(format!(
            "`{}` failed ({status}); again: {again}",
            display(&cmd)
        ));
    }
    Ok(Sample { ms, rss_kib })
}

/// Reaps `child` with wait4(2): its exit status and `ru_maxrss` (KiB). Linux keeps the
/// maximum across exec, so for `vault exec` it covers vault and the program it became.
// wait4(2) through libc; see the SAFETY comments.
#[allow(unsafe_code)]
fn wait_rusage(child: Child) -> Result<(ExitStatus, u64)> {
    use std::os::unix::process::ExitStatusExt;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain integers; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waits for our own child, not yet reaped, writing into two locals.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("wait4({pid}): {err}"));
        }
    }
    // Already reaped: dropping a Child neither waits nor kills.
    drop(child);
    Ok((
        ExitStatus::from_raw(status),
        u64::try_from(usage.ru_maxrss).unwrap_or(0),
    ))
}

// kill(2) through libc; see the SAFETY comment.
#[allow(unsafe_code)]
fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) on a PID this bench started (or its direct child, which it noted).
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// `VmHWM` of a live process: its peak resident set, KiB.
pub(crate) fn vm_hwm_kib(pid: u32) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or(format!("no VmHWM in /proc/{pid}/status"))
}

/// A process stopped by its PID on drop: SIGTERM, then SIGKILL after 5 s; `extra` PIDs (its
/// own children, noted by them) get SIGKILL if still there.
pub(crate) struct Stopped {
    pub(crate) child: Child,
    pub(crate) extra: Vec<u32>,
}

impl Stopped {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut exited = false;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for pid in &self.extra {
            if Path::new(&format!("/proc/{pid}")).exists() {
                signal(*pid, libc::SIGKILL);
            }
        }
    }
}

/// `vault lock` when the bench ends, however it ends.
struct LockOnDrop<'a> {
    env: &'a TestEnv,
    bin: &'a Path,
}

impl Drop for LockOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.env.command(self.bin).arg("lock").output();
    }
}

// ----- awsume -----

/// awsume in its own venv, with its own HOME holding the same profiles and the key in a
/// credentials file, pointed at moto with `AWS_ENDPOINT_URL_STS`.
struct Awsume<'a> {
    env: &'a TestEnv,
    bin: PathBuf,
    home: PathBuf,
    endpoint: String,
}

impl<'a> Awsume<'a> {
    /// Sets awsume up and runs it once cold (`--mfa-token`), which must work.
    fn prepare(
        venv: &Path,
        env: &'a TestEnv,
        moto: &Moto,
        role_arn: &str,
        key_id: &str,
        secret: &str,
    ) -> std::result::Result<Awsume<'a>, String> {
        let home = env.dir.path().join("awsume-home");
        let aws = home.join(".aws");
        fs::create_dir_all(&aws).map_err(|e| format!("{}: {e}", aws.display()))?;
        fs::write(aws.join("config"), config(env, role_arn, SMALL_CONFIG))
            .map_err(|e| e.to_string())?;
        fs::write(
            aws.join("credentials"),
            format!("[base]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"),
        )
        .map_err(|e| e.to_string())?;
        let awsume = Awsume {
            env,
            bin: venv.join("bin"),
            home,
            endpoint: moto.endpoint.clone(),
        };
        let out = awsume
            .command(&format!("lab --mfa-token {MFA_CODE}"))
            .output()
            .map_err(|e| format!("cannot run awsume: {e}"))?;
        if out.status.success() {
            Ok(awsume)
        } else {
            Err(format!(
                "`awsume lab --mfa-token {MFA_CODE}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// `bash -c '. awsume ARGS'`: awsume as users run it (sourced into a shell).
    fn command(&self, args: &str) -> Command {
        let mut cmd = self.env.command("bash");
        let path = self
            .env
            .get("PATH")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        cmd.arg("-c")
            .arg(format!(
                ". {} {args} >/dev/null && true",
                self.bin.join("awsume").display()
            ))
            .env("PATH", format!("{}:{path}", self.bin.display()))
            .env("HOME", &self.home)
            .env("AWS_CONFIG_FILE", self.home.join(".aws/config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.home.join(".aws/credentials"),
            )
            .env("AWS_ENDPOINT_URL_STS", &self.endpoint)
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_VAULT_BACKEND")
            .env_remove("AWS_VAULT_FILE_DIR")
            // With XDG_DATA_HOME set, awsume moves ~/.awsume on its second run and then
            // cannot find its own config.
            .env_remove("XDG_DATA_HOME");
        cmd
    }

    fn clear_cache(&self) -> Result {
        let cache = self.home.join(".awsume/cache");
        match fs::remove_dir_all(&cache) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("{}: {e}", cache.display())),
        }
    }
}

// ----- servers -----

/// `vault exec --server|--imds lab -- sh -c 'env > FILE; exec sleep 600'`, running.
struct ServedVault {
    process: Stopped,
    env: std::collections::BTreeMap<String, String>,
    port: u16,
}

impl ServedVault {
    fn start(bench: &Bench<'_>, kind: &str) -> Result<ServedVault> {
        let dir = bench.file.dir.path().join(format!("served{kind}"));
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let env_file = dir.join("env");
        let script = format!(
            "echo $$ > {d}/pid; env > {d}/env.tmp && mv {d}/env.tmp {d}/env; exec sleep 600",
            d = dir.display()
        );
        let child = bench
            .vault(
                bench.file,
                &["exec", kind, "lab", "--", "sh", "-c", &script],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start vault exec {kind}: {e}"))?;
        let mut process = Stopped {
            child,
            extra: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !env_file.exists() {
            if Instant::now() > deadline {
                return Err(format!(
                    "vault exec {kind}: the child did not start in 30 s"
                ));
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                return Err(format!("vault exec {kind} exited early ({status})"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(pid) = fs::read_to_string(dir.join("pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            process.extra.push(pid);
        }
        let env = parse_env(&fs::read_to_string(&env_file).map_err(|e| e.to_string())?);
        let url = env
            .get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            .or_else(|| env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT"))
            .ok_or(format!("vault exec {kind}: the child has no endpoint"))?;
        let port = url
            .strip_prefix("http://127.0.0.1:")
            .and_then(|rest| rest.split('/').next())
            .and_then(|port| port.parse().ok())
            .ok_or(format!("endpoint {url:?} is not http://127.0.0.1:PORT/"))?;
        Ok(ServedVault { process, env, port })
    }

    fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// nginx with one worker on 127.0.0.1, returning `body` as a fixed string; everything it
/// writes stays in a temp dir.
struct Nginx {
    process: Stopped,
    port: u16,
}

impl Nginx {
    fn start(env: &TestEnv, body: &str) -> Result<Nginx> {
        let dir = env.dir.path().join("nginx");
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let escaped = body.replace('\\', "\\\\").replace('\'', "\\'");
        let port = free_port();
        let d = dir.display();
        // As root, workers drop to nobody; elsewhere the directive is ignored.
        let conf = format!(
            "worker_processes 1;\n\
             user nobody nogroup;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n\
             \x20 access_log off;\n\
             \x20 keepalive_requests 1000000;\n\
             \x20 client_body_temp_path {d}/body;\n\
             \x20 proxy_temp_path {d}/proxy;\n\
             \x20 fastcgi_temp_path {d}/fastcgi;\n\
             \x20 uwsgi_temp_path {d}/uwsgi;\n\
             \x20 scgi_temp_path {d}/scgi;\n\
             \x20 server {{\n\
             \x20   listen 127.0.0.1:{port};\n\
             \x20   location / {{\n\
             \x20     default_type application/json;\n\
             \x20     return 200 '{escaped}';\n\
             \x20   }}\n\
             \x20 }}\n\
             }}\n"
        );
        let conf_path = dir.join("nginx.conf");
        fs::write(&conf_path, conf).map_err(|e| format!("{}: {e}", conf_path.display()))?;
        let child = env
            .command("nginx")
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.join("error.log"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start nginx (apt-get install nginx-light): {e}"))?;
        let mut process = Stopped {
            child,
            extra: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some((200, answer)) = http_request(port, "GET", "/", &[], b"") {
                if answer != body {
                    return Err("nginx answered something else than the JSON".into());
                }
                break;
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                let log = fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                return Err(format!("nginx exited ({status}): {}", log.trim()));
            }
            if Instant::now() > deadline {
                return Err("nginx did not answer within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        process.extra = worker_pids(process.pid());
        Ok(Nginx { process, port })
    }

    /// Peak RSS of the master and its worker, KiB.
    fn rss_kib(&self) -> u64 {
        std::iter::once(self.process.pid())
            .chain(worker_pids(self.process.pid()))
            .filter_map(|pid| vm_hwm_kib(pid).ok())
            .sum()
    }
}

/// The PIDs whose parent is `parent` (nginx's workers).
fn worker_pids(parent: u32) -> Vec<u32> {
    let text =
        fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).unwrap_or_default();
    text.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[derive(Debug, Clone)]
pub(crate) struct WrkResult {
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) requests: u64,
    /// Non-2xx answers plus socket errors.
    pub(crate) errors: u64,
    pub(crate) raw: String,
}

impl WrkResult {
    fn json(&self) -> Value {
        json!({
            "requests_per_second": self.rps,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "requests": self.requests,
            "errors": self.errors,
            "wrk_output": self.raw,
        })
    }
}

/// One server's wrk rounds: medians, min and max; requests and errors summed.
struct WrkSummary {
    rps: Stats,
    p50: Stats,
    p99: Stats,
    requests: u64,
    errors: u64,
}

impl WrkSummary {
    fn of(runs: &[WrkResult]) -> WrkSummary {
        let stat = |f: fn(&WrkResult) -> f64| Stats::of(&runs.iter().map(f).collect::<Vec<_>>());
        WrkSummary {
            rps: stat(|r| r.rps),
            p50: stat(|r| r.p50_ms),
            p99: stat(|r| r.p99_ms),
            requests: runs.iter().map(|r| r.requests).sum(),
            errors: runs.iter().map(|r| r.errors).sum(),
        }
    }
}

pub(crate) fn wrk(url: &str, header: &str, seconds: u64) -> Result<WrkResult> {
    let out = Command::new("wrk")
        .arg(format!("-t{WRK_THREADS}"))
        .arg(format!("-c{WRK_CONNECTIONS}"))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .args(["-H", header])
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run wrk (apt-get install wrk): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "wrk failed ({}): {}{}",
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse_wrk(&text).ok_or(format!("cannot read wrk's output:\n{text}"))
}

fn parse_wrk(text: &str) -> Option<WrkResult> {
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
    };
    let rps = field("Requests/sec:")?.parse().ok()?;
    let p50_ms = duration_ms(field("50%")?)?;
    let p99_ms = duration_ms(field("99%")?)?;
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let non_2xx: u64 = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let socket: u64 = field("Socket errors:")
        .map(|v| {
            v.split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Some(WrkResult {
        rps,
        p50_ms,
        p99_ms,
        requests,
        errors: non_2xx + socket,
        raw: text.to_owned(),
    })
}

/// wrk's durations: `812.00us`, `1.23ms`, `2.00s`, `1.00m`.
fn duration_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match unit {
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        _ => return None,
    };
    Some(number * factor)
}

// ----- the report -----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass,
    Miss,
    Info,
}

impl Verdict {
    fn pass_if(ok: bool) -> Verdict {
        if ok { Verdict::Pass } else { Verdict::Miss }
    }

    fn text(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Miss => "**MISS**",
            Verdict::Info => "—",
        }
    }
}

struct Row {
    case: u8,
    measure: String,
    value: String,
    comparison: String,
    ratio: Option<f64>,
    target: String,
    verdict: Verdict,
}

impl Row {
    fn new(
        case: u8,
        measure: &str,
        value: String,
        comparison: String,
        ratio: Option<f64>,
        target: String,
        verdict: Verdict,
    ) -> Row {
        Row {
            case,
            measure: measure.to_owned(),
            value,
            comparison,
            ratio,
            target,
            verdict,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Dir {
    AtMost,
    AtLeast,
}

struct Bar {
    label: String,
    ratio: f64,
    target: Option<(Dir, f64)>,
}

#[derive(Default)]
struct Report {
    sections: Vec<(u8, String, String)>,
    rows: Vec<Row>,
    bars: Vec<Bar>,
    json: Value,
}

impl Report {
    fn section(&mut self, case: u8, title: &str, body: String) {
        self.sections.push((case, title.to_owned(), body));
    }

    fn write(mut self, dir: &Path, meta: &Value) -> Result {
        self.sections.sort_by_key(|s| s.0);
        self.rows.sort_by_key(|r| r.case);
        let misses: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| r.verdict == Verdict::Miss)
            .collect();

        let mut md = String::from("# vault benchmarks\n\n");
        let _ = writeln!(
            md,
            "Generated by `cargo xtask bench` on {}: vault {} ({}), {}, {} cores, load average \
             {} at the start and {} at the end; {} measured runs after {} warm-up runs per \
             figure, contenders interleaved. Ratios are medians over medians; min and max show \
             the spread. See docs/performance.md for what each figure means.\n",
            meta["date"].as_str().unwrap_or("?"),
            meta["vault_revision"].as_str().unwrap_or("?"),
            meta["vault_binary"].as_str().unwrap_or("?"),
            meta["cpu"].as_str().unwrap_or("?"),
            meta["cores"],
            meta["load_average_start"].as_str().unwrap_or("?"),
            meta["load_average_end"].as_str().unwrap_or("?"),
            meta["runs"],
            meta["warmup"],
        );
        if misses.is_empty() {
            md.push_str("**Every target is met.**\n\n");
        } else {
            let _ = writeln!(
                md,
                "**{} target(s) missed:** {}. docs/performance.md says why and what would \
                 close each.\n",
                misses.len(),
                misses
                    .iter()
                    .map(|r| format!("{} (case {})", r.measure, r.case))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        md.push_str("## Summary\n\n");
        md.push_str("| case | measure | vault | comparison | ratio | target | result |\n");
        md.push_str("|---|---|---:|---:|---:|---|---|\n");
        for r in &self.rows {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.case,
                r.measure,
                r.value,
                r.comparison,
                r.ratio.map(|x| format!("{x:.2}×")).unwrap_or_default(),
                r.target,
                r.verdict.text()
            );
        }
        md.push_str("\n![ratios against their targets](chart.svg)\n\n");
        for (case, title, body) in &self.sections {
            let _ = writeln!(md, "## {case}. {title}\n\n{body}");
        }

        let mut json = self.json;
        json["meta"] = meta.clone();
        json["summary"] = Value::Array(
            self.rows
                .iter()
                .map(|r| {
                    json!({
                        "case": r.case, "measure": r.measure, "value": r.value,
                        "comparison": r.comparison, "ratio": r.ratio, "target": r.target,
                        "result": match r.verdict {
                            Verdict::Pass => "pass", Verdict::Miss => "miss", Verdict::Info => "info"
                        },
                    })
                })
                .collect(),
        );

        let write = |name: &str, text: &str| -> Result {
            let path = dir.join(name);
            fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
        };
        write("report.md", &md)?;
        write(
            "report.json",
            &serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?,
        )?;
        write("chart.svg", &chart(&self.bars))?;

        println!("\n=== vault benchmarks ===");
        for r in &self.rows {
            let ratio = r.ratio.map(|x| format!("{x:.2}×")).unwrap_or_default();
            println!(
                "{:<6} case {}  {:<44} {:>22} vs {:<20} {:>8}  target {}",
                match r.verdict {
                    Verdict::Pass => "PASS",
                    Verdict::Miss => "MISS",
                    Verdict::Info => "",
                },
                r.case,
                r.measure,
                r.value,
                r.comparison,
                ratio,
                r.target
            );
        }
        println!(
            "\n{} target(s) missed. Report: {}",
            misses.len(),
            dir.join("report.md").display()
        );
        println!(
            "(also {} and {})",
            dir.join("report.json").display(),
            dir.join("chart.svg").display()
        );
        Ok(())
    }
}

/// Horizontal bars on a log scale (0.1× to 1000×), one per ratio, with the target marked:
/// green where it is met, red where missed, grey for comparisons without a target.
fn chart(bars: &[Bar]) -> String {
    let (left, width, row, top) = (320.0, 440.0, 30.0, 56.0);
    let (lo, hi) = (-1.0_f64, 3.0_f64);
    let x = |v: f64| left + (v.max(1e-3).log10().clamp(lo, hi) - lo) / (hi - lo) * width;
    let height = top + row * bars.len() as f64 + 40.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">vault against its \
         comparisons: ratios, log scale</text>\n\
         <text x=\"10\" y=\"38\" fill=\"#444\">black mark = target; green: met, red: \
         missed, grey: comparison only</text>\n",
        w = left + width + 90.0
    );
    for (tick, label) in [
        (0.1, "0.1"),
        (1.0, "1"),
        (10.0, "10"),
        (100.0, "100"),
        (1000.0, "1000"),
    ] {
        let tx = x(tick);
        let _ = writeln!(
            svg,
            "<line x1=\"{tx}\" y1=\"{}\" x2=\"{tx}\" y2=\"{}\" stroke=\"#ddd\"/>\
             <text x=\"{tx}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\">{label}×</text>",
            top - 6.0,
            height - 30.0,
            height - 14.0,
        );
    }
    for (i, bar) in bars.iter().enumerate() {
        let y = top + row * i as f64;
        let ok = bar.target.map(|(dir, t)| match dir {
            Dir::AtMost => bar.ratio <= t,
            Dir::AtLeast => bar.ratio >= t,
        });
        let color = match ok {
            Some(true) => "#3a9e4f",
            Some(false) => "#d0443e",
            None => "#999",
        };
        let target = bar
            .target
            .map(|(dir, t)| {
                format!(
                    " (target {}{t}×)",
                    match dir {
                        Dir::AtMost => "≤",
                        Dir::AtLeast => "≥",
                    }
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{left}\" y=\"{}\" width=\"{:.1}\" height=\"{}\" fill=\"{color}\">\
             <title>{:.2}×{target}</title></rect>\
             <text x=\"{}\" y=\"{}\" font-weight=\"bold\">{:.2}×</text>",
            left - 8.0,
            y + 15.0,
            xml_escape(&bar.label),
            y + 3.0,
            (x(bar.ratio) - left).max(1.0),
            row - 8.0,
            bar.ratio,
            left + width + 10.0,
            y + 15.0,
            bar.ratio
        );
        if let Some((_, t)) = bar.target {
            let tx = x(t);
            let _ = writeln!(
                svg,
                "<line x1=\"{tx:.1}\" y1=\"{}\" x2=\"{tx:.1}\" y2=\"{}\" stroke=\"black\" \
                 stroke-width=\"3\"/>",
                y,
                y + row - 2.0,
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A markdown table of wall times; `base` gives the ratio column.
fn time_table(series: &[Series], base: Option<&Series>) -> String {
    let mut md = String::from("| command | median | min | max | runs | ratio |\n");
    md.push_str("|---|---:|---:|---:|---:|---:|\n");
    for s in series {
        let t = s.time();
        let ratio = base
            .map(|b| format!("{:.2}×", t.median / b.time().median))
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {ratio} |",
            s.name,
            ms(t.median),
            ms(t.min),
            ms(t.max),
            s.ms.len()
        );
    }
    md
}

fn ms(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0} ms")
    } else if value >= 1.0 {
        format!("{value:.2} ms")
    } else {
        format!("{:.0} µs", value * 1e3)
    }
}

/// `2` when every value is 2, else `min–max`.
fn summarize_counts(values: &[usize]) -> String {
    let min = values.iter().min().copied().unwrap_or(0);
    let max = values.iter().max().copied().unwrap_or(0);
    if min == max {
        format!("{min}")
    } else {
        format!("{min}–{max}")
    }
}

pub(crate) fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn machine_meta(root: &Path, bin: &Path, opts: &Options) -> Value {
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let mut revision = git(&["rev-parse", "--short", "HEAD"]);
    if !git(&["status", "--porcelain", "--", "crates"]).is_empty() {
        revision.push_str(" + uncommitted changes in crates/");
    }
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let size = fs::metadata(bin).map(|m| m.len()).unwrap_or(0);
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    json!({
        "date": date,
        "vault_revision": revision,
        "vault_binary": format!("release build, {:.1} MiB", size as f64 / MIB / MIB),
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "load_average_start": load_average(),
        "runs": opts.runs,
        "warmup": opts.warmup,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_steps_come_from_explain() {
        let explain = "Plan for profile \"lab\":\n  region        us-east-1 (config:5)\n\n  \
            1. stored key of base\n       from the vault\n  \
            2. GetSessionToken with MFA, 8h (default)\n       not cached: will call STS\n  \
            3. AssumeRole arn:aws:iam::123456789012:role/lab, 1h (default)\n\n\
            Nothing was run and no STS call was made.\n";
        assert_eq!(sts_steps(explain), ["GetSessionToken", "AssumeRole"]);
    }

    #[test]
    fn wrk_output_is_read() {
        let text = "Running 10s test @ http://127.0.0.1:8080/\n  2 threads and 32 connections\n  \
            Thread Stats   Avg      Stdev     Max   +/- Stdev\n    \
            Latency   250.00us  300.00us  12.00ms   90.00%\n  \
            Latency Distribution\n     50%  180.00us\n     75%  300.00us\n     \
            90%  500.00us\n     99%    2.60ms\n  \
            1371234 requests in 10.00s, 800.00MB read\n  \
            Socket errors: connect 0, read 2, write 0, timeout 1\n  \
            Non-2xx or 3xx responses: 4\nRequests/sec: 137123.40\nTransfer/sec:     80.00MB\n";
        let r = parse_wrk(text).unwrap();
        assert_eq!(r.rps, 137123.40);
        assert!((r.p50_ms - 0.18).abs() < 1e-9);
        assert!((r.p99_ms - 2.6).abs() < 1e-9);
        assert_eq!(r.requests, 1371234);
        assert_eq!(r.errors, 7);
        assert_eq!(duration_ms("1.50s"), Some(1500.0));
        assert_eq!(duration_ms("1.00m"), Some(60000.0));
        assert_eq!(duration_ms("12"), None);
    }

    #[test]
    fn medians() {
        let odd = Stats::of(&[3.0, 1.0, 2.0]);
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        assert_eq!(Stats::of(&[4.0, 1.0, 2.0, 3.0]).median, 2.5);
        assert!(Stats::of(&[]).median.is_nan());
    }
}
