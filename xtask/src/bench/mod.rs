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
//! 4. the `--server` and `--imds` endpoints under wrk against nginx (one worker per core)
//!    returning the same JSON, and their memory as PSS;
//! 5. warm exec with a 5,000-profile config against a 10-profile one;
//! 6. peak RSS of warm exec and of `vault unlock`;
//! 7. scripts: a passphrase from the environment (no unlock), warm and 32 in parallel;
//! 8. 16 parallel AWS CLI calls through `credential_process = vault export` against the same
//!    calls with static keys.
//!
//! Process timings are interleaved (one run of each contender per round, the order rotating),
//! so a noisy neighbour slows all of them alike; every figure is the median of the measured
//! rounds after warm-up rounds, with min and max. The report goes to `target/bench/`:
//! `report.md`, `report.json` (every raw sample) and `chart.svg` (the ratios against their
//! targets); the summary also replaces the marked section of `docs/performance.md`, with the
//! commit and whether its tree was clean. Every process started here is stopped by its PID;
//! everything binds 127.0.0.1.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vault_harness::{Moto, SecretService, TestEnv, free_port, http_request, parse_env};

use crate::{Result, display, header, setup};

mod awsume;
mod broker;
mod cli_parallel;
mod cold_chain;
mod config_scale;
pub(crate) mod measure;
mod memory;
mod nginx;
mod parallel_cold;
mod report;
mod scripted;
mod servers;
mod warm_exec;
mod wrk;

// Every part sees every other through `use super::*`.
use self::{awsume::*, measure::*, nginx::*, report::*, wrk::*};
// What `cargo xtask stress` reuses.
pub(crate) use self::measure::{LockOnDrop, Stopped, vm_hwm_kib};
pub(crate) use self::servers::ServedVault;
pub(crate) use self::wrk::{WrkResult, wrk};

const PASSPHRASE: &str = "bench passphrase";
const MFA_SERIAL: &str = "arn:aws:iam::123456789012:mfa/bench";
const MFA_CODE: &str = "123456";
const SMALL_CONFIG: usize = 10;
const LARGE_CONFIG: usize = 5000;
const PARALLEL: usize = 32;
const WRK_THREADS: u32 = 2;
const WRK_CONNECTIONS: u32 = 32;
const MIB: f64 = 1024.0;

/// `cargo xtask bench`'s options.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Measured rounds per process-timing case (medians of fewer than 10 mean little here)
    #[arg(long, default_value_t = 20, value_parser = at_least(10))]
    runs: usize,
    /// Unmeasured rounds first (at least 1)
    #[arg(long, default_value_t = 3, value_parser = at_least(1))]
    warmup: usize,
    /// Length of each wrk run, in seconds
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    wrk_seconds: u64,
    /// wrk runs per server, interleaved
    #[arg(long, default_value_t = 3, value_parser = at_least(1))]
    wrk_rounds: usize,
    /// Use the release binary (`target/<target>/release/vault`) as it is
    #[arg(long = "no-build", action = clap::ArgAction::SetFalse)]
    build: bool,
    /// Run case N alone (repeatable); the report is written, docs/performance.md is not
    #[arg(long, value_name = "N")]
    only: Vec<u8>,
}

fn at_least(min: u64) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(min..)
}

pub fn run(root: &Path, opts: &Options) -> Result {
    let started = Instant::now();

    eprintln!("xtask bench: installing the tools if missing (wrk, nginx-light, awsume, moto)");
    let rig = setup::bench_tools(root)?;
    eprintln!(
        "xtask bench: moto from {}, awsume from {}",
        rig.venv.display(),
        rig.awsume_venv.display()
    );

    // The binary `cargo xtask dist` ships (static musl on x86_64 Linux), and for comparison
    // the host build `cargo install` makes when that is another one.
    let (bin, target) = crate::dist::release_binary(root, opts.build)?;
    let host_bin = root.join("target/release/vault");
    let host_bin = if bin == host_bin {
        None
    } else {
        if opts.build {
            crate::run(crate::cargo().current_dir(root).args([
                "build",
                "--release",
                "-p",
                "vault-exec",
            ]))?;
        }
        host_bin.exists().then_some(host_bin)
    };
    eprintln!("xtask bench: measuring {} ({target})", bin.display());
    if !bin.exists() {
        return Err(format!("{} was not built", bin.display()));
    }
    let out_dir = root.join("target/bench");
    fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let meta = machine_meta(root, &bin, opts);

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

    // Scripts' vault: the passphrase always in the environment, never unlocked.
    let mut scripted = TestEnv::new();
    scripted.use_moto(&moto);
    scripted.set("AWS_VAULT_BACKEND", "file");
    scripted.set("AWS_VAULT_FILE_PASSPHRASE", PASSPHRASE);

    let mut bench = Bench {
        opts,
        bin: bin.clone(),
        host_bin,
        moto: &moto,
        file: &file,
        keyring: &keyring,
        role_arn,
        awsume: None,
    };
    for env in [&file, &keyring, &scripted] {
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
    bench.ok(
        &file,
        &["unlock", "--for", "1h"],
        &[("AWS_VAULT_FILE_PASSPHRASE", PASSPHRASE)],
    )?;
    // The first cold run mints (and answers the MFA prompt) once, like the others' setup.
    bench.ok(&scripted, &["exec", "lab", "--", "true"], &[])?;
    let locks = [&file, &keyring, &scripted].map(|env| LockOnDrop { env, bin: &bin });
    bench.awsume = Some(Awsume::prepare(
        &rig.awsume_venv,
        &file,
        &moto,
        &bench.role_arn,
        &key_id,
        &secret,
    ));

    let mut report = Report::default();
    let want = |case: u8| opts.only.is_empty() || opts.only.contains(&case);
    if want(2) {
        eprintln!("xtask bench: 2. cold chain");
        bench.cold_chain(&mut report)?;
    }
    // Case 6 reads case 1's runs.
    let warm = match want(1) || want(6) {
        true => {
            eprintln!("xtask bench: 1. warm exec");
            bench.warm_exec(&mut report)?
        }
        false => Vec::new(),
    };
    if want(5) {
        eprintln!("xtask bench: 5. config scale");
        bench.config_scale(&mut report)?;
    }
    if want(3) {
        eprintln!("xtask bench: 3. parallel cold");
        bench.parallel_cold(&mut report)?;
    }
    if want(4) {
        eprintln!(
            "xtask bench: 4. servers (wrk: {} × {} s per server)",
            opts.wrk_rounds, opts.wrk_seconds
        );
        bench.servers(&mut report)?;
    }
    if want(6) {
        eprintln!("xtask bench: 6. memory");
        bench.memory(&mut report, &warm)?;
    }
    if want(7) {
        eprintln!("xtask bench: 7. scripts (passphrase from the environment)");
        bench.scripted(&mut report, &scripted)?;
    }
    if want(8) {
        eprintln!("xtask bench: 8. parallel AWS CLI through credential_process");
        bench.cli_parallel(&mut report, &scripted, &rig.venv.join("bin/aws"))?;
    }
    if want(9) {
        eprintln!("xtask bench: 9. the container broker (100 clients on 10 profiles)");
        bench.broker(&mut report, &key_id, &secret)?;
    }

    drop(locks);
    drop(secret_service);
    let mut meta = meta;
    meta["load_average_end"] = json!(header::load_average());
    meta["bench_seconds"] = json!(started.elapsed().as_secs());
    // Some cases alone are not the figures to publish.
    let docs = root.join("docs/performance.md");
    report.write(
        &out_dir,
        opts.only.is_empty().then_some(docs.as_path()),
        &meta,
    )?;
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

fn mfa_prompts(env: &TestEnv) -> usize {
    fs::read_to_string(env.dir.path().join("mfa-count"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

struct Bench<'a> {
    opts: &'a Options,
    bin: PathBuf,
    /// The glibc build (`cargo install`), when the measured one is the static build.
    host_bin: Option<PathBuf>,
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
