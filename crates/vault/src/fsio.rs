//! Files of the store: private permissions, atomic replacement, locks, and the framing that
//! carries a format version and a checksum in front of every file's body.
//!
//! Framing: the first line is a small JSON header `{"format":…,"version":…,"sha256":…}`, the
//! rest is the body. The version is read before anything else so a newer file is refused,
//! never rewritten; the checksum tells "damaged" apart from "wrong passphrase".

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    sha256: String,
}

/// Wraps `body` with a header naming `format` and `version`.
pub(crate) fn frame(format: &str, version: u32, body: &[u8]) -> Vec<u8> {
    let header = Header {
        format: format.to_owned(),
        version,
        sha256: hex::encode(Sha256::digest(body)),
    };
    let mut out = serde_json::to_vec(&header).expect("header serialises");
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// Checks the header of a framed file and returns its body.
pub(crate) fn unframe<'a>(
    path: &Path,
    format: &str,
    supported: u32,
    bytes: &'a [u8],
) -> Result<&'a [u8]> {
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| Error::damaged(path, "no header line (truncated?)"))?;
    let header: Header = serde_json::from_slice(&bytes[..newline])
        .map_err(|_| Error::damaged(path, "unreadable header"))?;
    if header.format != format {
        return Err(Error::damaged(
            path,
            format!("expected a {format} file, found {:?}", header.format),
        ));
    }
    if header.version > supported || header.version == 0 {
        return Err(Error::UnsupportedVersion {
            path: path.to_owned(),
            found: header.version,
            supported,
        });
    }
    let body = &bytes[newline + 1..];
    if hex::encode(Sha256::digest(body)) != header.sha256 {
        return Err(Error::damaged(
            path,
            "checksum mismatch (the file was truncated or changed outside vault)",
        ));
    }
    Ok(body)
}

/// Reads a whole file; `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    Ok(Some(bytes))
}

/// Creates the store directory (and parents) readable by the owner only.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| Error::io(dir, e))?;
    // A directory that already existed keeps its mode; tighten it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(dir, e))?;
    }
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

fn replace(path: &Path, bytes: &[u8], keep_permissions: bool) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::io(path, io::Error::other("not a file name")))?;
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix).map_err(|e| Error::io(dir, io::Error::other(e)))?;
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        hex::encode(suffix)
    ));
    let result = (|| {
        let mut file = private_file_options()
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, e))?;
        if keep_permissions && let Ok(meta) = fs::metadata(path) {
            file.set_permissions(meta.permissions())
                .map_err(|e| Error::io(&tmp, e))?;
        }
        file.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(file);
        fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
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
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(path).map_err(|e| Error::io(path, e))?;
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

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip_and_damage() {
        let path = Path::new("x");
        let framed = frame("vault-test", 1, b"hello");
        assert_eq!(unframe(path, "vault-test", 1, &framed).unwrap(), b"hello");

        let mut flipped = framed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(
            unframe(path, "vault-test", 1, &flipped),
            Err(Error::Damaged { .. })
        ));
        assert!(matches!(
            unframe(path, "vault-test", 1, &framed[..framed.len() - 2]),
            Err(Error::Damaged { .. })
        ));
        assert!(matches!(
            unframe(path, "vault-other", 1, &framed),
            Err(Error::Damaged { .. })
        ));
        let newer = frame("vault-test", 7, b"hello");
        assert!(matches!(
            unframe(path, "vault-test", 1, &newer),
            Err(Error::UnsupportedVersion { found: 7, .. })
        ));
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
