//! `cargo xtask`: everything beyond `cargo build`.
//!
//! - `cargo xtask test`: installs what the tests need (idempotently), then fmt, clippy, the
//!   dependency audit, the docs, the cross-platform checks and every test, on real components.
//! - `cargo xtask setup`: only the installation part.
//! - `cargo xtask demo`: the main job end to end against a local STS emulator.
//! - `cargo xtask bench`: release-build performance against its comparisons, as a report in
//!   `target/bench/`.
//!
//! Standard library plus the small test rig (`vault_harness`, which the demo reuses), so it
//! builds in seconds on a fresh machine.

// A command-line tool: it reports on stdout and stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

#[cfg(unix)]
mod bench;
mod demo;
mod setup;
#[cfg(unix)]
mod stress;

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("setup") => setup::all(&workspace_root()).map(|_| ()),
        Some("demo") => demo::run(&workspace_root()),
        #[cfg(unix)]
        Some("bench") => bench::run(&workspace_root(), &args[1..]),
        #[cfg(unix)]
        Some("stress") => stress::run(&workspace_root(), &args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 test [-- TEST ARGS]  install the test rig if needed, then fmt, clippy, deny, doc, cross checks, all tests\n  \
                 setup                install the test rig only (Debian packages, Rust targets, cargo-deny, Python venv)\n  \
                 demo                 run vault end to end against a local STS emulator\n  \
                 bench [--runs N]     build release, measure vault against its comparisons, write target/bench/report.md"
            );
            return ExitCode::from(2);
        }
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

    // The end-to-end tests run the real binary; build it first.
    run(cargo()
        .current_dir(&root)
        .args(["build", "-p", "vault-exec"]))?;
    let mut cmd = cargo();
    cmd.current_dir(&root)
        .args(["test", "--workspace"])
        .env("VAULT_TEST_VENV", &rig.venv)
        .env("VAULT_BIN", root.join("target/debug/vault"));
    if !extra.is_empty() {
        cmd.args(extra);
    }
    run_tests(&mut cmd)
}

/// Runs `cargo test`, passing its output through, and closes with one summary line over all
/// test binaries (cargo's own last line is about whichever binary ran last).
fn run_tests(cmd: &mut Command) -> Result {
    use std::io::{BufRead, BufReader};
    eprintln!("xtask: $ {}", display(cmd));
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.map_err(|e| format!("reading cargo test output: {e}"))?;
        println!("{line}");
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
    println!("tests: {passed} passed, {failed} failed, {ignored} skipped");
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo test failed ({status})"))
    }
}
