//! Child processes: every program vault starts is made here, so none of them ever sees the
//! vault passphrase: `exec`'s command, `mfa_process`, `credential_process` sources, ykman and
//! the browser. Also aws-vault's environment contract for the child that gets credentials,
//! and exec (Unix) or spawn-and-wait.

use std::ffi::{OsStr, OsString};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use vault_store::Credentials;
use vault_sts::child::{HelperError, HelperOutput};
use zeroize::Zeroizing;

use crate::error::{CommandError, CommandResult, Kind};
use crate::settings::{self, FILE_PASSPHRASE, Settings};

/// Removed from the environment of a child that gets credentials, before anything is set:
/// stale credentials and profile selectors that would override ours (the passphrase is
/// removed from every child; see [`helper`]).
const STALE: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_FILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_PROFILE",
    "AWS_SDK_LOAD_CONFIG",
    "AWS_CREDENTIAL_EXPIRATION",
    // Would win over anything we set (the SDKs prefer container credentials).
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

/// Any program vault starts: our environment without the vault passphrase.
pub fn helper(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_remove(FILE_PASSPHRASE);
    cmd
}

/// A command line run through the platform's shell (`mfa_process`, as aws-vault runs it).
pub fn shell(line: &str) -> Command {
    if cfg!(windows) {
        let mut c = helper("cmd");
        c.args(["/C", line]);
        c
    } else {
        let mut c = helper("sh");
        c.args(["-c", line]);
        c
    }
}

/// The program that gets credentials (exec's command, the servers' child): a [`helper`]
/// without stale credentials or profile selectors either.
pub fn credential_child(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = helper(program);
    for name in STALE {
        cmd.env_remove(name);
    }
    cmd
}

/// How `vault_sts` starts its helpers (credential_process sources), and how long each may
/// run (`AWS_VAULT_HELPER_TIMEOUT`).
#[derive(Debug)]
pub struct Helpers {
    pub timeout: Duration,
}

impl vault_sts::child::Launcher for Helpers {
    fn command(&self, program: &OsStr) -> Command {
        helper(program)
    }

    fn output(&self, cmd: Command, what: &str) -> Result<HelperOutput, HelperError> {
        run_helper(cmd, what, self.timeout)
    }
}

/// The most a helper may print: a credential_process answer is about 2 KiB, a code or a
/// passphrase far less; `cat /dev/zero` must not fill the memory.
const HELPER_OUTPUT_LIMIT: u64 = 1024 * 1024;

/// Runs a helper whose answer is its stdout; its stdin and stderr stay ours, so it can talk
/// to the person. Time-boxed: past the limit its whole process group is killed. On a
/// terminal it gets the foreground while it runs (its own group could not read it otherwise).
pub fn run_helper(
    mut cmd: Command,
    what: &str,
    timeout: Duration,
) -> Result<HelperOutput, HelperError> {
    use std::io::Read;
    cmd.stdout(Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().map_err(|error| HelperError::Start {
        what: what.to_owned(),
        error,
    })?;
    let terminal = foreground::hand_over(child.id());
    let mut stdout = child.stdout.take().expect("piped");
    let (sent, read) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Zeroizing::new(Vec::new());
        let _ = (&mut stdout)
            .take(HELPER_OUTPUT_LIMIT + 1)
            .read_to_end(&mut buf);
        let over = buf.len() as u64 > HELPER_OUTPUT_LIMIT;
        let _ = sent.send((buf, over));
    });
    let too_much = || HelperError::TooMuch {
        what: what.to_owned(),
        limit: HELPER_OUTPUT_LIMIT,
    };
    let mut answer = None;
    let limit = timeout;
    let start = Instant::now();
    let stopped = || HelperError::TimedOut {
        what: what.to_owned(),
        limit: vault_sts::duration::display(limit),
        variable: settings::HELPER_TIMEOUT,
    };
    let status = loop {
        if answer.is_none()
            && let Ok(got) = read.try_recv()
        {
            let (_, over) = &got;
            if *over {
                kill_group(&mut child);
                let _ = child.wait();
                return Err(too_much());
            }
            answer = Some(got);
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(error) => {
                return Err(HelperError::Wait {
                    what: what.to_owned(),
                    error,
                });
            }
        }
        if start.elapsed() >= limit {
            kill_group(&mut child);
            let _ = child.wait();
            drop(terminal);
            return Err(stopped());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(terminal);
    // Something it started may still hold its stdout: wait no longer than the limit.
    let left = limit
        .saturating_sub(start.elapsed())
        .max(Duration::from_millis(100));
    let (stdout, over) = match answer {
        Some(got) => got,
        None => read.recv_timeout(left).map_err(|_| {
            kill_group(&mut child);
            stopped()
        })?,
    };
    if over {
        kill_group(&mut child);
        return Err(too_much());
    }
    Ok(HelperOutput { status, stdout })
}

fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        use nix::sys::signal::{Signal, killpg};
        use nix::unistd::Pid;
        let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    }
    #[cfg(not(unix))]
    {
        let _ = child.kill();
    }
}

/// Lending the terminal's foreground to a helper's process group, and taking it back.
#[cfg(unix)]
mod foreground {
    use std::fs::File;

    use nix::sys::signal::{SigSet, SigmaskHow, Signal, killpg, pthread_sigmask};
    use nix::unistd::{Pid, getpgrp, tcgetpgrp, tcsetpgrp};

    pub struct Lent {
        tty: File,
        ours: Pid,
    }

    /// Only when we hold the foreground of our controlling terminal.
    pub fn hand_over(child: u32) -> Option<Lent> {
        let tty = File::options()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()?;
        let ours = getpgrp();
        if tcgetpgrp(&tty).ok()? != ours {
            return None;
        }
        let group = Pid::from_raw(child as i32);
        tcsetpgrp(&tty, group).ok()?;
        // It may have touched the terminal before it was its own, and been stopped for it.
        let _ = killpg(group, Signal::SIGCONT);
        Some(Lent { tty, ours })
    }

    impl Drop for Lent {
        fn drop(&mut self) {
            // Taking the terminal back from the background sends SIGTTOU unless blocked.
            let mut ttou = SigSet::empty();
            ttou.add(Signal::SIGTTOU);
            let mut old = SigSet::empty();
            let blocked = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&ttou), Some(&mut old));
            let _ = tcsetpgrp(&self.tty, self.ours);
            if blocked.is_ok() {
                let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            }
        }
    }
}

#[cfg(not(unix))]
mod foreground {
    pub struct Lent;

    pub fn hand_over(_child: u32) -> Option<Lent> {
        None
    }
}

/// The variables to set for credentials handed over in the environment, in order. Values
/// are wiped when dropped.
pub fn credential_vars(
    profile: &str,
    credentials: &Credentials,
    region: Option<&str>,
    legacy: bool,
) -> Vec<(&'static str, Zeroizing<String>)> {
    let plain = |s: &str| Zeroizing::new(s.to_owned());
    let mut vars = vec![("AWS_VAULT", plain(profile))];
    if let Some(region) = region {
        vars.push(("AWS_REGION", plain(region)));
        vars.push(("AWS_DEFAULT_REGION", plain(region)));
    }
    let id = credentials.access_key_id.expose_secret();
    let secret = credentials.secret_access_key.expose_secret();
    vars.push(("AWS_ACCESS_KEY_ID", plain(id)));
    vars.push(("AWS_SECRET_ACCESS_KEY", plain(secret)));
    if legacy {
        vars.push(("AWS_ACCESS_KEY", plain(id)));
        vars.push(("AWS_SECRET_KEY", plain(secret)));
    }
    if let Some(token) = &credentials.session_token {
        vars.push(("AWS_SESSION_TOKEN", plain(token.expose_secret())));
        if legacy {
            vars.push(("AWS_SECURITY_TOKEN", plain(token.expose_secret())));
        }
    }
    if let Some(expiration) = credentials.expiration {
        vars.push(("AWS_CREDENTIAL_EXPIRATION", plain(&rfc3339(expiration))));
    }
    vars
}

/// `2026-01-02T03:04:05Z`: RFC 3339, UTC, whole seconds (what the SDKs and aws-vault write).
pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The command to run: the given one, else the user's shell: `$SHELL` (else `/bin/sh`) on
/// Unix, `%COMSPEC%` (else `cmd.exe`) on Windows, where a `SHELL` set by Git Bash or MSYS
/// names a path only their own runtime understands.
pub fn command_line(given: Vec<OsString>, settings: &Settings) -> (OsString, Vec<OsString>) {
    let mut given = given.into_iter();
    match given.next() {
        Some(program) => (program, given.collect()),
        None => (user_shell(settings), Vec::new()),
    }
}

fn user_shell(settings: &Settings) -> OsString {
    let fallback = if cfg!(windows) { "cmd.exe" } else { "/bin/sh" };
    settings
        .user_shell
        .clone()
        .unwrap_or_else(|| fallback.into())
}

/// The credential child of a server run (`--server`, `--imds`): on Linux it starts as
/// `vault __tie-to-parent`, which asks the kernel to end it with SIGTERM when vault ends,
/// however vault ends (`kill -9` included), then becomes the program (same PID), so a child
/// never runs on against a dead endpoint. On Windows [`tie`] does this once it runs;
/// elsewhere (macOS) nothing does (see docs/exec.md).
pub fn tied_child(program: &OsStr, args: &[OsString]) -> Command {
    #[cfg(target_os = "linux")]
    if let Ok(vault) = std::env::current_exe() {
        let mut cmd = credential_child(vault);
        cmd.arg("__tie-to-parent")
            .arg(format!("--parent={}", std::process::id()))
            .arg("--")
            .arg(program)
            .args(args);
        return cmd;
    }
    let mut cmd = credential_child(program);
    cmd.args(args);
    cmd
}

/// Keeps a server run's child tied to vault while it is held (see [`tie`]).
pub struct Tie {
    #[cfg(windows)]
    _job: Option<win32job::Job>,
}

impl Tie {
    /// Nothing tied (tying failed, and the run goes on without it).
    pub fn none() -> Tie {
        Tie {
            #[cfg(windows)]
            _job: None,
        }
    }
}

/// On Windows: puts the child in a job object that ends every process in it when its last
/// handle closes. vault holds the only handle, and Windows closes it however vault ends
/// (`taskkill /f` included), so the child and what it started since end with vault. The
/// child runs for the few instructions between its start and this call untied. Elsewhere
/// nothing ([`tied_child`] did it on Linux).
#[cfg(windows)]
pub fn tie(child: &std::process::Child) -> Result<Tie, String> {
    use std::os::windows::io::AsRawHandle;
    let mut limits = win32job::ExtendedLimitInfo::new();
    limits.limit_kill_on_job_close();
    let job = win32job::Job::create_with_limit_info(&limits).map_err(|e| e.to_string())?;
    job.assign_process(child.as_raw_handle() as isize)
        .map_err(|e| e.to_string())?;
    Ok(Tie { _job: Some(job) })
}

#[cfg(not(windows))]
pub fn tie(_child: &std::process::Child) -> Result<Tie, String> {
    Ok(Tie::none())
}

/// `vault __tie-to-parent --parent PID -- COMMAND`: the death signal set, then COMMAND in
/// this process. Exits 1 without running it when PID is no longer the parent (vault died
/// before the signal was set).
#[cfg(target_os = "linux")]
pub fn tie_to_parent(args: crate::cli::TieArgs) -> CommandResult<ExitCode> {
    use nix::sys::signal::Signal;
    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)
        .map_err(|e| CommandError::user(format!("cannot tie the child to vault: {e}")))?;
    if nix::unistd::getppid().as_raw() as u32 != args.parent {
        return Ok(ExitCode::from(1));
    }
    let mut command = args.command.into_iter();
    let program = command.next().expect("clap requires a command");
    let shown = program.to_string_lossy().into_owned();
    // The environment is already the child's (vault made it): exec as it is.
    let mut cmd = Command::new(&program);
    cmd.args(command);
    exec(cmd, &shown)
}

#[cfg(not(target_os = "linux"))]
pub fn tie_to_parent(_: crate::cli::TieArgs) -> CommandResult<ExitCode> {
    Err(CommandError::new(
        Kind::Usage,
        "__tie-to-parent is for Linux",
    ))
}

/// Runs the credential child with `vars` set. On Unix it replaces this process, so signals
/// and the exit status are its own; elsewhere we wait and pass the code on.
pub fn run(
    program: OsString,
    args: Vec<OsString>,
    vars: &[(&str, Zeroizing<String>)],
) -> CommandResult<ExitCode> {
    let mut cmd = credential_child(&program);
    cmd.args(&args);
    for (name, value) in vars {
        cmd.env(name, value.as_str());
    }
    let shown = program.to_string_lossy().into_owned();
    exec(cmd, &shown)
}

#[cfg(unix)]
fn exec(mut cmd: Command, shown: &str) -> CommandResult<ExitCode> {
    use std::os::unix::process::CommandExt;
    let err = cmd.exec();
    Err(spawn_error(err, shown))
}

#[cfg(not(unix))]
fn exec(mut cmd: Command, shown: &str) -> CommandResult<ExitCode> {
    leave_interrupts_to_the_child();
    let status = cmd.status().map_err(|e| spawn_error(e, shown))?;
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}

/// Windows sends a console's Ctrl+C and Ctrl+Break to every process attached to it, so the
/// child has them already; vault, which only waits for the child, must not die of them and
/// lose the child's exit code. Closing the console, logoff and shutdown still end vault.
#[cfg(windows)]
pub fn leave_interrupts_to_the_child() {
    // The handler answers "handled" for Ctrl+C and Ctrl+Break; a second call (the servers
    // and exec share this) is refused, which is fine.
    let _ = ctrlc::set_handler(|| {});
}

#[cfg(all(not(unix), not(windows)))]
pub fn leave_interrupts_to_the_child() {}

pub fn spawn_error(err: std::io::Error, shown: &str) -> CommandError {
    if err.kind() == std::io::ErrorKind::NotFound {
        CommandError::new(Kind::ChildNotFound, format!("{shown}: command not found"))
            .hint("check the spelling, or give the full path of the program")
    } else {
        CommandError::new(Kind::ChildCannotRun, format!("cannot run {shown}: {err}"))
    }
}

/// The browser: `$BROWSER` (a command line; the page goes after it), else the platform's
/// opener. Built by [`helper`], so it never sees the passphrase.
pub fn browser(browser: Option<&str>) -> CommandResult<Command> {
    let Some(browser) = browser else {
        return Ok(platform_opener());
    };
    let words = vault_sts::shell_split(browser)
        .map_err(|e| CommandError::user(format!("BROWSER is not a valid command line: {e}")))?;
    let (program, rest) = words
        .split_first()
        .ok_or_else(|| CommandError::user("BROWSER is empty"))?;
    let mut cmd = helper(program);
    cmd.args(rest);
    Ok(cmd)
}

/// Starts [`browser`] on `target` (a URL, or a page's path) in a process group of its own,
/// so the terminal's Ctrl+C for vault does not close it, holding none of vault's standard
/// streams: a caller that reads vault's stderr to its end (botocore runs credential_process
/// so) must not wait for a browser that stays open.
pub fn start_browser(browser: Option<&str>, target: &OsStr) -> CommandResult<std::process::Child> {
    let mut cmd = self::browser(browser)?;
    cmd.arg(target)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt;
        // CREATE_NEW_PROCESS_GROUP: the console's Ctrl+C is not the browser's.
        cmd.creation_flags(0x0000_0200);
    }
    let shown = cmd.get_program().to_string_lossy().into_owned();
    cmd.spawn().map_err(|e| spawn_error(e, &shown))
}

/// Waits at most `limit` for a browser command to end: its status, or `None` when it still
/// runs. It is left running then: an opener returns at once, but a browser started as
/// `$BROWSER` may stay in the foreground for as long as its window is open, and killing it
/// would close the page the person is signing in on.
pub fn wait_for_browser(
    child: &mut std::process::Child,
    limit: Duration,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn platform_opener() -> Command {
    if cfg!(target_os = "macos") {
        helper("open")
    } else if cfg!(windows) {
        // ShellExecute, as the shell opens a link, in a child whose environment we chose (a
        // crate calling it in vault's own process would hand the browser the passphrase
        // variable). Not `cmd /C start`: cmd splits the URL at its `&`s.
        let mut c = helper("rundll32");
        c.arg("url.dll,FileProtocolHandler");
        c
    } else {
        helper("xdg-open")
    }
}
