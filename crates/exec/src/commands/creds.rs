//! Shared by `exec` and `export`: from `CredentialArgs` to a plan, and from a plan to
//! credentials (cached or minted).

use std::time::Duration;

use secrecy::SecretString;
use vault_store::{Credentials, Vault};
use vault_sts::config::ConfigFile;
use vault_sts::duration;
use vault_sts::mint::{MintError, Minter, StsSettings};
use vault_sts::plan::{self, Plan, PlanOptions, Ttls};
use vault_sts::profile::{
    self, BaseSource, CredentialSourceKind, Origin, Overrides, ProfileError, Sourced,
};

use crate::cli::CredentialArgs;
use crate::context::{Context, non_empty_env};
use crate::error::{CommandError, CommandResult};
use crate::mfa::{self, MfaCodes};

/// Everything needed to obtain a profile's credentials.
pub struct Prepared {
    pub vault: Vault,
    pub plan: Plan,
    pub mfa: MfaCodes,
    pub sts: StsSettings,
    /// The endpoint override in force and where it came from, for `--explain`.
    pub endpoint: Option<Sourced<String>>,
}

/// The result: credentials and the region the child should use.
pub struct Obtained {
    pub credentials: Credentials,
    pub region: Option<String>,
    pub account_id: Option<String>,
}

pub fn prepare(ctx: &Context, args: &CredentialArgs) -> CommandResult<Prepared> {
    let token = args.mfa_token.clone().map(SecretString::from);
    if let Some(token) = &token {
        mfa::validate_flag(token).map_err(|e| {
            CommandError::user(format!("--mfa-token: {e}"))
                .hint("type the 6-digit code your MFA device shows now")
        })?;
    }
    let config = ctx.load_config_for(&args.profile)?;
    let vault = ctx.open_vault()?;
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
    if let Some(region) = &args.region {
        overrides.region = Some(Sourced::new(region.clone(), Origin::Flag("--region")));
    }
    let resolved = profile::resolve(&config, &args.profile, &overrides, &has_key)
        .map_err(|e| profile_error(e, ctx))?;

    let ttls = Ttls::from_env(non_empty_env)
        .map_err(|e| CommandError::user(e).hint("durations look like 1h, 90m or 3600s"))?;
    let duration = match &args.duration {
        Some(text) => Some(Sourced::new(
            duration::parse(text).map_err(|reason| {
                CommandError::user(format!("invalid --duration: {reason}"))
                    .hint("durations look like 1h, 90m or 3600s, between 15m and 12h")
            })?,
            Origin::Flag("--duration"),
        )),
        None => None,
    };
    let endpoint = endpoint_override(&config, &args.profile);
    let plan = plan::plan(
        &resolved,
        &PlanOptions {
            no_session: args.no_session,
            duration,
            ttls,
            endpoint: endpoint.as_ref().map(|e| e.value.clone()),
            source_fingerprint: source_fingerprint(&resolved.source),
        },
    )
    .map_err(|e| {
        CommandError::user(e).hint("STS sessions last between 15m and 12h (GetSessionToken: 36h)")
    })?;

    let region = plan
        .region
        .as_ref()
        .map(|r| r.value.clone())
        .unwrap_or_else(|| "us-east-1".to_owned());
    let sts = StsSettings {
        profile: args.profile.clone(),
        endpoint: match &endpoint {
            Some(e) => e.value.clone(),
            None => format!("the STS endpoint of {region}"),
        },
        region,
        connect_timeout: Duration::from_secs(3),
    };
    let mfa = MfaCodes::new(token, plan.mfa_process.clone());
    Ok(Prepared {
        vault,
        plan,
        mfa,
        sts,
        endpoint,
    })
}

/// Runs the plan: cached sessions where fresh enough, STS for the rest.
pub fn obtain(prepared: &Prepared) -> CommandResult<Obtained> {
    let minter = Minter::new(&prepared.vault, &prepared.mfa, prepared.sts.clone());
    let minted = minter
        .credentials(&prepared.plan)
        .map_err(|e| mint_error(e, &prepared.plan))?;
    for step in &minted.minted {
        tracing::debug!("minted: {step}");
    }
    Ok(Obtained {
        credentials: minted.credentials,
        region: prepared.plan.region.as_ref().map(|r| r.value.clone()),
        account_id: minted.account_id,
    })
}

/// A digest of who the outside base credentials are, so sessions they minted are reused only
/// for the same credentials: the environment's key id, or the web identity token.
fn source_fingerprint(source: &BaseSource) -> Option<String> {
    use sha2::{Digest, Sha256};
    let material = match source {
        BaseSource::CredentialSource(kind) => match kind.value {
            CredentialSourceKind::Environment => non_empty_env("AWS_ACCESS_KEY_ID")?,
            CredentialSourceKind::EcsContainer => [
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            ]
            .iter()
            .filter_map(|n| non_empty_env(n))
            .collect::<Vec<_>>()
            .join("|"),
            CredentialSourceKind::Ec2InstanceMetadata => {
                non_empty_env("AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or_default()
            }
        },
        BaseSource::WebIdentity { token_file, .. } => {
            std::fs::read_to_string(&token_file.value).ok()?
        }
        BaseSource::StoredKey | BaseSource::Process(_) => return None,
    };
    Some(hex::encode(&Sha256::digest(material.as_bytes())[..12]))
}

/// The endpoint the SDK will use for STS when one is configured: `AWS_ENDPOINT_URL_STS`,
/// `AWS_ENDPOINT_URL`, or the profile's `endpoint_url` (unless
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`). aws-config resolves it for the actual calls; this
/// copy is for cache keys, messages and `--explain`.
fn endpoint_override(config: &ConfigFile, profile: &str) -> Option<Sourced<String>> {
    if non_empty_env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v == "true") {
        return None;
    }
    for name in ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"] {
        if let Some(url) = non_empty_env(name) {
            return Some(Sourced::new(url, Origin::Env(name)));
        }
    }
    config.get(profile, "endpoint_url").map(|(url, line)| {
        Sourced::new(
            url.to_owned(),
            Origin::Config {
                path: config.path.clone(),
                line,
                profile: profile.to_owned(),
            },
        )
    })
}

fn profile_error(e: ProfileError, ctx: &Context) -> CommandError {
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
        ProfileError::NoSource { profile, .. } => format!(
            "add `source_profile = NAME` to [profile {profile}], naming the profile whose key assumes the role"
        ),
    };
    CommandError::user(e).hint(hint)
}

fn mint_error(e: MintError, plan: &Plan) -> CommandError {
    let e = match e {
        MintError::Store(store) => return store.into(),
        other => other,
    };
    let hint = match &e {
        MintError::Store(_) => unreachable!("handled above"),
        MintError::NoStoredKey(p) => format!("store its key pair: vault add {p}"),
        MintError::Mfa(_) => "pass --mfa-token CODE, or set mfa_process in the profile".to_owned(),
        MintError::BadMfaCode => "type the 6-digit code your MFA device shows now".to_owned(),
        MintError::Refused { code, .. } if code.contains("AccessDenied") => format!(
            "check that the user of the stored key of {:?} may assume the role (trust policy, MFA condition); `vault exec --explain {}` shows every step",
            plan.base, plan.profile
        ),
        MintError::Refused { code, .. } if code.contains("InvalidClientTokenId") || code.contains("SignatureDoesNotMatch") => format!(
            "the stored key of {:?} is not accepted; replace it with `vault add --force {}`",
            plan.base, plan.base
        ),
        MintError::Refused { .. } => format!(
            "`vault exec --explain {}` shows every step and where its values come from",
            plan.profile
        ),
        MintError::Unreachable { .. } => {
            "check the network, or AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_STS / endpoint_url if you set one".to_owned()
        }
        MintError::Other { .. } => "run again with --debug for details".to_owned(),
        MintError::Source { source_name, .. } => match *source_name {
            "Environment" => "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) for credential_source = Environment".to_owned(),
            "Ec2InstanceMetadata" => "credential_source = Ec2InstanceMetadata needs an instance role (or AWS_EC2_METADATA_SERVICE_ENDPOINT)".to_owned(),
            "EcsContainer" => "credential_source = EcsContainer needs AWS_CONTAINER_CREDENTIALS_FULL_URI or _RELATIVE_URI".to_owned(),
            _ => "check web_identity_token_file: the file must exist and hold the token".to_owned(),
        },
        MintError::Console(_) => "check the network, or VAULT_FEDERATION_ENDPOINT if you set it".to_owned(),
        MintError::Process { .. } => {
            "run the credential_process command yourself: it must print JSON with \"Version\": 1, AccessKeyId and SecretAccessKey".to_owned()
        }
    };
    CommandError::user(e).hint(hint)
}
