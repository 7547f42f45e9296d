//! Unlock once: `vault unlock`, then commands without the passphrase; `vault lock`; the idle
//! timeout; and who can reach the kept key (the kernel keyring's permissions).

use std::thread;
use std::time::Duration;

use vault_harness::{TestEnv, skip};

const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const PASSPHRASE: &str = "unlock me once";

/// A `file` vault holding `base`; the passphrase is given only where a test says so.
fn vault_with_key() -> Option<TestEnv> {
    let mut env = TestEnv::new();
    if !env.require_program("keyctl", "keyutils") {
        return None;
    }
    let probe = env.output(env.command("keyctl").args(["show", "@s"]));
    if !probe.status.success() {
        skip(&format!(
            "no kernel keyring here, unlock-once cannot work ({})",
            probe.stderr.trim()
        ));
        return None;
    }
    // What vault keeps is kept only in this test's own session keyring.
    if !env.use_own_session_keyring() {
        return None;
    }
    env.set("AWS_VAULT_BACKEND", "file");
    env.run_with(
        &[
            ("AWS_VAULT_FILE_PASSPHRASE", PASSPHRASE),
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
        &["add", "--env", "--no-add-config", "base"],
    )
    .success();
    Some(env)
}

fn unlock(env: &TestEnv, extra: &[&str]) {
    let mut args = vec!["unlock"];
    args.extend_from_slice(extra);
    env.run_with(&[("AWS_VAULT_FILE_PASSPHRASE", PASSPHRASE)], &args)
        .success()
        .stderr_has("Unlocked");
}

/// A command that needs the vault key (decrypts the stored key pair).
fn needs_key(env: &TestEnv) -> vault_harness::Run {
    env.run(&["exec", "--no-session", "base", "--", "true"])
}

/// How many lines holding an age identity `keyctl pipe KEY` gives, run after `wrapper` (e.g.
/// `keyctl session -`): "1" when this process may read the kept key, "0" when not. The key
/// itself never reaches the output.
fn read_key(env: &TestEnv, wrapper: &[&str], key: &str) -> String {
    let script = "keyctl pipe \"$1\" 2>/dev/null | grep -c '^AGE-SECRET-KEY-1'";
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut cmd = env.command(program);
            cmd.args(args).arg("sh");
            cmd
        }
        None => env.command("sh"),
    };
    cmd.args(["-c", script, "sh", key]);
    env.output(&mut cmd).stdout.trim().to_owned()
}

fn vault_id(env: &TestEnv) -> String {
    let meta = std::fs::read_to_string(env.vault_dir().join("vault.json")).unwrap();
    let at = meta.find("\"id\": \"").unwrap() + 7;
    meta[at..at + 16].to_owned()
}

#[test]
fn unlocked_vault_serves_twenty_commands_without_the_passphrase() {
    let Some(env) = vault_with_key() else { return };
    // Locked: no terminal and no passphrase is a clear error.
    needs_key(&env)
        .failure(1)
        .stderr_has("needs its passphrase")
        .stderr_has("vault unlock");

    unlock(&env, &[]);
    for _ in 0..20 {
        needs_key(&env).success();
    }
    // A wrong passphrase in the environment does not matter while unlocked.
    env.run_with(
        &[("AWS_VAULT_FILE_PASSPHRASE", "wrong")],
        &["exec", "-n", "base", "--", "true"],
    )
    .success();

    env.run(&["lock"]).success().stderr_has("Locked");
    needs_key(&env)
        .failure(1)
        .stderr_has("needs its passphrase");
    env.run(&["lock"]).success().stderr_has("not unlocked");
    assert!(!env.transcript().contains(PASSPHRASE));
}

#[test]
fn unlock_idles_out() {
    let Some(env) = vault_with_key() else { return };
    unlock(&env, &["--for", "2s"]);
    needs_key(&env).success();
    // Each use pushes the timeout back; idle for longer than it and the key is gone.
    thread::sleep(Duration::from_secs(3));
    needs_key(&env)
        .failure(1)
        .stderr_has("needs its passphrase");
}

/// The timeout slides: a use before it expires pushes it back. The second use comes after
/// the first timeout would have ended, so a fixed timeout fails here. The margins are a
/// second either way; nothing is timed, only before/after the kernel's expiry.
#[test]
fn unlock_timeout_slides_with_use() {
    let Some(env) = vault_with_key() else { return };
    unlock(&env, &["--for", "3s"]);
    thread::sleep(Duration::from_secs(2));
    needs_key(&env).success(); // 2 s in: pushed back to 5 s
    thread::sleep(Duration::from_secs(2));
    needs_key(&env).success(); // 4 s in: past a fixed 3 s, inside the pushed-back 5 s
    thread::sleep(Duration::from_secs(4));
    needs_key(&env)
        .failure(1)
        .stderr_has("needs its passphrase");
}

#[test]
fn a_passphrase_from_the_environment_does_not_unlock_by_itself() {
    let Some(env) = vault_with_key() else { return };
    env.run_with(
        &[("AWS_VAULT_FILE_PASSPHRASE", PASSPHRASE)],
        &["exec", "-n", "base", "--", "true"],
    )
    .success();
    // Scripts keep their behaviour: nothing was kept.
    needs_key(&env).failure(1);
    env.run_with(&[("AWS_VAULT_UNLOCK_TIMEOUT", "0")], &["unlock"])
        .failure(1)
        .stderr_has("turned off");
    env.run_with(&[("AWS_VAULT_UNLOCK_TIMEOUT", "soon")], &["unlock"])
        .failure(2)
        .stderr_has("AWS_VAULT_UNLOCK_TIMEOUT");
}

/// The kept key is a `user` key readable only by its possessors: the same user in another
/// session keyring cannot read it, and neither can another uid.
#[test]
fn only_the_unlocking_session_can_read_the_kept_key() {
    let Some(env) = vault_with_key() else { return };
    unlock(&env, &["--for", "1m"]);
    let description = format!("vault-unlock:{}", vault_id(&env));
    let found = env.output(
        env.command("keyctl")
            .args(["search", "@s", "user", &description]),
    );
    found.success();
    let key = found.stdout.trim().to_owned();

    // Possessor-only permissions, nothing for user, group or others.
    let described = env.output(env.command("keyctl").args(["rdescribe", &key]));
    described.success();
    // `type;uid;gid;perm;description`
    let fields: Vec<&str> = described.stdout.trim().splitn(5, ';').collect();
    assert_eq!(fields[0], "user", "{}", described.stdout);
    assert_eq!(fields[3], "3f000000", "{}", described.stdout);
    assert_eq!(fields[4], description);

    // The owner can read it: the same uid in the same session keyring reads the payload (the
    // age identity), and vault, given no passphrase, opens the vault with it. So the checks
    // below fail for the reason they name, not because the key could not be found.
    assert_eq!(
        read_key(&env, &[], &key),
        "1",
        "the unlocking session cannot read its own key"
    );
    needs_key(&env).success();

    // Same uid, but a fresh session keyring: not a possessor, so no read.
    let elsewhere = env.output(
        env.command("keyctl")
            .args(["session", "-", "keyctl", "print", &key]),
    );
    assert!(
        !elsewhere.status.success(),
        "read from another session: {elsewhere:?}"
    );
    assert!(
        elsewhere.stderr.contains("Permission denied"),
        "{elsewhere:?}"
    );
    assert_eq!(read_key(&env, &["keyctl", "session", "-"], &key), "0");

    // Another uid (needs root to switch; CI runs as root).
    let root = env.output(env.command("id").arg("-u"));
    if root.stdout.trim() == "0" {
        let as_nobody = [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ];
        // The switch itself works: as uid 65534, keyctl runs and has a session keyring.
        let nobody_runs = env.output(env.command(as_nobody[0]).args(&as_nobody[1..]).args([
            "keyctl",
            "session",
            "-",
            "sh",
            "-c",
            "id -u; keyctl id @s",
        ]));
        nobody_runs.success().stdout_has("65534\n");
        let other = env.output(env.command("setpriv").args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "keyctl",
            "session",
            "-",
            "keyctl",
            "print",
            &key,
        ]));
        assert!(
            !other.status.success(),
            "another uid read the key: {other:?}"
        );
        assert!(!other.stdout.contains("AGE-SECRET-KEY"), "{other:?}");
        assert!(other.stderr.contains("Permission denied"), "{other:?}");
    } else {
        skip("the other-uid check: switching uid needs root");
    }
    env.run(&["lock"]).success();
}
