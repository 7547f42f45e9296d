//! The test rig: runs the real `vault` binary hermetically, and starts the real components it
//! talks to (a private D-Bus session bus with gnome-keyring's Secret Service; moto_server as
//! STS/IAM). Everything binds 127.0.0.1 or lives in a temp dir, and every process started
//! here is stopped by its own PID when its guard drops.
//!
//! `cargo xtask test` installs the components and sets `VAULT_TEST_VENV` (the Python venv with
//! moto, awscli, boto3) and `VAULT_BIN` (the binary under test).

#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[cfg(unix)]
pub use nix::sys::signal::Signal;

/// The repository root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned()
}

/// The `vault` binary under test: `VAULT_BIN`, else `target/debug/vault`.
pub fn vault_bin() -> PathBuf {
    let bin = std::env::var_os("VAULT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/debug/vault"));
    assert!(
        bin.exists(),
        "{} does not exist: run `cargo build -p vault-exec` first (cargo xtask test does)",
        bin.display()
    );
    bin
}

/// Where the Python venv is expected: `VAULT_TEST_VENV`, else `target/venv`.
fn venv_path() -> PathBuf {
    std::env::var_os("VAULT_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/venv"))
}

/// The Python venv with moto_server, aws and boto3.
pub fn venv() -> PathBuf {
    let venv = venv_path();
    assert!(
        venv.join("bin/moto_server").exists(),
        "no moto_server in {}: run `cargo xtask setup` (cargo xtask test does)",
        venv.display()
    );
    venv
}

/// A command's result, with stdout/stderr as text.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    #[track_caller]
    pub fn success(&self) -> &Self {
        assert!(
            self.status.success(),
            "expected success, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn failure(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            code,
            "expected exit code {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}",
            self.stdout
        );
        self
    }
}

/// The AWS CLI asking who it is, printing only the ARN: the child most tests run.
pub const CALLER_ARN: &[&str] = &[
    "aws",
    "sts",
    "get-caller-identity",
    "--query",
    "Arn",
    "--output",
    "text",
];

/// A hermetic environment for `vault`: temp HOME, config file and vault dir; the process
/// environment is cleared and only what is set here reaches the binary. All output of every
/// run is kept, so a test can check that no secret ever appeared in it.
#[derive(Debug)]
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    vars: Vec<(String, OsString)>,
    transcript: Arc<Mutex<String>>,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("vault-test-")
            .tempdir()
            .expect("temp dir");
        let home = dir.path().join("home");
        let runtime = dir.path().join("run");
        fs::create_dir_all(home.join(".aws")).unwrap();
        fs::create_dir_all(&runtime).unwrap();
        set_mode(&runtime, 0o700);
        // The venv's bin dir first, so children find its `aws` and `python3` (with boto3).
        let mut path = std::env::var_os("PATH").unwrap_or_default();
        let venv_bin = venv_path().join("bin");
        if venv_bin.join("aws").exists() {
            let mut dirs = vec![venv_bin];
            dirs.extend(std::env::split_paths(&path));
            path = std::env::join_paths(dirs).unwrap_or(path);
        }
        let mut env = TestEnv {
            vars: Vec::new(),
            transcript: Arc::new(Mutex::new(String::new())),
            dir,
        };
        env.set("PATH", path);
        env.set("HOME", &home);
        env.set("XDG_RUNTIME_DIR", &runtime);
        env.set("XDG_DATA_HOME", home.join(".local/share"));
        env.set("AWS_CONFIG_FILE", home.join(".aws/config"));
        env.set("AWS_SHARED_CREDENTIALS_FILE", home.join(".aws/credentials"));
        env.set("AWS_VAULT_FILE_DIR", env.vault_dir());
        // No session bus unless a test starts one: the default backend must not reach the
        // developer's real keyring.
        env.set(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}", env.dir.path().join("no-bus").display()),
        );
        env
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn vault_dir(&self) -> PathBuf {
        self.dir.path().join("vault")
    }

    pub fn config_path(&self) -> PathBuf {
        self.home().join(".aws/config")
    }

    /// Sets (or replaces) a variable for every later run.
    pub fn set(&mut self, name: &str, value: impl Into<OsString>) -> &mut Self {
        self.vars.retain(|(n, _)| n != name);
        self.vars.push((name.to_owned(), value.into()));
        self
    }

    pub fn unset(&mut self, name: &str) -> &mut Self {
        self.vars.retain(|(n, _)| n != name);
        self
    }

    /// The value a variable has for later runs, if set.
    pub fn get(&self, name: &str) -> Option<&OsString> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Points every later run at `moto` the way the SDKs are pointed at a private endpoint:
    /// `AWS_ENDPOINT_URL`. No region is set: `AWS_REGION` / `AWS_DEFAULT_REGION` override a
    /// profile's `region`, so tests give regions in the config (or set them on purpose).
    pub fn use_moto(&mut self, moto: &Moto) -> &mut Self {
        self.set("AWS_ENDPOINT_URL", &moto.endpoint);
        self
    }

    /// A `file` vault opened with `passphrase` (from the environment) in every later run.
    pub fn use_file_vault(&mut self, passphrase: &str) -> &mut Self {
        self.set("AWS_VAULT_BACKEND", "file");
        self.set("AWS_VAULT_FILE_PASSPHRASE", passphrase)
    }

    /// `vault add --env --no-add-config PROFILE` with this key pair; it must succeed.
    #[track_caller]
    pub fn store_key(&self, profile: &str, key_id: &str, secret: &str) {
        self.run_with(
            &[
                ("AWS_ACCESS_KEY_ID", key_id),
                ("AWS_SECRET_ACCESS_KEY", secret),
            ],
            &["add", "--env", "--no-add-config", profile],
        )
        .success();
    }

    /// `vault EXEC_ARGS -- aws sts get-caller-identity`, printing only the caller's ARN.
    pub fn caller_arn(&self, vars: &[(&str, &str)], exec_args: &[&str]) -> Run {
        let mut args = exec_args.to_vec();
        args.push("--");
        args.extend_from_slice(CALLER_ARN);
        self.run_with(vars, &args)
    }

    pub fn write_config(&self, text: &str) {
        fs::write(self.config_path(), text).unwrap();
    }

    /// A `vault` command with this environment and nothing else. stdin is empty; there is no
    /// controlling terminal (the binary is started in a new session).
    pub fn vault(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(vault_bin());
        cmd.args(args);
        self.apply(&mut cmd);
        cmd
    }

    /// Any program with this environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        self.apply(&mut cmd);
        cmd
    }

    fn apply(&self, cmd: &mut Command) {
        cmd.env_clear();
        for (name, value) in &self.vars {
            cmd.env(name, value);
        }
        cmd.current_dir(self.dir.path());
        cmd.stdin(Stdio::null());
        detach_from_terminal(cmd);
    }

    /// Runs `vault ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        self.output(&mut self.vault(args))
    }

    /// Runs `vault ARGS` with extra variables for this run only.
    pub fn run_with(&self, vars: &[(&str, &str)], args: &[&str]) -> Run {
        let mut cmd = self.vault(args);
        for (n, v) in vars {
            cmd.env(n, v);
        }
        self.output(&mut cmd)
    }

    /// Runs any prepared command, recording its output in the transcript.
    pub fn output(&self, cmd: &mut Command) -> Run {
        let Output {
            status,
            stdout,
            stderr,
        } = cmd.output().expect("command runs");
        self.record(status, stdout, stderr)
    }

    /// Records the output of a command the test ran itself.
    pub fn record(&self, status: ExitStatus, stdout: Vec<u8>, stderr: Vec<u8>) -> Run {
        let run = Run {
            status,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        };
        let mut t = self.transcript.lock().unwrap();
        t.push_str(&run.stdout);
        t.push_str(&run.stderr);
        run
    }

    /// Everything every run printed so far.
    pub fn transcript(&self) -> String {
        self.transcript.lock().unwrap().clone()
    }

    /// Every file under the vault dir, as (path, bytes).
    pub fn vault_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = Vec::new();
        collect_files(&self.vault_dir(), &mut files);
        files.sort();
        files
    }
}

fn collect_files(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else if let Ok(bytes) = fs::read(&path) {
            out.push((path, bytes));
        }
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) {}

/// Starts the child in a new session so `/dev/tty` is unavailable, like CI and like a process
/// run by an SDK; a test that wants a terminal uses its own. `setsid` also makes the child
/// its own process group, so no `process_group` here: on a group leader setsid fails (EPERM)
/// and the child would keep the developer's terminal (and stop on SIGTTIN reading it).
#[cfg(unix)]
fn detach_from_terminal(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec; it only calls setsid(2),
    // which is async-signal-safe, allocates nothing and touches no memory of the parent.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
}

#[cfg(not(unix))]
fn detach_from_terminal(_: &mut Command) {}

/// A child process stopped (SIGTERM, then SIGKILL) by its PID when dropped.
#[derive(Debug)]
pub struct Guard {
    name: &'static str,
    child: Child,
}

impl Guard {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        stop_pid(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "{} (pid {}) ignored SIGTERM; killing",
            self.name,
            self.child.id()
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(unix)]
fn stop_pid(pid: u32) {
    kill(pid, Signal::SIGTERM);
}

#[cfg(not(unix))]
fn stop_pid(_: u32) {}

/// Sends `signal` to `pid`, a process the test started (or its child, which noted its own
/// PID). An already gone process is not an error: stopping is best effort.
#[cfg(unix)]
pub fn kill(pid: u32, signal: Signal) {
    let Ok(pid) = i32::try_from(pid) else { return };
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
}

/// A free TCP port on 127.0.0.1 (the OS picks it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A private D-Bus session bus with gnome-keyring's Secret Service, unlocked.
#[derive(Debug)]
pub struct SecretService {
    pub address: String,
    // Dropped in this order: keyring first, then the bus.
    _keyring: Guard,
    _bus: Guard,
}

impl SecretService {
    /// Starts both in `env`'s temp dir and points `env` at the bus.
    pub fn start(env: &mut TestEnv) -> SecretService {
        Self::start_with(env, true)
    }

    /// A Secret Service whose login collection was never unlocked (no password given): it
    /// answers on the bus but refuses to store anything, as on many headless machines.
    pub fn start_locked(env: &mut TestEnv) -> SecretService {
        Self::start_with(env, false)
    }

    fn start_with(env: &mut TestEnv, unlocked: bool) -> SecretService {
        let socket = env.dir.path().join("run/bus");
        let address = format!("unix:path={}", socket.display());
        let mut bus = env.command("dbus-daemon");
        bus.args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
            .arg(format!("--address={address}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut bus = bus
            .spawn()
            .expect("dbus-daemon starts (apt-get install dbus)");
        let mut line = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("unix:"), "dbus-daemon said {line:?}");
        let bus = Guard {
            name: "dbus-daemon",
            child: bus,
        };
        env.set("DBUS_SESSION_BUS_ADDRESS", &address);

        let mut keyring = env.command("gnome-keyring-daemon");
        keyring
            .args(["--foreground", "--components=secrets"])
            .args(unlocked.then_some("--unlock"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut keyring = keyring
            .spawn()
            .expect("gnome-keyring-daemon starts (apt-get install gnome-keyring)");
        {
            // The login keyring's password, on stdin, then EOF.
            let mut stdin = keyring.stdin.take().unwrap();
            if unlocked {
                stdin.write_all(b"vault-test-keyring").unwrap();
            }
        }
        let keyring = Guard {
            name: "gnome-keyring-daemon",
            child: keyring,
        };
        wait_for(
            Duration::from_secs(10),
            "org.freedesktop.secrets on the bus",
            || {
                env.command("dbus-send")
                    .args([
                        "--session",
                        "--dest=org.freedesktop.DBus",
                        "--type=method_call",
                        "--print-reply",
                        "/org/freedesktop/DBus",
                        "org.freedesktop.DBus.NameHasOwner",
                        "string:org.freedesktop.secrets",
                    ])
                    .stderr(Stdio::null())
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
                    .unwrap_or(false)
            },
        );
        SecretService {
            address,
            _keyring: keyring,
            _bus: bus,
        }
    }
}

/// moto_server on 127.0.0.1 and a free port, with request recording on.
#[derive(Debug)]
pub struct Moto {
    pub port: u16,
    pub endpoint: String,
    _server: Guard,
}

impl Moto {
    pub fn start(env: &TestEnv) -> Moto {
        let venv = venv();
        for _attempt in 0..5 {
            let port = free_port();
            let log = fs::File::create(env.dir.path().join(format!("moto-{port}.log"))).unwrap();
            let mut cmd = env.command(venv.join("bin/moto_server"));
            // moto records into ./moto_recording unless told otherwise: one file per server.
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_ENABLE_RECORDING", "True")
                .env(
                    "MOTO_RECORDER_FILEPATH",
                    env.dir.path().join(format!("moto-{port}.recording")),
                )
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            let server = Guard {
                name: "moto_server",
                child: cmd.spawn().expect("moto_server starts"),
            };
            let endpoint = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if http_get(port, "/moto-api/").is_some() {
                    return Moto {
                        port,
                        endpoint,
                        _server: server,
                    };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            // Lost the port to someone else, or slow start: try another.
        }
        panic!("moto_server did not start");
    }

    /// The PID of the moto_server process.
    pub fn pid(&self) -> u32 {
        self._server.pid()
    }

    /// The requests moto recorded, as JSON values (one per request).
    pub fn recorded(&self) -> Vec<serde_json::Value> {
        let body = http_get(self.port, "/moto-api/recorder/download-recording").unwrap_or_default();
        body.lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The STS API calls moto received, in order (IAM and moto-api requests left out).
    pub fn sts_calls(&self) -> Vec<StsCall> {
        self.recorded()
            .iter()
            .filter_map(StsCall::from_recorded)
            .collect()
    }

    /// The actions of [`Moto::sts_calls`], in order.
    pub fn sts_actions(&self) -> Vec<String> {
        self.sts_calls().into_iter().map(|c| c.action).collect()
    }

    /// How many STS calls of `action` (e.g. "AssumeRole") moto received.
    pub fn count(&self, action: &str) -> usize {
        self.sts_calls()
            .iter()
            .filter(|c| c.action == action)
            .count()
    }

    /// Runs the venv's `aws` CLI against this moto with throwaway credentials and no config
    /// file, returning its stdout parsed as JSON. The output is not put in the transcript (it
    /// holds secrets by design).
    #[track_caller]
    pub fn aws(&self, env: &TestEnv, args: &[&str]) -> serde_json::Value {
        let out = env
            .command(venv().join("bin/aws"))
            .args(args)
            .args(["--output", "json"])
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "AKIAHARNESSHARNESS00")
            .env(
                "AWS_SECRET_ACCESS_KEY",
                "harness/harness/harness/harness/harness0",
            )
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .output()
            .expect("the venv's aws runs");
        assert!(
            out.status.success(),
            "aws {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        if text.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).expect("aws prints JSON")
        }
    }

    /// Creates IAM user `user` in moto and an access key for it: (key id, secret). These are
    /// IAM calls, so [`Moto::sts_calls`] does not see them.
    #[track_caller]
    pub fn create_access_key(&self, env: &TestEnv, user: &str) -> (String, String) {
        self.aws(env, &["iam", "create-user", "--user-name", user]);
        let key = self.aws(env, &["iam", "create-access-key", "--user-name", user]);
        let field = |name: &str| {
            key["AccessKey"][name]
                .as_str()
                .unwrap_or_else(|| panic!("create-access-key gave no {name}"))
                .to_owned()
        };
        (field("AccessKeyId"), field("SecretAccessKey"))
    }

    /// Creates IAM role `name` (trusting anyone in the account) and returns its ARN.
    #[track_caller]
    pub fn create_role(&self, env: &TestEnv, name: &str) -> String {
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#;
        let role = self.aws(
            env,
            &[
                "iam",
                "create-role",
                "--role-name",
                name,
                "--assume-role-policy-document",
                trust,
            ],
        );
        role["Role"]["Arn"]
            .as_str()
            .expect("create-role gave an Arn")
            .to_owned()
    }

    /// Turns on moto's SigV4 and IAM policy checks from the next request on: unknown keys
    /// get `InvalidClientTokenId`, keys of users without a policy `AccessDenied`.
    #[track_caller]
    pub fn enable_auth(&self) {
        let answer = http_request(
            self.port,
            "POST",
            "/moto-api/reset-auth",
            &[("Content-Type", "text/plain")],
            b"0",
        );
        assert!(
            matches!(answer, Some((200, _))),
            "reset-auth answered {answer:?}"
        );
    }
}

/// One STS API request as moto recorded it: the action and its form parameters (decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsCall {
    pub action: String,
    pub params: BTreeMap<String, String>,
}

impl StsCall {
    /// A parameter's value, e.g. `call.param("RoleArn")`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// Decodes a recorded request if it is an STS call: a form body with `Action=`, signed
    /// for the `sts` service (or unsigned with STS's API version).
    pub fn from_recorded(entry: &serde_json::Value) -> Option<StsCall> {
        use base64::Engine as _;
        let body = entry["body"].as_str()?;
        let body = if entry["body_encoded"].as_bool() == Some(true) {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(body)
                .ok()?;
            String::from_utf8(bytes).ok()?
        } else {
            body.to_owned()
        };
        let params = parse_form(&body);
        let action = params.get("Action")?.clone();
        let authorization = entry["headers"].as_object().and_then(|headers| {
            headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
                .and_then(|(_, v)| v.as_str())
        });
        let is_sts = match authorization {
            Some(auth) => credential_scope_service(auth) == Some("sts"),
            None => params.get("Version").map(String::as_str) == Some("2011-06-15"),
        };
        if !is_sts {
            return None;
        }
        let mut params = params;
        params.remove("Action");
        params.remove("Version");
        Some(StsCall { action, params })
    }
}

/// The service of a SigV4 `Authorization` header's credential scope
/// (`Credential=AKID/DATE/REGION/SERVICE/aws4_request`).
fn credential_scope_service(authorization: &str) -> Option<&str> {
    let credential = authorization
        .split([' ', ','])
        .find_map(|part| part.strip_prefix("Credential="))?;
    let mut scope = credential.rsplit('/');
    let terminator = scope.next()?;
    (terminator == "aws4_request").then_some(())?;
    scope.next()
}

/// Parses an `application/x-www-form-urlencoded` body.
pub fn parse_form(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

/// Percent-decoding as in form bodies: `+` is a space.
pub fn percent_decode(text: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high << 4) | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the output of `env` (NUL-separated as from `env -0`, else one `NAME=value` per
/// line) into a map.
pub fn parse_env(output: &str) -> BTreeMap<String, String> {
    let separator = if output.contains('\0') { '\0' } else { '\n' };
    output
        .split(separator)
        .filter_map(|entry| entry.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// A minimal HTTP/1.0 GET against 127.0.0.1, returning the body of a 2xx answer.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    match http_request(port, "GET", path, &[], b"")? {
        (200..=299, body) => Some(body),
        _ => None,
    }
}

/// A minimal HTTP/1.0 request against 127.0.0.1: (status code, body).
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(request.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// Polls `ready` until it holds, panicking after `limit`.
#[track_caller]
pub fn wait_for(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}
