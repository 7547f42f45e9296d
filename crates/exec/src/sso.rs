//! The terminal and browser side of IAM Identity Center sign-ins: which flow, where the page
//! goes, and what the person reads on stderr. The flows themselves are in `vault_sts::sso`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use vault_sts::sso::{Flow, SignIn, SignInPrompt, SsoOptions};

use crate::cli::SignInArgs;
use crate::context::non_empty_env;
use crate::error::escaped;
use crate::process;

/// `AWS_VAULT_SSO_CLI_CACHE=true`: implicit sign-ins also write the AWS CLI's token cache.
pub const CLI_CACHE_ENV: &str = "AWS_VAULT_SSO_CLI_CACHE";
/// The longest a sign-in waits for the person.
const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// How sign-ins go for this command.
pub fn options(args: &SignInArgs, cli_cache: bool) -> SsoOptions {
    SsoOptions {
        flow: flow(args),
        cli_cache: cli_cache || non_empty_env(CLI_CACHE_ENV).is_some_and(|v| truthy(&v)),
        cli_cache_dir: cli_cache_dir(),
        timeout: SIGN_IN_TIMEOUT,
    }
}

fn truthy(value: &str) -> bool {
    matches!(value.to_ascii_lowercase().as_str(), "1" | "true" | "yes")
}

/// The device flow when asked, or when no browser here could reach our loopback redirect:
/// over SSH with no `$BROWSER`, or (Linux) with no display at all.
fn flow(args: &SignInArgs) -> Flow {
    if args.use_device_code {
        return Flow::DeviceCode;
    }
    let browser_set = non_empty_env("BROWSER").is_some();
    let remote = non_empty_env("SSH_CONNECTION").is_some() || non_empty_env("SSH_TTY").is_some();
    let headless = cfg!(all(unix, not(target_os = "macos")))
        && non_empty_env("DISPLAY").is_none()
        && non_empty_env("WAYLAND_DISPLAY").is_none();
    match !browser_set && (remote || headless) {
        true => Flow::DeviceCode,
        false => Flow::AuthorizationCode,
    }
}

/// Shows sign-in pages: in the browser, or (`--no-browser`) as a line on stderr.
#[derive(Debug, Default)]
pub struct Browser {
    pub no_browser: bool,
}

impl Browser {
    pub fn new(args: &SignInArgs) -> Browser {
        Browser {
            no_browser: args.no_browser,
        }
    }
}

impl SignIn for Browser {
    fn show(&self, prompt: &SignInPrompt<'_>) -> Result<(), String> {
        let label = escaped(prompt.label);
        let code = prompt
            .user_code
            .map(|c| format!(" and check that it shows the code {}", escaped(c)))
            .unwrap_or_default();
        if self.no_browser {
            let where_ = match prompt.flow {
                Flow::AuthorizationCode => "in a browser on this machine",
                Flow::DeviceCode => "in a browser",
            };
            eprintln!(
                "vault: to sign in to {label}, open this page {where_}{code}:\n  {}",
                escaped(prompt.url)
            );
            return Ok(());
        }
        eprintln!("vault: signing in to {label} in your browser{code}…");
        let mut cmd = process::browser().map_err(|e| e.message)?;
        cmd.arg(prompt.url)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        // Not waited for here: the browser's redirect comes back to us while it runs. A
        // thread reaps it.
        let mut child = cmd.spawn().map_err(|e| {
            format!("cannot start the browser ({e}); set BROWSER, or pass --no-browser")
        })?;
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        Ok(())
    }
}

/// Where the AWS CLI keeps its tokens.
pub fn cli_cache_dir() -> Option<PathBuf> {
    dirs::home_dir().map(|h| h.join(".aws").join("sso").join("cache"))
}
