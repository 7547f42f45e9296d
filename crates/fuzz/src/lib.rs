//! Fuzzing on the stable toolchain: cargo-fuzz needs a nightly compiler, which cannot be
//! installed here, so each crate's fuzz targets are ordinary `#[test]`s that call [`fuzz`].
//!
//! A target replays every file in `fuzz/regressions/<target>/` (inputs that once crashed it)
//! and its seeds on every `cargo test`. With `VAULT_FUZZ_SECS=N` (what `cargo xtask fuzz`
//! sets) it then mutates the seeds for N seconds: bit flips, byte and block insertions and
//! deletions, splices between inputs, and tokens of the format. This is random mutation,
//! not coverage-guided: it finds crashes on inputs near the seeds, not deep ones. A panic is
//! caught, the input is saved as a new regression file (so it becomes a test), and the
//! target fails naming the file.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The variable that turns on the mutation loop, in seconds per target.
pub const SECONDS_ENV: &str = "VAULT_FUZZ_SECS";

/// Runs `check` on the regressions, the seeds, and (with [`SECONDS_ENV`]) mutations of them.
/// `check` must not panic on any input; `tokens` are fragments of the format worth inserting.
pub fn fuzz(target: &str, seeds: &[&[u8]], tokens: &[&[u8]], check: impl Fn(&[u8])) {
    let dir = regressions_dir(target);
    let mut corpus: Vec<Vec<u8>> = seeds.iter().map(|s| s.to_vec()).collect();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let input = std::fs::read(entry.path()).expect("a regression file reads");
            run_one(target, &dir, &input, &check);
            corpus.push(input);
        }
    }
    for seed in seeds {
        run_one(target, &dir, seed, &check);
    }
    let seconds = std::env::var(SECONDS_ENV)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    if seconds == 0 {
        return;
    }
    let seed = std::env::var("VAULT_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let mut rng = fastrand::Rng::with_seed(seed);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut runs = 0u64;
    while Instant::now() < deadline {
        let base = &corpus[rng.usize(..corpus.len())];
        let other = &corpus[rng.usize(..corpus.len())];
        let input = mutate(&mut rng, base, other, tokens);
        run_one(target, &dir, &input, &check);
        runs += 1;
        // Keep some mutants as new starting points, so mutations can stack.
        if rng.u8(..) < 8 && corpus.len() < 4096 {
            corpus.push(input);
        }
    }
    // Test output: how much was tried, and the seed to repeat it.
    let mut out = std::io::stderr();
    let _ = std::io::Write::write_fmt(
        &mut out,
        format_args!(
            "fuzz {target}: {runs} inputs in {seconds} s, no crash (VAULT_FUZZ_SEED={seed})\n"
        ),
    );
}

fn regressions_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target)
}

fn run_one(target: &str, dir: &Path, input: &[u8], check: &impl Fn(&[u8])) {
    if catch_unwind(AssertUnwindSafe(|| check(input))).is_ok() {
        return;
    }
    let name = hex::encode(&Sha256::digest(input)[..8]);
    let path = dir.join(&name);
    let _ = std::fs::create_dir_all(dir);
    let _ = std::fs::write(&path, input);
    panic!(
        "fuzz target {target} panicked on an input, saved as {} (it is replayed by every test run from now on)",
        path.display()
    );
}

fn mutate(rng: &mut fastrand::Rng, base: &[u8], other: &[u8], tokens: &[&[u8]]) -> Vec<u8> {
    let mut out = base.to_vec();
    for _ in 0..rng.usize(1..=4) {
        let at = |rng: &mut fastrand::Rng, v: &Vec<u8>| rng.usize(..=v.len());
        match rng.u8(..7) {
            0 if !out.is_empty() => {
                let i = rng.usize(..out.len());
                out[i] ^= 1 << rng.u8(..8);
            }
            1 if !out.is_empty() => {
                let i = rng.usize(..out.len());
                out[i] = rng.u8(..);
            }
            2 => {
                let i = at(rng, &out);
                out.insert(i, rng.u8(..));
            }
            3 if !out.is_empty() => {
                let start = rng.usize(..out.len());
                let end = (start + rng.usize(1..=16)).min(out.len());
                out.drain(start..end);
            }
            4 if !tokens.is_empty() => {
                let i = at(rng, &out);
                let token = tokens[rng.usize(..tokens.len())];
                out.splice(i..i, token.iter().copied());
            }
            5 if !other.is_empty() => {
                // Splice: our head, the other's tail.
                let cut = at(rng, &out);
                let from = rng.usize(..other.len());
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
            _ if !out.is_empty() => {
                // Repeat a block (long fields, deep nesting).
                let start = rng.usize(..out.len());
                let end = (start + rng.usize(1..=32)).min(out.len());
                let block = out[start..end].to_vec();
                let i = at(rng, &out);
                for _ in 0..rng.usize(1..=8) {
                    out.splice(i..i, block.iter().copied());
                }
            }
            _ => out.push(rng.u8(..)),
        }
    }
    out.truncate(64 * 1024);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_stay_bounded_and_vary() {
        let mut rng = fastrand::Rng::with_seed(7);
        let outs: Vec<Vec<u8>> = (0..100)
            .map(|_| mutate(&mut rng, b"hello world", b"other", &[b"TOKEN"]))
            .collect();
        assert!(outs.iter().all(|o| o.len() <= 64 * 1024));
        assert!(outs.iter().any(|o| o != b"hello world"));
    }
}
