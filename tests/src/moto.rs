//! moto_server as STS and IAM on 127.0.0.1, with request recording on: the tests read back
//! which STS calls vault made ([`StsCall`]) instead of trusting vault's own account of it.
//! Also IAM seeding through the venv's AWS CLI (users, keys, roles) and moto's auth switch.

use std::collections::BTreeMap;
use std::fs;
use std::time::{Duration, Instant};

use crate::env::{TestEnv, venv};
use crate::http::{http_get, http_request, parse_form};
use crate::process::{Guard, free_port};

/// moto's account: every ARN it hands out is in it.
pub const ACCOUNT: &str = "123456789012";

/// Asserts that `arn` (what STS's GetCallerIdentity says) is a session of moto's role `role`.
#[track_caller]
pub fn assert_assumed(arn: &str, role: &str) {
    let prefix = format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/");
    assert!(arn.starts_with(&prefix), "{arn:?} is not {prefix}…");
}

/// moto_server on 127.0.0.1 and a free port, with request recording on.
#[derive(Debug)]
pub struct Moto {
    pub port: u16,
    pub endpoint: String,
    /// The network namespace moto runs in (see [`Moto::start_in`]); `None`: the test's own.
    netns: Option<String>,
    _server: Guard,
}

impl Moto {
    pub fn start(env: &TestEnv) -> Moto {
        Moto::start_on(env, None, "127.0.0.1")
    }

    /// moto inside network namespace `netns` (one the test made, see `netns`), on `host`
    /// there, so clients in the test's other namespaces reach it. The rig's own requests
    /// (seeding, the recording) run inside it too.
    pub fn start_in(env: &TestEnv, netns: &str, host: &str) -> Moto {
        Moto::start_on(env, Some(netns), host)
    }

    fn start_on(env: &TestEnv, netns: Option<&str>, host: &str) -> Moto {
        let venv = venv();
        for _attempt in 0..5 {
            let port = free_port();
            let log = fs::File::create(env.dir.path().join(format!("moto-{port}.log"))).unwrap();
            let mut cmd = in_netns(env, netns, venv.join("bin/moto_server").as_os_str());
            // moto records into ./moto_recording unless told otherwise: one file per server.
            cmd.args(["-H", host, "-p", &port.to_string()])
                .env("MOTO_ENABLE_RECORDING", "True")
                .env(
                    "MOTO_RECORDER_FILEPATH",
                    env.dir.path().join(format!("moto-{port}.recording")),
                )
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            let server = Guard::new("moto_server", cmd.spawn().expect("moto_server starts"));
            let endpoint = format!("http://{host}:{port}");
            let mut moto = Moto {
                port,
                endpoint,
                netns: netns.map(str::to_owned),
                _server: server,
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if moto.get("/moto-api/").is_some() {
                    return moto;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            // Lost the port to someone else, or slow start: try another.
            moto.netns = None;
        }
        panic!("moto_server did not start");
    }

    /// The PID of the moto_server process.
    pub fn pid(&self) -> u32 {
        self._server.pid()
    }

    /// A GET of moto's own API: from here, or from inside its namespace.
    fn get(&self, path: &str) -> Option<String> {
        let Some(netns) = &self.netns else {
            return http_get(self.port, path);
        };
        let url = format!("{}{path}", self.endpoint);
        let out = std::process::Command::new(crate::netns::ip_program())
            .args(["netns", "exec", netns])
            .arg(venv().join("bin/python3"))
            .args([
                "-c",
                "import sys,urllib.request;sys.stdout.write(urllib.request.urlopen(sys.argv[1],timeout=5).read().decode())",
                &url,
            ])
            .env_clear()
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The requests moto recorded, as JSON values (one per request).
    pub fn recorded(&self) -> Vec<serde_json::Value> {
        let body = self
            .get("/moto-api/recorder/download-recording")
            .unwrap_or_default();
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

    /// The access key ids that signed moto's STS calls of `action`, in order (unsigned
    /// calls left out).
    pub fn signers(&self, action: &str) -> Vec<String> {
        self.recorded()
            .iter()
            .filter(|entry| StsCall::from_recorded(entry).is_some_and(|c| c.action == action))
            .filter_map(|entry| {
                let headers = entry["headers"].as_object()?;
                let auth = headers
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
                    .and_then(|(_, v)| v.as_str())?;
                let credential = auth
                    .split([' ', ','])
                    .find_map(|part| part.strip_prefix("Credential="))?;
                credential.split('/').next().map(str::to_owned)
            })
            .collect()
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
        let out = in_netns(
            env,
            self.netns.as_deref(),
            venv().join("bin/aws").as_os_str(),
        )
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

/// `program` with the test's environment, inside `netns` when there is one.
fn in_netns(
    env: &TestEnv,
    netns: Option<&str>,
    program: &std::ffi::OsStr,
) -> std::process::Command {
    match netns {
        None => env.command(program),
        Some(netns) => {
            let mut cmd = env.command(crate::netns::ip_program());
            cmd.args(["netns", "exec", netns]).arg(program);
            cmd
        }
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
