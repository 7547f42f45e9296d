//! Files of the store: private permissions, atomic replacement and locks, the mechanics every
//! file of the vault directory shares (the format of its JSON files is [`crate::framed`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Why [`read_regular`] gave no content.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A FIFO would block the reader, a device may never end, a directory has no text.
    #[error("it is {what}, not a regular file")]
    NotRegular { what: &'static str },
    #[error("it is larger than {} MiB", .limit / (1024 * 1024))]
    TooBig { limit: u64 },
}

/// The whole content of a file someone else wrote (the AWS config, a token file): only a
/// regular file, at most `limit` bytes. `None`: it does not exist. `/dev/null` reads as
/// empty (a common way to say "no config").
///
/// Opened non-blocking, so a FIFO put there between the check and the open cannot hang us,
/// and checked again on the open handle.
pub fn read_regular(path: &Path, limit: u64) -> std::result::Result<Option<Vec<u8>>, ReadError> {
    match fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
        Ok(meta) if is_dev_null(path) && !meta.is_file() => return Ok(Some(Vec::new())),
        Ok(meta) if !meta.is_file() => {
            return Err(ReadError::NotRegular {
                what: file_kind(&meta),
            });
        }
        Ok(_) => {}
    }
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = match options.open(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        other => other?,
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular {
            what: file_kind(&meta),
        });
    }
    if meta.len() > limit {
        return Err(ReadError::TooBig { limit });
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooBig { limit });
    }
    Ok(Some(bytes))
}

/// `path` is the null device: read as empty, never written.
pub fn is_dev_null(path: &Path) -> bool {
    #[cfg(unix)]
    return fs::canonicalize(path).is_ok_and(|p| p == Path::new("/dev/null"));
    #[cfg(not(unix))]
    return path
        .file_name()
        .is_some_and(|n| n.eq_ignore_ascii_case("nul"));
}

/// What kind of file `meta` describes, for messages.
fn file_kind(meta: &fs::Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// Reads a whole file of the store; `None` when it does not exist. Only a regular file: a
/// FIFO put in its place (by the user, or a process running as them) would block every
/// command (and the container broker) waiting for a writer, so it is opened non-blocking
/// and refused as damaged.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let mut file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::damaged(
            path,
            format!("it is {}, not a regular file", file_kind(&meta)),
        ));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    Ok(Some(bytes))
}

/// Creates the store directory (and parents) readable by the owner only. A directory that
/// already exists is left as it is (it may be shared, like `/tmp`): [`check_private`]
/// refuses one that is not private instead of changing it.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| Error::io(dir, e))
}

/// Refuses a vault directory that someone else owns or can write to, and files in it that
/// others can read or someone else owns. (Windows: the profile directory's ACL is the
/// user's; nothing to check here.)
#[cfg(unix)]
pub(crate) fn check_private(dir: &Path, files: &[&str]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::getuid().as_raw();
    let not_private = |path: &Path, reason: String, fix: Option<String>| Error::NotPrivate {
        path: path.to_owned(),
        reason,
        fix,
    };
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    if meta.uid() != me {
        return Err(not_private(
            dir,
            format!("it belongs to uid {}, not to you (uid {me})", meta.uid()),
            None,
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(not_private(
            dir,
            format!("others can write to it (mode {:o})", meta.mode() & 0o7777),
            Some(format!("chmod 700 {}", dir.display())),
        ));
    }
    for name in files {
        let path = dir.join(name);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.uid() != me {
            return Err(not_private(
                &path,
                format!("it belongs to uid {}, not to you (uid {me})", meta.uid()),
                None,
            ));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(not_private(
                &path,
                format!(
                    "others can read or change it (mode {:o})",
                    meta.mode() & 0o7777
                ),
                Some(format!("chmod 600 {}", path.display())),
            ));
        }
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn check_private(_dir: &Path, _files: &[&str]) -> Result<()> {
    Ok(())
}

fn private_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Replaces `path` with `bytes`: a temp file in the same directory, fsync, rename, fsync of
/// the directory. A crash leaves either the old file or the new one, never a mix. New files
/// are 0600.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    replace(path, bytes, false)
}

/// `write_atomic` for a file that is the user's, not the store's (the AWS config file): an
/// existing file keeps its permissions.
pub fn replace_file(path: &Path, bytes: &[u8]) -> Result<()> {
    replace(path, bytes, true)
}

/// `write_atomic` for a file whose only job is to hold a secret for someone else to read (a
/// container's token): a symlink in its place is refused, never followed, so whoever put it
/// there cannot choose where the secret lands.
pub(crate) fn write_secret_no_follow(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Ok(meta) = fs::symlink_metadata(path) {
        let what = if meta.file_type().is_symlink() {
            Some("a symbolic link")
        } else if !meta.is_file() {
            Some(file_kind(&meta))
        } else {
            None
        };
        if let Some(what) = what {
            return Err(Error::NotRegular {
                path: path.to_owned(),
                what,
            });
        }
    }
    replace_at(path, bytes, false)
}

fn replace(path: &Path, bytes: &[u8], keep_permissions: bool) -> Result<()> {
    // A symlinked file (dotfiles) is written through: the link stays, its target changes.
    let target = resolve_links(path)?;
    replace_at(&target, bytes, keep_permissions)
}

fn replace_at(path: &Path, bytes: &[u8], keep_permissions: bool) -> Result<()> {
    // Only a regular file is ever replaced: renaming over a device (`/dev/null`, as root)
    // or a FIFO would put an ordinary file in its place.
    if let Ok(meta) = fs::metadata(path)
        && !meta.is_file()
    {
        return Err(Error::NotRegular {
            path: path.to_owned(),
            what: file_kind(&meta),
        });
    }
    let (dir, name) = dir_and_name(path)?;
    remove_stale_temps(dir, &name);
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix).map_err(|e| Error::io(dir, io::Error::other(e)))?;
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        hex::encode(suffix)
    ));
    let result = (|| {
        let mut file = private_file_options()
            .open(&tmp)
            .map_err(|e| Error::io(dir, e))?;
        if keep_permissions && let Ok(meta) = fs::metadata(path) {
            file.set_permissions(meta.permissions())
                .map_err(|e| Error::io(dir, e))?;
        }
        file.write_all(bytes).map_err(|e| Error::io(dir, e))?;
        file.sync_all().map_err(|e| Error::io(dir, e))?;
        drop(file);
        fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The file a chain of symlinks ends at (which need not exist yet), relative links read from
/// the link's own directory.
fn resolve_links(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_owned();
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = fs::read_link(&current).map_err(|e| Error::io(&current, e))?;
                current = match current.parent() {
                    Some(parent) if link.is_relative() => parent.join(link),
                    _ => link,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(Error::io(
        path,
        io::Error::other("too many levels of symbolic links"),
    ))
}

/// Temp files of `name` left by a writer that crashed. A temp file's name carries its
/// writer's PID (`.NAME.PID.RANDOM.tmp`); one is removed only when that process is gone, so
/// a writer that does not share our lock (another vault directory writing the same AWS
/// config, before the lock beside it existed) never loses its file mid-write.
fn remove_stale_temps(dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        let Some(middle) = file
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tmp"))
        else {
            continue;
        };
        // `.NAME.PID.RANDOM.tmp`, or `.NAME.vault-PID.tmp` from before the random part.
        let writer = middle
            .split('.')
            .next()
            .map(|pid| pid.trim_start_matches("vault-"))
            .and_then(|pid| pid.parse::<u32>().ok());
        if writer.is_some_and(writer_is_gone) {
            tracing::debug!(file = %file, "removing a temp file left by a crash");
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The process `pid` no longer runs (so its temp files are left-overs).
#[cfg(unix)]
fn writer_is_gone(pid: u32) -> bool {
    use nix::errno::Errno;
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    pid != std::process::id() as i32
        && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) == Err(Errno::ESRCH)
}

/// Without a way to ask here, a temp file is left alone (it is hidden and small).
#[cfg(not(unix))]
fn writer_is_gone(_pid: u32) -> bool {
    false
}

/// The lock every writer of `path` takes: a hidden `.NAME.lock` beside the file (beside its
/// target, for a symlink), so two writers that share nothing else (two vault directories
/// writing one AWS config) still take turns.
pub fn lock_beside(path: &Path) -> Result<FileLock> {
    let target = resolve_links(path)?;
    let (dir, name) = dir_and_name(&target)?;
    FileLock::acquire(&dir.join(format!(".{name}.lock")))
}

/// The directory `path` is in (`.` for a bare name) and its file name.
fn dir_and_name(path: &Path) -> Result<(&Path, String)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::io(path, io::Error::other("not a file name")))?
        .to_string_lossy()
        .into_owned();
    Ok((dir, name))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<()> {
    // Windows renames are journaled by NTFS; directories cannot be opened for fsync.
    Ok(())
}

/// An exclusive lock on a lock file, held until dropped. Works across processes on every
/// platform (flock on Unix, LockFileEx on Windows, both through std).
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Blocks until the lock is ours.
    pub fn acquire(path: &Path) -> Result<FileLock> {
        FileLock::acquire_telling(path, std::time::Duration::MAX, &mut || {})
    }

    /// Blocks until the lock is ours; if that takes longer than `patience`, calls `waiting`
    /// once (so the person knows what the command waits for).
    /// [`FileLock::acquire_telling`], giving up (`None`) once `limit` has passed.
    pub fn acquire_within(
        path: &Path,
        patience: std::time::Duration,
        limit: std::time::Duration,
        waiting: &mut dyn FnMut(),
    ) -> Result<Option<FileLock>> {
        let file = open_lock_file(path)?;
        let start = std::time::Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(Some(FileLock {
                        file,
                        path: path.to_owned(),
                    }));
                }
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
            }
            let waited = start.elapsed();
            if waited >= limit {
                return Ok(None);
            }
            if !told && waited >= patience {
                told = true;
                waiting();
            }
            // Polled, not blocking: a blocking lock cannot give up. 50 ms is unnoticeable
            // next to a sign-in and costs nothing.
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    pub fn acquire_telling(
        path: &Path,
        patience: std::time::Duration,
        waiting: &mut dyn FnMut(),
    ) -> Result<FileLock> {
        let file = open_lock_file(path)?;
        if patience != std::time::Duration::MAX {
            let start = std::time::Instant::now();
            loop {
                match file.try_lock() {
                    Ok(()) => {
                        return Ok(FileLock {
                            file,
                            path: path.to_owned(),
                        });
                    }
                    Err(std::fs::TryLockError::WouldBlock) => {}
                    Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
                }
                if start.elapsed() >= patience {
                    waiting();
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        file.lock().map_err(|e| Error::io(path, e))?;
        Ok(FileLock {
            file,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A lock file, created private if missing; its content is never read or written.
fn open_lock_file(path: &Path) -> Result<std::fs::File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|e| Error::io(path, e))
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FIFO where a store file goes is refused at once, not waited on.
    #[cfg(unix)]
    #[test]
    fn a_fifo_in_place_of_a_store_file_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.json");
        let made = std::process::Command::new("mkfifo").arg(&path).status();
        assert!(made.unwrap().success());
        let e = read_optional(&path).unwrap_err();
        assert!(
            e.to_string()
                .contains("FIFO (named pipe), not a regular file"),
            "{e}"
        );
        assert_eq!(read_optional(&dir.path().join("none")).unwrap(), None);
    }

    /// A bounded wait gives up while the lock is held, tells once, and gets it once free.
    #[test]
    fn a_bounded_lock_wait_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.lock");
        let held = FileLock::acquire(&path).unwrap();
        let mut told = 0;
        let limit = std::time::Duration::from_millis(200);
        let got =
            FileLock::acquire_within(&path, std::time::Duration::ZERO, limit, &mut || told += 1)
                .unwrap();
        assert!(got.is_none());
        assert_eq!(told, 1);
        drop(held);
        let got = FileLock::acquire_within(&path, limit, limit, &mut || {}).unwrap();
        assert!(got.is_some());
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
