//! End-to-end tests of the `vault` binary on its real components. One test binary, one module
//! per area; the rig is in `vault_harness` (tests/src/lib.rs).

mod children;
mod console;
mod containers;
mod everyday;
mod exec;
mod faults;
mod hardening;
mod kept_key;
mod login;
mod messages;
mod odd_files;
mod output;
mod policy;
mod prompts;
mod rotate;
mod scripts;
mod servers;
mod signin;
mod sources;
mod sso;
mod store;
mod terminal_rig;
mod tidy;
mod unlock;
mod windows;
mod writers;
