//! `vault login`: the console sign-in link.
//!
//! STS runs on moto, but moto has no console federation endpoint (`getSigninToken`), and no
//! real one can run here: [`FakeFederation`] is a hand-written stand-in on 127.0.0.1 that
//! checks the request shape (parameters, the Session JSON, the SessionDuration rules) and
//! answers a fixed sign-in token.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use vault_harness::{World, parse_form, percent_decode};

const PASSPHRASE: &str = "login test";
const SIGNIN_TOKEN: &str = "fake-signin-token-0123456789";

/// The federation endpoint stand-in: records each request's query, answers a sign-in token.
/// Also the console module's (console sessions behind `vault login`).
pub(super) struct FakeFederation {
    port: u16,
    requests: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeFederation {
    pub(super) fn start() -> FakeFederation {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let mut line = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                reader.read_line(&mut line).unwrap_or(0);
                // Drain the headers.
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) <= 2 {
                        break;
                    }
                }
                let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                let mut params = parse_form(query);
                params.insert("_path".into(), path.to_owned());
                let ok = path == "/federation"
                    && params.get("Action").map(String::as_str) == Some("getSigninToken");
                r.lock().unwrap().push(params);
                let (status, body) = if ok {
                    ("200 OK", format!("{{\"SigninToken\":\"{SIGNIN_TOKEN}\"}}"))
                } else {
                    ("400 Bad Request", "bad request".to_owned())
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        FakeFederation {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    pub(super) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/federation", self.port)
    }

    pub(super) fn requests(&self) -> Vec<BTreeMap<String, String>> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeFederation {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// [`World`] with `base` and role profile `lab`, and vault pointed at the federation
/// stand-in.
fn world() -> (World, FakeFederation) {
    let mut w = World::new(
        PASSPHRASE,
        "[profile base]\nregion = us-east-1\n\
         [profile lab]\nsource_profile = base\nrole_arn = arn:aws:iam::123456789012:role/lab\nregion = eu-west-1\n",
    );
    let fake = FakeFederation::start();
    w.env.set("VAULT_FEDERATION_ENDPOINT", fake.endpoint());
    (w, fake)
}

pub(super) fn session_json(request: &BTreeMap<String, String>) -> serde_json::Value {
    serde_json::from_str(request.get("Session").expect("Session parameter")).unwrap()
}

#[test]
fn role_login_sends_the_role_session_and_builds_the_login_url() {
    let (w, fake) = world();
    let run = w.env.run(&[
        "login", "lab", "--stdout", "-d", "2h", "--path", "ec2/home", "--debug",
    ]);
    run.success();
    let url = run.stdout.trim();
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let r = &requests[0];
    assert_eq!(r["SessionDuration"], "7200");
    let session = session_json(r);
    assert!(
        session["sessionId"].as_str().unwrap().starts_with("ASIA"),
        "{session}"
    );
    assert!(!session["sessionKey"].as_str().unwrap().is_empty());
    assert!(!session["sessionToken"].as_str().unwrap().is_empty());

    let (endpoint, query) = url.split_once('?').unwrap();
    assert_eq!(endpoint, fake.endpoint());
    let q = parse_form(query);
    assert_eq!(q["Action"], "login");
    assert_eq!(q["Issuer"], "vault");
    assert_eq!(q["SigninToken"], SIGNIN_TOKEN);
    assert_eq!(
        q["Destination"],
        "https://console.aws.amazon.com/ec2/home?region=eu-west-1"
    );
    // The link is a credential: never in the log.
    assert!(!run.stderr.contains(SIGNIN_TOKEN), "{}", run.stderr);
    assert_eq!(w.moto.count("AssumeRole"), 1);
    // Nor is the role session vault minted under --debug and sent inside `Session`: its
    // secret key and token, as the stand-in received them, appear in no output of the run
    // (stdout, the --debug log on stderr), nor in anything else printed (the key pair added
    // at setup, the passphrase); neither as they are nor percent-encoded as in the request.
    let session_key = session["sessionKey"].as_str().unwrap();
    let session_token = session["sessionToken"].as_str().unwrap();
    let (key_sent, token_sent) = (form_encode(session_key), form_encode(session_token));
    w.assert_no_secrets(&[session_key, session_token, &key_sent, &token_sent]);
}

/// `text` percent-encoded as in a query string (everything but `A-Za-z0-9-_.~`).
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn user_login_goes_through_get_federation_token() {
    let (w, fake) = world();
    let run = w
        .env
        .run(&["login", "base", "--stdout", "--region", "cn-north-1"]);
    run.success();
    let calls = w.moto.sts_calls();
    let federation: Vec<_> = calls
        .iter()
        .filter(|c| c.action == "GetFederationToken")
        .collect();
    assert_eq!(federation.len(), 1, "{calls:?}");
    assert_eq!(federation[0].param("Name"), Some("alice"));
    assert!(federation[0].param("Policy").unwrap().contains("\"Allow\""));
    assert_eq!(federation[0].param("DurationSeconds"), Some("43200"));
    let r = &fake.requests()[0];
    // AWS refuses SessionDuration for federated users.
    assert!(!r.contains_key("SessionDuration"), "{r:?}");
    let q = parse_form(run.stdout.trim().split_once('?').unwrap().1);
    assert_eq!(
        q["Destination"],
        "https://console.amazonaws.cn/?region=cn-north-1"
    );
}

#[test]
fn session_policies_narrow_both_kinds_of_console_session() {
    let (w, _federation) = world(); // kept running: vault is pointed at it
    let policy = r#"{ "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}] }"#;
    let packed = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}]}"#;
    let arn = "arn:aws:iam::aws:policy/ReadOnlyAccess";
    let narrowed = ["--stdout", "--policy", policy, "--policy-arn", arn];
    // An IAM user: GetFederationToken takes the user's policy instead of the allow-all one.
    let mut args = vec!["login", "base"];
    args.extend(narrowed);
    w.env.run(&args).success();
    // A role: the AssumeRole carries it.
    let mut args = vec!["login", "lab"];
    args.extend(narrowed);
    w.env.run(&args).success();
    let calls = w.moto.sts_calls();
    for action in ["GetFederationToken", "AssumeRole"] {
        let call = calls.iter().find(|c| c.action == action).expect(action);
        assert_eq!(call.param("Policy"), Some(packed), "{call:?}");
        assert_eq!(call.param("PolicyArns.member.1.arn"), Some(arn), "{call:?}");
    }
}

#[test]
fn browser_gets_the_link_and_bad_durations_are_refused() {
    let (w, _federation) = world(); // kept running: vault is pointed at it
    let opened = w.env.dir.path().join("opened");
    let browser_env = w.env.dir.path().join("browser-env");
    let script = w.env.dir.path().join("browser.sh");
    std::fs::write(
        &script,
        // As a browser would: read the page it is given (the link is inside, not on argv).
        format!(
            "#!/bin/sh\ncase \"$1\" in *SigninToken*) echo on-argv; exit 1;; esac\ncat \"$1\" > {}\nenv > {}\n",
            opened.display(),
            browser_env.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let run = w.env.run_with(
        &[("BROWSER", &script.display().to_string())],
        &["login", "lab"],
    );
    run.success();
    assert!(run.stdout.is_empty(), "printed: {}", run.stdout);
    let url = std::fs::read_to_string(&opened).unwrap();
    let seen = std::fs::read_to_string(&browser_env).unwrap();
    assert!(seen.contains("HOME="), "{seen}");
    assert!(
        !seen.contains("AWS_VAULT_FILE_PASSPHRASE") && !seen.contains(PASSPHRASE),
        "the browser saw the passphrase"
    );
    assert!(
        url.contains(&format!("SigninToken={SIGNIN_TOKEN}")),
        "{url}"
    );
    assert!(percent_decode(&url).contains("region=eu-west-1"), "{url}");

    w.env
        .run(&["login", "lab", "--stdout", "-d", "13h"])
        .failure(1)
        .stderr_has("12h");
    // A broken endpoint is a clear error naming it.
    w.env
        .run_with(
            &[("VAULT_FEDERATION_ENDPOINT", "http://127.0.0.1:1/federation")],
            &["login", "lab", "--stdout"],
        )
        .failure(1)
        .stderr_has("federation endpoint");
}

/// SIGTERM or SIGHUP while the browser has the page (not only Ctrl+C) removes the page and
/// the sign-in token in it.
#[cfg(unix)]
#[test]
fn a_signal_while_the_browser_has_the_page_removes_it() {
    use vault_harness::{Signal, kill};
    let (w, _federation) = world();
    let runtime = w.env.dir.path().join("run");
    let script = w.env.dir.path().join("slow-browser.sh");
    std::fs::write(&script, "#!/bin/sh\nsleep 3\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let pages = || -> Vec<String> {
        std::fs::read_dir(&runtime)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("vault-login-"))
            .collect()
    };
    for signal in [Signal::SIGTERM, Signal::SIGHUP] {
        let mut cmd = w.env.vault(&["login", "lab"]);
        cmd.env("BROWSER", &script)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut vault = cmd.spawn().unwrap();
        vault_harness::wait_for(Duration::from_secs(30), "the sign-in page", || {
            !pages().is_empty()
        });
        kill(vault.id(), signal);
        let status = vault.wait().unwrap();
        assert!(!status.success(), "{signal:?}: {status}");
        assert!(pages().is_empty(), "{signal:?} left {:?}", pages());
    }
}
