//! The terminal and browser side of IAM Identity Center and console (AWS Sign-In) sign-ins:
//! which flow, where the page goes, what the person reads on the terminal, and the code they
//! type back. The flows themselves are in `vault_sts::sso` and `vault_sts::signin`.

use std::path::PathBuf;
use std::time::Duration;

use vault_sts::signin::{PastedCode, Reauth};
use vault_sts::sso::{Flow, ShowError, SignIn, SignInPrompt, SsoOptions};
use zeroize::Zeroizing;

use crate::cli::SignInArgs;
use crate::error::escaped;
use crate::process;
use crate::prompt;
use crate::settings::Settings;

/// The longest a sign-in waits for the person (as the AWS CLI's).
pub const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// How sign-ins go for this command: `args` are `vault sso login`'s flags (none for the
/// sign-ins other commands start), `AWS_VAULT_SSO_USE_DEVICE_CODE` and
/// `AWS_VAULT_SSO_NO_BROWSER` ask the same of every sign-in.
/// `cli_cache`: `--cli-cache`; `AWS_VAULT_SSO_CLI_CACHE=true` asks the same of every sign-in.
pub fn options(args: &SignInArgs, cli_cache: bool, settings: &Settings) -> SsoOptions {
    SsoOptions {
        flow: choose(args, settings).flow,
        cli_cache: cli_cache || settings.sso_cli_cache,
        cli_cache_dir: cli_cache_dir(),
        timeout: SIGN_IN_TIMEOUT,
    }
}

/// How a new sign-in reaches the person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Choice {
    flow: Flow,
    /// Open the page in a browser here (else it is only shown).
    open: bool,
    /// Why vault chose the device flow by itself: no browser here could reach the loopback
    /// redirect.
    device_because: Option<&'static str>,
}

/// The device flow when asked, or when no browser here could reach our loopback redirect:
/// over SSH with no `$BROWSER`, or (Linux) with no display at all; then nothing is opened.
fn choose(args: &SignInArgs, settings: &Settings) -> Choice {
    let open = !(args.no_browser || settings.sso_no_browser);
    if args.use_device_code || settings.sso_use_device_code {
        return Choice {
            flow: Flow::DeviceCode,
            open,
            device_because: None,
        };
    }
    let headless = cfg!(all(unix, not(target_os = "macos"))) && !settings.display;
    let because = match (settings.browser.is_some(), settings.remote, headless) {
        (true, _, _) => None,
        (false, true, _) => Some("this is an SSH session and BROWSER is not set"),
        (false, false, true) => {
            Some("there is no display (DISPLAY, WAYLAND_DISPLAY) and BROWSER is not set")
        }
        (false, false, false) => None,
    };
    match because {
        Some(because) => Choice {
            flow: Flow::DeviceCode,
            open: false,
            device_because: Some(because),
        },
        None => Choice {
            flow: Flow::AuthorizationCode,
            open,
            device_because: None,
        },
    }
}

/// Shows sign-in pages: always as lines for the person (the terminal, else stderr), and in
/// a browser unless asked not to or no browser here can be of use.
#[derive(Debug)]
pub struct Browser {
    choice: Choice,
    /// `$BROWSER`.
    command: Option<String>,
    /// How long vault waits to hear whether the browser command failed.
    patience: Duration,
}

impl Browser {
    pub fn new(args: &SignInArgs, settings: &Settings) -> Browser {
        Browser {
            choice: choose(args, settings),
            command: settings.browser.clone(),
            patience: settings.helper_timeout,
        }
    }
}

impl SignIn for Browser {
    fn show(&self, prompt: &SignInPrompt<'_>) -> Result<(), ShowError> {
        let label = escaped(prompt.label);
        let url = escaped(prompt.url);
        let code = prompt
            .user_code
            .map(|c| format!(" and check that it shows the code {}", escaped(c)))
            .unwrap_or_default();
        let where_ = match prompt.flow {
            Flow::AuthorizationCode => "in a browser on this machine",
            Flow::DeviceCode => "in a browser, on any device",
        };
        if prompt.again {
            prompt::tell(&format!(
                "vault: IAM Identity Center no longer accepts the client vault signed in to {label} with; a new one is registered, so the sign-in page comes once more"
            ));
        }
        if let Some(because) = self.choice.device_because {
            prompt::tell(&format!(
                "vault: signing in to {label} with a device code: {because}"
            ));
        }
        if !self.choice.open {
            prompt::tell(&format!(
                "vault: to sign in to {label}, open this page {where_}{code}:\n  {url}"
            ));
            return Ok(());
        }
        prompt::tell(&format!(
            "vault: signing in to {label} in your browser{code}.\n\
             vault: if the browser does not open, visit this page {where_}:\n  {url}"
        ));
        open_in_browser(self.command.as_deref(), prompt.url, self.patience);
        Ok(())
    }
}

/// A console sign-in's page (`vault signin`, or a command whose kept session ended): a
/// line on the terminal always, a browser when one here can be of use; in the flow on
/// another device (`--remote`, or chosen as for SSO's device flow), the code typed back.
#[derive(Debug)]
pub struct ConsolePage {
    open: bool,
    browser: Option<String>,
    patience: Duration,
    because: Option<&'static str>,
    /// The flow on another device.
    pub remote: bool,
}

impl ConsolePage {
    /// `remote`, `no_browser`: `vault signin`'s flags (false for other commands).
    pub fn new(settings: &Settings, remote: bool, no_browser: bool) -> ConsolePage {
        let args = SignInArgs {
            use_device_code: remote,
            no_browser,
        };
        let choice = choose(&args, settings);
        let remote = choice.flow == Flow::DeviceCode;
        ConsolePage {
            // The page on another device is only shown, as the AWS CLI does.
            open: choice.open && !remote,
            browser: settings.browser.clone(),
            patience: settings.helper_timeout,
            because: choice.device_because,
            remote,
        }
    }

    /// How other commands sign in again through this page.
    pub fn reauth(&self) -> Reauth<'_> {
        Reauth {
            show: self,
            paste: self,
            remote: self.remote,
            timeout: SIGN_IN_TIMEOUT,
        }
    }
}

impl SignIn for ConsolePage {
    fn show(&self, page: &SignInPrompt<'_>) -> Result<(), ShowError> {
        let url = escaped(page.url);
        if page.flow == Flow::DeviceCode {
            if let Some(because) = self.because {
                prompt::tell(&format!(
                    "vault: signing in on another device: {because} (--remote)"
                ));
            }
            prompt::tell(&format!(
                "vault: to sign in, open this page in a browser on any device, sign in, and copy the code it shows:\n  {url}"
            ));
            return Ok(());
        }
        if !self.open {
            prompt::tell(&format!(
                "vault: to sign in, open this page in a browser on this machine:\n  {url}"
            ));
            return Ok(());
        }
        prompt::tell(&format!(
            "vault: signing in to {} in your browser.\n\
             vault: if the browser does not open, visit this page on this machine:\n  {url}",
            escaped(page.label)
        ));
        open_in_browser(self.browser.as_deref(), page.url, self.patience);
        Ok(())
    }
}

impl PastedCode for ConsolePage {
    fn ask_code(&self, _label: &str) -> Result<Option<Zeroizing<String>>, ShowError> {
        use secrecy::ExposeSecret;
        // Not echoed: the code, with this process's verifier, is a sign-in.
        match prompt::ask_hidden("vault: the code the page shows: ") {
            Ok(Some(code)) => {
                let code = Zeroizing::new(code.expose_secret().trim().to_owned());
                Ok((!code.is_empty()).then_some(code))
            }
            Ok(None) | Err(_) => Ok(None),
        }
    }
}

/// Opens `url` in `command` (`$BROWSER`), else the system's browser, without waiting for it:
/// the browser's redirect comes back to us while it runs. A browser that cannot start, or
/// fails within `patience`, is told to the person, who has the page on the terminal already.
pub fn open_in_browser(command: Option<&str>, url: &str, patience: Duration) {
    let mut child = match process::start_browser(command, url.as_ref()) {
        Ok(child) => child,
        Err(e) => {
            prompt::tell(&format!(
                "vault: {}; open the page above yourself",
                escaped(&e.message)
            ));
            return;
        }
    };
    std::thread::spawn(move || {
        if let Ok(Some(status)) = process::wait_for_browser(&mut child, patience)
            && !status.success()
        {
            prompt::tell(&format!(
                "vault: the browser command failed ({status}); open the page above yourself"
            ));
        }
    });
}

/// Where the AWS CLI keeps its tokens.
pub fn cli_cache_dir() -> Option<PathBuf> {
    dirs::home_dir().map(|h| h.join(".aws").join("sso").join("cache"))
}
