//! `cargo xtask demo`: vault's main job, end to end, with no AWS account.

use std::path::Path;

use crate::Result;

pub fn run(_root: &Path) -> Result {
    println!(
        "The end-to-end demo (vault exec on a role profile against a local STS emulator) \
         arrives with the next issue, together with `vault exec`.\n\
         What works today: `cargo xtask test`, and `vault add` / `vault list` / `vault remove`."
    );
    Ok(())
}
