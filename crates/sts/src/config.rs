//! The AWS config file: located, read and parsed exactly as the SDKs do it.
//!
//! Parsing is delegated to aws-config's own parser so keys, case rules, sub-properties and
//! `[sso-session]`/`[services]` sections mean what they mean to the AWS CLI. We read the file
//! ourselves first so errors can name the path and later lookups can name lines.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use aws_config::profile::ProfileSet;
use aws_runtime::env_config::file::{
    EnvConfigFileKind as ProfileFileKind, EnvConfigFiles as ProfileFiles,
};
use aws_types::os_shim_internal::{Env, Fs};

/// Errors about the config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the AWS config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the AWS config file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the AWS config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("no home directory to find ~/.aws/config in; set AWS_CONFIG_FILE")]
    NoHome,
}

/// Where the config file is: `AWS_CONFIG_FILE` (with `~/` expanded), else `~/.aws/config`.
pub fn config_path(aws_config_file: Option<&str>) -> Result<PathBuf, ConfigError> {
    let home = dirs_home();
    match aws_config_file {
        Some(p) if !p.is_empty() => Ok(expand_home(p, home.as_deref())),
        _ => home
            .map(|h| h.join(".aws").join("config"))
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
        let text = match fs::read(path) {
            Ok(bytes) => String::from_utf8(bytes).map_err(|_| ConfigError::Parse {
                path: path.to_owned(),
                message: "the file is not UTF-8".to_owned(),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source: e,
                });
            }
        };
        let profiles = parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })?;
        let lines = locate_keys(&text);
        Ok(ConfigFile {
            path: path.to_owned(),
            text,
            profiles,
            lines,
        })
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
}

/// Finds where each profile key is assigned, for messages and `--explain`. Values come from
/// the SDK parser; this only tracks section headers and `key =` lines.
fn locate_keys(text: &str) -> HashMap<(String, String), usize> {
    let mut lines = HashMap::new();
    let mut section: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            let inner = trimmed
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim();
            section = match inner.strip_prefix("profile") {
                Some(rest) if rest.starts_with(char::is_whitespace) => Some(rest.trim().to_owned()),
                _ if inner == "default" => Some("default".to_owned()),
                _ => None,
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
                index + 1,
            );
        }
    }
    lines
}

fn parse(text: &str) -> Result<ProfileSet, String> {
    let files = ProfileFiles::builder()
        .with_contents(ProfileFileKind::Config, text)
        .build();
    // An empty environment: AWS_PROFILE must not change which profile is "selected" here.
    let env = Env::from_slice(&[]);
    let fs = Fs::from_slice(&[]);
    let load = aws_config::profile::load(&fs, &env, &files, Some(Cow::Borrowed("default")));
    block_on_ready(load).map_err(|e| e.to_string())
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

/// Appends `[profile NAME]` (or `[default]`) unless the profile already exists. Every existing
/// byte of the file stays as it was. Returns whether it wrote anything.
pub fn ensure_profile_section(path: &Path, name: &str) -> Result<bool, ConfigError> {
    let config = ConfigFile::load(path)?;
    if config.has_profile(name) {
        return Ok(false);
    }
    let header = if name == "default" {
        "[default]".to_owned()
    } else {
        format!("[profile {name}]")
    };
    let mut text = config.text;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&header);
    text.push('\n');
    write_replacing(path, text.as_bytes()).map_err(|source| ConfigError::Write {
        path: path.to_owned(),
        source,
    })?;
    Ok(true)
}

/// Temp file beside the target, fsync, rename: the config is never half-written. The file's
/// permissions are kept.
fn write_replacing(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!(
        ".{}.vault-{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        if let Ok(meta) = fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_profiles_like_the_sdk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        fs::write(
            &path,
            "[default]\nregion = eu-west-1\n[profile lab]\nrole_arn = arn:aws:iam::1:role/x\n\
             [sso-session corp]\nsso_region = us-east-1\n[services local]\nsts =\n  endpoint_url = http://x\n",
        )
        .unwrap();
        let config = ConfigFile::load(&path).unwrap();
        assert_eq!(config.profile_names(), vec!["default", "lab"]);
    }

    #[test]
    fn appends_missing_section_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        let original = "# mine\n[profile lab]\nregion = eu-west-1";
        fs::write(&path, original).unwrap();
        assert!(!ensure_profile_section(&path, "lab").unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), original);
        assert!(ensure_profile_section(&path, "prod").unwrap());
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{original}\n[profile prod]\n")
        );
        assert!(ensure_profile_section(&path, "default").unwrap());
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .ends_with("[profile prod]\n[default]\n")
        );
    }

    #[test]
    fn finds_lines_of_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        fs::write(
            &path,
            "[default]\nregion = eu-west-1\n\n[profile lab]\n# c\nRole_Arn = arn:x\ns3 =\n  sub = y\n[sso-session s]\nregion = z\n",
        )
        .unwrap();
        let config = ConfigFile::load(&path).unwrap();
        assert_eq!(
            config.get("default", "region"),
            Some(("eu-west-1", Some(2)))
        );
        assert_eq!(config.get("lab", "role_arn"), Some(("arn:x", Some(6))));
        assert_eq!(config.get("lab", "region"), None);
    }

    #[test]
    fn missing_file_is_empty_config() {
        let dir = tempfile::tempdir().unwrap();
        let config = ConfigFile::load(&dir.path().join("nope")).unwrap();
        assert!(config.profile_names().is_empty());
    }
}
