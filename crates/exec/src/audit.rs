//! The broker's audit log (`containers.log` in the vault directory): one JSON line per answer
//! `vault serve` gives a credential request: when, which client, its profile and role, from
//! which address, the result and the access key id handed out, redacted. Never a secret, a
//! token or a token digest: a security team reads this file, and it is not encrypted.
//!
//! Rotated by size: past 1 MiB the file becomes `containers.log.1` (the one before is
//! dropped), under a lock beside it so two brokers on one vault never rotate twice. Lines
//! are written whole, in batches of whole lines, each batch one `write(2)` on an `O_APPEND`
//! file, so lines of two brokers never interleave.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

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

/// The log, appended to by one thread of its own: a request only queues its line, and the
/// writer writes every line queued meanwhile in one `write(2)` (under load, many lines per
/// call; idle, each line at once).
pub struct AuditLog {
    queue: std::sync::mpsc::Sender<Message>,
}

enum Message {
    /// An answer and when it was given; formatted and serialised on the writer's thread,
    /// not the request's.
    Entry(SystemTime, Box<Entry>),
    /// Write what is queued, then answer.
    Flush(std::sync::mpsc::Sender<()>),
}

/// The file being appended to, how long it is, and when it was last checked to still be
/// the one at the path (another broker may have rotated it).
struct Open {
    file: File,
    len: u64,
    checked: Instant,
}

/// How often the writer looks whether the file at the path is still its own: once a
/// second, not once a write.
const RECHECK: Duration = Duration::from_secs(1);
/// How long the writer lets lines gather after a write. A broker killed with SIGKILL loses
/// at most the lines of this long.
const GATHER: Duration = Duration::from_millis(5);
/// At most this much is written in one call.
const BATCH: usize = 256 * 1024;

impl AuditLog {
    pub fn new(vault_dir: &Path) -> AuditLog {
        let (queue, lines) = std::sync::mpsc::channel::<Message>();
        let writer = Writer {
            path: vault_dir.join(LOG_FILE),
            open: None,
        };
        let _ = std::thread::Builder::new()
            .name("vault-audit".into())
            .spawn(move || writer.run(lines));
        AuditLog { queue }
    }

    /// Queues `entry`, an answer given `at`, for the writer (which fills in its `time`).
    pub fn write(&self, at: SystemTime, entry: Entry) {
        let _ = self.queue.send(Message::Entry(at, Box::new(entry)));
    }

    /// Returns once every line queued before is written (or the writer is gone), waiting
    /// at most a second: for a broker about to exit.
    pub fn flush(&self) {
        let (done, written) = std::sync::mpsc::channel();
        let sent = self.queue.send(Message::Flush(done));
        if sent.is_ok() {
            let _ = written.recv_timeout(Duration::from_secs(1));
        }
    }
}

struct Writer {
    path: PathBuf,
    open: Option<Open>,
}

impl Writer {
    fn run(mut self, messages: std::sync::mpsc::Receiver<Message>) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut next = messages.recv().ok();
        while let Some(message) = next.take() {
            let flushed = match message {
                Message::Entry(at, mut entry) => {
                    entry.time = chrono::DateTime::<chrono::Utc>::from(at)
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                    serde_json::to_writer(&mut batch, &entry).expect("an entry serialises");
                    batch.push(b'\n');
                    None
                }
                Message::Flush(done) => Some(done),
            };
            if flushed.is_none() && batch.len() < BATCH {
                // More queued meanwhile: into the same write.
                if let Ok(more) = messages.try_recv() {
                    next = Some(more);
                    continue;
                }
            }
            if !batch.is_empty() {
                // A log that cannot be written is said on stderr; the answers were given
                // anyway (the broker must not stop serving because a disk filled).
                if let Err(e) = self.append(&batch) {
                    self.open = None;
                    eprintln!(
                        "vault: warning: cannot write the audit log {}: {e}",
                        self.path.display()
                    );
                }
                batch.clear();
            }
            match flushed {
                Some(done) => {
                    let _ = done.send(());
                }
                // Let lines gather before the next write: under load, one wake-up and one
                // write(2) per few milliseconds instead of per request.
                None => std::thread::sleep(GATHER),
            }
            next = messages.recv().ok();
        }
    }

    fn append(&mut self, lines: &[u8]) -> std::io::Result<()> {
        let stale = match &mut self.open {
            None => true,
            Some(o) => {
                o.checked.elapsed() > RECHECK && {
                    o.checked = Instant::now();
                    !same_file(&o.file, &self.path)
                }
            }
        };
        if stale {
            self.open = Some(self.reopen()?);
        }
        let o = self.open.as_mut().expect("opened above");
        o.file.write_all(lines)?;
        o.len += lines.len() as u64;
        if o.len > ROTATE_AT {
            self.rotate()?;
            self.open = Some(self.reopen()?);
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
            log.write(SystemTime::now(), entry.clone());
        }
        log.flush();
        assert!(rotated(&dir.path().join(LOG_FILE)).exists());
        assert!(std::fs::metadata(dir.path().join(LOG_FILE)).unwrap().len() < ROTATE_AT);
        assert_eq!(read(dir.path()).len(), 1100);
    }
}
