//! `vault container …` and `vault serve`: the credential broker that gives each registered
//! client the credentials of its own profile, over the container credential protocol.
//!
//! The main test builds containers without Docker: network namespaces joined by a bridge,
//! exactly the topology docs/containers.md has Docker/Podman make (`vault_harness::netns`),
//! with moto and the broker in the "host" namespace and a real SDK client in each container.
//! The checks that need no second machine run on loopback, with the rig's own HTTP client or
//! `tests/container_client.py` (a bare client: no SDK sends a request without its token).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use vault_harness::netns::{GATEWAY, Topology};
use vault_harness::{
    CALLER_ARN, Guard, Moto, Reply, Signal, TestEnv, World, assert_assumed, free_port, kill,
    parse_env, request, sdk_caller, skip, vault_bin, venv, wait_for, workspace_root,
};

const PASSPHRASE: &str = "containers tests: a broker needs a key";

/// Three profiles on three roles, all from alice's stored key.
const CONFIG: &str = "\
[profile base]
region = us-east-1

[profile lab-api]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/api

[profile lab-worker]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/worker

[profile lab-batch]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/batch

[profile lab-admin]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/admin

[profile orphan]
source_profile = nokey
role_arn = arn:aws:iam::123456789012:role/orphan

[profile nokey]
region = us-east-1
";

const BOTO3_CALLER: &str = "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])";

fn client_script() -> PathBuf {
    workspace_root().join("tests/container_client.py")
}

/// `vault container add NAME PROFILE EXTRA…`; its token file's path.
#[track_caller]
fn add(env: &TestEnv, name: &str, profile: &str, extra: &[&str]) -> PathBuf {
    let mut args = vec!["container", "add", name, profile];
    args.extend_from_slice(extra);
    env.run(&args).success();
    token_file(env, name)
}

#[track_caller]
fn token_file(env: &TestEnv, name: &str) -> PathBuf {
    let run = env.run(&["container", "env", name]);
    run.success();
    let vars = parse_env(&run.stdout);
    PathBuf::from(&vars["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"])
}

fn token(path: &Path) -> String {
    fs::read_to_string(path).expect("the token file reads")
}

/// `vault serve` running until dropped (SIGTERM by PID, then its exit is checked).
struct Broker {
    guard: Option<Guard>,
    stderr: PathBuf,
    port: u16,
}

impl Broker {
    /// On loopback, a port of its own; waits for /health.
    fn start(env: &TestEnv, vars: &[(&str, &str)], extra: &[&str]) -> Broker {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec!["serve", "--listen", listen.as_str()];
        args.extend_from_slice(extra);
        let mut cmd = env.vault(&args);
        for (n, v) in vars {
            cmd.env(n, v);
        }
        let broker = Broker::spawn(env, cmd, port);
        wait_for(Duration::from_secs(30), "vault serve's /health", || {
            get(port, "/health", None).is_some_and(|r| r.status == 200)
        });
        broker
    }

    fn spawn(env: &TestEnv, mut cmd: Command, port: u16) -> Broker {
        let stderr = env.dir.path().join(format!("serve-{port}.stderr"));
        cmd.stdout(Stdio::null())
            .stderr(fs::File::create(&stderr).unwrap());
        Broker {
            guard: Some(Guard::new(
                "vault serve",
                cmd.spawn().expect("vault serve starts"),
            )),
            stderr,
            port,
        }
    }

    fn pid(&self) -> u32 {
        self.guard.as_ref().expect("running").pid()
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// GET / with `token`.
    fn fetch(&self, token: Option<&str>) -> Reply {
        get(self.port, "/", token).expect("the broker answers")
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        drop(self.guard.take());
    }
}

fn get(port: u16, path: &str, token: Option<&str>) -> Option<Reply> {
    let headers: Vec<(&str, &str)> = token.map(|t| ("Authorization", t)).into_iter().collect();
    request(port, "GET", path, &headers, b"").ok()
}

/// The role a served answer is a session of, asked of moto (GetCallerIdentity with it).
fn role_of(world: &World, answer: &Reply) -> String {
    assert_eq!(answer.status, 200, "{answer:?}");
    let json = answer.json();
    let out = Command::new(venv().join("bin/aws"))
        .args([
            "sts",
            "get-caller-identity",
            "--query",
            "Arn",
            "--output",
            "text",
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", world.env.dir.path())
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", &world.moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", json["AccessKeyId"].as_str().unwrap())
        .env(
            "AWS_SECRET_ACCESS_KEY",
            json["SecretAccessKey"].as_str().unwrap(),
        )
        .env("AWS_SESSION_TOKEN", json["Token"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn lab() -> World {
    World::new(PASSPHRASE, CONFIG)
}

/// Every token file's contents, for the secret checks.
fn tokens(paths: &[&Path]) -> Vec<String> {
    paths
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .collect()
}

/// No token appears in any vault file but its own token file, nor in the audit log.
#[track_caller]
fn assert_tokens_only_in_their_files(env: &TestEnv, tokens: &[String]) {
    let mut files = Vec::new();
    vault_harness::env::collect_files(&env.vault_dir(), &mut files);
    for (path, bytes) in files {
        if path.file_name().is_some_and(|n| n == "token") {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        for t in tokens {
            assert!(
                !text.contains(t.as_str()),
                "{} holds a token",
                path.display()
            );
        }
    }
    let transcript = env.transcript();
    for t in tokens {
        assert!(!transcript.contains(t.as_str()), "output shows a token");
    }
}

#[test]
fn container_commands_keep_a_digest_and_write_a_private_token_file() {
    let world = lab();
    let env = &world.env;
    let api = add(env, "api", "lab-api", &[]);
    let worker = add(env, "worker", "lab-worker", &["--expires", "7d"]);

    // The token: 32 random bytes, URL-safe base64, no newline (botocore refuses one).
    let t = token(&api);
    assert_eq!(t.len(), 43, "{t:?}");
    assert!(
        t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&api), 0o600);
        assert_eq!(mode(api.parent().unwrap()), 0o700);
        assert_eq!(mode(&env.vault_dir().join("containers")), 0o700);
    }
    assert!(api.starts_with(env.vault_dir()), "{}", api.display());

    // `env`: exactly the two lines, the default address, the host path of the token file.
    let run = env.run(&["container", "env", "api"]);
    run.success();
    assert_eq!(
        run.stdout,
        format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:9911/\nAWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={}\n",
            api.display()
        )
    );
    let run = env.run(&[
        "container",
        "env",
        "api",
        "--format",
        "env",
        "--listen",
        "169.254.170.2:9911",
    ]);
    assert!(
        run.stdout
            .starts_with("AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.2:9911/\n")
    );

    // docker: the token's directory mounted read-only (a file mount would keep the old file
    // after a rotate), the variables pointing inside it.
    let run = env.run(&[
        "container",
        "env",
        "api",
        "--format",
        "docker",
        "--listen",
        "169.254.170.2:9911",
    ]);
    run.success();
    assert_eq!(
        run.stdout.trim(),
        format!(
            "--network vault -e AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.2:9911/ -e AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/run/vault-credentials/token -v {}:/run/vault-credentials:ro",
            api.parent().unwrap().display()
        )
    );
    // On loopback a container cannot reach it: said, not silently printed.
    env.run(&["container", "env", "api", "--format", "docker"])
        .success()
        .stderr_has("cannot reach 127.0.0.1:9911");
    let run = env.run(&[
        "container",
        "env",
        "worker",
        "--format",
        "compose",
        "--listen",
        "169.254.170.2:9911",
    ]);
    run.success();
    for needle in [
        "AWS_CONTAINER_CREDENTIALS_FULL_URI: \"http://169.254.170.2:9911/\"",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: \"/run/vault-credentials/token\"",
        "read_only: true",
        "  - \"vault\"",
    ] {
        assert!(
            run.stdout.contains(needle),
            "{needle:?} missing:\n{}",
            run.stdout
        );
    }

    // list: both, with expiry; JSON for scripts.
    let run = env.run(&["container", "list"]);
    run.success();
    assert!(
        run.stdout.contains("api") && run.stdout.contains("lab-worker"),
        "{}",
        run.stdout
    );
    let run = env.run(&["container", "list", "--json"]);
    let rows: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert_eq!(rows[0]["name"], "api");
    assert!(rows[0]["expires"].is_null());
    assert!(rows[1]["expires"].is_string());

    // rotate: a new token in the same file; the registry's digest follows.
    let registry_before = fs::read(env.vault_dir().join("containers.json")).unwrap();
    let old = token(&api);
    env.run(&["container", "rotate", "api"]).success();
    let new = token(&api);
    assert_ne!(old, new);
    assert_ne!(
        fs::read(env.vault_dir().join("containers.json")).unwrap(),
        registry_before
    );

    // Bad input: clear errors, nothing written.
    let before = fs::read(env.vault_dir().join("containers.json")).unwrap();
    world.assert_refused(
        &["container", "add", "api", "lab-api"],
        1,
        &["exists already", "vault container rotate api"],
    );
    world.assert_refused(
        &["container", "add", "../x", "lab-api"],
        1,
        &["invalid container client name"],
    );
    world.assert_refused(
        &["container", "add", "x", "no-such-profile"],
        1,
        &["no-such-profile"],
    );
    world.assert_refused(
        &["container", "add", "x", "lab-api", "--expires", "soon"],
        2,
        &["--expires"],
    );
    for expires in ["0s", "9999999999d"] {
        world.assert_refused(
            &["container", "add", "x", "lab-api", "--expires", expires],
            2,
            &["--expires"],
        );
    }
    world.assert_refused(
        &["container", "rotate", "nobody"],
        1,
        &[
            "no container client named \"nobody\"",
            "vault container list",
        ],
    );
    world.assert_refused(
        &["container", "remove", "nobody"],
        1,
        &["no container client named"],
    );
    assert_eq!(
        fs::read(env.vault_dir().join("containers.json")).unwrap(),
        before
    );

    // A token file swapped for a symlink: rotate refuses and writes nowhere.
    let elsewhere = world.path("elsewhere");
    fs::write(&elsewhere, "not yours").unwrap();
    fs::remove_file(&worker).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &worker).unwrap();
    world.assert_refused(&["container", "rotate", "worker"], 1, &["symbolic link"]);
    assert_eq!(fs::read_to_string(&elsewhere).unwrap(), "not yours");
    assert_eq!(
        fs::read(env.vault_dir().join("containers.json")).unwrap(),
        before
    );

    // --token-file: a new file in a private directory only.
    let own = world.path("own");
    fs::create_dir(&own).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&own, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let named = own.join("batch.token");
    let named_arg = named.display().to_string();
    world.assert_refused(
        &[
            "container",
            "add",
            "batch",
            "lab-batch",
            "--token-file",
            &named_arg,
        ],
        1,
        &["not private"],
    );
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&own, fs::Permissions::from_mode(0o700)).unwrap();
    }
    assert_eq!(
        add(env, "batch", "lab-batch", &["--token-file", &named_arg]),
        named
    );
    world.assert_refused(
        &[
            "container",
            "add",
            "batch2",
            "lab-batch",
            "--token-file",
            &named_arg,
        ],
        1,
        &["a file is there already"],
    );

    // remove: out of the registry, the token file and its directory gone.
    let all = tokens(&[&api, &named]);
    env.run(&["container", "remove", "api"]).success();
    assert!(!api.exists() && !api.parent().unwrap().exists());
    env.run(&["container", "rm", "batch"]).success();
    assert!(!named.exists());
    assert_tokens_only_in_their_files(env, &all);
    world.assert_no_secrets(&[]);
}

#[test]
fn the_broker_answers_each_token_with_its_own_profile_only() {
    let world = lab();
    let env = &world.env;
    let api = add(env, "api", "lab-api", &[]);
    let worker = add(env, "worker", "lab-worker", &[]);
    let admin = add(env, "admin", "lab-admin", &[]);
    let broken = add(env, "broken", "orphan", &[]);
    // Another vault's client: a token this broker never issued.
    let other = TestEnv::new();
    let mut other = other;
    other.use_file_vault(PASSPHRASE);
    other.write_config(CONFIG);
    let foreign = add(&other, "api", "lab-api", &[]);

    let broker = Broker::start(env, &[], &["--lazy"]);
    assert_eq!(get(broker.port, "/health", None).unwrap().body, "");

    // Each token, its own role.
    assert_assumed(&role_of(&world, &broker.fetch(Some(&token(&api)))), "api");
    assert_assumed(
        &role_of(&world, &broker.fetch(Some(&token(&worker)))),
        "worker",
    );

    // Refusals: 403 with a JSON reason, nothing minted for them.
    let assumed_before = world.moto.count("AssumeRole");
    for (what, t) in [
        ("no token", None),
        ("a wrong token", Some("x".repeat(43))),
        ("another vault's token", Some(token(&foreign))),
    ] {
        let reply = broker.fetch(t.as_deref());
        assert_eq!(reply.status, 403, "{what}: {reply:?}");
        assert_eq!(reply.json()["code"], "AccessDenied", "{what}");
    }
    // A path or query naming another role chooses nothing: 404, and the admin role is
    // never assumed for the api client.
    for path in [
        "/lab-admin",
        "/?profile=lab-admin",
        "/v2/credentials/admin",
        "//",
    ] {
        let reply = get(broker.port, path, Some(&token(&api))).unwrap();
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
    }
    let reply = request(
        broker.port,
        "POST",
        "/",
        &[("Authorization", &token(&api))],
        b"",
    )
    .unwrap();
    assert_eq!(reply.status, 405);
    assert_eq!(world.moto.count("AssumeRole"), assumed_before);
    assert!(
        !world
            .minted()
            .iter()
            .any(|c| c.param("RoleArn").is_some_and(|r| r.ends_with("/admin")))
    );

    // A profile that cannot be minted: 503 with the reason; the others keep working.
    let reply = broker.fetch(Some(&token(&broken)));
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(
        reply.json()["message"].as_str().unwrap().contains("nokey"),
        "{reply:?}"
    );
    assert_assumed(&role_of(&world, &broker.fetch(Some(&token(&api)))), "api");

    // Revoked while serving: refused from the next request.
    let revoked = token(&worker);
    env.run(&["container", "remove", "worker"]).success();
    let reply = broker.fetch(Some(&revoked));
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(reply.body.contains("unknown or revoked"), "{reply:?}");

    // Rotated while serving: the old token refused, the new one served.
    let old = token(&api);
    env.run(&["container", "rotate", "api"]).success();
    assert_eq!(broker.fetch(Some(&old)).status, 403);
    assert_assumed(&role_of(&world, &broker.fetch(Some(&token(&api)))), "api");

    // Added while serving: served at once, by the profile's own worker.
    let batch = add(env, "batch", "lab-batch", &[]);
    assert_assumed(
        &role_of(&world, &broker.fetch(Some(&token(&batch)))),
        "batch",
    );

    // An expired token.
    let brief = add(env, "brief", "lab-api", &["--expires", "1s"]);
    std::thread::sleep(Duration::from_millis(1500));
    let reply = broker.fetch(Some(&token(&brief)));
    assert_eq!(reply.status, 403);
    assert!(reply.body.contains("expired"), "{reply:?}");

    // The audit log: one line per answer, client and role, the key id redacted, no secret.
    let log = env.run(&["container", "log", "--json"]);
    log.success();
    let entries: Vec<Value> = log
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ok: Vec<&Value> = entries.iter().filter(|e| e["result"] == "ok").collect();
    assert!(ok.iter().any(|e| e["client"] == "api"
        && e["role_arn"] == "arn:aws:iam::123456789012:role/api"
        && e["access_key_id"].as_str().unwrap().contains('…')));
    assert!(
        entries
            .iter()
            .any(|e| e["result"] == "denied" && e["client"].is_null())
    );
    assert!(
        entries
            .iter()
            .any(|e| e["result"] == "unavailable" && e["client"] == "broken")
    );
    assert!(
        entries
            .iter()
            .all(|e| e["source"].as_str().unwrap().starts_with("127.0.0.1:"))
    );
    let only_api = env.run(&["container", "log", "api"]);
    assert!(
        only_api.stdout.lines().count() >= 3 && !only_api.stdout.contains("worker"),
        "{}",
        only_api.stdout
    );
    let list = env.run(&["container", "list", "--json"]);
    let rows: Value = serde_json::from_str(&list.stdout).unwrap();
    let api_row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "api")
        .unwrap();
    assert!(api_row["last_use"].is_string(), "{api_row}");

    let all = tokens(&[&api, &admin, &broken, &batch, &brief]);
    let mut all = all;
    all.extend([old, revoked]);
    drop(broker);
    assert_tokens_only_in_their_files(env, &all);
    world.assert_no_secrets(&[]);
}

#[test]
fn serve_binds_only_local_or_container_addresses_unless_told_the_risk() {
    let world = lab();
    for addr in ["0.0.0.0:9911", "[::]:9911", "10.1.2.3:9911"] {
        world.assert_refused(
            &["serve", "--listen", addr],
            2,
            &["refusing to listen", "--expose-to-network"],
        );
    }
    // A container address this machine does not have: the hint says to make the network.
    world.assert_refused(
        &["serve", "--listen", "169.254.170.2:1"],
        1,
        &["cannot listen on 169.254.170.2:1", "docker network create"],
    );
}

#[test]
fn ten_cold_clients_of_one_profile_cost_one_assume_role() {
    let world = lab();
    let env = &world.env;
    let files: Vec<PathBuf> = (0..10)
        .map(|i| add(env, &format!("c{i}"), "lab-api", &[]))
        .collect();
    let broker = Broker::start(env, &[], &["--lazy"]);
    let port = broker.port;
    let keys: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .iter()
            .map(|f| {
                let t = token(f);
                s.spawn(move || {
                    let reply = get(port, "/", Some(&t)).unwrap();
                    assert_eq!(reply.status, 200, "{reply:?}");
                    reply.json()["AccessKeyId"].as_str().unwrap().to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(keys.iter().all(|k| k == &keys[0]), "one session for all");
    assert_eq!(
        world.moto.count("AssumeRole"),
        1,
        "{:?}",
        world.minted_actions()
    );
}

#[test]
fn a_client_holding_a_thousand_connections_starves_no_other() {
    let world = lab();
    let env = &world.env;
    let api = add(env, "api", "lab-api", &[]);
    add(env, "noisy", "lab-worker", &[]);
    let broker = Broker::start(env, &[], &[]);
    let mut holder = env
        .command(venv().join("bin/python3"))
        .arg(client_script())
        .args([
            "hold",
            &format!("http://127.0.0.1:{}/", broker.port),
            "1000",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let holding = read_line(&mut holder);
    let holder = Guard::new("connection holder", holder);
    assert_eq!(holding.trim(), "holding 1000");
    for _ in 0..3 {
        assert_assumed(&role_of(&world, &broker.fetch(Some(&token(&api)))), "api");
    }
    drop(holder);
}

fn read_line(child: &mut Child) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line
}

#[test]
fn a_broker_killed_during_renewals_starts_again_with_every_client() {
    let world = lab();
    let env = &world.env;
    let files: Vec<PathBuf> = ["a", "b", "c"]
        .iter()
        .zip(["lab-api", "lab-worker", "lab-batch"])
        .map(|(n, p)| add(env, n, p, &[]))
        .collect();
    let registry = fs::read(env.vault_dir().join("containers.json")).unwrap();
    // AWS_MIN_TTL past the session's hour: every request renews.
    let renewing = [("AWS_MIN_TTL", "2h")];
    for round in 0..3 {
        let broker = Broker::start(env, &renewing, &["--lazy"]);
        let port = broker.port;
        let pid = broker.pid();
        std::thread::scope(|s| {
            for f in &files {
                let t = token(f);
                s.spawn(move || {
                    for _ in 0..5 {
                        let _ = get(port, "/", Some(&t));
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(150 + 100 * round));
            kill(pid, Signal::SIGKILL);
        });
        drop(broker);
    }
    assert_eq!(
        fs::read(env.vault_dir().join("containers.json")).unwrap(),
        registry
    );
    let broker = Broker::start(env, &[], &[]);
    for (f, role) in files.iter().zip(["api", "worker", "batch"]) {
        assert_assumed(&role_of(&world, &broker.fetch(Some(&token(f)))), role);
    }
    drop(broker);
    // Nothing left behind: no temp file in the vault directory.
    let mut left = Vec::new();
    vault_harness::env::collect_files(&env.vault_dir(), &mut left);
    assert!(
        !left
            .iter()
            .any(|(p, _)| p.to_string_lossy().ends_with(".tmp")),
        "{left:?}"
    );
    env.run(&["container", "list"]).success();
}

#[test]
fn debug_output_of_the_broker_holds_no_token_or_secret() {
    let world = lab();
    let env = &world.env;
    let api = add(env, "api", "lab-api", &[]);
    let broker = Broker::start(env, &[], &["--debug"]);
    let answer = broker.fetch(Some(&token(&api)));
    let secret = answer.json()["SecretAccessKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = answer.json()["Token"].as_str().unwrap().to_owned();
    broker.fetch(Some("wrong"));
    let stderr = broker.stderr();
    drop(broker);
    assert!(
        stderr.contains("broker"),
        "--debug says what it served:\n{stderr}"
    );
    for s in [token(&api), secret.clone(), session.clone()] {
        assert!(!stderr.contains(&s), "--debug output holds a secret");
    }
    let log = fs::read_to_string(env.vault_dir().join("containers.log")).unwrap();
    for s in [token(&api), secret.clone(), session.clone()] {
        assert!(!log.contains(&s), "the audit log holds a secret");
    }
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(token(&api).as_bytes()))
    };
    assert!(
        !log.contains(&digest),
        "the audit log holds the token's digest"
    );
    world.assert_no_secrets(&[&secret, &session, &token(&api)]);
}

/// The client environment of a container: the two variables `vault container env` printed
/// (the token file is at the same path: the namespaces share the filesystem), moto as the
/// endpoint, and nothing that could be a credential.
fn container_env(
    cmd: &mut Command,
    vars: &std::collections::BTreeMap<String, String>,
    moto: &Moto,
    home: &Path,
) {
    cmd.env(
        "PATH",
        format!(
            "{}:/usr/local/bin:/usr/bin:/bin",
            venv().join("bin").display()
        ),
    )
    .env("HOME", home)
    .env("AWS_CONFIG_FILE", "/dev/null")
    .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    .env("AWS_EC2_METADATA_DISABLED", "true")
    .env("AWS_DEFAULT_REGION", "us-east-1")
    .env("AWS_REGION", "us-east-1")
    .env("AWS_ENDPOINT_URL", &moto.endpoint);
    for (k, v) in vars {
        cmd.env(k, v);
    }
}

#[test]
fn three_containers_each_run_an_sdk_as_their_own_role() {
    let topology = match Topology::build(3) {
        Ok(t) => t,
        Err(why) => return skip(&format!("no network namespaces here: {why}")),
    };
    let mut env = TestEnv::new();
    env.use_file_vault(PASSPHRASE);
    let moto = Moto::start_in(&env, &topology.host, GATEWAY);
    env.use_moto(&moto);
    let (key_id, secret) = moto.create_access_key(&env, "alice");
    for role in ["api", "worker", "batch"] {
        moto.create_role(&env, role);
    }
    env.write_config(CONFIG);
    env.store_key("base", &key_id, &secret);

    let clients = [
        ("api", "lab-api"),
        ("worker", "lab-worker"),
        ("batch", "lab-batch"),
    ];
    let port = free_port();
    let listen = format!("{GATEWAY}:{port}");
    let mut vars = Vec::new();
    for (name, profile) in clients {
        add(&env, name, profile, &[]);
        let run = env.run(&["container", "env", name, "--listen", &listen]);
        run.success();
        vars.push(parse_env(&run.stdout));
    }
    assert_eq!(
        vars[0]["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
        format!("http://{listen}/")
    );

    // The broker in the host namespace, on the bridge's address, renewing on every request.
    let mut serve = topology.command(&topology.host, vault_bin());
    serve.args(["serve", "--listen", &listen]);
    let env_vars: Vec<(String, std::ffi::OsString)> = env_vars(&env);
    for (k, v) in &env_vars {
        serve.env(k, v);
    }
    serve.env("AWS_MIN_TTL", "2h");
    let broker = Broker::spawn(&env, serve, port);
    let health = format!("http://{listen}/health");
    wait_for(
        Duration::from_secs(30),
        "the broker's /health from a container",
        || fetch_in(&topology, 0, &health, None)["status"] == 200,
    );

    let home = env.dir.path().join("container-home");
    fs::create_dir_all(&home).unwrap();
    let sdk = sdk_caller();
    let run_client = |i: usize| -> String {
        let mut cmd = match i {
            0 => {
                let mut c = topology.command(&topology.containers[0], venv().join("bin/aws"));
                c.args(&CALLER_ARN[1..]);
                c
            }
            1 => {
                let mut c = topology.command(&topology.containers[1], venv().join("bin/python3"));
                c.args(["-c", BOTO3_CALLER]);
                c
            }
            _ => topology.command(&topology.containers[2], &sdk),
        };
        container_env(&mut cmd, &vars[i], &moto, &home);
        let out = env.output(&mut cmd);
        assert!(
            out.status.success(),
            "client {i}: {out:?}\nbroker: {}",
            broker.stderr()
        );
        out.stdout.trim().to_owned()
    };
    for round in 0..2 {
        for (i, (name, _)) in clients.iter().enumerate() {
            assert_assumed(&run_client(i), name);
        }
        if round == 0 {
            // Every request renewed (AWS_MIN_TTL): each round minted again, and a rotate
            // between rounds changes nothing for the clients, which read the file anew.
            for (name, _) in clients {
                env.run(&["container", "rotate", name]).success();
            }
        }
    }
    assert!(moto.count("AssumeRole") >= 6, "{:?}", moto.sts_actions());

    // No path or query picks a role, from inside a container either; the source address
    // in the audit log is the container's own.
    let reply = fetch_in(
        &topology,
        0,
        &format!("http://{listen}/?role=batch"),
        Some(&vars[0]["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]),
    );
    assert_eq!(reply["status"], 404);
    let reply = fetch_in(&topology, 1, &format!("http://{listen}/"), None);
    assert_eq!(reply["status"], 403);
    drop(broker);
    let log = env.run(&["container", "log", "api", "--json"]);
    assert!(
        log.stdout
            .lines()
            .any(|l| l.contains("\"source\":\"169.254.170.10:") && l.contains("\"result\":\"ok\"")),
        "{}",
        log.stdout
    );
    let all_tokens: Vec<String> = vars
        .iter()
        .map(|v| token(Path::new(&v["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"])))
        .collect();
    assert_tokens_only_in_their_files(&env, &all_tokens);
    let transcript = env.transcript();
    assert!(!transcript.contains(&secret) && !transcript.contains(PASSPHRASE));
    drop(moto);
    drop(topology);
}

/// The test environment's variables (for a command that is not built by `env.vault`).
fn env_vars(env: &TestEnv) -> Vec<(String, std::ffi::OsString)> {
    let cmd = env.vault(&[]);
    cmd.get_envs()
        .filter_map(|(k, v)| Some((k.to_string_lossy().into_owned(), v?.to_owned())))
        .collect()
}

/// One bare GET from container `i` (see tests/container_client.py).
fn fetch_in(topology: &Topology, i: usize, url: &str, token_file: Option<&str>) -> Value {
    let mut cmd = topology.command(&topology.containers[i], venv().join("bin/python3"));
    cmd.arg(client_script()).args(["fetch", url]);
    if let Some(f) = token_file {
        cmd.arg(f);
    }
    let out = cmd.output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// Every kind of source behind the broker: a role chain on an MFA session (two profiles
/// sharing it), credential_process, web identity (a CI source) and an IAM Identity Center
/// role (the SSO stand-in: moto has no SSO; the sign-in's browser is the rig's script).
#[test]
fn every_kind_of_profile_is_served_behind_the_broker() {
    let world = lab();
    let dir = world.env.dir.path().display().to_string();
    let count = world.path("mfa-count");
    let source = world.path("source.sh");
    fs::write(
        &source,
        format!(
            "#!/bin/sh\nprintf '{{\"Version\":1,\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"%s\"}}' '{}' '{}'\n",
            world.key_id, world.secret
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&source, fs::Permissions::from_mode(0o700)).unwrap();
    }
    fs::write(
        world.path("web-token"),
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJjaSJ9.",
    )
    .unwrap();
    let config = format!(
        "{CONFIG}
[profile mfa-a]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/mfa-a
mfa_serial = arn:aws:iam::123456789012:mfa/alice
mfa_process = echo x >> {count}; echo 123456

[profile mfa-b]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/mfa-b
mfa_serial = arn:aws:iam::123456789012:mfa/alice
mfa_process = echo x >> {count}; echo 123456

[profile cp-source]
credential_process = {source}
region = us-east-1

[profile cp]
source_profile = cp-source
role_arn = arn:aws:iam::123456789012:role/cp

[profile web]
web_identity_token_file = {dir}/web-token
role_arn = arn:aws:iam::123456789012:role/web
region = us-east-1

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = us-east-1
sso_registration_scopes = sso:account:access

[profile sso-ro]
sso_session = corp
sso_account_id = 111111111111
sso_role_name = ReadOnly
region = us-east-1
",
        count = count.display(),
        source = source.display(),
    );
    world.write_config(&config);
    let mut world = world;
    let stand_in = vault_harness::sso::SsoStandIn::start(&world.env, &world.moto.endpoint);
    let browser = vault_harness::sso::browser_script(&world.env, &world.path("browser-calls"));
    world
        .env
        .set("AWS_ENDPOINT_URL_SSO", &stand_in.endpoint)
        .set("AWS_ENDPOINT_URL_SSO_OIDC", &stand_in.endpoint)
        .set("BROWSER", browser);
    let env = &world.env;
    let kinds = ["mfa-a", "mfa-b", "cp", "web", "sso-ro"];
    let files: Vec<PathBuf> = kinds.iter().map(|k| add(env, k, k, &[])).collect();
    // Not lazy: every profile minted at start, the MFA code asked once for both.
    let broker = Broker::start(env, &[], &[]);
    for (kind, file) in kinds.iter().zip(&files) {
        let arn = role_of(&world, &broker.fetch(Some(&token(file))));
        let role = match *kind {
            "sso-ro" => "ReadOnly",
            other => other,
        };
        assert!(
            arn.contains(&format!("assumed-role/{role}/")),
            "{kind}: {arn}\nbroker: {}",
            broker.stderr()
        );
    }
    drop(broker);
    let asked = fs::read_to_string(&count)
        .unwrap_or_default()
        .lines()
        .count();
    assert_eq!(asked, 1, "one MFA session for both profiles on base");
    assert_eq!(
        world.moto.count("GetSessionToken"),
        1,
        "{:?}",
        world.minted_actions()
    );
    assert_eq!(world.moto.count("AssumeRoleWithWebIdentity"), 1);
    assert_eq!(stand_in.count("GetRoleCredentials"), 1);
    let mut secrets: Vec<String> = stand_in.issued_secrets();
    secrets.extend(files.iter().map(|f| token(f)));
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    world.assert_no_secrets(&refs);
}

/// A console session of `aws login` (`login_session`) behind the broker, directly and as
/// the source of a role: refreshed once through aws-config's login provider (AWS Sign-In is
/// the stand-in of `tests/signin_stand_in.py`: it has no emulator).
#[test]
fn a_console_session_and_a_role_on_it_are_served_behind_the_broker() {
    const ALICE: &str = "arn:aws:iam::123456789012:user/alice";
    let mut world = World::without_stored_key(
        PASSPHRASE,
        &format!(
            "[profile console]\nlogin_session = {ALICE}\nregion = us-west-2\n\n\
             [profile on-console]\nsource_profile = console\n\
             role_arn = arn:aws:iam::123456789012:role/lab\nregion = us-west-2\n"
        ),
    );
    let stand_in = vault_harness::signin::SigninStandIn::start(&world.env, &world.moto.endpoint);
    world.env.set("AWS_ENDPOINT_URL_SIGNIN", &stand_in.endpoint);
    let cli_file = stand_in.sign_in(&world.env.home().join(".aws/login/cache"), ALICE, true);
    let browser = vault_harness::sso::browser_script(&world.env, &world.path("browser-calls"));
    let env = &world.env;
    let direct = add(env, "direct", "console", &[]);
    let role = add(env, "role", "on-console", &[]);
    let broker = Broker::start(env, &[], &[]);
    let arn = role_of(&world, &broker.fetch(Some(&token(&direct))));
    assert!(arn.contains(":assumed-role/console-session/"), "{arn}");
    assert_assumed(&role_of(&world, &broker.fetch(Some(&token(&role)))), "lab");
    drop(broker);
    assert_eq!(
        stand_in.count("CreateOAuth2Token"),
        1,
        "one refresh for both"
    );

    // After `vault signin`, the same client is served from the vault's encrypted copy; the
    // AWS CLI's file is left as it was.
    env.run_with(
        &[("BROWSER", browser.to_str().unwrap())],
        &["signin", "console"],
    )
    .success();
    let file_before = fs::read(&cli_file).unwrap();
    let from_file: Value = serde_json::from_slice(&file_before).unwrap();
    let broker = Broker::start(env, &[], &[]);
    let answer = broker.fetch(Some(&token(&direct)));
    assert!(role_of(&world, &answer).contains(":assumed-role/console-session/"));
    assert_ne!(
        answer.json()["AccessKeyId"],
        from_file["accessToken"]["accessKeyId"],
        "served from the AWS CLI's file, not the vault's copy"
    );
    drop(broker);
    assert_eq!(fs::read(&cli_file).unwrap(), file_before);
    let mut secrets = stand_in.issued_secrets();
    secrets.extend([token(&direct), token(&role)]);
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    world.assert_no_secrets(&refs);
}

#[test]
fn sixteen_concurrent_adds_all_land_and_a_damaged_registry_serves_nobody() {
    let world = lab();
    let env = &world.env;
    add(env, "first", "lab-api", &[]);
    let adds = env.outputs_concurrently(
        (0..16).map(|i| env.vault(&["container", "add", &format!("w{i}"), "lab-worker"])),
    );
    for run in &adds {
        run.success();
    }
    let run = env.run(&["container", "list", "--json"]);
    let rows: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 17, "{rows}");
    for i in 0..16 {
        assert!(token_file(env, &format!("w{i}")).exists());
    }

    // A damaged registry: every command says so and changes nothing; the broker serves no
    // one (503) rather than guess.
    let api = token_file(env, "first");
    let registry = env.vault_dir().join("containers.json");
    let good = fs::read(&registry).unwrap();
    let mut bad = good.clone();
    let last = bad.len() - 3;
    bad[last] ^= 0x20;
    // Replaced as every writer replaces it (a new file renamed over it): a rewrite in place
    // within one clock tick would keep its size and times.
    let replace = |bytes: &[u8]| {
        let tmp = world.path("registry.tmp");
        fs::write(&tmp, bytes).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)).unwrap();
        }
        fs::rename(&tmp, &registry).unwrap();
    };
    replace(&bad);
    world.assert_refused(&["container", "list"], 1, &["damaged"]);
    world.assert_refused(&["container", "add", "x", "lab-api"], 1, &["damaged"]);
    world.assert_refused(&["container", "rotate", "first"], 1, &["damaged"]);
    world.assert_refused(&["serve", "--listen", "127.0.0.1:1"], 1, &["damaged"]);
    assert_eq!(fs::read(&registry).unwrap(), bad);
    // Damaged while serving, then mended.
    replace(&good);
    let broker = Broker::start(env, &[], &["--lazy"]);
    assert_eq!(broker.fetch(Some(&token(&api))).status, 200);
    replace(&bad);
    let reply = broker.fetch(Some(&token(&api)));
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(reply.body.contains("registry"), "{reply:?}");
    replace(&good);
    assert_eq!(broker.fetch(Some(&token(&api))).status, 200);
}
