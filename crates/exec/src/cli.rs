//! The command line, and nothing else: clap definitions (with the completers of the values
//! a shell can complete, in `complete.rs`). The man pages and completion scripts are made
//! from these definitions.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use vault_store::BackendKind;
use vault_sts::origin::{Origin, Sourced};
use vault_sts::policy::{PolicyDocument, SessionPolicy};

use crate::settings;

/// Keeps long-lived AWS keys encrypted and runs programs with short-lived STS credentials.
#[derive(Debug, Parser)]
#[command(name = "vault", version, about, max_term_width = 100)]
pub struct Cli {
    /// Log what vault does to stderr (never a secret).
    #[arg(long, global = true)]
    pub debug: bool,

    /// Where the vault key is kept: secret-service, keychain, wincred, keyctl or file.
    #[arg(long, global = true, value_name = "NAME", env = settings::BACKEND, value_parser = parse_backend, add = crate::complete::backends())]
    pub backend: Option<Unset<BackendKind>>,

    /// The vault directory (default: the per-user data dir, e.g. ~/.local/share/vault).
    #[arg(long, global = true, value_name = "DIR", env = settings::FILE_DIR, value_parser = parse_dir)]
    pub file_dir: Option<Unset<PathBuf>>,

    /// How MFA codes and the passphrase are asked: terminal, zenity, kdialog, osascript,
    /// wincredui or ykman (default: the terminal, else a GUI prompt when there is a display).
    #[arg(long, global = true, value_name = "NAME", env = settings::PROMPT, value_parser = parse_prompt)]
    pub prompt: Option<Unset<PromptKind>>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store a long-lived access key pair for a profile, encrypted.
    Add(AddArgs),
    /// Move long-lived keys from the plaintext credentials file (~/.aws/credentials) into
    /// the vault; --remove then deletes them from that file.
    Import(ImportArgs),
    /// Show profiles, stored keys and cached sessions.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Delete a profile's stored key pair and its cached sessions.
    #[command(alias = "rm")]
    Remove(RemoveArgs),
    /// Run a command with a profile's credentials in its environment.
    Exec(ExecArgs),
    /// Print a profile's credentials (env, export-env, json, ini, fish, powershell).
    Export(ExportArgs),
    /// Remove cached sessions: all, or one profile's.
    Clear(ClearArgs),
    /// Open the AWS console signed in as a profile (or print the sign-in link).
    Login(LoginArgs),
    /// Replace a profile's stored key with a new one, and delete the old one in IAM.
    Rotate(RotateArgs),
    /// Open a passphrase vault once; later commands need no passphrase until it idles out.
    Unlock(UnlockArgs),
    /// Forget an unlocked vault key now.
    Lock,
    /// Check the config file, the profiles, the backend, the vault files, the clock and the
    /// environment; one line each, with a fix.
    Doctor(DoctorArgs),
    /// Move the vault key to another backend (e.g. file → secret-service); the stored keys
    /// stay as they are.
    MigrateBackend(MigrateBackendArgs),
    /// IAM Identity Center: sign in, sign out, list the accounts and roles, write a profile
    /// for each.
    #[command(subcommand)]
    Sso(SsoCommand),
    /// Sign in with your console credentials in a browser, as `aws login` does, and keep the
    /// session (refreshable for 12 hours) encrypted in the vault.
    Signin(SigninArgs),
    /// Forget a console session `vault signin` keeps.
    Signout(SignoutArgs),
    /// Containers (or local processes) each with its own profile, served by `vault serve`:
    /// one token per client, bound to one profile.
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Serve container credentials to the registered clients, in the foreground, until
    /// Ctrl+C or SIGTERM.
    Serve(ServeArgs),
    /// Print the shell code that completes vault's commands, flags and profile names.
    Completion(CompletionArgs),
    /// Print the shell function that makes `vault use PROFILE` set credentials in this shell.
    ShellInit(ShellInitArgs),
    /// Set a profile's credentials in the current shell (needs `vault shell-init`);
    /// `vault use --unset` removes them.
    Use(UseArgs),
    /// Write the man pages (vault.1 and one per subcommand) into a directory.
    #[command(hide = true)]
    Man(ManArgs),
    /// Internal: become COMMAND, ending with the process PARENT (`--server`'s child).
    #[command(hide = true, name = "__tie-to-parent")]
    TieToParent(TieArgs),
}

#[derive(Debug, Args)]
pub struct TieArgs {
    /// The process whose end ends this one.
    #[arg(long)]
    pub parent: u32,
    #[arg(last = true, required = true)]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell: bash, zsh, fish, powershell or elvish.
    pub shell: CompletionShell,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

#[derive(Debug, Args)]
pub struct ShellInitArgs {
    /// The shell: bash, zsh, fish or powershell.
    pub shell: UseShell,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum UseShell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

#[derive(Debug, Args)]
pub struct UseArgs {
    /// The profile (default: AWS_PROFILE, else picked on the terminal).
    #[arg(add = crate::complete::profiles())]
    pub profile: Option<String>,

    /// Remove every variable `vault use` set.
    #[arg(long)]
    pub unset: bool,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Where to write the pages.
    pub dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum SsoCommand {
    /// Sign in to an sso-session (or the session of a profile); the token is kept encrypted
    /// and refreshed without a browser while the session lasts.
    Login(SsoLoginArgs),
    /// Sign out (the portal's Logout) and forget the tokens and SSO role sessions: of NAME,
    /// or of every sign-in.
    Logout(SsoLogoutArgs),
    /// Append a profile for every account and role the sign-in reaches to the config file.
    ///
    /// No name is written twice: one that another profile has, or that another account or
    /// role of the run has once cleaned, gets the account id after the account's name (then
    /// -2, -3, ...), and stderr says which and why. A profile the file has already for the
    /// role is kept as it is.
    Populate(SsoPopulateArgs),
    /// List the accounts and roles the sign-in reaches, and which profiles already use each.
    Accounts(SsoAccountsArgs),
}

/// How a sign-in is shown: shared by `sso login` and implicit sign-ins.
#[derive(Debug, Args, Clone, Default)]
pub struct SignInArgs {
    /// Approve with a code on any device (the device flow), not a redirect to this machine.
    #[arg(long)]
    pub use_device_code: bool,

    /// Print the sign-in page (and code) on stderr instead of opening a browser.
    #[arg(long)]
    pub no_browser: bool,
}

#[derive(Debug, Args)]
pub struct SsoLoginArgs {
    /// An sso-session name, or a profile that signs in through one.
    #[arg(add = crate::complete::sign_ins())]
    pub name: String,

    #[command(flatten)]
    pub sign_in: SignInArgs,

    /// Also keep the token in ~/.aws/sso/cache as the AWS CLI v2 does, so the SDKs, the CLI
    /// and the SSM plugin share this sign-in (plaintext, as they keep it).
    #[arg(long)]
    pub cli_cache: bool,
}

#[derive(Debug, Args)]
pub struct SsoLogoutArgs {
    /// An sso-session name, or a profile that signs in through one (default: all).
    #[arg(add = crate::complete::sign_ins())]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct SsoPopulateArgs {
    /// The sso-session whose accounts and roles to write (default: the only [sso-session] in
    /// the config file).
    #[arg(add = crate::complete::sso_sessions())]
    pub session: Option<String>,

    /// Put this in front of every profile name written.
    #[arg(long, value_name = "PREFIX", default_value = "")]
    pub prefix: String,

    /// How to name each profile: {account_name}, {account_id}, {role_name} and {session}
    /// stand for the account's and role's names (cleaned to what a profile name can hold),
    /// the account id and the sso-session; e.g. `{account_name}-{role_name}`.
    #[arg(
        long,
        value_name = "TEMPLATE",
        default_value = "{account_name}/{role_name}"
    )]
    pub profile_template: String,

    /// Write `region = REGION` into each profile written (e.g. eu-west-1).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// Show the change as a diff and write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Also remove profiles this command wrote earlier whose role is gone.
    #[arg(long)]
    pub prune: bool,
}

#[derive(Debug, Args)]
pub struct SsoAccountsArgs {
    /// An sso-session name, or a profile that signs in through one (default: the only
    /// [sso-session] in the config file).
    #[arg(add = crate::complete::sign_ins())]
    pub name: Option<String>,

    /// Print JSON: {"session", "start_url", "accounts": [{"account_id", "account_name",
    /// "roles": [{"role_name", "profiles": [...]}]}]}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SigninArgs {
    /// The profile to sign in for; made, or given `login_session`, when it has none
    /// (default: AWS_PROFILE, else `default`).
    #[arg(add = crate::complete::profiles())]
    pub profile: Option<String>,

    /// Sign in on another device: vault shows the page and you type the code it shows
    /// (no redirect to this machine; for SSH sessions).
    #[arg(long)]
    pub remote: bool,

    /// Print the sign-in page on stderr instead of opening a browser.
    #[arg(long)]
    pub no_browser: bool,

    /// Also write the session to ~/.aws/login/cache as `aws login` does, so the AWS CLI
    /// and SDKs share it (plaintext, refresh token and key included, as they keep it).
    #[arg(long)]
    pub cli_cache: bool,

    /// The AWS Sign-In region (default: the profile's, else AWS_REGION).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}

#[derive(Debug, Args)]
pub struct SignoutArgs {
    /// The profile whose console session to forget, or the session's ARN as `vault list`
    /// shows it (default: AWS_PROFILE, else `default`).
    #[arg(add = crate::complete::profiles())]
    pub profile: Option<String>,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The profile, as in ~/.aws/config (default: AWS_PROFILE, else picked on the terminal).
    #[arg(add = crate::complete::profiles())]
    pub profile: Option<String>,

    /// Console session length: SessionDuration for roles (15m to 12h), the federation token's
    /// lifetime for IAM users (default 12h).
    #[arg(short, long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// The console's region (default: the profile's).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// A console path to open, e.g. ec2/home.
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,

    /// Print the sign-in URL on stdout instead of opening a browser.
    #[arg(long)]
    pub stdout: bool,

    /// The current MFA code, instead of mfa_process or a prompt.
    #[arg(short = 't', long = "mfa-token", value_name = "CODE", value_parser = MfaCodeParser)]
    pub mfa_token: Option<MfaCode>,

    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// A session policy that narrows the final session (replaces the profile's
/// `vault_session_policy` and `vault_session_policy_arns`).
#[derive(Clone, Debug, Default, Args)]
pub struct PolicyArgs {
    /// A session policy: inline JSON (starting with `{`) or the path of a JSON file; sent as
    /// Policy on the final AssumeRole.
    #[arg(long, value_name = "FILE_OR_JSON", value_parser = parse_policy)]
    pub policy: Option<PolicyDocument>,

    /// A managed policy's ARN, sent in PolicyArns on the final AssumeRole (repeatable).
    #[arg(long = "policy-arn", value_name = "ARN", value_parser = parse_policy_arn)]
    pub policy_arns: Vec<String>,
}

impl PolicyArgs {
    /// The flags' policy, if any was given.
    pub fn session_policy(&self) -> Option<SessionPolicy> {
        if self.policy.is_none() && self.policy_arns.is_empty() {
            return None;
        }
        Some(SessionPolicy {
            document: self
                .policy
                .clone()
                .map(|d| Sourced::new(d, Origin::Flag("--policy"))),
            arns: self
                .policy_arns
                .iter()
                .map(|a| Sourced::new(a.clone(), Origin::Flag("--policy-arn")))
                .collect(),
        })
    }
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The profile whose stored key to rotate (a role profile rotates the key it starts from;
    /// default: AWS_PROFILE, else picked on the terminal).
    #[arg(add = crate::complete::profiles())]
    pub profile: Option<String>,

    /// Call IAM with the stored key itself, not an MFA session.
    #[arg(short = 'n', long)]
    pub no_session: bool,

    /// The current MFA code, instead of mfa_process or a prompt.
    #[arg(short = 't', long = "mfa-token", value_name = "CODE", value_parser = MfaCodeParser)]
    pub mfa_token: Option<MfaCode>,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Stay unlocked until this long without use (default: AWS_VAULT_UNLOCK_TIMEOUT or 15m).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub for_: Option<Duration>,
}

/// How to obtain credentials for a profile: shared by exec and export.
#[derive(Debug, Args, Clone)]
pub struct CredentialArgs {
    /// The profile, as in ~/.aws/config (default: AWS_PROFILE, else picked on the terminal).
    #[arg(add = crate::complete::profiles())]
    pub profile: Option<String>,

    /// Lifetime of the final session, e.g. 1h, 90m, 3600s.
    #[arg(short, long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Use the stored key directly: no GetSessionToken (roles are assumed straight from it).
    #[arg(short = 'n', long)]
    pub no_session: bool,

    /// The region for STS and for the child (overrides the profile and AWS_REGION).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// The current MFA code, instead of mfa_process or a prompt.
    #[arg(short = 't', long = "mfa-token", value_name = "CODE", value_parser = MfaCodeParser)]
    pub mfa_token: Option<MfaCode>,

    #[command(flatten)]
    pub policy: PolicyArgs,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("serve").args(["server", "imds"])))]
pub struct ExecArgs {
    #[command(flatten)]
    pub credentials: CredentialArgs,

    /// Print the plan (steps, cache, MFA, durations, where each value came from) and exit;
    /// makes no STS call.
    #[arg(long)]
    pub explain: bool,

    /// Also set AWS_ACCESS_KEY, AWS_SECRET_KEY and AWS_SECURITY_TOKEN for old EC2 tools.
    #[arg(long, conflicts_with_all = ["server", "imds"])]
    pub legacy_env: bool,

    /// Serve credentials to the child from an ECS-style endpoint on 127.0.0.1, renewed
    /// before they expire (for jobs that outlive a session).
    #[arg(long, visible_alias = "ecs-server", conflicts_with = "imds")]
    pub server: bool,

    /// Serve credentials from an IMDSv2 endpoint on 127.0.0.1 (no root needed), renewed
    /// before they expire.
    #[arg(long)]
    pub imds: bool,

    /// With --imds: also answer token-less (IMDSv1) requests.
    #[arg(long, requires = "imds")]
    pub imds_v1: bool,

    /// With --server or --imds: mint on the first request instead of before the child starts.
    #[arg(long, requires = "serve")]
    pub lazy: bool,

    /// The command and its arguments (default: $SHELL; on Windows %COMSPEC%).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub credentials: CredentialArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Env)]
    pub format: ExportFormat,

    /// For the `vault use` shell function: also AWS_VAULT, and the names it sets (so
    /// `vault use --unset` removes exactly those).
    #[arg(long, hide = true)]
    pub for_use: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// KEY=value lines.
    Env,
    /// export KEY=value lines, for `eval`.
    ExportEnv,
    /// credential_process JSON (Version 1).
    Json,
    /// A credentials-file section named after the profile.
    Ini,
    /// set -gx KEY value lines.
    Fish,
    /// $env:KEY = "value" lines.
    Powershell,
}

#[derive(Debug, Args)]
pub struct ClearArgs {
    /// Only this profile's sessions.
    #[arg(add = crate::complete::profiles())]
    pub profile: Option<String>,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The profile name, as in ~/.aws/config.
    #[arg(add = crate::complete::profiles())]
    pub profile: String,

    /// Read the key pair from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead of asking.
    #[arg(long)]
    pub env: bool,

    /// Replace a stored key pair without asking.
    #[arg(short, long)]
    pub force: bool,

    /// Add `[profile NAME]` to the AWS config file when it is missing (the default).
    #[arg(long, overrides_with = "no_add_config")]
    pub add_config: bool,

    /// Leave the AWS config file alone.
    #[arg(long, overrides_with = "add_config")]
    pub no_add_config: bool,
}

#[derive(Debug, Args)]
pub struct MigrateBackendArgs {
    /// The backend to move to: secret-service, keychain, wincred, keyctl or file.
    #[arg(long, value_name = "NAME", add = crate::complete::backends())]
    pub to: BackendKind,

    /// Say what would move, check that the new backend is reachable, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The checks as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The profiles to import (default: every one with an access key).
    pub profiles: Vec<String>,

    /// Then delete the imported keys from the plaintext file (atomically; every other line
    /// stays).
    #[arg(long)]
    pub remove: bool,

    /// Replace key pairs the vault already holds.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("only").args(["profiles", "credentials", "sessions", "sso"])))]
pub struct ListArgs {
    /// Print only the profile names of the AWS config file, one per line.
    #[arg(long)]
    pub profiles: bool,

    /// Print only the profiles with a stored key pair, one per line.
    #[arg(long)]
    pub credentials: bool,

    /// Print only the profiles with a cached session, one per line.
    #[arg(long)]
    pub sessions: bool,

    /// Print only the SSO sign-ins (a table, or JSON with --json) with their tokens' time left.
    #[arg(long)]
    pub sso: bool,

    /// Print the table (or, with --sso, the sign-ins) as JSON.
    #[arg(long, conflicts_with_all = ["profiles", "credentials", "sessions"])]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The profile whose key pair to delete.
    #[arg(add = crate::complete::profiles())]
    pub profile: String,

    /// Delete without asking.
    #[arg(short, long)]
    pub force: bool,
}

/// A flag whose environment variable may be set but empty, which means "not set" (as in
/// aws-vault): `Unset(None)`.
#[derive(Clone, Debug)]
pub struct Unset<T>(pub Option<T>);

impl<T> Unset<T> {
    pub fn get(this: &Option<Unset<T>>) -> Option<&T> {
        this.as_ref().and_then(|u| u.0.as_ref())
    }
}

fn parse_backend(s: &str) -> Result<Unset<BackendKind>, String> {
    if s.is_empty() {
        return Ok(Unset(None));
    }
    s.parse()
        .map(|b| Unset(Some(b)))
        .map_err(|e: vault_store::UnknownBackend| {
            format!("{e} (from --backend or AWS_VAULT_BACKEND)")
        })
}

fn parse_prompt(s: &str) -> Result<Unset<PromptKind>, String> {
    if s.is_empty() {
        return Ok(Unset(None));
    }
    <PromptKind as clap::ValueEnum>::from_str(s, true)
        .map(|k| Unset(Some(k)))
        .map_err(|_| {
            format!(
                "unknown prompt {s:?} (from --prompt or AWS_VAULT_PROMPT); one of terminal, zenity, kdialog, osascript, wincredui, ykman"
            )
        })
}

fn parse_dir(s: &str) -> Result<Unset<PathBuf>, String> {
    Ok(Unset((!s.is_empty()).then(|| PathBuf::from(s))))
}

/// `--policy`: parsed, packed and checked now, so a bad policy stops before anything runs.
fn parse_policy(s: &str) -> Result<PolicyDocument, String> {
    vault_sts::policy::document(s)
}

fn parse_policy_arn(s: &str) -> Result<String, String> {
    vault_sts::policy::check_arn(s).map(|()| s.to_owned())
}

/// Go-style durations (`1h`, `90m`, `3600s`); limits that depend on the profile are checked
/// where the profile is known.
fn parse_duration(s: &str) -> Result<Duration, String> {
    vault_sts::duration::parse(s)
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("must be longer than 0".to_owned()),
        d => Ok(d),
    }
}

/// An MFA code from the command line, checked to be six digits, held as a secret.
#[derive(Clone, Debug)]
pub struct MfaCode(pub SecretString);

/// Checks a code without ever echoing it (clap's own errors repeat the value).
#[derive(Clone, Copy, Debug)]
struct MfaCodeParser;

impl clap::builder::TypedValueParser for MfaCodeParser {
    type Value = MfaCode;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<MfaCode, clap::Error> {
        let code = SecretString::from(value.to_str().unwrap_or_default().to_owned());
        vault_sts::mfa::check_code(code.expose_secret()).map_err(|gave| {
            let flag = arg.and_then(|a| a.get_long()).unwrap_or("mfa-token");
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!(
                    "--{flag}: the MFA code must be 6 digits, not {gave}\n\
                     hint: type the 6-digit code your MFA device shows now\n"
                ),
            )
            .with_cmd(cmd)
        })?;
        Ok(MfaCode(code))
    }
}

/// How MFA codes and the passphrase are asked (`--prompt`, `AWS_VAULT_PROMPT`; aws-vault's
/// names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PromptKind {
    /// The controlling terminal.
    Terminal,
    /// A GTK dialog (Linux, BSD).
    Zenity,
    /// A KDE dialog.
    Kdialog,
    /// An AppleScript dialog (macOS).
    Osascript,
    /// The Windows credential dialog (through PowerShell's Get-Credential).
    Wincredui,
    /// A YubiKey's OATH code (MFA codes only).
    Ykman,
}

impl PromptKind {
    pub fn name(self) -> &'static str {
        match self {
            PromptKind::Terminal => "terminal",
            PromptKind::Zenity => "zenity",
            PromptKind::Kdialog => "kdialog",
            PromptKind::Osascript => "osascript",
            PromptKind::Wincredui => "wincredui",
            PromptKind::Ykman => "ykman",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }
}

/// The broker's documented default address (loopback: a plain process on this machine).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9911";

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Register a client for a profile and write its token file (0600).
    Add(ContainerAddArgs),
    /// Show the clients: profile, token file, created, expires, last use.
    #[command(alias = "ls")]
    List(ContainerListArgs),
    /// Print what a client needs to reach `vault serve`: environment lines, `docker run`
    /// flags, or a compose service snippet.
    Env(ContainerEnvArgs),
    /// Revoke a client at once (also while `vault serve` runs) and delete its token file.
    #[command(alias = "rm")]
    Remove(ContainerNameArgs),
    /// Give a client a new token, written over its token file; the old one stops working.
    Rotate(ContainerNameArgs),
    /// Show the broker's audit log (one line per credential request), of every client or one.
    Log(ContainerLogArgs),
}

#[derive(Debug, Args)]
pub struct ContainerAddArgs {
    /// The client's name (letters, digits, _ - .).
    pub name: String,
    /// The profile whose credentials this client gets, and no other.
    #[arg(add = crate::complete::profiles())]
    pub profile: String,
    /// The token stops working after this long (e.g. 7d, 12h, 90m).
    #[arg(long, value_name = "DURATION", value_parser = parse_expiry)]
    pub expires: Option<Duration>,
    /// Write the token here instead of under the vault directory (a new file, in a
    /// directory only you can read).
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ContainerListArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ContainerNameArgs {
    /// The client's name.
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ContainerEnvFormat {
    /// AWS_CONTAINER_CREDENTIALS_FULL_URI=… and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=…
    Env,
    /// `docker run`/`podman run` flags.
    Docker,
    /// A compose service snippet.
    Compose,
}

#[derive(Debug, Args)]
pub struct ContainerEnvArgs {
    /// The client's name.
    pub name: String,
    #[arg(long, value_enum, default_value = "env")]
    pub format: ContainerEnvFormat,
    /// The address `vault serve` listens on.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: std::net::SocketAddr,
    /// docker/compose: the network the container joins (see docs/containers.md).
    #[arg(long, value_name = "NAME", default_value = "vault")]
    pub network: String,
    /// docker/compose: where the token's directory is mounted in the container.
    #[arg(long, value_name = "DIR", default_value = "/run/vault-credentials")]
    pub mount_at: String,
}

#[derive(Debug, Args)]
pub struct ContainerLogArgs {
    /// Only this client's requests.
    pub name: Option<String>,
    /// Keep printing new lines as they come.
    #[arg(short, long)]
    pub follow: bool,
    /// Print the log's JSON lines as they are.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen here (repeatable): loopback, or a container-credential address the SDKs
    /// accept over HTTP (169.254.170.2, 169.254.170.23, fd00:ec2::23).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: Vec<std::net::SocketAddr>,
    /// Allow any other address, wildcards included: every host that reaches it can try
    /// tokens.
    #[arg(long)]
    pub expose_to_network: bool,
    /// Mint nothing until the first request (by default every registered profile is minted
    /// at start, so MFA prompts come now, on this terminal).
    #[arg(long)]
    pub lazy: bool,
}

/// `7d`, or a Go duration (`12h`, `90m`).
fn parse_expiry(s: &str) -> Result<Duration, String> {
    let d = match s.strip_suffix('d').map(str::parse::<u64>) {
        Some(Ok(days)) => days
            .checked_mul(86_400)
            .map(Duration::from_secs)
            .ok_or_else(|| "too long".to_owned())?,
        _ => parse_duration(s)?,
    };
    if d.is_zero() {
        return Err("must be longer than 0".to_owned());
    }
    Ok(d)
}
