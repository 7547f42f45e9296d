//! `cargo xtask dist`: the release bundle a package manager or a release page ships.
//!
//! ```text
//! target/dist/vault-<version>-<target>.tar.gz          vault (stripped), man/, completions/,
//!                                                      README.md, LICENSE-MIT, LICENSE-APACHE
//! target/dist/vault-<version>-<target>.tar.gz.sha256   `sha256sum -c` format
//! ```
//!
//! The man pages and completion scripts come from the release binary itself (`vault man`,
//! `vault completion`), so they always match its flags. The tarball is reproducible: sorted
//! names, owner 0, and every mtime the last commit's time.

use std::path::Path;
use std::process::Command;

use crate::{Result, run};

const SHELLS: [(&str, &str); 5] = [
    ("bash", "vault.bash"),
    ("zsh", "_vault"),
    ("fish", "vault.fish"),
    ("powershell", "vault.ps1"),
    ("elvish", "vault.elv"),
];

/// The target the Linux release binary is built for: static musl, so no dynamic loader, no
/// glibc start-up (its CPU-feature probe alone costs about 1 ms where `cpuid` traps to a
/// hypervisor) and no symbol binding at each start (docs/performance.md). Elsewhere the host.
pub(crate) const LINUX_RELEASE_TARGET: &str = "x86_64-unknown-linux-musl";

/// The release binary and its target: `target/<target>/release/vault`, built first when
/// `build`.
pub fn release_binary(root: &Path, build: bool) -> Result<(std::path::PathBuf, String)> {
    let host = host_target()?;
    let target = match host.as_str() {
        "x86_64-unknown-linux-gnu" => LINUX_RELEASE_TARGET.to_owned(),
        _ => host,
    };
    if build {
        run(crate::cargo().current_dir(root).args([
            "build",
            "--release",
            "-p",
            "vault-exec",
            "--target",
            &target,
        ]))?;
    }
    let binary = root.join("target").join(&target).join("release/vault");
    Ok((binary, target))
}

pub fn run_dist(root: &Path) -> Result {
    let (built, target) = release_binary(root, true)?;
    let version = env!("CARGO_PKG_VERSION");
    let name = format!("vault-{version}-{target}");
    let dist = root.join("target").join("dist");
    let stage = dist.join(&name);
    let _ = std::fs::remove_dir_all(&stage);
    for dir in ["man", "completions"] {
        std::fs::create_dir_all(stage.join(dir))
            .map_err(|e| format!("{}: {e}", stage.display()))?;
    }
    let binary = stage.join("vault");
    std::fs::copy(&built, &binary).map_err(|e| format!("{}: {e}", built.display()))?;
    run(Command::new("strip").arg(&binary))?;

    run(Command::new(&binary).arg("man").arg(stage.join("man")))?;
    for (shell, file) in SHELLS {
        let out = Command::new(&binary)
            .args(["completion", shell])
            .output()
            .map_err(|e| format!("vault completion {shell}: {e}"))?;
        if !out.status.success() {
            return Err(format!("vault completion {shell} failed"));
        }
        let path = stage.join("completions").join(file);
        std::fs::write(&path, out.stdout).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    for file in ["README.md", "LICENSE-MIT", "LICENSE-APACHE"] {
        std::fs::copy(root.join(file), stage.join(file)).map_err(|e| format!("{file}: {e}"))?;
    }

    let tarball = dist.join(format!("{name}.tar.gz"));
    let mtime = last_commit_time(root).unwrap_or_else(|| "0".into());
    run(Command::new("tar")
        .current_dir(&dist)
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            &format!("--mtime=@{mtime}"),
            "-czf",
        ])
        .arg(&tarball)
        .arg(&name)
        .env("GZIP", "-n"))?;
    let sum = Command::new("sha256sum")
        .current_dir(&dist)
        .arg(tarball.file_name().expect("a file name"))
        .output()
        .map_err(|e| format!("sha256sum: {e}"))?;
    if !sum.status.success() {
        return Err("sha256sum failed".into());
    }
    let sha_file = dist.join(format!("{name}.tar.gz.sha256"));
    std::fs::write(&sha_file, &sum.stdout).map_err(|e| format!("{}: {e}", sha_file.display()))?;
    println!("xtask dist: {}", tarball.display());
    println!("xtask dist: {}", sha_file.display());
    Ok(())
}

/// The host's target triple, as rustc names it.
fn host_target() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|e| format!("rustc -vV: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .ok_or_else(|| "rustc -vV names no host".into())
}

fn last_commit_time(root: &Path) -> Option<String> {
    let out = Command::new("git")
        .current_dir(root)
        .args(["log", "-1", "--format=%ct"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}
