//! The Windows build (`vault.exe`, `x86_64-pc-windows-gnu`) run for real under Wine: the
//! store with the Credential Manager (`wincred`, the Windows default) and with a passphrase,
//! bad input, `exec` into `cmd.exe` children, the exit code, `export`'s formats, the ECS
//! credential server with the Windows build of the aws-sdk-rust probe as its child, and
//! concurrent writers. moto on 127.0.0.1 is STS/IAM as on Linux.
//!
//! Wine is not Windows: what this shows is that the Windows code paths (the Credential
//! Manager API, `LockFileEx`, replace-by-rename, `CreateProcess` of `cmd` and of an `.exe`,
//! exit codes) work as written on Wine's implementation of those APIs. The children are
//! Windows programs: Wine cannot wait for a Linux program a Windows process starts.

use std::fs;
use std::process::Stdio;

use vault_harness::wine::{Wine, unix_lines};
use vault_harness::{TestEnv, World, parse_env};

const PASSPHRASE: &str = "windows tests: correct horse battery staple";
const KEY_ID: &str = "AKIAWINEEXAMPLE00001";
const SECRET: &str = "wineSecretKeyExampleExampleExample000001";

const CONFIG: &str = "\
[profile base]
region = us-east-1

[profile lab]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/lab
mfa_serial = arn:aws:iam::123456789012:mfa/alice
region = eu-west-1
";

/// `vault.exe add --env PROFILE` with the test key pair.
fn add(wine: &Wine, env: &TestEnv, profile: &str) -> vault_harness::Run {
    wine.run_with(
        env,
        &[
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
        &["add", "--env", "--no-add-config", profile],
    )
}

/// No file under the test's temp dir (HOME, the vault dir) nor the Wine registry holds the
/// secret in the clear, and nothing printed it.
#[track_caller]
fn assert_secret_nowhere(wine: &Wine, env: &TestEnv, secrets: &[&str]) {
    let transcript = env.transcript();
    let mut files = Vec::new();
    vault_harness::env::collect_files(env.dir.path(), &mut files);
    for name in ["user.reg", "system.reg", "userdef.reg"] {
        if let Ok(bytes) = fs::read(wine.prefix().join(name)) {
            files.push((wine.prefix().join(name), bytes));
        }
    }
    for secret in secrets {
        assert!(!transcript.contains(secret), "output shows a secret");
        for (path, bytes) in &files {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.contains(secret),
                "{} holds a secret in the clear",
                path.display()
            );
        }
    }
}

/// The default backend on Windows is the Credential Manager, and Wine's implements it: add,
/// list, remove, and the vault key never lands in a file in the clear.
#[test]
fn wincred_add_list_remove() {
    let Some(wine) = Wine::get() else { return };
    let env = TestEnv::new();
    env.write_config(CONFIG);
    add(&wine, &env, "base").success();
    add(&wine, &env, "ci").success();
    let list = wine.run(&env, &["list"]);
    list.success().stdout_has("base").stdout_has("ci");
    let creds = wine.run(&env, &["list", "--credentials"]);
    creds.success().stdout_has("base").stdout_has("ci");
    let backend = wine.run(&env, &["doctor"]);
    assert!(
        backend.stdout.contains("wincred") || backend.stderr.contains("wincred"),
        "doctor does not name the wincred backend:\n{}\n{}",
        backend.stdout,
        backend.stderr
    );
    wine.run(&env, &["remove", "--force", "ci"]).success();
    let list = wine.run(&env, &["list", "--credentials"]);
    list.success().stdout_has("base");
    assert!(!list.stdout.contains("ci\n"), "{}", list.stdout);
    assert_secret_nowhere(&wine, &env, &[SECRET]);
}

/// The `file` backend on Windows: the same commands; then a wrong passphrase and a damaged
/// file get clear errors and leave every file byte-identical.
#[test]
fn file_backend_and_bad_input_leave_the_store_untouched() {
    let Some(wine) = Wine::get() else { return };
    let mut env = TestEnv::new();
    env.write_config(CONFIG);
    env.use_file_vault(PASSPHRASE);
    add(&wine, &env, "base").success();
    add(&wine, &env, "ci").success();
    wine.run(&env, &["remove", "--force", "ci"]).success();
    wine.run(&env, &["list", "--credentials"])
        .success()
        .stdout_has("base");
    let pristine = env.vault_files();
    assert!(
        !pristine.is_empty(),
        "no vault files in {:?}",
        env.vault_dir()
    );

    let wrong = wine.run_with(
        &env,
        &[
            ("AWS_VAULT_FILE_PASSPHRASE", "not it"),
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
        &["add", "--env", "--no-add-config", "other"],
    );
    wrong.failure(1).stderr_has("wrong passphrase");
    assert_eq!(
        env.vault_files(),
        pristine,
        "a wrong passphrase changed the store"
    );

    let creds = env.vault_dir().join("credentials.json");
    let original = fs::read(&creds).unwrap();
    let mut flipped = original.clone();
    let at = original.len() - 20;
    flipped[at] ^= 0x01;
    fs::write(&creds, &flipped).unwrap();
    let damaged = env.vault_files();
    for args in [
        &["list", "--credentials"][..],
        &["remove", "-f", "base"][..],
    ] {
        let run = wine.run(&env, args);
        run.failure(1).stderr_has("is damaged").stderr_has("hint:");
        assert_eq!(env.vault_files(), damaged, "{args:?} changed the store");
    }
    let run = add(&wine, &env, "other");
    run.failure(1).stderr_has("is damaged");
    assert_eq!(env.vault_files(), damaged, "add changed a damaged store");
    fs::write(&creds, &original).unwrap();
    assert_eq!(env.vault_files(), pristine);
    assert_secret_nowhere(&wine, &env, &[SECRET, PASSPHRASE]);
}

/// Without `AWS_VAULT_FILE_DIR` the vault lives in `%APPDATA%\vault`, and says so.
#[test]
fn default_vault_dir_is_appdata() {
    let Some(wine) = Wine::get() else { return };
    let mut env = TestEnv::new();
    env.write_config(CONFIG);
    env.use_file_vault(PASSPHRASE);
    env.unset("AWS_VAULT_FILE_DIR");
    let run = add(&wine, &env, "base");
    run.success().stderr_has("\\AppData\\Roaming\\vault");
    // The only test that uses the prefix's own profile: it removes what it made.
    let users = wine.prefix().join("drive_c/users");
    let dir = fs::read_dir(&users)
        .unwrap()
        .flatten()
        .map(|user| user.path().join("AppData/Roaming/vault"))
        .find(|dir| dir.join("vault.json").is_file())
        .expect("a vault in %APPDATA%\\vault");
    fs::remove_dir_all(&dir).unwrap();
}

/// `vault unlock` has nowhere to keep the key on Windows: it says so before asking for the
/// passphrase, and names the keyring backend instead.
#[test]
fn unlock_says_what_to_use_on_windows() {
    let Some(wine) = Wine::get() else { return };
    let mut env = TestEnv::new();
    env.write_config(CONFIG);
    env.use_file_vault(PASSPHRASE);
    add(&wine, &env, "base").success();
    let before = env.vault_files();
    env.unset("AWS_VAULT_FILE_PASSPHRASE");
    let run = wine.run(&env, &["unlock"]);
    run.failure(1)
        .stderr_has("Linux kernel keyring")
        .stderr_has("vault migrate-backend --to wincred");
    // No terminal and no passphrase: the other commands say what to do on Windows.
    let run = wine.run(&env, &["export", "--format", "json", "base"]);
    run.failure(1).stderr_has("AWS_VAULT_FILE_PASSPHRASE");
    assert!(!run.stderr.contains("vault unlock"), "{}", run.stderr);
    // Only an empty lock file for the profile's session may have appeared.
    let entries = |files: Vec<(std::path::PathBuf, Vec<u8>)>| -> Vec<_> {
        files
            .into_iter()
            .filter(|(path, bytes)| {
                !(path.extension() == Some("lock".as_ref()) && bytes.is_empty())
            })
            .collect()
    };
    assert_eq!(entries(env.vault_files()), entries(before));
}

/// Concurrent writers on Windows (LockFileEx, then a replace by rename): none loses another's
/// entry.
#[test]
fn concurrent_adds_lose_nothing() {
    let Some(wine) = Wine::get() else { return };
    let mut env = TestEnv::new();
    env.write_config(CONFIG);
    env.use_file_vault(PASSPHRASE);
    add(&wine, &env, "first").success();
    let profiles: Vec<String> = (0..6).map(|i| format!("p{i}")).collect();
    let children: Vec<_> = profiles
        .iter()
        .map(|profile| {
            let mut cmd = wine.vault(&env, &["add", "--env", "--no-add-config", profile]);
            cmd.env("AWS_ACCESS_KEY_ID", KEY_ID)
                .env("AWS_SECRET_ACCESS_KEY", SECRET)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd.spawn().expect("wine starts")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let run = unix_lines(env.record(out.status, out.stdout, out.stderr));
        run.success();
    }
    let list = wine.run(&env, &["list", "--credentials"]);
    list.success().stdout_has("first");
    for profile in &profiles {
        assert!(
            list.stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some(profile)),
            "{profile} lost:\n{}",
            list.stdout
        );
    }
}

/// `exec` of a role profile with MFA into `cmd.exe`: the child sees the role's temporary
/// credentials and not the passphrase; moto saw GetSessionToken with the code, then
/// AssumeRole; the child's exit code passes through; `export` prints each format.
#[test]
fn exec_role_with_mfa_into_cmd() {
    let Some(wine) = Wine::get() else { return };
    let world = World::without_stored_key(PASSPHRASE, CONFIG);
    let env = &world.env;
    wine.run_with(
        env,
        &[
            ("AWS_ACCESS_KEY_ID", &world.key_id),
            ("AWS_SECRET_ACCESS_KEY", &world.secret),
        ],
        &["add", "--env", "--no-add-config", "base"],
    )
    .success();

    let run = wine.run(
        env,
        &["exec", "-t", "123456", "lab", "--", "cmd", "/c", "set"],
    );
    run.success();
    let child = parse_env(&run.stdout);
    let key = child.get("AWS_ACCESS_KEY_ID").expect("child has a key id");
    assert!(key.starts_with("ASIA"), "not temporary: {key}");
    assert!(child.contains_key("AWS_SECRET_ACCESS_KEY"));
    assert!(child.contains_key("AWS_SESSION_TOKEN"));
    assert_eq!(child.get("AWS_VAULT").map(String::as_str), Some("lab"));
    assert_eq!(
        child.get("AWS_REGION").map(String::as_str),
        Some("eu-west-1")
    );
    assert!(
        !child.contains_key("AWS_VAULT_FILE_PASSPHRASE"),
        "the passphrase reached the child"
    );
    assert_eq!(world.minted_actions(), ["GetSessionToken", "AssumeRole"]);
    let gst = &world.minted()[0];
    assert_eq!(gst.param("TokenCode"), Some("123456"));

    // Cached now: no new STS call, and cmd's exit code comes back.
    let run = wine.run(env, &["exec", "lab", "--", "cmd", "/c", "exit 7"]);
    run.failure(7);
    assert_eq!(world.minted_actions(), ["GetSessionToken", "AssumeRole"]);

    let ps = wine.run(env, &["export", "--format", "powershell", "lab"]);
    ps.success().stdout_has("$env:AWS_ACCESS_KEY_ID = ");
    assert!(
        ps.stdout.contains("$env:AWS_SESSION_TOKEN = "),
        "{}",
        ps.stdout
    );
    let json = wine.run(env, &["export", "--format", "json", "lab"]);
    json.success();
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(value["Version"], 1);
    assert_eq!(value["AccessKeyId"].as_str(), Some(key.as_str()));
    let ini = wine.run(env, &["export", "--format", "ini", "lab"]);
    ini.success()
        .stdout_has("[lab]")
        .stdout_has(&format!("aws_access_key_id = {key}"));
    world.assert_no_secrets(&[]);
    assert_secret_nowhere(&wine, env, &[&world.secret, PASSPHRASE]);
}

/// `exec` with no command starts `%COMSPEC%` (cmd.exe here), which reads its commands from
/// stdin and has the credentials.
#[test]
fn exec_without_a_command_starts_comspec() {
    let Some(wine) = Wine::get() else { return };
    let world = World::new(PASSPHRASE, CONFIG);
    let mut cmd = wine.vault(&world.env, &["exec", "base"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("wine starts");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        // One line: Wine's cmd.exe forgets `exit N`'s code after an earlier prompt line.
        stdin
            .write_all(b"echo vault-profile=%AWS_VAULT% & exit 3\r\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let run = unix_lines(world.env.record(out.status, out.stdout, out.stderr));
    run.failure(3).stdout_has("vault-profile=base");
}

/// `exec --server`: the child gets the ECS endpoint (and no key in its environment), and
/// the Windows build of the aws-sdk-rust probe fetches its credentials from it.
#[test]
fn server_child_fetches_from_the_ecs_endpoint() {
    let Some(wine) = Wine::get() else { return };
    let world = World::new(PASSPHRASE, CONFIG);
    let env = &world.env;
    let run = wine.run(env, &["exec", "--server", "base", "--", "cmd", "/c", "set"]);
    run.success();
    let child = parse_env(&run.stdout);
    let uri = child
        .get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .expect("the child has the endpoint");
    assert!(uri.starts_with("http://127.0.0.1:"), "{uri}");
    assert!(child.contains_key("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
    assert!(
        !child.contains_key("AWS_ACCESS_KEY_ID"),
        "a key in the environment"
    );
    assert!(!child.contains_key("AWS_VAULT_FILE_PASSPHRASE"));

    let caller = wine.sdk_caller().display().to_string();
    let before = world.moto.count("GetCallerIdentity");
    let run = wine.run(env, &["exec", "--server", "base", "--", &caller]);
    run.success().stdout_has("arn:aws:");
    assert_eq!(world.moto.count("GetCallerIdentity"), before + 1);
    world.assert_no_secrets(&[]);
}

/// `taskkill /f` of `vault exec --server` (here: SIGKILL of its Wine process) ends its
/// child too, through the job object vault put it in: the child's stdout, which only the
/// child then holds, reaches end of file while the test still holds the child's stdin open.
#[test]
fn a_killed_server_takes_its_child_with_it() {
    use std::io::{Read, Write};
    let Some(wine) = Wine::get() else { return };
    let world = World::new(PASSPHRASE, CONFIG);
    let mut cmd = wine.vault(&world.env, &["exec", "--server", "base", "--", "cmd"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut vault = cmd.spawn().expect("wine starts");
    let guard_pid = vault.id();
    let mut stdin = vault.stdin.take().unwrap();
    let mut stdout = vault.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    seen.extend_from_slice(&buf[..n]);
                    let _ = tx.send(String::from_utf8_lossy(&seen).into_owned());
                }
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    stdin
        .write_all(b"echo child-of-%AWS_VAULT%-up\r\n")
        .unwrap();
    loop {
        match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(seen) if seen.contains("child-of-base-up") => break,
            Ok(_) => continue,
            Err(e) => panic!("the child never answered: {e}"),
        }
    }
    // The loader became Wine's preloader in place: this PID is vault.exe's process.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(guard_pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = vault.wait();
    vault_harness::wait_for(
        std::time::Duration::from_secs(30),
        "the child's stdout to close",
        || reader.is_finished(),
    );
    drop(stdin);
    reader.join().unwrap();
}

/// An SSO sign-in opens its page through ShellExecute, and the browser gets the whole
/// authorize URL, every `&` included (`cmd /C start` cut it at the first). Wine hands
/// http links to the Linux program its registry names (`WineBrowser\Browsers`): here the
/// test browser, which notes the URL and follows it to vault.exe's loopback redirect.
#[test]
fn an_sso_sign_in_opens_the_whole_page_through_shellexecute() {
    let Some(wine) = Wine::get() else { return };
    let mut world = World::without_stored_key(
        PASSPHRASE,
        "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n",
    );
    let stand_in = vault_harness::sso::SsoStandIn::start(&world.env, &world.moto.endpoint);
    let calls = world.path("browser-calls");
    let browser = vault_harness::sso::browser_script(&world.env, &calls);
    world
        .env
        .set("AWS_ENDPOINT_URL_SSO", &stand_in.endpoint)
        .set("AWS_ENDPOINT_URL_SSO_OIDC", &stand_in.endpoint)
        .unset("BROWSER");
    let mut reg = wine.command(&world.env, "reg");
    reg.args([
        "add",
        r"HKCU\Software\Wine\WineBrowser",
        "/v",
        "Browsers",
        "/d",
    ])
    .arg(&browser)
    .arg("/f");
    assert!(world.env.output(&mut reg).status.success());

    wine.run(&world.env, &["sso", "login", "corp"])
        .success()
        .stderr_has("Signed in to sso-session corp");
    let opened = fs::read_to_string(&calls).expect("the browser was started");
    let url = opened.trim();
    assert_eq!(opened.lines().count(), 1, "{opened}");
    for name in [
        "?response_type=code",
        "&client_id=",
        "&redirect_uri=",
        "&state=",
        "&code_challenge_method=S256",
        "&scopes=",
        "&code_challenge=",
    ] {
        assert!(url.contains(name), "{name} missing from {url}");
    }
    assert_eq!(stand_in.count("CreateToken.authorization_code"), 1);
}
