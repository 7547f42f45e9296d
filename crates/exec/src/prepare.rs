//! From a validated request to a plan, and from a plan to credentials (cached or minted):
//! what `exec`, `export`, `login` and `rotate` share. Flags were checked by clap; this is
//! the one place that reads the config, opens the vault and builds the plan.

use std::time::Duration;

use secrecy::SecretString;
use vault_store::{Credentials, Vault};
use vault_sts::aws::{Aws, AwsSettings, Service, Timeouts};
use vault_sts::endpoints::Endpoints;
use vault_sts::mint::{MintError, Minter};
use vault_sts::origin::{Origin, Sourced};
use vault_sts::plan::{self, Plan, PlanOptions, StepKind, Ttls};
use vault_sts::profile::{self, Overrides, ProfileError};
use vault_sts::sso::{Sso, SsoError, SsoOptions};

use crate::cli::CredentialArgs;
use crate::context::{Context, non_empty_env};
use crate::error::{CommandError, CommandResult, Kind};
use crate::mfa::MfaCodes;
use crate::process::Helpers;
use crate::sso::Browser;

/// What a command asks for: a profile and how to reach its credentials, already validated.
#[derive(Debug, Default)]
pub struct Request {
    pub profile: String,
    /// The final session's lifetime (`--duration`).
    pub duration: Option<Duration>,
    /// `--no-session`: no GetSessionToken.
    pub no_session: bool,
    /// `--region`: the region for STS and the child.
    pub region: Option<String>,
    /// `--mfa-token`, six digits.
    pub mfa_token: Option<SecretString>,
    /// `--explain`: only the plan is wanted, so nothing is created.
    pub plan_only: bool,
}

impl Request {
    /// A request for `profile` with nothing else set.
    pub fn profile(profile: &str) -> Request {
        Request {
            profile: profile.to_owned(),
            ..Request::default()
        }
    }
}

impl From<&CredentialArgs> for Request {
    fn from(args: &CredentialArgs) -> Request {
        Request {
            profile: args.profile().to_owned(),
            duration: args.duration,
            no_session: args.no_session,
            region: args.region.clone(),
            mfa_token: args.mfa_token.clone().map(|c| c.0),
            plan_only: false,
        }
    }
}

/// The variable that bounds every AWS call (all retries included).
pub const STS_TIMEOUT_ENV: &str = "AWS_VAULT_STS_TIMEOUT";

/// [`Timeouts::DEFAULT`], the whole call bounded by `AWS_VAULT_STS_TIMEOUT` when set; the
/// attempts from `AWS_MAX_ATTEMPTS` as in the SDKs.
pub fn timeouts() -> CommandResult<Timeouts> {
    let mut timeouts = Timeouts::DEFAULT;
    if let Some(text) = non_empty_env(STS_TIMEOUT_ENV) {
        let d = vault_sts::duration::parse(&text)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                CommandError::user(format!("{STS_TIMEOUT_ENV}={} is not a duration", text))
                    .hint("durations look like 10s, 1m or 90s")
            })?;
        timeouts = timeouts.within(d);
    }
    if let Some(text) = non_empty_env("AWS_MAX_ATTEMPTS") {
        timeouts.attempts = text.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            CommandError::user(format!("AWS_MAX_ATTEMPTS={text} is not a positive number"))
        })?;
    }
    Ok(timeouts)
}

/// Says on stderr what a command is waiting for (never stdout: that is for data), and only
/// when stderr is a terminal: a status line is for a person watching, not for the log of an
/// IDE or a CI job.
pub struct Notices;

impl vault_sts::aws::Waiting for Notices {
    fn waiting_for(&self, what: &str) {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            eprintln!("vault: waiting for {}…", crate::error::escaped(what));
        }
    }
}

/// Everything needed to obtain a profile's credentials.
pub struct Prepared {
    pub vault: Vault,
    pub plan: Plan,
    pub mfa: MfaCodes,
    pub aws: Aws,
    /// How SSO sign-ins are shown and kept, for SSO profiles.
    pub sso: SsoOptions,
    pub browser: Browser,
}

/// The result: credentials and the region the child should use.
pub struct Obtained {
    pub credentials: Credentials,
    pub region: Option<String>,
    pub account_id: Option<String>,
}

pub fn prepare(ctx: &Context, request: &Request) -> CommandResult<Prepared> {
    let config = ctx.load_config_for(&request.profile)?;
    let mut vault = ctx.open_vault()?;
    if let Some(reason) = vault.sessions()?.discarded {
        eprintln!(
            "vault: warning: discarding the damaged session cache ({reason}); sessions will be minted again"
        );
    }
    let stored: Vec<String> = vault
        .credential_profiles()?
        .into_iter()
        .map(|c| c.profile)
        .collect();
    let has_key = |name: &str| stored.iter().any(|s| s == name);

    let mut overrides = Overrides::from_env(non_empty_env);
    if let Some(region) = &request.region {
        overrides.region = Some(Sourced::new(region.clone(), Origin::Flag("--region")));
    }
    let resolved = profile::resolve(&config, &request.profile, &overrides, &has_key)
        .map_err(|e| profile_error(e, ctx))?;

    let ttls = Ttls::from_env(non_empty_env).map_err(|e| {
        CommandError::from_error(Kind::Config, e).hint("durations look like 1h, 90m or 3600s")
    })?;
    let endpoints = Endpoints::from_env(&config, &request.profile, non_empty_env);
    let plan = plan::plan(
        &resolved,
        &PlanOptions {
            no_session: request.no_session,
            duration: request
                .duration
                .map(|d| Sourced::new(d, Origin::Flag("--duration"))),
            ttls,
            endpoint: endpoints.sts.as_ref().map(|e| e.value.clone()),
            sso_endpoint: endpoints.sso.as_ref().map(|e| e.value.clone()),
            source_fingerprint: resolved.source.fingerprint(non_empty_env),
        },
    )
    .map_err(|e| {
        CommandError::from_error(Kind::User, e)
            .hint("STS sessions last between 15m and 12h (GetSessionToken: 36h)")
    })?;

    let region = plan
        .region
        .as_ref()
        .map(|r| r.value.clone())
        .unwrap_or_else(|| "us-east-1".to_owned());
    let aws = Aws::new(AwsSettings {
        profile: request.profile.clone(),
        region,
        endpoints,
        timeouts: timeouts()?,
    })
    .telling(std::sync::Arc::new(Notices));
    let mfa = MfaCodes::new(
        request.mfa_token.clone(),
        plan.mfa_process.clone(),
        ctx.prompt,
    );
    // An SSO sign-in keeps its tokens in the vault: the first one makes the vault.
    if matches!(plan.steps[0].kind, StepKind::SsoRole { .. })
        && !request.plan_only
        && let Some(notice) = vault.create_if_missing()?
    {
        eprintln!("vault: {notice}");
    }
    Ok(Prepared {
        vault,
        plan,
        mfa,
        aws,
        sso: crate::sso::options(&Default::default(), false),
        browser: Browser::default(),
    })
}

impl Prepared {
    /// The plan runner over this vault, with our MFA codes and helper processes.
    pub fn minter(&self) -> Minter<'_> {
        self.minter_with(&self.mfa)
    }

    /// [`Prepared::minter`] with MFA codes from `mfa`.
    pub fn minter_with<'a>(&'a self, mfa: &'a dyn vault_sts::mfa::MfaSource) -> Minter<'a> {
        Minter::new(&self.vault, mfa, &Helpers, &self.aws)
            .telling(&Notices)
            .with_sso(Sso::new(&self.vault, &self.aws, &self.browser, &self.sso).telling(&Notices))
    }

    /// Runs the plan: cached sessions where fresh enough, STS for the rest.
    pub fn obtain(&self) -> CommandResult<Obtained> {
        let minted = self
            .minter()
            .credentials(&self.plan)
            .map_err(|e| mint_error(e, &self.plan))?;
        for step in &minted.minted {
            tracing::debug!("minted: {step}");
        }
        for warning in &minted.warnings {
            eprintln!("vault: warning: {}", crate::error::escaped(warning));
        }
        // Only a command that worked counts as a use (a failed one changes no file).
        crate::pick::note_use(&self.vault, &self.plan.profile);
        Ok(Obtained {
            credentials: minted.credentials,
            region: self.plan.region.as_ref().map(|r| r.value.clone()),
            account_id: minted.account_id,
        })
    }
}

pub fn profile_error(e: ProfileError, ctx: &Context) -> CommandError {
    let suggestion = match &e {
        ProfileError::Unknown { name, .. } => suggest(ctx, name),
        _ => None,
    };
    let hint = match &e {
        ProfileError::Unknown { .. } => {
            "`vault list --profiles` shows the profiles of the config file; `vault add NAME` stores a key pair".to_owned()
        }
        ProfileError::NoStoredKey { profile } => format!("store its key pair: vault add {profile}"),
        ProfileError::Cycle(_) | ProfileError::IncludeCycle(_) => format!(
            "a chain of source_profile must end at a profile with a stored key; fix {}",
            ctx.config_path.display()
        ),
        ProfileError::MissingSource { missing, .. } => format!(
            "add [profile {missing}] to {} or store its key pair with `vault add {missing}`",
            ctx.config_path.display()
        ),
        ProfileError::MissingInclude { .. } | ProfileError::Invalid { .. } => {
            format!("fix the profile in {}", ctx.config_path.display())
        }
        ProfileError::SsoSession { session, .. } => format!(
            "an [sso-session {session}] section needs sso_start_url and sso_region (docs/sso.md); fix {}",
            ctx.config_path.display()
        ),
        ProfileError::NoSource { profile, .. } => format!(
            "add `source_profile = NAME` to [profile {profile}], naming the profile whose key assumes the role"
        ),
    };
    let error = CommandError::from_error(Kind::Config, e);
    match suggestion {
        Some(name) => error.hint(format!("did you mean `{}`?", crate::error::escaped(&name))),
        None => error,
    }
    .hint(hint)
}

/// The known profile closest to a misspelt `name`, from the whole config file and the vault.
fn suggest(ctx: &Context, name: &str) -> Option<String> {
    let config = ctx.load_config().ok()?;
    let stored: Vec<String> = ctx
        .open_vault()
        .ok()
        .filter(Vault::exists)
        .and_then(|v| v.credential_profiles().ok())
        .map(|c| c.into_iter().map(|c| c.profile).collect())
        .unwrap_or_default();
    crate::pick::did_you_mean(&config, &stored, name)
}

pub fn mint_error(e: MintError, plan: &Plan) -> CommandError {
    use vault_sts::aws::AwsErrorKind;
    use vault_sts::aws::sts_calls::ExternalSource;
    use vault_sts::mfa::{MfaError, MfaOrigin};
    let e = match e {
        MintError::Store(store) => return store.into(),
        MintError::Sso(sso) => return sso_error(sso),
        other => other,
    };
    let hint = match &e {
        MintError::Store(_) | MintError::Sso(_) => unreachable!("returned above"),
        MintError::NoSso(_) => "use `vault exec` or `vault export` with this profile".to_owned(),
        MintError::NoStoredKey(p) => format!("store its key pair: vault add {p}"),
        MintError::Mfa(MfaError::Unavailable { from: MfaOrigin::Process(_), .. }) => {
            "run the mfa_process command yourself to see why it fails, or pass --mfa-token CODE"
                .to_owned()
        }
        MintError::Mfa(MfaError::Unavailable { from: MfaOrigin::Ykman, .. }) => {
            "check that ykman is installed and the key is plugged in, or pass --mfa-token CODE"
                .to_owned()
        }
        MintError::Mfa(MfaError::Unavailable { .. }) => {
            "pass --mfa-token CODE, set mfa_process in the profile, or choose a prompt with --prompt (zenity, kdialog, osascript, wincredui, ykman)".to_owned()
        }
        MintError::Mfa(MfaError::BadCode { from: MfaOrigin::Process(_), .. }) => {
            "mfa_process must print only the current 6-digit code; run it yourself to see what it prints"
                .to_owned()
        }
        MintError::Mfa(MfaError::BadCode { .. }) => {
            "type the 6-digit code your MFA device shows now".to_owned()
        }
        MintError::Aws(aws) => match (&aws.kind, aws.code().unwrap_or_default()) {
            (AwsErrorKind::Refused { .. }, code) if code.contains("AccessDenied") => format!(
                "check that the user of the stored key of {:?} may assume the role (trust policy, MFA condition); `vault exec --explain {}` shows every step",
                plan.base, plan.profile
            ),
            (AwsErrorKind::Refused { .. }, "InvalidClientTokenId" | "SignatureDoesNotMatch") => {
                format!(
                    "the stored key of {:?} is not accepted; replace it with `vault add --force {}`",
                    plan.base, plan.base
                )
            }
            (AwsErrorKind::Refused { .. }, _) => format!(
                "`vault exec --explain {}` shows every step and where its values come from",
                plan.profile
            ),
            (AwsErrorKind::Unreachable { .. }, _) => {
                let service = aws.service;
                let names = endpoint_variables(service);
                format!("check the network, or {names} if you set one")
            }
            (AwsErrorKind::Other { .. }, _) => "run again with --debug for details".to_owned(),
        },
        MintError::Source(source) => match source.kind {
            ExternalSource::Environment => "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) for credential_source = Environment".to_owned(),
            ExternalSource::Ec2InstanceMetadata => "credential_source = Ec2InstanceMetadata needs an instance role (or AWS_EC2_METADATA_SERVICE_ENDPOINT)".to_owned(),
            ExternalSource::EcsContainer => "credential_source = EcsContainer needs AWS_CONTAINER_CREDENTIALS_FULL_URI or _RELATIVE_URI".to_owned(),
            ExternalSource::WebIdentity => "check web_identity_token_file: the file must exist and hold the token".to_owned(),
        },
        MintError::Process(_) => {
            "run the credential_process command yourself: it must print JSON with \"Version\": 1, AccessKeyId and SecretAccessKey".to_owned()
        }
    };
    CommandError::from_error(Kind::User, e).hint(hint)
}

/// The variables that move `service`'s endpoint, for hints.
fn endpoint_variables(service: Service) -> &'static str {
    match service {
        Service::Sts => "AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_STS / endpoint_url",
        Service::Iam => "AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_IAM / endpoint_url",
        Service::Sso => "AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_SSO / endpoint_url",
        Service::SsoOidc => "AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_SSO_OIDC / endpoint_url",
    }
}

/// An SSO failure as a message with what to do next.
pub fn sso_error(e: SsoError) -> CommandError {
    use vault_sts::aws::AwsErrorKind;
    let hint = match &e {
        SsoError::Store(_) => {
            let SsoError::Store(store) = e else {
                unreachable!()
            };
            return store.into();
        }
        SsoError::Aws(aws) => match &aws.kind {
            AwsErrorKind::Unreachable { .. } => format!(
                "check the network, or {} if you set one",
                endpoint_variables(aws.service)
            ),
            _ => "check sso_start_url and sso_region; `vault sso login NAME` signs in afresh"
                .to_owned(),
        },
        SsoError::Denied { .. } => {
            "approve the sign-in in the browser, or check that the page was the one vault opened"
                .to_owned()
        }
        SsoError::Expired { .. } | SsoError::TimedOut { .. } => {
            "run the command again and approve the sign-in in time".to_owned()
        }
        SsoError::Show { .. } => {
            "set BROWSER, or pass --no-browser (vault sso login) and open the page yourself"
                .to_owned()
        }
        SsoError::Failed { .. } => "run `vault sso login NAME` again".to_owned(),
        SsoError::Listen(_) => {
            "use the device flow instead: vault sso login --use-device-code NAME".to_owned()
        }
        SsoError::CliCache { .. } => {
            "fix the directory's permissions, or sign in without --cli-cache".to_owned()
        }
    };
    CommandError::from_error(Kind::User, e).hint(hint)
}
