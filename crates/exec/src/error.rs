//! One error type for every command: a kind, a message, hints ("what to type next") and the
//! error it came from. The kind alone decides the exit code, here and nowhere else.
//!
//! Exit codes are stable and documented in README.md: 0 success, 1 user, config or
//! environment error, 2 usage error (a flag or its value), 126 a program that cannot run,
//! 127 a program not found, 255 a bug in vault; `exec` otherwise passes the child's own code.

use std::fmt::Display;
use std::io::Write;

use vault_store::BackendKind;

/// What kind of mistake or failure; decides the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Something about the user's situation: a missing key, a refused call, the network.
    User,
    /// The AWS config file or a profile in it.
    Config,
    /// The command line itself.
    Usage,
    /// The program to run was not found.
    ChildNotFound,
    /// The program to run exists but cannot be run.
    ChildCannotRun,
    /// A bug in vault.
    Internal,
    /// stdout was closed by its reader (`vault list | head`): not an error; exit quietly,
    /// as ripgrep does.
    BrokenPipe,
}

impl Kind {
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::User | Kind::Config => 1,
            Kind::Usage => 2,
            Kind::ChildCannotRun => 126,
            Kind::ChildNotFound => 127,
            Kind::Internal => 255,
            Kind::BrokenPipe => 0,
        }
    }
}

#[derive(Debug)]
pub struct CommandError {
    pub kind: Kind,
    pub message: String,
    pub hints: Vec<String>,
    /// The underlying error, shown with its chain under `--debug`.
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

pub type CommandResult<T = ()> = Result<T, CommandError>;

impl CommandError {
    pub fn new(kind: Kind, message: impl Display) -> Self {
        CommandError {
            kind,
            message: message.to_string(),
            hints: Vec::new(),
            source: None,
        }
    }

    pub fn user(message: impl Display) -> Self {
        CommandError::new(Kind::User, message)
    }

    /// An error of `kind` whose message is `e`'s, keeping `e` as the source.
    pub fn from_error(kind: Kind, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        let mut error = CommandError::new(kind, &e);
        error.source = Some(Box::new(e));
        error
    }

    /// Keeps `e` as the cause (shown under `--debug`).
    pub fn with_source(mut self, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(e));
        self
    }

    pub fn hint(mut self, hint: impl Display) -> Self {
        self.hints.push(hint.to_string());
        self
    }

    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }

    /// Writing `what` to stdout failed.
    pub fn output(what: &str, e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::BrokenPipe => CommandError::new(Kind::BrokenPipe, "broken pipe"),
            _ => CommandError::user(format!("cannot write {what}: {e}")),
        }
    }

    /// The message and hints; under `--debug` also the chain of causes below the message.
    pub fn print(&self, debug: bool) {
        if self.kind == Kind::BrokenPipe {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "vault: error: {}", escaped(&self.message));
        for hint in &self.hints {
            let _ = writeln!(err, "hint: {}", escaped(hint));
        }
        if debug {
            let _ = writeln!(err, "debug: kind {:?}", self.kind);
            let mut cause = self.source.as_deref().and_then(std::error::Error::source);
            while let Some(c) = cause {
                let _ = writeln!(err, "debug: caused by: {}", escaped(&c.to_string()));
                cause = c.source();
            }
        }
    }
}

/// Messages carry values from the config file, the environment and the command line; a
/// control character among them could drive the terminal (escape sequences). Each one is
/// shown escaped (`\u{1b}`), wherever it sits in the message.
pub fn escaped(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect::<String>()
        .into()
}

impl From<vault_store::Error> for CommandError {
    fn from(e: vault_store::Error) -> Self {
        use vault_store::Error as E;
        let hints: Vec<String> = match &e {
            E::WrongPassphrase { .. } => vec![
                "type the passphrase you chose when the vault was created; if it comes from \
                 AWS_VAULT_FILE_PASSPHRASE, check that variable"
                    .into(),
            ],
            E::PassphraseUnavailable(_)
                if std::env::var_os(crate::context::PASSPHRASE_ENV)
                    .is_some_and(|v| v.is_empty()) =>
            {
                vec![format!(
                    "{} is set but empty: put the passphrase in it, or unset it to be asked on \
                     the terminal",
                    crate::context::PASSPHRASE_ENV
                )]
            }
            E::PassphraseUnavailable(_) if cfg!(target_os = "linux") => vec![
                "run `vault unlock` in a terminal first (it lasts 15 minutes of inactivity), or \
                 set AWS_VAULT_FILE_PASSPHRASE for scripts"
                    .into(),
            ],
            E::PassphraseUnavailable(_) => vec![
                "set AWS_VAULT_FILE_PASSPHRASE for scripts, or keep the vault key in the OS \
                 keyring: vault migrate-backend --to "
                    .to_owned()
                    + vault_store::BackendKind::platform_default()
                        .map_or("file", vault_store::BackendKind::name),
            ],
            E::UnlockUnavailable(_) => {
                let mut hints = vec![
                    "every command will ask for the passphrase; AWS_VAULT_FILE_PASSPHRASE serves \
                     scripts"
                        .to_owned(),
                ];
                if let Some(keyring) = vault_store::BackendKind::platform_default() {
                    hints.push(format!(
                        "or keep the vault key in the OS keyring, which needs no passphrase: \
                         vault migrate-backend --to {keyring}"
                    ));
                }
                hints
            }
            E::Damaged { path, .. } => {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                match name.as_deref() {
                    Some("sessions.json") => vec![format!(
                        "the session cache is disposable: delete {} and retry",
                        path.display()
                    )],
                    _ => vec![format!(
                        "vault has not changed {}; restore it from a backup, or move the vault \
                             directory aside and `vault add` your keys again",
                        path.display()
                    )],
                }
            }
            E::UnsupportedVersion { .. } => vec![
                "this file was written by a newer vault; upgrade vault (nothing was changed)"
                    .into(),
            ],
            E::BackendUnavailable { backend, .. } | E::Backend { backend, .. } => {
                backend_hints(*backend)
            }
            E::KeyMissing { dir, .. } => vec![format!(
                "without its key the vault cannot be opened; move {} aside and `vault add` your \
                 keys again",
                dir.display()
            )],
            E::BackendMismatch { actual, .. } => vec![format!(
                "drop --backend / AWS_VAULT_BACKEND (or set it to {actual}), or choose another \
                 vault with --file-dir"
            )],
            E::InvalidProfileName { .. } => vec![
                "profile names are single words such as `lab`, `prod-admin` or `team/lab` \
                 (letters, digits, _ - / . % @ : +, at most 128), as the AWS SDKs read them; \
                 nothing was written"
                    .into(),
            ],
            E::NotPrivate { fix, .. } => vec![match fix {
                Some(fix) => format!(
                    "if that is your vault, make it private: {fix}; else choose a directory of \
                     your own with --file-dir or AWS_VAULT_FILE_DIR (nothing was changed)"
                ),
                None => "choose a directory of your own with --file-dir or AWS_VAULT_FILE_DIR \
                         (nothing was changed)"
                    .into(),
            }],
            E::Io { path, source } => match source.kind() {
                std::io::ErrorKind::StorageFull => {
                    return CommandError::user(format!(
                        "no space left on device in {}",
                        path.display()
                    ))
                    .hint(
                        "free some space there, or choose another vault directory with --file-dir",
                    );
                }
                std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
                    vec![format!(
                        "vault needs to write in {}; check its permissions",
                        path.display()
                    )]
                }
                _ => Vec::new(),
            },
        };
        let mut error = CommandError::from_error(Kind::User, e);
        error.hints = hints;
        error
    }
}

fn backend_hints(backend: BackendKind) -> Vec<String> {
    match backend {
        BackendKind::SecretService => vec![
            "use `--backend file` (or AWS_VAULT_BACKEND=file) for a passphrase-protected vault, \
             or start a Secret Service such as gnome-keyring-daemon on this session bus"
                .into(),
        ],
        BackendKind::KeyCtl => {
            vec!["the kernel keyring may be blocked in this container; use `--backend file`".into()]
        }
        _ => vec!["use `--backend file` for a passphrase-protected vault".into()],
    }
}

impl From<vault_sts::config::ConfigError> for CommandError {
    fn from(e: vault_sts::config::ConfigError) -> Self {
        use vault_sts::config::ConfigError as E;
        let hint = match &e {
            E::Parse { .. } => "fix the file, or point AWS_CONFIG_FILE at another one",
            E::NoHome => "set HOME, or AWS_CONFIG_FILE to the config file's path",
            E::Read { .. } | E::Write { .. } => {
                "check the file's permissions, or set AWS_CONFIG_FILE"
            }
        };
        CommandError::from_error(Kind::Config, e).hint(hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escaped("plain"), "plain");
        assert_eq!(escaped("a\u{1b}[2Jb\n"), "a\\u{1b}[2Jb\\n");
    }
}
