//! The terminal and browser side of IAM Identity Center sign-ins: which flow, where the page
//! goes, and what the person reads on stderr. The flows themselves are in `vault_sts::sso`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use vault_sts::sso::{Flow, ShowError, SignIn, SignInPrompt, SsoOptions};

use crate::cli::SignInArgs;
use crate::error::escaped;
use crate::process;
use crate::settings::Settings;

/// The longest a sign-in waits for the person.
const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// How sign-ins go for this command.
/// `cli_cache`: `--cli-cache`; `AWS_VAULT_SSO_CLI_CACHE=true` asks the same of every sign-in.
pub fn options(args: &SignInArgs, cli_cache: bool, settings: &Settings) -> SsoOptions {
    SsoOptions {
        flow: flow(args, settings),
        cli_cache: cli_cache || settings.sso_cli_cache,
        cli_cache_dir: cli_cache_dir(),
        timeout: SIGN_IN_TIMEOUT,
    }
}

/// The device flow when asked, or when no browser here could reach our loopback redirect:
/// over SSH with no `$BROWSER`, or (Linux) with no display at all.
fn flow(args: &SignInArgs, settings: &Settings) -> Flow {
    if args.use_device_code {
        return Flow::DeviceCode;
    }
    let browser_set = settings.browser.is_some();
    let headless = cfg!(all(unix, not(target_os = "macos"))) && !settings.display;
    match !browser_set && (settings.remote || headless) {
        true => Flow::DeviceCode,
        false => Flow::AuthorizationCode,
    }
}

/// Shows sign-in pages: in the browser, or (`--no-browser`) as a line on stderr.
#[derive(Debug)]
pub struct Browser {
    pub no_browser: bool,
    /// `$BROWSER`.
    command: Option<String>,
}

impl Browser {
    pub fn new(args: &SignInArgs, settings: &Settings) -> Browser {
        Browser {
            no_browser: args.no_browser,
            command: settings.browser.clone(),
        }
    }
}

impl SignIn for Browser {
    fn show(&self, prompt: &SignInPrompt<'_>) -> Result<(), ShowError> {
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
        let mut cmd = process::browser(self.command.as_deref())
            .map_err(|e| ShowError::BadBrowser(e.message))?;
        cmd.arg(prompt.url)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        // Not waited for here: the browser's redirect comes back to us while it runs. A
        // thread reaps it.
        let mut child = cmd.spawn().map_err(ShowError::CannotStart)?;
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
