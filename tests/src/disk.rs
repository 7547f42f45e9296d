//! A disk that fills up: a 512 KiB tmpfs, for the full-disk checks of the end-to-end tests
//! and of `cargo xtask stress`. Mounting needs root (Linux); elsewhere [`SmallDisk::mount`]
//! says it could not, and the caller skips.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A 512 KiB tmpfs, unmounted (lazily) when dropped.
#[derive(Debug)]
pub struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    /// Creates `dir` and mounts the tmpfs on it: an error when `dir` cannot be made, `None`
    /// when the mount fails (not root, no tmpfs).
    pub fn mount(dir: PathBuf) -> io::Result<Option<SmallDisk>> {
        fs::create_dir_all(&dir)?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        Ok(ok.then_some(SmallDisk { dir }))
    }

    /// Where it is mounted.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes every free byte; an error only when the filler file cannot be created.
    pub fn fill(&self) -> io::Result<()> {
        let mut filler = fs::File::create(self.dir.join("filler"))?;
        let block = vec![0u8; 4096];
        while filler.write_all(&block).is_ok() {}
        Ok(())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
