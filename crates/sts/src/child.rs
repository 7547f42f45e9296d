//! Helper processes this crate starts (`credential_process` sources). The caller builds
//! each [`Command`], so the binary decides what environment every child gets (it removes the
//! vault passphrase) in one place for all of them.

use std::ffi::OsStr;
use std::process::{Command, ExitStatus};

use zeroize::Zeroizing;

/// Makes and runs helper programs; the caller sets their environment and time limit.
pub trait Launcher {
    fn command(&self, program: &OsStr) -> Command;
    /// Runs `cmd` with its stdout captured (its answer); `what` names it in messages.
    fn output(&self, cmd: Command, what: &str) -> Result<HelperOutput, HelperError>;
}

/// Why a helper gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// It could not be started (not found, not executable).
    #[error("cannot run {what}: {error}")]
    Start { what: String, error: std::io::Error },
    /// Waiting for it failed.
    #[error("waiting for {what}: {error}")]
    Wait { what: String, error: std::io::Error },
    /// It printed more than any answer can be (`cat /dev/zero`), and was stopped.
    #[error("{what} printed more than {} KiB and was stopped", .limit / 1024)]
    TooMuch { what: String, limit: u64 },
    /// It ran past its time limit and was stopped, with every process it started.
    #[error(
        "{what} did not finish within {limit} and was stopped (set {variable} to allow longer)"
    )]
    TimedOut {
        what: String,
        /// The limit, as a duration is written (`2m`).
        limit: String,
        /// The variable that sets the limit.
        variable: &'static str,
    },
}

/// A helper's exit status and what it printed on stdout (wiped when dropped: it is often
/// a secret).
#[derive(Debug)]
pub struct HelperOutput {
    pub status: ExitStatus,
    pub stdout: Zeroizing<Vec<u8>>,
}
