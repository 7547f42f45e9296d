//! The AWS Sign-In stand-in (`tests/signin_stand_in.py`) on 127.0.0.1, which nothing
//! emulates: the browser sign-in of `aws login` (GET /v1/authorize, the cross-device
//! confirmation page, the authorization code's exchange with PKCE and a DPoP proof) and the
//! refresh of its console sessions, in the AWS CLI v2's and aws-sdk-signin's wire format,
//! checking what the service checks, rotating refresh tokens and handing out real moto
//! credentials. It also does, for a test, what `aws login` leaves behind: a session and its
//! AWS CLI cache file ([`SigninStandIn::sign_in`]), and what the person on another device
//! does for `--remote` ([`SigninStandIn::remote_code`]).

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

    /// Merges `settings` into the stand-in's control settings: `refuse_refresh` (a count of
    /// refreshes refused, the token revoked), `fail_refresh` (a count of refreshes answered
    /// 500, nothing spent), `expires_in` (seconds, of every answer's
    /// credentials), `sign_in_arn` (who signs in at /v1/authorize; default
    /// `arn:aws:iam::123456789012:user/alice`), `deny_sign_in` (the person denies: /v1/authorize
    /// redirects with `error=access_denied`). See the docstring of `tests/signin_stand_in.py`.
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

    /// What the person on another device does in a `--remote` sign-in: opens
    /// `authorize_url` (the URL vault printed; a 302, not followed, as no loopback listener
    /// is involved), then the confirmation page it redirects to, and reads the verification
    /// code off it (`<pre id="verification-code">`), to type into vault. Panics on a refused
    /// or denied sign-in, saying why.
    #[track_caller]
    pub fn remote_code(&self, authorize_url: &str) -> String {
        let path = self.local_path(authorize_url);
        let reply = request(self.port, "GET", &path, &[], b"").expect("the stand-in answers");
        assert_eq!(
            reply.status, 302,
            "the stand-in refused the authorize URL: {}",
            reply.body
        );
        let location = reply.header("Location").expect("a redirect's Location");
        let page = request(self.port, "GET", &self.local_path(location), &[], b"")
            .expect("the stand-in answers");
        assert_eq!(page.status, 200, "the confirmation page: {}", page.body);
        let start = r#"<pre id="verification-code">"#;
        page.body
            .split_once(start)
            .and_then(|(_, rest)| rest.split_once("</pre>"))
            .map(|(code, _)| code.trim().to_owned())
            .unwrap_or_else(|| panic!("no verification code on the page: {}", page.body))
    }

    /// `url`'s path and query, after checking it is this stand-in's.
    #[track_caller]
    fn local_path(&self, url: &str) -> String {
        let rest = url
            .strip_prefix(&self.endpoint)
            .unwrap_or_else(|| panic!("not the stand-in's URL: {url}"));
        assert!(rest.starts_with('/'), "not the stand-in's URL: {url}");
        rest.to_owned()
    }

    /// `{"counts": {operation: n}, "calls": [...]}`, from the stand-in or its state file.
    #[track_caller]
    pub fn state(&self) -> serde_json::Value {
        let text = http_get(self.port, "/_stand_in/state")
            .or_else(|| fs::read_to_string(&self.state_file).ok())
            .expect("the stand-in's state");
        serde_json::from_str(&text).expect("the stand-in's state is JSON")
    }

    /// How many `operation` requests ("Authorize", "Confirmation", "CreateOAuth2Token",
    /// "SignIn") the stand-in received, refused ones included.
    #[track_caller]
    pub fn count(&self, operation: &str) -> usize {
        self.state()["counts"][operation].as_u64().unwrap_or(0) as usize
    }

    /// The CreateOAuth2Token calls, in order (what was checked; nothing secret).
    pub fn token_calls(&self) -> Vec<serde_json::Value> {
        self.calls_of("CreateOAuth2Token")
    }

    /// The recorded calls of `operation` ("Authorize", "Confirmation", "CreateOAuth2Token",
    /// "SignIn"), in order: what was sent and checked (`grantType`, `clientId`,
    /// `redirectUri`, `dpop`, `pkce`, ...), the `status`, and a refusal's `error` and
    /// `reason`; nothing secret.
    #[track_caller]
    pub fn calls_of(&self, operation: &str) -> Vec<serde_json::Value> {
        self.state()["calls"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c["operation"] == operation)
            .collect()
    }

    /// Every refresh token, authorization code, PKCE code verifier and DPoP key (its PEM
    /// body, line by line) handed out or seen: what must never appear in output or the
    /// vault's files (the credentials are not among them: `export` prints those).
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

    /// No secret the stand-in handed out or saw ([`SigninStandIn::issued_secrets`]), nor
    /// any of `extra`, in anything `w` printed or in the vault's files.
    #[track_caller]
    pub fn assert_never_shown(&self, w: &crate::World, extra: &[&str]) {
        let secrets = self.issued_secrets();
        assert!(!secrets.is_empty());
        let mut all: Vec<&str> = secrets.iter().map(String::as_str).collect();
        all.extend_from_slice(extra);
        w.assert_no_secrets(&all);
        for (path, bytes) in w.env.vault_files() {
            let text = String::from_utf8_lossy(&bytes);
            for secret in &all {
                assert!(
                    !text.contains(secret),
                    "{} holds a sign-in secret in plaintext: {}…",
                    path.display(),
                    &secret[..6.min(secret.len())]
                );
            }
        }
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
