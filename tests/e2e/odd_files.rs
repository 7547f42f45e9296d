//! Files and helpers that are not what they claim: a device or a FIFO as the config file,
//! `/dev/zero` as a config, a token file or a helper's output, a config too big to be real.
//! Each is refused with a message that says what it is, fast and in bounded memory, and no
//! file changes: a device is never replaced by an ordinary file (as root, `AWS_CONFIG_FILE=
//! /dev/null` once replaced the machine's `/dev/null`). `/dev/null` itself is an empty config
//! that is never written.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use vault_harness::skip::skip;
use vault_harness::{Run, TestEnv};

const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn env() -> TestEnv {
    let mut env = TestEnv::new();
    env.use_file_vault("odd-files passphrase");
    env
}

/// `vault ARGS` with `AWS_CONFIG_FILE` pointed at `config`, bounded by coreutils' `timeout`
/// so a hang fails the test (exit 124) instead of stalling the suite.
fn run_on(env: &TestEnv, config: &Path, vars: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = env.command("timeout");
    cmd.arg("20").arg(vault_harness::vault_bin()).args(args);
    cmd.env("AWS_CONFIG_FILE", config);
    for (name, value) in vars {
        cmd.env(name, value);
    }
    env.output(&mut cmd)
}

fn add_env(env: &TestEnv, config: &Path, profile: &str) -> Run {
    run_on(
        env,
        config,
        &[
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
        &["add", "--env", profile],
    )
}

/// A character device 1:3 (what `/dev/null` is) at `path`; `false` when mknod is not
/// allowed (not root).
fn null_device_at(env: &TestEnv, path: &Path) -> bool {
    env.output(env.command("mknod").arg(path).args(["c", "1", "3"]))
        .status
        .success()
}

fn stored(env: &TestEnv) -> String {
    env.run(&["list", "--credentials"]).stdout.clone()
}

/// A character device where the config should be: refused before the key is stored, and
/// still a device afterwards. Needs root (mknod).
#[test]
fn a_device_as_the_config_is_refused_and_never_replaced() {
    let env = env();
    let device = env.dir.path().join("fakenull");
    let made = null_device_at(&env, &device);
    if !made {
        skip("mknod needs root");
        return;
    }
    add_env(&env, &device, "newp")
        .failure(1)
        .stderr_has("is a character device, not a regular file")
        .stderr_has("AWS_CONFIG_FILE");
    assert!(fs::metadata(&device).unwrap().file_type().is_char_device());
    assert!(!stored(&env).contains("newp"), "the key was stored");
}

/// Run in a mount namespace of its own, with a device node of the test's bind-mounted on
/// `/dev/null`: a vault that tried to replace `/dev/null` would fail there (a mount point
/// cannot be renamed over) instead of replacing the machine's. Needs root.
#[test]
fn dev_null_is_an_empty_config_that_is_never_written() {
    let env = env();
    let node = env.dir.path().join("null");
    let made = null_device_at(&env, &node);
    if !made || !env.require_program("unshare", "util-linux") {
        skip("a private /dev/null needs root (mknod, unshare --mount)");
        return;
    }
    let in_namespace = |args: &str| {
        let mut cmd = env.command("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount --bind '{}' /dev/null && exec timeout 20 '{}' {args}",
                node.display(),
                vault_harness::vault_bin().display()
            ))
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET);
        env.output(&mut cmd)
    };
    in_namespace("add --env newp").success();
    assert!(fs::metadata(&node).unwrap().file_type().is_char_device());
    assert!(stored(&env).contains("newp"), "the key was not stored");
    in_namespace("list").success().stdout_has("newp");
}

#[test]
fn dev_zero_a_fifo_and_a_huge_file_are_refused_quickly() {
    let env = env();
    let fifo = env.dir.path().join("fifo");
    env.output(env.command("mkfifo").arg(&fifo)).success();
    let huge = env.dir.path().join("huge");
    fs::write(&huge, vec![b'#'; 17 * 1024 * 1024]).unwrap();
    for (config, says) in [
        (Path::new("/dev/zero"), "is a character device"),
        (fifo.as_path(), "is a FIFO (named pipe)"),
        (huge.as_path(), "larger than 16 MiB"),
    ] {
        for args in [&["list"][..], &["export", "p"], &["doctor"]] {
            let run = run_on(&env, config, &[], args);
            assert_ne!(run.code(), 124, "{args:?} hung on {}", config.display());
            // doctor reports on stdout, the others on stderr.
            let said = format!("{}{}", run.stdout, run.stderr);
            assert!(said.contains(says), "{args:?}: {said}");
            run.failure(1);
        }
    }
}

#[test]
fn helpers_that_never_stop_printing_are_stopped() {
    let env = env();
    let config = env.config_path();
    env.store_key("base", KEY_ID, SECRET);
    env.write_config(
        "[profile cp]\ncredential_process = cat /dev/zero\n\
         [profile base]\nmfa_serial = arn:aws:iam::123456789012:mfa/a\nmfa_process = cat /dev/zero\n",
    );
    for profile in ["cp", "base"] {
        run_on(&env, &config, &[], &["export", profile])
            .failure(1)
            .stderr_has("printed more than 1024 KiB and was stopped");
    }
}

#[test]
fn a_token_file_that_is_a_device_is_refused() {
    let env = env();
    let config = env.config_path();
    env.write_config(
        "[profile ci]\nrole_arn = arn:aws:iam::123456789012:role/ci\n\
         web_identity_token_file = /dev/zero\nregion = us-east-1\n",
    );
    run_on(&env, &config, &[], &["export", "ci"])
        .failure(1)
        .stderr_has("cannot read /dev/zero")
        .stderr_has("character device");
}

/// The shared credentials file's mistakes name that file and its variable.
#[test]
fn a_bad_credentials_file_names_itself() {
    let env = env();
    let credentials = env.home().join(".aws/credentials");
    fs::write(&credentials, "[default]\nthis is not a key\n").unwrap();
    env.run(&["import"])
        .failure(1)
        .stderr_has("the shared credentials file")
        .stderr_has("AWS_SHARED_CREDENTIALS_FILE");
}

/// Odd config files get one verdict from every command, and it is the AWS CLI's: botocore
/// (the venv's, the parser `aws` itself uses) decides whether the file is valid and whether
/// `base` asks for MFA; `list`, `exec --explain` and `add` must agree with it.
#[test]
fn odd_configs_get_the_aws_clis_verdict_from_every_command() {
    let mfa = "mfa_serial = arn:aws:iam::123456789012:mfa/a\n";
    let cases: &[(&str, String)] = &[
        (
            "plain",
            format!("[profile base]\nregion = us-east-1\n{mfa}"),
        ),
        (
            "crlf",
            format!(
                "[profile base]\r\nregion = us-east-1\r\n{}",
                mfa.replace('\n', "\r\n")
            ),
        ),
        (
            "bom",
            format!("\u{feff}[profile base]\nregion = us-east-1\n{mfa}"),
        ),
        (
            "indented first",
            format!("  [profile base]\nregion = us-east-1\n{mfa}"),
        ),
        (
            "tab-indented first",
            format!("\t[profile base]\nregion = us-east-1\n{mfa}"),
        ),
        (
            "indented after a header",
            format!("[default]\n  [profile base]\n{mfa}"),
        ),
        (
            "indented after a key",
            format!("[default]\nregion = eu-west-1\n  [profile base]\nregion = us-east-1\n{mfa}"),
        ),
        (
            "indented after a blank",
            format!("[default]\nregion = eu-west-1\n\n  [profile base]\nregion = us-east-1\n{mfa}"),
        ),
        (
            "a key twice",
            format!("[profile base]\nregion = us-east-1\nregion = eu-west-1\n{mfa}"),
        ),
        (
            "a section twice",
            format!("[profile base]\n{mfa}[profile base]\nregion = us-east-1\n"),
        ),
        (
            "a broken section elsewhere",
            format!("[profile base]\n{mfa}[profile other]\nthis is not a key\n"),
        ),
    ];
    let python = vault_harness::venv().join("bin/python");
    for (name, text) in cases {
        let env = env();
        env.store_key("base", KEY_ID, SECRET);
        env.write_config(text);
        let config = env.config_path();
        let botocore = env.output(
            env.command(&python)
                .args(["-c", "import sys, botocore.configloader as c; p = c.raw_config_parse(sys.argv[1]).get('profile base', {}); print('mfa' if 'mfa_serial' in p else 'none')"])
                .arg(&config),
        );
        let valid = botocore.status.success();
        let asks_mfa = valid && botocore.stdout.trim() == "mfa";
        let list = env.run(&["list", "--profiles"]);
        let explain = env.run(&["exec", "--explain", "base"]);
        let before = fs::read(&config).unwrap();
        let add = env.run_with(
            &[
                ("AWS_ACCESS_KEY_ID", KEY_ID),
                ("AWS_SECRET_ACCESS_KEY", SECRET),
            ],
            &["add", "--env", "newp"],
        );
        for (command, run) in [("list", &list), ("exec --explain", &explain), ("add", &add)] {
            assert_eq!(
                run.status.success(),
                valid,
                "{name}: `vault {command}` disagrees with the AWS CLI (valid: {valid}): {}",
                run.stderr
            );
        }
        if valid {
            assert_eq!(
                explain.stdout.contains("MFA device"),
                asks_mfa,
                "{name}: MFA as the AWS CLI reads it: {asks_mfa}\n{}",
                explain.stdout
            );
        } else {
            assert_eq!(
                fs::read(&config).unwrap(),
                before,
                "{name}: the config changed"
            );
            assert!(!stored(&env).contains("newp"), "{name}: the key was stored");
            assert!(
                explain.stderr.contains("is not valid"),
                "{name}: {}",
                explain.stderr
            );
        }
    }
}

/// A config with CRLF line endings (edited on Windows) keeps them when `add` appends.
#[test]
fn add_keeps_the_configs_line_endings() {
    let env = env();
    env.write_config("[profile a]\r\nregion = us-east-1\r\n");
    env.store_key("b", KEY_ID, SECRET);
    env.run_with(
        &[
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
        &["add", "--env", "--force", "b"],
    )
    .success();
    assert_eq!(
        fs::read_to_string(env.config_path()).unwrap(),
        "[profile a]\r\nregion = us-east-1\r\n[profile b]\r\n"
    );
}
