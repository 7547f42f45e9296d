//! The test rig: runs the real `vault` binary hermetically, and starts the real components it
//! talks to (a private D-Bus session bus with gnome-keyring's Secret Service; moto_server as
//! STS/IAM). Everything binds 127.0.0.1 or lives in a temp dir, and every process started
//! here is stopped by its own PID when its guard drops.
//!
//! `cargo xtask test` installs the components and sets `VAULT_TEST_VENV` (the Python venv with
//! moto, awscli, boto3), `VAULT_BIN` (the binary under test) and `VAULT_SDK_CALLER` (the
//! aws-sdk-rust probe, package `sdk-caller`).
//!
//! One module per component; the common names are re-exported here.

// The rig says on stderr what it skipped or had to kill.
#![allow(clippy::print_stderr)]

pub mod disk;
pub mod env;
pub mod http;
pub mod keyring;
pub mod moto;
pub mod netns;
pub mod process;
pub mod secret_service;
pub mod signin;
pub mod skip;
pub mod sso;
pub mod terminal;
pub mod wine;
pub mod world;

pub use disk::SmallDisk;
pub use env::{CALLER_ARN, Run, TestEnv, parse_env, sdk_caller, vault_bin, venv, workspace_root};
pub use http::{Reply, http_get, http_request, parse_form, percent_decode, request};
pub use keyring::SessionKeyring;
pub use moto::{ACCOUNT, Moto, StsCall, assert_assumed};
pub use process::{Guard, free_port, wait_for};
#[cfg(unix)]
pub use process::{Signal, kill};
pub use secret_service::SecretService;
pub use skip::{SKIP_MARK, require_program, skip};
pub use world::World;
