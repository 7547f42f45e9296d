//! What every command needs, resolved once from flags and the [`Settings`]: where the vault
//! and the config file are, which backend, how to get the passphrase, and how to reach AWS.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use vault_store::{BackendChoice, PassphraseError, PassphraseSource, Vault};
use vault_sts::aws::{Aws, AwsSettings};
use vault_sts::config::ConfigFile;
use vault_sts::endpoints::Endpoints;

use crate::cli::{Cli, PromptKind, Unset};
use crate::error::{CommandError, CommandResult};
use crate::prompt::{self, Prompts};
use crate::settings::{self, FILE_PASSPHRASE, Settings};

/// The region of AWS calls when neither the profile nor the environment names one.
const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug)]
pub struct Context {
    pub vault_dir: PathBuf,
    pub backend: BackendChoice,
    pub config_path: PathBuf,
    /// `--prompt` / `AWS_VAULT_PROMPT`.
    pub prompt: Option<PromptKind>,
    pub settings: Settings,
}

impl Context {
    pub fn from_cli(cli: &Cli, settings: Settings) -> CommandResult<Context> {
        // clap has read --backend / AWS_VAULT_BACKEND and --file-dir / AWS_VAULT_FILE_DIR.
        let backend = match Unset::get(&cli.backend) {
            Some(kind) => BackendChoice::Explicit(*kind),
            None => BackendChoice::Default,
        };
        let vault_dir =
            settings::vault_dir(Unset::get(&cli.file_dir).cloned()).ok_or_else(|| {
                CommandError::user("cannot tell where the vault lives: no home directory")
                    .hint("pass --file-dir DIR or set AWS_VAULT_FILE_DIR")
            })?;
        Ok(Context {
            vault_dir,
            backend,
            config_path: settings.config_path()?,
            prompt: Unset::get(&cli.prompt).copied(),
            settings,
        })
    }

    /// The vault with whatever backend it records (`--backend` not enforced).
    pub fn open_vault_as_found(&self) -> CommandResult<Vault> {
        self.open_vault_with(BackendChoice::Default)
    }

    pub fn open_vault(&self) -> CommandResult<Vault> {
        self.open_vault_with(self.backend)
    }

    fn open_vault_with(&self, backend: BackendChoice) -> CommandResult<Vault> {
        tracing::debug!(dir = %self.vault_dir.display(), backend = ?backend, "opening vault");
        let passphrase = Passphrase::new(&self.settings, self.prompts());
        let from_env = passphrase.from_env.is_some();
        let idle = self.settings.unlock_timeout;
        let mut vault = Vault::open(&self.vault_dir, backend, Box::new(passphrase))?;
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

    /// How to ask the person, for this command.
    pub fn prompts(&self) -> Prompts {
        Prompts::new(self.prompt, &self.settings)
    }

    pub fn load_config(&self) -> CommandResult<ConfigFile> {
        Ok(ConfigFile::load(&self.config_path)?)
    }

    /// The config file as far as `profile` needs it (see [`ConfigFile::load_for`]).
    pub fn load_config_for(&self, profile: &str) -> CommandResult<ConfigFile> {
        Ok(ConfigFile::load_for(&self.config_path, profile)?)
    }

    /// The endpoints `profile` uses: the environment's, then the config file's.
    pub fn endpoints(&self, config: &ConfigFile, profile: &str) -> Endpoints {
        Endpoints::from_env(config, profile, |n| self.settings.aws_var(n))
    }

    /// The AWS side for `profile`: its endpoints, the timeouts, and `region`, else the
    /// environment's region, else the profile's, else us-east-1. Status lines go to stderr.
    pub fn aws(&self, config: &ConfigFile, profile: &str, region: Option<String>) -> Aws {
        let region = region
            .or_else(|| self.settings.region())
            .or_else(|| config.get(profile, "region").map(|(r, _)| r.to_owned()))
            .unwrap_or_else(|| DEFAULT_REGION.to_owned());
        Aws::new(AwsSettings {
            endpoints: self.endpoints(config, profile),
            profile: profile.to_owned(),
            region,
            timeouts: self.settings.timeouts,
        })
        .telling(Arc::new(prompt::Notices))
    }
}

/// The passphrase of a `file` vault: `AWS_VAULT_FILE_PASSPHRASE`, else asked on the terminal.
pub struct Passphrase {
    from_env: Option<SecretString>,
    prompts: Prompts,
}

impl Passphrase {
    pub fn new(settings: &Settings, prompts: Prompts) -> Self {
        Passphrase {
            from_env: settings.passphrase.clone(),
            prompts,
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

    fn passphrase(&self, dir: &Path, creating: bool) -> Result<SecretString, PassphraseError> {
        if let Some(p) = &self.from_env {
            if p.expose_secret().is_empty() {
                return Err(PassphraseError::EmptyVariable {
                    variable: FILE_PASSPHRASE,
                });
            }
            return Ok(p.clone());
        }
        let no_terminal = || {
            PassphraseError::NoOneToAsk(format!(
                "the vault in {} needs its passphrase, but there is no terminal or GUI prompt \
                 to ask on (--prompt, AWS_VAULT_PROMPT) and {FILE_PASSPHRASE} is not set",
                dir.display()
            ))
        };
        let kind = self.prompts.resolve();
        let ask = |text: &str| -> Result<SecretString, PassphraseError> {
            match kind {
                None => Err(no_terminal()),
                Some(PromptKind::Terminal) => prompt::ask_hidden(text)
                    .map_err(|e| {
                        PassphraseError::NotAnswered(format!(
                            "cannot read the passphrase from the terminal: {e}"
                        ))
                    })?
                    .ok_or_else(no_terminal),
                Some(PromptKind::Ykman) => Err(PassphraseError::NoOneToAsk(
                    "AWS_VAULT_PROMPT=ykman gives MFA codes, not the vault's passphrase; set --prompt for the passphrase or AWS_VAULT_FILE_PASSPHRASE".to_owned(),
                )),
                Some(gui) => self
                    .prompts
                    .ask_gui(
                        gui,
                        &prompt::Question {
                            text: text.trim_end_matches([' ', ':']),
                            hidden: true,
                        },
                    )
                    .map_err(|e| PassphraseError::NotAnswered(e.to_string())),
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
            return Err(PassphraseError::Empty);
        }
        let second = ask("Type it again: ")?;
        if first.expose_secret() != second.expose_secret() {
            return Err(PassphraseError::Mismatch);
        }
        Ok(first)
    }
}
