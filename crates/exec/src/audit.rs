//! The broker's audit log (`containers.log` in the vault directory): one JSON line per answer
//! `vault serve` gives a credential request: when, which client, its profile and role, from
//! which address, the result and the access key id handed out, redacted. Never a secret, a
//! token or a token digest: a security team reads this file, and it is not encrypted.
//!
//! Rotated by size: past 1 MiB the file becomes `containers.log.1` (the one before is
//! dropped), under a lock beside it so two brokers on one vault never rotate twice. Every
//! line is one `write(2)` on an `O_APPEND` file, so lines of two brokers never interleave.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The log's name in the vault directory.
pub const LOG_FILE: &str = "containers.log";
/// Past this size the log is rotated.
const ROTATE_AT: u64 = 1024 * 1024;

/// One answer of the broker.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    /// The client the token belongs to; none when the token matched no client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The peer's address and port.
    pub source: String,
    /// `ok`, `denied` (403), `not-found` (404), `unavailable` (503).
    pub result: String,
    /// Why a request was not answered with credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The access key id handed out, redacted (`ASIA…WXYZ`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
}

/// The log, opened for appending by one broker.
pub struct AuditLog {
    path: PathBuf,
    open: Mutex<Option<Open>>,
}

/// The file being appended to, how long it is, and when it was last checked to still be
/// the one at the path (another broker may have rotated it).
struct Open {
    file: File,
    len: u64,
    checked: Instant,
}

/// How often a broker looks whether the file at the path is still its own: once a second,
/// not once a request.
const RECHECK: Duration = Duration::from_secs(1);

impl AuditLog {
    pub fn new(vault_dir: &Path) -> AuditLog {
        AuditLog {
            path: vault_dir.join(LOG_FILE),
            open: Mutex::new(None),
        }
    }

    /// Appends `entry`. A log that cannot be written is reported on stderr; the answer is
    /// given anyway (the broker must not stop serving because a disk filled).
    pub fn write(&self, entry: &Entry) {
        let mut line = serde_json::to_vec(entry).expect("an entry serialises");
        line.push(b'\n');
        let mut open = self.open.lock().expect("not poisoned");
        if let Err(e) = self.append(&mut open, &line) {
            *open = None;
            eprintln!(
                "vault: warning: cannot write the audit log {}: {e}",
                self.path.display()
            );
        }
    }

    fn append(&self, open: &mut Option<Open>, line: &[u8]) -> std::io::Result<()> {
        let stale = match open {
            None => true,
            Some(o) => {
                o.checked.elapsed() > RECHECK && {
                    o.checked = Instant::now();
                    !same_file(&o.file, &self.path)
                }
            }
        };
        if stale {
            *open = Some(self.reopen()?);
        }
        let o = open.as_mut().expect("opened above");
        o.file.write_all(line)?;
        o.len += line.len() as u64;
        if o.len > ROTATE_AT {
            self.rotate()?;
            *open = Some(self.reopen()?);
        }
        Ok(())
    }

    fn reopen(&self) -> std::io::Result<Open> {
        let file = open_append(&self.path)?;
        Ok(Open {
            len: file.metadata()?.len(),
            file,
            checked: Instant::now(),
        })
    }

    fn rotate(&self) -> std::io::Result<()> {
        let _lock = vault_store::lock_beside(&self.path).map_err(std::io::Error::other)?;
        // Read again under the lock: the other broker may have rotated it just now.
        if std::fs::metadata(&self.path)?.len() > ROTATE_AT {
            std::fs::rename(&self.path, rotated(&self.path))?;
        }
        Ok(())
    }
}

/// The path of the previous log.
pub fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

fn open_append(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

/// Every entry in the log of `vault_dir`, oldest first (the rotated file, then the current
/// one). Lines that do not parse are skipped.
pub fn read(vault_dir: &Path) -> Vec<Entry> {
    let path = vault_dir.join(LOG_FILE);
    let mut entries = Vec::new();
    for p in [rotated(&path), path] {
        if let Ok(file) = File::open(&p) {
            entries.extend(parse_lines(BufReader::new(file)));
        }
    }
    entries
}

/// The entries of `reader`'s lines that parse.
pub fn parse_lines(reader: impl BufRead) -> impl Iterator<Item = Entry> {
    reader
        .split(b'\n')
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_slice(&line).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_past_the_limit_and_reads_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path());
        let entry = Entry {
            time: "2026-12-07T00:00:00.000Z".into(),
            client: Some("api".into()),
            source: "169.254.170.10:40000".into(),
            result: "ok".into(),
            reason: Some("x".repeat(1000)),
            ..Entry::default()
        };
        for _ in 0..1100 {
            log.write(&entry);
        }
        assert!(rotated(&dir.path().join(LOG_FILE)).exists());
        assert!(std::fs::metadata(dir.path().join(LOG_FILE)).unwrap().len() < ROTATE_AT);
        assert_eq!(read(dir.path()).len(), 1100);
    }
}
