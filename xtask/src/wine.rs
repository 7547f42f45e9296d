//! The Windows build, run for real under Wine for the end-to-end tests' Windows subset
//! (`tests/e2e/windows.rs`).
//!
//! [`prepare`] builds `vault.exe` and the aws-sdk-rust probe `sdk-caller.exe` for
//! `x86_64-pc-windows-gnu`, copies them without their debug info (a 400 MB image takes Wine
//! seconds to map on every run) next to the stand-in `bcryptprimitives.dll`
//! (`tests/wine/bcryptprimitives.c` says why it exists), boots a private `WINEPREFIX` in a
//! temp dir under a wineserver of its own, and hands the tests the paths in `VAULT_WINE_*`.
//! Where Wine cannot run at all the tests get `VAULT_WINE_SKIP` with the reason instead.
//! Dropping the rig stops that wineserver (and with it every Wine process of the prefix) by
//! its PID and removes the temp dir.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{Result, run};

const TARGET: &str = "x86_64-pc-windows-gnu";
/// Debian's `wine64` package puts its loader and server here, not on PATH.
const LOADER: &str = "/usr/lib/wine/wine64";
const SERVER: &str = "/usr/lib/wine/wineserver";

/// What the tests get, as environment variables for `cargo test`.
pub struct WineRig {
    pub vars: Vec<(&'static str, OsString)>,
    /// Stopped by its PID when dropped.
    server: Option<vault_harness::Guard>,
    dir: Option<PathBuf>,
}

impl WineRig {
    fn skipped(reason: String) -> WineRig {
        eprintln!("xtask: the Windows subset will be skipped: {reason}");
        WineRig {
            vars: vec![("VAULT_WINE_SKIP", reason.into())],
            server: None,
            dir: None,
        }
    }
}

impl Drop for WineRig {
    fn drop(&mut self) {
        if let (Some(_), Some(dir)) = (&self.server, &self.dir) {
            // The prefix's own processes (services.exe, winedevice.exe, ...) outlive a
            // wineserver that is merely stopped: the server kills them first (-k), by PID.
            let _ = Command::new(SERVER)
                .arg("--kill")
                .env("WINEPREFIX", dir.join("prefix"))
                .status();
        }
        drop(self.server.take());
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Builds the Windows binary and boots the prefix; see the module doc. A build failure is an
/// error; Wine missing or unable to boot is a skip with the reason.
pub fn prepare(root: &Path) -> Result<WineRig> {
    run(crate::cargo().current_dir(root).args([
        "build",
        "-p",
        "vault-exec",
        "-p",
        "sdk-caller",
        "--target",
        TARGET,
    ]))?;
    if !Path::new(LOADER).exists() {
        return Ok(WineRig::skipped(format!(
            "no Wine ({LOADER}; Debian package wine64, which `cargo xtask setup` installs as root)"
        )));
    }
    let dir = std::env::temp_dir().join(format!("vault-wine-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    let mut rig = WineRig {
        vars: Vec::new(),
        server: None,
        dir: Some(dir.clone()),
    };
    for name in ["vault.exe", "sdk-caller.exe"] {
        run(Command::new("x86_64-w64-mingw32-strip")
            .arg("-o")
            .arg(bin.join(name))
            .arg(root.join("target").join(TARGET).join("debug").join(name)))?;
    }
    let exe = bin.join("vault.exe");
    run(Command::new("x86_64-w64-mingw32-gcc")
        .args(["-shared", "-O2", "-o"])
        .arg(bin.join("bcryptprimitives.dll"))
        .arg(root.join("tests/wine/bcryptprimitives.c"))
        .arg("-ladvapi32"))?;

    let prefix = dir.join("prefix");
    let wine_env = |cmd: &mut Command| {
        cmd.env("WINEPREFIX", &prefix)
            .env("WINEDEBUG", "-all")
            // No Mono or Gecko installer dialogs while the prefix boots.
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=");
    };
    // Our own wineserver, kept running (-p) for the whole test run, so its PID is known and
    // the tests' Wine processes do not each pay for a server start.
    let mut server = Command::new(SERVER);
    wine_env(&mut server);
    let server = server
        .args(["--foreground", "--persistent"])
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {SERVER}: {e}"))?;
    rig.server = Some(vault_harness::Guard::new("wineserver", server));
    let started = Instant::now();
    let mut boot = Command::new(LOADER);
    wine_env(&mut boot);
    // The services wineboot starts (services.exe, rpcss, ...) outlive it and inherit its
    // stdout and stderr: pipes would never close, so its output goes to a file.
    let log = dir.join("wineboot.log");
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let booted = boot
        .args(["wineboot", "--init"])
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .status()
        .map_err(|e| format!("cannot run {LOADER}: {e}"))?;
    if !booted.success() {
        let reason = format!(
            "Wine could not boot a prefix ({booted}): {}",
            std::fs::read_to_string(&log).unwrap_or_default().trim()
        );
        drop(rig);
        return Ok(WineRig::skipped(reason));
    }
    eprintln!(
        "xtask: Wine prefix {} booted in {:.1}s",
        prefix.display(),
        started.elapsed().as_secs_f64()
    );
    rig.vars = vec![
        ("VAULT_WINE_LOADER", LOADER.into()),
        ("VAULT_WINE_EXE", exe.into()),
        ("VAULT_WINEPREFIX", prefix.into()),
    ];
    Ok(rig)
}
