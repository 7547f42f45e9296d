//! Writing the AWS CLI's files: under the lock beside each, read again under it, replaced
//! atomically; and the one edit `vault import --remove` makes to the credentials file.

use std::fs;
use std::path::Path;

use super::{AwsFile, ConfigError, ConfigFile};

/// Appends `[profile NAME]` (or `[default]`) unless the profile already exists. Every existing
/// byte of the file stays as it was. Returns whether it wrote anything.
pub fn ensure_profile_section(path: &Path, name: &str) -> Result<bool, ConfigError> {
    // `/dev/null` is an empty config that is never written (nor locked).
    if vault_store::is_dev_null(path) {
        return Ok(false);
    }
    locked(path, AwsFile::Config, || append_profile_section(path, name))
}

/// Adds `keys` to profile `name` (`login_session` and `region` after `vault signin`), each
/// on its own line right below the profile's last `[profile NAME]` header, or in a new
/// section at the end when there is none. Keys the profile already sets are left as they
/// are; every other byte of the file stays. Returns the keys written.
pub fn add_profile_keys(
    path: &Path,
    name: &str,
    keys: &[(&str, &str)],
) -> Result<Vec<String>, ConfigError> {
    if vault_store::is_dev_null(path) {
        return Ok(Vec::new());
    }
    locked(path, AwsFile::Config, || {
        let config = ConfigFile::load(path)?;
        let missing: Vec<&(&str, &str)> = keys
            .iter()
            .filter(|(key, _)| config.get(name, key).is_none())
            .collect();
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let text = &config.text;
        let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
        let lines: String = missing
            .iter()
            .map(|(key, value)| format!("{key} = {value}{newline}"))
            .collect();
        let mut out = String::with_capacity(text.len() + lines.len() + 32);
        match last_header_end(text, name) {
            Some(end) => {
                out.push_str(&text[..end]);
                if !text[..end].ends_with('\n') {
                    out.push_str(newline);
                }
                out.push_str(&lines);
                out.push_str(&text[end..]);
            }
            None => {
                out.push_str(text);
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push_str(newline);
                }
                let header = match name {
                    "default" => "[default]".to_owned(),
                    _ => format!("[profile {name}]"),
                };
                out.push_str(&header);
                out.push_str(newline);
                out.push_str(&lines);
            }
        }
        replace_config(path, &out)?;
        Ok(missing.iter().map(|(key, _)| (*key).to_owned()).collect())
    })
}

/// The byte offset just past the line of profile `name`'s last section header.
fn last_header_end(text: &str, name: &str) -> Option<usize> {
    let mut found = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let end = offset + line.len();
        let inner = line
            .trim_start_matches('\u{feff}')
            .trim()
            .strip_prefix('[')
            .and_then(|l| l.split_once(']'))
            .map(|(inner, _)| inner.trim());
        if let Some(inner) = inner {
            let words: Vec<&str> = inner.split_whitespace().collect();
            let is_it = match words.as_slice() {
                ["profile", n] => *n == name,
                [n] => *n == "default" && name == "default",
                _ => false,
            };
            if is_it {
                found = Some(end);
            }
        }
        offset = end;
    }
    found
}

/// Runs `change`, which reads `path` afresh and writes it, holding the lock beside the file:
/// every writer of an AWS file (any vault directory, any command) takes turns, and none
/// writes text it read before another's change.
pub fn locked<T>(
    path: &Path,
    file: AwsFile,
    change: impl FnOnce() -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    make_parent_dir(path, file)?;
    let _lock = vault_store::lock_beside(path).map_err(|source| ConfigError::Write {
        file,
        path: path.to_owned(),
        source,
    })?;
    change()
}

fn append_profile_section(path: &Path, name: &str) -> Result<bool, ConfigError> {
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
    // The file's own line ending (a file edited on Windows keeps its CRLF).
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push_str(newline);
    }
    text.push_str(&header);
    text.push_str(newline);
    replace_config(path, &text)?;
    Ok(true)
}

/// Writes one of the AWS CLI's token cache files (`~/.aws/sso/cache`, `~/.aws/login/cache`)
/// atomically: its directory made 0700 when missing, a new file 0600 (it holds tokens, and
/// the CLI makes it so), an existing one keeping its mode.
pub fn write_cli_cache_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|e| e.to_string())?;
    }
    let existed = path.exists();
    vault_store::replace_file(path, bytes).map_err(|e| e.to_string())?;
    #[cfg(unix)]
    if !existed {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())?;
    }
    #[cfg(not(unix))]
    let _ = existed;
    Ok(())
}

/// Writes the config file atomically (through a symlink, keeping its mode), making `~/.aws`
/// (0700) first when it is missing.
///
/// Callers hold [`locked`] and read the text under it.
pub fn replace_config(path: &Path, text: &str) -> Result<(), ConfigError> {
    replace_aws_file(path, AwsFile::Config, text)
}

/// [`replace_config`] for either file.
pub fn replace_aws_file(path: &Path, file: AwsFile, text: &str) -> Result<(), ConfigError> {
    make_parent_dir(path, file)?;
    vault_store::replace_file(path, text.as_bytes()).map_err(|source| ConfigError::Write {
        file,
        path: path.to_owned(),
        source,
    })
}

/// A missing `~/.aws`, made the user's alone whatever the umask (as the AWS CLI makes it).
fn make_parent_dir(path: &Path, file: AwsFile) -> Result<(), ConfigError> {
    let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.is_dir())
    else {
        return Ok(());
    };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| ConfigError::Write {
        file,
        path: path.to_owned(),
        source: vault_store::Error::Io {
            path: dir.to_owned(),
            source,
        },
    })
}

/// The keys of a long-lived key pair (and the token that would make it temporary).
const KEY_PAIR_KEYS: [&str; 3] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
];

/// `text` (a credentials file) without the key pair lines of `[profile]`, and without the
/// section header when nothing but blank lines and comments is left in it. Every other
/// byte stays.
pub fn without_key_pair(text: &str, profile: &str) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let is_header =
        |line: &str| !line.starts_with(char::is_whitespace) && line.trim_start().starts_with('[');
    let header_name = |line: &str| {
        line.trim()
            .trim_start_matches('[')
            .split(']')
            .next()
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if !(is_header(line) && header_name(line) == profile) {
            out.push_str(line);
            i += 1;
            continue;
        }
        let end = (i + 1..lines.len())
            .find(|&j| is_header(lines[j]))
            .unwrap_or(lines.len());
        let mut kept: Vec<&str> = Vec::new();
        let mut skipping_value = false;
        for body in &lines[i + 1..end] {
            // An indented line continues the property above it.
            if skipping_value && body.starts_with(char::is_whitespace) && !body.trim().is_empty() {
                continue;
            }
            skipping_value = false;
            let key = body
                .split('=')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if body.contains('=') && KEY_PAIR_KEYS.contains(&key.as_str()) {
                skipping_value = true;
                continue;
            }
            kept.push(body);
        }
        let has_property = kept.iter().any(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with(['#', ';'])
        });
        if has_property {
            out.push_str(line);
            kept.iter().for_each(|l| out.push_str(l));
        }
        i = end;
    }
    out
}
