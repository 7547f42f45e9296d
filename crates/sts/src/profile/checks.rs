//! ARN checks: role ARNs, MFA devices, role session names and account ids, checked as AWS
//! checks them when the profile is read, so a typo is reported with its file and line
//! rather than as an STS refusal later.

use crate::origin::Sourced;

use super::error::ProfileError;

/// The characters STS allows in session names (role sessions, federation tokens): `[\w+=,.@-]`.
pub fn session_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// An AWS account id: 12 digits.
pub fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// `arn:PARTITION:iam::ACCOUNT:role/NAME` (NAME may have a path).
pub(super) fn validate_role_arn(arn: &Sourced<String>, profile: &str) -> Result<(), ProfileError> {
    let parts: Vec<&str> = arn.value.splitn(6, ':').collect();
    let problem = if arn
        .value
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        Some("it contains a control character or whitespace")
    } else if parts.len() != 6 || parts[0] != "arn" {
        Some("expected arn:aws:iam::123456789012:role/NAME")
    } else if !parts[1].starts_with("aws") {
        Some("unknown partition")
    } else if parts[2] != "iam" {
        Some("not an IAM ARN")
    } else if !is_account_id(parts[4]) {
        Some("the account id must be 12 digits")
    } else if !parts[5].starts_with("role/") || parts[5].len() <= "role/".len() {
        Some("expected role/NAME after the account id")
    } else {
        None
    };
    match problem {
        Some(reason) => Err(ProfileError::Invalid {
            key: "role_arn",
            profile: profile.to_owned(),
            origin: arn.origin.clone(),
            reason: format!("{:?} is not a valid role ARN: {reason}", arn.value),
        }),
        None => Ok(()),
    }
}

/// An MFA device ARN (`arn:aws:iam::ACCOUNT:mfa/NAME`) or a hardware serial (`GAHT12345678`).
pub(super) fn validate_mfa_serial(
    serial: &Sourced<String>,
    profile: &str,
) -> Result<(), ProfileError> {
    let v = &serial.value;
    let ok = if v.starts_with("arn:") {
        v.contains(":mfa/") || v.contains(":u2f/")
    } else {
        (9..=256).contains(&v.len())
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "=,.@:/-".contains(c))
    };
    if ok {
        Ok(())
    } else {
        Err(ProfileError::Invalid {
            key: "mfa_serial",
            profile: profile.to_owned(),
            origin: serial.origin.clone(),
            reason: format!("{v:?} is not an MFA device ARN (arn:aws:iam::123456789012:mfa/NAME)"),
        })
    }
}

/// `role_session_name`: 2 to 64 of the characters STS allows.
pub(super) fn validate_session_name(
    name: &Sourced<String>,
    profile: &str,
) -> Result<(), ProfileError> {
    let ok = (2..=64).contains(&name.value.len()) && name.value.chars().all(session_name_char);
    if ok {
        return Ok(());
    }
    Err(ProfileError::Invalid {
        key: "role_session_name",
        profile: profile.to_owned(),
        origin: name.origin.clone(),
        reason: "2 to 64 characters of letters, digits and _+=,.@-".into(),
    })
}
