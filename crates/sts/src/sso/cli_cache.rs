//! The AWS CLI's SSO token cache (`~/.aws/sso/cache/<sha1>.json`): its file name, reading a
//! token the CLI left there (`aws sso login`), and writing ours there when the user opts in
//! (`--cli-cache`), so the CLI and SDKs can use the same sign-in. The one plaintext copy of
//! a token: written 0600, never otherwise.

use std::path::Path;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use vault_store::SsoToken;

use crate::profile::SsoSession;

use super::error::SsoError;

/// The AWS CLI's file name for a sign-in: the SHA-1 of the session name (or of the start URL
/// for the legacy form), in hex.
pub fn cli_cache_file_name(key: &str) -> String {
    use sha1::Digest as _;
    format!("{}.json", hex::encode(sha1::Sha1::digest(key.as_bytes())))
}

/// A token as the AWS CLI caches it (the registration only in the sso-session form).
pub(super) struct CliCached {
    pub(super) start_url: String,
    pub(super) access_token: SecretString,
    pub(super) expires_at: DateTime<Utc>,
    pub(super) refresh_token: Option<SecretString>,
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<SecretString>,
    pub(super) registration_expires_at: Option<DateTime<Utc>>,
}

/// The CLI writes `2026-12-02T10:00:00Z`; older releases wrote `...UTC`.
fn parse_cli_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(text.trim_end_matches("UTC"), "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|t| t.and_utc())
        })
}

/// The token cached at `path`; `None` when there is none, or nothing this reader knows.
pub(super) fn read(path: &Path) -> Option<CliCached> {
    let bytes = zeroize::Zeroizing::new(std::fs::read(path).ok()?);
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let text = |name: &str| value.get(name).and_then(|v| v.as_str());
    Some(CliCached {
        start_url: text("startUrl")?.to_owned(),
        access_token: SecretString::from(text("accessToken")?),
        expires_at: parse_cli_time(text("expiresAt")?)?,
        refresh_token: text("refreshToken").map(SecretString::from),
        client_id: text("clientId").map(str::to_owned),
        client_secret: text("clientSecret").map(SecretString::from),
        registration_expires_at: text("registrationExpiresAt").and_then(parse_cli_time),
    })
}

/// Writes `token` at `path` as the AWS CLI writes it (with the registration and refresh
/// token for the sso-session form, so the CLI can refresh it too).
pub(super) fn write(path: &Path, sso: &SsoSession, token: &SsoToken) -> Result<(), SsoError> {
    let failed = |message: String| SsoError::CliCache {
        path: path.to_owned(),
        message,
    };
    let (Some(access), Some(expires)) = (&token.secrets.access_token, token.info.token_expires)
    else {
        return Ok(());
    };
    let stamp = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut value = serde_json::json!({
        "startUrl": sso.start_url.value,
        "region": sso.region.value,
        "accessToken": access.expose_secret(),
        "expiresAt": stamp(expires),
    });
    if sso.refreshable() {
        let map = value.as_object_mut().expect("an object");
        map.insert("clientId".into(), token.secrets.client_id.clone().into());
        map.insert(
            "clientSecret".into(),
            token.secrets.client_secret.expose_secret().into(),
        );
        map.insert(
            "registrationExpiresAt".into(),
            stamp(token.info.registration_expires).into(),
        );
        if let Some(refresh) = &token.secrets.refresh_token {
            map.insert("refreshToken".into(), refresh.expose_secret().into());
        }
    }
    let bytes = zeroize::Zeroizing::new(serde_json::to_vec(&value).expect("JSON serialises"));
    drop(value);
    if let Some(dir) = path.parent() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|e| failed(e.to_string()))?;
    }
    let existed = path.exists();
    vault_store::replace_file(path, &bytes).map_err(|e| failed(e.to_string()))?;
    // A new file holds tokens: the user's alone, as the CLI makes it.
    #[cfg(unix)]
    if !existed {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| failed(e.to_string()))?;
    }
    #[cfg(not(unix))]
    let _ = existed;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_cache_names_match_the_aws_cli() {
        // sha1("my-sso") as the CLI computes it for `sso_session = my-sso`.
        assert_eq!(
            cli_cache_file_name("my-sso"),
            format!("{}.json", {
                use sha1::Digest as _;
                hex::encode(sha1::Sha1::digest(b"my-sso"))
            })
        );
        assert_eq!(cli_cache_file_name("my-sso").len(), 45);
    }

    #[test]
    fn cli_times_in_both_spellings() {
        let want: DateTime<Utc> = "2026-12-02T10:00:00Z".parse().unwrap();
        assert_eq!(parse_cli_time("2026-12-02T10:00:00Z"), Some(want));
        assert_eq!(parse_cli_time("2026-12-02T10:00:00UTC"), Some(want));
        assert_eq!(parse_cli_time("soon"), None);
    }
}
