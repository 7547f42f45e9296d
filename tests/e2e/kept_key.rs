//! The Secret Service backend's vault key, kept in the kernel keyring for the idle timeout
//! (docs/backends.md, "The Secret Service backend uses the same cache"): once one command has
//! read it from gnome-keyring, later ones are served without the Secret Service;
//! `AWS_VAULT_UNLOCK_TIMEOUT=0` keeps nothing; `vault lock` forgets it.
//!
//! "Without the Secret Service" is the session bus address pointing at nothing: no D-Bus at
//! all, so nothing can answer (and no bus can start a new gnome-keyring on demand). Every
//! test runs in its own session keyring.

use vault_harness::{Run, SecretService, TestEnv};

const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// A secret-service vault on gnome-keyring (on a private bus) holding `base`, in the test's
/// own session keyring; `timeout` is `AWS_VAULT_UNLOCK_TIMEOUT` for every run, if given.
fn secret_service_vault(timeout: Option<&str>) -> Option<(TestEnv, SecretService)> {
    let mut env = TestEnv::new();
    if !env.require_program("dbus-daemon", "dbus")
        || !env.require_program("gnome-keyring-daemon", "gnome-keyring")
        || !env.use_own_session_keyring()
    {
        return None;
    }
    let service = SecretService::start(&mut env);
    env.set("AWS_VAULT_BACKEND", "secret-service");
    if let Some(timeout) = timeout {
        env.set("AWS_VAULT_UNLOCK_TIMEOUT", timeout);
    }
    env.store_key("base", KEY_ID, SECRET);
    Some((env, service))
}

/// `vault exec -n base`, whose child prints the key id it got: the vault key opened the
/// stored key pair.
fn base_key_id(env: &TestEnv, debug: bool) -> Run {
    let mut args = vec!["exec", "-n", "base", "--", "printenv", "AWS_ACCESS_KEY_ID"];
    if debug {
        args.insert(0, "--debug");
    }
    env.run(&args)
}

/// Without the Secret Service and nothing kept, the vault cannot be opened.
#[track_caller]
fn not_served(env: &TestEnv) {
    base_key_id(env, false)
        .failure(1)
        .stderr_has("cannot reach the Secret Service");
}

#[track_caller]
fn served(env: &TestEnv) {
    let run = base_key_id(env, false);
    run.success();
    assert_eq!(run.stdout.trim(), KEY_ID);
}

/// Whether the kernel keyring (the test's session keyring) holds a kept key for the vault.
fn kept(env: &TestEnv) -> bool {
    let meta = std::fs::read_to_string(env.vault_dir().join("vault.json")).unwrap();
    let at = meta.find("\"id\": \"").unwrap() + 7;
    let description = format!("vault-unlock:{}", &meta[at..at + 16]);
    env.output(
        env.command("keyctl")
            .args(["search", "@s", "user", &description]),
    )
    .status
    .success()
}

/// Points later runs at a bus that does not exist, and shows that nothing answers there.
fn without_secret_service(env: &mut TestEnv) {
    assert!(
        SecretService::answers(env),
        "no Secret Service to begin with"
    );
    let nowhere = env.dir.path().join("no-bus-at-all");
    env.set(
        "DBUS_SESSION_BUS_ADDRESS",
        format!("unix:path={}", nowhere.display()),
    );
    assert!(
        !SecretService::answers(env),
        "a Secret Service still answers"
    );
}

#[test]
fn a_command_after_the_first_is_served_from_the_kernel_keyring() {
    let Some((mut env, _service)) = secret_service_vault(None) else {
        return;
    };
    // The first command reads the vault key from gnome-keyring, and keeps it.
    served(&env);
    assert!(kept(&env), "nothing kept in the session keyring");

    without_secret_service(&mut env);
    let run = base_key_id(&env, true);
    run.success()
        .stderr_has("vault key kept unlocked in the kernel keyring");
    assert_eq!(run.stdout.trim(), KEY_ID);
    for _ in 0..3 {
        served(&env);
    }
}

#[test]
fn unlock_timeout_zero_keeps_nothing() {
    let Some((mut env, _service)) = secret_service_vault(Some("0")) else {
        return;
    };
    served(&env);
    assert!(!kept(&env), "kept although AWS_VAULT_UNLOCK_TIMEOUT=0");

    without_secret_service(&mut env);
    not_served(&env);
}

#[test]
fn lock_forgets_the_kept_key() {
    let Some((mut env, _service)) = secret_service_vault(None) else {
        return;
    };
    served(&env);
    assert!(kept(&env), "nothing kept in the session keyring");
    env.run(&["lock"]).success();
    assert!(!kept(&env), "still kept after `vault lock`");

    // Without the Secret Service the vault cannot be opened now; with it, it still can.
    let bus = env.get("DBUS_SESSION_BUS_ADDRESS").unwrap().clone();
    without_secret_service(&mut env);
    not_served(&env);
    env.set("DBUS_SESSION_BUS_ADDRESS", bus);
    served(&env);
}
