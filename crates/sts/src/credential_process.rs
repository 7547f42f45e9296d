//! `credential_process` as a source of credentials (SAML tools such as saml2aws): run the
//! command as the SDKs do — split shell-style, no shell — and check its JSON (Version 1).
//! Its stderr stays on ours, so it can talk to the person; its stdout is parsed, never shown.

use std::process::Stdio;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Deserialize;
use vault_store::Credentials;

use crate::child::Launcher;
use crate::origin::Sourced;

/// A `credential_process` that could not be run or printed something unusable.
#[derive(Debug, thiserror::Error)]
#[error("credential_process of profile {profile:?} ({origin}) {problem}")]
pub struct CredentialProcessError {
    pub profile: String,
    /// Where the command line was configured (file:line).
    pub origin: String,
    pub problem: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Output {
    version: Option<serde_json::Value>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    expiration: Option<String>,
}

pub fn run(
    profile: &str,
    command: &Sourced<String>,
    launcher: &dyn Launcher,
) -> Result<Credentials, CredentialProcessError> {
    let fail = |problem: String| CredentialProcessError {
        profile: profile.to_owned(),
        origin: command.origin.to_string(),
        problem,
    };
    let words = shell_words::split(&command.value)
        .map_err(|e| fail(format!("is not a valid command line: {e}")))?;
    let (program, args) = words.split_first().ok_or_else(|| fail("is empty".into()))?;
    let mut cmd = launcher.command(program.as_ref());
    cmd.args(args)
        .stdin(Stdio::inherit())
        .stderr(Stdio::inherit());
    let output = launcher
        .output(cmd, "credential_process")
        .map_err(|e| fail(e.to_string()))?;
    if !output.status.success() {
        return Err(fail(format!("failed ({})", output.status)));
    }
    parse(&output.stdout).map_err(fail)
}

fn parse(stdout: &[u8]) -> Result<Credentials, String> {
    let out: Output =
        serde_json::from_slice(stdout).map_err(|e| format!("did not print a JSON object ({e})"))?;
    match out.version {
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(1) => {}
        _ => return Err("printed JSON without \"Version\": 1".into()),
    }
    let id = out
        .access_key_id
        .filter(|v| !v.is_empty())
        .ok_or("printed no AccessKeyId")?;
    let secret = out
        .secret_access_key
        .filter(|v| !v.is_empty())
        .ok_or("printed no SecretAccessKey")?;
    let expiration = match out.expiration {
        Some(text) => Some(
            DateTime::parse_from_rfc3339(&text)
                .map_err(|_| format!("printed an Expiration that is not RFC 3339: {text:?}"))?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    if expiration.is_some_and(|e| e <= Utc::now()) {
        return Err("printed credentials that have already expired".into());
    }
    Ok(Credentials {
        access_key_id: SecretString::from(id),
        secret_access_key: SecretString::from(secret),
        session_token: out.session_token.map(SecretString::from),
        expiration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn accepts_version_1_and_checks_fields() {
        let ok = br#"{"Version":1,"AccessKeyId":"ASIAX","SecretAccessKey":"s","SessionToken":"t","Expiration":"2999-01-01T00:00:00Z"}"#;
        let c = parse(ok).unwrap();
        assert_eq!(c.access_key_id.expose_secret(), "ASIAX");
        assert!(c.expiration.is_some());
        assert!(parse(br#"{"Version":2,"AccessKeyId":"a","SecretAccessKey":"s"}"#).is_err());
        assert!(parse(br#"{"Version":1,"SecretAccessKey":"s"}"#).is_err());
        assert!(parse(b"not json").is_err());
        let expired = br#"{"Version":1,"AccessKeyId":"a","SecretAccessKey":"s","Expiration":"2001-01-01T00:00:00Z"}"#;
        assert!(parse(expired).is_err());
    }
}

/// Fuzz target (see `vault_fuzz`): whatever a credential_process prints, the reader answers
/// with credentials or a message, never a panic.
#[cfg(test)]
#[test]
fn fuzz_credential_process_json() {
    let seeds: &[&[u8]] = &[
        br#"{"Version":1,"AccessKeyId":"ASIAX","SecretAccessKey":"s","SessionToken":"t","Expiration":"2999-01-01T00:00:00Z"}"#,
        br#"{"Version":1,"AccessKeyId":"AKIAX","SecretAccessKey":"s"}"#,
        br#"{"Version":2}"#,
    ];
    let tokens: &[&[u8]] = &[
        br#""Expiration":"#,
        br#""2999-13-40T99:99:99+25:00""#,
        br#""Version":1.0"#,
        b"null",
        b"[",
        b"{",
        b"\\u0000",
        b"1e999",
    ];
    vault_fuzz::fuzz("credential_process_json", seeds, tokens, |input| {
        if let Ok(c) = parse(input) {
            use secrecy::ExposeSecret;
            assert!(!c.access_key_id.expose_secret().is_empty());
        }
    });
}
