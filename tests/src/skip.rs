//! Skipped checks are visible. libtest has no "skipped" outcome, so a test that cannot run
//! here returns early and counts as passed; [`skip`] records why, on stdout and, when
//! `cargo xtask test` asks for it with `VAULT_TEST_SKIPS`, as a line in that file, so the
//! final summary counts it as skipped. [`require_program`] is for what `cargo xtask setup`
//! installs: missing there is a broken rig, so under `CI=true` it fails instead of skipping.

use std::io::Write;

/// The prefix of every skip record; xtask reads these lines.
pub const SKIP_MARK: &str = "vault-test: SKIPPED ";

/// Records that the current test (or part of it) did not run here, and why. The caller
/// returns (or leaves out the part) itself.
// The skip line goes to the test's stdout, where `cargo test` shows it.
#[allow(clippy::print_stdout)]
pub fn skip(reason: &str) {
    let thread = std::thread::current();
    // libtest runs each test on a thread named after it.
    let test = thread.name().unwrap_or("unknown test");
    let line = format!("{SKIP_MARK}{test}: {}\n", reason.replace('\n', " "));
    print!("{line}");
    if let Some(path) = std::env::var_os("VAULT_TEST_SKIPS") {
        // One append of one line per record: parallel tests do not interleave.
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(e) = written {
            panic!("cannot record the skip in {}: {e}", path.to_string_lossy());
        }
    }
}

/// Whether `program` is on `path` (a `PATH` value). When it is not, that is a skip, or under
/// `CI=true` (where `cargo xtask test` installed the rig) a failure: `package` is the Debian
/// package the setup installs it from.
#[track_caller]
pub fn require_program(path: &std::ffi::OsStr, program: &str, package: &str) -> bool {
    if std::env::split_paths(path).any(|dir| dir.join(program).is_file()) {
        return true;
    }
    let reason = format!("no `{program}` on PATH (Debian package {package})");
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{reason}: `cargo xtask setup` installs it, so under CI=true this fails instead of skipping"
    );
    skip(&reason);
    false
}
