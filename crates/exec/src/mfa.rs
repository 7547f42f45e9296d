//! Where MFA codes come from, in order: `--mfa-token`; the profile's `mfa_process`;
//! `AWS_VAULT_PROMPT=ykman` (when ykman is installed); a prompt on the terminal. Never stdout,
//! so it works under credential_process and `$(vault export ...)`.

use std::cell::RefCell;
use std::process::Stdio;

use secrecy::SecretString;
use vault_sts::mfa::MfaSource;
use vault_sts::profile::Sourced;
use zeroize::Zeroizing;

use crate::process;
use crate::prompt;

pub struct MfaCodes {
    /// `--mfa-token`: used for the first code asked (one plan asks at most one).
    token: RefCell<Option<SecretString>>,
    process: Option<Sourced<String>>,
    ykman: bool,
}

impl MfaCodes {
    pub fn new(token: Option<SecretString>, process: Option<Sourced<String>>) -> Self {
        let ykman = std::env::var("AWS_VAULT_PROMPT").is_ok_and(|p| p == "ykman");
        MfaCodes {
            token: RefCell::new(token),
            process,
            ykman,
        }
    }

    /// Where the next code would come from, for `--explain`.
    pub fn describe(&self) -> String {
        if self.token.borrow().is_some() {
            "--mfa-token".to_owned()
        } else if let Some(p) = &self.process {
            format!("mfa_process ({})", p.origin)
        } else if self.ykman {
            "ykman (AWS_VAULT_PROMPT=ykman)".to_owned()
        } else {
            "a prompt on the terminal".to_owned()
        }
    }
}

impl MfaSource for MfaCodes {
    fn code(&self, serial: &str) -> Result<SecretString, String> {
        if let Some(token) = self.token.borrow_mut().take() {
            return Ok(token);
        }
        if let Some(process) = &self.process {
            return run_mfa_process(process);
        }
        if self.ykman {
            return ykman(serial);
        }
        match prompt::ask_line(&format!("MFA code for {serial}: ")) {
            Ok(Some(code)) => Ok(SecretString::from(code)),
            Ok(None) => Err(format!(
                "an MFA code for {serial} is needed, but there is no terminal to ask on; \
                 pass --mfa-token CODE, or set mfa_process in the profile"
            )),
            Err(e) => Err(format!("cannot read the MFA code from the terminal: {e}")),
        }
    }
}

/// Runs `mfa_process` through the shell; its stdout (trimmed) is the code. Its stdin and
/// stderr stay on ours, so it can talk to the person (e.g. touch a key).
fn run_mfa_process(command: &Sourced<String>) -> Result<SecretString, String> {
    let output = process::shell(&command.value)
        .stdin(Stdio::inherit())
        .stderr(Stdio::inherit())
        .stdout(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run mfa_process ({}): {e}", command.origin))?;
    let stdout = Zeroizing::new(output.stdout);
    if !output.status.success() {
        return Err(format!(
            "mfa_process ({}) failed ({})",
            command.origin, output.status
        ));
    }
    let text = std::str::from_utf8(&stdout).map_err(|_| {
        format!(
            "mfa_process ({}) printed something that is not text",
            command.origin
        )
    })?;
    Ok(SecretString::from(text.trim().to_owned()))
}

fn ykman(serial: &str) -> Result<SecretString, String> {
    let output = process::helper("ykman")
        .args(["oath", "accounts", "code", "--single", serial])
        .stdin(Stdio::inherit())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("AWS_VAULT_PROMPT=ykman, but ykman cannot run: {e}"))?;
    if !output.status.success() {
        return Err(format!("ykman failed ({})", output.status));
    }
    let stdout = Zeroizing::new(output.stdout);
    Ok(SecretString::from(
        String::from_utf8_lossy(&stdout).trim().to_owned(),
    ))
}
