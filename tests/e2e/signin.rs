//! `vault signin` / `vault signout`: the browser sign-in `aws login` does, with the session
//! kept encrypted in the vault, refreshed with vault's own DPoP proofs, written to the AWS
//! CLI's cache only with `--cli-cache`, and used by every command like any source.
//!
//! AWS Sign-In has no emulator (moto lists it as unimplemented), so the tests talk to the
//! stand-in `tests/signin_stand_in.py`, which speaks the AWS CLI v2's wire format (the
//! authorize page, the cross-device confirmation page, CreateOAuth2Token) and checks what
//! the service checks: every authorize parameter, the PKCE verifier against the challenge,
//! the authorization code used once, the DPoP proof's ES256 signature against the key bound
//! at sign-in, `htm`, `htu`, a fresh `iat`, a never-seen `jti`, and a refresh token used
//! once. The credentials it hands out are real moto ones. The browser is the SSO tests'
//! script: it follows the authorize page's redirect to vault's loopback listener.

use std::fs;
use std::path::PathBuf;

use serde_json::json;
use vault_harness::signin::SigninStandIn;
use vault_harness::sso::browser_script;
use vault_harness::terminal::{Shell, Terminal};
use vault_harness::{ACCOUNT, World};

const ARN: &str = "arn:aws:iam::123456789012:user/alice";

const CONFIG: &str = "\
# the user's own
[profile other]
region = eu-west-1

[profile lab]
source_profile = console
role_arn = arn:aws:iam::123456789012:role/lab
role_session_name = alice-lab
region = us-west-2
";

/// The stand-in first: it stops before the world's temp dir goes.
struct Signin {
    stand_in: SigninStandIn,
    w: World,
}

fn world(config: &str) -> Signin {
    let mut w = World::without_stored_key("signin test", config);
    let stand_in = SigninStandIn::start(&w.env, &w.moto.endpoint);
    let browser = browser_script(&w.env, &w.path("browser-calls"));
    w.env
        .set("AWS_ENDPOINT_URL_SIGNIN", &stand_in.endpoint)
        .set("BROWSER", browser);
    Signin { stand_in, w }
}

impl Signin {
    fn cli_cache_file(&self) -> PathBuf {
        use sha2::Digest as _;
        let name = hex::encode(sha2::Sha256::digest(ARN.as_bytes()));
        self.w
            .env
            .home()
            .join(format!(".aws/login/cache/{name}.json"))
    }

    /// How many times vault opened the browser.
    fn browser_opens(&self) -> usize {
        fs::read_to_string(self.w.path("browser-calls"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    fn config(&self) -> String {
        fs::read_to_string(self.w.env.config_path()).unwrap()
    }

    fn refreshes(&self) -> Vec<serde_json::Value> {
        self.stand_in
            .token_calls()
            .into_iter()
            .filter(|c| c["grantType"] == "refresh_token")
            .collect()
    }

    fn export(&self, profile: &str) -> serde_json::Value {
        self.w.export_json(profile)
    }

    /// No refresh token, authorization code or PKCE verifier the stand-in saw, and no PEM
    /// key, in anything printed or in the vault's files.
    #[track_caller]
    fn assert_no_sign_in_secrets(&self) {
        self.stand_in.assert_never_shown(&self.w, &["PRIVATE KEY"]);
    }
}

#[test]
fn vault_signin_keeps_the_session_encrypted_and_every_command_uses_it() {
    let s = world(CONFIG);
    let before = s.config();
    // Credentials of a minute: inside the 5-minute window, so every use refreshes.
    s.stand_in.control(json!({"expires_in": 60}));
    let run = s.w.run(&["signin", "console", "--region", "us-west-2"]);
    run.success()
        .stderr_has(&format!("Signed in as {ARN}"))
        .stderr_has("now sets login_session and region")
        .stderr_has("vault exec console");

    // The AWS CLI's wire format, and what the stand-in checked.
    let authorize = s.stand_in.calls_of("Authorize");
    assert_eq!(authorize.len(), 1, "{authorize:?}");
    assert_eq!(authorize[0]["status"], 302);
    assert_eq!(
        authorize[0]["clientId"],
        "arn:aws:signin:::devtools/same-device"
    );
    let redirect = authorize[0]["redirectUri"].as_str().unwrap();
    assert!(
        redirect.starts_with("http://127.0.0.1:") && redirect.ends_with("/oauth/callback"),
        "{redirect}"
    );
    let token = s.stand_in.token_calls();
    assert_eq!(token.len(), 1, "{token:?}");
    assert_eq!(token[0]["grantType"], "authorization_code");
    assert_eq!(token[0]["pkce"], "verified");
    assert_eq!(token[0]["dpop"], "verified");
    assert_eq!(token[0]["status"], 200);

    // The profile as `aws login` writes it, below everything the user had.
    assert_eq!(
        s.config(),
        format!("{before}[profile console]\nlogin_session = {ARN}\nregion = us-west-2\n")
    );
    // Nothing in the AWS CLI's plaintext cache.
    assert!(!s.w.env.home().join(".aws/login").exists());

    // Every use refreshes (a minute left) with the rotated token and the same key: the
    // stand-in refuses a refresh token used before, and a proof from another key.
    s.w.env
        .caller_arn(&[], &["exec", "console"])
        .success()
        .stdout_has(&format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/console-session/"
        ));
    let exported = s.export("console");
    assert!(
        exported["AccessKeyId"]
            .as_str()
            .unwrap()
            .starts_with("ASIA")
    );
    let refreshes = s.refreshes();
    assert_eq!(refreshes.len(), 2, "{refreshes:?}");
    for call in &refreshes {
        assert_eq!(call["status"], 200, "{refreshes:?}");
        assert_eq!(call["dpop"], "verified");
        assert_eq!(call["clientId"], "arn:aws:signin:::devtools/same-device");
    }

    // As the source of a role: the role's session is minted with the console credentials.
    s.w.env
        .caller_arn(&[], &["exec", "lab"])
        .success()
        .stdout_has("assumed-role/lab/alice-lab");
    // Behind both credential servers.
    for server in ["--server", "--imds"] {
        s.w.env
            .caller_arn(&[], &["exec", server, "console"])
            .success()
            .stdout_has("assumed-role/console-session/");
    }

    // Fresh credentials are used as they are.
    s.stand_in.control(json!({"expires_in": 900}));
    s.export("console");
    let count = s.refreshes().len();
    s.export("console");
    assert_eq!(s.refreshes().len(), count);

    // --explain tells where the session is and until when it can be refreshed.
    let explained = s.w.run(&["exec", "--explain", "console"]);
    explained
        .success()
        .stdout_has("kept encrypted in the vault (vault signin)")
        .stdout_has("refreshable until");
    assert_eq!(s.refreshes().len(), count, "--explain refreshed");
    // `vault list` shows the session; its ARN signs out of it once the profile is gone.
    s.w.run(&["list"])
        .success()
        .stdout_has("Console session")
        .stdout_has(&format!("{ARN}  us-west-2"))
        .stdout_has("refreshable until");
    fs::write(s.w.env.config_path(), &before).unwrap();
    s.w.run(&["signout", ARN])
        .success()
        .stderr_has(&format!("Signed out of {ARN}"));
    assert!(
        !s.w.run(&["list"])
            .success()
            .stdout
            .contains("Console session")
    );
    s.assert_no_sign_in_secrets();
}

#[test]
fn thirty_two_cold_exports_refresh_a_vault_held_session_once() {
    let s = world(CONFIG);
    s.stand_in.control(json!({"expires_in": 60}));
    s.w.run(&["signin", "console", "--region", "us-west-2"])
        .success();
    s.w.env.assert_exports_agree(32, "console");
    assert_eq!(s.refreshes().len(), 1, "{:?}", s.stand_in.token_calls());
    s.assert_no_sign_in_secrets();
}

/// A kept session whose refresh is refused (its 12 hours are over) is signed in again once
/// for every command that needs it: one page, one code exchange, the others use the result.
/// A sign-in that fails then fails every waiting command with its reason, and they say
/// `vault signin`.
#[test]
fn an_ended_session_is_signed_in_again_once_for_every_waiting_command() {
    let s = world(CONFIG);
    s.stand_in.control(json!({"expires_in": 60}));
    s.w.run(&["signin", "console", "--region", "us-west-2"])
        .success();
    assert_eq!(s.browser_opens(), 1);
    s.stand_in.control(json!({"refuse_refresh": 1}));
    s.w.env.assert_exports_agree(8, "console");
    let refreshes = s.refreshes();
    assert_eq!(refreshes.len(), 1, "{refreshes:?}");
    assert_ne!(refreshes[0]["status"], 200);
    assert_eq!(s.stand_in.count("Authorize"), 2);
    assert_eq!(s.browser_opens(), 2);
    let codes: Vec<_> = s
        .stand_in
        .token_calls()
        .into_iter()
        .filter(|c| c["grantType"] == "authorization_code")
        .collect();
    assert_eq!(codes.len(), 2, "{codes:?}");
    assert!(
        codes
            .iter()
            .all(|c| c["status"] == 200 && c["pkce"] == "verified")
    );

    // The service's own trouble (500 on every attempt) is not the session's end: no page,
    // no note for the others, the token unspent for the next command.
    s.stand_in.control(json!({"fail_refresh": 10}));
    s.w.run(&["export", "console"])
        .failure(1)
        .stderr_has("InternalServerException");
    assert_eq!(s.stand_in.count("Authorize"), 2, "a 500 opened the page");
    s.stand_in.control(json!({"fail_refresh": 0}));
    s.export("console");
    assert_eq!(s.refreshes().last().unwrap()["status"], 200);

    // Refused again, and this time the person does not approve: all fail with that.
    let refreshed = s.refreshes().len();
    s.stand_in
        .control(json!({"refuse_refresh": 1, "deny_sign_in": true}));
    let runs = s.w.env.outputs_concurrently(
        (0..4).map(|_| s.w.env.vault(&["export", "--format", "json", "console"])),
    );
    for run in &runs {
        run.failure(1)
            .stderr_has("not approved")
            .stderr_has("vault signin console");
    }
    assert_eq!(s.stand_in.count("Authorize"), 3, "one page for all four");
    assert_eq!(
        s.refreshes().len(),
        refreshed + 1,
        "one refresh for all four"
    );
    // A new sign-in mends it.
    s.stand_in.control(json!({"deny_sign_in": false}));
    s.w.run(&["signin", "console"]).success();
    s.export("console");
    s.assert_no_sign_in_secrets();
}

#[test]
fn cli_cache_shares_the_session_with_the_sdks_both_ways_and_signout_removes_it() {
    let s = world(CONFIG);
    s.stand_in.control(json!({"expires_in": 60}));
    s.w.run(&["signin", "console", "--region", "us-west-2", "--cli-cache"])
        .success()
        .stderr_has("The AWS CLI and SDKs share it through");
    let path = s.cli_cache_file();
    let file: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(file["clientId"], "arn:aws:signin:::devtools/same-device");
    assert_eq!(file["tokenType"], "aws_sigv4");
    assert_eq!(file["accessToken"]["accountId"], ACCOUNT);
    assert!(
        file["dpopKey"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN EC PRIVATE KEY-----\n")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // aws-sdk-rust's own login provider refreshes from the file vault wrote (and rotates
    // the refresh token vault also holds).
    let rust = s.w.env.output(
        s.w.env
            .command(vault_harness::env::sdk_caller())
            .env("AWS_PROFILE", "console"),
    );
    rust.success().stdout_has("assumed-role/console-session/");
    assert_eq!(s.refreshes().len(), 1);
    let rotated: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_ne!(rotated["refreshToken"], file["refreshToken"]);

    // vault's own token is spent: refused once, then the file's newer one serves, and the
    // file gets the result.
    s.export("console");
    let refreshes = s.refreshes();
    assert_eq!(refreshes.len(), 3, "{refreshes:?}");
    assert_ne!(refreshes[1]["status"], 200, "{refreshes:?}");
    assert_eq!(refreshes[2]["status"], 200, "{refreshes:?}");
    let after: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_ne!(after["refreshToken"], rotated["refreshToken"]);
    // ... which the SDK refreshes from again, then boto3's own login provider and the AWS
    // CLI, each from what the one before wrote (a minute is inside their 5-minute window).
    s.w.env
        .output(
            s.w.env
                .command(vault_harness::env::sdk_caller())
                .env("AWS_PROFILE", "console"),
        )
        .success();
    let boto = s.w.env.output(s.w.env.command("python3").args([
        "-c",
        "import boto3; print(boto3.Session(profile_name='console').client('sts').get_caller_identity()['Arn'])",
    ]));
    boto.success().stdout_has("assumed-role/console-session/");
    // The AWS CLI itself (its botocore's provider), from what boto3 wrote.
    let cli = s.w.env.output(s.w.env.command("aws").args([
        "sts",
        "get-caller-identity",
        "--profile",
        "console",
        "--query",
        "Arn",
        "--output",
        "text",
    ]));
    cli.success().stdout_has("assumed-role/console-session/");
    let refreshes = s.refreshes();
    assert_eq!(refreshes.len(), 6, "{refreshes:?}");
    assert!(
        refreshes[3..]
            .iter()
            .all(|c| c["status"] == 200 && c["dpop"] == "verified"),
        "{refreshes:?}"
    );
    // And vault once more, from what boto3 wrote.
    s.export("console");
    assert_eq!(s.refreshes().last().unwrap()["status"], 200);

    s.w.run(&["signout", "console"])
        .success()
        .stderr_has(&format!("Signed out of {ARN}"))
        .stderr_has("Removed the AWS CLI's copy");
    assert!(!path.exists());
    s.w.run(&["export", "console"])
        .failure(1)
        .stderr_has("vault signin console");
    s.w.run(&["signout", "console"])
        .success()
        .stderr_has("vault keeps no console session");

    // `aws logout` (the file removed) ends the sharing: vault's refreshes do not bring the
    // file back.
    s.w.run(&["signin", "console", "--cli-cache"]).success();
    assert!(path.exists());
    fs::remove_file(&path).unwrap();
    let before = s.refreshes().len();
    s.export("console");
    assert_eq!(s.refreshes().len(), before + 1, "no refresh happened");
    assert!(!path.exists(), "vault wrote the AWS CLI's file again");
}

/// The flow on another device, as a person meets it over SSH: vault prints the page (no
/// browser), the person signs in elsewhere and types the code that page shows; it is not
/// echoed. A code from another sign-in, or not a code at all, is refused and nothing kept.
#[test]
fn the_remote_sign_in_in_a_terminal_takes_the_code_the_page_shows() {
    let mut s = world(CONFIG);
    s.w.env
        .unset("BROWSER")
        .set("SSH_CONNECTION", "10.0.0.1 5000 10.0.0.2 22")
        .put_vault_on_path();
    let before = s.config();
    let Some(term) = Terminal::start(&s.w.env, Shell::Bash) else {
        return;
    };
    // Credentials of a minute: every use refreshes.
    s.stand_in.control(json!({"expires_in": 60}));
    term.line("vault signin console --region us-west-2");
    let screen = term.wait_for("the code the page shows:");
    assert!(screen.contains("this is an SSH session"), "{screen}");
    let url = page_url(&s, &screen);
    let code = s.stand_in.remote_code(&url);
    term.line(&code);
    let screen = term.wait_for("Signed in as");
    assert!(!screen.contains(&code), "the code was echoed:\n{screen}");
    let token = s.stand_in.token_calls();
    assert_eq!(
        token[0]["clientId"],
        "arn:aws:signin:::devtools/cross-device"
    );
    assert_eq!(token[0]["pkce"], "verified");
    // The stand-in checked that the exchange sent the redirect the authorize page had.
    assert_eq!(
        s.stand_in.calls_of("Authorize")[0]["redirectUri"],
        format!("{}/v1/sessions/confirmation", s.stand_in.endpoint)
    );
    assert!(s.config().contains(&format!("login_session = {ARN}")));
    s.export("console");
    assert_eq!(s.stand_in.count("Authorize"), 1);

    // The session ends (the refresh refused) under a command whose stdout is a file: the
    // page and the prompt come on the terminal, the code typed there signs in again, and
    // the credentials go to the file.
    s.stand_in.control(json!({"refuse_refresh": 1}));
    let out = s.w.path("exported.json");
    let screen = code_prompt_of(
        &term,
        &format!(
            "vault export --format json console > {}; echo rc=$?",
            out.display()
        ),
    );
    let code = s.stand_in.remote_code(&page_url(&s, &screen));
    term.line(&code);
    term.wait_for("rc=0");
    let exported: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&out).unwrap()).unwrap();
    assert!(
        exported["AccessKeyId"]
            .as_str()
            .unwrap()
            .starts_with("ASIA")
    );
    assert_eq!(s.stand_in.count("Authorize"), 2);

    // Not a code; then a code from another sign-in (its state is not this one's).
    fs::write(s.w.env.config_path(), &before).unwrap();
    code_prompt_of(
        &term,
        "vault signout console; vault signin console --remote --region us-west-2; echo rc=$?",
    );
    term.line("bm90LWEtY29kZQ==");
    let screen = term.wait_for("rc=1");
    assert!(
        screen.contains("not the code the sign-in page shows"),
        "{screen}"
    );
    let stray = s.stand_in.remote_code(&page_url(&s, &screen));
    code_prompt_of(
        &term,
        "vault signin console --remote --region us-west-2; echo rc=$?",
    );
    term.line(&stray);
    // The step before ended with rc=1 too: this one's refusal, then its rc.
    term.wait_until("the refusal of the stray code, then rc=1", |screen| {
        screen
            .split_once("the code is from another sign-in")
            .is_some_and(|(_, after)| after.contains("rc=1"))
    });
    assert_eq!(s.config(), before, "a failed sign-in changed the config");
    s.assert_no_sign_in_secrets();
}

/// Types `command` and waits until its prompt for the code is the screen's last line: an
/// earlier prompt (and page) still on the screen is never taken for this one's.
fn code_prompt_of(term: &Terminal, command: &str) -> String {
    term.line(command);
    term.wait_until("vault's prompt for the code", |screen| {
        screen
            .lines()
            .next_back()
            .is_some_and(|l| l.ends_with("the code the page shows:"))
    })
}

/// The authorize URL vault printed (the last one on the screen).
fn page_url(s: &Signin, screen: &str) -> String {
    screen
        .lines()
        .map(str::trim)
        .rfind(|l| l.starts_with(&format!("{}/v1/authorize?", s.stand_in.endpoint)))
        .unwrap_or_else(|| panic!("no sign-in page on the screen:\n{screen}"))
        .to_owned()
}

/// What `aws login` refuses, vault refuses before any browser opens; a sign-in that is
/// denied, or by someone the profile is not for, keeps nothing and changes no file.
#[test]
fn refused_sign_ins_change_nothing() {
    let config = format!(
        "{CONFIG}\n[profile keyed]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n\n\
         [profile console]\nlogin_session = {ARN}\nregion = us-west-2\n\n[profile bare]\n"
    );
    let mut s = world(&config);
    for (profile, says) in [
        ("keyed", "an access key in the config file"),
        ("lab", "a role (role_arn)"),
    ] {
        s.w.run(&["signin", profile, "--region", "us-west-2"])
            .failure(1)
            .stderr_has(says)
            .stderr_has(&format!("vault signin {profile}-console"));
    }
    // Keys in the shared credentials file win over a console session in the SDKs.
    let keys = s.w.path("credentials");
    fs::write(
        &keys,
        "[bare]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = x\n",
    )
    .unwrap();
    s.w.env
        .run_with(
            &[("AWS_SHARED_CREDENTIALS_FILE", keys.to_str().unwrap())],
            &["signin", "bare", "--region", "us-west-2"],
        )
        .failure(1)
        .stderr_has("an access key in the shared credentials file");
    assert_eq!(s.stand_in.count("Authorize"), 0);

    s.stand_in.control(json!({"deny_sign_in": true}));
    s.w.run(&["signin", "console"])
        .failure(1)
        .stderr_has("not approved");
    s.stand_in.control(
        json!({"deny_sign_in": false, "sign_in_arn": "arn:aws:iam::123456789012:user/bob"}),
    );
    s.w.run(&["signin", "console"])
        .failure(1)
        .stderr_has(
            "you signed in as arn:aws:iam::123456789012:user/bob, but profile console is for",
        )
        .stderr_has("nothing was kept");
    // What the service names goes into the config file: only an ARN is taken.
    s.stand_in.control(json!({
        "sign_in_arn": "arn:aws:iam::123456789012:user/x\n[profile evil]\ncredential_process = sh"
    }));
    s.w.run(&["signin", "bare", "--region", "us-west-2"])
        .failure(1)
        .stderr_has("the ID token's subject is not an ARN");
    // A region goes into the Sign-In host and the config file: only a region is taken.
    s.w.run(&["signin", "bare", "--region", "us-west-2\n[profile evil]"])
        .failure(2)
        .stderr_has("is not an AWS region");
    // The flow on another device needs a terminal to type the code in: said before any page.
    let authorized = s.stand_in.count("Authorize");
    s.w.run(&["signin", "bare", "--remote", "--region", "us-west-2"])
        .failure(2)
        .stderr_has("needs a terminal");
    assert_eq!(s.stand_in.count("Authorize"), authorized);
    assert_eq!(s.config(), config);
    s.w.run(&["export", "console"])
        .failure(1)
        .stderr_has("vault signin console");

    // No region anywhere: say where to give one.
    for name in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        s.w.env.unset(name);
    }
    s.w.run(&["signin", "bare"])
        .failure(2)
        .stderr_has("no AWS Sign-In region")
        .stderr_has("--region");
    assert_eq!(s.config(), config);
}

/// AWS Sign-In that accepts and never answers: the refresh ends within the bound the
/// other calls have (`AWS_VAULT_STS_TIMEOUT`), says so, and spends nothing: the session
/// works once Sign-In answers again.
#[test]
fn a_sign_in_service_that_never_answers_ends_within_the_bound() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let s = world(CONFIG);
    s.stand_in.control(json!({"expires_in": 60}));
    s.w.run(&["signin", "console", "--region", "us-west-2"])
        .success();
    // A listener that takes every connection and holds it, until the test ends it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    silent.set_nonblocking(true).unwrap();
    let port = silent.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let holder = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Ok((stream, _)) = silent.accept() {
                    held.push(stream);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
    };
    let run = s.w.env.run_with(
        &[
            (
                "AWS_ENDPOINT_URL_SIGNIN",
                &format!("http://127.0.0.1:{port}"),
            ),
            ("AWS_VAULT_STS_TIMEOUT", "3s"),
        ],
        &["export", "--format", "json", "console"],
    );
    stop.store(true, Ordering::Relaxed);
    holder.join().unwrap();
    run.failure(1)
        .stderr_has("cannot reach AWS Sign-In")
        .stderr_has("AWS_ENDPOINT_URL_SIGNIN");
    // Nothing was spent: the real service refreshes with the token vault still holds.
    s.export("console");
    let refreshes = s.refreshes();
    assert_eq!(refreshes.len(), 1, "{refreshes:?}");
    assert_eq!(refreshes[0]["status"], 200);
}

/// `kill -9` while vault waits for the browser's redirect: nothing is kept, the config file
/// is as it was, no temp file is left, and the next sign-in works.
#[cfg(unix)]
#[test]
fn a_sign_in_killed_while_waiting_changes_nothing() {
    use std::os::unix::fs::PermissionsExt;
    use vault_harness::{Signal, kill};
    let mut s = world(CONFIG);
    // A browser that notes the page and never visits it.
    let calls = s.w.path("idle-browser-calls");
    let idle = s.w.path("idle-browser");
    fs::write(
        &idle,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n",
            calls.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&idle, fs::Permissions::from_mode(0o755)).unwrap();
    s.w.env.set("BROWSER", &idle);
    let before = s.config();
    let mut child =
        s.w.env
            .vault(&["signin", "console", "--region", "us-west-2"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !calls.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the browser was never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    kill(child.id(), Signal::SIGKILL);
    child.wait().unwrap();
    assert_eq!(s.config(), before);
    let leftovers: Vec<_> =
        s.w.env
            .vault_files()
            .into_iter()
            .map(|(path, _)| path)
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.starts_with("console") || name.contains(".tmp")
            })
            .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(
        !s.w.run(&["list"])
            .success()
            .stdout
            .contains("Console session")
    );
    assert_eq!(s.stand_in.count("CreateOAuth2Token"), 0);
    // The next sign-in (the tests' real browser) works.
    let browser = vault_harness::sso::browser_script(&s.w.env, &s.w.path("browser-calls"));
    s.w.env.set("BROWSER", browser);
    s.w.run(&["signin", "console", "--region", "us-west-2"])
        .success();
    s.export("console");
}

/// A FIFO where the vault's console.json goes (or containers.json) is refused at once by
/// every command that reads it, naming the file, instead of hanging on it.
#[cfg(unix)]
#[test]
fn a_fifo_in_place_of_the_vaults_files_is_refused_not_waited_on() {
    let s = world(CONFIG);
    s.w.run(&["signin", "console", "--region", "us-west-2"])
        .success();
    for file in ["console.json", "containers.json"] {
        let path = s.w.env.vault_dir().join(file);
        let _ = fs::remove_file(&path);
        s.w.env
            .output(s.w.env.command("mkfifo").args(["-m", "600"]).arg(&path))
            .success();
    }
    s.w.run(&["export", "console"])
        .failure(1)
        .stderr_has("console.json")
        .stderr_has("not a regular file");
    s.w.run(&["container", "list"])
        .failure(1)
        .stderr_has("containers.json")
        .stderr_has("not a regular file");
}
