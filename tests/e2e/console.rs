//! Console sessions of `aws login` (`login_session` profiles) as a source: used directly, as
//! the source of a role chain, behind `--server`, explained, refreshed once for many
//! processes, and refused with what to type when the session is gone.
//!
//! AWS Sign-In has no emulator (moto does not implement it), so these tests talk to a
//! stand-in on 127.0.0.1 (`tests/signin_stand_in.py`) that speaks aws-sdk-signin's wire
//! format and checks what the service checks: the DPoP proof's ES256 signature against the
//! key bound to the refresh token, `htm`, `htu`, a fresh `iat`, a `jti` never seen before,
//! and that a refresh token works once (rotation). It hands out real moto credentials. The
//! cache file is written as the AWS CLI writes it (a P-256 key made with Python's
//! `cryptography`), under the test's HOME, and vault reads and refreshes it through
//! aws-config's own login provider; aws-sdk-rust's default chain (`sdk-caller`) refreshes
//! from what vault wrote back, and vault from what it wrote.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;
use vault_harness::signin::SigninStandIn;
use vault_harness::{ACCOUNT, World};

const CONFIG: &str = "\
[profile console]
login_session = arn:aws:iam::123456789012:user/alice
region = us-west-2

[profile lab]
source_profile = console
role_arn = arn:aws:iam::123456789012:role/lab
external_id = ext-42
mfa_serial = arn:aws:iam::123456789012:mfa/alice
role_session_name = alice-lab
region = us-west-2

[profile both]
login_session = arn:aws:iam::123456789012:user/alice
role_arn = arn:aws:iam::123456789012:role/lab
";

const ARN: &str = "arn:aws:iam::123456789012:user/alice";

/// moto, the stand-in (declared first: it stops before the world's temp dir goes).
struct Console {
    stand_in: SigninStandIn,
    w: World,
}

fn world() -> Console {
    let mut w = World::without_stored_key("console test", CONFIG);
    let stand_in = SigninStandIn::start(&w.env, &w.moto.endpoint);
    w.env.set("AWS_ENDPOINT_URL_SIGNIN", &stand_in.endpoint);
    Console { stand_in, w }
}

impl Console {
    fn cache_dir(&self) -> PathBuf {
        self.w.env.home().join(".aws/login/cache")
    }

    /// `aws login` for alice: the cache file, its credentials already `expired` or not.
    fn sign_in(&self, expired: bool) -> PathBuf {
        self.stand_in.sign_in(&self.cache_dir(), ARN, expired)
    }

    fn refreshes(&self) -> usize {
        self.stand_in.count("CreateOAuth2Token")
    }

    fn export(&self, profile: &str) -> serde_json::Value {
        self.w.export_json(profile)
    }

    /// No refresh token or DPoP key the stand-in handed out in anything printed, nor in the
    /// vault's files.
    #[track_caller]
    fn assert_no_console_secrets(&self) {
        self.stand_in.assert_never_shown(&self.w, &[]);
    }
}

fn cached(path: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).expect("the cache is JSON")
}

#[test]
fn an_expired_console_session_is_refreshed_once_and_written_back_for_the_next_reader() {
    let c = world();
    let path = c.sign_in(true);
    let before = cached(&path);
    // The next credentials last a minute: inside the provider's 5-minute window, so the run
    // after this one must refresh again, with what this one wrote back.
    c.stand_in.control(json!({"expires_in": 60}));
    let run = c.w.env.caller_arn(&[], &["--debug", "exec", "console"]);
    run.success().stdout_has(&format!(
        "arn:aws:sts::{ACCOUNT}:assumed-role/console-session/"
    ));
    // The credentials went to the child only: not in vault's --debug output.
    for field in ["secretAccessKey", "sessionToken"] {
        for token in [&before, &cached(&path)] {
            let secret = token["accessToken"][field].as_str().unwrap();
            assert!(!run.stderr.contains(secret), "stderr shows the {field}");
        }
    }
    assert_eq!(c.refreshes(), 1);
    let calls = c.stand_in.token_calls();
    assert_eq!(calls[0]["status"], 200, "{calls:?}");
    assert_eq!(calls[0]["dpop"], "verified");
    assert_eq!(calls[0]["grantType"], "refresh_token");
    assert_eq!(
        calls[0]["clientId"],
        "arn:aws:signin:::devtools/same-device"
    );

    // Written back: new credentials, a new refresh token, the same key and client.
    let after = cached(&path);
    assert_ne!(after["refreshToken"], before["refreshToken"]);
    assert_ne!(
        after["accessToken"]["accessKeyId"],
        before["accessToken"]["accessKeyId"]
    );
    assert_eq!(after["dpopKey"], before["dpopKey"]);
    assert_eq!(after["clientId"], before["clientId"]);
    assert_eq!(after["accessToken"]["accountId"], ACCOUNT);

    // What was written back serves the next refresh (the rotated token and the same key;
    // the stand-in refuses a refresh token used before), by aws-sdk-rust's own profile
    // chain first, then by vault again from what the SDK wrote.
    let rust = c.w.env.output(
        c.w.env
            .command(vault_harness::env::sdk_caller())
            .env("AWS_PROFILE", "console"),
    );
    rust.success().stdout_has("assumed-role/console-session/");
    assert_eq!(c.refreshes(), 2);
    let exported = c.export("console");
    assert_eq!(c.refreshes(), 3);
    let calls = c.stand_in.token_calls();
    assert!(calls.iter().all(|call| call["status"] == 200), "{calls:?}");
    assert_eq!(
        exported["AccessKeyId"],
        cached(&path)["accessToken"]["accessKeyId"]
    );
    // A fresh session is used as it is: no refresh.
    c.stand_in.control(json!({"expires_in": 900}));
    c.export("console");
    assert_eq!(c.refreshes(), 4);
    c.export("console");
    assert_eq!(c.refreshes(), 4);
    c.assert_no_console_secrets();
}

#[test]
fn a_role_is_assumed_with_the_console_credentials_and_cached() {
    let c = world();
    let path = c.sign_in(false);
    let key_id = cached(&path)["accessToken"]["accessKeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let run =
        c.w.env
            .caller_arn(&[], &["exec", "lab", "--mfa-token", "123456"]);
    run.success().stdout_has(&format!(
        "arn:aws:sts::{ACCOUNT}:assumed-role/lab/alice-lab"
    ));
    assert_eq!(c.refreshes(), 0, "a fresh session needs no refresh");
    // moto's recording: the AssumeRole of lab, signed with the console session's key, with
    // the external id and the MFA code (on the AssumeRole itself: no MFA session here).
    let assume: Vec<_> =
        c.w.minted()
            .into_iter()
            .filter(|call| call.param("RoleArn") == Some("arn:aws:iam::123456789012:role/lab"))
            .collect();
    assert_eq!(assume.len(), 1, "{:?}", c.w.minted());
    assert_eq!(assume[0].param("ExternalId"), Some("ext-42"));
    assert_eq!(
        assume[0].param("SerialNumber"),
        Some("arn:aws:iam::123456789012:mfa/alice")
    );
    assert_eq!(assume[0].param("TokenCode"), Some("123456"));
    let signers = c.w.moto.signers("AssumeRole");
    assert_eq!(signers.last(), Some(&key_id), "{signers:?}");

    // The role's session is cached like any other: no STS call, no refresh, no MFA code.
    let before = c.w.moto.count("AssumeRole");
    c.w.env
        .caller_arn(&[], &["exec", "lab"])
        .success()
        .stdout_has("assumed-role/lab/alice-lab");
    assert_eq!(c.w.moto.count("AssumeRole"), before);
    let listed = c.w.run(&["list"]);
    listed.success().stdout_has("lab");
    c.assert_no_console_secrets();
}

#[test]
fn thirty_two_cold_exports_refresh_the_console_session_once() {
    let c = world();
    c.sign_in(true);
    c.w.env.assert_exports_agree(32, "console");
    assert_eq!(c.refreshes(), 1, "{:?}", c.stand_in.token_calls());
    // The lock is the vault's, named after the session.
    let locks: Vec<String> = fs::read_dir(c.w.env.vault_dir().join("locks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        locks
            .iter()
            .any(|l| l.starts_with("login-") && l.ends_with(".lock")),
        "{locks:?}"
    );
    c.assert_no_console_secrets();
}

#[test]
fn explain_shows_the_console_session_without_refreshing_it() {
    let c = world();
    let path = c.sign_in(false);
    let run = c.w.run(&["exec", "--explain", "lab"]);
    run.success()
        .stdout_has(&format!(
            "1. console session of {ARN}\n       AWS CLI cache ({}), expires in ",
            path.display()
        ))
        .stdout_has("refreshable")
        .stdout_has("login_session      ")
        .stdout_has(&format!("Sign-In endpoint   {}", c.stand_in.endpoint))
        .stdout_has("AssumeRole arn:aws:iam::123456789012:role/lab");
    // Expired: it says it will refresh, and still calls nothing.
    c.sign_in(true);
    c.w.run(&["exec", "--explain", "console"])
        .success()
        .stdout_has("expired; will be refreshed now");
    assert_eq!(c.refreshes(), 0);
    // The only STS calls are the stand-in's own (its sign-ins' credentials).
    let ours: Vec<_> =
        c.w.minted()
            .into_iter()
            .filter(|call| {
                call.param("RoleArn") != Some("arn:aws:iam::123456789012:role/console-session")
            })
            .collect();
    assert!(ours.is_empty(), "{ours:?}");
    c.assert_no_console_secrets();
}

#[test]
fn a_missing_session_says_to_run_aws_login() {
    let c = world();
    c.w.assert_refused(
        &["export", "console"],
        1,
        &[
            "the AWS CLI's cache has none",
            "aws login --profile console",
        ],
    );
    // Through a role chain, the base profile is the one to sign in.
    c.w.assert_refused(
        &["exec", "lab", "--mfa-token", "123456", "--", "true"],
        1,
        &["aws login --profile console"],
    );
    c.w.run(&["exec", "--explain", "lab"])
        .success()
        .stdout_has("missing: no console session in the AWS CLI's cache")
        .stdout_has(
            "It cannot run yet: the console session is missing (aws login --profile console)",
        );
    // AWS_LOGIN_CACHE_DIRECTORY moves the cache, as for the AWS CLI.
    let elsewhere = c.w.path("login-cache");
    c.stand_in.sign_in(&elsewhere, ARN, false);
    c.w.env
        .run_with(
            &[("AWS_LOGIN_CACHE_DIRECTORY", elsewhere.to_str().unwrap())],
            &["export", "--format", "json", "console"],
        )
        .success();
    assert_eq!(c.refreshes(), 0);
}

#[test]
fn a_refused_refresh_says_what_happened_and_what_to_type() {
    let c = world();
    c.sign_in(true);
    c.stand_in.control(json!({"refuse_refresh": 1}));
    c.w.assert_refused(
        &["--debug", "export", "console"],
        1,
        &[
            "AWS Sign-In refused to refresh the console session of arn:aws:iam::123456789012:user/alice",
            "AccessDeniedException (TOKEN_EXPIRED): Session has expired",
            "aws login --profile console",
        ],
    );
    // The refresh token is spent: a second try is refused too (rotation), and says the same.
    c.w.assert_refused(&["export", "console"], 1, &["aws login --profile console"]);
    assert_eq!(c.refreshes(), 2);
    c.assert_no_console_secrets();
}

/// A FIFO (or a device) where the AWS CLI's cache file goes would keep aws-config's
/// provider waiting for a writer forever: refused at once, and `--explain` says the same.
#[cfg(unix)]
#[test]
fn a_fifo_as_the_cache_file_is_refused_not_waited_on() {
    let c = world();
    let path = c.sign_in(false);
    fs::remove_file(&path).unwrap();
    c.w.env
        .output(c.w.env.command("mkfifo").arg(&path))
        .success();
    c.w.assert_refused(
        &["export", "console"],
        1,
        &["not a regular file", "vault signin console"],
    );
    c.w.run(&["exec", "--explain", "console"])
        .stdout_has("not a regular file");
    assert_eq!(c.refreshes(), 0);
}

#[test]
fn role_arn_beside_login_session_is_refused_as_the_sdks_refuse_it() {
    let c = world();
    c.w.assert_refused(
        &["export", "both"],
        1,
        &[
            "sets role_arn",
            "a console session (login_session), but no source_profile",
            "[profile both-console]",
            "login_session = arn:aws:iam::123456789012:user/alice",
        ],
    );
}

#[test]
fn the_credential_servers_serve_the_console_session() {
    let c = world();
    c.sign_in(true);
    for server in ["--server", "--imds"] {
        let run = c.w.env.caller_arn(&[], &["exec", server, "console"]);
        run.success().stdout_has(&format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/console-session/"
        ));
    }
    assert_eq!(c.refreshes(), 1);
    c.assert_no_console_secrets();
}

#[test]
fn vault_login_opens_the_console_as_the_session_or_a_role_on_it() {
    let mut c = world();
    let federation = super::login::FakeFederation::start();
    c.w.env
        .set("VAULT_FEDERATION_ENDPOINT", federation.endpoint());
    let path = c.sign_in(false);
    let key_id = cached(&path)["accessToken"]["accessKeyId"].clone();
    c.w.run(&["login", "console", "--stdout"])
        .success()
        .stdout_has("SigninToken=");
    let requests = federation.requests();
    let session = super::login::session_json(requests.last().unwrap());
    assert_eq!(
        session["sessionId"], key_id,
        "the console session's own credentials"
    );

    c.w.run(&["login", "lab", "--stdout", "--mfa-token", "123456"])
        .success()
        .stdout_has("SigninToken=");
    let requests = federation.requests();
    let session = super::login::session_json(requests.last().unwrap());
    assert_ne!(session["sessionId"], key_id, "the role's credentials");
    assert_eq!(c.refreshes(), 0);
    c.assert_no_console_secrets();
}
