//! A passphrase from the environment (`AWS_VAULT_FILE_PASSPHRASE`, what scripts and CI do)
//! pays scrypt once per idle timeout, not once per command: the opened vault key is kept in
//! the session keyring wrapped under that passphrase. Observed through `--debug`'s "opening
//! the vault key with scrypt" line, never through timing.

use vault_harness::{Run, TestEnv, skip};

const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const PASSPHRASE: &str = "scripts pass it along";
const SCRYPT: &str = "opening the vault key with scrypt";

fn scripted() -> Option<TestEnv> {
    let mut env = TestEnv::new();
    if !env.require_program("keyctl", "keyutils") {
        return None;
    }
    if !env
        .output(env.command("keyctl").args(["show", "@s"]))
        .status
        .success()
    {
        skip("no kernel keyring here");
        return None;
    }
    env.use_file_vault(PASSPHRASE);
    env.write_config("[profile base]\nregion = us-east-1\n");
    env.store_key("base", KEY_ID, SECRET);
    // `add` opened the vault too; start from a vault nobody has opened.
    env.run(&["lock"]).success();
    Some(env)
}

fn export(env: &TestEnv, vars: &[(&str, &str)]) -> Run {
    env.run_with(vars, &["--debug", "export", "--no-session", "base"])
}

fn scrypts(run: &Run) -> usize {
    run.stderr.matches(SCRYPT).count()
}

#[test]
fn the_second_command_skips_scrypt_and_another_passphrase_does_not_match() {
    let Some(env) = scripted() else { return };
    let first = export(&env, &[]);
    first.success();
    assert_eq!(scrypts(&first), 1, "{}", first.stderr);
    for _ in 0..3 {
        let again = export(&env, &[]);
        again.success().stderr_has("kept wrapped");
        assert_eq!(scrypts(&again), 0, "{}", again.stderr);
        assert!(again.stdout.contains(KEY_ID));
    }
    // Another passphrase is not served from what is kept: scrypt, then "wrong".
    let files = env.vault_files();
    let wrong = export(&env, &[("AWS_VAULT_FILE_PASSPHRASE", "not it")]);
    wrong.failure(1).stderr_has("wrong passphrase");
    assert_eq!(scrypts(&wrong), 1);
    assert_eq!(env.vault_files(), files);
    // Without a passphrase nothing is served: scripts' shortcut is not `vault unlock`.
    env.run_with(&[], &["export", "--no-session", "base"])
        .success();
    let mut bare = env.vault(&["export", "--no-session", "base"]);
    bare.env_remove("AWS_VAULT_FILE_PASSPHRASE");
    env.output(&mut bare)
        .failure(1)
        .stderr_has("needs its passphrase");
    // Nothing kept is in plain text: the keyring holds the wrapped key only.
    let meta = std::fs::read_to_string(env.vault_dir().join("vault.json")).unwrap();
    let at = meta.find("\"id\": \"").unwrap() + 7;
    let id = &meta[at..at + 16];
    let shown = env.output(env.command("keyctl").args(["show", "@s"]));
    assert!(
        shown.stdout.contains(&format!("vault-env:{id}")),
        "{}",
        shown.stdout
    );
    assert!(
        !shown.stdout.contains(&format!("vault-unlock:{id}")),
        "{}",
        shown.stdout
    );
    // (export prints the key on stdout, as asked; the passphrase never shows.)
    assert!(!env.transcript().contains(PASSPHRASE));
}

#[test]
fn lock_and_the_idle_timeout_end_the_shortcut() {
    let Some(env) = scripted() else { return };
    assert_eq!(scrypts(&export(&env, &[])), 1);
    assert_eq!(scrypts(&export(&env, &[])), 0);
    env.run(&["lock"]).success().stderr_has("Locked");
    assert_eq!(scrypts(&export(&env, &[])), 1);

    let short = [("AWS_VAULT_UNLOCK_TIMEOUT", "2s")];
    env.run(&["lock"]).success();
    assert_eq!(scrypts(&export(&env, &short)), 1);
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert_eq!(
        scrypts(&export(&env, &short)),
        1,
        "the idle timeout did not end it"
    );
    // Turned off: every command pays scrypt.
    let off = [("AWS_VAULT_UNLOCK_TIMEOUT", "0")];
    env.run(&["lock"]).success();
    assert_eq!(scrypts(&export(&env, &off)), 1);
    assert_eq!(scrypts(&export(&env, &off)), 1);
}

#[test]
fn another_session_keyring_gets_nothing_from_what_is_kept() {
    let Some(env) = scripted() else { return };
    assert_eq!(scrypts(&export(&env, &[])), 1);
    // The same user, same passphrase, but a new session keyring: it must pay scrypt itself.
    let mut other = env.command("keyctl");
    other
        .args(["session", "-"])
        .arg(vault_harness::vault_bin())
        .args(["--debug", "export", "--no-session", "base"]);
    let run = env.output(&mut other);
    run.success();
    assert_eq!(scrypts(&run), 1, "{}", run.stderr);
}

#[test]
fn thirty_two_parallel_cold_exports_run_scrypt_once() {
    let Some(env) = scripted() else { return };
    let children: Vec<_> = (0..32)
        .map(|_| {
            env.vault(&[
                "--debug",
                "export",
                "--format",
                "json",
                "--no-session",
                "base",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("vault starts")
        })
        .collect();
    let mut total = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        assert!(String::from_utf8_lossy(&out.stdout).contains(KEY_ID));
        total += stderr.matches(SCRYPT).count();
    }
    assert_eq!(total, 1, "scrypt ran {total} times for 32 parallel exports");
}
