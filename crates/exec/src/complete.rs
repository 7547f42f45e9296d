//! Shell completion through clap_complete's dynamic engine: the shell asks the binary itself
//! (`VAULT_COMPLETE=bash vault -- vault exec l`), so profile names are read when you press
//! Tab and a new profile completes without regenerating anything. Completing reads only
//! plaintext names (the config file, the vault's list of stored keys): it never asks for a
//! passphrase, opens a keyring or touches the network.

use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};
use vault_store::{BackendChoice, PassphraseError, PassphraseSource, SecretString, Vault};
use vault_sts::config::ConfigFile;

use crate::settings::{self, Settings};

/// The variable the registration scripts set when they ask for completions.
pub const COMPLETE_ENV: &str = "VAULT_COMPLETE";

/// Profile names: the config file's and the vault's stored keys.
pub fn profiles() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        let mut names = config().map(|c| c.profile_names()).unwrap_or_default();
        names.extend(stored_profiles());
        names.sort();
        names.dedup();
        names.into_iter().map(CompletionCandidate::new).collect()
    })
}

/// sso-session names.
pub fn sso_sessions() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        config()
            .map(|c| c.sso_session_names())
            .unwrap_or_default()
            .into_iter()
            .map(CompletionCandidate::new)
            .collect()
    })
}

/// sso-session names and the profiles that sign in through one.
pub fn sign_ins() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        let Some(config) = config() else {
            return Vec::new();
        };
        let mut names = config.sso_session_names();
        names.extend(config.profile_names().into_iter().filter(|p| {
            config.get(p, "sso_session").is_some() || config.get(p, "sso_start_url").is_some()
        }));
        names.into_iter().map(CompletionCandidate::new).collect()
    })
}

/// The backends this platform has.
pub fn backends() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        vault_store::BackendKind::supported_names()
            .into_iter()
            .map(CompletionCandidate::new)
            .collect()
    })
}

/// The environment as every command reads it; a bad value completes nothing (the command
/// would refuse it too).
fn settings() -> Option<Settings> {
    Settings::from_env().ok()
}

fn config() -> Option<ConfigFile> {
    let path = settings()?.config_path().ok()?;
    ConfigFile::load(&path).ok()
}

/// Never asked: listing needs no passphrase.
struct NoPassphrase;

impl PassphraseSource for NoPassphrase {
    fn passphrase(&self, _: &std::path::Path, _: bool) -> Result<SecretString, PassphraseError> {
        Err(PassphraseError::NoOneToAsk(
            "completion never asks for a passphrase".into(),
        ))
    }
}

fn stored_profiles() -> Vec<String> {
    let Some(dir) = settings().and_then(|s| settings::vault_dir(s.file_dir)) else {
        return Vec::new();
    };
    Vault::open(dir, BackendChoice::Default, Box::new(NoPassphrase))
        .and_then(|v| v.credential_profiles())
        .map(|c| c.into_iter().map(|c| c.profile).collect())
        .unwrap_or_default()
}
