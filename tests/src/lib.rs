//! The test rig: runs the real `vault` binary hermetically, and starts the real components it
//! talks to (a private D-Bus session bus with gnome-keyring's Secret Service; moto_server as
//! STS/IAM). Everything binds 127.0.0.1 or lives in a temp dir, and every process started
//! here is stopped by its own PID when its guard drops.
//!
//! `cargo xtask test` installs the components and sets `VAULT_TEST_VENV` (the Python venv with
//! moto, awscli, boto3) and `VAULT_BIN` (the binary under test).

#![allow(clippy::print_stderr)]

use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// The Python venv with moto_server, aws and boto3.
pub fn venv() -> PathBuf {
    let venv = std::env::var_os("VAULT_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/venv"));
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
        let path = std::env::var_os("PATH").unwrap_or_default();
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
/// run by an SDK; a test that wants a terminal uses its own.
#[cfg(unix)]
fn detach_from_terminal(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
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
    // SAFETY: kill(2) on a PID we started and have not reaped yet.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
}

#[cfg(not(unix))]
fn stop_pid(_: u32) {}

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
            .args(["--foreground", "--unlock", "--components=secrets"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut keyring = keyring
            .spawn()
            .expect("gnome-keyring-daemon starts (apt-get install gnome-keyring)");
        {
            // The login keyring's password, on stdin, then EOF.
            let mut stdin = keyring.stdin.take().unwrap();
            stdin.write_all(b"vault-test-keyring").unwrap();
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
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_ENABLE_RECORDING", "True")
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

    /// The requests moto recorded, as JSON values (one per request).
    pub fn recorded(&self) -> Vec<serde_json::Value> {
        let body = http_get(self.port, "/moto-api/recorder/download-recording").unwrap_or_default();
        body.lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// A minimal HTTP/1.0 GET against 127.0.0.1, returning the body of a 2xx answer.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let ok = head.split_whitespace().nth(1)?.starts_with('2');
    ok.then(|| body.to_owned())
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
