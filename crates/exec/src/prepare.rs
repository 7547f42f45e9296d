//! From a validated request to a plan, and from a plan to credentials (cached or minted):
//! what `exec`, `export`, `login` and `rotate` share. Flags were checked by clap; this is
//! the one place that reads the config, opens the vault and builds the plan.

use std::time::Duration;

use secrecy::SecretString;
use vault_store::{Credentials, Vault};
use vault_sts::aws::Aws;
use vault_sts::config::ConfigFile;
use vault_sts::mint::Minter;
use vault_sts::origin::{Origin, Sourced};
use vault_sts::plan::{self, Plan, PlanOptions, StepKind};
use vault_sts::policy::SessionPolicy;
use vault_sts::profile::{self, Overrides, ProfileError};
use vault_sts::signin::Console;
use vault_sts::sso::{Sso, SsoOptions};

use crate::cli::{CredentialArgs, SignInArgs};
use crate::context::Context;
use crate::error::{CommandError, CommandResult, Kind, mint_error, profile_error};
use crate::mfa::MfaCodes;
use crate::process::Helpers;
use crate::prompt::Notices;
use crate::sso::Browser;

/// What a command asks for: a profile and how to reach its credentials, already validated.
/// Built once the profile is known (named, from `AWS_PROFILE`, or picked), so nothing after
/// it asks which profile.
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
    /// `--policy`/`--policy-arn`: replaces the profile's session policy.
    pub policy: Option<SessionPolicy>,
    /// The command deals itself with a session policy the plan cannot carry: `vault login`
    /// puts it on GetFederationToken, `vault rotate` calls IAM as the key's own user.
    pub uncarried_policy_ok: bool,
}

impl Request {
    /// A request for `profile` with nothing else set.
    pub fn profile(profile: String) -> Request {
        Request {
            profile,
            ..Request::default()
        }
    }

    /// A request for the chosen `profile` with the credential flags of `args`.
    pub fn new(profile: String, args: &CredentialArgs) -> Request {
        Request {
            profile,
            duration: args.duration,
            no_session: args.no_session,
            region: args.region.clone(),
            mfa_token: args.mfa_token.clone().map(|c| c.0),
            plan_only: false,
            policy: args.policy.session_policy(),
            uncarried_policy_ok: false,
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
    /// How a console session the vault keeps is signed in again when it has ended.
    pub console_page: crate::sso::ConsolePage,
    pub helpers: Helpers,
    /// `--explain` only: the profile whose stored key the plan starts from, when the vault
    /// has none (any other command stops at it).
    pub missing_key: Option<String>,
    /// The AWS CLI's cache of console sessions (`AWS_LOGIN_CACHE_DIRECTORY`, else
    /// `~/.aws/login/cache`); `None` without a home.
    pub login_cache_dir: Option<std::path::PathBuf>,
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
    let (plan, missing_key) = plan_for(ctx, &config, &stored, request)?;
    let aws = ctx.aws(
        &config,
        &request.profile,
        plan.region.as_ref().map(|r| r.value.clone()),
    );
    let mfa = MfaCodes::new(
        request.mfa_token.clone(),
        plan.mfa_process.clone(),
        ctx.prompts(),
    );
    // An SSO sign-in keeps its tokens in the vault: the first one makes the vault. So does
    // a role assumed from a console session, whose session is cached there like any other
    // (the console session itself stays in the AWS CLI's cache).
    let console_role =
        matches!(plan.steps[0].kind, StepKind::LoginSession(_)) && plan.steps.len() > 1;
    if (matches!(plan.steps[0].kind, StepKind::SsoRole { .. }) || console_role)
        && !request.plan_only
        && let Some(notice) = vault.create_if_missing()?
    {
        eprintln!("vault: {notice}");
    }
    let implicit = SignInArgs::default();
    Ok(Prepared {
        vault,
        plan,
        mfa,
        aws,
        sso: crate::sso::options(&implicit, false, &ctx.settings),
        browser: Browser::new(&implicit, &ctx.settings),
        console_page: crate::sso::ConsolePage::new(&ctx.settings, false, false),
        helpers: Helpers {
            timeout: ctx.settings.helper_timeout,
        },
        missing_key,
        login_cache_dir: login_cache_dir(&ctx.settings),
    })
}

/// Where `aws login` keeps its console sessions, as the AWS CLI and aws-config look for it.
pub(crate) fn login_cache_dir(settings: &crate::settings::Settings) -> Option<std::path::PathBuf> {
    settings
        .login_cache_dir
        .clone()
        .or_else(|| dirs::home_dir().map(|h| h.join(".aws").join("login").join("cache")))
}

/// The profile resolved against the config, the stored keys and the environment, the plan
/// of calls for it, and (for `--explain` only) the stored key it lacks.
fn plan_for(
    ctx: &Context,
    config: &ConfigFile,
    stored: &[String],
    request: &Request,
) -> CommandResult<(Plan, Option<String>)> {
    let settings = &ctx.settings;
    let has_key = |name: &str| stored.iter().any(|s| s == name);
    let mut overrides = Overrides::from_env(|n| settings.aws_var(n));
    if let Some(region) = &request.region {
        overrides.region = Some(Sourced::new(region.clone(), Origin::Flag("--region")));
    }
    overrides.session_policy = request.policy.clone();
    let resolve = match request.plan_only {
        true => profile::resolve_without_key,
        false => profile::resolve,
    };
    let resolved = resolve(config, &request.profile, &overrides, &has_key)
        .map_err(|e| unresolved(ctx, stored, e))?;
    let missing_key = resolved.missing_key(&has_key).map(str::to_owned);
    let endpoints = ctx.endpoints(config, &request.profile);
    let plan = plan::plan(
        &resolved,
        &PlanOptions {
            no_session: request.no_session,
            duration: request
                .duration
                .map(|d| Sourced::new(d, Origin::Flag("--duration"))),
            ttls: settings.ttls.clone(),
            endpoint: endpoints.sts.as_ref().map(|e| e.value.clone()),
            sso_endpoint: endpoints.sso.as_ref().map(|e| e.value.clone()),
            signin_endpoint: endpoints.signin.as_ref().map(|e| e.value.clone()),
            source_fingerprint: resolved.source.fingerprint(|n| settings.aws_var(n)),
        },
    )
    .map_err(|e| {
        CommandError::from_error(Kind::User, e)
            .hint("STS sessions last between 15m and 12h (GetSessionToken: 36h)")
    })?;
    if let Some(policy) = &plan.policy
        && !plan.policy_carried()
        && !request.uncarried_policy_ok
    {
        return Err(policy_without_role(&plan, policy));
    }
    Ok((plan, missing_key))
}

/// A session policy for a profile whose final credentials come from no AssumeRole: STS has
/// nowhere to put it (GetSessionToken takes none), and a session wider than asked for must
/// not be handed out.
fn policy_without_role(plan: &Plan, policy: &SessionPolicy) -> CommandError {
    let origin = policy
        .document
        .as_ref()
        .map(|d| d.origin.clone())
        .or_else(|| policy.arns.first().map(|a| a.origin.clone()))
        .unwrap_or(Origin::Default);
    CommandError::user(format!(
        "profile {:?} assumes no role, so the session policy ({origin}) has nowhere to go: {} takes none",
        plan.profile,
        plan.final_step().name()
    ))
    .hint(format!(
        "use a profile with role_arn, or `vault login {}` for a console session (GetFederationToken takes the policy)",
        plan.profile
    ))
}

/// A profile that does not resolve. For a name nobody knows, the whole config file is read
/// (the plan read only the sections it needed) to find the name that was meant.
fn unresolved(ctx: &Context, stored: &[String], e: ProfileError) -> CommandError {
    let suggestion = match &e {
        ProfileError::Unknown { name, .. } => ctx
            .load_config()
            .ok()
            .and_then(|full| crate::pick::did_you_mean(&full, stored, name)),
        _ => None,
    };
    profile_error(e, &ctx.config_path, suggestion)
}

impl Prepared {
    /// The plan runner over this vault, with our MFA codes and helper processes.
    pub fn minter(&self) -> Minter<'_> {
        self.minter_with(&self.mfa)
    }

    /// [`Prepared::minter`] with MFA codes from `mfa`.
    pub fn minter_with<'a>(&'a self, mfa: &'a dyn vault_sts::mfa::MfaSource) -> Minter<'a> {
        Minter::new(&self.vault, mfa, &self.helpers, &self.aws)
            .telling(&Notices)
            .with_sso(Sso::new(&self.vault, &self.aws, &self.browser, &self.sso).telling(&Notices))
            .with_console(self.console())
    }

    /// The AWS CLI's console sessions, for `login_session` profiles.
    pub fn console(&self) -> Console<'_> {
        Console::new(&self.vault, &self.aws, self.login_cache_dir.as_deref())
            .telling(&Notices)
            .signing_in(self.console_page.reauth())
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
