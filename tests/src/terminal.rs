//! A real terminal for the tests that drive `vault` the way a person meets it: a private tmux
//! server runs an interactive shell (bash, zsh or fish) in one 120x40 window, the test types
//! with `send-keys` and reads the screen with `capture-pane`.
//!
//! The server has its own socket in the test's temp dir, so it never touches the developer's
//! tmux, and it starts with exactly the [`TestEnv`]'s environment plus what a terminal needs
//! (`TERM` and `LANG` unless the test set them; `SHELL`, `PS1`/`PROMPT`, `HISTFILE`): tmux's
//! server takes its environment from the client that starts it, and the client is started
//! like every other program of the test. In the pane tmux adds its own (`TMUX`, `TMUX_PANE`,
//! `TERM_PROGRAM`, and `TERM=tmux-256color`) and the shells theirs (`SHLVL`, `PWD`...).
//! Every shell shows the same prompt, `$ `, and keeps its history in the temp dir. Dropping
//! the [`Terminal`] stops the server, and makes sure by its PID that it is gone.

use std::cell::Cell;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::env::TestEnv;

/// Columns and rows of the window.
const WIDTH: u16 = 120;
const HEIGHT: u16 = 40;

/// How long [`Terminal::wait_for`] and [`Terminal::run`] wait for the screen.
const PATIENCE: Duration = Duration::from_secs(20);

/// How often the screen is read while waiting: a capture costs a tmux client run, and the
/// screen shows typed keys within about 10-30 ms on an idle machine.
const POLL: Duration = Duration::from_millis(40);

/// The prompt of every shell, as a captured line shows it (trailing space trimmed).
const PROMPT_LINE: &str = "$";

/// The server's configuration, written to the temp dir instead of reading the user's
/// `~/.tmux.conf`. No status line: the pane is the whole window, 120x40. The terminal type
/// is pinned because its default differs between tmux versions.
const TMUX_CONF: &str = "set -g status off\nset -g default-terminal tmux-256color\n";

/// The shell a [`Terminal`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    /// The program, which is also the name of its Debian package.
    pub fn program(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
        }
    }

    /// Interactive, not a login shell, and no startup files of the user or the system, so
    /// the prompt and key bindings are the same on every machine.
    fn args(self) -> &'static [&'static str] {
        match self {
            // The prompt comes from PS1 in the environment.
            Shell::Bash => &["--norc", "--noprofile", "-i"],
            // -f: no rc files but /etc/zsh/zshenv; the prompt comes from PROMPT.
            Shell::Zsh => &["-f", "-i"],
            // fish has no prompt variable. Autosuggestions are off: they draw the rest of a
            // history entry or a file name after the cursor, which a capture shows as if typed.
            Shell::Fish => &[
                "--no-config",
                "--interactive",
                "--init-command",
                "function fish_prompt; printf '$ '; end; \
                 set -g fish_greeting; set -g fish_autosuggestion_enabled 0",
            ],
        }
    }
}

/// A terminal: a private tmux server running one window with a shell in it. See the
/// module doc.
#[derive(Debug)]
pub struct Terminal {
    tmux: PathBuf,
    socket: PathBuf,
    /// The shell's pane, the target of every command.
    pane: String,
    server_pid: u32,
    /// Numbers the markers of [`Terminal::run`].
    runs: Cell<u32>,
}

impl Terminal {
    /// Starts the server with `shell` in `env`'s temp dir and waits for the first prompt.
    /// `None`, and a recorded skip with the reason (a failure under `CI=true`), when tmux or
    /// the shell is not installed.
    #[track_caller]
    pub fn start(env: &TestEnv, shell: Shell) -> Option<Terminal> {
        if !env.require_program("tmux", "tmux")
            || !env.require_program(shell.program(), shell.program())
        {
            return None;
        }
        let path = env.get("PATH").cloned().unwrap_or_default();
        let tmux = find_program(&path, "tmux")?;
        let shell_path = find_program(&path, shell.program())?;
        let dir = env.dir.path();
        let socket = dir.join("tmux.sock");
        let conf = dir.join("tmux.conf");
        std::fs::write(&conf, TMUX_CONF).expect("write tmux.conf");

        let mut cmd = env.command(&tmux);
        cmd.arg("-S")
            .arg(&socket)
            .arg("-f")
            .arg(&conf)
            .args(["new-session", "-d", "-P", "-F", "#{pane_id} #{pid}"])
            .args(["-x", &WIDTH.to_string(), "-y", &HEIGHT.to_string()])
            // Separate arguments: tmux execs the shell itself, no `sh -c` in between.
            .arg("--")
            .arg(&shell_path)
            .args(shell.args());
        // What a terminal needs, when the test did not choose it. tmux reads LANG to decide
        // the panes speak UTF-8.
        for (name, value) in [("TERM", "xterm-256color"), ("LANG", "C.UTF-8")] {
            if env.get(name).is_none() {
                cmd.env(name, value);
            }
        }
        // tmux sets SHELL in the pane to its default-shell, taken from SHELL (else the
        // passwd entry, /bin/bash for root): the shell a `vault exec` without a command
        // starts. Make it this one.
        if env.get("SHELL").is_none() {
            cmd.env("SHELL", &shell_path);
        }
        // Exported, so a nested shell (`vault exec` without a command) shows it too.
        cmd.env("PS1", "$ ").env("PROMPT", "$ ");
        if env.get("HISTFILE").is_none() {
            // fish keeps its history under XDG_DATA_HOME, which is in the temp HOME.
            cmd.env("HISTFILE", dir.join(format!("history-{}", shell.program())));
        }
        let out = cmd.output().expect("tmux runs");
        let said = String::from_utf8_lossy(&out.stdout);
        let mut fields = said.split_whitespace();
        let (Some(pane), Some(pid)) = (fields.next(), fields.next()) else {
            panic!(
                "tmux new-session failed ({}): {said}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let server_pid = pid.parse().expect("tmux prints its server PID");
        let terminal = Terminal {
            tmux,
            socket,
            pane: pane.to_owned(),
            server_pid,
            runs: Cell::new(0),
        };
        // Keys typed before the shell reads them are echoed raw and then drawn again.
        terminal.wait_until("the first prompt", at_prompt);
        Some(terminal)
    }

    /// The tmux server's PID, to check it is gone after the drop.
    pub fn server_pid(&self) -> u32 {
        self.server_pid
    }

    /// The server's socket, for tmux commands of a test's own (`tmux -S SOCKET ...`).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Types `text` literally (`send-keys -l`): no key names, no Enter.
    pub fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", &self.pane, "-l", "--", text]);
    }

    /// Sends keys by their tmux names: "Enter", "Tab", "C-c", "Down", "Escape", "BSpace"...
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.pane];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Types a line and presses Enter.
    pub fn line(&self, text: &str) {
        self.type_text(text);
        self.keys(&["Enter"]);
    }

    /// The visible screen now: wrapped lines joined, trailing spaces of each line and
    /// trailing blank lines trimmed.
    pub fn screen(&self) -> String {
        self.capture(false)
    }

    /// Waits up to 20 s until the screen contains `needle`, returning the screen; panics
    /// with the screen otherwise.
    #[track_caller]
    pub fn wait_for(&self, needle: &str) -> String {
        self.wait_until(&format!("{needle:?} on the screen"), |s| s.contains(needle))
    }

    /// Runs one command line (no trailing `&`, no Tab or newline) and waits until the
    /// shell is back at its prompt, returning what the command printed. The line typed is
    /// `echo __start_''N__; COMMAND; echo __done_''N__`: the quotes keep the typed line from
    /// matching the markers the shell prints, and the output is what lies between the two
    /// printed markers, taken from the scrollback too, so output longer than the screen is
    /// whole. (Not the typed line as the start: zsh breaks a line longer than the screen
    /// width with a hard newline, so a capture cannot join it again.)
    #[track_caller]
    pub fn run(&self, command: &str) -> String {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        let start = format!("__start_{n}__");
        let done = format!("__done_{n}__");
        self.line(&format!(
            "echo __start_''{n}__; {command}; echo __done_''{n}__"
        ));
        let deadline = Instant::now() + PATIENCE;
        loop {
            let all = self.capture(true);
            if let Some(output) = between(&all, &start, &done) {
                return output;
            }
            assert!(
                Instant::now() < deadline,
                "`{command}` did not finish at a prompt within {PATIENCE:?}; the screen:\n{}",
                self.screen()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Waits up to 20 s until `ready` holds for the screen, returning the screen; panics
    /// with `what` and the screen otherwise.
    #[track_caller]
    pub fn wait_until(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {PATIENCE:?} waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(POLL);
        }
    }

    /// `capture-pane -p -J`, with the scrollback (`-S -`) when `history`. -J keeps every
    /// line's trailing spaces (so joined lines stay right); they are trimmed here, as a
    /// capture without -J does.
    fn capture(&self, history: bool) -> String {
        let mut args = vec!["capture-pane", "-p", "-J", "-t", &self.pane];
        if history {
            args.extend_from_slice(&["-S", "-"]);
        }
        let out = self.tmux(&args);
        let mut screen = String::with_capacity(out.len());
        for line in out.lines() {
            screen.push_str(line.trim_end());
            screen.push('\n');
        }
        screen.truncate(screen.trim_end().len());
        screen
    }

    /// Runs a tmux client command on this server; panics when it fails. The client gets no
    /// environment of the test runner (a TMUX of the developer's own session, say): with -S
    /// it needs none, and only `new-session` passes a client's environment on.
    #[track_caller]
    fn tmux(&self, args: &[&str]) -> String {
        let out = self
            .client()
            .args(args)
            .output()
            .expect("the tmux client runs");
        assert!(
            out.status.success(),
            "tmux {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn client(&self) -> Command {
        let mut cmd = Command::new(&self.tmux);
        cmd.env_clear()
            .env("LANG", "C.UTF-8")
            .arg("-u")
            .arg("-S")
            .arg(&self.socket)
            .stdin(Stdio::null());
        cmd
    }
}

impl Drop for Terminal {
    /// `kill-server` on its own socket (the shell and what runs in it get SIGHUP), then,
    /// should the server still be there after 5 s, SIGTERM and SIGKILL by its PID.
    fn drop(&mut self) {
        let _ = self
            .client()
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if gone_within(self.server_pid, Duration::from_secs(5)) {
            return;
        }
        stop(self.server_pid);
    }
}

/// Whether the shell is idle at a prompt: the screen's last line is the bare prompt.
fn at_prompt(screen: &str) -> bool {
    screen.lines().last() == Some(PROMPT_LINE)
}

/// The output of a [`Terminal::run`]: the text after the line `start` up to `done`, once
/// `done` is followed by a bare prompt as the last line (else `None`). `done` may end a line
/// of output that had no newline of its own.
fn between(all: &str, start: &str, done: &str) -> Option<String> {
    let start_line = format!("\n{start}\n");
    let output_start = all.rfind(&start_line)? + start_line.len();
    let after = &all[output_start..];
    let end = after.find(done)?;
    // Nothing but the prompt after the marker's line: the shell reads keys again.
    if after[end + done.len()..].strip_prefix('\n') != Some(PROMPT_LINE) {
        return None;
    }
    Some(after[..end].trim_end_matches('\n').to_owned())
}

/// `program` in a directory of `path` (a `PATH` value), as the test's environment finds it.
fn find_program(path: &OsStr, program: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Whether `pid` has exited (or is a zombie) within `limit`.
fn gone_within(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if !tmux_running(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` is still a live tmux process: what a test asserts of
/// [`Terminal::server_pid`] after the drop. The name check (the server calls itself
/// `tmux: server`) keeps a reused PID from being taken for it. A zombie counts as gone: the
/// server's parent is init, which may reap it only seconds later (about 2 s in some
/// containers).
#[cfg(target_os = "linux")]
pub fn tmux_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "PID (COMM) STATE ...": COMM may hold spaces and parentheses, so split at the last ')'.
    let Some((head, tail)) = stat.rsplit_once(')') else {
        return false;
    };
    head.contains("(tmux") && !tail.trim_start().starts_with(['Z', 'X'])
}

/// Whether `pid` is still there (no /proc to tell a tmux or a zombie by).
#[cfg(all(unix, not(target_os = "linux")))]
pub fn tmux_running(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

#[cfg(not(unix))]
pub fn tmux_running(_: u32) -> bool {
    false
}

/// SIGTERM, then SIGKILL, to a server that outlived `kill-server`; only while `pid` is
/// still a tmux process, so a reused PID is never signalled.
#[cfg(unix)]
fn stop(pid: u32) {
    use crate::process::{Signal, kill};
    if !tmux_running(pid) {
        return;
    }
    kill(pid, Signal::SIGTERM);
    if gone_within(pid, Duration::from_secs(5)) {
        return;
    }
    kill(pid, Signal::SIGKILL);
    let _ = gone_within(pid, Duration::from_secs(5));
}

#[cfg(not(unix))]
fn stop(_: u32) {}
