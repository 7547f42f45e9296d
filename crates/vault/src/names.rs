//! What the backends and their entries are called: aws-vault's backend names
//! ([`BackendKind`]) and the service name a vault key is kept under in an OS keyring.
//!
//! A leaf of its own because the error type, the keyring code and the Secret Service client
//! all name these: kept in `backend`, each would import a module that imports it back.

use std::fmt;
use std::str::FromStr;

/// The backends, under aws-vault's names so `AWS_VAULT_BACKEND` values carry over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// freedesktop Secret Service over D-Bus (gnome-keyring, KWallet): Linux and BSD.
    SecretService,
    /// The macOS login keychain.
    Keychain,
    /// Windows Credential Manager.
    WinCred,
    /// The Linux kernel key retention service (lost at reboot).
    KeyCtl,
    /// A file in the store directory, encrypted with a passphrase (age scrypt).
    File,
}

impl BackendKind {
    pub const ALL: [BackendKind; 5] = [
        BackendKind::SecretService,
        BackendKind::Keychain,
        BackendKind::WinCred,
        BackendKind::KeyCtl,
        BackendKind::File,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::SecretService => "secret-service",
            BackendKind::Keychain => "keychain",
            BackendKind::WinCred => "wincred",
            BackendKind::KeyCtl => "keyctl",
            BackendKind::File => "file",
        }
    }

    /// Whether this build can use the backend at all (compiled for this platform).
    pub fn is_supported(self) -> bool {
        match self {
            BackendKind::SecretService => cfg!(any(
                target_os = "linux",
                target_os = "freebsd",
                target_os = "openbsd"
            )),
            BackendKind::Keychain => cfg!(target_os = "macos"),
            BackendKind::WinCred => cfg!(windows),
            BackendKind::KeyCtl => cfg!(target_os = "linux"),
            BackendKind::File => true,
        }
    }

    /// The OS keyring a new vault uses by default on this platform.
    pub fn platform_default() -> Option<BackendKind> {
        if cfg!(target_os = "macos") {
            Some(BackendKind::Keychain)
        } else if cfg!(windows) {
            Some(BackendKind::WinCred)
        } else if BackendKind::SecretService.is_supported() {
            Some(BackendKind::SecretService)
        } else {
            None
        }
    }

    /// The names this build accepts, for error messages.
    pub fn supported_names() -> Vec<&'static str> {
        Self::ALL
            .iter()
            .filter(|b| b.is_supported())
            .map(|b| b.name())
            .collect()
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name given is not one of the backends.
#[derive(Debug, thiserror::Error)]
#[error("unknown backend {0:?} (one of: secret-service, keychain, wincred, keyctl, file)")]
pub struct UnknownBackend(pub String);

impl FromStr for BackendKind {
    type Err = UnknownBackend;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BackendKind::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| UnknownBackend(s.to_owned()))
    }
}

/// The keyring service name under which vault keys are kept; the entry's user is the vault id.
pub(crate) const KEYRING_SERVICE: &str = "vault";

/// The session cache's file in the vault directory; an error about it is about a cache.
pub(crate) const SESSIONS_FILE: &str = "sessions.json";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in BackendKind::ALL {
            assert_eq!(kind.name().parse::<BackendKind>().unwrap(), kind);
        }
        assert!("pass".parse::<BackendKind>().is_err());
    }
}
