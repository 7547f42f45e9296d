//! The AWS Sign-In stand-in (`tests/signin_stand_in.py`) on 127.0.0.1: the refresh of `aws
//! login` console sessions (CreateOAuth2Token with a DPoP proof), which nothing emulates,
//! speaking aws-sdk-signin's wire format, checking the proof and rotating refresh tokens as
//! the service does, and handing out real moto credentials. It also does, for a test, what
//! `aws login` leaves behind: a session and its AWS CLI cache file ([`SigninStandIn::sign_in`]).

use std::fs;
use std::path::{Path, PathBuf};

use crate::env::TestEnv;
use crate::http::{http_get, request};
use crate::process::Guard;
use crate::sso::start_stand_in;

/// The stand-in on 127.0.0.1 and a free port; point `AWS_ENDPOINT_URL_SIGNIN` at
/// [`SigninStandIn::endpoint`].
#[derive(Debug)]
pub struct SigninStandIn {
    pub port: u16,
    pub endpoint: String,
    _server: Guard,
    state_file: PathBuf,
}

impl SigninStandIn {
    /// Starts the stand-in; credentials come from moto's STS at `moto_endpoint`.
    pub fn start(env: &TestEnv, moto_endpoint: &str) -> SigninStandIn {
        let (port, server, state_file) = start_stand_in(env, "signin_stand_in", moto_endpoint);
        SigninStandIn {
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            _server: server,
            state_file,
        }
    }

    /// Merges `settings` into the stand-in's control settings (`refuse_refresh`,
    /// `expires_in`).
    #[track_caller]
    pub fn control(&self, settings: serde_json::Value) {
        let reply = self.post("/_stand_in/control", &settings);
        assert_eq!(reply.status, 200, "the stand-in refused control settings");
    }

    /// What `aws login` leaves for `arn`: a new session (P-256 key, refresh token bound to
    /// it, moto credentials) written as the AWS CLI writes its cache file, 0600, into
    /// `cache_dir`, credentials already `expired` or not. Returns the file's path.
    #[track_caller]
    pub fn sign_in(&self, cache_dir: &Path, arn: &str, expired: bool) -> PathBuf {
        let reply = self.post(
            "/_stand_in/sign_in",
            &serde_json::json!({"arn": arn, "expired": expired}),
        );
        assert_eq!(reply.status, 200, "the stand-in's sign-in failed");
        let answer = reply.json();
        let path = cache_dir.join(answer["file_name"].as_str().expect("a file name"));
        fs::create_dir_all(cache_dir).unwrap();
        let contents = answer["contents"].as_str().expect("the file's contents");
        write_private(&path, contents.as_bytes());
        path
    }

    /// `{"counts": {operation: n}, "calls": [...]}`, from the stand-in or its state file.
    #[track_caller]
    pub fn state(&self) -> serde_json::Value {
        let text = http_get(self.port, "/_stand_in/state")
            .or_else(|| fs::read_to_string(&self.state_file).ok())
            .expect("the stand-in's state");
        serde_json::from_str(&text).expect("the stand-in's state is JSON")
    }

    /// How many `operation` requests ("CreateOAuth2Token") the stand-in received.
    #[track_caller]
    pub fn count(&self, operation: &str) -> usize {
        self.state()["counts"][operation].as_u64().unwrap_or(0) as usize
    }

    /// The CreateOAuth2Token calls, in order (what was checked; nothing secret).
    pub fn token_calls(&self) -> Vec<serde_json::Value> {
        self.state()["calls"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c["operation"] == "CreateOAuth2Token")
            .collect()
    }

    /// Every refresh token and DPoP key (its PEM body, line by line) handed out: what must
    /// never appear in output or the vault's files (the credentials are not among them:
    /// `export` prints those).
    #[track_caller]
    pub fn issued_secrets(&self) -> Vec<String> {
        let text = http_get(self.port, "/_stand_in/issued").expect("the stand-in answers");
        let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        value["secrets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }

    fn post(&self, path: &str, body: &serde_json::Value) -> crate::http::Reply {
        request(
            self.port,
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .expect("the stand-in answers")
    }
}

fn write_private(path: &Path, bytes: &[u8]) {
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .unwrap();
        f.write_all(bytes).unwrap();
    }
    #[cfg(not(unix))]
    fs::write(path, bytes).unwrap();
}
