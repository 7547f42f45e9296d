//! What can go wrong in the store, worded for the person who has to fix it.
//!
//! The binary adds the "what to type next" hints; these messages say what failed and where.

use std::io;
use std::path::PathBuf;

use crate::names::BackendKind;

/// Why a [`crate::PassphraseSource`] gave no passphrase.
#[derive(Debug, thiserror::Error)]
pub enum PassphraseError {
    /// The variable that hands the passphrase to scripts is set, but empty.
    #[error("{variable} is set but empty")]
    EmptyVariable { variable: &'static str },
    /// Nobody can be asked (no terminal, no prompt); the message says what was looked for.
    #[error("{0}")]
    NoOneToAsk(String),
    /// The question was asked but no answer came (a terminal error, a cancelled dialog).
    #[error("{0}")]
    NotAnswered(String),
    /// A new passphrase was empty.
    #[error("the passphrase must not be empty")]
    Empty,
    /// The two entries of a new passphrase differ.
    #[error("the two passphrases differ; nothing was created")]
    Mismatch,
}

/// Everything the store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The passphrase did not open the vault key.
    #[error("wrong passphrase for the vault in {dir}")]
    WrongPassphrase { dir: PathBuf },

    /// The caller's passphrase source could not produce one (no terminal, empty input...).
    #[error("{0}")]
    PassphraseUnavailable(#[from] PassphraseError),

    /// A file failed its checksum, could not be parsed, or an entry does not decrypt.
    #[error("{path} is damaged: {reason}")]
    Damaged { path: PathBuf, reason: String },

    /// A file written by a newer release; never overwritten by this one.
    #[error(
        "{path} has format version {found}, but this build of vault reads only up to version {supported}"
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// The OS keyring asked for is not reachable from here.
    #[error("the {backend} backend is not available: {reason}")]
    BackendUnavailable {
        backend: BackendKind,
        reason: String,
    },

    /// The OS keyring answered with an error.
    #[error("the {backend} backend failed: {reason}")]
    Backend {
        backend: BackendKind,
        reason: String,
    },

    /// The vault's metadata names a keyring entry that is not there (deleted, or another login).
    #[error("the vault key of {dir} is missing from the {backend} backend")]
    KeyMissing { dir: PathBuf, backend: BackendKind },

    /// The store was created with one backend and another was asked for.
    #[error("the vault in {dir} keeps its key in the {actual} backend, not in {requested}")]
    BackendMismatch {
        dir: PathBuf,
        actual: BackendKind,
        requested: BackendKind,
    },

    /// Unlock-once is not available on this system.
    #[error("cannot keep the vault unlocked: {0}")]
    UnlockUnavailable(String),

    /// A profile name that cannot be stored (empty, control characters, too long).
    #[error("invalid profile name {name:?}: {reason}")]
    InvalidProfileName { name: String, reason: &'static str },

    /// A container client's name that cannot be one (it names a directory too).
    #[error("invalid container client name {name:?}: {reason}")]
    InvalidClientName { name: String, reason: &'static str },

    /// `vault container add` of a name the registry has already.
    #[error("a container client named {name:?} exists already")]
    ClientExists { name: String },

    /// A container client the registry does not have.
    #[error("no container client named {name:?}")]
    NoSuchClient { name: String },

    /// A file vault would replace is not a regular file (a device, a FIFO, a directory).
    #[error("{path} is {what}, not a regular file; vault replaces only regular files")]
    NotRegular { path: PathBuf, what: &'static str },

    /// The vault directory or one of its files can be read or changed by others: vault will
    /// not use it (someone could plant sessions or read what is kept there).
    #[error("{path} is not private: {reason}")]
    NotPrivate {
        path: PathBuf,
        reason: String,
        /// What to type to make it private, when there is such a command.
        fix: Option<String>,
    },

    /// Reading or writing a file of the store failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The file this error is about is only a cache (the session cache): deleting it loses
    /// nothing but minted sessions.
    pub fn about_cache(&self) -> bool {
        let path = match self {
            Error::Damaged { path, .. }
            | Error::UnsupportedVersion { path, .. }
            | Error::Io { path, .. } => path,
            _ => return false,
        };
        path.file_name()
            .is_some_and(|n| n == crate::names::SESSIONS_FILE)
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn damaged(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Damaged {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
