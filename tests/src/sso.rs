//! The SSO stand-in (`tests/sso_stand_in.py`) on 127.0.0.1: AWS SSO OIDC and the SSO portal,
//! which no emulator implements, speaking the SDKs' wire format and handing out real moto
//! credentials. Tests steer it through its control settings and read back which calls vault
//! made ([`SsoStandIn::state`]) instead of trusting vault's own account of it. Also a
//! `$BROWSER` for tests ([`browser_script`]) that does what a user's browser would.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::env::{TestEnv, venv};
use crate::http::{http_get, request};
use crate::process::{Guard, free_port};

/// The stand-in, started by the venv's python on 127.0.0.1 and a free port. Point
/// `AWS_ENDPOINT_URL_SSO_OIDC` and `AWS_ENDPOINT_URL_SSO` both at [`SsoStandIn::endpoint`].
#[derive(Debug)]
pub struct SsoStandIn {
    pub port: u16,
    pub endpoint: String,
    _server: Guard,
    state_file: PathBuf,
}

impl SsoStandIn {
    /// Starts the stand-in; role credentials come from moto's STS at `moto_endpoint`.
    pub fn start(env: &TestEnv, moto_endpoint: &str) -> SsoStandIn {
        let (port, server, state_file) = start_stand_in(env, "sso_stand_in", moto_endpoint);
        SsoStandIn {
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            _server: server,
            state_file,
        }
    }

    /// The PID of the stand-in's python process.
    pub fn pid(&self) -> u32 {
        self._server.pid()
    }

    /// Merges `settings` (a JSON object) into the stand-in's control settings, e.g.
    /// `json!({"access_token_ttl": 5})`; see the docstring of `tests/sso_stand_in.py`.
    #[track_caller]
    pub fn control(&self, settings: serde_json::Value) {
        assert!(settings.is_object(), "control settings are a JSON object");
        let reply = request(
            self.port,
            "POST",
            "/_stand_in/control",
            &[("Content-Type", "application/json")],
            settings.to_string().as_bytes(),
        );
        assert!(
            matches!(&reply, Ok(r) if r.status == 200),
            "the stand-in refused control settings: {reply:?}"
        );
    }

    /// `{"counts": {operation: n}, "calls": [{"operation", ...}]}`. From the state file when
    /// the server no longer answers (a test stopped it), which it rewrites after every
    /// request.
    #[track_caller]
    pub fn state(&self) -> serde_json::Value {
        let text = http_get(self.port, "/_stand_in/state")
            .or_else(|| fs::read_to_string(&self.state_file).ok())
            .expect("the stand-in's state, from it or its state file");
        serde_json::from_str(&text).expect("the stand-in's state is JSON")
    }

    /// How many `operation` requests (e.g. "CreateToken", "CreateToken.refresh_token",
    /// "GetRoleCredentials") the stand-in received, failed ones included.
    #[track_caller]
    pub fn count(&self, operation: &str) -> usize {
        self.state()["counts"][operation]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
    }
}

impl SsoStandIn {
    /// Every access token, refresh token and client secret the stand-in handed out: what
    /// must never appear in output, logs, plaintext files or a child's environment.
    #[track_caller]
    pub fn issued_secrets(&self) -> Vec<String> {
        let text = http_get(self.port, "/_stand_in/issued").expect("the stand-in answers");
        let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        ["access_tokens", "refresh_tokens", "client_secrets"]
            .iter()
            .flat_map(|k| value[k].as_array().cloned().unwrap_or_default())
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }
}

impl SsoStandIn {
    /// What `aws sso login` of the AWS CLI v2 does (the venv's CLI is v1, which cannot),
    /// against this stand-in: `tests/aws_cli_sso_login.py` registers, approves as a browser,
    /// and leaves the token and registration files in `~/.aws/sso/cache` under `env`'s home,
    /// as botocore writes them. `args` are its options after the endpoint and cache
    /// directory (`--session`, `--start-url`, `--region`, `--use-device-code`, `--expired`,
    /// ...). Returns the client id it registered.
    #[track_caller]
    pub fn aws_cli_sso_login(&self, env: &TestEnv, args: &[&str]) -> String {
        let python = venv().join("bin/python");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("aws_cli_sso_login.py");
        let cache_dir = env.home().join(".aws/sso/cache");
        let mut cmd = env.command(&python);
        cmd.arg(&script)
            .args(["--endpoint", &self.endpoint, "--cache-dir"])
            .arg(&cache_dir)
            .args(args);
        let run = env.output(&mut cmd);
        run.success();
        run.stdout.trim().to_owned()
    }
}

/// Starts `tests/NAME.py`, a stand-in of a service no emulator implements, with the venv's
/// python on 127.0.0.1 and a free port (another one if that one is lost), its answers' moto
/// at `moto_endpoint`: the port, its guard and its state file (`--state-file`, rewritten
/// after every request). Shared by the SSO and Sign-In stand-ins.
pub(crate) fn start_stand_in(
    env: &TestEnv,
    name: &'static str,
    moto_endpoint: &str,
) -> (u16, Guard, PathBuf) {
    let python = venv().join("bin/python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("{name}.py"));
    let mut last_log = String::new();
    for _attempt in 0..5 {
        let port = free_port();
        let log_path = env.dir.path().join(format!("{name}-{port}.log"));
        let state_file = env.dir.path().join(format!("{name}-{port}.state.json"));
        let log = fs::File::create(&log_path).unwrap();
        let mut cmd = env.command(&python);
        cmd.arg(&script)
            .args(["--port", &port.to_string(), "--moto", moto_endpoint])
            .arg("--state-file")
            .arg(&state_file)
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd.spawn().expect("the venv's python starts");
        if let Some(server) = wait_until_ready(child, port, name) {
            return (port, server, state_file);
        }
        // Lost the port to someone else, or slow start: try another.
        last_log = fs::read_to_string(&log_path).unwrap_or_default();
    }
    panic!("{name}.py did not start; its last log:\n{last_log}");
}

/// Waits until the stand-in at `port` answers, or until it exits or 30 seconds pass. An
/// exited child is not handed to a [`Guard`]: it is reaped already, and its PID may belong
/// to someone else by now.
fn wait_until_ready(mut child: Child, port: u16, name: &'static str) -> Option<Guard> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if http_get(port, "/_stand_in/state").is_some() {
            return Some(Guard::new(name, child));
        }
        if matches!(child.try_wait(), Ok(Some(_))) {
            return None;
        }
        if Instant::now() >= deadline {
            drop(Guard::new(name, child));
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The browser: GETs the URL as a browser would, following redirects (to the loopback
/// callback, in the PKCE flow), with no proxy; exits 0 on a 2xx answer. It prints nothing
/// that holds the URL. No single quotes: it goes inside a shell's single quotes.
const BROWSER_PROGRAM: &str = r#"
import sys, urllib.error, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(sys.argv[1], timeout=60) as answer:
        status = answer.status
except urllib.error.HTTPError as e:
    status = e.code
except Exception as e:
    sys.stderr.write("test browser: " + type(e).__name__ + "\n")
    sys.exit(2)
if not 200 <= status < 300:
    sys.stderr.write("test browser: HTTP " + str(status) + "\n")
    sys.exit(1)
"#;

/// A `$BROWSER` for tests: a script that appends one line per call (its URL) to
/// `calls_file` and follows the URL (and its redirects, to the loopback callback) as a
/// browser would, with the venv's python urllib. Returns the script path (made
/// executable, in `env.dir`).
pub fn browser_script(env: &TestEnv, calls_file: &Path) -> PathBuf {
    let python = venv().join("bin/python");
    let script = env.dir.path().join("sso-browser");
    let text = format!(
        "#!/bin/sh\n\
         # A browser for the tests: notes the URL it was given, then visits it.\n\
         printf '%s\\n' \"$1\" >> {calls}\n\
         exec {python} -c '{BROWSER_PROGRAM}' \"$1\"\n",
        calls = shell_quote(calls_file),
        python = shell_quote(&python),
    );
    fs::write(&script, text).unwrap();
    make_executable(&script);
    script
}

/// `path` as one shell word, in single quotes.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[cfg(unix)]
fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

#[cfg(not(unix))]
fn make_executable(_: &Path) {}
