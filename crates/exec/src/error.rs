//! One error type for every command: a message, hints ("what to type next") and an exit code.
//!
//! Exit codes are stable: 0 success, 1 user/config/environment error, 2 usage error, 127
//! command not found (exec), otherwise the child's own code.

use std::fmt::Display;
use std::io::Write;

use vault_store::BackendKind;

pub const EXIT_USER: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug)]
pub struct CommandError {
    pub code: u8,
    pub message: String,
    pub hints: Vec<String>,
}

pub type CommandResult<T = ()> = Result<T, CommandError>;

impl CommandError {
    pub fn user(message: impl Display) -> Self {
        CommandError {
            code: EXIT_USER,
            message: message.to_string(),
            hints: Vec::new(),
        }
    }

    pub fn usage(message: impl Display) -> Self {
        CommandError {
            code: EXIT_USAGE,
            ..CommandError::user(message)
        }
    }

    pub fn hint(mut self, hint: impl Display) -> Self {
        self.hints.push(hint.to_string());
        self
    }

    pub fn print(&self) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "vault: error: {}", self.message);
        for hint in &self.hints {
            let _ = writeln!(err, "hint: {hint}");
        }
    }
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
            E::PassphraseUnavailable(_) => vec![
                "run `vault unlock` in a terminal first (it lasts 15 minutes of inactivity), or \
                 set AWS_VAULT_FILE_PASSPHRASE for scripts"
                    .into(),
            ],
            E::UnlockUnavailable(_) => vec![
                "every command will ask for the passphrase; AWS_VAULT_FILE_PASSPHRASE serves \
                 scripts, and the OS keyring backends need no passphrase"
                    .into(),
            ],
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
                "profile names are single words such as `lab` or `prod-admin`, as in \
                 `[profile lab]` of ~/.aws/config"
                    .into(),
            ],
            E::Io { .. } => Vec::new(),
        };
        CommandError {
            code: EXIT_USER,
            message: e.to_string(),
            hints,
        }
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
        CommandError::user(e).hint(hint)
    }
}
