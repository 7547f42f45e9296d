//! `vault exec`, `vault export` and `vault clear` against moto as STS: which STS calls each
//! profile shape makes (read back from moto's recording), the child's environment, caching,
//! MFA code sources, concurrency, and every kind of bad input.
//!
//! Each test has its own moto, its own `file` vault and its own config file.

use std::collections::BTreeMap;
use std::fs;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use vault_harness::{ACCOUNT, Moto, TestEnv, World, assert_assumed, free_port, parse_env};

const PASSPHRASE: &str = "exec tests: correct horse battery staple";
const MFA: &str = "arn:aws:iam::123456789012:mfa/alice";
const LAB_ROLE_LINE: &str = "role_arn = arn:aws:iam::123456789012:role/lab";

/// Every profile shape the plan knows. `@DIR@` is the test's temp dir.
const CONFIG: &str = "\
[profile base]
region = us-east-1

[profile lab]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/lab
mfa_serial = arn:aws:iam::123456789012:mfa/alice
region = us-east-1

[profile prod]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/prod
mfa_serial = arn:aws:iam::123456789012:mfa/alice
region = eu-west-1

[profile lab2]
source_profile = lab
role_arn = arn:aws:iam::123456789012:role/lab2
region = us-east-1

[profile nomfa]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/nomfa
external_id = ext-123
role_session_name = alice-session
region = us-east-1

[profile long]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/long
mfa_serial = arn:aws:iam::123456789012:mfa/alice
duration_seconds = 7200
region = us-east-1

[profile viaproc]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/viaproc
mfa_serial = arn:aws:iam::123456789012:mfa/proc
mfa_process = touch @DIR@/mfa-process-ran; printf '654321\\n'
region = us-east-1

[profile counted]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/counted
mfa_serial = arn:aws:iam::123456789012:mfa/counted
mfa_process = echo run >> @DIR@/mfa-count; echo 123456
region = us-east-1

[profile counted2]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/counted2
mfa_serial = arn:aws:iam::123456789012:mfa/counted
mfa_process = echo run >> @DIR@/mfa-count; echo 123456
region = us-east-1
";

/// [`World`] on [`CONFIG`], with the checks exec tests share.
struct Lab(World);

impl std::ops::Deref for Lab {
    type Target = World;
    fn deref(&self) -> &World {
        &self.0
    }
}

impl Lab {
    fn new() -> Lab {
        Lab(World::new(PASSPHRASE, CONFIG))
    }

    /// `vault exec ARGS -- env -0`, which must succeed: the child's environment.
    #[track_caller]
    fn child_env(&self, args: &[&str]) -> BTreeMap<String, String> {
        self.child_env_with(&[], args)
    }

    #[track_caller]
    fn child_env_with(&self, vars: &[(&str, &str)], args: &[&str]) -> BTreeMap<String, String> {
        let mut all = vec!["exec"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--", "env", "-0"]);
        let run = self.env.run_with(vars, &all);
        run.success();
        parse_env(&run.stdout)
    }

    /// With nothing usable cached, no terminal and no code, exec must fail and say how to
    /// give one.
    #[track_caller]
    fn assert_needs_mfa_code(&self, vars: &[(&str, &str)], profile: &str) {
        let before = self.minted().len();
        self.env
            .run_with(vars, &["exec", profile, "--", "true"])
            .failure(1)
            .stderr_has("--mfa-token")
            .stderr_has("mfa_process");
        assert_eq!(self.minted().len(), before, "{:?}", self.minted());
    }

    /// `vault list --sessions`, one name per line.
    fn sessions(&self) -> Vec<String> {
        let run = self.run(&["list", "--sessions"]);
        run.success();
        run.stdout.lines().map(str::to_owned).collect()
    }

    /// Bad input: no STS call, nothing cached, no secret shown.
    #[track_caller]
    fn assert_nothing_minted(&self) {
        let calls = self.moto.sts_calls();
        assert!(calls.is_empty(), "{calls:?}");
        assert!(self.sessions().is_empty());
        self.assert_no_secrets(&[]);
    }
}

/// `vault exec ARGS -- aws sts get-caller-identity`: the ARN the AWS CLI sees.
#[track_caller]
fn caller_arn(lab: &Lab, args: &[&str]) -> String {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    let run = lab.env.caller_arn(&[], &all);
    run.success();
    run.stdout.trim().to_owned()
}

/// How long until AWS_CREDENTIAL_EXPIRATION, which must be RFC 3339 in UTC.
#[track_caller]
fn expires_in(child: &BTreeMap<String, String>) -> chrono::Duration {
    let text = child
        .get("AWS_CREDENTIAL_EXPIRATION")
        .expect("AWS_CREDENTIAL_EXPIRATION is set");
    let at = chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("AWS_CREDENTIAL_EXPIRATION={text:?} is not RFC 3339: {e}"));
    assert_eq!(at.offset().local_minus_utc(), 0, "{text} is not UTC");
    assert!(text.ends_with('Z'), "{text} is not written in UTC (Z)");
    at.with_timezone(&chrono::Utc) - chrono::Utc::now()
}

#[track_caller]
fn assert_about(left: chrono::Duration, minutes: i64) {
    let want = chrono::Duration::minutes(minutes);
    let slack = chrono::Duration::minutes(3);
    assert!(
        left > want - slack && left <= want + chrono::Duration::seconds(5),
        "credentials last {left}, expected about {minutes} min"
    );
}

/// The 1-based line of `line` in the config.
fn line_of(config: &str, line: &str) -> usize {
    config
        .lines()
        .position(|l| l == line)
        .expect("the line is in the config")
        + 1
}

// ----- plans: which STS calls each profile shape makes -----

#[test]
fn stored_key_gets_a_one_hour_session_token_and_the_env_contract() {
    let lab = Lab::new();
    // Everything the child must not inherit, plus two that must pass through.
    let stale = [
        ("AWS_ACCESS_KEY_ID", "AKIASTALESTALESTALE1"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "stale/stale/stale/stale/stale/stale/stal",
        ),
        ("AWS_SESSION_TOKEN", "stale-session-token"),
        ("AWS_SECURITY_TOKEN", "stale-security-token"),
        ("AWS_CREDENTIAL_FILE", "/nonexistent/credentials"),
        ("AWS_DEFAULT_PROFILE", "nowhere"),
        ("AWS_PROFILE", "nowhere"),
        ("AWS_SDK_LOAD_CONFIG", "1"),
        ("VAULT_TEST_PASSTHROUGH", "kept"),
    ];
    let child = lab.child_env_with(&stale, &["base"]);

    let calls = lab.minted();
    assert_eq!(lab.minted_actions(), ["GetSessionToken"], "{calls:?}");
    assert_eq!(calls[0].param("DurationSeconds"), Some("3600"), "{calls:?}");
    assert_eq!(calls[0].param("SerialNumber"), None, "{calls:?}");
    assert_eq!(calls[0].param("TokenCode"), None, "{calls:?}");

    let get = |name: &str| child.get(name).map(String::as_str);
    assert_eq!(get("AWS_VAULT"), Some("base"));
    let id = get("AWS_ACCESS_KEY_ID").expect("AWS_ACCESS_KEY_ID");
    assert!(id != "AKIASTALESTALESTALE1" && id != lab.key_id && !id.is_empty());
    let secret = get("AWS_SECRET_ACCESS_KEY").expect("AWS_SECRET_ACCESS_KEY");
    assert!(!secret.starts_with("stale") && secret != lab.secret && !secret.is_empty());
    let token = get("AWS_SESSION_TOKEN").expect("AWS_SESSION_TOKEN");
    assert!(token != "stale-session-token" && !token.is_empty());
    for gone in [
        "AWS_SECURITY_TOKEN",
        "AWS_CREDENTIAL_FILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_PROFILE",
        "AWS_SDK_LOAD_CONFIG",
        "AWS_VAULT_FILE_PASSPHRASE",
        "AWS_ACCESS_KEY",
        "AWS_SECRET_KEY",
    ] {
        assert_eq!(get(gone), None, "the child has {gone}");
    }
    assert_eq!(get("AWS_REGION"), Some("us-east-1"));
    assert_eq!(get("AWS_DEFAULT_REGION"), Some("us-east-1"));
    assert_eq!(get("AWS_ENDPOINT_URL"), Some(lab.moto.endpoint.as_str()));
    assert_eq!(get("VAULT_TEST_PASSTHROUGH"), Some("kept"));
    assert_about(expires_in(&child), 60);

    // Cached: the same credentials, no STS call.
    let again = lab.child_env(&["base"]);
    assert_eq!(lab.minted().len(), 1, "{:?}", lab.minted());
    assert_eq!(
        again.get("AWS_ACCESS_KEY_ID"),
        child.get("AWS_ACCESS_KEY_ID")
    );
    assert_eq!(
        again.get("AWS_SESSION_TOKEN"),
        child.get("AWS_SESSION_TOKEN")
    );
    assert_eq!(lab.sessions(), ["base"]);

    // --region wins over the profile's region, for the child too.
    let there = lab.child_env(&["--region", "ap-south-1", "base"]);
    assert_eq!(
        there.get("AWS_REGION").map(String::as_str),
        Some("ap-south-1")
    );
    assert_eq!(
        there.get("AWS_DEFAULT_REGION").map(String::as_str),
        Some("ap-south-1")
    );
    lab.assert_no_secrets(&[]);
}

#[test]
fn no_session_hands_the_stored_key_to_the_child() {
    let lab = Lab::new();
    // The child compares, so the key never reaches the captured output.
    let script = r#"[ "$AWS_ACCESS_KEY_ID" = "$WANT_ID" ] && echo same-id
[ "$AWS_SECRET_ACCESS_KEY" = "$WANT_SECRET" ] && echo same-secret
[ -z "${AWS_SESSION_TOKEN+x}" ] && echo no-token
echo "vault=$AWS_VAULT"
true"#;
    for flag in ["--no-session", "-n"] {
        let run = lab.env.run_with(
            &[("WANT_ID", &lab.key_id), ("WANT_SECRET", &lab.secret)],
            &["exec", flag, "base", "--", "sh", "-c", script],
        );
        run.success()
            .stdout_has("same-id\n")
            .stdout_has("same-secret\n")
            .stdout_has("no-token\n")
            .stdout_has("vault=base\n");
    }
    assert!(lab.minted().is_empty(), "{:?}", lab.minted());
    assert!(lab.sessions().is_empty());
    lab.assert_no_secrets(&[]);
}

#[test]
fn legacy_env_adds_the_old_variable_names() {
    let lab = Lab::new();
    let child = lab.child_env(&["--legacy-env", "base"]);
    let get = |name: &str| child.get(name).map(String::as_str);
    assert!(get("AWS_ACCESS_KEY_ID").is_some());
    assert_eq!(get("AWS_ACCESS_KEY"), get("AWS_ACCESS_KEY_ID"));
    assert_eq!(get("AWS_SECRET_KEY"), get("AWS_SECRET_ACCESS_KEY"));
    assert_eq!(get("AWS_SECURITY_TOKEN"), get("AWS_SESSION_TOKEN"));
    lab.assert_no_secrets(&[]);
}

#[test]
fn mfa_serial_on_the_stored_key_profile_goes_into_get_session_token() {
    let lab = Lab::new();
    lab.write_config(&format!(
        "{CONFIG}\n[profile solo]\nmfa_serial = {MFA}\nregion = us-east-1\n"
    ));
    lab.store_key("solo");
    let child = lab.child_env(&["-t", "123456", "solo"]);
    let calls = lab.minted();
    assert_eq!(lab.minted_actions(), ["GetSessionToken"], "{calls:?}");
    assert_eq!(calls[0].param("SerialNumber"), Some(MFA));
    assert_eq!(calls[0].param("TokenCode"), Some("123456"));
    assert_eq!(calls[0].param("DurationSeconds"), Some("3600"));
    assert_about(expires_in(&child), 60);
    lab.assert_no_secrets(&[]);
}

#[test]
fn role_without_mfa_is_assumed_from_the_stored_key_with_the_profile_settings() {
    let lab = Lab::new();
    let child = lab.child_env(&["nomfa"]);
    let calls = lab.minted();
    assert_eq!(lab.minted_actions(), ["AssumeRole"], "{calls:?}");
    let call = &calls[0];
    assert_eq!(
        call.param("RoleArn"),
        Some("arn:aws:iam::123456789012:role/nomfa")
    );
    assert_eq!(call.param("ExternalId"), Some("ext-123"));
    assert_eq!(call.param("RoleSessionName"), Some("alice-session"));
    assert_eq!(call.param("SerialNumber"), None);
    assert_eq!(call.param("TokenCode"), None);
    assert!(
        matches!(call.param("DurationSeconds"), None | Some("3600")),
        "{call:?}"
    );
    assert_eq!(child.get("AWS_VAULT").map(String::as_str), Some("nomfa"));
    assert_about(expires_in(&child), 60);

    // The AWS CLI in the child is that role's session; vault itself calls STS no more.
    let arn = caller_arn(&lab, &["nomfa"]);
    assert_eq!(
        arn,
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/nomfa/alice-session")
    );
    assert_eq!(lab.minted().len(), 1, "{:?}", lab.minted());
    lab.assert_no_secrets(&[]);
}

#[test]
fn role_with_mfa_goes_through_an_eight_hour_mfa_session_shared_by_roles() {
    let lab = Lab::new();
    assert_assumed(&caller_arn(&lab, &["-t", "123456", "lab"]), "lab");
    let calls = lab.minted();
    assert_eq!(
        lab.minted_actions(),
        ["GetSessionToken", "AssumeRole"],
        "{calls:?}"
    );
    assert_eq!(calls[0].param("SerialNumber"), Some(MFA));
    assert_eq!(calls[0].param("TokenCode"), Some("123456"));
    assert_eq!(calls[0].param("DurationSeconds"), Some("28800"));
    assert_eq!(
        calls[1].param("RoleArn"),
        Some("arn:aws:iam::123456789012:role/lab")
    );
    assert_eq!(calls[1].param("SerialNumber"), None, "{:?}", calls[1]);
    assert_eq!(calls[1].param("TokenCode"), None, "{:?}", calls[1]);

    // Another role on the same key and MFA device: one AssumeRole, no MFA code needed.
    let prod = lab.child_env(&["prod"]);
    assert_eq!(
        lab.minted_actions(),
        ["GetSessionToken", "AssumeRole", "AssumeRole"]
    );
    assert_eq!(
        lab.minted()[2].param("RoleArn"),
        Some("arn:aws:iam::123456789012:role/prod")
    );
    assert_eq!(prod.get("AWS_VAULT").map(String::as_str), Some("prod"));
    assert_eq!(
        prod.get("AWS_REGION").map(String::as_str),
        Some("eu-west-1")
    );
    assert_eq!(
        prod.get("AWS_DEFAULT_REGION").map(String::as_str),
        Some("eu-west-1")
    );
    assert_about(expires_in(&prod), 60);
    // As in aws-vault and the SDKs, a region in the environment wins over the profile's.
    let elsewhere = lab.child_env_with(&[("AWS_DEFAULT_REGION", "ap-northeast-1")], &["prod"]);
    assert_eq!(
        elsewhere.get("AWS_REGION").map(String::as_str),
        Some("ap-northeast-1")
    );
    assert_eq!(
        elsewhere.get("AWS_DEFAULT_REGION").map(String::as_str),
        Some("ap-northeast-1")
    );

    // Both cached: nothing.
    lab.child_env(&["lab"]);
    lab.child_env(&["prod"]);
    assert_eq!(lab.minted().len(), 3);

    // AWS_MIN_TTL=2h: the 1h role session is stale, the 8h MFA session is not.
    lab.child_env_with(&[("AWS_MIN_TTL", "2h")], &["lab"]);
    assert_eq!(lab.moto.count("GetSessionToken"), 1);
    assert_eq!(lab.moto.count("AssumeRole"), 3);

    // AWS_MIN_TTL=9h: both are stale; a new MFA code is needed.
    lab.assert_needs_mfa_code(&[("AWS_MIN_TTL", "9h")], "lab");
    lab.child_env_with(&[("AWS_MIN_TTL", "9h")], &["-t", "123456", "lab"]);
    assert_eq!(lab.moto.count("GetSessionToken"), 2);
    assert_eq!(lab.moto.count("AssumeRole"), 4);
    lab.assert_no_secrets(&[]);
}

#[test]
fn role_chain_goes_through_the_mfa_session_and_each_role() {
    let lab = Lab::new();
    assert_assumed(&caller_arn(&lab, &["-t", "123456", "lab2"]), "lab2");
    let calls = lab.minted();
    assert_eq!(
        lab.minted_actions(),
        ["GetSessionToken", "AssumeRole", "AssumeRole"],
        "{calls:?}"
    );
    assert_eq!(calls[0].param("SerialNumber"), Some(MFA));
    assert_eq!(
        calls[1].param("RoleArn"),
        Some("arn:aws:iam::123456789012:role/lab")
    );
    assert_eq!(
        calls[2].param("RoleArn"),
        Some("arn:aws:iam::123456789012:role/lab2")
    );
    assert_eq!(calls[2].param("SerialNumber"), None);
    // Cached, the whole chain.
    lab.child_env(&["lab2"]);
    assert_eq!(lab.minted().len(), 3);
    lab.assert_no_secrets(&[]);
}

#[test]
fn role_sessions_over_an_hour_assume_straight_from_the_key_with_mfa() {
    let lab = Lab::new();
    // duration_seconds = 7200 in the profile.
    let child = lab.child_env(&["-t", "123456", "long"]);
    let calls = lab.minted();
    assert_eq!(lab.minted_actions(), ["AssumeRole"], "{calls:?}");
    assert_eq!(
        calls[0].param("RoleArn"),
        Some("arn:aws:iam::123456789012:role/long")
    );
    assert_eq!(calls[0].param("SerialNumber"), Some(MFA));
    assert_eq!(calls[0].param("TokenCode"), Some("123456"));
    assert_eq!(calls[0].param("DurationSeconds"), Some("7200"));
    assert_about(expires_in(&child), 120);

    // -d 2h on a profile that would otherwise use the MFA session.
    let child = lab.child_env(&["-d", "2h", "-t", "123456", "lab"]);
    let calls = lab.minted();
    assert_eq!(
        lab.minted_actions(),
        ["AssumeRole", "AssumeRole"],
        "{calls:?}"
    );
    assert_eq!(
        calls[1].param("RoleArn"),
        Some("arn:aws:iam::123456789012:role/lab")
    );
    assert_eq!(calls[1].param("SerialNumber"), Some(MFA));
    assert_eq!(calls[1].param("DurationSeconds"), Some("7200"));
    assert_about(expires_in(&child), 120);
    lab.assert_no_secrets(&[]);
}

// ----- MFA codes -----

#[test]
fn mfa_codes_come_from_the_flag_then_mfa_process_else_fail_without_a_terminal() {
    let lab = Lab::new();
    let ran = lab.env.dir.path().join("mfa-process-ran");

    // -t wins over mfa_process, which does not even run.
    lab.child_env(&["-t", "111111", "viaproc"]);
    assert_eq!(lab.minted()[0].param("TokenCode"), Some("111111"));
    assert!(!ran.exists(), "mfa_process ran although -t was given");

    lab.run(&["clear"]).success();
    lab.child_env(&["viaproc"]);
    let calls = lab.minted();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert_eq!(calls[2].action, "GetSessionToken");
    assert_eq!(calls[2].param("TokenCode"), Some("654321"));
    assert_eq!(
        calls[2].param("SerialNumber"),
        Some("arn:aws:iam::123456789012:mfa/proc")
    );
    assert!(ran.exists(), "mfa_process did not run");

    // No code, no mfa_process, no terminal.
    lab.assert_needs_mfa_code(&[], "lab");
    assert!(!lab.sessions().contains(&"lab".to_owned()));

    // Not six digits: a usage error (exit 2, as for any malformed flag value), refused
    // before any call, and the code is not echoed.
    let before = lab.minted().len();
    for code in ["12345", "1234567", "12345a"] {
        let run = lab.run(&["exec", "-t", code, "lab", "--", "true"]);
        run.failure(2).stderr_has("6 digits");
        assert!(!run.stderr.contains(code), "{}", run.stderr);
    }
    lab.run(&["export", "--mfa-token", "12345", "lab"])
        .failure(2)
        .stderr_has("6 digits");
    assert_eq!(lab.minted().len(), before, "{:?}", lab.minted());
    lab.assert_no_secrets(&[]);
}

#[test]
fn sixteen_concurrent_cold_exports_mint_once_and_ask_for_one_code() {
    let lab = Lab::new();
    lab.env.assert_exports_agree(16, "counted");
    assert_eq!(lab.moto.count("GetSessionToken"), 1, "{:?}", lab.minted());
    assert_eq!(lab.moto.count("AssumeRole"), 1, "{:?}", lab.minted());
    let counter = fs::read_to_string(lab.env.dir.path().join("mfa-count")).unwrap();
    assert_eq!(counter.lines().count(), 1, "mfa_process ran: {counter:?}");
    lab.assert_no_secrets(&[]);
}

/// Two roles behind the same key and MFA device, asked for at once and cold: one MFA code,
/// one MFA session, one AssumeRole per role.
#[test]
fn concurrent_cold_runs_of_two_roles_share_one_mfa_session() {
    let lab = Lab::new();
    let children: Vec<_> = (0..8)
        .flat_map(|_| ["counted", "counted2"])
        .map(|profile| {
            let child = lab
                .env
                .vault(&["exec", profile, "--", "sh", "-c", "echo \"$AWS_VAULT\""])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (profile, child)
        })
        .collect();
    let handles: Vec<_> = children
        .into_iter()
        .map(|(profile, c)| thread::spawn(move || (profile, c.wait_with_output().unwrap())))
        .collect();
    for h in handles {
        let (profile, out) = h.join().unwrap();
        let run = lab.env.record(out.status, out.stdout, out.stderr);
        run.success();
        assert_eq!(run.stdout, format!("{profile}\n"));
    }
    assert_eq!(lab.moto.count("GetSessionToken"), 1, "{:?}", lab.minted());
    assert_eq!(lab.moto.count("AssumeRole"), 2, "{:?}", lab.minted());
    let counter = fs::read_to_string(lab.env.dir.path().join("mfa-count")).unwrap();
    assert_eq!(counter.lines().count(), 1, "mfa_process ran: {counter:?}");
    lab.assert_no_secrets(&[]);
}

/// With a terminal, the MFA code is asked for on it, even while stdout is captured (as for
/// credential_process): the prompt never reaches stdout.
#[cfg(unix)]
#[test]
fn mfa_prompt_uses_the_terminal_while_stdout_is_captured() {
    use std::io::Write;

    let lab = Lab::new();
    // `script` makes the pseudo-terminal.
    if !lab.env.require_program("script", "bsdutils") {
        return;
    }
    let out = lab.env.dir.path().join("out.json");
    // `script` runs the command on a new pseudo-terminal and relays our stdin to it.
    let command = format!(
        "{} export --format json lab > {}",
        vault_harness::vault_bin().display(),
        out.display()
    );
    let mut child = lab
        .env
        .command("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"123456\n").unwrap();
    let output = child.wait_with_output().unwrap();
    let terminal = lab.env.record(output.status, output.stdout, output.stderr);
    terminal.success().stdout_has(MFA);

    let captured = fs::read_to_string(&out).unwrap();
    let json: serde_json::Value = serde_json::from_str(&captured)
        .unwrap_or_else(|e| panic!("stdout is not only JSON ({e}): {captured:?}"));
    assert_eq!(json["Version"], serde_json::json!(1));
    let calls = lab.minted();
    assert_eq!(
        lab.minted_actions(),
        ["GetSessionToken", "AssumeRole"],
        "{calls:?}"
    );
    assert_eq!(calls[0].param("TokenCode"), Some("123456"));
    lab.assert_no_secrets(&[]);
}

// ----- the cache follows the config and the key -----

#[test]
fn cached_sessions_follow_the_config_and_the_stored_key() {
    let lab = Lab::new();
    assert_eq!(
        caller_arn(&lab, &["nomfa"]),
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/nomfa/alice-session")
    );
    // The profile now names another role: the cached session is not that role's.
    lab.write_config(&CONFIG.replace("role/nomfa\n", "role/nomfa-v2\n"));
    assert_eq!(
        caller_arn(&lab, &["nomfa"]),
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/nomfa-v2/alice-session")
    );
    assert_eq!(lab.minted_actions(), ["AssumeRole", "AssumeRole"]);
    let calls = lab.minted();
    assert_eq!(
        calls[1].param("RoleArn"),
        Some("arn:aws:iam::123456789012:role/nomfa-v2")
    );
    // Another external id is another session too.
    lab.write_config(&CONFIG.replace("external_id = ext-123", "external_id = ext-456"));
    lab.child_env(&["nomfa"]);
    assert_eq!(lab.minted().len(), 3, "{:?}", lab.minted());
    assert_eq!(lab.minted()[2].param("ExternalId"), Some("ext-456"));
    lab.write_config(CONFIG);

    // A new key for the source profile drops the sessions minted from the old one.
    lab.child_env(&["-t", "123456", "lab"]);
    let before = lab.minted().len();
    let (bob_id, bob_secret) = lab.moto.create_access_key(&lab.env, "bob");
    lab.env
        .run_with(
            &[
                ("AWS_ACCESS_KEY_ID", &bob_id),
                ("AWS_SECRET_ACCESS_KEY", &bob_secret),
            ],
            &["add", "--env", "--force", "base", "--no-add-config"],
        )
        .success();
    lab.assert_needs_mfa_code(&[], "lab");
    lab.child_env(&["-t", "123456", "lab"]);
    assert_eq!(
        lab.minted()[before..]
            .iter()
            .map(|c| c.action.as_str())
            .collect::<Vec<_>>(),
        ["GetSessionToken", "AssumeRole"]
    );

    // Removing the key removes every session minted from it.
    assert!(!lab.sessions().is_empty());
    lab.run(&["remove", "--force", "base"]).success();
    assert!(lab.sessions().is_empty(), "{:?}", lab.sessions());
    let transcript = lab.env.transcript();
    assert!(!transcript.contains(&bob_id) && !transcript.contains(&bob_secret));
    lab.assert_no_secrets(&[]);
}

#[test]
fn durations_are_go_style_and_reach_sts() {
    let lab = Lab::new();
    let child = lab.child_env(&["-d", "90m", "base"]);
    assert_eq!(lab.minted()[0].param("DurationSeconds"), Some("5400"));
    assert_about(expires_in(&child), 90);
    let child = lab.child_env(&["--duration", "1h30m", "nomfa"]);
    assert_eq!(lab.minted()[1].action, "AssumeRole");
    assert_eq!(lab.minted()[1].param("DurationSeconds"), Some("5400"));
    assert_about(expires_in(&child), 90);
    lab.child_env(&["-d", "900s", "-t", "123456", "lab"]);
    let calls = lab.minted();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert_eq!(
        calls[2].param("DurationSeconds"),
        Some("28800"),
        "{calls:?}"
    );
    assert_eq!(calls[3].param("DurationSeconds"), Some("900"), "{calls:?}");
    lab.assert_no_secrets(&[]);
}

#[test]
fn the_sts_endpoint_variable_wins_over_the_general_one() {
    let lab = Lab::new();
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let child = lab.child_env_with(
        &[
            ("AWS_ENDPOINT_URL", &nobody),
            ("AWS_ENDPOINT_URL_STS", &lab.moto.endpoint),
        ],
        &["nomfa"],
    );
    assert_eq!(lab.minted_actions(), ["AssumeRole"]);
    assert_eq!(
        child.get("AWS_ENDPOINT_URL_STS"),
        Some(&lab.moto.endpoint),
        "passed through"
    );
    lab.assert_no_secrets(&[]);
}

#[test]
fn debug_output_never_shows_a_secret() {
    let lab = Lab::new();
    let child = lab.child_env(&["-t", "123456", "lab"]);
    // Every session secret any child saw so far: a later run's log must show none of them.
    let mut secrets = vec![
        child["AWS_SECRET_ACCESS_KEY"].clone(),
        child["AWS_SESSION_TOKEN"].clone(),
    ];
    for (args, mints) in [
        (&["--debug", "exec", "lab", "--", "env", "-0"][..], false),
        (&["--debug", "exec", "--explain", "lab"][..], false),
        // These two mint under --debug: the very sessions they log about are checked too.
        (
            &["--debug", "exec", "-t", "123456", "long", "--", "env", "-0"][..],
            true,
        ),
        (&["--debug", "exec", "nomfa", "--", "env", "-0"][..], true),
        (&["--debug", "list"][..], false),
        (&["--debug", "clear", "nomfa"][..], false),
    ] {
        let before = lab.minted().len();
        let run = lab.run(args);
        run.success();
        assert_eq!(lab.minted().len() > before, mints, "{args:?}");
        let child = parse_env(&run.stdout);
        for name in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
            if let Some(value) = child.get(name)
                && !secrets.contains(value)
            {
                assert!(mints, "{args:?} handed out a session it did not mint");
                secrets.push(value.clone());
            }
        }
        for secret in &secrets {
            assert!(
                !run.stderr.contains(secret.as_str()),
                "{args:?} logs a session secret"
            );
        }
    }
    // Two sessions minted under --debug, each with its secret and token, were checked.
    assert_eq!(secrets.len(), 6);
    lab.assert_no_secrets(&[]);
}

#[test]
fn a_failing_mfa_process_stops_before_sts() {
    let lab = Lab::new();
    lab.write_config(&format!(
        "{CONFIG}
[profile broken]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/broken
mfa_serial = arn:aws:iam::123456789012:mfa/broken
mfa_process = echo token service down >&2; exit 3

[profile chatty]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/chatty
mfa_serial = arn:aws:iam::123456789012:mfa/chatty
mfa_process = echo 'your code is 123456'
"
    ));
    lab.run(&["exec", "broken", "--", "true"])
        .failure(1)
        .stderr_has("mfa_process");
    lab.run(&["exec", "chatty", "--", "true"])
        .failure(1)
        .stderr_has("6 digits");
    lab.assert_nothing_minted();
}

// ----- export and clear -----

#[test]
fn export_prints_the_same_credentials_in_every_format() {
    let lab = Lab::new();
    let run = lab.run(&["export", "-t", "123456", "lab", "--format", "json"]);
    run.success();
    let json: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not only JSON ({e}): {:?}", run.stdout));
    let object = json.as_object().expect("a JSON object");
    assert_eq!(json["Version"], serde_json::json!(1), "{json}");
    for key in object.keys() {
        assert!(
            [
                "Version",
                "AccessKeyId",
                "SecretAccessKey",
                "SessionToken",
                "Expiration",
                "AccountId"
            ]
            .contains(&key.as_str()),
            "unexpected field {key}"
        );
    }
    let field = |name: &str| json[name].as_str().unwrap_or_default().to_owned();
    let (id, secret, token) = (
        field("AccessKeyId"),
        field("SecretAccessKey"),
        field("SessionToken"),
    );
    assert!(!id.is_empty() && !secret.is_empty() && !token.is_empty());
    assert_ne!(id, lab.key_id);
    let expiration = field("Expiration");
    chrono::DateTime::parse_from_rfc3339(&expiration)
        .unwrap_or_else(|e| panic!("Expiration {expiration:?}: {e}"));
    assert_eq!(lab.minted_actions(), ["GetSessionToken", "AssumeRole"]);

    // The rest come from the cache.
    let text = |format: &str| {
        let run = lab.run(&["export", "lab", "--format", format]);
        run.success();
        run.stdout
    };
    let env = text("env");
    let vars = parse_env(&env);
    for line in env.lines().filter(|l| !l.is_empty()) {
        let (name, _) = line.split_once('=').expect("KEY=value");
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
            "not KEY=value: {line:?}"
        );
    }
    assert_eq!(vars.get("AWS_ACCESS_KEY_ID"), Some(&id));
    assert_eq!(vars.get("AWS_SECRET_ACCESS_KEY"), Some(&secret));
    assert_eq!(vars.get("AWS_SESSION_TOKEN"), Some(&token));

    let export_env = text("export-env");
    for line in export_env.lines().filter(|l| !l.is_empty()) {
        assert!(line.starts_with("export "), "{line:?}");
    }
    assert!(
        export_env.contains("export AWS_ACCESS_KEY_ID="),
        "{export_env}"
    );
    // A POSIX shell evaluating it gets the same values.
    let script =
        format!("{export_env}\nprintf '%s\\n' \"$AWS_ACCESS_KEY_ID\" \"$AWS_SESSION_TOKEN\"");
    let evaluated = lab.env.output(lab.env.command("sh").args(["-c", &script]));
    evaluated.success();
    assert_eq!(evaluated.stdout, format!("{id}\n{token}\n"));

    let ini = text("ini");
    let mut lines = ini.lines().filter(|l| !l.trim().is_empty());
    assert_eq!(lines.next(), Some("[lab]"), "{ini}");
    let ini_vars: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    assert_eq!(ini_vars.get("aws_access_key_id"), Some(&id));
    assert_eq!(ini_vars.get("aws_secret_access_key"), Some(&secret));
    assert_eq!(ini_vars.get("aws_session_token"), Some(&token));

    let fish = text("fish");
    assert!(fish.contains("AWS_ACCESS_KEY_ID"), "{fish}");
    assert!(fish.contains(&id) && fish.contains(&token), "{fish}");
    let powershell = text("powershell");
    assert!(
        powershell.contains("$env:AWS_ACCESS_KEY_ID"),
        "{powershell}"
    );
    assert!(
        powershell.contains(&id) && powershell.contains(&token),
        "{powershell}"
    );
    assert_eq!(lab.minted().len(), 2, "{:?}", lab.minted());

    // As a credential_process, for the AWS CLI.
    let bin = vault_harness::vault_bin();
    fs::write(
        lab.env.config_path(),
        format!(
            "{}\n[profile cp]\ncredential_process = {} export --format json lab\nregion = us-east-1\n",
            fs::read_to_string(lab.env.config_path()).unwrap(),
            bin.display()
        ),
    )
    .unwrap();
    let cli = lab.env.output(lab.env.command("aws").args([
        "sts",
        "get-caller-identity",
        "--profile",
        "cp",
        "--query",
        "Arn",
        "--output",
        "text",
    ]));
    cli.success();
    assert_assumed(cli.stdout.trim(), "lab");
    assert_eq!(lab.minted().len(), 2, "{:?}", lab.minted());
    lab.assert_no_secrets(&[]);
}

#[test]
fn clear_removes_all_or_one_profiles_sessions() {
    let lab = Lab::new();
    lab.child_env(&["base"]);
    lab.child_env(&["nomfa"]);
    assert_eq!(lab.sessions(), ["base", "nomfa"]);

    let run = lab.run(&["clear", "nomfa"]);
    run.success().stderr_has("Cleared 1 session");
    assert!(!run.stderr.contains("1 sessions"), "{}", run.stderr);
    assert_eq!(lab.sessions(), ["base"]);
    lab.run(&["clear"])
        .success()
        .stderr_has("Cleared 1 session");
    assert!(lab.sessions().is_empty());
    lab.run(&["clear"])
        .success()
        .stderr_has("Cleared 0 sessions");

    // Gone for real: the next run mints again. The key stays.
    lab.child_env(&["nomfa"]);
    assert_eq!(
        lab.minted_actions(),
        ["GetSessionToken", "AssumeRole", "AssumeRole"]
    );
    lab.child_env(&["base"]);
    lab.run(&["clear"])
        .success()
        .stderr_has("Cleared 2 sessions");
    let creds = lab.run(&["list", "--credentials"]);
    creds.success();
    assert_eq!(creds.stdout, "base\n");
    lab.assert_no_secrets(&[]);
}

// ----- the child process -----

#[test]
fn nested_exec_is_refused() {
    let lab = Lab::new();
    lab.env
        .run_with(&[("AWS_VAULT", "base")], &["exec", "base", "--", "true"])
        .failure(1)
        .stderr_has("AWS_VAULT");
    assert!(lab.minted().is_empty());
    // The child of an exec has AWS_VAULT, so an inner vault refuses too.
    let bin = vault_harness::vault_bin();
    let inner = format!("{} exec base -- true", bin.display());
    let run = lab.run(&["exec", "-n", "base", "--", "sh", "-c", &inner]);
    run.failure(1).stderr_has("AWS_VAULT");
    lab.assert_no_secrets(&[]);
}

#[cfg(unix)]
#[test]
fn the_child_replaces_vault_so_its_exit_code_and_signal_are_vaults() {
    use std::os::unix::process::ExitStatusExt;

    let lab = Lab::new();
    lab.run(&["exec", "-n", "base", "--", "sh", "-c", "exit 3"])
        .failure(3);
    lab.run(&["exec", "-n", "base", "--", "sh", "-c", "exit 0"])
        .success();
    let run = lab.run(&["exec", "-n", "base", "--", "vault-test-no-such-command"]);
    run.failure(127).stderr_has("not found");
    let run = lab.run(&["exec", "-n", "base", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(run.status.signal(), Some(15), "{run:?}");

    // Same process: the child's PID is the one we started.
    let child = lab
        .env
        .vault(&["exec", "-n", "base", "--", "sh", "-c", "echo $$"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let run = lab.env.record(out.status, out.stdout, out.stderr);
    run.success();
    assert_eq!(run.stdout.trim(), pid.to_string());

    // Arguments reach the child untouched.
    let run = lab.run(&[
        "exec", "-n", "base", "--", "printf", "[%s]", "a b", "--region", "-t", "",
    ]);
    run.success();
    assert_eq!(run.stdout, "[a b][--region][-t][]");
    lab.assert_no_secrets(&[]);
}

#[test]
fn without_a_command_the_shell_runs() {
    let lab = Lab::new();
    // $SHELL is the program to run; `env` stands in for an interactive shell.
    let run = lab
        .env
        .run_with(&[("SHELL", "/usr/bin/env")], &["exec", "base"]);
    run.success();
    let child = parse_env(&run.stdout);
    assert_eq!(child.get("AWS_VAULT").map(String::as_str), Some("base"));
    lab.assert_no_secrets(&[]);
}

#[test]
fn sdk_clients_in_the_child_get_the_role() {
    let lab = Lab::new();
    assert_assumed(&caller_arn(&lab, &["-t", "123456", "lab"]), "lab");
    let run = lab.run(&[
        "exec",
        "lab",
        "--",
        "python3",
        "-c",
        "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])",
    ]);
    run.success();
    assert_assumed(run.stdout.trim(), "lab");
    assert_eq!(lab.minted().len(), 2, "{:?}", lab.minted());
    lab.assert_no_secrets(&[]);
}

// ----- --explain -----

#[test]
fn explain_prints_the_plan_and_calls_nothing() {
    let lab = Lab::new();
    let config = fs::read_to_string(lab.env.config_path()).unwrap();
    let location = format!(
        "{}:{}",
        lab.env.config_path().display(),
        line_of(&config, LAB_ROLE_LINE)
    );
    let marker = lab.env.dir.path().join("ran");
    let touch = format!("touch {}", marker.display());

    // Cold, with no MFA code available: it still explains.
    let run = lab.run(&["exec", "--explain", "lab", "--", "sh", "-c", &touch]);
    run.success()
        .stdout_has("GetSessionToken")
        .stdout_has("AssumeRole")
        .stdout_has(&location);
    assert!(!marker.exists(), "--explain ran the command");
    assert!(lab.moto.sts_calls().is_empty());
    assert!(lab.sessions().is_empty());

    let run = lab.run(&["exec", "--explain", "viaproc"]);
    run.success().stdout_has("mfa_process");
    lab.run(&["exec", "--explain", "nomfa"])
        .success()
        .stdout_has("AssumeRole");
    assert!(lab.moto.sts_calls().is_empty());

    // Warm: it says what is cached, and still calls nothing.
    lab.child_env(&["-t", "123456", "lab"]);
    let before = lab.minted().len();
    let run = lab.run(&["exec", "--explain", "lab"]);
    run.success().stdout_has("cached").stdout_has(&location);
    assert_eq!(lab.minted().len(), before);
    lab.assert_no_secrets(&[]);
}

#[test]
fn explain_shows_the_plan_when_the_stored_key_is_missing() {
    let lab = Lab::new();
    lab.run(&["remove", "--force", "base"]).success();
    lab.run(&["exec", "--explain", "lab"])
        .success()
        .stdout_has("GetSessionToken with MFA")
        .stdout_has("AssumeRole arn:aws:iam::123456789012:role/lab")
        .stdout_has("missing: the vault has no key for \"base\"; store it with `vault add base`")
        .stdout_has("It cannot run yet");
    // Running it still stops there, with the same fix.
    lab.run(&["exec", "lab", "--", "true"])
        .failure(1)
        .stderr_has("vault add base");
    assert!(lab.moto.sts_calls().is_empty());
}

// ----- bad input -----

#[test]
fn bad_profiles_and_durations_fail_cleanly_and_cache_nothing() {
    let lab = Lab::new();
    lab.write_config(&format!(
        "{CONFIG}
[profile cyc-a]
source_profile = cyc-b
role_arn = arn:aws:iam::123456789012:role/a

[profile cyc-b]
source_profile = cyc-a
role_arn = arn:aws:iam::123456789012:role/b

[profile orphan]
source_profile = ghost-source
role_arn = arn:aws:iam::123456789012:role/orphan

[profile badarn]
source_profile = base
role_arn = arn:aws:iam::123:rol

[profile short]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/short
duration_seconds = 60

[profile oidc-norole]
web_identity_token_file = /nonexistent/token
"
    ));
    // A malformed flag value is a usage error (2) whatever the profile; a well-formed
    // duration outside what the profile's steps allow is a user error (1).
    let cases: [(&[&str], i32, &[&str]); 9] = [
        (&["no-such-profile"], 1, &["no-such-profile", "not in"]),
        (
            &["oidc-norole"],
            1,
            &["web_identity_token_file", "needs role_arn"],
        ),
        (&["cyc-a"], 1, &["cycle"]),
        (&["orphan"], 1, &["ghost-source"]),
        (&["badarn"], 1, &["role_arn"]),
        (&["short"], 1, &["duration"]),
        (&["-d", "5x", "nomfa"], 2, &["duration"]),
        (&["-d", "5x", "base"], 2, &["duration"]),
        (&["-d", "14m", "base"], 1, &["duration"]),
    ];
    for (args, code, expected) in cases {
        for command in ["exec", "export"] {
            let mut all = vec![command];
            all.extend_from_slice(args);
            if command == "exec" {
                all.extend_from_slice(&["--", "true"]);
            }
            lab.assert_refused(&all, code, expected);
        }
    }
    lab.assert_nothing_minted();
}

#[test]
fn sts_errors_name_the_sts_error_code() {
    let lab = Lab::new();
    // A well-formed key moto has never issued.
    lab.write_config(&format!(
        "{CONFIG}\n[profile stranger]\nregion = us-east-1\n"
    ));
    lab.env
        .run_with(
            &[
                ("AWS_ACCESS_KEY_ID", "AKIAZZZZZZZZZZZZZZZZ"),
                (
                    "AWS_SECRET_ACCESS_KEY",
                    "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
                ),
            ],
            &["add", "--env", "stranger", "--no-add-config"],
        )
        .success();
    lab.moto.enable_auth();

    // alice exists but has no policy: AccessDenied, for both kinds of call.
    lab.run(&["exec", "base", "--", "true"])
        .failure(1)
        .stderr_has("AccessDenied");
    lab.run(&["exec", "nomfa", "--", "true"])
        .failure(1)
        .stderr_has("AccessDenied");
    lab.run(&["export", "-t", "123456", "lab"])
        .failure(1)
        .stderr_has("AccessDenied");
    // An unknown key: moto's InvalidClientTokenId.
    lab.run(&["exec", "stranger", "--", "true"])
        .failure(1)
        .stderr_has("InvalidClientTokenId");
    assert!(lab.sessions().is_empty());
    lab.assert_no_secrets(&[]);
}

#[test]
fn unreachable_sts_fails_within_seconds() {
    let lab = Lab::new();
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let run = lab.env.run_with(
        &[("AWS_ENDPOINT_URL", &nobody)],
        &["exec", "base", "--", "true"],
    );
    let took = started.elapsed();
    run.failure(1).stderr_has("STS");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(lab.sessions().is_empty());
    lab.assert_no_secrets(&[]);
}

#[test]
fn a_corrupt_session_cache_is_replaced_and_the_key_kept() {
    let lab = Lab::new();
    lab.child_env(&["base"]);
    let cache = lab.env.vault_dir().join("sessions.json");
    assert!(cache.exists(), "no {}", cache.display());
    fs::write(&cache, "garbage{{{ not a session cache").unwrap();

    lab.child_env(&["base"]);
    assert_eq!(lab.minted_actions(), ["GetSessionToken", "GetSessionToken"]);
    assert_eq!(lab.sessions(), ["base"]);
    let creds = lab.run(&["list", "--credentials"]);
    creds.success();
    assert_eq!(creds.stdout, "base\n");
    // And it is a good cache again.
    lab.child_env(&["base"]);
    assert_eq!(lab.minted().len(), 2);
    lab.assert_no_secrets(&[]);
}

// ----- the rig itself -----

/// The recording decoder, checked with the AWS CLI as the client: IAM calls are left out,
/// STS parameters come back percent-decoded.
#[test]
fn harness_reads_sts_calls_from_the_moto_recording() {
    let mut env = TestEnv::new();
    let moto = Moto::start(&env);
    env.use_moto(&moto);
    let (id, secret) = moto.create_access_key(&env, "rig");
    assert!(id.starts_with("AKIA") && secret.len() == 40, "{id}");
    let arn = moto.create_role(&env, "rig-role");
    assert_eq!(arn, "arn:aws:iam::123456789012:role/rig-role");
    assert!(moto.sts_calls().is_empty(), "{:?}", moto.sts_calls());

    let run = env.output(
        env.command("aws")
            .args(["sts", "assume-role", "--role-arn", &arn])
            .args(["--role-session-name", "s p@ce+x", "--external-id", "a/b=c"])
            .args(["--serial-number", MFA, "--token-code", "123456"])
            .args(["--query", "Credentials.Expiration", "--output", "text"])
            .env("AWS_ACCESS_KEY_ID", &id)
            .env("AWS_SECRET_ACCESS_KEY", &secret)
            .env("AWS_DEFAULT_REGION", "us-east-1"),
    );
    run.success();
    let calls = moto.sts_calls();
    assert_eq!(moto.sts_actions(), ["AssumeRole"]);
    assert_eq!(moto.count("AssumeRole"), 1);
    assert_eq!(moto.count("GetSessionToken"), 0);
    let call = &calls[0];
    assert_eq!(call.param("RoleArn"), Some(arn.as_str()));
    assert_eq!(call.param("RoleSessionName"), Some("s p@ce+x"));
    assert_eq!(call.param("ExternalId"), Some("a/b=c"));
    assert_eq!(call.param("SerialNumber"), Some(MFA));
    assert_eq!(call.param("TokenCode"), Some("123456"));
    assert_eq!(call.param("Action"), None);

    let child = parse_env("A=1\nB=x=y\n");
    assert_eq!(child.get("B").map(String::as_str), Some("x=y"));
    let child = parse_env("A=1\nline2\0B=2\0");
    assert_eq!(child.get("A").map(String::as_str), Some("1\nline2"));
}
