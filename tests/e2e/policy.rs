//! Session policies (`--policy`, `--policy-arn`, `vault_session_policy[_arns]`) against moto
//! as STS: what the last AssumeRole carries (read back from moto's recording), that narrowed
//! and open sessions never share a cache entry, the refusals before any STS call, and that
//! the profile keys leave the AWS CLI and aws-sdk-rust undisturbed.

use std::fs;

use vault_harness::{World, sdk_caller, venv};

const PASSPHRASE: &str = "policy tests: correct horse battery staple";
const POLICY: &str = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\", \"Action\": \"s3:*\", \"Resource\": \"*\"}\n  ]\n}\n";
const PACKED: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
const READ_ONLY: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";
const MINE: &str = "arn:aws:iam::123456789012:policy/team/Mine";

/// `base` (the stored key) → `lab` → `admin`; `narrow` is `admin` with the profile keys.
const CONFIG: &str = "\
[profile base]
region = us-east-1

[profile lab]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/lab
region = us-east-1

[profile admin]
source_profile = lab
role_arn = arn:aws:iam::123456789012:role/admin
region = us-east-1

[profile narrow]
source_profile = lab
role_arn = arn:aws:iam::123456789012:role/admin
vault_session_policy = @DIR@/policy.json
vault_session_policy_arns = arn:aws:iam::aws:policy/ReadOnlyAccess, arn:aws:iam::123456789012:policy/team/Mine
region = us-east-1

[profile badjson]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/lab
vault_session_policy = {\"Version\": \"2012-10-17\" \"Statement\": []}

[profile badarn]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/lab
vault_session_policy_arns = arn:aws:iam::123456789012:role/not-a-policy
";

fn world() -> World {
    let w = World::new(PASSPHRASE, CONFIG);
    fs::write(w.path("policy.json"), POLICY).unwrap();
    w
}

/// `vault export --format json ARGS`: the access key id handed out.
#[track_caller]
fn key_id(w: &World, args: &[&str]) -> String {
    let mut all = vec!["export", "--format", "json"];
    all.extend_from_slice(args);
    let run = w.run(&all);
    run.success();
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    json["AccessKeyId"].as_str().unwrap().to_owned()
}

#[test]
fn the_policy_goes_on_the_last_assume_role_only() {
    let w = world();
    let file = w.path("policy.json").display().to_string();
    key_id(
        &w,
        &[
            "admin",
            "--policy",
            &file,
            "--policy-arn",
            READ_ONLY,
            "--policy-arn",
            MINE,
        ],
    );
    let calls = w.minted();
    let roles: Vec<_> = calls.iter().filter(|c| c.action == "AssumeRole").collect();
    assert_eq!(roles.len(), 2, "{calls:?}");
    assert!(
        roles[0].params.keys().all(|k| !k.starts_with("Policy")),
        "{:?}",
        roles[0]
    );
    let last = roles[1];
    assert!(last.param("RoleArn").unwrap().ends_with("role/admin"));
    assert_eq!(last.param("Policy"), Some(PACKED));
    assert_eq!(last.param("PolicyArns.member.1.arn"), Some(READ_ONLY));
    assert_eq!(last.param("PolicyArns.member.2.arn"), Some(MINE));
    assert_eq!(last.param("PolicyArns.member.3.arn"), None);

    // The profile keys say the same: same session, served from the cache.
    let before = w.minted().len();
    w.run(&["exec", "narrow", "--", "true"]).success();
    assert_eq!(w.minted().len(), before, "{:?}", w.minted());
    w.run(&["exec", "--explain", "narrow"])
        .success()
        .stdout_has(&format!("session policy     {PACKED}"))
        .stdout_has(&format!("policy_arn         {MINE}"))
        .stdout_has("cached, ");
}

#[test]
fn narrowed_and_open_sessions_never_share_the_cache() {
    let w = world();
    let inline = PACKED;
    let narrowed = key_id(&w, &["admin", "--policy", inline]);
    assert_eq!(w.moto.count("AssumeRole"), 2);
    // Unrestricted: a session of its own (the first role's is reused).
    let open = key_id(&w, &["admin"]);
    assert_ne!(open, narrowed);
    assert_eq!(w.moto.count("AssumeRole"), 3);
    assert_eq!(w.minted().last().unwrap().param("Policy"), None);
    // Each is reused by a command that asks for the same thing, and only by that.
    assert_eq!(key_id(&w, &["admin"]), open);
    assert_eq!(key_id(&w, &["admin", "--policy", inline]), narrowed);
    assert_eq!(w.moto.count("AssumeRole"), 3);
    // Another narrowing is another session.
    let other = key_id(&w, &["admin", "--policy-arn", READ_ONLY]);
    assert!(other != open && other != narrowed);
    assert_eq!(w.moto.count("AssumeRole"), 4);
    let run = w.run(&["exec", "--explain", "admin"]);
    run.success();
    assert!(!run.stdout.contains("session policy"), "{}", run.stdout);
}

#[test]
fn bad_policies_are_refused_before_any_sts_call() {
    let w = world();
    let multi = w.path("bad.json");
    fs::write(
        &multi,
        "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [,]\n}\n",
    )
    .unwrap();
    let multi = multi.display().to_string();
    let long = format!("{{\"Sid\":\"{}\"}}", "x".repeat(2048));
    let cases: [(&[&str], i32, &[&str]); 8] = [
        (
            &["admin", "--policy", "{\"Version\": }"],
            2,
            &["--policy", "line 1 column"],
        ),
        (
            &["admin", "--policy", &multi],
            2,
            &["bad.json", "line 3 column"],
        ),
        (
            &["admin", "--policy", &long],
            2,
            &["2058 characters", "at most 2048"],
        ),
        (
            &["admin", "--policy", "/no/such/policy.json"],
            2,
            &["cannot read"],
        ),
        (
            &["admin", "--policy-arn", "ReadOnlyAccess"],
            2,
            &["--policy-arn", "not a policy ARN"],
        ),
        (
            &["badjson"],
            1,
            &["vault_session_policy", "config:", "line 1 column"],
        ),
        (
            &["badarn"],
            1,
            &["vault_session_policy_arns", "not a policy ARN"],
        ),
        (
            &["base", "--policy", PACKED],
            1,
            &[
                "assumes no role",
                "GetSessionToken takes none",
                "vault login base",
            ],
        ),
    ];
    for (args, code, expected) in cases {
        for command in [&["exec"][..], &["export"], &["exec", "--explain"]] {
            let mut all = command.to_vec();
            all.extend_from_slice(args);
            if command == ["exec"] {
                all.extend_from_slice(&["--", "true"]);
            }
            w.assert_refused(&all, code, expected);
        }
    }
    assert!(w.moto.sts_calls().is_empty(), "{:?}", w.moto.sts_calls());
}

#[test]
fn the_aws_cli_and_aws_sdk_rust_ignore_the_profile_keys() {
    let w = world();
    // `narrow` with its own static key, as either SDK would read it.
    let config = format!(
        "[profile narrow]\nregion = us-east-1\naws_access_key_id = {}\naws_secret_access_key = {}\n\
         vault_session_policy = {PACKED}\nvault_session_policy_arns = {READ_ONLY}, {MINE}\n",
        w.key_id, w.secret
    );
    let path = w.path("sdk-config");
    fs::write(&path, config).unwrap();
    let run = |program: std::path::PathBuf, args: &[&str]| {
        let out = w
            .env
            .command(program)
            .args(args)
            .env("AWS_CONFIG_FILE", &path)
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_PROFILE", "narrow")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    run(venv().join("bin/aws"), &["configure", "list"]);
    let arn = run(venv().join("bin/aws"), &["sts", "get-caller-identity"]);
    assert!(arn.contains("user/alice"), "{arn}");
    let arn = run(sdk_caller(), &[]);
    assert!(arn.contains("user/alice"), "{arn}");
}
