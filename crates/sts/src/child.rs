//! Helper processes this crate starts (`credential_process` sources). The caller builds
//! each [`Command`], so the binary decides what environment every child gets (it removes the
//! vault passphrase) in one place for all of them.

use std::ffi::OsStr;
use std::process::{Command, ExitStatus};

use zeroize::Zeroizing;

/// Makes and runs helper programs; the caller sets their environment and time limit.
pub trait Launcher {
    fn command(&self, program: &OsStr) -> Command;
    /// Runs `cmd` with its stdout captured (its answer); `what` names it in messages. The
    /// error is a message for the user (could not start, or stopped after the time limit).
    fn output(&self, cmd: Command, what: &str) -> Result<HelperOutput, String>;
}

/// A helper's exit status and what it printed on stdout (wiped when dropped: it is often
/// a secret).
#[derive(Debug)]
pub struct HelperOutput {
    pub status: ExitStatus,
    pub stdout: Zeroizing<Vec<u8>>,
}
