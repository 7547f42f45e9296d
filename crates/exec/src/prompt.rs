//! Talking to the person at the terminal, never through stdout or stdin: prompts go to the
//! controlling terminal (`/dev/tty`, `CONIN$`/`CONOUT$` on Windows), so they work while stdout
//! is piped or captured (credential_process, `$(vault export ...)`).

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Write};
use std::time::Duration;

use secrecy::SecretString;
use vault_sts::child::HelperError;

use crate::cli::PromptKind;
use crate::settings::Settings;

#[cfg(unix)]
const TTY_IN: &str = "/dev/tty";
#[cfg(unix)]
const TTY_OUT: &str = "/dev/tty";
#[cfg(windows)]
const TTY_IN: &str = "CONIN$";
#[cfg(windows)]
const TTY_OUT: &str = "CONOUT$";

fn open_tty() -> io::Result<(std::fs::File, std::fs::File)> {
    let input = std::fs::OpenOptions::new().read(true).open(TTY_IN)?;
    let output = std::fs::OpenOptions::new().write(true).open(TTY_OUT)?;
    Ok((input, output))
}

/// Whether a person can be asked: there is a controlling terminal we can open.
pub fn terminal_available() -> bool {
    open_tty().is_ok()
}

/// The controlling terminal as a `console::Term` for the profile picker, which draws and reads
/// keys there (never on stdout). `None` without a terminal.
#[cfg(unix)]
pub fn picker_terminal() -> Option<console::Term> {
    let (input, output) = open_tty().ok()?;
    let term = console::Term::read_write_pair(input, output);
    term.is_term().then_some(term)
}

/// Windows: the console behind stderr (console cannot draw on `CONOUT$` by handle).
#[cfg(windows)]
pub fn picker_terminal() -> Option<console::Term> {
    let term = console::Term::stderr();
    (open_tty().is_ok() && term.is_term()).then_some(term)
}

/// Asks for a line with echo (e.g. an access key id). `None` when there is no terminal.
pub fn ask_line(prompt: &str) -> io::Result<Option<String>> {
    let Ok((input, mut output)) = open_tty() else {
        return Ok(None);
    };
    output.write_all(prompt.as_bytes())?;
    output.flush()?;
    let mut line = String::new();
    BufReader::new(input).read_line(&mut line)?;
    Ok(Some(line.trim().to_owned()))
}

/// Asks for a secret without echo. `None` when there is no terminal.
pub fn ask_hidden(prompt: &str) -> io::Result<Option<SecretString>> {
    if !terminal_available() {
        return Ok(None);
    }
    // rpassword reads from the terminal itself and returns an owned String, which moves
    // into the SecretString without a copy.
    let typed = rpassword::prompt_password(prompt)?;
    Ok(Some(SecretString::from(typed)))
}

/// Asks a yes/no question, default no. `None` when there is no terminal.
pub fn confirm(question: &str) -> io::Result<Option<bool>> {
    Ok(ask_line(&format!("{question} [y/N] "))?
        .map(|answer| matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes")))
}

/// Tells the person something they must act on (a sign-in page, a code): on the controlling
/// terminal when there is one, like a prompt, since a caller may capture stderr (botocore
/// does for credential_process, and over SSH the line would never be seen); else stderr.
pub fn tell(text: &str) {
    if let Ok((_, mut output)) = open_tty()
        && writeln!(output, "{text}")
            .and_then(|()| output.flush())
            .is_ok()
    {
        return;
    }
    eprintln!("{text}");
}

/// Says on stderr what a command is waiting for (never stdout: that is for data), and only
/// when stderr is a terminal: a status line is for a person watching, not for the log of an
/// IDE or a CI job.
pub struct Notices;

impl vault_sts::aws::Waiting for Notices {
    fn waiting_for(&self, what: &str) {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            eprintln!("vault: waiting for {}…", crate::error::escaped(what));
        }
    }
}

/// Why a GUI prompt gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error(transparent)]
    Helper(#[from] HelperError),
    #[error("the {0} prompt was cancelled")]
    Cancelled(&'static str),
    #[error("the {0} prompt answered something that is not text")]
    NotText(&'static str),
}

/// What to ask.
pub struct Question<'a> {
    pub text: &'a str,
    /// Typed without echo (the passphrase).
    pub hidden: bool,
}

/// How to ask the person: the prompt asked for (`--prompt`, `AWS_VAULT_PROMPT`), and what
/// this session offers (a display, programs on `PATH`), from the [`Settings`].
#[derive(Clone, Debug)]
pub struct Prompts {
    pub asked: Option<PromptKind>,
    display: bool,
    path: Option<OsString>,
    /// How long a GUI prompt or ykman may take.
    pub helper_timeout: Duration,
}

impl Prompts {
    pub fn new(asked: Option<PromptKind>, settings: &Settings) -> Prompts {
        Prompts {
            asked,
            display: settings.display,
            path: settings.path.clone(),
            helper_timeout: settings.helper_timeout,
        }
    }

    /// The prompt to use: the one asked for, else the terminal when there is one, else the
    /// platform's GUI prompt when it is installed and there is a display. `None`: no way to
    /// ask.
    pub fn resolve(&self) -> Option<PromptKind> {
        if self.asked.is_some() {
            return self.asked;
        }
        if terminal_available() {
            return Some(PromptKind::Terminal);
        }
        self.gui_default()
    }

    /// The prompt for a question asked ahead of time, which nobody may be watching the
    /// terminal for: the one asked for, else the platform's GUI prompt when there is a
    /// display, else the terminal when there is one.
    pub fn resolve_ahead(&self) -> Option<PromptKind> {
        self.asked
            .or_else(|| self.gui_default())
            .or_else(|| terminal_available().then_some(PromptKind::Terminal))
    }

    fn gui_default(&self) -> Option<PromptKind> {
        if cfg!(target_os = "macos") {
            return Some(PromptKind::Osascript);
        }
        if cfg!(windows) {
            return Some(PromptKind::Wincredui);
        }
        if !self.display {
            return None;
        }
        [PromptKind::Zenity, PromptKind::Kdialog]
            .into_iter()
            .find(|k| self.on_path(k.name()))
    }

    fn on_path(&self, program: &str) -> bool {
        self.path
            .as_ref()
            .is_some_and(|path| std::env::split_paths(path).any(|dir| dir.join(program).is_file()))
    }

    /// Asks through a GUI helper; the answer comes back on its stdout only (never on a
    /// command line or in an environment). The helper is built by `process::helper`, so it
    /// never sees the passphrase variable, and runs time-boxed.
    pub fn ask_gui(
        &self,
        kind: PromptKind,
        question: &Question<'_>,
    ) -> Result<SecretString, PromptError> {
        ask_gui(kind, question, self.helper_timeout)
    }
}

fn ask_gui(
    kind: PromptKind,
    question: &Question<'_>,
    timeout: Duration,
) -> Result<SecretString, PromptError> {
    let mut cmd = match kind {
        PromptKind::Zenity => {
            let mut c = crate::process::helper("zenity");
            c.args(["--entry", "--title", "vault", "--text", question.text]);
            if question.hidden {
                c.arg("--hide-text");
            }
            c
        }
        PromptKind::Kdialog => {
            let mut c = crate::process::helper("kdialog");
            c.args(["--title", "vault"]);
            c.arg(if question.hidden {
                "--password"
            } else {
                "--inputbox"
            });
            c.arg(question.text);
            c
        }
        PromptKind::Osascript => {
            let mut c = crate::process::helper("osascript");
            let hidden = if question.hidden {
                " with hidden answer"
            } else {
                ""
            };
            c.args([
                "-e",
                &format!(
                    "display dialog {} default answer \"\"{hidden} with title \"vault\"",
                    applescript_string(question.text)
                ),
                "-e",
                "text returned of result",
            ]);
            c
        }
        PromptKind::Wincredui => {
            // Chosen by default only on Windows; asked for elsewhere, it needs a
            // `powershell` on PATH that can show Get-Credential's dialog.
            let mut c = crate::process::helper("powershell");
            c.args([
                "-NoProfile",
                "-NonInteractive",
                "-Command",
                &format!(
                    "$c = Get-Credential -UserName vault -Message {}; if ($c) {{ $c.GetNetworkCredential().Password }} else {{ exit 1 }}",
                    powershell_string(question.text)
                ),
            ]);
            c
        }
        PromptKind::Terminal | PromptKind::Ykman => unreachable!("not a GUI prompt"),
    };
    cmd.stdin(std::process::Stdio::null());
    let output = crate::process::run_helper(cmd, kind.name(), timeout)?;
    if !output.status.success() {
        return Err(PromptError::Cancelled(kind.name()));
    }
    let text =
        std::str::from_utf8(&output.stdout).map_err(|_| PromptError::NotText(kind.name()))?;
    // Only the line break the helper adds goes; the answer is taken as typed.
    let answer = text.strip_suffix('\n').unwrap_or(text);
    Ok(SecretString::from(
        answer.strip_suffix('\r').unwrap_or(answer).to_owned(),
    ))
}

/// `"..."` for AppleScript: backslashes and quotes escaped.
fn applescript_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `'...'` for PowerShell: single quotes doubled.
fn powershell_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
