//! Every environment variable the binary reads, named once with what it does, read once at
//! start into [`Settings`] and passed down from there. Nothing else in `crates/exec` reads
//! the environment (the tidy test holds the tree to that), so a variable's name, meaning and
//! the rule for a bad value live in one place: a value that does not parse is an error that
//! names the variable (exit 2, like a bad flag), whichever command runs.
//!
//! A leaf: it uses nothing of this crate.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use vault_sts::aws::Timeouts;
use vault_sts::duration;
use vault_sts::plan::Ttls;

/// A variable vault reads: its name, what it does (for `vault doctor` and the docs), and
/// whether its value is never shown (secrets, and the key id beside them).
#[derive(Debug)]
pub struct Variable {
    pub name: &'static str,
    #[allow(
        dead_code,
        reason = "the documentation line; docs/config.md carries it to users"
    )]
    pub doc: &'static str,
    pub secret: bool,
}

macro_rules! variables {
    ($($id:ident = $name:literal, $secret:literal, $doc:literal;)*) => {
        $(
            #[doc = $doc]
            #[allow(dead_code, reason = "every variable is named here, also those only the sts crate or clap reads")]
            pub const $id: &str = $name;
        )*
        /// Every variable vault reads, in the order `vault doctor` lists them.
        pub const VARIABLES: &[Variable] = &[$(Variable { name: $name, doc: $doc, secret: $secret }),*];
    };
}

variables! {
    PROFILE = "AWS_PROFILE", false, "the profile when a command names none";
    REGION = "AWS_REGION", false, "the region (`--region` wins)";
    DEFAULT_REGION = "AWS_DEFAULT_REGION", false, "the region when AWS_REGION is not set";
    CONFIG_FILE = "AWS_CONFIG_FILE", false, "the AWS config file (default ~/.aws/config)";
    SHARED_CREDENTIALS_FILE = "AWS_SHARED_CREDENTIALS_FILE", false, "the shared credentials file `vault import` reads (default ~/.aws/credentials)";
    ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID", true, "a key pair for `vault add --env`, and credential_source = Environment";
    SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY", true, "the secret of that key pair";
    SESSION_TOKEN = "AWS_SESSION_TOKEN", true, "the session token of credential_source = Environment";
    ENDPOINT_URL = "AWS_ENDPOINT_URL", false, "every AWS service's endpoint";
    ENDPOINT_URL_STS = "AWS_ENDPOINT_URL_STS", false, "STS's endpoint";
    ENDPOINT_URL_IAM = "AWS_ENDPOINT_URL_IAM", false, "IAM's endpoint";
    ENDPOINT_URL_SSO = "AWS_ENDPOINT_URL_SSO", false, "the IAM Identity Center portal's endpoint";
    ENDPOINT_URL_SSO_OIDC = "AWS_ENDPOINT_URL_SSO_OIDC", false, "the IAM Identity Center OIDC endpoint";
    ENDPOINT_URL_SIGNIN = "AWS_ENDPOINT_URL_SIGNIN", false, "AWS Sign-In's endpoint (console sessions' refresh)";
    LOGIN_CACHE_DIRECTORY = "AWS_LOGIN_CACHE_DIRECTORY", false, "the AWS CLI's cache of `aws login` console sessions (default ~/.aws/login/cache)";
    MFA_SERIAL = "AWS_MFA_SERIAL", false, "the requested profile's MFA device";
    ROLE_ARN = "AWS_ROLE_ARN", false, "the requested profile's role";
    MIN_TTL = "AWS_MIN_TTL", false, "a cached session is reused while more than this is left (default 15m)";
    ASSUME_ROLE_TTL = "AWS_ASSUME_ROLE_TTL", false, "AssumeRole's session length (default 1h)";
    SESSION_TOKEN_TTL = "AWS_SESSION_TOKEN_TTL", false, "GetSessionToken's length for profiles without a role (default 1h)";
    CHAINED_SESSION_TOKEN_TTL = "AWS_CHAINED_SESSION_TOKEN_TTL", false, "the MFA session used to assume roles (default 8h)";
    MAX_ATTEMPTS = "AWS_MAX_ATTEMPTS", false, "attempts per AWS call (default 3)";
    BACKEND = "AWS_VAULT_BACKEND", false, "the backend of a new vault (`--backend`)";
    FILE_DIR = "AWS_VAULT_FILE_DIR", false, "the vault directory (`--file-dir`)";
    FILE_PASSPHRASE = "AWS_VAULT_FILE_PASSPHRASE", true, "the passphrase of a `file` vault, for scripts";
    PROMPT = "AWS_VAULT_PROMPT", false, "how to ask for codes and passphrases (`--prompt`)";
    UNLOCK_TIMEOUT = "AWS_VAULT_UNLOCK_TIMEOUT", false, "how long an unlocked vault stays unlocked without use (default 15m; 0: never unlocked)";
    STS_TIMEOUT = "AWS_VAULT_STS_TIMEOUT", false, "the most one AWS call may take, every retry included (default 30s)";
    HELPER_TIMEOUT = "AWS_VAULT_HELPER_TIMEOUT", false, "how long mfa_process, credential_process and ykman may run (default 2m)";
    MFA_ASK_AHEAD = "AWS_VAULT_MFA_ASK_AHEAD", false, "how long before the MFA session ends --server asks for the next code (default 1h; 0: off)";
    SSO_CLI_CACHE = "AWS_VAULT_SSO_CLI_CACHE", false, "true: SSO sign-ins also write the AWS CLI's token cache";
    SSO_USE_DEVICE_CODE = "AWS_VAULT_SSO_USE_DEVICE_CODE", false, "true: every SSO sign-in uses a device code (as `vault sso login --use-device-code`)";
    SSO_NO_BROWSER = "AWS_VAULT_SSO_NO_BROWSER", false, "true: every SSO sign-in shows its page without opening a browser (as `--no-browser`)";
    DISABLE_HELP_MESSAGE = "AWS_VAULT_DISABLE_HELP_MESSAGE", false, "set: `vault exec` without a command says nothing about its subshell";
    IN_VAULT = "AWS_VAULT", false, "set by vault in its child: the profile it runs as";
    FEDERATION_ENDPOINT = "VAULT_FEDERATION_ENDPOINT", false, "the console federation endpoint `vault login` calls (tests)";
    BROWSER = "BROWSER", false, "the browser for sign-ins and `vault login`";
}

/// Read but not listed by `vault doctor`: they say where vault runs, not what it does.
const SSH_CONNECTION: &str = "SSH_CONNECTION";
const SSH_TTY: &str = "SSH_TTY";
const DISPLAY: &str = "DISPLAY";
const WAYLAND_DISPLAY: &str = "WAYLAND_DISPLAY";
const XDG_RUNTIME_DIR: &str = "XDG_RUNTIME_DIR";
const PATH: &str = "PATH";
#[cfg(windows)]
const USER_SHELL: &str = "COMSPEC";
#[cfg(not(windows))]
const USER_SHELL: &str = "SHELL";

/// Variables read for the AWS SDKs' meaning (endpoints, overrides, credential sources):
/// kept as found and looked up by name; never the secret ones.
const AWS_PREFIX: &str = "AWS_";

const DEFAULT_UNLOCK_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const DEFAULT_HELPER_TIMEOUT: Duration = Duration::from_secs(120);
const DEFAULT_MFA_ASK_AHEAD: Duration = Duration::from_secs(3600);

/// A variable whose value does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {reason}")]
pub struct BadSetting {
    pub name: &'static str,
    pub value: String,
    pub reason: String,
    /// What a good value looks like.
    pub example: &'static str,
}

/// The environment as vault uses it, read once.
#[derive(Debug)]
pub struct Settings {
    /// `AWS_CONFIG_FILE`.
    pub config_file: Option<String>,
    /// `AWS_VAULT_FILE_DIR` (clap reads it for `--file-dir`; completion, before clap, here).
    pub file_dir: Option<PathBuf>,
    /// `AWS_SHARED_CREDENTIALS_FILE`.
    pub shared_credentials_file: Option<String>,
    /// `AWS_VAULT_FILE_PASSPHRASE`, as set (an empty one is kept: it is a mistake to name).
    pub passphrase: Option<SecretString>,
    /// `None`: unlocking is off (`0`).
    pub unlock_timeout: Option<Duration>,
    /// `AWS_VAULT_STS_TIMEOUT` and `AWS_MAX_ATTEMPTS` over the defaults.
    pub timeouts: Timeouts,
    pub helper_timeout: Duration,
    /// `None`: off (`0`).
    pub mfa_ask_ahead: Option<Duration>,
    /// The session lengths and minimum TTL.
    pub ttls: Ttls,
    pub sso_cli_cache: bool,
    /// `AWS_LOGIN_CACHE_DIRECTORY`: where `aws login` keeps console sessions.
    pub login_cache_dir: Option<PathBuf>,
    pub sso_use_device_code: bool,
    pub sso_no_browser: bool,
    /// `AWS_PROFILE`.
    pub profile: Option<String>,
    /// `AWS_VAULT`: we run inside `vault exec` for this profile.
    pub in_vault: Option<String>,
    pub help_message: bool,
    pub federation_endpoint: Option<String>,
    pub browser: Option<String>,
    /// Over SSH: a browser here cannot reach the person.
    pub remote: bool,
    /// An X11 or Wayland display.
    pub display: bool,
    pub runtime_dir: Option<PathBuf>,
    pub path: Option<OsString>,
    /// `$SHELL` (`%COMSPEC%` on Windows).
    pub user_shell: Option<OsString>,
    /// The secret variables that are set (their values are not kept).
    secrets_set: Vec<&'static str>,
    /// Every non-empty `AWS_*` variable that is not a secret, for the `sts` crate's lookups.
    aws: BTreeMap<String, String>,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Settings, BadSetting> {
        Settings::from_vars(std::env::vars_os())
    }

    /// The settings of a given environment (tests, and [`Settings::from_env`]).
    pub fn from_vars(
        vars: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<Settings, BadSetting> {
        let mut text = BTreeMap::new();
        let mut raw = BTreeMap::new();
        let mut passphrase = None;
        let mut secrets_set = Vec::new();
        for (name, value) in vars {
            let Ok(name) = name.into_string() else {
                continue;
            };
            if name == FILE_PASSPHRASE {
                passphrase = Some(SecretString::from(value.to_string_lossy().into_owned()));
                continue;
            }
            if let Some(secret) = NEVER_KEPT.iter().find(|s| **s == name) {
                if !value.is_empty() {
                    secrets_set.push(*secret);
                }
                continue;
            }
            if value.is_empty() {
                continue;
            }
            match value.into_string() {
                Ok(value) => {
                    text.insert(name, value);
                }
                Err(value) => {
                    raw.insert(name, value);
                }
            }
        }
        let get = |name: &str| text.get(name).cloned();
        let os = |name: &str| {
            raw.get(name)
                .cloned()
                .or_else(|| text.get(name).map(OsString::from))
        };
        let ttls = Ttls::from_env(get).map_err(|e| BadSetting {
            name: match e.origin {
                vault_sts::origin::Origin::Env(name) => name,
                _ => MIN_TTL,
            },
            value: e.value.clone(),
            reason: e.reason.to_string(),
            example: "durations look like 1h, 90m or 3600s",
        })?;
        let mut timeouts = Timeouts::DEFAULT;
        if let Some(d) = positive_duration(&get, STS_TIMEOUT, "durations look like 10s, 1m or 90s")?
        {
            timeouts = timeouts.within(d);
        }
        if let Some(text) = get(MAX_ATTEMPTS) {
            timeouts.attempts = text
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| BadSetting {
                    name: MAX_ATTEMPTS,
                    reason: format!("{text:?} is not a positive number"),
                    value: text,
                    example: "a whole number such as 3",
                })?;
        }
        Ok(Settings {
            config_file: get(CONFIG_FILE),
            file_dir: os(FILE_DIR).map(PathBuf::from),
            shared_credentials_file: get(SHARED_CREDENTIALS_FILE),
            passphrase,
            unlock_timeout: off_or(
                any_duration(
                    &get,
                    UNLOCK_TIMEOUT,
                    "15m, 1h or 900s; 0 turns unlocking off",
                )?,
                DEFAULT_UNLOCK_TIMEOUT,
            ),
            timeouts,
            helper_timeout: positive_duration(
                &get,
                HELPER_TIMEOUT,
                "durations look like 30s, 2m or 5m",
            )?
            .unwrap_or(DEFAULT_HELPER_TIMEOUT),
            mfa_ask_ahead: off_or(
                any_duration(
                    &get,
                    MFA_ASK_AHEAD,
                    "durations look like 1h, 90m or 0 (off)",
                )?,
                DEFAULT_MFA_ASK_AHEAD,
            ),
            ttls,
            sso_cli_cache: get(SSO_CLI_CACHE).is_some_and(|v| truthy(&v)),
            login_cache_dir: os(LOGIN_CACHE_DIRECTORY).map(PathBuf::from),
            sso_use_device_code: get(SSO_USE_DEVICE_CODE).is_some_and(|v| truthy(&v)),
            sso_no_browser: get(SSO_NO_BROWSER).is_some_and(|v| truthy(&v)),
            profile: get(PROFILE),
            in_vault: get(IN_VAULT),
            help_message: get(DISABLE_HELP_MESSAGE).is_none(),
            federation_endpoint: get(FEDERATION_ENDPOINT),
            browser: get(BROWSER),
            remote: get(SSH_CONNECTION).is_some() || get(SSH_TTY).is_some(),
            display: os(DISPLAY).is_some() || os(WAYLAND_DISPLAY).is_some(),
            runtime_dir: os(XDG_RUNTIME_DIR).map(PathBuf::from),
            path: os(PATH),
            user_shell: os(USER_SHELL),
            secrets_set,
            aws: text
                .into_iter()
                .filter(|(name, _)| name.starts_with(AWS_PREFIX))
                .collect(),
        })
    }

    /// A non-empty `AWS_*` variable (not a secret one), as the `sts` crate looks them up.
    pub fn aws_var(&self, name: &str) -> Option<String> {
        self.aws.get(name).cloned()
    }

    /// The region the environment names: `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub fn region(&self) -> Option<String> {
        self.aws_var(REGION)
            .or_else(|| self.aws_var(DEFAULT_REGION))
    }

    /// Whether `name` is set to a non-empty value (secret ones included, never their value).
    pub fn is_set(&self, name: &str) -> bool {
        match name {
            FILE_PASSPHRASE => self
                .passphrase
                .as_ref()
                .is_some_and(|p| !p.expose_secret().is_empty()),
            _ => {
                self.secrets_set.contains(&name)
                    || self.aws.contains_key(name)
                    || self.named(name).is_some()
            }
        }
    }

    /// The value of a listed variable that is not a secret.
    pub fn value(&self, name: &str) -> Option<String> {
        if VARIABLES.iter().any(|v| v.secret && v.name == name) {
            return None;
        }
        self.aws_var(name).or_else(|| self.named(name))
    }

    fn named(&self, name: &str) -> Option<String> {
        match name {
            BROWSER => self.browser.clone(),
            FEDERATION_ENDPOINT => self.federation_endpoint.clone(),
            _ => None,
        }
    }
}

impl Settings {
    /// The config file's path: `AWS_CONFIG_FILE`, else `~/.aws/config`.
    pub fn config_path(&self) -> Result<PathBuf, vault_sts::config::ConfigError> {
        vault_sts::config::config_path(self.config_file.as_deref())
    }
}

/// The vault directory: the one named (`--file-dir`, `AWS_VAULT_FILE_DIR`), else the
/// platform's default.
pub fn vault_dir(named: Option<PathBuf>) -> Option<PathBuf> {
    named.or_else(vault_store::Vault::default_dir)
}

/// `vault add --env`: the key pair from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`,
/// read only when asked for, straight into secret holders. `Err` names the one missing.
pub fn key_pair() -> Result<(SecretString, SecretString), &'static str> {
    let get = |name: &'static str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(SecretString::from)
            .ok_or(name)
    };
    Ok((get(ACCESS_KEY_ID)?, get(SECRET_ACCESS_KEY)?))
}

/// Secrets: their values are never kept in [`Settings`] (the passphrase has its own field).
const NEVER_KEPT: &[&str] = &[
    SECRET_ACCESS_KEY,
    SESSION_TOKEN,
    "AWS_SECURITY_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

fn truthy(value: &str) -> bool {
    matches!(value.to_ascii_lowercase().as_str(), "1" | "true" | "yes")
}

fn any_duration(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    example: &'static str,
) -> Result<Option<Duration>, BadSetting> {
    let Some(text) = get(name) else {
        return Ok(None);
    };
    duration::parse(&text)
        .map(Some)
        .map_err(|reason| BadSetting {
            name,
            value: text,
            reason: reason.to_string(),
            example,
        })
}

fn positive_duration(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    example: &'static str,
) -> Result<Option<Duration>, BadSetting> {
    match any_duration(get, name, example)? {
        Some(d) if d.is_zero() => Err(BadSetting {
            name,
            value: get(name).unwrap_or_default(),
            reason: "0 is not allowed here".into(),
            example,
        }),
        other => Ok(other),
    }
}

/// Unset: `default`; `0`: off.
fn off_or(value: Option<Duration>, default: Duration) -> Option<Duration> {
    match value {
        None => Some(default),
        Some(d) => (!d.is_zero()).then_some(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, BadSetting> {
        Settings::from_vars(vars.iter().map(|(n, v)| (n.into(), v.into())))
    }

    #[test]
    fn defaults_and_off() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.unlock_timeout, Some(DEFAULT_UNLOCK_TIMEOUT));
        assert_eq!(s.mfa_ask_ahead, Some(DEFAULT_MFA_ASK_AHEAD));
        assert_eq!(s.helper_timeout, DEFAULT_HELPER_TIMEOUT);
        let s = settings(&[(UNLOCK_TIMEOUT, "0"), (MFA_ASK_AHEAD, "0")]).unwrap();
        assert_eq!((s.unlock_timeout, s.mfa_ask_ahead), (None, None));
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        for name in [
            UNLOCK_TIMEOUT,
            STS_TIMEOUT,
            HELPER_TIMEOUT,
            MFA_ASK_AHEAD,
            MAX_ATTEMPTS,
            MIN_TTL,
            ASSUME_ROLE_TTL,
        ] {
            let e = settings(&[(name, "soon")]).unwrap_err();
            assert_eq!(e.name, name);
            assert!(e.to_string().starts_with(&format!("{name}: ")), "{e}");
            assert!(e.to_string().contains("\"soon\""), "{e}");
        }
        assert_eq!(
            settings(&[(HELPER_TIMEOUT, "0")]).unwrap_err().name,
            HELPER_TIMEOUT
        );
    }

    #[test]
    fn secrets_are_not_kept_as_text() {
        let s = settings(&[
            (SECRET_ACCESS_KEY, "s3cr3t"),
            (SESSION_TOKEN, "t0k3n"),
            (FILE_PASSPHRASE, "pass"),
            (ENDPOINT_URL, "http://127.0.0.1:1"),
        ])
        .unwrap();
        assert_eq!(s.aws_var(SECRET_ACCESS_KEY), None);
        assert_eq!(s.aws_var(SESSION_TOKEN), None);
        assert_eq!(s.aws_var(FILE_PASSPHRASE), None);
        assert_eq!(s.value(FILE_PASSPHRASE), None);
        assert!(s.passphrase.is_some());
        assert_eq!(
            s.aws_var(ENDPOINT_URL).as_deref(),
            Some("http://127.0.0.1:1")
        );
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }
}
