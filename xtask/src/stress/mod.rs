//! `cargo xtask stress`: the robustness claims of ARCHITECTURE.md ("a crash leaves the old
//! file or the new one", "bad input changes nothing", the servers cannot be starved) as
//! figures, every one measured in this run.
//!
//! Ten scenarios, each bounded in count and time, all traffic on 127.0.0.1 (moto via
//! `vault_harness`), every process stopped by its PID:
//!
//! 1. SIGKILL at random points of `vault add --env` runs (`kills`);
//! 2. SIGKILL at random points of cold mints against moto (`kills`);
//! 3. concurrent writers (`load`);
//! 4. a mixed load of every command (`load`);
//! 5. the `--server` endpoint under wrk with idle connections held by a neighbour (`servers`);
//! 6. a full disk (`inputs`, root only);
//! 7. the bad-input catalogue (`inputs`);
//! 8. writers of the AWS config from two vault directories, a user's edits, `recent` under
//!    parallel exports (`files`);
//! 9. odd files as the config (time, peak memory) and hostile values into real shells
//!    (`files`);
//! 10. the container broker: SIGKILL during renewals, then every client served at once; a
//!     neighbour holding idle connections (`broker`).
//!
//! The report goes to `target/stress/report.md` and `report.json`; a full run also rewrites
//! the generated section of `docs/reliability.md`. The command fails when any must-be-zero
//! figure is not zero.

mod broker;
mod files;
mod inputs;
mod kills;
mod load;
mod servers;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vault_harness::{Moto, TestEnv};

use crate::bench::LockOnDrop;
use crate::{Result, header, setup};

pub(crate) const PASSPHRASE: &str = "stress passphrase";
const BEGIN: &str = "<!-- stress:begin -->";
const END: &str = "<!-- stress:end -->";

/// `cargo xtask stress`'s options. A count left out is the full run's, or `--quick`'s.
#[derive(Debug, Default, clap::Args)]
#[command(
    after_help = "Writes target/stress/report.md and report.json; exits 1 if a must-be-zero \
                  figure is not zero."
)]
pub struct Options {
    /// A short run (about a minute): 40 adds, 20 mints, 8 writers, 5 s load, 200 idle
    /// connections
    #[arg(long, visible_alias = "short")]
    quick: bool,
    /// Exercise target/debug/vault (no release build)
    #[arg(long)]
    debug_binary: bool,
    /// Use the release binary as it is
    #[arg(long)]
    no_build: bool,
    /// The random kill delays and load mix (default: from the clock; printed)
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Killed `vault add` runs (default 200)
    #[arg(long, value_name = "N")]
    adds: Option<usize>,
    /// Killed cold mints (default 100)
    #[arg(long, value_name = "N")]
    mints: Option<usize>,
    /// Concurrent writers per round (default 32, 3 rounds)
    #[arg(long, value_name = "N")]
    writers: Option<usize>,
    /// Length of the mixed load (default 30)
    #[arg(long, value_name = "S")]
    load_seconds: Option<u64>,
    /// Mixed-load workers (default 4)
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Idle connections held against the server (default 1000)
    #[arg(long, value_name = "N")]
    idle: Option<usize>,
    /// Length of each wrk run (default 10)
    #[arg(long, value_name = "S")]
    wrk_seconds: Option<u64>,
    /// Run scenario N alone (repeatable; never rewrites the docs)
    #[arg(long, value_name = "N")]
    only: Vec<u8>,
    /// Do not rewrite docs/reliability.md (a full release run does by default)
    #[arg(long)]
    no_docs: bool,
}

/// The options resolved: every count fixed (at least what a scenario needs), the seed chosen.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub quick: bool,
    pub adds: usize,
    pub mints: usize,
    pub writers: usize,
    pub writer_rounds: usize,
    pub load_seconds: u64,
    pub workers: usize,
    pub idle: usize,
    pub wrk_seconds: u64,
    pub seed: u64,
    only: Vec<u8>,
    debug_binary: bool,
    build: bool,
    docs: bool,
}

impl Options {
    /// `--quick --debug-binary --no-docs`: the short run `cargo xtask test` makes.
    pub(crate) fn test_run() -> Options {
        Options {
            quick: true,
            debug_binary: true,
            no_docs: true,
            ..Options::default()
        }
    }

    fn settings(&self) -> Settings {
        let quick = self.quick;
        let count = |given: Option<usize>, full: usize, short: usize| {
            given.unwrap_or(if quick { short } else { full })
        };
        let seconds = |given: Option<u64>, full: u64, short: u64| {
            given.unwrap_or(if quick { short } else { full })
        };
        let seed = self.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                % 1_000_000_007
        });
        Settings {
            quick,
            adds: count(self.adds, 200, 40).max(1),
            mints: count(self.mints, 100, 20).max(1),
            writers: count(self.writers, 32, 8).max(2),
            writer_rounds: if quick { 1 } else { 3 },
            load_seconds: seconds(self.load_seconds, 30, 5).max(1),
            workers: count(self.workers, 4, 3).max(1),
            idle: count(self.idle, 1000, 200),
            wrk_seconds: seconds(self.wrk_seconds, 10, 3).max(1),
            seed,
            only: self.only.clone(),
            debug_binary: self.debug_binary,
            build: !self.no_build,
            // Figures of a quick run, a debug build, or of some scenarios are not the ones
            // to publish.
            docs: !quick && !self.no_docs && !self.debug_binary && self.only.is_empty(),
        }
    }
}

pub fn run(root: &Path, options: &Options) -> Result {
    let opts = options.settings();
    let started = Instant::now();
    // Before anything is built or written: the tree the figures belong to.
    let (commit, clean) = header::git_state(root);

    eprintln!("xtask stress: installing the tools if missing (wrk, the moto venv)");
    setup::install_debian(&["wrk", "python3-venv", "keyutils"])?;
    setup::python_venv(root)?;

    let bin = if opts.debug_binary {
        root.join("target/debug/vault")
    } else {
        crate::dist::release_binary(root, opts.build)?.0
    };
    if !bin.exists() {
        return Err(format!("{} was not built", bin.display()));
    }
    eprintln!(
        "xtask stress: {} run, seed {}, binary {}",
        if opts.quick { "quick" } else { "full" },
        opts.seed,
        bin.display()
    );

    // One moto for the whole run, in its own temp dir; scenarios make their own users.
    let rig = TestEnv::new();
    let moto = Moto::start(&rig);
    let ctx = Ctx {
        bin,
        opts: opts.clone(),
        moto: &moto,
        rig: &rig,
    };

    type Scenario = fn(&Ctx<'_>, &mut Rng) -> Result<Section>;
    let scenarios: [(u8, &str, Scenario); 10] = [
        (1, "SIGKILL during `vault add`", kills::adds),
        (2, "SIGKILL during cold mints", kills::mints),
        (3, "concurrent writers", load::writers),
        (4, "mixed load", load::mixed),
        (5, "credential server under idle connections", servers::run),
        (6, "full disk", inputs::full_disk),
        (7, "bad-input catalogue", inputs::catalogue),
        (
            8,
            "writers of the AWS config and `recent`",
            files::config_writers,
        ),
        (
            9,
            "odd files and hostile output",
            files::odd_files_and_output,
        ),
        (10, "the container broker: SIGKILL and a flood", broker::run),
    ];
    let mut sections = Vec::new();
    for (id, title, scenario) in scenarios {
        if !opts.only.is_empty() && !opts.only.contains(&id) {
            continue;
        }
        eprintln!("xtask stress: {id}. {title}");
        let t = Instant::now();
        let mut rng = Rng::new(opts.seed.wrapping_add(u64::from(id) * 7919));
        let mut section = scenario(&ctx, &mut rng).unwrap_or_else(|e| {
            // A scenario that could not run is a failed figure, not a silent gap.
            Section::new(id, title).with_row(Row::check(
                id,
                "scenario ran to the end",
                format!("error: {e}"),
                "yes",
                false,
            ))
        });
        section.id = id;
        section.title = title.to_owned();
        section.seconds = t.elapsed().as_secs_f64();
        eprintln!(
            "xtask stress: {id}. done in {:.1} s{}",
            section.seconds,
            if section.failed().is_empty() {
                String::new()
            } else {
                format!(", {} failed figure(s)", section.failed().len())
            }
        );
        sections.push(section);
    }
    drop(moto);

    let meta = json!({
        "date": header::date(),
        "commit": commit,
        "tree_clean": clean,
        "binary": if opts.debug_binary { "debug" } else { "release" },
        "quick": opts.quick,
        "seed": opts.seed,
        "cores": header::cores(),
        "load_average_end": header::load_average(),
        "seconds": started.elapsed().as_secs(),
        "options": {
            "adds": opts.adds, "mints": opts.mints, "writers": opts.writers,
            "writer_rounds": opts.writer_rounds, "load_seconds": opts.load_seconds,
            "workers": opts.workers, "idle": opts.idle, "wrk_seconds": opts.wrk_seconds,
        },
    });
    let failed = write_report(root, &sections, &meta, opts.docs)?;
    if failed == 0 {
        Ok(())
    } else {
        Err(format!(
            "{failed} must-be-zero figure(s) not zero (see target/stress/report.md)"
        ))
    }
}

// ----- what the scenarios share -----

pub(crate) struct Ctx<'a> {
    pub bin: PathBuf,
    pub opts: Settings,
    pub moto: &'a Moto,
    /// moto's own env: runs `aws iam` against it.
    pub rig: &'a TestEnv,
}

impl Ctx<'_> {
    pub fn vault(&self, env: &TestEnv, args: &[&str]) -> Command {
        let mut cmd = env.command(&self.bin);
        cmd.args(args);
        cmd
    }

    /// Runs `vault ARGS` with extra variables; it must succeed: its stdout.
    pub fn ok(&self, env: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> Result<String> {
        let run = self.run(env, args, vars);
        if run.status.success() {
            Ok(run.stdout)
        } else {
            Err(format!(
                "`vault {}` failed ({}): {}",
                args.join(" "),
                run.status,
                first_line(&run.stderr)
            ))
        }
    }

    pub fn run(&self, env: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> vault_harness::Run {
        let mut cmd = self.vault(env, args);
        for (name, value) in vars {
            cmd.env(name, value);
        }
        env.output(&mut cmd)
    }

    /// A passphrase vault with `[profile base]` and its key stored; nothing listens at its
    /// endpoint unless `moto` is given.
    pub fn file_env(&self, moto: bool) -> TestEnv {
        let mut env = TestEnv::new();
        env.use_file_vault(PASSPHRASE);
        if moto {
            env.use_moto(self.moto);
        } else {
            env.set("AWS_ENDPOINT_URL", "http://127.0.0.1:1");
        }
        env
    }

    /// Stores `key` as `base` (creating the vault: one scrypt) and unlocks the vault, so the
    /// runs under test spend their time in vault's own code, not in scrypt.
    pub fn seed<'e>(&'e self, env: &'e TestEnv, key: &(String, String)) -> Result<LockOnDrop<'e>> {
        self.ok(
            env,
            &["add", "--env", "--no-add-config", "base"],
            &[
                ("AWS_ACCESS_KEY_ID", &key.0),
                ("AWS_SECRET_ACCESS_KEY", &key.1),
            ],
        )?;
        self.ok(env, &["unlock", "--for", "15m"], &[])?;
        Ok(LockOnDrop {
            env,
            bin: &self.bin,
        })
    }

    /// A real key in moto (user `user`), and a role trusting the account: (key, role ARN).
    pub fn moto_identity(&self, user: &str) -> ((String, String), String) {
        let key = self.moto.create_access_key(self.rig, user);
        let role = self.moto.create_role(self.rig, &format!("{user}-role"));
        (key, role)
    }
}

/// `[profile base]` and `[profile role]` (assumed from base), both in us-east-1.
pub(crate) fn role_config(role_arn: &str) -> String {
    format!(
        "[profile base]\nregion = us-east-1\n\n\
         [profile role]\nsource_profile = base\nrole_arn = {role_arn}\nregion = us-east-1\n"
    )
}

/// A key pair of the shapes vault accepts, distinct per `i` (never a real key).
pub(crate) fn fake_key(i: u64) -> (String, String) {
    (
        format!("AKIA{:016}", 7_000_000_000_000_000 + i),
        format!("{}{i:010}", "s".repeat(30)),
    )
}

/// `.*.tmp` files (what an interrupted atomic write leaves) directly in these dirs.
pub(crate) fn temp_files(dirs: &[PathBuf]) -> usize {
    dirs.iter()
        .filter_map(|d| fs::read_dir(d).ok())
        .flat_map(|entries| entries.flatten())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with('.') && name.ends_with(".tmp")
        })
        .count()
}

/// The dirs where vault writes atomically: the vault dir and the config's dir.
pub(crate) fn write_dirs(env: &TestEnv) -> Vec<PathBuf> {
    vec![env.vault_dir(), env.home().join(".aws")]
}

/// The first non-empty line, at most 160 characters.
/// Waits for every named child (stderr piped); "NAME: first line of stderr" for each that
/// failed.
pub(crate) fn wait_all(children: Vec<(String, Child)>) -> Result<Vec<String>> {
    let mut failed = Vec::new();
    for (name, child) in children {
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            failed.push(format!(
                "{name}: {}",
                first_line(&String::from_utf8_lossy(&out.stderr))
            ));
        }
    }
    Ok(failed)
}

pub(crate) fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut out: String = line.chars().take(160).collect();
    if line.chars().count() > 160 {
        out.push('…');
    }
    out
}

/// How a run that may be SIGKILLed ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Exited by itself (before the kill or never aimed at), with this status.
    Exited(ExitStatus),
    /// SIGKILL ended it.
    Killed,
}

impl Outcome {
    pub fn succeeded(self) -> bool {
        matches!(self, Outcome::Exited(s) if s.success())
    }
}

/// Waits `delay` (none: to the end), then SIGKILLs `child` by its PID if it still runs.
pub(crate) fn kill_after(mut child: Child, delay: Option<Duration>) -> Result<Outcome> {
    use std::os::unix::process::ExitStatusExt;
    if let Some(delay) = delay {
        std::thread::sleep(delay);
        if child.try_wait().map_err(|e| e.to_string())?.is_none() {
            // Child::kill is SIGKILL to its PID; the child is not reaped yet, so the PID is ours.
            let _ = child.kill();
        }
    }
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    Ok(if status.signal() == Some(libc::SIGKILL) {
        Outcome::Killed
    } else {
        Outcome::Exited(status)
    })
}

/// Median of `values` in ms (0 when empty).
pub(crate) fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// xorshift64*: reproducible from `--seed`, no dependency.
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

// ----- the report -----

pub(crate) struct Row {
    pub scenario: u8,
    pub measure: String,
    pub value: String,
    pub target: String,
    /// `None`: a figure without a target.
    pub pass: Option<bool>,
    /// A failing check that a known, listed defect explains: shown, not counted.
    pub known: bool,
}

impl Row {
    /// A must-be-zero figure.
    pub fn zero(scenario: u8, measure: &str, n: usize) -> Row {
        Row::check(scenario, measure, n.to_string(), "= 0", n == 0)
    }

    pub fn check(scenario: u8, measure: &str, value: String, target: &str, pass: bool) -> Row {
        Row {
            scenario,
            measure: measure.to_owned(),
            value,
            target: target.to_owned(),
            pass: Some(pass),
            known: false,
        }
    }

    /// Marks a check that fails today because of `defect` (a known bug in vault): it is shown
    /// as KNOWN DEFECT and not counted, and it fails once it passes, so the list of known
    /// defects cannot outlive their fixes.
    pub fn known_defect(mut self, defect: Option<&str>) -> Row {
        let Some(defect) = defect else {
            return self;
        };
        if self.pass == Some(true) {
            self.pass = Some(false);
            let _ = write!(
                self.value,
                " (listed as a known defect but passes: remove it from KNOWN_DEFECTS)"
            );
        } else {
            self.known = true;
            let _ = write!(self.value, " (known defect: {defect})");
        }
        self
    }

    pub fn info(scenario: u8, measure: &str, value: String) -> Row {
        Row {
            scenario,
            measure: measure.to_owned(),
            value,
            target: String::new(),
            pass: None,
            known: false,
        }
    }
}

pub(crate) struct Section {
    pub id: u8,
    pub title: String,
    /// What was done, in prose, for the report.
    pub md: String,
    pub rows: Vec<Row>,
    pub json: Value,
    pub seconds: f64,
}

impl Section {
    pub fn new(id: u8, title: &str) -> Section {
        Section {
            id,
            title: title.to_owned(),
            md: String::new(),
            rows: Vec::new(),
            json: json!({}),
            seconds: 0.0,
        }
    }

    pub fn with_row(mut self, row: Row) -> Section {
        self.rows.push(row);
        self
    }

    fn failed(&self) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|r| r.pass == Some(false) && !r.known)
            .collect()
    }

    fn known(&self) -> usize {
        self.rows.iter().filter(|r| r.known).count()
    }
}

fn table(sections: &[Section]) -> String {
    let mut md =
        String::from("| # | measure | value | target | result |\n|---|---|---:|---|---|\n");
    for s in sections {
        for r in &s.rows {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                r.scenario,
                r.measure.replace('|', "\\|"),
                r.value.replace('|', "\\|"),
                r.target,
                match r.pass {
                    Some(false) if r.known => "KNOWN DEFECT",
                    Some(true) => "PASS",
                    Some(false) => "**FAIL**",
                    None => "—",
                }
            );
        }
    }
    md
}

fn summary_line(meta: &Value, failed: usize, known: usize) -> String {
    format!(
        "Generated by `cargo xtask stress{}` {}, {} binary, seed {}, {} cores, {} s. {}{}",
        if meta["quick"].as_bool() == Some(true) {
            " --quick"
        } else {
            ""
        },
        header::measured_at(meta, "tree with uncommitted changes"),
        meta["binary"].as_str().unwrap_or("?"),
        meta["seed"],
        meta["cores"],
        meta["seconds"],
        if failed == 0 {
            "**Every must-be-zero figure is zero.**".to_owned()
        } else {
            format!("**{failed} figure(s) failed.**")
        },
        if known == 0 {
            String::new()
        } else {
            format!(
                " {known} check(s) fail because of a known defect in vault (KNOWN DEFECT \
                 rows), not counted until it is fixed."
            )
        }
    )
}

/// Writes the report (and, if asked, the generated section of docs/reliability.md); returns
/// how many figures failed.
fn write_report(root: &Path, sections: &[Section], meta: &Value, docs: bool) -> Result<usize> {
    let failed: usize = sections.iter().map(|s| s.failed().len()).sum();
    let known: usize = sections.iter().map(Section::known).sum();
    let dir = root.join("target/stress");
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;

    let mut md = String::from("# vault stress report\n\n");
    let _ = writeln!(md, "{}\n", summary_line(meta, failed, known));
    md.push_str("## Summary\n\n");
    md.push_str(&table(sections));
    for s in sections {
        let _ = writeln!(
            md,
            "\n## {}. {} ({:.1} s)\n\n{}",
            s.id, s.title, s.seconds, s.md
        );
    }
    let json = json!({
        "meta": meta,
        "scenarios": sections.iter().map(|s| json!({
            "id": s.id,
            "title": s.title,
            "seconds": s.seconds,
            "figures": s.rows.iter().map(|r| json!({
                "measure": r.measure, "value": r.value, "target": r.target,
                "result": match r.pass { Some(false) if r.known => "known defect", Some(true) => "pass", Some(false) => "fail", None => "info" },
            })).collect::<Vec<_>>(),
            "data": s.json,
        })).collect::<Vec<_>>(),
    });
    let write = |path: PathBuf, text: &str| -> Result {
        fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    write(dir.join("report.md"), &md)?;
    write(
        dir.join("report.json"),
        &serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?,
    )?;

    if docs {
        let path = root.join("docs/reliability.md");
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let generated = format!(
            "{BEGIN}\n<!-- Written by `cargo xtask stress`; do not edit by hand. -->\n\n{}\n\n{}{END}",
            summary_line(meta, failed, known),
            table(sections)
        );
        let new = match (text.find(BEGIN), text.find(END)) {
            (Some(b), Some(e)) if b < e => {
                format!("{}{generated}{}", &text[..b], &text[e + END.len()..])
            }
            _ => format!("{}\n{generated}\n", text.trim_end()),
        };
        write(path.clone(), &new)?;
        eprintln!("xtask stress: wrote the figures into {}", path.display());
    }

    println!("\n=== vault stress ===\n{}", table(sections));
    println!("{}", summary_line(meta, failed, known));
    println!(
        "Report: {} (and report.json)",
        dir.join("report.md").display()
    );
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cargo xtask stress ARGS`, resolved.
    fn settings(args: &[&str]) -> std::result::Result<Settings, clap::Error> {
        #[derive(clap::Parser)]
        struct Stress {
            #[command(flatten)]
            options: Options,
        }
        let args = std::iter::once("stress").chain(args.iter().copied());
        Ok(<Stress as clap::Parser>::try_parse_from(args)?
            .options
            .settings())
    }

    #[test]
    fn counts_are_the_full_runs_or_quicks_unless_given() {
        let counts = |s: &Settings| {
            (
                s.adds,
                s.mints,
                s.writers,
                s.writer_rounds,
                s.load_seconds,
                s.workers,
                s.idle,
                s.wrk_seconds,
            )
        };
        let full = settings(&[]).unwrap();
        assert_eq!(counts(&full), (200, 100, 32, 3, 30, 4, 1000, 10));
        assert!(full.docs && full.build && !full.quick && full.only.is_empty());
        assert!(full.seed < 1_000_000_007);

        let quick = settings(&["--quick"]).unwrap();
        assert_eq!(counts(&quick), (40, 20, 8, 1, 5, 3, 200, 3));
        assert!(quick.quick && !quick.docs);

        // Given counts win, raised to what a scenario needs.
        let given = settings(&[
            "--short",
            "--adds",
            "0",
            "--mints",
            "7",
            "--writers",
            "1",
            "--load-seconds",
            "0",
            "--workers",
            "0",
            "--idle",
            "0",
            "--wrk-seconds",
            "0",
            "--seed",
            "1234",
        ])
        .unwrap();
        assert_eq!(counts(&given), (1, 7, 2, 1, 1, 1, 0, 1));
        assert_eq!(given.seed, 1234);
        assert!(given.quick);
    }

    #[test]
    fn only_some_scenarios_or_another_binary_never_rewrite_the_docs() {
        let some = settings(&["--only", "5", "--only", "7"]).unwrap();
        assert_eq!(some.only, [5, 7]);
        assert!(!some.docs);
        let debug = settings(&["--debug-binary"]).unwrap();
        assert!(debug.debug_binary && !debug.docs);
        let no_build = settings(&["--no-build"]).unwrap();
        assert!(!no_build.build && no_build.docs);
        assert!(!settings(&["--no-docs"]).unwrap().docs);
        let test = Options::test_run().settings();
        assert!(test.quick && test.debug_binary && !test.docs);
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(settings(&["--adds"]).is_err());
        assert!(settings(&["--adds", "many"]).is_err());
        assert!(settings(&["--seed", "-1"]).is_err());
        assert!(settings(&["--fast"]).is_err());
    }
}
