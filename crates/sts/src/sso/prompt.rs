//! What the caller is asked to show the person for a new sign-in: this crate never opens a
//! browser or prints; the binary's [`SignIn`] does (a browser, or a line on the terminal).
//! [`Approval`] is what both sign-in flows share while they wait for the person.

use std::time::{Duration, Instant};

use super::error::{ShowError, SsoError};

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
    /// The page is shown a second time in one sign-in: the service refused the client
    /// registration the first page was for, and a new client was registered.
    pub again: bool,
}

/// The caller's way of getting a person to a page: a browser, or a line on the terminal.
pub trait SignIn {
    fn show(&self, prompt: &SignInPrompt<'_>) -> Result<(), ShowError>;
}

/// A new sign-in waiting for the person: where its page is shown, and until when.
pub(super) struct Approval<'a> {
    sign_in: &'a dyn SignIn,
    /// When the sign-in gives up.
    pub(super) deadline: Instant,
    /// How long it waits in all, for the message when it gives up.
    timeout: Duration,
    /// Pages shown so far.
    shown: std::cell::Cell<u32>,
}

impl<'a> Approval<'a> {
    /// Waits at most `timeout` from now.
    pub(super) fn new(sign_in: &'a dyn SignIn, timeout: Duration) -> Self {
        Approval {
            sign_in,
            deadline: Instant::now() + timeout,
            timeout,
            shown: std::cell::Cell::new(0),
        }
    }

    /// Shows the page through the caller's [`SignIn`].
    pub(super) fn show(
        &self,
        label: &str,
        url: &str,
        user_code: Option<&str>,
        flow: Flow,
    ) -> Result<(), SsoError> {
        self.sign_in
            .show(&SignInPrompt {
                label,
                url,
                user_code,
                flow,
                again: self.shown.replace(self.shown.get() + 1) > 0,
            })
            .map_err(|reason| SsoError::Show {
                label: label.to_owned(),
                reason,
            })
    }

    /// The person did not approve before the deadline.
    pub(super) fn timed_out(&self, label: String) -> SsoError {
        SsoError::TimedOut {
            label,
            after: self.timeout,
        }
    }
}
