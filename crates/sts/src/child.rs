//! Helper processes this crate starts (`credential_process` sources). The caller builds
//! each [`Command`], so the binary decides what environment every child gets (it removes the
//! vault passphrase) in one place for all of them.

use std::ffi::OsStr;
use std::process::Command;

/// Makes the `Command` for a helper program; the caller sets its environment.
pub trait Launcher {
    fn command(&self, program: &OsStr) -> Command;
}
