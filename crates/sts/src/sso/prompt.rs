//! What the caller is asked to show the person for a new sign-in: this crate never opens a
//! browser or prints; the binary's [`SignIn`] does (a browser, or a line on the terminal).

/// How the person approves a new sign-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// A browser on this machine: authorization code with PKCE and a loopback redirect.
    AuthorizationCode,
    /// Any browser, anywhere: a device code to approve (`--use-device-code`, SSH sessions).
    DeviceCode,
}

/// What the caller is asked to show the person.
#[derive(Debug)]
pub struct SignInPrompt<'a> {
    /// `sso-session corp`, or the start URL.
    pub label: &'a str,
    /// The page to approve the sign-in on.
    pub url: &'a str,
    /// The code the page shows (device flow): the person checks that it matches.
    pub user_code: Option<&'a str>,
    pub flow: Flow,
}

/// The caller's way of getting a person to a page: a browser, or a line on the terminal.
pub trait SignIn {
    fn show(&self, prompt: &SignInPrompt<'_>) -> Result<(), ShowError>;
}

/// Why a sign-in page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum ShowError {
    /// `$BROWSER` is not a command line vault can run.
    #[error("{0}")]
    BadBrowser(String),
    /// The browser could not be started.
    #[error("cannot start the browser ({0}); set BROWSER, or pass --no-browser")]
    CannotStart(std::io::Error),
}
