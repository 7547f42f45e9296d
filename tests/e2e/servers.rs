//! `vault exec --server` (ECS-style container endpoint), `vault exec --imds` (IMDSv2 on
//! 127.0.0.1), `--lazy`, signals and exit codes while vault stays the child's parent, and
//! `vault export --format json` as a `credential_process`, each checked against moto as STS
//! and with real SDK clients (the AWS CLI, boto3 and aws-sdk-rust) as the child.
//!
//! Each test has its own moto, its own `file` vault and its own config file. A server run is
//! left running ([`Served`]) while the test talks HTTP to it, and stopped through a file the
//! idle child watches.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use vault_harness::Reply;
use vault_harness::{ACCOUNT, CALLER_ARN, Run, Signal, World, assert_assumed, kill, parse_env};

const PASSPHRASE: &str = "servers tests: tr0ub4dor&3 is not enough";
const LAB_ROLE: &str = "arn:aws:iam::123456789012:role/lab";
const MFA: &str = "arn:aws:iam::123456789012:mfa/alice";

/// `lab` is assumed straight from the stored key; `lab-mfa` goes through an MFA session.
/// `lab-cp` is filled in by [`lab_with_credential_process`].
const CONFIG: &str = "\
[profile base]
region = us-east-1

[profile lab]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/lab
region = eu-west-1

[profile lab-mfa]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/lab-mfa
mfa_serial = arn:aws:iam::123456789012:mfa/alice
region = us-east-1
";

const BOTO3_CALLER: &str = "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])";
const BOTO3_CP_CALLER: &str = "import boto3; \
print(boto3.Session(profile_name='lab-cp').client('sts').get_caller_identity()['Arn'])";

/// [`World`] on [`CONFIG`].
fn lab() -> World {
    World::new(PASSPHRASE, CONFIG)
}

/// [`lab`] plus `[profile lab-cp]` running `vault export --format json lab`.
fn lab_with_credential_process() -> World {
    let lab = lab();
    let bin = vault_harness::vault_bin();
    lab.write_config(&format!(
        "{CONFIG}\n[profile lab-cp]\ncredential_process = {} export --format json lab\nregion = us-east-1\n",
        bin.display()
    ));
    lab
}

// ----- a server run left running -----

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// What the idle child does: note its PID, its parent's command line and its environment,
/// then wait for the stop file. `$RUN` is the run's directory.
const IDLE: &str = r#"echo $$ > "$RUN/child.pid"
cat /proc/$PPID/cmdline > "$RUN/parent.cmdline" 2>/dev/null
env -0 > "$RUN/env.tmp" && mv "$RUN/env.tmp" "$RUN/env"
while [ ! -e "$RUN/stop" ]; do sleep 0.05; done"#;

/// A `vault … -- sh -c SCRIPT` run in the background, its stdout and stderr going to files.
/// Dropping it stops the child through the stop file, then kills whatever is left by PID.
struct Background<'w> {
    world: &'w World,
    vault: Option<Child>,
    dir: PathBuf,
}

impl<'w> Background<'w> {
    /// Starts `vault ARGS -- sh -c SCRIPT` with `vars` added to the environment.
    fn start(world: &'w World, vars: &[(&str, &str)], args: &[&str], script: &str) -> Self {
        let n = RUNS.fetch_add(1, Ordering::Relaxed);
        let dir = world.env.dir.path().join(format!("run-{n}"));
        fs::create_dir_all(&dir).unwrap();
        let mut cmd = world.env.vault(args);
        cmd.args(["--", "sh", "-c", script])
            .env("RUN", &dir)
            .stdout(fs::File::create(dir.join("stdout")).unwrap())
            .stderr(fs::File::create(dir.join("stderr")).unwrap());
        for (name, value) in vars {
            cmd.env(name, value);
        }
        let vault = cmd.spawn().expect("vault starts");
        Background {
            world,
            vault: Some(vault),
            dir,
        }
    }

    fn pid(&self) -> u32 {
        self.vault.as_ref().expect("running").id()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The PID the child wrote (the IDLE script's first line).
    fn child_pid(&self) -> u32 {
        fs::read_to_string(self.path("child.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// Waits until the run's file `name` exists, panicking with vault's output if vault
    /// exits first or it takes over a minute.
    #[track_caller]
    fn wait_for_file(&mut self, name: &str) {
        let path = self.path(name);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !path.exists() {
            if let Some(status) = self.vault.as_mut().unwrap().try_wait().unwrap() {
                let run = self.collect(status);
                panic!("vault exited before {name} appeared: {run:?}");
            }
            assert!(Instant::now() < deadline, "no {name} after a minute");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (up to `limit`) for vault to exit on its own: its status and output.
    #[track_caller]
    fn wait(&mut self, limit: Duration) -> Run {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.vault.as_mut().unwrap().try_wait().unwrap() {
                return self.collect(status);
            }
            assert!(
                Instant::now() < deadline,
                "vault (pid {}) still runs after {limit:?}",
                self.pid()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Tells the child to stop and returns vault's status and output.
    #[track_caller]
    fn finish(mut self) -> Run {
        fs::write(self.path("stop"), "").unwrap();
        self.wait(Duration::from_secs(30))
    }

    fn collect(&mut self, status: ExitStatus) -> Run {
        self.vault = None;
        let read = |name: &str| fs::read(self.path(name)).unwrap_or_default();
        self.world
            .env
            .record(status, read("stdout"), read("stderr"))
    }
}

impl Drop for Background<'_> {
    fn drop(&mut self) {
        let Some(mut vault) = self.vault.take() else {
            return;
        };
        let _ = fs::write(self.path("stop"), "");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = vault.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        if let Some(pid) = fs::read_to_string(self.path("child.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            kill(pid, Signal::SIGKILL);
        }
        let _ = vault.kill();
        let _ = vault.wait();
    }
}

/// A server run with an idle child: the child's environment and the server's port.
struct Served<'w> {
    run: Background<'w>,
    child_env: BTreeMap<String, String>,
    port: u16,
}

impl<'w> Served<'w> {
    /// `vault ARGS -- sh -c IDLE`, once the child runs. ARGS must start a server.
    #[track_caller]
    fn start(world: &'w World, vars: &[(&str, &str)], args: &[&str]) -> Self {
        let mut run = Background::start(world, vars, args, IDLE);
        run.wait_for_file("env");
        let child_env = parse_env(&fs::read_to_string(run.path("env")).unwrap());
        let url = child_env
            .get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            .or_else(|| child_env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT"))
            .unwrap_or_else(|| panic!("the child has no endpoint: {child_env:?}"));
        let port = url
            .strip_prefix("http://127.0.0.1:")
            .and_then(|rest| rest.strip_suffix('/'))
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("endpoint {url:?} is not http://127.0.0.1:PORT/"));
        Served {
            run,
            child_env,
            port,
        }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.child_env.get(name).map(String::as_str)
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        http(self.port, "GET", path, headers)
    }

    /// The ECS endpoint's answer with the child's token, which must be 200 JSON.
    #[track_caller]
    fn ecs_credentials(&self) -> Value {
        let token = self
            .var("AWS_CONTAINER_AUTHORIZATION_TOKEN")
            .expect("the child has AWS_CONTAINER_AUTHORIZATION_TOKEN");
        let reply = self.get("/", &[("Authorization", token)]);
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.json()
    }

    /// An IMDSv2 session token with `ttl` seconds, which must be granted.
    #[track_caller]
    fn imds_token(&self, ttl: &str) -> String {
        let reply = http(
            self.port,
            "PUT",
            "/latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", ttl)],
        );
        assert_eq!(reply.status, 200, "{reply:?}");
        assert!(!reply.body.is_empty(), "{reply:?}");
        reply.body
    }

    /// The IMDS role credentials, through a fresh token, which must be 200 JSON.
    #[track_caller]
    fn imds_credentials(&self, role: &str) -> Value {
        let token = self.imds_token("60");
        let path = format!("/latest/meta-data/iam/security-credentials/{role}");
        let reply = self.get(&path, &[("X-aws-ec2-metadata-token", &token)]);
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.json()
    }

    #[track_caller]
    fn finish(self) -> Run {
        self.run.finish()
    }
}

// ----- HTTP: the harness's one client, every header ours to choose -----

/// One request to 127.0.0.1:`port`, which must be answered.
#[track_caller]
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    vault_harness::request(port, method, path, headers, b"")
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

// ----- checks on answers -----

/// How long until `text`, which must be RFC 3339 in UTC (`…Z`).
#[track_caller]
fn until(text: &str) -> chrono::Duration {
    let at = chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"));
    assert!(text.ends_with('Z'), "{text} is not written in UTC (Z)");
    at.with_timezone(&chrono::Utc) - chrono::Utc::now()
}

/// Handed-out credentials last more than the SDKs' 15-minute refresh window, and no more
/// than the hour a role session gets.
#[track_caller]
fn assert_session_lifetime(expiration: &str) {
    let left = until(expiration);
    assert!(
        left > chrono::Duration::minutes(15) && left <= chrono::Duration::minutes(61),
        "credentials expiring {expiration} last {left}"
    );
}

#[track_caller]
fn str_field<'a>(json: &'a Value, name: &str) -> &'a str {
    json[name]
        .as_str()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("no {name} in {json}"))
}

/// The container endpoint's credential document: exactly the contract's fields, temporary
/// keys (not the stored ones), a session lifetime, the account.
#[track_caller]
fn check_ecs_document(world: &World, json: &Value) {
    let fields: Vec<&str> = json
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    for field in &fields {
        assert!(
            [
                "AccessKeyId",
                "SecretAccessKey",
                "Token",
                "Expiration",
                "AccountId"
            ]
            .contains(field),
            "unexpected field {field} in the container answer"
        );
    }
    let id = str_field(json, "AccessKeyId");
    assert_ne!(id, world.key_id);
    assert_ne!(str_field(json, "SecretAccessKey"), world.secret);
    str_field(json, "Token");
    assert_session_lifetime(str_field(json, "Expiration"));
    assert_eq!(json["AccountId"].as_str(), Some(ACCOUNT), "{fields:?}");
}

/// The metadata service's credential document.
#[track_caller]
fn check_imds_document(world: &World, json: &Value) {
    assert_eq!(json["Code"].as_str(), Some("Success"));
    assert_eq!(json["Type"].as_str(), Some("AWS-HMAC"));
    let updated = until(str_field(json, "LastUpdated"));
    assert!(
        updated.num_seconds().abs() < 5 * 60,
        "LastUpdated is {updated} away"
    );
    assert_ne!(str_field(json, "AccessKeyId"), world.key_id);
    assert_ne!(str_field(json, "SecretAccessKey"), world.secret);
    str_field(json, "Token");
    assert_session_lifetime(str_field(json, "Expiration"));
}

/// The variables a server child must never inherit: credentials, profile selectors, the
/// passphrase, and a relative container URI (which the SDKs would prefer).
const STALE: [(&str, &str); 10] = [
    ("AWS_ACCESS_KEY_ID", "AKIASTALESTALESTALE1"),
    (
        "AWS_SECRET_ACCESS_KEY",
        "stale/stale/stale/stale/stale/stale/stal",
    ),
    ("AWS_SESSION_TOKEN", "stale-session-token"),
    ("AWS_SECURITY_TOKEN", "stale-security-token"),
    ("AWS_CREDENTIAL_EXPIRATION", "2000-01-01T00:00:00Z"),
    ("AWS_PROFILE", "nowhere"),
    ("AWS_DEFAULT_PROFILE", "nowhere"),
    ("AWS_SDK_LOAD_CONFIG", "1"),
    ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/stale"),
    ("VAULT_TEST_PASSTHROUGH", "kept"),
];

#[track_caller]
fn assert_scrubbed(served: &Served<'_>) {
    for (name, _) in &STALE[..STALE.len() - 1] {
        assert_eq!(served.var(name), None, "the child has {name}");
    }
    assert_eq!(served.var("AWS_VAULT_FILE_PASSPHRASE"), None);
    assert_eq!(served.var("VAULT_TEST_PASSTHROUGH"), Some("kept"));
    assert_eq!(served.var("AWS_VAULT"), Some("lab"));
    assert_eq!(served.var("AWS_REGION"), Some("eu-west-1"));
    assert_eq!(served.var("AWS_DEFAULT_REGION"), Some("eu-west-1"));
}

// ----- the container (ECS-style) endpoint -----

#[test]
fn server_gives_the_child_a_container_endpoint_that_answers_only_its_token() {
    let world = lab();
    let served = Served::start(&world, &STALE, &["exec", "--server", "lab"]);
    // Minted before the child started, once.
    assert_eq!(world.minted_actions(), ["AssumeRole"]);
    let calls = world.moto.sts_calls();
    assert_eq!(calls[0].param("RoleArn"), Some(LAB_ROLE), "{calls:?}");

    assert_scrubbed(&served);
    assert_eq!(served.var("AWS_EC2_METADATA_SERVICE_ENDPOINT"), None);
    assert_eq!(
        served.var("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        Some(format!("http://127.0.0.1:{}/", served.port).as_str())
    );
    let token = served
        .var("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        .expect("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        .to_owned();
    assert_eq!(token.len(), 43, "{token:?}");
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "not URL-safe base64: {token:?}"
    );
    {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&token)
            .expect("base64");
        assert_eq!(raw.len(), 32);
    }

    let reply = served.get("/", &[("Authorization", &token)]);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{reply:?}"
    );
    let json = reply.json();
    check_ecs_document(&world, &json);
    let id = str_field(&json, "AccessKeyId").to_owned();
    let secret = str_field(&json, "SecretAccessKey").to_owned();
    let session = str_field(&json, "Token").to_owned();

    // Anything but the exact token: 403 with a JSON error, and no credentials.
    let mut wrong = token.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'A' { 'B' } else { 'A' });
    let bearer = format!("Bearer {token}");
    let prefix = &token[..42];
    let longer = format!("{token}x");
    let refused: [&[(&str, &str)]; 6] = [
        &[],
        &[("Authorization", "")],
        &[("Authorization", &wrong)],
        &[("Authorization", &bearer)],
        &[("Authorization", prefix)],
        &[("Authorization", &longer)],
    ];
    for headers in refused {
        let reply = served.get("/", headers);
        assert_eq!(reply.status, 403, "{headers:?}: {reply:?}");
        let error = reply.json();
        assert!(error["code"].is_string(), "{error}");
        assert!(error["message"].is_string(), "{error}");
        assert!(!reply.body.contains(&id) && !reply.body.contains(&secret));
    }

    // Asked again: the same credentials, no STS call.
    let again = served.ecs_credentials();
    assert_eq!(again["AccessKeyId"].as_str(), Some(id.as_str()));
    assert_eq!(again["Token"].as_str(), Some(session.as_str()));
    assert_eq!(world.minted_actions(), ["AssumeRole"]);

    served.finish().success();

    // --ecs-server is the same thing, with a token of its own.
    let other = Served::start(&world, &[], &["exec", "--ecs-server", "lab"]);
    let other_token = other
        .var("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        .expect("a token")
        .to_owned();
    assert_ne!(other_token, token);
    assert_eq!(
        other.get("/", &[("Authorization", &token)]).status,
        403,
        "a previous server's token works"
    );
    // vault's session cache: no new role session.
    let json = other.ecs_credentials();
    assert_eq!(json["AccessKeyId"].as_str(), Some(id.as_str()));
    other.finish().success();
    assert_eq!(world.minted_actions(), ["AssumeRole"]);
    world.assert_no_secrets(&[&id, &secret, &session, &token, &other_token]);
}

#[test]
fn sdk_clients_use_the_container_endpoint() {
    let world = lab();
    let sdk_caller = vault_harness::sdk_caller().display().to_string();
    let clients: [(&str, Vec<&str>); 3] = [
        ("aws", CALLER_ARN.to_vec()),
        ("boto3", vec!["python3", "-c", BOTO3_CALLER]),
        ("aws-sdk-rust", vec![sdk_caller.as_str()]),
    ];
    for (name, command) in clients {
        let mut args = vec!["exec", "--server", "lab", "--"];
        args.extend_from_slice(&command);
        // No metadata service to fall back to: the container endpoint or nothing.
        let run = world
            .env
            .run_with(&[("AWS_EC2_METADATA_DISABLED", "true")], &args);
        assert!(run.status.success(), "{name}: {run:?}");
        assert_assumed(run.stdout.trim(), "lab");
    }
    // One role session, shared through vault's cache; the clients only asked who they are.
    assert_eq!(world.minted_actions(), ["AssumeRole"]);
    assert_eq!(world.moto.count("GetCallerIdentity"), 3);
    world.assert_no_secrets(&[]);
}

#[test]
fn a_min_ttl_longer_than_the_session_makes_every_fetch_renew() {
    let world = lab();
    // Without AWS_MIN_TTL: two fetches, one role session.
    let served = Served::start(&world, &[], &["exec", "--server", "lab"]);
    let first = served.ecs_credentials();
    let second = served.ecs_credentials();
    assert_eq!(first["AccessKeyId"], second["AccessKeyId"]);
    assert_eq!(world.moto.count("AssumeRole"), 1);
    served.finish().success();

    // AWS_MIN_TTL=2h is more than the hour a role session lasts: what the server holds is
    // always stale, so each fetch mints again, for either endpoint.
    for kind in ["--server", "--imds"] {
        let served = Served::start(&world, &[("AWS_MIN_TTL", "2h")], &["exec", kind, "lab"]);
        let fetch = || match kind {
            "--server" => served.ecs_credentials(),
            _ => served.imds_credentials("lab"),
        };
        let first = fetch();
        let after_first = world.moto.count("AssumeRole");
        let second = fetch();
        assert_ne!(
            first["AccessKeyId"], second["AccessKeyId"],
            "{kind}: the second fetch gave the same credentials"
        );
        assert_eq!(
            world.moto.count("AssumeRole"),
            after_first + 1,
            "{kind}: {:?}",
            world.minted_actions()
        );
        served.finish().success();
    }
    world.assert_no_secrets(&[]);
}

#[test]
fn renewal_reuses_the_mfa_session_and_needs_no_new_code() {
    let world = lab();
    let served = Served::start(
        &world,
        &[("AWS_MIN_TTL", "2h")],
        &["exec", "--server", "-t", "123456", "lab-mfa"],
    );
    // The MFA code is used up front, on a session that outlives the role's.
    assert_eq!(world.minted_actions(), ["GetSessionToken", "AssumeRole"]);
    let calls = world.moto.sts_calls();
    assert_eq!(calls[0].param("SerialNumber"), Some(MFA));
    assert_eq!(calls[0].param("TokenCode"), Some("123456"));
    assert_eq!(
        calls[1].param("RoleArn"),
        Some("arn:aws:iam::123456789012:role/lab-mfa")
    );

    let first = served.ecs_credentials();
    check_ecs_document(&world, &first);
    let after_first = world.moto.count("AssumeRole");
    let second = served.ecs_credentials();
    assert_eq!(
        world.moto.count("GetSessionToken"),
        1,
        "asked for a code again"
    );
    assert_eq!(
        world.moto.count("AssumeRole"),
        after_first + 1,
        "{:?}",
        world.minted_actions()
    );
    assert_ne!(first["AccessKeyId"], second["AccessKeyId"]);
    served.finish().success();
    world.assert_no_secrets(&[]);
}

#[test]
fn lazy_servers_mint_on_the_first_credential_request() {
    let world = lab();
    // Not lazy: minted before the child runs (checked above too); lazy: nothing yet.
    let served = Served::start(&world, &[], &["exec", "--server", "--lazy", "lab"]);
    assert!(
        world.moto.sts_calls().is_empty(),
        "{:?}",
        world.moto.sts_calls()
    );
    // A refused request mints nothing either.
    assert_eq!(served.get("/", &[]).status, 403);
    assert!(world.moto.sts_calls().is_empty());
    let json = served.ecs_credentials();
    check_ecs_document(&world, &json);
    assert_eq!(world.minted_actions(), ["AssumeRole"]);
    served.finish().success();

    // IMDS: neither a token nor the role name needs credentials; the role's document does.
    world.run(&["clear"]).success();
    let served = Served::start(&world, &[], &["exec", "--imds", "--lazy", "lab"]);
    assert_eq!(world.moto.count("AssumeRole"), 1);
    let token = served.imds_token("60");
    let listing = served.get(
        "/latest/meta-data/iam/security-credentials/",
        &[("X-aws-ec2-metadata-token", &token)],
    );
    assert_eq!(listing.status, 200, "{listing:?}");
    assert_eq!(world.moto.count("AssumeRole"), 1);
    let json = served.imds_credentials("lab");
    check_imds_document(&world, &json);
    assert_eq!(world.moto.count("AssumeRole"), 2);
    served.finish().success();
    world.assert_no_secrets(&[]);
}

#[test]
fn server_flags_are_checked_before_anything_runs() {
    let world = lab();
    let marker = world.env.dir.path().join("ran");
    let touch = format!("touch {}", marker.display());
    let cases: [(&[&str], i32, &str); 5] = [
        (&["exec", "--lazy", "lab"], 2, "--lazy"),
        (&["exec", "--imds-v1", "lab"], 2, "--imds"),
        (&["exec", "--server", "--imds", "lab"], 2, "--imds"),
        (&["exec", "--server", "-n", "base"], 1, "--no-session"),
        // An MFA code is needed up front and there is no way to get one.
        (&["exec", "--server", "lab-mfa"], 1, "mfa"),
    ];
    for (args, code, needle) in cases {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--", "sh", "-c", &touch]);
        let run = world.run(&all);
        assert_eq!(run.code(), code, "{all:?}: {run:?}");
        assert!(
            run.stderr.contains(needle),
            "{all:?}: stderr lacks {needle:?}:\n{}",
            run.stderr
        );
        assert!(!marker.exists(), "{all:?} ran the command");
    }
    assert!(
        world.moto.sts_calls().is_empty(),
        "{:?}",
        world.moto.sts_calls()
    );
    world.assert_no_secrets(&[]);
}

// ----- the metadata (IMDSv2) endpoint -----

#[test]
fn imds_serves_the_role_through_session_tokens_only() {
    let world = lab();
    let served = Served::start(&world, &STALE, &["exec", "--imds", "lab"]);
    assert_eq!(world.minted_actions(), ["AssumeRole"]);
    assert_scrubbed(&served);
    assert_eq!(served.var("AWS_CONTAINER_CREDENTIALS_FULL_URI"), None);
    assert_eq!(served.var("AWS_CONTAINER_AUTHORIZATION_TOKEN"), None);
    let port = served.port;
    const TTL: &str = "X-aws-ec2-metadata-token-ttl-seconds";
    const TOKEN: &str = "X-aws-ec2-metadata-token";

    // Tokens: 1 to 21600 seconds, the TTL echoed back.
    for ttl in ["1", "21600", "300"] {
        let reply = http(port, "PUT", "/latest/api/token", &[(TTL, ttl)]);
        assert_eq!(reply.status, 200, "ttl {ttl}: {reply:?}");
        assert!(!reply.body.is_empty());
        assert_eq!(reply.header(TTL), Some(ttl), "{reply:?}");
    }
    for ttl in ["0", "21601", "abc", "-5", ""] {
        let reply = http(port, "PUT", "/latest/api/token", &[(TTL, ttl)]);
        assert_eq!(reply.status, 400, "ttl {ttl:?}: {reply:?}");
    }
    let reply = http(port, "PUT", "/latest/api/token", &[]);
    assert_eq!(reply.status, 400, "no TTL: {reply:?}");
    // Through a proxy: refused, as on EC2.
    let reply = http(
        port,
        "PUT",
        "/latest/api/token",
        &[(TTL, "60"), ("X-Forwarded-For", "203.0.113.9")],
    );
    assert_eq!(reply.status, 403, "{reply:?}");

    let token = served.imds_token("300");
    let with_token = [(TOKEN, token.as_str())];
    let listing = "/latest/meta-data/iam/security-credentials/";
    let document = "/latest/meta-data/iam/security-credentials/lab";

    // No token, or a bad one: 401 (IMDSv1 is off).
    for path in [listing, document, "/latest/meta-data/placement/region"] {
        assert_eq!(served.get(path, &[]).status, 401, "{path} without a token");
        for bad in [
            "",
            "garbage",
            &token[..token.len() - 2],
            &format!("{token}AA"),
        ] {
            let reply = served.get(path, &[(TOKEN, bad)]);
            assert_eq!(reply.status, 401, "{path} with {bad:?}: {reply:?}");
        }
    }

    let reply = served.get(listing, &with_token);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body.trim(), "lab");
    let reply = served.get(document, &with_token);
    assert_eq!(reply.status, 200, "{reply:?}");
    let json = reply.json();
    check_imds_document(&world, &json);
    let id = str_field(&json, "AccessKeyId").to_owned();
    let secret = str_field(&json, "SecretAccessKey").to_owned();
    let session = str_field(&json, "Token").to_owned();

    // The extended path newer SDKs try first answers the same.
    let reply = served.get(
        "/latest/meta-data/iam/security-credentials-extended/",
        &with_token,
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body.trim(), "lab");
    let reply = served.get(
        "/latest/meta-data/iam/security-credentials-extended/lab",
        &with_token,
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    let extended = reply.json();
    check_imds_document(&world, &extended);
    assert_eq!(extended["AccessKeyId"].as_str(), Some(id.as_str()));

    // Region, for SDKs that ask the instance.
    let reply = served.get("/latest/dynamic/instance-identity/document", &with_token);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["region"].as_str(), Some("eu-west-1"));
    // The account of the served role, from AssumeRole's answer (not a blank).
    assert_eq!(reply.json()["accountId"].as_str(), Some(ACCOUNT));
    let reply = served.get("/latest/meta-data/placement/region", &with_token);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body.trim(), "eu-west-1");

    // DNS rebinding: only our own Host; browsers: nothing with an Origin.
    let localhost = format!("localhost:{port}");
    let reply = served.get(listing, &[("Host", &localhost), (TOKEN, &token)]);
    assert_eq!(reply.status, 200, "Host {localhost}: {reply:?}");
    let other_port = format!("127.0.0.1:{}", port.wrapping_add(1));
    let evil = format!("evil.example:{port}");
    for host in [
        evil.as_str(),
        "evil.example",
        other_port.as_str(),
        "127.0.0.1",
    ] {
        let reply = served.get(document, &[("Host", host), (TOKEN, &token)]);
        assert_eq!(reply.status, 403, "Host {host}: {reply:?}");
        assert!(!reply.body.contains(&id));
        let reply = http(
            port,
            "PUT",
            "/latest/api/token",
            &[("Host", host), (TTL, "60")],
        );
        assert_eq!(reply.status, 403, "token with Host {host}: {reply:?}");
    }
    let reply = served.get(
        document,
        &[(TOKEN, &token), ("Origin", "http://evil.example")],
    );
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(!reply.body.contains(&id));
    let reply = http(
        port,
        "PUT",
        "/latest/api/token",
        &[(TTL, "60"), ("Origin", "http://evil.example")],
    );
    assert_eq!(reply.status, 403, "{reply:?}");

    // A token outlives its TTL by nothing.
    let short = served.imds_token("1");
    thread::sleep(Duration::from_millis(2100));
    let reply = served.get(listing, &[(TOKEN, &short)]);
    assert_eq!(reply.status, 401, "an expired token: {reply:?}");

    // Tokens belong to one server: another vault's are refused.
    let other = Served::start(&world, &[], &["exec", "--imds", "lab"]);
    let reply = other.get(listing, &with_token);
    assert_eq!(reply.status, 401, "another server's token: {reply:?}");
    other.finish().success();

    served.finish().success();
    assert_eq!(world.minted_actions(), ["AssumeRole"]);
    world.assert_no_secrets(&[&id, &secret, &session]);
}

#[test]
fn imds_v1_answers_without_a_token_only_when_asked() {
    let world = lab();
    let served = Served::start(&world, &[], &["exec", "--imds", "--imds-v1", "lab"]);
    let reply = served.get("/latest/meta-data/iam/security-credentials/", &[]);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body.trim(), "lab");
    let reply = served.get("/latest/meta-data/iam/security-credentials/lab", &[]);
    assert_eq!(reply.status, 200, "{reply:?}");
    check_imds_document(&world, &reply.json());
    // A bad token is still refused, and v2 still works.
    let reply = served.get(
        "/latest/meta-data/iam/security-credentials/",
        &[("X-aws-ec2-metadata-token", "garbage")],
    );
    assert_eq!(reply.status, 401, "{reply:?}");
    check_imds_document(&world, &served.imds_credentials("lab"));
    // The browser defences hold for v1 too.
    let reply = served.get(
        "/latest/meta-data/iam/security-credentials/lab",
        &[("Origin", "http://evil.example")],
    );
    assert_eq!(reply.status, 403, "{reply:?}");
    served.finish().success();

    // A session without a role: the instance role is named after the profile.
    let served = Served::start(&world, &[], &["exec", "--imds", "base"]);
    let token = served.imds_token("60");
    let reply = served.get(
        "/latest/meta-data/iam/security-credentials/",
        &[("X-aws-ec2-metadata-token", &token)],
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body.trim(), "base");
    let json = served.imds_credentials("base");
    check_imds_document(&world, &json);
    let reply = served.get(
        "/latest/meta-data/iam/security-credentials/lab",
        &[("X-aws-ec2-metadata-token", &token)],
    );
    assert_eq!(reply.status, 404, "a role it does not have: {reply:?}");
    served.finish().success();
    world.assert_no_secrets(&[]);
}

#[test]
fn sdk_clients_use_the_metadata_endpoint_with_tokens() {
    let world = lab();
    let sdk_caller = vault_harness::sdk_caller().display().to_string();
    let clients: [(&str, Vec<&str>); 3] = [
        ("aws", CALLER_ARN.to_vec()),
        ("boto3", vec!["python3", "-c", BOTO3_CALLER]),
        ("aws-sdk-rust", vec![sdk_caller.as_str()]),
    ];
    for (name, command) in clients {
        let mut args = vec!["exec", "--imds", "lab", "--"];
        args.extend_from_slice(&command);
        // botocore must not fall back to IMDSv1 (the server would refuse it anyway).
        let run = world
            .env
            .run_with(&[("AWS_EC2_METADATA_V1_DISABLED", "true")], &args);
        assert!(run.status.success(), "{name}: {run:?}");
        assert_assumed(run.stdout.trim(), "lab");
    }
    assert_eq!(world.minted_actions(), ["AssumeRole"]);
    world.assert_no_secrets(&[]);
}

// ----- vault as the parent: signals and exit codes -----

#[cfg(unix)]
#[test]
fn signals_sent_to_vault_reach_the_child_and_its_exit_is_vaults() {
    let world = lab();
    // The child notes the signal and exits 0; READY says the trap is set.
    let script = r#"trap 'echo got > "$RUN/marker"; exit 0' TERM HUP INT USR1
echo $$ > "$RUN/child.pid"
echo ready > "$RUN/ready"
while [ ! -e "$RUN/stop" ]; do sleep 0.05; done
exit 9"#;
    for (kind, signal) in [
        ("--server", Signal::SIGTERM),
        ("--imds", Signal::SIGTERM),
        ("--server", Signal::SIGHUP),
        ("--server", Signal::SIGINT),
        ("--server", Signal::SIGUSR1),
    ] {
        let mut run = Background::start(&world, &[], &["exec", kind, "lab"], script);
        run.wait_for_file("ready");
        // vault installs its handlers just after starting the child; leave it a moment.
        thread::sleep(Duration::from_millis(200));
        kill(run.pid(), signal);
        let done = run.wait(Duration::from_secs(20));
        assert_eq!(
            done.code(),
            0,
            "{kind}, signal {signal}: vault did not exit with the child's 0: {done:?}"
        );
        let marker = fs::read_to_string(run.path("marker")).unwrap_or_default();
        assert_eq!(
            marker, "got\n",
            "{kind}, signal {signal}: the child missed it"
        );
    }

    // Exit codes: the child's own, or 128 + the signal that killed it.
    for kind in ["--server", "--imds"] {
        for (script, code) in [
            ("exit 3", 3),
            ("exit 0", 0),
            ("kill -TERM $$", 128 + 15),
            ("kill -KILL $$", 128 + 9),
        ] {
            let run = world.run(&["exec", kind, "lab", "--", "sh", "-c", script]);
            assert_eq!(run.code(), code, "{kind} {script:?}: {run:?}");
        }
        let run = world.run(&["exec", kind, "lab", "--", "vault-test-no-such-command"]);
        assert_eq!(run.code(), 127, "{run:?}");
    }
    // The child is vault's child, not vault itself.
    let mut run = Background::start(&world, &[], &["exec", "--server", "lab"], IDLE);
    run.wait_for_file("env");
    let child = run.child_pid();
    assert_ne!(child, run.pid());
    let status = fs::read_to_string(format!("/proc/{child}/status")).unwrap();
    let ppid = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .map(str::trim)
        .unwrap();
    assert_eq!(ppid, run.pid().to_string());
    run.finish().success();
    world.assert_no_secrets(&[]);
}

// ----- credential_process -----

#[test]
fn credential_process_serves_sdks_and_sixteen_cold_callers_mint_once() {
    let world = lab_with_credential_process();
    let cli = [
        "sts",
        "get-caller-identity",
        "--profile",
        "lab-cp",
        "--query",
        "Arn",
        "--output",
        "text",
    ];
    // 16 SDK processes at once, half AWS CLI, half boto3, on a cold cache.
    let children: Vec<_> = (0..16)
        .map(|i| {
            let mut cmd = if i % 2 == 0 {
                let mut cmd = world.env.command("aws");
                cmd.args(cli);
                cmd
            } else {
                let mut cmd = world.env.command("python3");
                cmd.args(["-c", BOTO3_CP_CALLER]);
                cmd
            };
            cmd.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("an SDK client starts")
        })
        .collect();
    let waiters: Vec<_> = children
        .into_iter()
        .map(|c| thread::spawn(move || c.wait_with_output().unwrap()))
        .collect();
    for (i, waiter) in waiters.into_iter().enumerate() {
        let out = waiter.join().unwrap();
        let run = world.env.record(out.status, out.stdout, out.stderr);
        assert!(run.status.success(), "client {i}: {run:?}");
        assert_assumed(run.stdout.trim(), "lab");
    }
    assert_eq!(world.minted_actions(), ["AssumeRole"]);
    assert_eq!(world.moto.count("GetCallerIdentity"), 16);

    // Warm: no STS call but the client's own.
    let run = world.env.output(world.env.command("aws").args(cli));
    run.success();
    assert_assumed(run.stdout.trim(), "lab");
    assert_eq!(world.minted_actions(), ["AssumeRole"]);

    // What the SDKs read: version 1, temporary keys that outlive their refresh window.
    let run = world.run(&["export", "--format", "json", "lab"]);
    run.success();
    let json: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", run.stdout));
    assert_eq!(json["Version"].as_i64(), Some(1), "{json}");
    assert_ne!(str_field(&json, "AccessKeyId"), world.key_id);
    str_field(&json, "SecretAccessKey");
    str_field(&json, "SessionToken");
    assert_session_lifetime(str_field(&json, "Expiration"));
    assert_eq!(world.minted_actions(), ["AssumeRole"]);
    let secret = str_field(&json, "SecretAccessKey").to_owned();
    let token = str_field(&json, "SessionToken").to_owned();
    // The export itself printed them; nothing else may have.
    let transcript = world.env.transcript();
    assert_eq!(
        transcript.matches(&secret).count(),
        1,
        "the role's secret was printed elsewhere"
    );
    assert_eq!(transcript.matches(&token).count(), 1);
    assert!(!transcript.contains(&world.key_id) && !transcript.contains(&world.secret));
}

#[test]
fn credential_process_works_inside_a_vault_exec_child() {
    let world = lab_with_credential_process();
    let cli = "aws sts get-caller-identity --profile lab-cp --query Arn --output text";
    // The child of `exec -n base` holds base's own key (a user, not the role) and AWS_VAULT;
    // the profile's credential_process wins for --profile, and a nested `vault export` is
    // allowed. exec keeps the passphrase from the child, so the script hands it back.
    let script = format!("AWS_VAULT_FILE_PASSPHRASE=\"$CP_PASSPHRASE\" {cli}");
    for outer in [
        vec!["exec", "-n", "base"],
        vec!["exec", "--server", "lab"],
        vec!["exec", "--imds", "lab"],
    ] {
        let mut args = outer.clone();
        args.extend_from_slice(&["--", "sh", "-c", &script]);
        let run = world.env.run_with(&[("CP_PASSPHRASE", PASSPHRASE)], &args);
        assert!(run.status.success(), "{outer:?}: {run:?}");
        assert_assumed(run.stdout.trim(), "lab");
    }
    assert_eq!(world.minted_actions(), ["AssumeRole"]);
    // The passphrase went in through the environment only.
    let transcript = world.env.transcript();
    assert!(!transcript.contains(PASSPHRASE));
    assert!(!transcript.contains(&world.key_id) && !transcript.contains(&world.secret));
}

// ----- secrets -----

#[test]
fn debug_server_runs_leak_no_secret() {
    let world = lab();
    for kind in ["--server", "--imds"] {
        let served = Served::start(&world, &[], &["--debug", "exec", kind, "lab"]);
        let (json, tokens) = match kind {
            "--server" => {
                let token = served
                    .var("AWS_CONTAINER_AUTHORIZATION_TOKEN")
                    .unwrap()
                    .to_owned();
                (served.ecs_credentials(), vec![token])
            }
            _ => {
                let token = served.imds_token("600");
                let json = served.imds_credentials("lab");
                (json, vec![token])
            }
        };
        let served_secrets = [
            str_field(&json, "AccessKeyId").to_owned(),
            str_field(&json, "SecretAccessKey").to_owned(),
            str_field(&json, "Token").to_owned(),
        ];

        // vault's command line, as the child sees it and as /proc shows it.
        let pid = served.run.pid();
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let seen_by_child = fs::read(served.run.path("parent.cmdline")).unwrap();
        assert_eq!(cmdline, seen_by_child, "the child's parent is not vault");
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(cmdline.contains("--debug exec"), "{cmdline}");

        // The child's environment: the endpoint and its token, nothing stored.
        let child_env: String = served
            .child_env
            .iter()
            .map(|(n, v)| format!("{n}={v}\n"))
            .collect();
        let stored = [world.key_id.as_str(), world.secret.as_str(), PASSPHRASE];
        for secret in stored
            .iter()
            .copied()
            .chain(served_secrets.iter().map(String::as_str))
        {
            assert!(!cmdline.contains(secret), "vault's cmdline has a secret");
            assert!(
                !child_env.contains(secret),
                "the child's environment has a secret: {}…",
                &secret[..4]
            );
        }

        let run = served.finish();
        run.success();
        assert!(
            !run.stderr.trim().is_empty(),
            "--debug logged nothing: {run:?}"
        );
        let mut secrets: Vec<&str> = stored.to_vec();
        secrets.extend(served_secrets.iter().map(String::as_str));
        secrets.extend(tokens.iter().map(String::as_str));
        for secret in secrets {
            assert!(
                !run.stderr.contains(secret) && !run.stdout.contains(secret),
                "{kind}: --debug output shows a secret: {}…",
                &secret[..4]
            );
        }
    }
    world.assert_no_secrets(&[]);
}

/// Holds `count` connections to `port` open from a child process (which raises its own
/// file limit), some with half a request head sent, and reports how many the server closed.
const HOLDER: &str = r#"
import resource, socket, sys, time, os
port, count, run = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 256), hard))
socks = []
for i in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    if i % 2:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
    socks.append(s)
open(os.path.join(run, "held"), "w").write(str(len(socks)))
for s in socks:
    s.setblocking(False)
while not os.path.exists(os.path.join(run, "stop")):
    closed = 0
    for s in socks:
        try:
            if s.recv(1, socket.MSG_PEEK) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    open(os.path.join(run, "closed.tmp"), "w").write(str(closed))
    os.replace(os.path.join(run, "closed.tmp"), os.path.join(run, "closed"))
    time.sleep(0.2)
"#;

#[test]
fn a_neighbour_holding_connections_cannot_starve_the_child() {
    let world = lab();
    let served = Served::start(&world, &[], &["exec", "--server", "lab"]);
    let run = world.env.dir.path().join("holder");
    fs::create_dir_all(&run).unwrap();
    let mut holder = world
        .env
        .command("python3")
        .args(["-c", HOLDER, &served.port.to_string(), "1000"])
        .arg(&run)
        .spawn()
        .expect("python3 runs");
    vault_harness::wait_for(Duration::from_secs(60), "1000 connections held", || {
        run.join("held").exists()
    });
    // The child is answered while the neighbour holds them.
    let credentials = served.ecs_credentials();
    assert!(credentials["AccessKeyId"].as_str().is_some());
    // Past the cap the longest-idle go first; the half-sent heads time out: within the
    // header timeout and a bit, nearly all of the thousand are closed.
    vault_harness::wait_for(Duration::from_secs(30), "held connections closed", || {
        fs::read_to_string(run.join("closed"))
            .ok()
            .and_then(|n| n.trim().parse::<usize>().ok())
            .is_some_and(|n| n >= 1000 - 128)
    });
    let credentials = served.ecs_credentials();
    assert!(credentials["AccessKeyId"].as_str().is_some());
    fs::write(run.join("stop"), "").unwrap();
    let _ = holder.kill();
    let _ = holder.wait();
    served.finish().success();
}

/// `kill -9` of `vault exec --server` ends its child too (Linux: the kernel's parent-death
/// signal, set before the child's program runs), so no job runs on against a dead endpoint.
#[cfg(target_os = "linux")]
#[test]
fn a_killed_server_takes_its_child_with_it() {
    let world = lab();
    for kind in ["--server", "--imds"] {
        let mut run = Background::start(&world, &[], &["exec", kind, "lab"], IDLE);
        run.wait_for_file("env");
        let child = run.child_pid();
        // The child's parent is vault itself (the tie became the program, same PID).
        let parent = fs::read_to_string(run.path("parent.cmdline")).unwrap();
        assert!(parent.contains("exec\0"), "{parent:?}");
        kill(run.pid(), Signal::SIGKILL);
        vault_harness::wait_for(Duration::from_secs(10), "the child to end", || {
            !std::path::Path::new(&format!("/proc/{child}")).exists()
                || fs::read_to_string(format!("/proc/{child}/stat"))
                    .is_ok_and(|s| s.contains(") Z "))
        });
    }
}
