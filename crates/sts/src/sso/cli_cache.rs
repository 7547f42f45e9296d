//! The AWS CLI's SSO token cache (`~/.aws/sso/cache/<sha1>.json`): its file name, reading a
//! token the CLI left there (`aws sso login`) and the client registration the CLI keeps
//! beside it, writing ours there when the user opts in (`--cli-cache`), so the CLI and SDKs
//! can use the same sign-in, and putting a refresh's new tokens back into a file whose
//! refresh token vault used. The one plaintext copy of a token: written 0600, never
//! otherwise.

use std::fmt::Write as _;
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

/// The most read from one of the CLI's files; theirs are a few hundred bytes.
const FILE_LIMIT: u64 = 1024 * 1024;

/// The JSON object in the CLI's file at `path`; `None` when there is none or it is not one.
/// Bounded: the CLI, not vault, wrote it.
fn read_object(path: &Path) -> Option<serde_json::Map<String, serde_json::Value>> {
    let bytes = zeroize::Zeroizing::new(vault_store::read_regular(path, FILE_LIMIT).ok()??);
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

/// The token cached at `path`; `None` when there is none, or nothing this reader knows.
pub(super) fn read(path: &Path) -> Option<CliCached> {
    let value = read_object(path)?;
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

/// How the CLI registered a client, from the registration file it keeps beside the token.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct CliRegistration {
    pub(super) scopes: Vec<String>,
    /// Empty for a client the CLI registered for the device flow, which records none.
    pub(super) grant_types: Vec<String>,
}

/// The registration the CLI keeps in `dir` for `sso`, if its client is `client_id`.
///
/// The AWS CLI v2 (botocore's `SSOTokenFetcher`, `SSOTokenFetcherAuth`) keeps each client
/// registration in a file of its own, named by the SHA-1 of
/// `{"region", "scopes", "session_name", "startUrl", "tool": "botocore"}` as Python's
/// `json.dumps(sort_keys=True)` writes it, with `scopes` as configured (`null` when the
/// session has no `sso_registration_scopes`, which vault reads as the default scope: both
/// are tried). The token file copies only the client id and secret; the grant types are
/// here, and only for the PKCE flow's clients (botocore's `_is_registration_for_auth_code`:
/// none recorded means a device-flow client).
pub(super) fn registration(
    dir: &Path,
    sso: &SsoSession,
    client_id: &str,
) -> Option<CliRegistration> {
    let mut scope_choices = vec![Some(sso.scopes.as_slice())];
    if sso.scopes == [crate::profile::DEFAULT_SSO_SCOPE] {
        scope_choices.push(None);
    }
    scope_choices.into_iter().find_map(|scopes| {
        let key = registration_key(sso, scopes);
        let map = read_object(&dir.join(format!("{key}.json")))?;
        if map.get("clientId").and_then(|v| v.as_str()) != Some(client_id) {
            return None;
        }
        let strings = |name: &str| -> Vec<String> {
            map.get(name)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(CliRegistration {
            scopes: strings("scopes"),
            grant_types: strings("grantTypes"),
        })
    })
}

/// botocore's `_registration_cache_key`: the SHA-1 of its arguments as Python's
/// `json.dumps(args, sort_keys=True)` spells them.
fn registration_key(sso: &SsoSession, scopes: Option<&[String]>) -> String {
    use sha1::Digest as _;
    let mut text = String::from("{\"region\": ");
    push_py_json(&mut text, &sso.region.value);
    text.push_str(", \"scopes\": ");
    match scopes {
        Some(scopes) => {
            text.push('[');
            for (i, scope) in scopes.iter().enumerate() {
                if i > 0 {
                    text.push_str(", ");
                }
                push_py_json(&mut text, scope);
            }
            text.push(']');
        }
        None => text.push_str("null"),
    }
    text.push_str(", \"session_name\": ");
    match &sso.session {
        Some(name) => push_py_json(&mut text, name),
        None => text.push_str("null"),
    }
    text.push_str(", \"startUrl\": ");
    push_py_json(&mut text, &sso.start_url.value);
    text.push_str(", \"tool\": \"botocore\"}");
    hex::encode(sha1::Sha1::digest(text.as_bytes()))
}

/// `text` as a JSON string the way Python's `json.dumps` writes it (`ensure_ascii`: every
/// character outside printable ASCII as `\uXXXX`, lowercase, in UTF-16 units), so the hash
/// matches the CLI's for any name.
fn push_py_json(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// After vault refreshed with `used`, the refresh token the CLI's file at `path` holds too:
/// the new access token, its expiry and the new refresh token go into that file, as botocore
/// writes them after its own refresh; every other field (the registration, fields of newer
/// CLIs) and the file's mode stay. The service may rotate refresh tokens, and the CLI's copy
/// of the old one would stop working. Returns `false`, writing nothing, when the file does
/// not hold `used` (none there, or the CLI has signed in or refreshed since).
pub(super) fn write_back(
    path: &Path,
    used: &SecretString,
    token: &SsoToken,
) -> Result<bool, SsoError> {
    let (Some(access), Some(expires)) = (&token.secrets.access_token, token.info.token_expires)
    else {
        return Ok(false);
    };
    let Some(mut map) = read_object(path) else {
        return Ok(false);
    };
    if map.get("refreshToken").and_then(|v| v.as_str()) != Some(used.expose_secret()) {
        return Ok(false);
    }
    map.insert("accessToken".into(), access.expose_secret().into());
    map.insert("expiresAt".into(), stamp(expires).into());
    if let Some(refresh) = &token.secrets.refresh_token {
        map.insert("refreshToken".into(), refresh.expose_secret().into());
    }
    let bytes = zeroize::Zeroizing::new(serde_json::to_vec(&map).expect("JSON serialises"));
    drop(map);
    vault_store::replace_file(path, &bytes).map_err(|e| SsoError::CliCache {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    Ok(true)
}

/// The CLI's time format: `2026-12-02T10:00:00Z`.
fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
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
    crate::config::write_cli_cache_file(path, &bytes).map_err(failed)
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

    fn session(name: &str, start_url: &str, region: &str, scopes: &[&str]) -> SsoSession {
        use crate::origin::{Origin, Sourced};
        SsoSession {
            key: name.into(),
            session: Some(name.into()),
            start_url: Sourced::new(start_url.into(), Origin::Default),
            region: Sourced::new(region.into(), Origin::Default),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn registration_keys_match_botocore() {
        // hashlib.sha1(json.dumps(args, sort_keys=True).encode()).hexdigest() in Python.
        let corp = session(
            "corp",
            "https://corp.awsapps.com/start",
            "us-east-1",
            &["sso:account:access"],
        );
        assert_eq!(
            registration_key(&corp, Some(&corp.scopes)),
            "1b56c55d6e723362537167a7f43960b8185b5a80"
        );
        assert_eq!(
            registration_key(&corp, None),
            "5fdb0c628fe4a3a78887b40232874154e433f9a4"
        );
        // Escapes as Python's ensure_ascii writes them, surrogate pairs included.
        let odd = session(
            "\u{fc}n\u{ef} \\ x",
            "https://x/\"\u{e9}\u{1}\u{1f600}",
            "eu-west-1",
            &["a", "b:c"],
        );
        assert_eq!(
            registration_key(&odd, Some(&odd.scopes)),
            "d1f613546f5b25e00be3697898114be3acc0b7d0"
        );
    }

    #[test]
    fn the_cli_registration_is_found_by_key_and_client() {
        let dir = tempfile::tempdir().unwrap();
        let corp = session(
            "corp",
            "https://corp.awsapps.com/start",
            "us-east-1",
            &["sso:account:access"],
        );
        // No sso_registration_scopes in the config: botocore's key has `null`.
        let file = dir
            .path()
            .join("5fdb0c628fe4a3a78887b40232874154e433f9a4.json");
        std::fs::write(
            &file,
            r#"{"clientId": "c-1", "clientSecret": "s", "expiresAt": "2030-01-01T00:00:00Z",
                "scopes": ["sso:account:access"], "grantTypes": ["authorization_code", "refresh_token"]}"#,
        )
        .unwrap();
        assert_eq!(
            registration(dir.path(), &corp, "c-1"),
            Some(CliRegistration {
                scopes: vec!["sso:account:access".into()],
                grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            })
        );
        // Another client's registration says nothing about this one.
        assert_eq!(registration(dir.path(), &corp, "c-2"), None);
        // A device client's: no grant types recorded.
        std::fs::write(
            &file,
            r#"{"clientId": "c-1", "clientSecret": "s", "expiresAt": "2030-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(
            registration(dir.path(), &corp, "c-1"),
            Some(CliRegistration {
                scopes: vec![],
                grant_types: vec![],
            })
        );
    }

    #[test]
    fn write_back_keeps_other_fields_and_the_mode_and_only_replaces_what_was_used() {
        use vault_store::{SsoSecrets, SsoTokenInfo};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        let original = r#"{"startUrl": "https://corp.awsapps.com/start", "region": "us-east-1",
            "accessToken": "old-access", "expiresAt": "2020-01-01T00:00:00Z",
            "refreshToken": "old-refresh", "clientId": "c-1", "clientSecret": "s",
            "registrationExpiresAt": "2030-01-01T00:00:00Z", "newerField": 7}"#;
        std::fs::write(&path, original).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        }
        let expires: DateTime<Utc> = "2031-05-06T07:08:09Z".parse().unwrap();
        let token = SsoToken {
            info: SsoTokenInfo {
                key: "corp".into(),
                start_url: "https://corp.awsapps.com/start".into(),
                region: "us-east-1".into(),
                scopes: vec![],
                grant_types: vec![],
                cli_cache: false,
                registration_expires: expires,
                token_expires: Some(expires),
                refreshable: true,
            },
            secrets: SsoSecrets {
                client_id: "c-1".into(),
                client_secret: "s".into(),
                access_token: Some("new-access".into()),
                refresh_token: Some("new-refresh".into()),
            },
        };
        // The CLI has moved on from the token vault used: nothing is written.
        assert!(!write_back(&path, &"other".into(), &token).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
        assert!(write_back(&path, &"old-refresh".into(), &token).unwrap());
        let after: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(after["accessToken"], "new-access");
        assert_eq!(after["refreshToken"], "new-refresh");
        assert_eq!(after["expiresAt"], "2031-05-06T07:08:09Z");
        assert_eq!(after["clientSecret"], "s");
        assert_eq!(after["registrationExpiresAt"], "2030-01-01T00:00:00Z");
        assert_eq!(after["newerField"], 7);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o640);
        }
        // No file: nothing to write back to.
        assert!(!write_back(&dir.path().join("none.json"), &"x".into(), &token).unwrap());
    }

    #[test]
    fn cli_times_in_both_spellings() {
        let want: DateTime<Utc> = "2026-12-02T10:00:00Z".parse().unwrap();
        assert_eq!(parse_cli_time("2026-12-02T10:00:00Z"), Some(want));
        assert_eq!(parse_cli_time("2026-12-02T10:00:00UTC"), Some(want));
        assert_eq!(parse_cli_time("soon"), None);
    }
}
