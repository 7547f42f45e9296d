//! `vault rotate`: against moto's IAM, the happy path and the two ways it can stop half-way.
//! In every case the vault ends with a key that works.

use vault_harness::World;

const PASSPHRASE: &str = "rotate test";

/// [`World`] with `base` and a role profile `lab`.
fn world() -> World {
    World::new(PASSPHRASE, CONFIG)
}

const CONFIG: &str = "[profile base]\nregion = us-east-1\n\
     [profile lab]\nsource_profile = base\nrole_arn = arn:aws:iam::123456789012:role/lab\n";

/// The access key ids IAM (moto) has for alice.
fn keys_in_iam(w: &World) -> Vec<String> {
    let listed = w
        .moto
        .aws(&w.env, &["iam", "list-access-keys", "--user-name", "alice"]);
    listed["AccessKeyMetadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["AccessKeyId"].as_str().unwrap().to_owned())
        .collect()
}

/// Lets alice do anything, so that with moto's auth on only a wrong key is refused.
fn allow_everything(w: &World) {
    put_alice_policy(
        w,
        "everything",
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    );
}

/// Gives alice the inline policy `name`.
fn put_alice_policy(w: &World, name: &str, policy: &str) {
    w.moto.aws(
        &w.env,
        &[
            "iam",
            "put-user-policy",
            "--user-name",
            "alice",
            "--policy-name",
            name,
            "--policy-document",
            policy,
        ],
    );
}

/// The key id the vault's key pair has, as the child of `exec -n base` sees it.
fn stored_key_id(w: &World) -> String {
    let run = w.env.run(&[
        "exec",
        "-n",
        "base",
        "--",
        "sh",
        "-c",
        "echo $AWS_ACCESS_KEY_ID",
    ]);
    run.success();
    run.stdout.trim().to_owned()
}

#[test]
fn rotate_replaces_the_key_everywhere() {
    let w = world();
    w.env.run(&["exec", "lab", "--", "true"]).success();
    assert_eq!(w.env.run(&["list", "--sessions"]).stdout.trim(), "lab");

    let run = w.env.run(&["rotate", "lab"]);
    run.success()
        .stderr_has("Rotated the key of profile \"base\"");
    let keys = keys_in_iam(&w);
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_ne!(keys[0], w.key_id);
    assert_eq!(stored_key_id(&w), keys[0]);
    // Sessions minted with the old key are gone; a new one works, with moto checking every
    // signature from here on: only the key IAM now has, stored whole, gets through.
    assert!(w.env.run(&["list", "--sessions"]).stdout.trim().is_empty());
    allow_everything(&w);
    w.moto.enable_auth();
    let arn = w.env.caller_arn(&[], &["exec", "lab"]);
    arn.success().stdout_has("assumed-role/lab/");
    let calls = w.moto.sts_actions();
    assert!(calls.iter().any(|a| a == "GetCallerIdentity"), "{calls:?}");
    w.env
        .caller_arn(&[], &["exec", "-n", "base"])
        .success()
        .stdout_has("user/alice");
    // The same checks fail for a key that is not the new one: the old (deleted) key, and the
    // new key id with a wrong secret.
    w.write_config(&format!(
        "{CONFIG}[profile old]\nregion = us-east-1\n[profile forged]\nregion = us-east-1\n"
    ));
    w.store_key("old");
    w.env.store_key("forged", &keys[0], &w.secret);
    for profile in ["old", "forged"] {
        let refused = w.env.caller_arn(&[], &["exec", "-n", profile]);
        assert!(!refused.status.success(), "{profile}: {refused:?}");
        assert!(
            refused.stderr.contains("InvalidClientTokenId")
                || refused.stderr.contains("SignatureDoesNotMatch"),
            "{profile}: {}",
            refused.stderr
        );
    }
    assert!(
        !run.stderr.contains(&keys[0]),
        "the new key id was printed whole"
    );
}

#[test]
fn a_user_with_two_keys_changes_nothing() {
    let w = world();
    let other = w.moto.aws(
        &w.env,
        &["iam", "create-access-key", "--user-name", "alice"],
    );
    assert!(other["AccessKey"]["AccessKeyId"].is_string());
    let before = keys_in_iam(&w);
    assert_eq!(before.len(), 2);

    w.env
        .run(&["rotate", "base"])
        .failure(1)
        .stderr_has("nothing changed")
        .stderr_has("two keys");
    assert_eq!(keys_in_iam(&w), before);
    assert_eq!(stored_key_id(&w), w.key_id);
}

#[test]
fn a_refused_delete_leaves_the_new_key_stored_and_names_the_old_one() {
    let w = world();
    // alice may do anything but delete access keys; then moto starts checking signatures
    // and policies.
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"*","Resource":"*"},
        {"Effect":"Deny","Action":"iam:DeleteAccessKey","Resource":"*"}]}"#;
    put_alice_policy(&w, "no-delete", policy);
    w.moto.enable_auth();

    let run = w.env.run(&["rotate", "-n", "base"]);
    run.failure(1)
        .stderr_has("is stored and works")
        .stderr_has(&format!("the old key {} was not deleted", w.key_id))
        .stderr_has("aws iam delete-access-key --user-name alice");
    let new_id = stored_key_id(&w);
    assert_ne!(new_id, w.key_id);
    // The stored key works (moto now checks every signature).
    w.env
        .caller_arn(&[], &["exec", "-n", "base"])
        .success()
        .stdout_has("user/alice");
}
