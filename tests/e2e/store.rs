//! The store and `add` / `list` / `remove`, with the file backend, gnome-keyring's Secret
//! Service and the kernel keyring.

use std::fs;
use std::process::Stdio;
use std::thread;

use vault_harness::{Run, SecretService, TestEnv, skip};

const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const PASSPHRASE: &str = "correct horse battery staple";

/// An env with a `file` vault and its passphrase.
fn file_env() -> TestEnv {
    let mut env = TestEnv::new();
    env.set("AWS_VAULT_BACKEND", "file");
    env.set("AWS_VAULT_FILE_PASSPHRASE", PASSPHRASE);
    env
}

fn add(env: &TestEnv, profile: &str, extra: &[&str]) -> Run {
    let mut args = vec!["add", "--env", profile];
    args.extend_from_slice(extra);
    env.run_with(
        &[
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
        &args,
    )
}

/// Neither the key id nor the secret appears anywhere: output, files under the vault dir.
#[track_caller]
fn assert_no_plaintext(env: &TestEnv) {
    let transcript = env.transcript();
    for secret in [KEY_ID, SECRET, PASSPHRASE] {
        assert!(!transcript.contains(secret), "output shows {secret:?}");
        for (path, bytes) in env.vault_files() {
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(secret),
                "{} holds {secret:?}",
                path.display()
            );
        }
    }
}

fn names(run: &Run) -> Vec<String> {
    run.stdout.lines().map(str::to_owned).collect()
}

#[test]
fn file_backend_round_trip() {
    let env = file_env();
    add(&env, "lab", &["--debug"])
        .success()
        .stderr_has("Added credentials to profile \"lab\"");

    let list = env.run(&["list", "--debug"]);
    list.success().stdout_has("lab");
    assert_eq!(names(&env.run(&["ls", "--credentials"])), ["lab"]);
    assert_eq!(
        fs::read_to_string(env.config_path()).unwrap(),
        "[profile lab]\n"
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&env.vault_dir()), 0o700);
        for (path, _) in env.vault_files() {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }

    env.run(&["remove", "--force", "lab", "--debug"]).success();
    assert!(names(&env.run(&["list", "--credentials"])).is_empty());
    assert_no_plaintext(&env);
}

#[test]
fn secret_service_round_trip_on_gnome_keyring() {
    let mut env = TestEnv::new();
    let _service = SecretService::start(&mut env);
    env.set("AWS_VAULT_BACKEND", "secret-service");

    add(&env, "lab", &["--debug"]).success();
    assert_eq!(names(&env.run(&["list", "--credentials"])), ["lab"]);

    // The vault key really lives in gnome-keyring, as one item, and nothing else does.
    let search = env.output(
        env.command("secret-tool")
            .args(["search", "--all", "service", "vault"]),
    );
    let items = format!("{}{}", search.stdout, search.stderr);
    assert_eq!(
        items.matches("attribute.service = vault").count(),
        1,
        "{items}"
    );
    assert!(items.contains("AGE-SECRET-KEY-1"), "{items}");
    // The user is the vault's id (as vault.json records it), the label says what it is.
    let id = items
        .lines()
        .find_map(|l| l.trim().strip_prefix("attribute.username = "))
        .expect("a username attribute")
        .to_owned();
    let meta = fs::read_to_string(env.vault_dir().join("vault.json")).unwrap();
    assert!(meta.contains(&format!("\"id\": \"{id}\"")), "{meta}");
    assert!(
        items.contains(&format!("label = vault key {id}")),
        "{items}"
    );

    // An item with the same attributes written by another client (libsecret's secret-tool,
    // as keyring-core's store wrote them before vault talked to the Secret Service itself)
    // is the vault key too.
    let key = items
        .lines()
        .find_map(|l| l.trim().strip_prefix("secret = "))
        .expect("secret-tool shows the secret")
        .to_owned();
    env.output(
        env.command("secret-tool")
            .args(["clear", "service", "vault"]),
    );
    let mut store = env.command("secret-tool");
    store
        .args([
            "store",
            "--label",
            "from another client",
            "service",
            "vault",
            "username",
        ])
        .arg(&id)
        .stdin(std::process::Stdio::piped());
    let mut child = store.spawn().unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(key.as_bytes())
            .unwrap();
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(names(&env.run(&["list", "--credentials"])), ["lab"]);

    // A second process reads the key back from the keyring (no passphrase anywhere).
    add(&env, "prod", &[]).success();
    env.run(&["rm", "-f", "lab"]).success();
    assert_eq!(names(&env.run(&["list", "--credentials"])), ["prod"]);
    assert_no_plaintext(&env);
}

#[test]
fn default_backend_is_the_secret_service_when_reachable() {
    let mut env = TestEnv::new();
    let _service = SecretService::start(&mut env);
    add(&env, "lab", &[]).success();
    let meta = fs::read_to_string(env.vault_dir().join("vault.json")).unwrap();
    assert!(meta.contains("\"backend\": \"secret-service\""), "{meta}");
}

#[test]
fn default_backend_falls_back_to_file_and_says_so() {
    let mut env = TestEnv::new();
    env.set("AWS_VAULT_FILE_PASSPHRASE", PASSPHRASE);
    let run = add(&env, "lab", &[]);
    run.success()
        .stderr_has("file backend")
        .stderr_has("--backend");
    let meta = fs::read_to_string(env.vault_dir().join("vault.json")).unwrap();
    assert!(meta.contains("\"backend\": \"file\""), "{meta}");
    // Once created, the vault's own backend is used without a notice.
    let again = env.run(&["list"]);
    again.success();
    assert!(!again.stderr.contains("file backend"), "{}", again.stderr);
}

/// aws-vault's headless-Linux pain: a Secret Service that answers but cannot store (locked
/// or missing login collection). The default gives way to the file backend and says so; an
/// explicit `--backend secret-service` fails with a clear error instead.
#[test]
fn a_locked_secret_service_makes_the_default_fall_back_to_file() {
    let mut env = TestEnv::new();
    let _service = SecretService::start_locked(&mut env);
    env.set("AWS_VAULT_FILE_PASSPHRASE", PASSPHRASE);
    let explicit = add(&env, "lab", &["--backend", "secret-service"]);
    explicit.failure(1).stderr_has("--backend file");
    assert!(!env.vault_dir().join("vault.json").exists());

    add(&env, "lab", &[]).success().stderr_has("file backend");
    let meta = fs::read_to_string(env.vault_dir().join("vault.json")).unwrap();
    assert!(meta.contains("\"backend\": \"file\""), "{meta}");
}

#[test]
fn secret_service_unreachable_names_the_file_backend() {
    let env = TestEnv::new();
    let run = add(&env, "lab", &["--backend", "secret-service"]);
    run.failure(1)
        .stderr_has("secret-service backend is not available")
        .stderr_has("--backend file");
    assert!(
        env.vault_files()
            .iter()
            .all(|(p, _)| !p.ends_with("credentials.json"))
    );
}

#[test]
fn keyctl_round_trip_in_a_session_keyring() {
    let env = TestEnv::new();
    if !env.require_program("keyctl", "keyutils") {
        return;
    }
    let probe = env.output(env.command("keyctl").args(["session", "-", "true"]));
    if !probe.status.success() {
        skip(&format!(
            "the kernel refuses a new session keyring here ({})",
            probe.stderr.trim()
        ));
        return;
    }
    // One session keyring for the whole sequence, as a login session would have.
    let bin = vault_harness::vault_bin();
    let script = format!(
        r#"set -e
V="{bin}"
"$V" --backend keyctl add --env lab
"$V" --backend keyctl list --credentials
"$V" --backend keyctl add --env --force lab
id=$(sed -n 's/.*"id": "\([0-9a-f]*\)".*/\1/p' "$AWS_VAULT_FILE_DIR/vault.json")
key=$(keyctl search @s user "keyring:$id@vault")
echo "kernel key $key"
"$V" --backend keyctl rm -f lab
keyctl invalidate "$key"
"#,
        bin = bin.display()
    );
    let run = env.output(
        env.command("keyctl")
            .args(["session", "-", "sh", "-c", &script])
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET),
    );
    run.success().stdout_has("lab\n").stdout_has("kernel key ");
    assert_no_plaintext(&env);
}

/// Each kind of damage: a clear error, exit 1, and every file byte-identical afterwards.
#[test]
fn damage_and_wrong_passphrase_leave_the_store_untouched() {
    let env = file_env();
    add(&env, "lab", &[]).success();
    let pristine = env.vault_files();
    let creds = env.vault_dir().join("credentials.json");
    let meta = env.vault_dir().join("vault.json");

    let check = |what: &str, expect: &str| {
        let before = env.vault_files();
        for args in [
            &["add", "--env", "--force", "other"][..],
            &["list"][..],
            &["remove", "-f", "lab"][..],
        ] {
            let run = add_or_run(&env, args);
            assert_eq!(run.code(), 1, "{what}: {args:?}\n{}", run.stderr);
            assert!(
                run.stderr.contains(expect),
                "{what}: {args:?}: stderr lacks {expect:?}:\n{}",
                run.stderr
            );
            assert!(
                run.stderr.contains("hint:"),
                "{what}: no hint:\n{}",
                run.stderr
            );
            assert_eq!(
                env.vault_files(),
                before,
                "{what}: {args:?} changed the store"
            );
        }
    };

    // Wrong passphrase: only operations that open the vault key notice it.
    let run = env.run_with(
        &[
            ("AWS_VAULT_FILE_PASSPHRASE", "not it"),
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
        &["add", "--env", "other"],
    );
    run.failure(1).stderr_has("wrong passphrase");
    assert_eq!(env.vault_files(), pristine);

    // Truncated credentials file.
    let original = fs::read(&creds).unwrap();
    fs::write(&creds, &original[..original.len() / 2]).unwrap();
    check("truncated", "is damaged");

    // One flipped byte in the body.
    let mut flipped = original.clone();
    let at = original.len() - 20;
    flipped[at] ^= 0x01;
    fs::write(&creds, &flipped).unwrap();
    check("flipped byte", "is damaged");

    // A newer format version.
    let text = String::from_utf8(original.clone()).unwrap();
    fs::write(&creds, text.replacen("\"version\":1", "\"version\":99", 1)).unwrap();
    check("unknown version", "format version 99");
    fs::write(&creds, &original).unwrap();

    // A flipped byte in the vault key file.
    let meta_original = fs::read(&meta).unwrap();
    let mut flipped = meta_original.clone();
    let at = meta_original.len() - 30;
    flipped[at] ^= 0x01;
    fs::write(&meta, &flipped).unwrap();
    check("flipped byte in vault.json", "is damaged");
    fs::write(&meta, &meta_original).unwrap();

    assert_eq!(env.vault_files(), pristine);
    env.run(&["list", "--credentials"])
        .success()
        .stdout_has("lab");
}

fn add_or_run(env: &TestEnv, args: &[&str]) -> Run {
    env.run_with(
        &[
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
        args,
    )
}

#[test]
fn sixteen_concurrent_adds_all_land() {
    let env = file_env();
    let children: Vec<_> = (0..16)
        .map(|i| {
            env.vault(&["add", "--env", &format!("p{i:02}")])
                .env("AWS_ACCESS_KEY_ID", KEY_ID)
                .env("AWS_SECRET_ACCESS_KEY", SECRET)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let handles: Vec<_> = children
        .into_iter()
        .map(|c| thread::spawn(move || c.wait_with_output().unwrap()))
        .collect();
    for h in handles {
        let out = h.join().unwrap();
        let run = env.record(out.status, out.stdout, out.stderr);
        run.success();
    }
    let listed = names(&env.run(&["list", "--credentials"]));
    let expected: Vec<String> = (0..16).map(|i| format!("p{i:02}")).collect();
    assert_eq!(listed, expected);
    // Every profile also got its config section, once.
    let config = fs::read_to_string(env.config_path()).unwrap();
    for name in &expected {
        assert_eq!(
            config.matches(&format!("[profile {name}]")).count(),
            1,
            "{config}"
        );
    }
}

#[test]
fn bad_input_on_add_writes_nothing() {
    let env = file_env();
    let cases: [(&str, &str, &str); 4] = [
        ("AKIA123", SECRET, "access key id is not valid"),
        ("AKIAIOSFODNN7EXAMPL!", SECRET, "access key id is not valid"),
        (KEY_ID, "", "AWS_SECRET_ACCESS_KEY is not set"),
        (KEY_ID, "short/secret", "secret access key is not valid"),
    ];
    for (id, secret, expect) in cases {
        let run = env.run_with(
            &[("AWS_ACCESS_KEY_ID", id), ("AWS_SECRET_ACCESS_KEY", secret)],
            &["add", "--env", "lab"],
        );
        run.failure(1).stderr_has(expect);
        assert!(
            !run.stderr.contains(secret) || secret.is_empty(),
            "{}",
            run.stderr
        );
        assert!(
            env.vault_files().is_empty(),
            "{expect}: wrote {:?}",
            env.vault_files()
        );
        assert!(!env.config_path().exists(), "{expect}: wrote the config");
    }
    let run = env.run_with(
        &[
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
        &["add", "--env", "bad name"],
    );
    run.failure(1).stderr_has("invalid profile name");
    // Without --env and without a terminal, add says how to proceed.
    env.run(&["add", "lab"]).failure(1).stderr_has("--env");
    assert!(env.vault_files().is_empty());
}

#[test]
fn replacing_and_removing_need_consent() {
    let env = file_env();
    add(&env, "lab", &[]).success();
    add(&env, "lab", &[]).failure(1).stderr_has("--force");
    add(&env, "lab", &["--force"]).success();
    env.run(&["remove", "lab"]).failure(1).stderr_has("--force");
    env.run(&["remove", "-f", "nope"])
        .failure(1)
        .stderr_has("no key pair for profile \"nope\"");
    env.run(&["rm", "-f", "lab"]).success();
}

#[test]
fn add_config_keeps_every_byte_of_the_config() {
    let env = file_env();
    let original = "# my settings\n[default]\nregion=eu-west-1   \n\n[profile lab]\nrole_arn = arn:aws:iam::123456789012:role/x\n  ; trailing comment";
    env.write_config(original);
    add(&env, "lab", &[]).success();
    assert_eq!(fs::read_to_string(env.config_path()).unwrap(), original);
    add(&env, "base", &[]).success();
    assert_eq!(
        fs::read_to_string(env.config_path()).unwrap(),
        format!("{original}\n[profile base]\n")
    );
    add(&env, "other", &["--no-add-config"]).success();
    assert!(
        !fs::read_to_string(env.config_path())
            .unwrap()
            .contains("other")
    );
}

#[test]
fn list_shows_config_profiles_and_stored_keys() {
    let env = file_env();
    env.write_config("[default]\nregion = us-east-1\n[profile lab]\nsource_profile = base\n");
    add(&env, "base", &["--no-add-config"]).success();
    assert_eq!(names(&env.run(&["list", "--profiles"])), ["default", "lab"]);
    assert_eq!(names(&env.run(&["list", "--credentials"])), ["base"]);
    assert!(names(&env.run(&["list", "--sessions"])).is_empty());

    let table = env.run(&["list"]);
    table.success();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("Profile"), "{}", table.stdout);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("base") && l.contains(" base "))
    );

    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["list", "--json"]).stdout).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["profile"], "base");
    assert_eq!(rows[0]["credentials"], "base");
    assert_eq!(rows[0]["in_config"], false);
    assert_eq!(rows[2]["profile"], "lab");
    // lab takes its credentials from base through source_profile.
    assert_eq!(rows[2]["credentials"], "base");
}

#[test]
fn usage_errors_exit_2_and_config_errors_exit_1() {
    let env = file_env();
    env.run(&["add"]).failure(2);
    env.run(&["frobnicate"]).failure(2);
    env.run(&["--backend", "nope", "list"])
        .failure(2)
        .stderr_has("unknown backend");
    env.run_with(&[("AWS_VAULT_BACKEND", "nope")], &["list"])
        .failure(2)
        .stderr_has("AWS_VAULT_BACKEND");
    env.write_config("[profile lab\nregion = x\n");
    env.run(&["list"]).failure(1).stderr_has("config");
    env.run(&["--version"]).success().stdout_has("vault ");
}
