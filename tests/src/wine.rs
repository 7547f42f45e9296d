//! The Windows build of `vault`, run under Wine with a test's own [`TestEnv`].
//!
//! `cargo xtask test` builds `vault.exe`, boots a private `WINEPREFIX` under a wineserver it
//! starts and stops itself (xtask/src/wine.rs), and passes `VAULT_WINE_LOADER`,
//! `VAULT_WINE_EXE` (with `sdk-caller.exe` beside it) and `VAULT_WINEPREFIX`; or `VAULT_WINE_SKIP` with the reason Wine cannot
//! run here. The prefix is shared by the tests: each test's vault has its own id, so its
//! Credential Manager entry and its files are its own.
//!
//! Unix paths in the environment (the temp HOME, `AWS_CONFIG_FILE`, the vault dir) work
//! unchanged: a program started in a Unix directory has Wine's `Z:` (the Unix root) as its
//! current drive, so `/tmp/x` is `Z:\tmp\x`.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;

use crate::env::{Run, TestEnv};

#[derive(Debug)]
pub struct Wine {
    loader: PathBuf,
    exe: PathBuf,
    prefix: PathBuf,
}

impl Wine {
    /// The rig xtask prepared; `None`, recorded as a skip, when Wine cannot run here or the
    /// test was not started by `cargo xtask test`.
    #[track_caller]
    pub fn get() -> Option<Wine> {
        if let Some(reason) = std::env::var_os("VAULT_WINE_SKIP") {
            crate::skip(&format!("Windows under Wine: {}", reason.to_string_lossy()));
            return None;
        }
        let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
        match (
            var("VAULT_WINE_LOADER"),
            var("VAULT_WINE_EXE"),
            var("VAULT_WINEPREFIX"),
        ) {
            (Some(loader), Some(exe), Some(prefix)) => Some(Wine {
                loader,
                exe,
                prefix,
            }),
            _ => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "no VAULT_WINE_* from cargo xtask test, which CI runs"
                );
                crate::skip(
                    "Windows under Wine: run through `cargo xtask test`, which builds vault.exe and boots a Wine prefix",
                );
                None
            }
        }
    }

    /// Any Windows program (`cmd`, or a path to an .exe) with `env`'s variables, under Wine.
    pub fn command(&self, env: &TestEnv, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = env.command(&self.loader);
        cmd.arg(program)
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all");
        cmd
    }

    /// `vault.exe ARGS` with `env`'s variables.
    pub fn vault(&self, env: &TestEnv, args: &[&str]) -> Command {
        let mut cmd = self.command(env, &self.exe);
        cmd.args(args);
        cmd
    }

    /// Runs `vault.exe ARGS` to completion; CRLF line ends read as LF.
    pub fn run(&self, env: &TestEnv, args: &[&str]) -> Run {
        self.run_with(env, &[], args)
    }

    /// Runs `vault.exe ARGS` with extra variables for this run only.
    pub fn run_with(&self, env: &TestEnv, vars: &[(&str, &str)], args: &[&str]) -> Run {
        let mut cmd = self.vault(env, args);
        for (name, value) in vars {
            cmd.env(name, value);
        }
        unix_lines(env.output(&mut cmd))
    }

    /// The Windows build of the aws-sdk-rust probe (package `sdk-caller`), next to vault.exe.
    pub fn sdk_caller(&self) -> PathBuf {
        self.exe.with_file_name("sdk-caller.exe")
    }

    /// The prefix's directory, where Wine keeps the registry (and in it the Credential
    /// Manager).
    pub fn prefix(&self) -> &std::path::Path {
        &self.prefix
    }
}

/// `run` with its output's CRLF line ends turned into LF.
pub fn unix_lines(run: Run) -> Run {
    Run {
        status: run.status,
        stdout: run.stdout.replace("\r\n", "\n"),
        stderr: run.stderr.replace("\r\n", "\n"),
    }
}
