//! MFA codes: where they come from is the caller's business ([`MfaSource`]); what a code
//! looks like is checked here, once, for every source.

use secrecy::{ExposeSecret, SecretString};

use crate::child::HelperError;

/// Where MFA codes come from; implemented by the binary (flag, `mfa_process`, ykman, prompt).
pub trait MfaSource {
    /// A current code for the device `serial`.
    fn code(&self, serial: &str) -> Result<SecretString, CodeUnavailable>;
    /// Where the next code will come from.
    fn origin(&self) -> MfaOrigin;
}

/// Where a code comes from, for messages and `--explain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MfaOrigin {
    Flag,
    /// `mfa_process`, with where it is configured (file:line).
    Process(String),
    Ykman,
    Terminal,
}

impl std::fmt::Display for MfaOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MfaOrigin::Flag => f.write_str("--mfa-token"),
            MfaOrigin::Process(origin) => write!(f, "mfa_process ({origin})"),
            MfaOrigin::Ykman => f.write_str("ykman (AWS_VAULT_PROMPT=ykman)"),
            MfaOrigin::Terminal => f.write_str("a prompt on the terminal"),
        }
    }
}

/// Why an [`MfaSource`] gave no code.
#[derive(Debug, thiserror::Error)]
pub enum CodeUnavailable {
    /// Nothing here can ask for one: no terminal, no GUI prompt, no `mfa_process`; the
    /// message says what was looked for.
    #[error("{0}")]
    NoOneToAsk(String),
    /// The helper that gives codes (`mfa_process`, ykman, a GUI prompt) did not answer.
    #[error(transparent)]
    Helper(#[from] HelperError),
    /// It was asked and gave none: cancelled, failed, or an answer that is not text.
    #[error("{0}")]
    NotGiven(String),
}

#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// The source could not give a code.
    #[error("{reason}")]
    Unavailable {
        from: MfaOrigin,
        reason: CodeUnavailable,
    },
    /// What the source gave is not a code; `gave` says what it was without showing it.
    #[error("{from} gave {gave}; an MFA code is 6 digits")]
    BadCode { from: MfaOrigin, gave: String },
}

/// A code is six ASCII digits; anything else is refused before it reaches STS. The error
/// describes what was given without repeating it.
pub fn check_code(code: &str) -> Result<(), String> {
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(());
    }
    let n = code.chars().count();
    Err(match n {
        0 => "nothing".to_owned(),
        _ if code.chars().all(|c| c.is_ascii_digit()) => format!("{n} digits"),
        1 => "1 character".to_owned(),
        _ => format!("{n} characters"),
    })
}

/// A code from `source`, checked.
pub fn code_from(source: &dyn MfaSource, serial: &str) -> Result<SecretString, MfaError> {
    let from = source.origin();
    let code = source
        .code(serial)
        .map_err(|reason| MfaError::Unavailable {
            from: from.clone(),
            reason,
        })?;
    check_code(code.expose_secret()).map_err(|gave| MfaError::BadCode { from, gave })?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        assert!(check_code("123456").is_ok());
        for bad in ["12345", "1234567", "12345a", "", "１２３４５６"] {
            assert!(check_code(bad).is_err(), "{bad:?}");
        }
    }
}
