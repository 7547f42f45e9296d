//! What the bench and stress reports say about the run they come from: the date, the commit
//! and whether its tree was clean, the machine's cores and load. One place, so both reports
//! identify a run the same way.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// `git ARGS` in `root`: its stdout, trimmed; empty when git cannot run.
pub(crate) fn git(root: &Path, args: &[&str]) -> String {
    Command::new("git")
        .current_dir(root)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The short commit of HEAD and whether the tree is clean. Clean means the whole tree
/// (outside what git ignores, such as target/), docs included: a run on a dirty tree says so.
pub(crate) fn git_state(root: &Path) -> (String, bool) {
    (
        git(root, &["rev-parse", "--short", "HEAD"]),
        git(root, &["status", "--porcelain"]).is_empty(),
    )
}

/// Now, in UTC, to the minute.
pub(crate) fn date() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The cores this process may use (0 when unknown).
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0)
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// `on DATE at commit C (clean tree)`, from a report's meta (`date`, `commit`, `tree_clean`);
/// `dirty` stands for "clean tree" when the tree had uncommitted changes.
pub(crate) fn measured_at(meta: &Value, dirty: &str) -> String {
    format!(
        "on {} at commit {} ({})",
        meta["date"].as_str().unwrap_or("?"),
        meta["commit"].as_str().unwrap_or("?"),
        if meta["tree_clean"].as_bool() == Some(true) {
            "clean tree"
        } else {
            dirty
        },
    )
}
