//! A session keyring of the test's own, so what `vault` keeps in the kernel (unlock once, the
//! Secret Service cache) is seen, found and forgotten only there: never in the session of the
//! developer or CI job running the tests, never by another test.
//!
//! The tests' processes inherit the session keyring of the test runner (or, when it has
//! none, share the user-session keyring of the uid). [`SessionKeyring`] is a new, named
//! session keyring, kept alive by a holder process (`keyctl session NAME … sleep`) for the
//! test's life; once [`crate::TestEnv::use_own_session_keyring`] is called, every later
//! program the environment starts joins it first (`keyctl session NAME PROGRAM …`, which
//! execs PROGRAM: same PID, same stdin/stdout/stderr, and nothing of keyctl's own printed).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::env::TestEnv;
use crate::process::Guard;
use crate::skip::skip;

/// Possessor: everything. The uid (processes not in the keyring yet): search, so that they
/// can join it by name. Nothing for group and others.
const PERMISSIONS: &str = "0x3f080000";

/// Joins session keyring `$1`, then execs the rest of the arguments with the stderr they
/// were given: keyctl's "Joined session keyring" line goes nowhere.
const JOIN: &str = r#"name=$1; shift; exec 3>&2
exec keyctl session "$name" sh -c 'exec "$@" 2>&3 3>&-' sh "$@" 2>/dev/null"#;

/// See the module doc. Dropping it stops the holder; the keyring goes with its last process.
#[derive(Debug)]
pub struct SessionKeyring {
    pub name: String,
    /// The keyring's serial number, as `keyctl id @s` prints it inside.
    pub id: String,
    _holder: Guard,
}

impl SessionKeyring {
    /// Starts the holder in `env`; `None` (a skip) when there is no kernel keyring here.
    pub(crate) fn start(env: &TestEnv) -> Option<SessionKeyring> {
        if !env.require_program("keyctl", "keyutils") {
            return None;
        }
        let base = env.dir.path().file_name().unwrap_or_default();
        let name = format!("vault-test-keyring-{}", base.to_string_lossy());
        let script = format!("keyctl setperm @s {PERMISSIONS} && keyctl id @s && exec sleep 86400");
        let mut holder = env.command("keyctl");
        holder
            .args(["session", &name, "sh", "-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut holder = holder.spawn().expect("keyctl runs");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap_or(0);
        let holder = Guard::new("keyctl session holder", holder);
        let id = line.trim().to_owned();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            skip("no kernel keyring here: keyctl cannot make a session keyring");
            return None;
        }
        Some(SessionKeyring {
            name,
            id,
            _holder: holder,
        })
    }

    /// `program`, started in this session keyring.
    pub(crate) fn command(&self, program: &std::ffi::OsStr) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", JOIN, "sh", &self.name]).arg(program);
        cmd
    }
}
