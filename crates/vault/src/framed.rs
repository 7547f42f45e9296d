//! The format of the vault's JSON files (`vault.json`, `credentials.json`, `sessions.json`,
//! `sso.json`), in one place so every file is read with the same checks and written the same
//! way.
//!
//! Framing: the first line is a small JSON header `{"format":…,"version":…,"sha256":…}`, the
//! rest is the body. The version is read before anything else so a newer file is refused,
//! never rewritten; the checksum tells "damaged" apart from "wrong passphrase". A file is
//! written whole and atomically, only by a holder of the vault's write lock, so writers that
//! lock, re-read, change and write never lose each other's changes.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::fsio::{self, FileLock};

/// The version this build writes, and the newest it reads.
const FORMAT_VERSION: u32 = 1;
/// Taken exclusively by every writer of the vault's files.
const LOCK_FILE: &str = "vault.lock";

/// A body kept as a framed JSON file in the vault directory.
pub(crate) trait FramedJson: Serialize + DeserializeOwned {
    /// The file's name in the vault directory.
    const FILE: &'static str;
    /// The `format` its header names, so one file is never taken for another.
    const FORMAT: &'static str;
}

/// Where `T`'s file is in the vault directory `dir`.
pub(crate) fn path<T: FramedJson>(dir: &Path) -> PathBuf {
    dir.join(T::FILE)
}

/// `T`'s file in `dir`; `None` when there is none. A file that fails its frame or does not
/// parse is `Damaged`; one from a newer release is `UnsupportedVersion`.
pub(crate) fn read<T: FramedJson>(dir: &Path) -> Result<Option<T>> {
    let path = path::<T>(dir);
    let Some(bytes) = fsio::read_optional(&path)? else {
        return Ok(None);
    };
    let body = unframe(&path, T::FORMAT, FORMAT_VERSION, &bytes)?;
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| Error::damaged(&path, e.to_string()))
}

/// The vault's write lock, held until dropped. Writing a file takes it, so only a holder
/// writes, and only to the vault it locked.
#[derive(Debug)]
pub(crate) struct WriteLock {
    dir: PathBuf,
    _held: FileLock,
}

impl WriteLock {
    /// Blocks until the write lock of the vault in `dir` is ours.
    pub(crate) fn acquire(dir: &Path) -> Result<WriteLock> {
        Ok(WriteLock {
            dir: dir.to_owned(),
            _held: FileLock::acquire(&dir.join(LOCK_FILE))?,
        })
    }

    /// Replaces `T`'s file with `body`, framed.
    pub(crate) fn write<T: FramedJson>(&self, body: &T) -> Result<()> {
        let json = serde_json::to_vec_pretty(body).expect("a vault file serialises");
        fsio::write_atomic(
            &path::<T>(&self.dir),
            &frame(T::FORMAT, FORMAT_VERSION, &json),
        )
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    sha256: String,
}

/// Wraps `body` with a header naming `format` and `version`.
fn frame(format: &str, version: u32, body: &[u8]) -> Vec<u8> {
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
fn unframe<'a>(path: &Path, format: &str, supported: u32, bytes: &'a [u8]) -> Result<&'a [u8]> {
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
}
