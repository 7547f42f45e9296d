//! `cargo xtask`: everything beyond `cargo build`.
//!
//! - `cargo xtask test`: installs what the tests need (idempotently), then fmt, clippy, the
//!   dependency audit, the docs, the cross-platform checks and every test, on real components.
//! - `cargo xtask setup`: only the installation part.
//! - `cargo xtask demo`: the main job end to end against a local STS emulator.
//! - `cargo xtask dist`: the release bundle (binary, man pages, completions) and its SHA-256.
//! - `cargo xtask bench`: release-build performance against its comparisons, as a report in
//!   `target/bench/`.
//!
//! Standard library, clap for the arguments, and the small test rig (`vault_harness`, which
//! the demo reuses; it does not pull in the AWS SDK), so it builds in seconds on a fresh
//! machine.

// A command-line tool: it reports on stdout and stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

#[cfg(unix)]
mod bench;
mod demo;
mod dist;
#[cfg(unix)]
mod header;
mod setup;
#[cfg(unix)]
mod stress;
#[cfg(unix)]
mod wine;

type Result<T = ()> = std::result::Result<T, String>;

/// Everything beyond `cargo build`: the test rig, the demo, the benchmarks.
#[derive(Debug, clap::Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, clap::Subcommand)]
enum Task {
    /// Install the test rig if needed, then fmt, clippy, cross checks and all tests
    Test {
        /// Arguments for `cargo test`, after `--` (e.g. `-- -p vault-harness --test e2e exec::`)
        #[arg(last = true)]
        cargo_test_args: Vec<String>,
    },
    /// Install the test rig only (Debian packages, Rust targets, Python venv)
    Setup,
    /// Run vault end to end against a local STS emulator
    Demo,
    /// Build the release bundle: `target/dist/vault-VERSION-TARGET.tar.gz` and its `.sha256`
    Dist,
    /// Mutate the parsers' inputs (the fuzz targets), one target at a time
    Fuzz {
        /// Seconds per target
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Build release, measure vault against its comparisons, write target/bench/report.md
    /// and the figures in docs/performance.md
    #[cfg(unix)]
    Bench(bench::Options),
    /// Kill -9 at random, concurrent and mixed load, a flooded credential server, a full
    /// disk, bad input: robustness as figures in target/stress/ and docs/reliability.md
    #[cfg(unix)]
    Stress(stress::Options),
}

fn main() -> ExitCode {
    // clap prints help (exit 0) and usage errors (exit 2) itself.
    let cli = <Cli as clap::Parser>::parse();
    let root = workspace_root();
    let result = match &cli.command {
        Task::Test { cargo_test_args } => test(cargo_test_args),
        Task::Setup => setup::all(&root).map(|_| ()),
        Task::Demo => demo::run(&root),
        Task::Dist => dist::run_dist(&root),
        Task::Fuzz { seconds } => fuzz(*seconds),
        #[cfg(unix)]
        Task::Bench(options) => bench::run(&root, options),
        #[cfg(unix)]
        Task::Stress(options) => stress::run(&root, options),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

/// Runs a command, echoing it; fails with its exit status.
pub fn run(cmd: &mut Command) -> Result {
    eprintln!("xtask: $ {}", display(cmd));
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {}: {e}", display(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", display(cmd)))
    }
}

fn display(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

fn cargo() -> Command {
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

fn test(extra: &[String]) -> Result {
    let root = workspace_root();
    let rig = setup::all(&root)?;

    run(cargo().current_dir(&root).args(["fmt", "--all", "--check"]))?;
    run(cargo().current_dir(&root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // Licences, banned or duplicate crates, sources; not advisories (see deny.toml). The
    // duplicates' inclusion graphs would be a thousand lines of every run's log.
    run(cargo().current_dir(&root).args([
        "deny",
        "check",
        "--hide-inclusion-graph",
        "licenses",
        "bans",
        "sources",
    ]))?;
    run(cargo()
        .current_dir(&root)
        .args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings"))?;
    // Users are on Windows and macOS too; only Linux runs here, so at least compile there.
    run(cargo().current_dir(&root).args([
        "check",
        "--workspace",
        "--exclude",
        "vault-harness",
        "--target",
        "x86_64-pc-windows-gnu",
    ]))?;
    run(cargo().current_dir(&root).args([
        "check",
        "-p",
        "vault-store",
        "--target",
        "aarch64-apple-darwin",
    ]))?;

    // A short fuzzing run; longer ones with `cargo xtask fuzz --seconds N`.
    fuzz(10)?;
    // A short robustness run on the debug binary (the full one: `cargo xtask stress`).
    #[cfg(unix)]
    {
        run(cargo()
            .current_dir(&root)
            .args(["build", "-p", "vault-exec"]))?;
        stress::run(&root, &stress::Options::test_run())?;
    }

    // The end-to-end tests run the real binary and the aws-sdk-rust probe (another package,
    // so cargo would not build it for them); build both first.
    run(cargo()
        .current_dir(&root)
        .args(["build", "-p", "vault-exec", "-p", "sdk-caller"]))?;
    let mut cmd = cargo();
    cmd.current_dir(&root).arg("test");
    // The whole workspace, unless the arguments pick packages.
    if !extra
        .iter()
        .any(|a| a.starts_with("-p") || a.starts_with("--package"))
    {
        cmd.arg("--workspace");
    }
    cmd.env("VAULT_TEST_VENV", &rig.venv)
        .env("VAULT_BIN", root.join("target/debug/vault"))
        .env("VAULT_SDK_CALLER", root.join("target/debug/sdk-caller"));
    // The Windows build, run under Wine by the Windows subset (tests/e2e/windows.rs); the rig
    // lives until the tests are done.
    #[cfg(unix)]
    let wine = wine::prepare(&root)?;
    #[cfg(unix)]
    for (name, value) in &wine.vars {
        cmd.env(name, value);
    }
    if !extra.is_empty() {
        cmd.args(extra);
    }
    // Tests record their skips here (vault_harness::skip): libtest counts them as passed.
    let skips = root.join("target/test-skips.txt");
    clear_skips(&skips)?;
    cmd.env("VAULT_TEST_SKIPS", &skips);
    run_tests(&mut cmd, &skips)?;
    // `cargo test` with arguments is someone narrowing the run; the static build's pass
    // belongs to the whole suite only.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    if extra.is_empty() {
        static_build_subset(&root, &rig)?;
    }
    Ok(())
}

/// The Linux release binary is the static musl build (`xtask dist`): its own allocator,
/// resolver and start-up. The stores (Secret Service over zbus, kernel keyring, passphrase),
/// exec, the credential servers and scripts' paths run again against a debug build of it.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn static_build_subset(root: &Path, rig: &setup::Rig) -> Result {
    const TARGET: &str = dist::LINUX_RELEASE_TARGET;
    const SUBSET: &[&str] = &["store::", "kept_key::", "exec::", "servers::", "scripts::"];
    run(cargo()
        .current_dir(root)
        .args(["build", "-p", "vault-exec", "--target", TARGET]))?;
    let skips = root.join("target/test-skips-static.txt");
    clear_skips(&skips)?;
    let mut cmd = cargo();
    cmd.current_dir(root)
        .args(["test", "-p", "vault-harness", "--test", "e2e", "--"])
        .args(SUBSET)
        .env("VAULT_TEST_VENV", &rig.venv)
        .env(
            "VAULT_BIN",
            root.join("target").join(TARGET).join("debug/vault"),
        )
        .env("VAULT_SDK_CALLER", root.join("target/debug/sdk-caller"))
        .env("VAULT_TEST_SKIPS", &skips);
    eprintln!(
        "xtask: the static Linux build (musl), a subset: {}",
        SUBSET.join(" ")
    );
    run_tests(&mut cmd, &skips)
}

/// The fuzz targets (tests named `fuzz_*` in the store, sts and exec crates; see
/// `crates/fuzz`) with their mutation loop on, one at a time.
fn fuzz(seconds: u64) -> Result {
    run(cargo()
        .current_dir(workspace_root())
        .args([
            "test",
            "-p",
            "vault-store",
            "-p",
            "vault-sts",
            "-p",
            "vault-exec",
            "fuzz_",
            "--",
            "--test-threads",
            "1",
            "--nocapture",
        ])
        .env("VAULT_FUZZ_SECS", seconds.to_string()))
}

/// Runs `cargo test`, passing its output through, and closes with one summary line over all
/// test binaries (cargo's own last line is about whichever binary ran last). A test that
/// recorded a skip in `skips` counts as skipped, not passed; so do ignored tests.
fn run_tests(cmd: &mut Command, skips: &Path) -> Result {
    use std::io::{BufRead, BufReader};
    eprintln!("xtask: $ {}", display(cmd));
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    let mut passed_names = std::collections::BTreeSet::new();
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.map_err(|e| format!("reading cargo test output: {e}"))?;
        println!("{line}");
        if let Some(name) = line
            .strip_prefix("test ")
            .and_then(|rest| rest.strip_suffix(" ... ok"))
        {
            passed_names.insert(name.to_owned());
        }
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |label: &str| -> u64 {
                rest.split(';')
                    .find_map(|part| part.trim().strip_suffix(label))
                    .and_then(|n| n.trim().rsplit(' ').next()?.parse().ok())
                    .unwrap_or(0)
            };
            passed += count(" passed");
            failed += count(" failed");
            ignored += count(" ignored");
        }
    }
    let status = child.wait().map_err(|e| format!("cargo test: {e}"))?;
    // A test that skipped and then failed is a failure, counted as such by libtest.
    let skipped: Vec<(String, String)> = skipped_tests(skips)?
        .into_iter()
        .filter(|(test, _)| passed_names.contains(test))
        .collect();
    for (_, line) in &skipped {
        println!("{line}");
    }
    let skipped = skipped.len() as u64;
    let passed = passed.saturating_sub(skipped);
    println!(
        "tests: {passed} passed, {failed} failed, {} skipped",
        ignored + skipped
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo test failed ({status})"))
    }
}

/// Starts a run's skip records afresh.
fn clear_skips(skips: &Path) -> Result {
    match std::fs::remove_file(skips) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", skips.display())),
    }
}

/// The skip records in `skips` as (test, line), one per test (a test may skip more than one
/// part).
fn skipped_tests(skips: &Path) -> Result<Vec<(String, String)>> {
    let text = match std::fs::read_to_string(skips) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", skips.display())),
    };
    let mut seen = std::collections::BTreeSet::new();
    Ok(text
        .lines()
        .filter_map(|line| {
            let (test, _) = line
                .strip_prefix(vault_harness::SKIP_MARK)?
                .split_once(": ")?;
            seen.insert(test.to_owned())
                .then(|| (test.to_owned(), line.to_owned()))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn skip_records_count_once_per_test() {
        let dir = std::env::temp_dir().join(format!("xtask-skips-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("skips.txt");
        std::fs::write(
            &file,
            "vault-test: SKIPPED unlock::a: no kernel keyring\n\
             vault-test: SKIPPED unlock::a: switching uid needs root\n\
             vault-test: SKIPPED store::b: no `keyctl` on PATH\n\
             noise\n",
        )
        .unwrap();
        let skipped = skipped_tests(&file).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(skipped_tests(&dir.join("absent")).unwrap().is_empty());
    }
}
