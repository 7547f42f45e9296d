//! Where a value came from (file:line, environment variable, flag, default): every layer
//! carries it with the value, so messages and `--explain` can say which line to change.

use std::fmt;
use std::path::PathBuf;

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A key in the config file (line when known).
    Config {
        path: PathBuf,
        line: Option<usize>,
        profile: String,
    },
    /// An environment variable.
    Env(&'static str),
    /// A command-line flag.
    Flag(&'static str),
    /// vault's default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Config {
                path,
                line: Some(line),
                ..
            } => write!(f, "{}:{line}", path.display()),
            Origin::Config { path, .. } => write!(f, "{}", path.display()),
            Origin::Env(name) => write!(f, "${name}"),
            Origin::Flag(name) => write!(f, "{name}"),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// A value and its origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub origin: Origin,
}

impl<T> Sourced<T> {
    pub fn new(value: T, origin: Origin) -> Self {
        Sourced { value, origin }
    }
}
