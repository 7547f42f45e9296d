//! The vault store's errors as messages: what to type next for each.

use vault_store::{BackendKind, PassphraseError};

use super::{CommandError, Kind};

impl From<vault_store::Error> for CommandError {
    fn from(e: vault_store::Error) -> Self {
        use vault_store::Error as E;
        let hints: Vec<String> = match &e {
            E::WrongPassphrase { .. } => vec![
                "type the passphrase you chose when the vault was created; if it comes from \
                 AWS_VAULT_FILE_PASSPHRASE, check that variable"
                    .into(),
            ],
            E::PassphraseUnavailable(PassphraseError::EmptyVariable { variable }) => {
                vec![format!(
                    "{variable} is set but empty: put the passphrase in it, or unset it to be asked \
                     on the terminal"
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
            E::Damaged { path, .. } => match e.about_cache() {
                true => vec![format!(
                    "the session cache is disposable: delete {} and retry",
                    path.display()
                )],
                false => vec![format!(
                    "vault has not changed {}; restore it from a backup, or move the vault \
                             directory aside and `vault add` your keys again",
                    path.display()
                )],
            },
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
            E::InvalidClientName { .. } => vec![
                "client names are single words such as `api` or `worker-2` (letters, digits, \
                 _ - ., at most 64); nothing was written"
                    .into(),
            ],
            E::ClientExists { name } => vec![format!(
                "`vault container rotate {name}` gives it a new token; `vault container remove \
                 {name}` first to bind the name to another profile"
            )],
            E::NoSuchClient { .. } => {
                vec!["`vault container list` shows the registered clients".into()]
            }
            E::InvalidProfileName { .. } => vec![
                "profile names are single words such as `lab`, `prod-admin` or `team/lab` \
                 (letters, digits, _ - / . % @ : +, at most 128), as the AWS SDKs read them; \
                 nothing was written"
                    .into(),
            ],
            E::NotRegular { .. } => vec![
                "point the variable that names this file at a regular file (nothing was changed)"
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
