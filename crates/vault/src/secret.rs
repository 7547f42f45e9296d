//! Credential values as they travel through the program: zeroized on drop, never shown.
//!
//! Encrypted payloads use a line format (`name=value` per line) rather than JSON so that
//! decoding copies each secret exactly once, straight into a zeroizing buffer.

use std::fmt;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// An AWS credential set: a long-lived key pair, or temporary session credentials.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: SecretString,
    pub secret_access_key: SecretString,
    /// Present for temporary credentials.
    pub session_token: Option<SecretString>,
    /// When temporary credentials stop working; `None` for long-lived keys.
    pub expiration: Option<DateTime<Utc>>,
}

impl Credentials {
    /// A long-lived key pair.
    pub fn long_lived(access_key_id: SecretString, secret_access_key: SecretString) -> Self {
        Credentials {
            access_key_id,
            secret_access_key,
            session_token: None,
            expiration: None,
        }
    }

    /// The key id cut down to something safe to show: `AKIA…WXYZ`.
    pub fn key_id_hint(&self) -> String {
        redact_key_id(self.access_key_id.expose_secret())
    }

    pub(crate) fn encode(&self, profile: &str) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(256));
        push_field(&mut out, "profile", profile);
        push_field(
            &mut out,
            "access_key_id",
            self.access_key_id.expose_secret(),
        );
        push_field(
            &mut out,
            "secret_access_key",
            self.secret_access_key.expose_secret(),
        );
        if let Some(token) = &self.session_token {
            push_field(&mut out, "session_token", token.expose_secret());
        }
        if let Some(exp) = self.expiration {
            push_field(&mut out, "expiration", &exp.to_rfc3339());
        }
        out
    }

    /// Decodes a payload and checks that it was written for `profile`, so that entries moved
    /// between names in the file are caught.
    pub(crate) fn decode(bytes: &[u8], profile: &str) -> Result<Self, &'static str> {
        let text = std::str::from_utf8(bytes).map_err(|_| "payload is not UTF-8")?;
        let mut seen_profile = None;
        let (mut id, mut secret, mut token, mut expiration) = (None, None, None, None);
        for line in text.lines() {
            let (name, value) = line.split_once('=').ok_or("payload line without '='")?;
            match name {
                "profile" => seen_profile = Some(value),
                "access_key_id" => id = Some(SecretString::from(value)),
                "secret_access_key" => secret = Some(SecretString::from(value)),
                "session_token" => token = Some(SecretString::from(value)),
                "expiration" => {
                    expiration = Some(
                        DateTime::parse_from_rfc3339(value)
                            .map_err(|_| "bad expiration in payload")?
                            .with_timezone(&Utc),
                    )
                }
                // Fields from a newer minor release are ignored, not fatal.
                _ => {}
            }
        }
        if seen_profile != Some(profile) {
            return Err("entry belongs to another profile");
        }
        Ok(Credentials {
            access_key_id: id.ok_or("payload has no access_key_id")?,
            secret_access_key: secret.ok_or("payload has no secret_access_key")?,
            session_token: token,
            expiration,
        })
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.key_id_hint())
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expiration", &self.expiration)
            .finish()
    }
}

pub(crate) fn push_field(out: &mut Vec<u8>, name: &str, value: &str) {
    debug_assert!(!value.contains('\n'), "{name} holds a newline");
    out.extend_from_slice(name.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

/// `AKIAIOSFODNN7EXAMPLE` → `AKIA…MPLE`. Short or odd ids are fully hidden.
pub fn redact_key_id(id: &str) -> String {
    if id.len() >= 16 && id.is_ascii() {
        format!("{}…{}", &id[..4], &id[id.len() - 4..])
    } else {
        "…".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Credentials {
        Credentials {
            access_key_id: "ASIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("token/with+slashes==".into()),
            expiration: Some("2030-01-02T03:04:05Z".parse().unwrap()),
        }
    }

    #[test]
    fn round_trip() {
        let bytes = sample().encode("lab");
        let back = Credentials::decode(&bytes, "lab").unwrap();
        assert_eq!(back.access_key_id.expose_secret(), "ASIAIOSFODNN7EXAMPLE");
        assert_eq!(
            back.session_token.unwrap().expose_secret(),
            "token/with+slashes=="
        );
        assert_eq!(back.expiration, sample().expiration);
    }

    #[test]
    fn refuses_payload_of_another_profile() {
        let bytes = sample().encode("lab");
        assert!(Credentials::decode(&bytes, "prod").is_err());
    }

    #[test]
    fn debug_shows_no_secret() {
        let shown = format!("{:?}", sample());
        assert!(!shown.contains("EXAMPLEKEY"));
        assert!(!shown.contains("IOSFODNN7"));
        assert!(!shown.contains("slashes"));
        assert!(shown.contains("ASIA…MPLE"));
    }
}
