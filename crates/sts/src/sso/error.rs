//! What can go wrong with an IAM Identity Center sign-in, one type for every part of it, so
//! the binary can match on variants for its hints.

use std::path::PathBuf;
use std::time::Duration;

use crate::aws::AwsError;

#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error(transparent)]
    Store(#[from] vault_store::Error),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("the sign-in to {label} was denied in the browser")]
    Denied { label: String },
    #[error("the sign-in code for {label} expired before it was approved")]
    Expired { label: String },
    #[error("the sign-in to {label} was not approved within {}", crate::duration::display(*.after))]
    TimedOut { label: String, after: Duration },
    #[error("cannot show the sign-in page for {label}: {reason}")]
    Show { label: String, reason: ShowError },
    /// The authorize page redirected back with an OAuth error (`invalid_scope`, ...).
    #[error("the sign-in to {label} was refused: {error}{}", .description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        label: String,
        error: String,
        description: Option<String>,
        /// The scopes the sign-in asked for (`sso_registration_scopes`).
        scopes: Vec<String>,
    },
    #[error("the sign-in to {label} failed: {message}")]
    Failed { label: String, message: String },
    /// Another process's sign-in failed while this one waited for it (or just before): its
    /// message, so every waiter says the same and none opens a browser of its own.
    #[error("{message}")]
    FailedElsewhere { label: String, message: String },
    /// Another process held the sign-in's lock longer than any sign-in may take.
    #[error("another vault process has been signing in to {label} for {}; stopped waiting", crate::duration::display(*.waited))]
    Busy { label: String, waited: Duration },
    #[error("cannot listen on 127.0.0.1 for the browser's redirect: {0}")]
    Listen(std::io::Error),
    #[error("cannot write the AWS CLI's token cache {path}: {message}")]
    CliCache { path: PathBuf, message: String },
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
