//! One error type for every command: a kind, a message, hints ("what to type next") and the
//! error it came from. The kind alone decides the exit code, here and nowhere else. Every
//! error of the libraries becomes a message with its hints in this module and its children
//! (`store` for the vault's, `sts` for profiles, minting and SSO); none of them reads a
//! file or the environment.
//!
//! Exit codes are stable and documented in README.md: 0 success, 1 user, config or
//! environment error, 2 usage error (a flag or its value), 126 a program that cannot run,
//! 127 a program not found, 255 a bug in vault; `exec` otherwise passes the child's own code.

use std::fmt::Display;
use std::io::Write;

mod store;
mod sts;

pub use sts::{login_error_for, mint_error, profile_error, signin_error, sso_error};

use crate::settings::BadSetting;

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

impl From<BadSetting> for CommandError {
    fn from(e: BadSetting) -> Self {
        let hint = e.example;
        CommandError::from_error(Kind::Usage, e).hint(hint)
    }
}

impl From<vault_sts::config::ConfigError> for CommandError {
    fn from(e: vault_sts::config::ConfigError) -> Self {
        use vault_sts::config::ConfigError as E;
        let variable = e.file().map_or("AWS_CONFIG_FILE", |f| f.variable());
        let hint = match &e {
            E::Parse { .. } => format!("fix the file, or point {variable} at another one"),
            E::NoHome => "set HOME, or AWS_CONFIG_FILE to the config file's path".to_owned(),
            E::NotRegular { .. } | E::TooBig { .. } => {
                format!("point {variable} at the regular file you mean (nothing was changed)")
            }
            E::Read { .. } | E::Write { .. } => {
                format!("check the file's permissions, or set {variable}")
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
