//! Talking to the person at the terminal, never through stdout or stdin: prompts go to the
//! controlling terminal (`/dev/tty`, `CONIN$`/`CONOUT$` on Windows), so they work while stdout
//! is piped or captured (credential_process, `$(vault export ...)`).

use std::io::{self, BufRead, BufReader, Write};

use secrecy::SecretString;

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
