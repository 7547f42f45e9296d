//! What every command needs, resolved once from flags and environment: where the vault and
//! the config file are, which backend, and how to get the passphrase.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use vault_store::{BackendChoice, PassphraseSource, Vault};
use vault_sts::config::{self, ConfigFile};
use vault_sts::duration;

use crate::cli::{Cli, Unset};
use crate::error::{CommandError, CommandResult};
use crate::prompt;

/// The environment variable scripts use to hand over the passphrase of a `file` vault.
pub const PASSPHRASE_ENV: &str = "AWS_VAULT_FILE_PASSPHRASE";
pub const UNLOCK_TIMEOUT_ENV: &str = "AWS_VAULT_UNLOCK_TIMEOUT";
const DEFAULT_UNLOCK_TIMEOUT: Duration = Duration::from_secs(15 * 60);

#[derive(Debug)]
pub struct Context {
    pub vault_dir: PathBuf,
    pub backend: BackendChoice,
    pub config_path: PathBuf,
    /// `--prompt` / `AWS_VAULT_PROMPT`.
    pub prompt: Option<prompt::PromptKind>,
}

impl Context {
    pub fn from_cli(cli: &Cli) -> CommandResult<Context> {
        // clap has read --backend / AWS_VAULT_BACKEND and --file-dir / AWS_VAULT_FILE_DIR.
        let backend = match Unset::get(&cli.backend) {
            Some(kind) => BackendChoice::Explicit(*kind),
            None => BackendChoice::Default,
        };
        let vault_dir = match Unset::get(&cli.file_dir) {
            Some(dir) => dir.clone(),
            None => Vault::default_dir().ok_or_else(|| {
                CommandError::user("cannot tell where the vault lives: no home directory")
                    .hint("pass --file-dir DIR or set AWS_VAULT_FILE_DIR")
            })?,
        };
        let config_path = config::config_path(non_empty_env("AWS_CONFIG_FILE").as_deref())?;
        Ok(Context {
            vault_dir,
            backend,
            config_path,
            prompt: Unset::get(&cli.prompt).copied(),
        })
    }

    /// The vault with whatever backend it records (`--backend` not enforced).
    pub fn open_vault_as_found(&self) -> CommandResult<Vault> {
        Context {
            vault_dir: self.vault_dir.clone(),
            backend: BackendChoice::Default,
            config_path: self.config_path.clone(),
            prompt: self.prompt,
        }
        .open_vault()
    }

    pub fn open_vault(&self) -> CommandResult<Vault> {
        tracing::debug!(dir = %self.vault_dir.display(), backend = ?self.backend, "opening vault");
        let passphrase = Passphrase::from_env(self.prompt);
        let from_env = passphrase.from_env.is_some();
        let idle = unlock_timeout()?;
        let mut vault = Vault::open(&self.vault_dir, self.backend, Box::new(passphrase))?;
        let file = vault
            .backend()
            .is_none_or(|b| b == vault_store::BackendKind::File);
        // A passphrase typed at the terminal unlocks a file vault for a while; one passed by
        // a script in AWS_VAULT_FILE_PASSPHRASE does not (scripts keep their behaviour), but
        // keeps the vault key sealed under itself, so scripts pay scrypt once, not per
        // command (docs/backends.md). The Secret Service's key is kept either way.
        vault.remember_unlock(if from_env && file { None } else { idle });
        vault.remember_wrapped(if from_env { idle } else { None });
        Ok(vault)
    }
}

/// How long an unlocked `file` vault stays unlocked without use: `AWS_VAULT_UNLOCK_TIMEOUT`
/// (`0` turns unlocking off), default 15 minutes.
pub fn unlock_timeout() -> CommandResult<Option<Duration>> {
    match non_empty_env(UNLOCK_TIMEOUT_ENV) {
        None => Ok(Some(DEFAULT_UNLOCK_TIMEOUT)),
        Some(text) => {
            let d = duration::parse(&text).map_err(|e| {
                CommandError::user(format!("{UNLOCK_TIMEOUT_ENV}: {e}"))
                    .hint("durations look like 15m, 1h or 900s; 0 turns unlocking off")
            })?;
            Ok((!d.is_zero()).then_some(d))
        }
    }
}

impl Context {
    pub fn load_config(&self) -> CommandResult<ConfigFile> {
        Ok(ConfigFile::load(&self.config_path)?)
    }

    /// The config file as far as `profile` needs it (see [`ConfigFile::load_for`]).
    pub fn load_config_for(&self, profile: &str) -> CommandResult<ConfigFile> {
        Ok(ConfigFile::load_for(&self.config_path, profile)?)
    }
}

pub fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The passphrase of a `file` vault: `AWS_VAULT_FILE_PASSPHRASE`, else asked on the terminal.
pub struct Passphrase {
    from_env: Option<SecretString>,
    prompt: Option<prompt::PromptKind>,
}

impl Passphrase {
    pub fn from_env(prompt: Option<prompt::PromptKind>) -> Self {
        Passphrase {
            from_env: std::env::var(PASSPHRASE_ENV).ok().map(SecretString::from),
            prompt,
        }
    }
}

impl PassphraseSource for Passphrase {
    fn notice(&self, text: &str) {
        eprintln!("vault: {}", crate::error::escaped(text));
    }

    fn environment_passphrase(&self) -> Option<SecretString> {
        self.from_env
            .clone()
            .filter(|p| !p.expose_secret().is_empty())
    }

    fn passphrase(&self, dir: &Path, creating: bool) -> Result<SecretString, String> {
        if let Some(p) = &self.from_env {
            if p.expose_secret().is_empty() {
                return Err(format!("{PASSPHRASE_ENV} is set but empty"));
            }
            return Ok(p.clone());
        }
        let no_terminal = || {
            format!(
                "the vault in {} needs its passphrase, but there is no terminal or GUI prompt \
                 to ask on (--prompt, AWS_VAULT_PROMPT) and {PASSPHRASE_ENV} is not set",
                dir.display()
            )
        };
        let kind = prompt::resolve(self.prompt);
        let ask = |text: &str| -> Result<SecretString, String> {
            match kind {
                None => Err(no_terminal()),
                Some(prompt::PromptKind::Terminal) => prompt::ask_hidden(text)
                    .map_err(|e| format!("cannot read the passphrase from the terminal: {e}"))?
                    .ok_or_else(no_terminal),
                Some(prompt::PromptKind::Ykman) => Err(
                    "AWS_VAULT_PROMPT=ykman gives MFA codes, not the vault's passphrase; set --prompt for the passphrase or AWS_VAULT_FILE_PASSPHRASE".to_owned(),
                ),
                Some(gui) => prompt::ask_gui(
                    gui,
                    &prompt::Question {
                        text: text.trim_end_matches([' ', ':']),
                        hidden: true,
                    },
                ),
            }
        };
        if !creating {
            return ask(&format!("Passphrase for the vault in {}: ", dir.display()));
        }
        let first = ask(&format!(
            "Choose a passphrase for the new vault in {}: ",
            dir.display()
        ))?;
        if first.expose_secret().is_empty() {
            return Err("the passphrase must not be empty".into());
        }
        let second = ask("Type it again: ")?;
        if first.expose_secret() != second.expose_secret() {
            return Err("the two passphrases differ; nothing was created".into());
        }
        Ok(first)
    }
}
