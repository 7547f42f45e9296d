//! MFA codes: where they come from is the caller's business ([`MfaSource`]); what a code
//! looks like is checked here, once, for every source.

use secrecy::{ExposeSecret, SecretString};

/// Where MFA codes come from; implemented by the binary (flag, `mfa_process`, ykman, prompt).
pub trait MfaSource {
    /// A current code for the device `serial`. The error is a message for the user.
    fn code(&self, serial: &str) -> Result<SecretString, String>;
}

#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// The source could not give a code (its own message).
    #[error("{0}")]
    Unavailable(String),
    #[error("the MFA code must be 6 digits")]
    BadCode,
}

/// A code is six ASCII digits; anything else is refused before it reaches STS.
pub fn check_code(code: &str) -> Result<(), MfaError> {
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(MfaError::BadCode)
    }
}

/// A code from `source`, checked.
pub fn code_from(source: &dyn MfaSource, serial: &str) -> Result<SecretString, MfaError> {
    let code = source.code(serial).map_err(MfaError::Unavailable)?;
    check_code(code.expose_secret())?;
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
