//! Errors of the `sts` crate (profiles, minting, SSO sign-ins) as messages with what to type
//! next. Pure mapping: the caller has gathered whatever a hint needs.

use std::path::Path;

use vault_sts::aws::Service;
use vault_sts::aws::sts_calls::ExternalSource;
use vault_sts::mint::MintError;
use vault_sts::plan::Plan;
use vault_sts::profile::ProfileError;
use vault_sts::signin::{LoginError, SignInError};
use vault_sts::sso::ShowError;
use vault_sts::sso::SsoError;

use super::{CommandError, Kind, escaped};

/// A profile that cannot be resolved, with what to do; `suggestion` is the known name
/// closest to a misspelt one (see `pick::did_you_mean`); `config_path` is the file to fix.
pub fn profile_error(
    e: ProfileError,
    config_path: &Path,
    suggestion: Option<String>,
) -> CommandError {
    let hint = match &e {
        ProfileError::Unknown { .. } => {
            "`vault list --profiles` shows the profiles of the config file; `vault add NAME` stores a key pair".to_owned()
        }
        ProfileError::NoStoredKey { profile } => format!("store its key pair: vault add {profile}"),
        ProfileError::Cycle(_) | ProfileError::IncludeCycle(_) => format!(
            "a chain of source_profile must end at a profile with a stored key; fix {}",
            config_path.display()
        ),
        ProfileError::MissingSource { missing, .. } => format!(
            "add [profile {missing}] to {} or store its key pair with `vault add {missing}`",
            config_path.display()
        ),
        ProfileError::MissingInclude { .. } | ProfileError::Invalid { .. } => {
            format!("fix the profile in {}", config_path.display())
        }
        ProfileError::SsoSession { session, .. } => format!(
            "an [sso-session {session}] section needs sso_start_url and sso_region (docs/sso.md); fix {}",
            config_path.display()
        ),
        ProfileError::RoleBesideSignIn {
            profile,
            console,
            sign_in,
            role_arn,
            ..
        } => {
            let own = match console {
                true => format!("{profile}-console"),
                false => format!("{profile}-sso"),
            };
            format!(
                "give the sign-in a profile of its own and name it as the role's source, in {}:\n\n  [profile {own}]\n  {}\n\n  [profile {profile}]\n  source_profile = {own}\n  role_arn = {role_arn}",
                config_path.display(),
                sign_in.join("\n  "),
            )
        }
        ProfileError::NoSource { profile, .. } => format!(
            "add `source_profile = NAME` to [profile {profile}], naming the profile whose key assumes the role"
        ),
    };
    let error = CommandError::from_error(Kind::Config, e);
    match suggestion {
        Some(name) => error.hint(format!("did you mean `{}`?", escaped(&name))),
        None => error,
    }
    .hint(hint)
}

pub fn mint_error(e: MintError, plan: &Plan) -> CommandError {
    use vault_sts::aws::AwsErrorKind;
    use vault_sts::mfa::{MfaError, MfaOrigin};
    let e = match e {
        MintError::Store(store) => return store.into(),
        MintError::Sso(sso) => return sso_error(sso),
        MintError::Login(login) => return login_error(*login, plan),
        other => other,
    };
    let hint = match &e {
        MintError::Store(_) | MintError::Sso(_) | MintError::Login(_) => {
            unreachable!("returned above")
        }
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

/// A console session (`login_session`) that gave no credentials, as a message with what to
/// type: a new sign-in (exit 1, as for a missing stored key).
pub fn login_error(e: LoginError, plan: &Plan) -> CommandError {
    login_error_for(e, &plan.base)
}

/// [`login_error`] for the profile `base` that holds `login_session`.
pub fn login_error_for(e: LoginError, base: &str) -> CommandError {
    let aws_login = format!(
        "sign in again with `vault signin {base}` (kept encrypted) or `aws login --profile {base}` (the AWS CLI v2.32 or later)"
    );
    let vault_signin = format!("sign in again with `vault signin {base}`");
    let hint = match &e {
        LoginError::Store(_) => {
            let LoginError::Store(store) = e else {
                unreachable!()
            };
            return store.into();
        }
        LoginError::Refused { in_vault: true, .. }
        | LoginError::FailedElsewhere { .. }
        | LoginError::HeldDamaged { .. }
        | LoginError::SignIn { .. }
        | LoginError::OtherIdentity { .. } => vault_signin,
        LoginError::NoCache { .. } | LoginError::Refused { .. } => aws_login,
        LoginError::NoCacheDir { .. } => format!(
            "set AWS_LOGIN_CACHE_DIRECTORY to the directory `aws login` writes, or {aws_login}"
        ),
        LoginError::Unreachable { .. } => format!(
            "check the network, or {} if you set one",
            endpoint_variables(Service::Signin)
        ),
        LoginError::Failed { path, .. } => format!(
            "the AWS CLI's cache file {} could not be used; {aws_login}",
            path.display()
        ),
        LoginError::CliFile { .. } => {
            "fix the directory's permissions, or sign in without --cli-cache".to_owned()
        }
        LoginError::Busy { .. } => {
            "another vault process is stuck refreshing it: stop it, then run the command again"
                .to_owned()
        }
    };
    CommandError::from_error(Kind::User, e).hint(hint)
}

/// A `vault signin` that did not complete, with what to do next.
pub fn signin_error(e: SignInError, profile: &str, remote: bool) -> CommandError {
    let again = match remote {
        true => format!("vault signin {profile} --remote"),
        false => format!("vault signin {profile}"),
    };
    let (kind, hint) = match &e {
        SignInError::Listen(_) => (
            Kind::User,
            format!("sign in on another device instead: vault signin {profile} --remote"),
        ),
        SignInError::Endpoint { .. } => (
            Kind::Usage,
            "pass a region AWS Sign-In serves (--region us-east-1)".to_owned(),
        ),
        SignInError::Show(ShowError::BadBrowser(_)) => (
            Kind::Config,
            format!(
                "fix BROWSER, or run `vault signin {profile} --no-browser` and open the page yourself"
            ),
        ),
        SignInError::Show(_) => (
            Kind::User,
            format!("run `vault signin {profile} --no-browser` and open the page yourself"),
        ),
        SignInError::Denied | SignInError::TimedOut { .. } | SignInError::Redirect { .. } => {
            (Kind::User, format!("run `{again}` and approve the sign-in"))
        }
        SignInError::NoCode | SignInError::BadCode(_) | SignInError::StateMismatch => (
            Kind::User,
            format!(
                "run `{again}`, sign in on the page it shows, and type the code that page shows"
            ),
        ),
        SignInError::Refused { .. } => (Kind::User, format!("run `{again}` to sign in anew")),
        SignInError::Unreachable { .. } => (
            Kind::User,
            format!(
                "check the network, or {} if you set one",
                endpoint_variables(Service::Signin)
            ),
        ),
        SignInError::Answer(_) => (
            Kind::User,
            format!("run `{again}`; if it happens again, check AWS_ENDPOINT_URL_SIGNIN"),
        ),
    };
    CommandError::from_error(kind, e).hint(hint)
}

/// The variables that move `service`'s endpoint, for hints.
fn endpoint_variables(service: Service) -> &'static str {
    match service {
        Service::Sts => "AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_STS / endpoint_url",
        Service::Iam => "AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_IAM / endpoint_url",
        Service::Sso => "AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_SSO / endpoint_url",
        Service::SsoOidc => "AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_SSO_OIDC / endpoint_url",
        Service::Signin => "AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_SIGNIN",
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
            // GetRoleCredentials: signed in fine, but this role is not this user's.
            AwsErrorKind::Refused { .. } if aws.code() == Some("ForbiddenException") => {
                "IAM Identity Center does not assign that role in that account to the user who signed in: check the profile's sso_account_id and sso_role_name (`vault sso accounts` lists what the sign-in can use), or ask an administrator for the assignment".to_owned()
            }
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
        SsoError::Refused { label, error, scopes, .. } if error == "invalid_scope" => format!(
            "IAM Identity Center does not allow the scopes this sign-in asked for ({}); they are sso_registration_scopes in the [{label}] section of the AWS config: keep sso:account:access, the scope the AWS access portal needs",
            scopes.join(", ")
        ),
        SsoError::Refused { .. } => {
            "the service's reason is above; `vault sso login NAME` signs in afresh".to_owned()
        }
        SsoError::Failed { .. } => "run `vault sso login NAME` again".to_owned(),
        SsoError::FailedElsewhere { .. } => {
            "that was another vault process's sign-in, which this one waited for; run the command again to sign in anew".to_owned()
        }
        SsoError::Busy { .. } => {
            "another vault is still waiting for its sign-in (a browser, a device code): finish or stop it, then run the command again".to_owned()
        }
        SsoError::Listen(_) => {
            "use the device flow instead: vault sso login --use-device-code NAME".to_owned()
        }
        SsoError::CliCache { .. } => {
            "fix the directory's permissions, or sign in without --cli-cache".to_owned()
        }
    };
    CommandError::from_error(Kind::User, e).hint(hint)
}
