//! The AWS CLI's cache file of a console session, for `vault signin --cli-cache`: written
//! field for field as `aws login` writes it (so the AWS CLI and every SDK use it as their
//! own), and read back when they refreshed from it.

use std::path::Path;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use vault_store::{ConsoleSecrets, ConsoleSignIn};
use zeroize::Zeroizing;

use super::dpop::DpopKey;
use super::held::secret_field;

/// Writes `held` at `path` as `aws login` does: 0600 when new, atomically, `~/.aws/login/cache`
/// made 0700 when missing. An existing file keeps its mode.
pub(super) fn write(path: &Path, held: &ConsoleSignIn) -> Result<(), String> {
    let s = &held.secrets;
    let key = DpopKey::from_stored(&s.dpop_key)?;
    let pem = key.to_pem()?;
    let value = Zeroizing::new(
        serde_json::to_vec_pretty(&serde_json::json!({
            "accessToken": {
                "accessKeyId": s.access_key_id.expose_secret(),
                "secretAccessKey": s.secret_access_key.expose_secret(),
                "sessionToken": s.session_token.expose_secret(),
                "accountId": held.info.account_id,
                "expiresAt": held.info.expires.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            },
            "tokenType": "aws_sigv4",
            "clientId": held.info.client_id,
            "refreshToken": s.refresh_token.expose_secret(),
            "dpopKey": pem.as_str(),
        }))
        .expect("JSON serialises"),
    );
    crate::config::write_cli_cache_file(path, &value)
}

/// The session in the AWS CLI's file at `path`, with `held`'s metadata: `Ok(None)` when
/// there is no file.
pub(super) fn read(path: &Path, held: &ConsoleSignIn) -> Result<Option<ConsoleSignIn>, String> {
    let Some(bytes) = super::read_cache_file(path)? else {
        return Ok(None);
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("not JSON (line {})", e.line()))?;
    let access = &value["accessToken"];
    let missing = |name: &str| format!("it has no {name}");
    let pem = value["dpopKey"]
        .as_str()
        .ok_or_else(|| missing("dpopKey"))?;
    let key = DpopKey::from_pem(pem)?;
    let expires = access["expiresAt"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| missing("accessToken.expiresAt"))?;
    let mut info = held.info.clone();
    info.expires = expires;
    if let Some(client) = value["clientId"].as_str() {
        info.client_id = client.to_owned();
    }
    Ok(Some(ConsoleSignIn {
        info,
        secrets: ConsoleSecrets {
            refresh_token: secret_field(&value, "refreshToken")
                .ok_or_else(|| missing("refreshToken"))?,
            dpop_key: key.to_stored(),
            access_key_id: secret_field(access, "accessKeyId")
                .ok_or_else(|| missing("accessToken.accessKeyId"))?,
            secret_access_key: secret_field(access, "secretAccessKey")
                .ok_or_else(|| missing("accessToken.secretAccessKey"))?,
            session_token: secret_field(access, "sessionToken")
                .ok_or_else(|| missing("accessToken.sessionToken"))?,
        },
    }))
}
