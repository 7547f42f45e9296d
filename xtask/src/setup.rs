//! Installs what the tests need on a fresh Debian machine, and does nothing when it is there:
//! Debian packages (gnome-keyring & co, the mingw C compiler for the Windows check), Rust
//! components and targets, cargo-deny, and a Python venv with moto, the AWS CLI, boto3 and
//! cryptography.
//!
//! `cargo xtask bench` needs a few more things ([`bench_tools`]): wrk, nginx and awsume. They
//! are installed only by the bench, never by `setup` or `test`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Result, run};

/// Debian packages the tests and checks use.
const DEBIAN_PACKAGES: &[&str] = &[
    "gnome-keyring",             // the real Secret Service
    "libsecret-tools",           // secret-tool, to look inside it from tests
    "dbus",                      // dbus-daemon for a private session bus
    "dbus-bin",                  // dbus-send, to wait for org.freedesktop.secrets
    "keyutils",                  // keyctl, for the kernel keyring backend
    "bsdutils",                  // script, for a pseudo-terminal in the MFA prompt test
    "gcc-mingw-w64-x86-64",      // C dependencies of the Windows build; the Wine stand-in DLL
    "binutils-mingw-w64-x86-64", // strip for the Windows binary run under Wine
    "wine64",                    // runs the Windows binary for the Windows subset of the tests
    "musl-tools",                // musl-gcc, for the C dependencies of the static Linux build
    "tmux",                      // a real terminal the end-to-end tests type into and read
    "zsh",                       // a shell in it, for zsh completion and prompts
    "fish",                      // another, for fish completion
    "man-db",                    // man -l, to render the generated man pages
    "xvfb",                      // a headless X server for the GUI prompts
    "xdotool",                   // to type into and close windows on it
    "zenity",                    // the GUI prompt the tests answer under Xvfb
    "kdialog",                   // KDE's, answered the same way
    "xauth",                     // xvfb-run needs it; xvfb only recommends it
    "iproute2",                  // ip netns: the container tests' namespaces, bridge and veths
];

/// Pinned so every machine tests against the same emulator and clients. `cryptography`
/// comes with moto anyway; named because the Sign-In stand-in signs and checks DPoP proofs
/// (P-256) with it. `awscrt` is botocore's `crt` extra (the version it pins): its login
/// provider signs the DPoP proofs of console sessions with it.
const PYTHON_PACKAGES: &[&str] = &[
    "moto[server]==5.2.1",
    "awscli==1.45.11",
    "boto3==1.43.11",
    "cryptography==51.0.1",
    "awscrt==0.32.2",
];

const RUST_COMPONENTS: &[&str] = &["rustfmt", "clippy"];
/// Windows and macOS are type-checked; the static musl build is the Linux release binary
/// (xtask dist, bench) and runs a subset of the tests.
const RUST_TARGETS: &[&str] = &[
    "x86_64-pc-windows-gnu",
    "aarch64-apple-darwin",
    "x86_64-unknown-linux-musl",
];
/// The dependency audit, pinned so its checks do not change under us; built from source
/// (about 2.5 minutes on a 2-core machine), once.
const CARGO_DENY_VERSION: &str = "0.20.2";

/// Where the installed pieces are.
pub struct Rig {
    pub venv: PathBuf,
}

pub fn all(root: &Path) -> Result<Rig> {
    debian_packages()?;
    rust_toolchain()?;
    cargo_deny()?;
    let venv = python_venv(root)?;
    Ok(Rig { venv })
}

/// Debian packages the benchmarks use on top of the test rig's components.
#[cfg(unix)]
const BENCH_DEBIAN_PACKAGES: &[&str] = &[
    "wrk",           // the HTTP load generator for the credential servers
    "nginx-light",   // the floor a tuned server reaches on this machine
    "gnome-keyring", // the OS-keyring backend, as in the tests
    "dbus",          // its private session bus
    "dbus-bin",      // dbus-send, to wait for it
    "keyutils",      // the kernel keyring that `vault unlock` uses
    "python3-venv",  // the venvs (moto; awsume)
];

/// The comparison tool, pinned, in its own venv so it cannot move the test rig's pins.
#[cfg(unix)]
const BENCH_PYTHON_PACKAGES: &[&str] = &["awsume==4.5.4"];

/// Where the benchmarks' tools are.
#[cfg(unix)]
pub struct BenchRig {
    /// The test rig's venv, with moto_server.
    pub venv: PathBuf,
    /// A separate venv with awsume (`bin/awsume`, `bin/awsumepy`).
    pub awsume_venv: PathBuf,
}

/// Installs what `cargo xtask bench` needs, idempotently: the Debian packages (wrk, nginx-light,
/// gnome-keyring, dbus, keyutils), the test rig's venv (moto) and `target/bench-venv` (awsume).
#[cfg(unix)]
pub fn bench_tools(root: &Path) -> Result<BenchRig> {
    install_debian(BENCH_DEBIAN_PACKAGES)?;
    let venv = python_venv(root)?;
    let awsume_venv = venv_with(
        &root.join("target").join("bench-venv"),
        BENCH_PYTHON_PACKAGES,
        "awsumepy",
    )?;
    Ok(BenchRig { venv, awsume_venv })
}

fn debian_packages() -> Result {
    install_debian(DEBIAN_PACKAGES)
}

pub(crate) fn install_debian(packages: &[&str]) -> Result {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "these Debian packages are missing: {}; install them with \
             `sudo apt-get install {}` and run again",
            missing.join(" "),
            missing.join(" ")
        ));
    }
    run(Command::new("apt-get")
        .arg("update")
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn dpkg_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("ok installed"))
        .unwrap_or(false)
}

/// Whether this runs as root: installing packages and mounting need it.
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn rust_toolchain() -> Result {
    let installed = |what: &str| -> Result<String> {
        let out = Command::new("rustup")
            .args([what, "list", "--installed"])
            .output()
            .map_err(|e| format!("cannot run rustup: {e}"))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let components = installed("component")?;
    let missing: Vec<&str> = RUST_COMPONENTS
        .iter()
        .copied()
        .filter(|c| !components.lines().any(|l| l.starts_with(c)))
        .collect();
    if !missing.is_empty() {
        run(Command::new("rustup")
            .args(["component", "add"])
            .args(&missing))?;
    }
    let targets = installed("target")?;
    let missing: Vec<&str> = RUST_TARGETS
        .iter()
        .copied()
        .filter(|t| !targets.lines().any(|l| l.trim() == *t))
        .collect();
    if !missing.is_empty() {
        run(Command::new("rustup")
            .args(["target", "add"])
            .args(&missing))?;
    }
    Ok(())
}

fn cargo_deny() -> Result {
    let installed = crate::cargo()
        .args(["deny", "--version"])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .any(|w| w == CARGO_DENY_VERSION)
        });
    if installed {
        return Ok(());
    }
    run(crate::cargo().args([
        "install",
        "cargo-deny",
        "--locked",
        "--version",
        CARGO_DENY_VERSION,
    ]))
}

/// `target/venv`, recreated only when the pinned package list changes.
pub fn python_venv(root: &Path) -> Result<PathBuf> {
    venv_with(
        &root.join("target").join("venv"),
        PYTHON_PACKAGES,
        "moto_server",
    )
}

/// A venv at `venv` with `packages` installed, redone only when the list changes (or
/// `bin/<marker>` is missing).
fn venv_with(venv: &Path, packages: &[&str], marker: &str) -> Result<PathBuf> {
    let venv = venv.to_owned();
    let stamp = venv.join(".vault-packages");
    let wanted = packages.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str())
        && venv.join("bin").join(marker).exists()
    {
        return Ok(venv);
    }
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok())
        .ok_or("no python3 on PATH; install it (Debian: apt-get install python3 python3-venv)")?;
    if !venv.join("bin").join("pip").exists() {
        let _ = std::fs::remove_dir_all(&venv);
        if run(Command::new(python).args(["-m", "venv"]).arg(&venv)).is_err() && is_root() {
            // Debian's python3 ships venv separately.
            run(Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", "python3-venv"])
                .env("DEBIAN_FRONTEND", "noninteractive"))?;
            let _ = std::fs::remove_dir_all(&venv);
            run(Command::new(python).args(["-m", "venv"]).arg(&venv))?;
        }
    }
    run(Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(packages))?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(venv)
}
