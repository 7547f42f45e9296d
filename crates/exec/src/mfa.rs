//! Where MFA codes come from, in order: `--mfa-token`; the profile's `mfa_process`; the
//! prompt `--prompt` / `AWS_VAULT_PROMPT` names (ykman, a GUI dialog, the terminal); else the
//! terminal when there is one, else a GUI prompt when there is a display. Never stdout, so it
//! works under credential_process and `$(vault export ...)`.

use std::cell::RefCell;
use std::process::Stdio;
use std::time::Duration;

use secrecy::SecretString;
use vault_sts::mfa::{CodeUnavailable, MfaOrigin, MfaSource};
use vault_sts::origin::Sourced;

use crate::cli::PromptKind;
use crate::process;
use crate::prompt::{self, PromptError, Prompts};

pub struct MfaCodes {
    /// `--mfa-token`: used for the first code asked (one plan asks at most one).
    token: RefCell<Option<SecretString>>,
    process: Option<Sourced<String>>,
    prompts: Prompts,
}

impl MfaCodes {
    pub fn new(
        token: Option<SecretString>,
        process: Option<Sourced<String>>,
        prompts: Prompts,
    ) -> Self {
        MfaCodes {
            token: RefCell::new(token),
            process,
            prompts,
        }
    }

    /// Where a code asked for ahead of time comes from (a long `--server` job whose MFA
    /// session is about to end): `mfa_process`, else the prompt asked for, else a GUI prompt
    /// when there is a display (a terminal may have nobody watching), else the terminal.
    pub fn ahead(&self) -> AheadCodes {
        AheadCodes {
            process: self.process.clone(),
            prompts: self.prompts.clone(),
        }
    }
}

/// Asks for one MFA code on another thread (so a server keeps serving while a dialog waits).
#[derive(Clone)]
pub struct AheadCodes {
    process: Option<Sourced<String>>,
    prompts: Prompts,
}

impl AheadCodes {
    /// A code for `serial`; `why` is shown with the question.
    pub fn ask(&self, serial: &str, why: &str) -> Result<SecretString, CodeUnavailable> {
        if let Some(process) = &self.process {
            return run_mfa_process(process, self.prompts.helper_timeout);
        }
        let question = format!("MFA code for {serial} ({why})");
        by_prompt(
            &self.prompts,
            self.prompts.resolve_ahead(),
            serial,
            &question,
            || "no GUI prompt, terminal or mfa_process to ask with".into(),
        )
    }
}

/// One code already in hand (asked ahead of time), for the mint that uses it.
pub struct OneCode(pub RefCell<Option<SecretString>>);

impl MfaSource for OneCode {
    fn origin(&self) -> MfaOrigin {
        MfaOrigin::Terminal
    }

    fn code(&self, serial: &str) -> Result<SecretString, CodeUnavailable> {
        self.0.borrow_mut().take().ok_or_else(|| {
            CodeUnavailable::NotGiven(format!("a second MFA code for {serial} was needed"))
        })
    }
}

impl MfaSource for MfaCodes {
    fn origin(&self) -> MfaOrigin {
        if self.token.borrow().is_some() {
            MfaOrigin::Flag
        } else if let Some(p) = &self.process {
            MfaOrigin::Process(p.origin.to_string())
        } else if self.prompts.asked == Some(PromptKind::Ykman) {
            MfaOrigin::Ykman
        } else {
            MfaOrigin::Terminal
        }
    }

    fn code(&self, serial: &str) -> Result<SecretString, CodeUnavailable> {
        if let Some(token) = self.token.borrow_mut().take() {
            return Ok(token);
        }
        if let Some(process) = &self.process {
            return run_mfa_process(process, self.prompts.helper_timeout);
        }
        let no_way = || {
            format!(
                "an MFA code for {serial} is needed, but there is no terminal to ask on and no GUI prompt"
            )
        };
        by_prompt(
            &self.prompts,
            self.prompts.resolve(),
            serial,
            &format!("MFA code for {serial}"),
            no_way,
        )
    }
}

/// Asks `question` through `kind` (ykman reads the code itself); `none` says why nothing
/// could ask (no prompt, or no terminal after all).
fn by_prompt(
    prompts: &Prompts,
    kind: Option<PromptKind>,
    serial: &str,
    question: &str,
    none: impl FnOnce() -> String,
) -> Result<SecretString, CodeUnavailable> {
    let _turn = ASKING.lock().unwrap_or_else(|e| e.into_inner());
    match kind {
        Some(PromptKind::Ykman) => ykman(serial, prompts.helper_timeout),
        Some(PromptKind::Terminal) => match prompt::ask_line(&format!("{question}: ")) {
            Ok(Some(code)) => Ok(SecretString::from(code)),
            // The hint says what to do instead.
            Ok(None) => Err(CodeUnavailable::NoOneToAsk(none())),
            Err(e) => Err(CodeUnavailable::NotGiven(format!(
                "cannot read the MFA code from the terminal: {e}"
            ))),
        },
        Some(gui) => prompts
            .ask_gui(
                gui,
                &prompt::Question {
                    text: question,
                    hidden: false,
                },
            )
            .map_err(|e| match e {
                PromptError::Helper(helper) => CodeUnavailable::Helper(helper),
                other => CodeUnavailable::NotGiven(other.to_string()),
            }),
        None => Err(CodeUnavailable::NoOneToAsk(none())),
    }
}

/// One question at a time: `vault serve` mints several profiles on their own threads, and
/// two prompts on one terminal (or two dialogs) would take each other's answers.
static ASKING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `mfa_process` through the shell; its stdout (trimmed) is the code. Its stdin and
/// stderr stay on ours, so it can talk to the person (e.g. touch a key).
fn run_mfa_process(
    command: &Sourced<String>,
    timeout: Duration,
) -> Result<SecretString, CodeUnavailable> {
    let _turn = ASKING.lock().unwrap_or_else(|e| e.into_inner());
    let what = format!("mfa_process ({})", command.origin);
    let mut cmd = process::shell(&command.value);
    cmd.stdin(Stdio::inherit()).stderr(Stdio::inherit());
    let output = process::run_helper(cmd, &what, timeout)?;
    if !output.status.success() {
        return Err(CodeUnavailable::NotGiven(format!(
            "{what} failed ({})",
            output.status
        )));
    }
    let text = std::str::from_utf8(&output.stdout).map_err(|_| {
        CodeUnavailable::NotGiven(format!("{what} printed something that is not text"))
    })?;
    Ok(SecretString::from(text.trim().to_owned()))
}

fn ykman(serial: &str, timeout: Duration) -> Result<SecretString, CodeUnavailable> {
    let mut cmd = process::helper("ykman");
    cmd.args(["oath", "accounts", "code", "--single", serial])
        .stdin(Stdio::inherit())
        .stderr(Stdio::inherit());
    let output = process::run_helper(cmd, "ykman (AWS_VAULT_PROMPT=ykman)", timeout)?;
    if !output.status.success() {
        return Err(CodeUnavailable::NotGiven(format!(
            "ykman failed ({})",
            output.status
        )));
    }
    Ok(SecretString::from(
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
    ))
}
