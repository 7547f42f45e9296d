//! IAM Identity Center (SSO) sign-ins kept in the vault: the client registration, the access
//! token and the refresh token of one sso-session (or legacy start URL), encrypted like every
//! other secret. What `list` shows (start URL, expiry times) stays readable without the key.

use std::fmt;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::secret::push_field;

/// What is known about a sign-in without decrypting it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoTokenInfo {
    /// The sso-session name, or the start URL of a legacy profile.
    pub key: String,
    pub start_url: String,
    pub region: String,
    /// The scopes the client was registered with.
    pub scopes: Vec<String>,
    /// The OAuth grant types the client was registered for.
    pub grant_types: Vec<String>,
    /// Also kept in the AWS CLI's cache (`~/.aws/sso/cache`), by the user's choice.
    pub cli_cache: bool,
    /// When the client registration (client id and secret) stops working.
    pub registration_expires: DateTime<Utc>,
    /// When the access token expires; `None` once signed out (the registration is kept).
    pub token_expires: Option<DateTime<Utc>>,
    /// Whether a refresh token is held.
    pub refreshable: bool,
}

/// The secrets of a sign-in.
#[derive(Clone)]
pub struct SsoSecrets {
    pub client_id: String,
    pub client_secret: SecretString,
    pub access_token: Option<SecretString>,
    pub refresh_token: Option<SecretString>,
}

/// A sign-in: its metadata and its secrets.
#[derive(Clone, Debug)]
pub struct SsoToken {
    pub info: SsoTokenInfo,
    pub secrets: SsoSecrets,
}

impl fmt::Debug for SsoSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsoSecrets")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl SsoSecrets {
    /// The payload, bound to `key` so entries moved between names are caught. `None` when a
    /// value holds a line break (no real token does; the format could not carry it).
    pub(crate) fn encode(&self, key: &str) -> Option<Zeroizing<Vec<u8>>> {
        let values = [
            Some(key),
            Some(self.client_id.as_str()),
            Some(self.client_secret.expose_secret()),
            self.access_token.as_ref().map(|t| t.expose_secret()),
            self.refresh_token.as_ref().map(|t| t.expose_secret()),
        ];
        if values.iter().flatten().any(|v| v.contains(['\n', '\r'])) {
            return None;
        }
        let mut out = Zeroizing::new(Vec::with_capacity(512));
        push_field(&mut out, "key", key);
        push_field(&mut out, "client_id", &self.client_id);
        push_field(
            &mut out,
            "client_secret",
            self.client_secret.expose_secret(),
        );
        if let Some(token) = &self.access_token {
            push_field(&mut out, "access_token", token.expose_secret());
        }
        if let Some(token) = &self.refresh_token {
            push_field(&mut out, "refresh_token", token.expose_secret());
        }
        Some(out)
    }

    pub(crate) fn decode(bytes: &[u8], key: &str) -> Result<Self, &'static str> {
        let text = std::str::from_utf8(bytes).map_err(|_| "payload is not UTF-8")?;
        let (mut seen_key, mut client_id, mut client_secret) = (None, None, None);
        let (mut access_token, mut refresh_token) = (None, None);
        for line in text.lines() {
            let (name, value) = line.split_once('=').ok_or("payload line without '='")?;
            match name {
                "key" => seen_key = Some(value),
                "client_id" => client_id = Some(value.to_owned()),
                "client_secret" => client_secret = Some(SecretString::from(value)),
                "access_token" => access_token = Some(SecretString::from(value)),
                "refresh_token" => refresh_token = Some(SecretString::from(value)),
                _ => {}
            }
        }
        if seen_key != Some(key) {
            return Err("entry belongs to another sign-in");
        }
        Ok(SsoSecrets {
            client_id: client_id.ok_or("payload has no client_id")?,
            client_secret: client_secret.ok_or("payload has no client_secret")?,
            access_token,
            refresh_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SsoSecrets {
        SsoSecrets {
            client_id: "client-1".into(),
            client_secret: "secret/with=signs".into(),
            access_token: Some("aoa-token".into()),
            refresh_token: None,
        }
    }

    #[test]
    fn round_trip_bound_to_key() {
        let bytes = sample().encode("corp").unwrap();
        let back = SsoSecrets::decode(&bytes, "corp").unwrap();
        assert_eq!(back.client_secret.expose_secret(), "secret/with=signs");
        assert_eq!(back.access_token.unwrap().expose_secret(), "aoa-token");
        assert!(back.refresh_token.is_none());
        assert!(SsoSecrets::decode(&bytes, "other").is_err());
    }

    #[test]
    fn refuses_line_breaks_and_hides_secrets() {
        let mut bad = sample();
        bad.refresh_token = Some("a\nb".into());
        assert!(bad.encode("corp").is_none());
        let shown = format!("{:?}", sample());
        assert!(!shown.contains("aoa-token") && !shown.contains("signs"));
    }
}
