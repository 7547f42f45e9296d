//! The store's behaviour through `Vault`'s own API: round trips, what a wrong passphrase or a
//! damaged file does, and the fuzz targets of the vault's files.

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;

use age::secrecy::{ExposeSecret, SecretString};
use chrono::Utc;

use super::sessions::SessionInfo;
use super::{
    BackendChoice, CREDENTIALS_FILE, PassphraseSource, SESSIONS_FILE, Vault, validate_profile_name,
};
use crate::error::{Error, Result};
use crate::names::BackendKind;
use crate::secret::Credentials;

struct Fixed(&'static str, Rc<Cell<u32>>);
impl PassphraseSource for Fixed {
    fn passphrase(&self, _: &Path, _: bool) -> Result<SecretString, crate::PassphraseError> {
        self.1.set(self.1.get() + 1);
        Ok(SecretString::from(self.0))
    }
}

fn open(dir: &Path, pass: &'static str) -> (Vault, Rc<Cell<u32>>) {
    let asked = Rc::new(Cell::new(0));
    let vault = Vault::open(
        dir,
        BackendChoice::Explicit(BackendKind::File),
        Box::new(Fixed(pass, asked.clone())),
    )
    .unwrap();
    (vault, asked)
}

fn key(id: &str) -> Credentials {
    Credentials::long_lived(id.into(), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into())
}

/// A new `file` vault (passphrase "pw") holding a key pair for `profile`.
fn with_key(profile: &str) -> (tempfile::TempDir, Vault) {
    let dir = tempfile::tempdir().unwrap();
    let (mut vault, _) = open(dir.path(), "pw");
    vault
        .store_credentials(profile, &key("AKIAIOSFODNN7EXAMPLE"))
        .unwrap();
    (dir, vault)
}

fn session_credentials() -> Credentials {
    let mut session = key("ASIAIOSFODNN7EXAMPLE");
    session.session_token = Some("tok".into());
    session
}

#[test]
fn file_backend_round_trip_and_wrong_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let (mut vault, asked) = open(dir.path(), "correct horse");
    vault
        .store_credentials("lab", &key("AKIAIOSFODNN7EXAMPLE"))
        .unwrap();
    assert_eq!(asked.get(), 1, "asked once, when creating");

    let (vault, asked) = open(dir.path(), "correct horse");
    assert_eq!(vault.credential_profiles().unwrap()[0].profile, "lab");
    assert_eq!(asked.get(), 0, "listing needs no passphrase");
    let creds = vault.credentials("lab").unwrap().unwrap();
    assert_eq!(creds.access_key_id.expose_secret(), "AKIAIOSFODNN7EXAMPLE");
    vault.credentials("lab").unwrap();
    assert_eq!(asked.get(), 1, "asked at most once per process");

    let (vault, _) = open(dir.path(), "wrong");
    let err = vault.credentials("lab").unwrap_err();
    assert!(matches!(err, Error::WrongPassphrase { .. }), "{err:?}");

    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        // locks/ holds empty lock files.
        if path.is_dir() {
            continue;
        }
        let bytes = std::fs::read(path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("AKIAIOSFODNN7EXAMPLE"));
        assert!(!text.contains("EXAMPLEKEY"));
    }
}

#[test]
fn sessions_are_dropped_with_their_key_and_expire() {
    let (_dir, vault) = with_key("base");
    let session = session_credentials();
    let info = |k: &str, profile: &str, mins: i64| SessionInfo {
        key: k.to_owned(),
        profile: profile.to_owned(),
        source_profile: "base".to_owned(),
        description: "AssumeRole".to_owned(),
        account_id: None,
        expires: Utc::now() + chrono::Duration::minutes(mins),
    };
    vault
        .store_session(&info("k1", "lab", 60), &session)
        .unwrap();
    vault
        .store_session(&info("k2", "prod", 60), &session)
        .unwrap();
    vault
        .store_session(&info("k3", "old", -1), &session)
        .unwrap();
    let listed = vault.sessions().unwrap().sessions;
    assert_eq!(listed.len(), 2);
    let back = vault.session("k1").unwrap().unwrap();
    assert_eq!(
        back.credentials.session_token.unwrap().expose_secret(),
        "tok"
    );
    assert!(vault.session("k3").unwrap().is_none());

    assert_eq!(vault.remove_sessions(|s| s.profile == "lab").unwrap(), 1);
    assert!(vault.remove_credentials("base").unwrap());
    assert!(vault.sessions().unwrap().sessions.is_empty());
}

#[test]
fn damaged_session_file_is_discarded_not_fatal() {
    let (dir, vault) = with_key("base");
    std::fs::write(dir.path().join(SESSIONS_FILE), b"garbage").unwrap();
    let list = vault.sessions().unwrap();
    assert!(list.sessions.is_empty());
    assert!(list.discarded.is_some());
    assert!(vault.credentials("base").unwrap().is_some());
}

#[test]
fn profile_names_are_checked() {
    let long = "x".repeat(10_000);
    for bad in [
        "",
        "a b",
        "a\nb",
        "[x]",
        "a;b",
        "a#b",
        "a]b",
        "a\u{1b}[2Jb",
        &long,
    ] {
        assert!(validate_profile_name(bad).is_err(), "{bad:?}");
    }
    let shown = validate_profile_name(&long).unwrap_err().to_string();
    assert!(shown.len() < 200, "{shown}");
    validate_profile_name("team/lab-1.admin@x").unwrap();
}

/// Fuzz targets (see `vault_fuzz`): whatever bytes sit in credentials.json or
/// sessions.json (the framing, the JSON, the age payloads), reading the vault answers
/// with data or an error, never a panic, and a damaged credentials file is never
/// rewritten.
#[test]
fn fuzz_vault_files() {
    let (dir, vault) = with_key("lab");
    let session = session_credentials();
    let info = SessionInfo {
        key: "k".to_owned(),
        profile: "lab".to_owned(),
        source_profile: "lab".to_owned(),
        description: "AssumeRole".to_owned(),
        account_id: Some("123456789012".to_owned()),
        expires: Utc::now() + chrono::Duration::minutes(30),
    };
    vault.store_session(&info, &session).unwrap();
    for (target, file) in [
        ("vault_credentials_file", CREDENTIALS_FILE),
        ("vault_sessions_file", SESSIONS_FILE),
    ] {
        let path = dir.path().join(file);
        let seed = std::fs::read(&path).unwrap();
        let tokens: &[&[u8]] = &[
            b"\"sha256\":\"",
            b"\"version\":2",
            b"age-encryption.org/v1",
            b"\"entries\":{",
            b"\"expires\":\"2999-01-01T00:00:00Z\"",
            b"YWdl",
            b"\n",
        ];
        vault_fuzz::fuzz(target, &[&seed], tokens, |input| {
            std::fs::write(&path, input).unwrap();
            let _ = vault.credential_profiles();
            let _ = vault.credentials("lab");
            let _ = vault.sessions();
            let _ = vault.session("k");
            if file == CREDENTIALS_FILE && vault.credential_profiles().is_err() {
                // A damaged credentials file is refused, and stays as it was.
                let _ = vault.remove_credentials("lab");
                assert_eq!(std::fs::read(&path).unwrap(), input);
            }
        });
        std::fs::write(&path, &seed).unwrap();
    }
}
