//! The hermetic environment every `vault` run gets: `env_clear()`, then a temp HOME, config
//! file and vault dir and a fixed set of variables, no controlling terminal, and a
//! transcript of everything printed so tests can prove no secret ever was.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};

use crate::keyring::SessionKeyring;
use crate::moto::Moto;
use crate::process::detach_from_terminal;

/// The repository root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned()
}

/// The `vault` binary under test: `VAULT_BIN`, else `target/debug/vault`.
pub fn vault_bin() -> PathBuf {
    built_binary("VAULT_BIN", "vault", "vault-exec")
}

/// The aws-sdk-rust probe (package `sdk-caller`): `VAULT_SDK_CALLER`, else
/// `target/debug/sdk-caller`.
pub fn sdk_caller() -> PathBuf {
    built_binary("VAULT_SDK_CALLER", "sdk-caller", "sdk-caller")
}

/// A binary of another workspace package: cargo builds only this package's own binaries for
/// its tests, so `cargo xtask test` builds these first and passes their paths in `var`.
fn built_binary(var: &str, name: &str, package: &str) -> PathBuf {
    let bin = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/debug").join(name));
    assert!(
        bin.exists(),
        "{} does not exist: run `cargo build -p {package}` first (cargo xtask test does)",
        bin.display()
    );
    bin
}

/// Where the Python venv is expected: `VAULT_TEST_VENV`, else `target/venv`.
pub(crate) fn venv_path() -> PathBuf {
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
        assert_has("stderr", &self.stderr, needle);
        self
    }

    /// stdout as JSON (`export --format json`, `list --json`).
    #[track_caller]
    pub fn stdout_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert_has("stdout", &self.stdout, needle);
        self
    }
}

#[track_caller]
fn assert_has(stream: &str, text: &str, needle: &str) {
    assert!(text.contains(needle), "{stream} lacks {needle:?}:\n{text}");
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
    /// Declared first: its holder stops before the temp dir goes.
    keyring: Option<SessionKeyring>,
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
            keyring: None,
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
    /// `vault` on the PATH of every later run (the shells under tmux find it there).
    pub fn put_vault_on_path(&mut self) -> &mut Self {
        let dir = vault_bin().parent().expect("a directory").to_owned();
        let path = self.get("PATH").cloned().unwrap_or_default();
        let mut dirs = vec![dir];
        dirs.extend(std::env::split_paths(&path));
        self.set(
            "PATH",
            std::env::join_paths(dirs).expect("no ':' in the paths"),
        )
    }

    pub fn get(&self, name: &str) -> Option<&OsString> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Whether `program` is on this environment's PATH; when not, a skip (a failure under
    /// `CI=true`), see [`crate::skip::require_program`].
    #[track_caller]
    pub fn require_program(&self, program: &str, package: &str) -> bool {
        let path = self.get("PATH").cloned().unwrap_or_default();
        crate::skip::require_program(&path, program, package)
    }

    /// Starts every later program (`vault` and any other) in a session keyring of this
    /// test's own (see [`crate::keyring`]). `false`, recorded as a skip, when there is no
    /// kernel keyring here.
    #[track_caller]
    pub fn use_own_session_keyring(&mut self) -> bool {
        let Some(ring) = SessionKeyring::start(self) else {
            return false;
        };
        let id = ring.id.clone();
        self.keyring = Some(ring);
        let inside = self.output(self.command("keyctl").args(["id", "@s"]));
        assert_eq!(
            inside.stdout.trim(),
            id,
            "a program did not join the test's session keyring: {inside:?}"
        );
        true
    }

    /// The test's own session keyring, once [`TestEnv::use_own_session_keyring`] made one.
    pub fn session_keyring(&self) -> Option<&SessionKeyring> {
        self.keyring.as_ref()
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
        let mut cmd = self.start(vault_bin().as_os_str());
        cmd.args(args);
        self.apply(&mut cmd);
        cmd
    }

    /// Any program with this environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = self.start(program.as_ref());
        self.apply(&mut cmd);
        cmd
    }

    /// `program`, in the test's own session keyring if it has one.
    fn start(&self, program: &std::ffi::OsStr) -> Command {
        match &self.keyring {
            Some(ring) => ring.command(program),
            None => Command::new(program),
        }
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

    /// `n` concurrent `vault export --format json PROFILE`, which must all succeed and hand
    /// out the same credentials (single flight): asserts both.
    #[track_caller]
    pub fn assert_exports_agree(&self, n: usize, profile: &str) {
        let runs = self.outputs_concurrently(
            (0..n).map(|_| self.vault(&["export", "--format", "json", profile])),
        );
        let mut ids: Vec<String> = runs
            .iter()
            .map(|run| run.success().stdout_json()["AccessKeyId"].to_string())
            .collect();
        ids.dedup();
        assert_eq!(ids.len(), 1, "different credentials: {ids:?}");
    }

    /// Starts every one of `commands` at once, waits for all, and records each (in order):
    /// the concurrent cold runs that single flight is tested with.
    pub fn outputs_concurrently(&self, commands: impl IntoIterator<Item = Command>) -> Vec<Run> {
        let children: Vec<_> = commands
            .into_iter()
            .map(|mut cmd| {
                cmd.stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("command starts")
            })
            .collect();
        let waiting: Vec<_> = children
            .into_iter()
            .map(|child| std::thread::spawn(move || child.wait_with_output().expect("waited")))
            .collect();
        waiting
            .into_iter()
            .map(|w| {
                let out = w.join().expect("the waiting thread ends");
                self.record(out.status, out.stdout, out.stderr)
            })
            .collect()
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

/// Every file under `dir`, recursively, appended to `out` as (path, bytes).
pub fn collect_files(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
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
