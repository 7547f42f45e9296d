//! The AWS config file: located, read and parsed exactly as the SDKs do it.
//!
//! Parsing is delegated to aws-config's own parser so keys, case rules, sub-properties and
//! `[sso-session]`/`[services]` sections mean what they mean to the AWS CLI. We read the file
//! ourselves first so errors can name the path and later lookups can name lines.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use aws_config::profile::ProfileSet;
use aws_runtime::env_config::file::{
    EnvConfigFileKind as ProfileFileKind, EnvConfigFiles as ProfileFiles,
};
use aws_types::os_shim_internal::{Env, Fs};
use vault_store::ReadError;

mod syntax;
mod write;

use syntax::as_the_cli_reads;
pub use write::{
    add_profile_keys, ensure_profile_section, locked, replace_aws_file, replace_config,
    without_key_pair, write_cli_cache_file,
};

/// Errors about the config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {file} {path}: {source}")]
    Read {
        file: AwsFile,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A FIFO, a device, a directory: never read (it could block or never end).
    #[error("{file} {path} is {what}, not a regular file")]
    NotRegular {
        file: AwsFile,
        path: PathBuf,
        what: &'static str,
    },
    #[error("{file} {path} is larger than {} MiB, more than any real one", .limit / (1024 * 1024))]
    TooBig {
        file: AwsFile,
        path: PathBuf,
        limit: u64,
    },
    #[error("cannot write {file} {path}: {source}")]
    Write {
        file: AwsFile,
        path: PathBuf,
        #[source]
        source: vault_store::Error,
    },
    #[error("{file} {path} is not valid: {message}")]
    Parse {
        file: AwsFile,
        path: PathBuf,
        message: String,
    },
    #[error("no home directory to find ~/.aws/config in; set AWS_CONFIG_FILE")]
    NoHome,
}

impl ConfigError {
    /// Which file the error is about (none for [`ConfigError::NoHome`]).
    pub fn file(&self) -> Option<AwsFile> {
        match self {
            ConfigError::Read { file, .. }
            | ConfigError::NotRegular { file, .. }
            | ConfigError::TooBig { file, .. }
            | ConfigError::Write { file, .. }
            | ConfigError::Parse { file, .. } => Some(*file),
            ConfigError::NoHome => None,
        }
    }
}

/// The AWS CLI's two files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AwsFile {
    Config,
    Credentials,
}

impl AwsFile {
    /// The variable that names the file.
    pub fn variable(self) -> &'static str {
        match self {
            AwsFile::Config => "AWS_CONFIG_FILE",
            AwsFile::Credentials => "AWS_SHARED_CREDENTIALS_FILE",
        }
    }
}

impl std::fmt::Display for AwsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AwsFile::Config => "the AWS config file",
            AwsFile::Credentials => "the shared credentials file",
        })
    }
}

/// The most either file may hold: a config of 5,000 profiles is about 0.5 MiB.
const FILE_LIMIT: u64 = 16 * 1024 * 1024;

/// The most a `web_identity_token_file` may hold (a JWT is a few KiB).
const TOKEN_FILE_LIMIT: u64 = 1024 * 1024;

/// The token in a file the config names (`web_identity_token_file`): a regular file of at
/// most 1 MiB of UTF-8, or a message saying what it is instead.
pub fn read_token_file(path: &Path) -> Result<zeroize::Zeroizing<String>, String> {
    match vault_store::read_regular(path, TOKEN_FILE_LIMIT) {
        Ok(Some(bytes)) => String::from_utf8(bytes)
            .map(zeroize::Zeroizing::new)
            .map_err(|_| "it is not text".to_owned()),
        Ok(None) => Err("it does not exist".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// Where the config file is: `AWS_CONFIG_FILE` (with `~/` expanded), else `~/.aws/config`.
pub fn config_path(aws_config_file: Option<&str>) -> Result<PathBuf, ConfigError> {
    aws_file(aws_config_file, "config")
}

/// `set` (with `~/` expanded) when given, else `~/.aws/<name>`.
fn aws_file(set: Option<&str>, name: &str) -> Result<PathBuf, ConfigError> {
    let home = dirs_home();
    match set {
        Some(p) if !p.is_empty() => Ok(expand_home(p, home.as_deref())),
        _ => home
            .map(|h| h.join(".aws").join(name))
            .ok_or(ConfigError::NoHome),
    }
}

fn dirs_home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("USERPROFILE").map(PathBuf::from))
}

fn expand_home(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

/// The config file as read and parsed.
#[derive(Debug)]
pub struct ConfigFile {
    pub path: PathBuf,
    /// The raw text (kept for line lookups).
    pub text: String,
    pub profiles: ProfileSet,
    /// (profile, lower-case key) → 1-based line of its last assignment.
    lines: HashMap<(String, String), usize>,
}

impl ConfigFile {
    /// Reads and parses the file; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = read_text(path, AwsFile::Config)?.unwrap_or_default();
        let invalid = |message| ConfigError::Parse {
            file: AwsFile::Config,
            path: path.to_owned(),
            message,
        };
        let view = as_the_cli_reads(&text).map_err(invalid)?.text;
        let profiles = parse(&view).map_err(invalid)?;
        let lines = locate_keys(&view);
        Ok(ConfigFile {
            path: path.to_owned(),
            text,
            profiles,
            lines,
        })
    }

    /// Reads the file but parses only what `profile` can reach: its sections, those its
    /// `source_profile` / `include_profile` chains name, and every non-profile section
    /// (`[services]`, `[sso-session]`). A 5,000-profile file costs one quick scan, not a full
    /// parse. Falls back to the full parse when the subset does not parse (so errors name the
    /// right line).
    pub fn load_for(path: &Path, profile: &str) -> Result<ConfigFile, ConfigError> {
        let Some(text) = read_text(path, AwsFile::Config)? else {
            return ConfigFile::load(path);
        };
        // The whole file gets the AWS CLI's checks, so this path and the full parse agree.
        let view = as_the_cli_reads(&text).map_err(|message| ConfigError::Parse {
            file: AwsFile::Config,
            path: path.to_owned(),
            message,
        })?;
        if view.whole_parse {
            return ConfigFile::load(path);
        }
        let view = view.text;
        let all = sections(&view);
        let mut wanted: Vec<String> = vec![profile.to_owned()];
        let mut chosen = vec![false; all.len()];
        let mut next = 0;
        while next < wanted.len() {
            let name = wanted[next].clone();
            next += 1;
            for (i, section) in all.iter().enumerate() {
                if section.profile.as_deref() == Some(name.as_str()) && !chosen[i] {
                    chosen[i] = true;
                    for referenced in references(section.text) {
                        if !wanted.contains(&referenced) {
                            wanted.push(referenced);
                        }
                    }
                }
            }
        }
        let mut subset = String::new();
        let mut lines = HashMap::new();
        for (i, section) in all.iter().enumerate() {
            if chosen[i] || section.profile.is_none() {
                subset.push_str(section.text);
                if !section.text.ends_with('\n') {
                    subset.push('\n');
                }
                locate_keys_into(section.text, section.first_line, &mut lines);
            }
        }
        match parse(&subset) {
            Ok(profiles) => Ok(ConfigFile {
                path: path.to_owned(),
                text: subset,
                profiles,
                lines,
            }),
            Err(_) => ConfigFile::load(path),
        }
    }

    /// A profile's value for `key` (as the SDK parser read it), with the line it is on.
    pub fn get(&self, profile: &str, key: &str) -> Option<(&str, Option<usize>)> {
        let value = self.profiles.get_profile(profile)?.get(key)?;
        let line = self
            .lines
            .get(&(profile.to_owned(), key.to_ascii_lowercase()))
            .copied();
        Some((value, line))
    }

    /// Profile names in the file, sorted.
    pub fn profile_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.profiles.profiles().map(str::to_owned).collect();
        names.sort();
        names
    }

    pub fn has_profile(&self, name: &str) -> bool {
        self.profiles.get_profile(name).is_some()
    }

    /// An `[sso-session NAME]` value for `key`, with the line it is on.
    pub fn sso_session_get(&self, name: &str, key: &str) -> Option<(&str, Option<usize>)> {
        let value = self.profiles.sso_session(name)?.get(key)?;
        let line = self
            .lines
            .get(&(sso_section_key(name), key.to_ascii_lowercase()))
            .copied();
        Some((value, line))
    }

    pub fn has_sso_session(&self, name: &str) -> bool {
        self.profiles.sso_session(name).is_some()
    }

    /// sso-session names in the file, sorted.
    pub fn sso_session_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.profiles.sso_sessions().map(str::to_owned).collect();
        names.sort();
        names
    }

    /// The line of an `[sso-session NAME]` header, for messages.
    pub fn sso_session_line(&self, name: &str) -> Option<usize> {
        self.lines
            .get(&(sso_section_key(name), "[".to_owned()))
            .copied()
    }
}

/// The file as UTF-8 text; `None` when it does not exist.
/// The file's text; `None` when it does not exist. Only a regular file of at most
/// [`FILE_LIMIT`] is read (`/dev/null` reads as empty).
fn read_text(path: &Path, file: AwsFile) -> Result<Option<String>, ConfigError> {
    let path_buf = || path.to_owned();
    let bytes = vault_store::read_regular(path, FILE_LIMIT).map_err(|e| match e {
        ReadError::Io(source) => ConfigError::Read {
            file,
            path: path_buf(),
            source,
        },
        ReadError::NotRegular { what } => ConfigError::NotRegular {
            file,
            path: path_buf(),
            what,
        },
        ReadError::TooBig { limit } => ConfigError::TooBig {
            file,
            path: path_buf(),
            limit,
        },
    })?;
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| ConfigError::Parse {
            file,
            path: path_buf(),
            message: "the file is not UTF-8".to_owned(),
        })
}

/// Finds where each profile key is assigned, for messages and `--explain`. Values come from
/// the SDK parser; this only tracks section headers and `key =` lines.
fn locate_keys(text: &str) -> HashMap<(String, String), usize> {
    let mut lines = HashMap::new();
    locate_keys_into(text, 0, &mut lines);
    lines
}

/// What a section header names.
#[derive(Clone, Debug, PartialEq, Eq)]
enum SectionName {
    /// `[profile x]`, `[default]`.
    Profile(String),
    /// `[sso-session x]`.
    SsoSession(String),
    /// `[services x]` and anything else.
    Other,
}

/// The section a header line opens, or `None` when the line is no header.
fn header(line: &str) -> Option<SectionName> {
    let trimmed = line.trim();
    if !trimmed.starts_with('[') {
        return None;
    }
    let inner = trimmed
        .trim_start_matches('[')
        .split(']')
        .next()
        .unwrap_or("")
        .trim();
    let named = |prefix: &str| {
        inner
            .strip_prefix(prefix)
            .filter(|rest| rest.starts_with(char::is_whitespace))
            .map(|rest| rest.trim().to_owned())
    };
    Some(if let Some(name) = named("profile") {
        SectionName::Profile(name)
    } else if inner == "default" {
        SectionName::Profile("default".to_owned())
    } else if let Some(name) = named("sso-session") {
        SectionName::SsoSession(name)
    } else {
        SectionName::Other
    })
}

/// The key under which lines of an sso-session's keys are kept (a space never appears in a
/// profile name, so it cannot collide).
fn sso_section_key(name: &str) -> String {
    format!("sso-session {name}")
}

fn locate_keys_into(text: &str, first_line: usize, lines: &mut HashMap<(String, String), usize>) {
    let mut section: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if let Some(named) = header(line) {
            section = match named {
                SectionName::Profile(name) => Some(name),
                SectionName::SsoSession(name) => {
                    // The header's own line, under a key no property can have.
                    lines.insert(
                        (sso_section_key(&name), "[".to_owned()),
                        first_line + index + 1,
                    );
                    Some(sso_section_key(&name))
                }
                SectionName::Other => None,
            };
            continue;
        }
        // Indented lines are continuations or sub-properties.
        if line.starts_with(char::is_whitespace) || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if let (Some(profile), Some((key, _))) = (&section, trimmed.split_once('=')) {
            lines.insert(
                (profile.clone(), key.trim().to_ascii_lowercase()),
                first_line + index + 1,
            );
        }
    }
}

/// One section of the file: its profile (if a profile section), first line, and text.
struct Section<'a> {
    profile: Option<String>,
    first_line: usize,
    text: &'a str,
}

/// Splits the file at section headers; text before the first header is dropped (comments).
fn sections(text: &str) -> Vec<Section<'_>> {
    let mut out: Vec<Section<'_>> = Vec::new();
    let mut offset = 0;
    let mut start: Option<(Option<String>, usize, usize)> = None;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        // Only unindented lines can be headers; indented ones are continuations.
        if !line.starts_with(char::is_whitespace)
            && let Some(named) = header(line)
        {
            if let Some((profile, first_line, from)) = start.take() {
                out.push(Section {
                    profile,
                    first_line,
                    text: &text[from..offset],
                });
            }
            let profile = match named {
                SectionName::Profile(name) => Some(name),
                _ => None,
            };
            start = Some((profile, index, offset));
        }
        offset += line.len();
    }
    if let Some((profile, first_line, from)) = start {
        out.push(Section {
            profile,
            first_line,
            text: &text[from..],
        });
    }
    out
}

/// Profiles a section points at (`source_profile`, `include_profile`), from a quick scan.
fn references(section: &str) -> impl Iterator<Item = String> + '_ {
    section.lines().filter_map(|line| {
        if line.starts_with(char::is_whitespace) {
            return None;
        }
        let (key, value) = line.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        (key == "source_profile" || key == "include_profile").then(|| value.trim().to_owned())
    })
}

fn parse(text: &str) -> Result<ProfileSet, String> {
    parse_as(text, ProfileFileKind::Config)
}

/// aws-config's parse, with its error as one line: "line 2: Expected an '=' sign defining a
/// property" (the whole error chain when no line can be found in it).
fn parse_as(text: &str, kind: ProfileFileKind) -> Result<ProfileSet, String> {
    sdk_parse(text, kind).map_err(|chain| match parse_error_line(&chain) {
        Some((line, reason)) if reason.is_empty() => format!("line {line}"),
        Some((line, reason)) => format!("line {line}: {reason}"),
        None => chain,
    })
}

/// aws-config's own parser over `text`; the error is its message chain.
fn sdk_parse(text: &str, kind: ProfileFileKind) -> Result<ProfileSet, String> {
    let files = ProfileFiles::builder().with_contents(kind, text).build();
    // An empty environment: AWS_PROFILE must not change which profile is "selected" here.
    let env = Env::from_slice(&[]);
    let fs = Fs::from_slice(&[]);
    let load = aws_config::profile::load(&fs, &env, &files, Some(Cow::Borrowed("default")));
    block_on_ready(load).map_err(|e| crate::error_chain(&e))
}

/// The line number and the reason in aws-config's parse error.
///
/// The one place vault reads a dependency's message text: aws-runtime's
/// `EnvConfigParseError` keeps its line private and says it only in its `Display`
/// ("error parsing PATH on line N:\n  REASON"). If that wording changes, the test
/// `the_parsers_wording_still_names_the_line` fails; until this is fixed, messages show the
/// whole error chain instead of the line.
fn parse_error_line(chain: &str) -> Option<(usize, String)> {
    let at = chain.find(" on line ")?;
    let rest = &chain[at + " on line ".len()..];
    let (line, reason) = rest.split_once(':').unwrap_or((rest, ""));
    let line = line.parse().ok()?;
    Some((
        line,
        reason.split_whitespace().collect::<Vec<_>>().join(" "),
    ))
}

/// Runs a future that completes without waiting on anything (the profile loader with
/// in-memory contents), so listing profiles needs no async runtime.
fn block_on_ready<F: std::future::Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

/// Where the shared credentials file is: `AWS_SHARED_CREDENTIALS_FILE` (with `~/` expanded),
/// else `~/.aws/credentials`.
pub fn credentials_path(aws_shared_credentials_file: Option<&str>) -> Result<PathBuf, ConfigError> {
    aws_file(aws_shared_credentials_file, "credentials")
}

/// The plaintext shared credentials file, read with the SDKs' parser.
#[derive(Debug)]
pub struct CredentialsFile {
    pub path: PathBuf,
    pub text: String,
    profiles: ProfileSet,
}

impl CredentialsFile {
    /// Reads and parses the file; a missing file has no profiles.
    pub fn load(path: &Path) -> Result<CredentialsFile, ConfigError> {
        let text = read_text(path, AwsFile::Credentials)?.unwrap_or_default();
        let invalid = |message| ConfigError::Parse {
            file: AwsFile::Credentials,
            path: path.to_owned(),
            message,
        };
        let view = as_the_cli_reads(&text).map_err(invalid)?.text;
        let profiles = parse_as(&view, ProfileFileKind::Credentials).map_err(invalid)?;
        Ok(CredentialsFile {
            path: path.to_owned(),
            text,
            profiles,
        })
    }

    /// Profile names, sorted.
    pub fn profile_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.profiles.profiles().map(str::to_owned).collect();
        names.sort();
        names
    }

    pub fn get(&self, profile: &str, key: &str) -> Option<&str> {
        self.profiles.get_profile(profile)?.get(key)
    }
}

#[cfg(test)]
mod tests;
