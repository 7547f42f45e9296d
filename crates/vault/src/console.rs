//! Console sign-ins kept in the vault (`vault signin`): the refresh token of an AWS Sign-In
//! session, the P-256 key its DPoP proofs are signed with, and the session's current
//! 15-minute credentials, encrypted like every other secret. The AWS CLI keeps the same
//! things in a plaintext file (`~/.aws/login/cache`); here that file exists only when the
//! user asks for it. What `list` and `--explain` show stays readable without the key.

use std::fmt;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::secret::push_field;

/// What is known about a console sign-in without decrypting it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSignInInfo {
    /// The session's ARN (`login_session`, trimmed): the identity that signed in.
    pub key: String,
    /// The AWS Sign-In region it was signed in to (refreshes go there).
    pub region: String,
    /// The OAuth client (`arn:aws:signin:::devtools/same-device` or `cross-device`).
    pub client_id: String,
    pub account_id: String,
    /// Also kept in the AWS CLI's cache file, by the user's choice (`--cli-cache`).
    pub cli_cache: bool,
    /// When the person signed in: the session can be refreshed for 12 hours from then.
    pub signed_in: DateTime<Utc>,
    /// When the held credentials end.
    pub expires: DateTime<Utc>,
}

/// The secrets of a console sign-in.
#[derive(Clone)]
pub struct ConsoleSecrets {
    pub refresh_token: SecretString,
    /// The DPoP key's private scalar (32 bytes), base64.
    pub dpop_key: SecretString,
    pub access_key_id: SecretString,
    pub secret_access_key: SecretString,
    pub session_token: SecretString,
}

/// A console sign-in: its metadata and its secrets.
#[derive(Clone, Debug)]
pub struct ConsoleSignIn {
    pub info: ConsoleSignInInfo,
    pub secrets: ConsoleSecrets,
}

/// How long a console session can be refreshed after its sign-in (AWS Sign-In's limit).
pub const CONSOLE_SESSION_HOURS: i64 = 12;

impl ConsoleSignInInfo {
    /// When the session can no longer be refreshed: 12 hours after the sign-in.
    pub fn refreshable_until(&self) -> DateTime<Utc> {
        self.signed_in + chrono::Duration::hours(CONSOLE_SESSION_HOURS)
    }
}

impl fmt::Debug for ConsoleSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConsoleSecrets(<redacted>)")
    }
}

impl ConsoleSecrets {
    /// The payload, bound to `key` so entries moved between names are caught. `None` when a
    /// value holds a line break (no real token does; the format could not carry it).
    pub(crate) fn encode(&self, key: &str) -> Option<Zeroizing<Vec<u8>>> {
        let fields = [
            ("refresh_token", &self.refresh_token),
            ("dpop_key", &self.dpop_key),
            ("access_key_id", &self.access_key_id),
            ("secret_access_key", &self.secret_access_key),
            ("session_token", &self.session_token),
        ];
        if key.contains(['\n', '\r'])
            || fields
                .iter()
                .any(|(_, v)| v.expose_secret().contains(['\n', '\r']))
        {
            return None;
        }
        let mut out = Zeroizing::new(Vec::with_capacity(2048));
        push_field(&mut out, "key", key);
        for (name, value) in fields {
            push_field(&mut out, name, value.expose_secret());
        }
        Some(out)
    }

    pub(crate) fn decode(bytes: &[u8], key: &str) -> Result<Self, &'static str> {
        let text = std::str::from_utf8(bytes).map_err(|_| "payload is not UTF-8")?;
        let mut seen_key = None;
        let mut fields: [Option<SecretString>; 5] = Default::default();
        const NAMES: [&str; 5] = [
            "refresh_token",
            "dpop_key",
            "access_key_id",
            "secret_access_key",
            "session_token",
        ];
        for line in text.lines() {
            let (name, value) = line.split_once('=').ok_or("payload line without '='")?;
            if name == "key" {
                seen_key = Some(value);
            } else if let Some(i) = NAMES.iter().position(|n| *n == name) {
                fields[i] = Some(SecretString::from(value));
            }
        }
        if seen_key != Some(key) {
            return Err("entry belongs to another sign-in");
        }
        let [refresh, dpop, id, secret, token] = fields;
        Ok(ConsoleSecrets {
            refresh_token: refresh.ok_or("payload has no refresh_token")?,
            dpop_key: dpop.ok_or("payload has no dpop_key")?,
            access_key_id: id.ok_or("payload has no access_key_id")?,
            secret_access_key: secret.ok_or("payload has no secret_access_key")?,
            session_token: token.ok_or("payload has no session_token")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ConsoleSecrets {
        ConsoleSecrets {
            refresh_token: "rt-1".into(),
            dpop_key: "a2V5=".into(),
            access_key_id: "ASIA1".into(),
            secret_access_key: "s/e=cret".into(),
            session_token: "tok".into(),
        }
    }

    #[test]
    fn round_trip_bound_to_key() {
        let key = "arn:aws:iam::123456789012:user/alice";
        let bytes = sample().encode(key).unwrap();
        let back = ConsoleSecrets::decode(&bytes, key).unwrap();
        assert_eq!(back.secret_access_key.expose_secret(), "s/e=cret");
        assert_eq!(back.dpop_key.expose_secret(), "a2V5=");
        assert!(ConsoleSecrets::decode(&bytes, "arn:aws:iam::1:user/bob").is_err());
    }

    #[test]
    fn refuses_line_breaks_and_hides_secrets() {
        let mut bad = sample();
        bad.refresh_token = "a\nb".into();
        assert!(bad.encode("k").is_none());
        assert!(!format!("{:?}", sample()).contains("rt-1"));
    }
}
