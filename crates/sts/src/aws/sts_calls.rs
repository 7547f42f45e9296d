//! The calls that mint a plan's credentials, each request built from what the profile says:
//! GetSessionToken, AssumeRole and AssumeRoleWithWebIdentity through aws-sdk-sts, and the
//! SDK's own providers behind `credential_source` (environment, instance, container). Which
//! call runs, and when, is [`crate::mint`]'s decision; this module is only how.

use std::fmt;
use std::time::Duration;

use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_sts::types::PolicyDescriptorType;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use vault_store::Credentials;
use zeroize::Zeroizing;

use crate::error_chain;
use crate::origin::Sourced;
use crate::policy::SessionPolicy;
use crate::profile::{CredentialSourceKind, RoleSpec};

use super::{Aws, AwsError, Service, credentials_from_sdk};

const GET_SESSION_TOKEN: &str = "GetSessionToken";
const ASSUME_ROLE: &str = "AssumeRole";
const ASSUME_ROLE_WITH_WEB_IDENTITY: &str = "AssumeRoleWithWebIdentity";

/// Credentials from outside the vault, which vault neither mints nor stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExternalSource {
    /// `credential_source = Environment`: the SDK's environment provider.
    Environment,
    /// `credential_source = Ec2InstanceMetadata`: the instance role (IMDS).
    Ec2InstanceMetadata,
    /// `credential_source = EcsContainer`: the container role.
    EcsContainer,
    /// `web_identity_token_file`: the token AssumeRoleWithWebIdentity sends.
    WebIdentity,
}

impl ExternalSource {
    /// The name the config file uses for it.
    pub fn name(self) -> &'static str {
        match self {
            ExternalSource::Environment => "Environment",
            ExternalSource::Ec2InstanceMetadata => "Ec2InstanceMetadata",
            ExternalSource::EcsContainer => "EcsContainer",
            ExternalSource::WebIdentity => "web_identity_token_file",
        }
    }
}

impl fmt::Display for ExternalSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<CredentialSourceKind> for ExternalSource {
    fn from(kind: CredentialSourceKind) -> Self {
        match kind {
            CredentialSourceKind::Environment => ExternalSource::Environment,
            CredentialSourceKind::Ec2InstanceMetadata => ExternalSource::Ec2InstanceMetadata,
            CredentialSourceKind::EcsContainer => ExternalSource::EcsContainer,
        }
    }
}

/// Outside credentials that could not be had: the SDK's provider gave none, or the web
/// identity token file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("no credentials from {kind} for profile {profile:?}: {message}")]
pub struct SourceError {
    pub kind: ExternalSource,
    pub profile: String,
    pub message: String,
}

/// Credentials STS issued, with the account of the assumed role when it said which.
#[derive(Debug)]
pub struct Issued {
    pub credentials: Credentials,
    pub account_id: Option<String>,
}

/// The MFA device and its current code, for a call that carries them.
#[derive(Clone, Copy, Debug)]
pub struct MfaCode<'a> {
    pub serial: &'a str,
    pub code: &'a SecretString,
}

/// What a role's session is asked for beyond the role: its name, its length, and the
/// session policy that narrows it (the final step's only).
#[derive(Clone, Copy, Debug)]
pub struct RoleSession<'a> {
    pub name: &'a str,
    pub duration: Option<Duration>,
    pub policy: Option<&'a SessionPolicy>,
}

impl RoleSession<'_> {
    /// `Policy` and `PolicyArns` as the SDK's builders take them.
    fn policy_fields(&self) -> (Option<String>, Option<Vec<PolicyDescriptorType>>) {
        policy_fields(self.policy)
    }
}

/// `Policy` and `PolicyArns` of `policy`, as the SDK's builders take them (GetFederationToken
/// too).
pub fn policy_fields(
    policy: Option<&SessionPolicy>,
) -> (Option<String>, Option<Vec<PolicyDescriptorType>>) {
    let Some(policy) = policy else {
        return (None, None);
    };
    let arns = policy
        .arns
        .iter()
        .map(|a| PolicyDescriptorType::builder().arn(&a.value).build())
        .collect::<Vec<_>>();
    (
        policy.packed().map(str::to_owned),
        (!arns.is_empty()).then_some(arns),
    )
}

/// GetSessionToken signed with `key` (the stored key), with the MFA code when given.
pub fn get_session_token(
    aws: &Aws,
    key: Option<&Credentials>,
    duration: Option<Duration>,
    mfa: Option<MfaCode<'_>>,
    profile: &str,
) -> Result<Issued, AwsError> {
    let (serial, code) = mfa_fields(mfa);
    let request = aws
        .sts(key)
        .get_session_token()
        .set_duration_seconds(seconds(duration))
        .set_serial_number(serial)
        .set_token_code(code);
    let out = aws
        .call(Service::Sts, GET_SESSION_TOKEN, request.send())
        .map_err(|e| aws.error(Service::Sts, GET_SESSION_TOKEN, profile, e))?;
    issued(out.credentials, None, GET_SESSION_TOKEN, profile)
}

/// AssumeRole of `role` signed with `upstream`, with everything the profile sets for its
/// session (external id, tags, source identity), the session policy, and the MFA code when
/// given.
pub fn assume_role(
    aws: &Aws,
    upstream: Option<&Credentials>,
    role: &RoleSpec,
    session: RoleSession<'_>,
    mfa: Option<MfaCode<'_>>,
    profile: &str,
) -> Result<Issued, AwsError> {
    let tags = role.session_tags.as_ref().map(|t| {
        t.value
            .iter()
            .filter_map(|(k, v)| {
                aws_sdk_sts::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .ok()
            })
            .collect::<Vec<_>>()
    });
    let (serial, code) = mfa_fields(mfa);
    let (policy, policy_arns) = session.policy_fields();
    let request = aws
        .sts(upstream)
        .assume_role()
        .role_arn(&role.arn.value)
        .role_session_name(session.name)
        .set_duration_seconds(seconds(session.duration))
        .set_policy(policy)
        .set_policy_arns(policy_arns)
        .set_external_id(role.external_id.as_ref().map(|e| e.value.clone()))
        .set_tags(tags)
        .set_transitive_tag_keys(role.transitive_tags.as_ref().map(|t| t.value.clone()))
        .set_source_identity(role.source_identity.as_ref().map(|s| s.value.clone()))
        .set_serial_number(serial)
        .set_token_code(code);
    let out = aws
        .call(Service::Sts, ASSUME_ROLE, request.send())
        .map_err(|e| aws.error(Service::Sts, ASSUME_ROLE, profile, e))?;
    let account_id = account_of_user(out.assumed_role_user.as_ref());
    issued(out.credentials, account_id, ASSUME_ROLE, profile)
}

/// The token in `web_identity_token_file`, read afresh for every call (CI rotates it).
pub fn web_identity_token(
    token_file: &Sourced<String>,
    profile: &str,
) -> Result<Zeroizing<String>, SourceError> {
    crate::config::read_token_file(std::path::Path::new(&token_file.value)).map_err(|e| {
        SourceError {
            kind: ExternalSource::WebIdentity,
            profile: profile.to_owned(),
            message: format!(
                "cannot read {} ({}): {e}",
                token_file.value, token_file.origin
            ),
        }
    })
}

/// AssumeRoleWithWebIdentity of `role` with `token`; unsigned, as the token is the proof.
pub fn assume_role_with_web_identity(
    aws: &Aws,
    role: &RoleSpec,
    token: &str,
    session: RoleSession<'_>,
    profile: &str,
) -> Result<Issued, AwsError> {
    const OP: &str = ASSUME_ROLE_WITH_WEB_IDENTITY;
    let (policy, policy_arns) = session.policy_fields();
    let request = aws
        .sts(None)
        .assume_role_with_web_identity()
        .role_arn(&role.arn.value)
        .role_session_name(session.name)
        .web_identity_token(token.trim())
        .set_duration_seconds(seconds(session.duration))
        .set_policy(policy)
        .set_policy_arns(policy_arns);
    let out = aws
        .call(Service::Sts, OP, request.send())
        .map_err(|e| aws.error(Service::Sts, OP, profile, e))?;
    let account_id = account_of_user(out.assumed_role_user.as_ref());
    issued(out.credentials, account_id, OP, profile)
}

/// Credentials from the SDK's own provider for `kind`, which caches and refreshes them
/// itself (so vault does not).
pub fn source_credentials(
    aws: &Aws,
    kind: CredentialSourceKind,
    profile: &str,
) -> Result<Credentials, SourceError> {
    let provided = match kind {
        CredentialSourceKind::Environment => aws.block_on(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new()
                .provide_credentials(),
        ),
        CredentialSourceKind::Ec2InstanceMetadata => aws.block_on(
            aws_config::imds::credentials::ImdsCredentialsProvider::builder()
                .build()
                .provide_credentials(),
        ),
        CredentialSourceKind::EcsContainer => aws.block_on(
            aws_config::ecs::EcsCredentialsProvider::builder()
                .build()
                .provide_credentials(),
        ),
    };
    let c = provided.map_err(|e| SourceError {
        kind: kind.into(),
        profile: profile.to_owned(),
        message: error_chain(&e),
    })?;
    Ok(Credentials {
        access_key_id: SecretString::from(c.access_key_id()),
        secret_access_key: SecretString::from(c.secret_access_key()),
        session_token: c.session_token().map(SecretString::from),
        expiration: c.expiry().map(DateTime::<Utc>::from),
    })
}

/// The MFA device and code as the request builders take them: owned strings, so this copy
/// of the code lives only inside the request. `None` when the call carries no code.
fn mfa_fields(mfa: Option<MfaCode<'_>>) -> (Option<String>, Option<String>) {
    mfa.map(|m| (m.serial.to_owned(), m.code.expose_secret().to_owned()))
        .unzip()
}

/// A lifetime as STS takes it: whole seconds, at most `i32::MAX`.
fn seconds(duration: Option<Duration>) -> Option<i32> {
    duration.map(|d| d.as_secs().min(i32::MAX as u64) as i32)
}

/// The answer's credentials, which every one of these calls must return.
fn issued(
    credentials: Option<aws_sdk_sts::types::Credentials>,
    account_id: Option<String>,
    operation: &'static str,
    profile: &str,
) -> Result<Issued, AwsError> {
    let credentials = credentials
        .ok_or_else(|| AwsError::incomplete(Service::Sts, operation, profile, "credentials"))?;
    Ok(Issued {
        credentials: credentials_from_sdk(credentials),
        account_id,
    })
}

/// The account id in an assumed-role user's ARN (`arn:aws:sts::ACCOUNT:assumed-role/...`).
fn account_of_user(user: Option<&aws_sdk_sts::types::AssumedRoleUser>) -> Option<String> {
    user.and_then(|u| u.arn.split(':').nth(4))
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_sources_are_named_as_in_the_config_file() {
        let named: Vec<String> = [
            CredentialSourceKind::Environment,
            CredentialSourceKind::Ec2InstanceMetadata,
            CredentialSourceKind::EcsContainer,
        ]
        .into_iter()
        .map(|kind| ExternalSource::from(kind).to_string())
        .collect();
        assert_eq!(
            named,
            ["Environment", "Ec2InstanceMetadata", "EcsContainer"]
        );
        let e = SourceError {
            kind: ExternalSource::WebIdentity,
            profile: "ci".into(),
            message: "cannot read /t".into(),
        };
        assert_eq!(
            e.to_string(),
            "no credentials from web_identity_token_file for profile \"ci\": cannot read /t"
        );
    }

    #[test]
    fn account_ids_come_from_the_assumed_role_arn() {
        let user = aws_sdk_sts::types::AssumedRoleUser::builder()
            .arn("arn:aws:sts::123456789012:assumed-role/lab/alice")
            .assumed_role_id("AROA:alice")
            .build()
            .unwrap();
        assert_eq!(
            account_of_user(Some(&user)).as_deref(),
            Some("123456789012")
        );
        assert_eq!(account_of_user(None), None);
        assert_eq!(seconds(Some(Duration::from_secs(u64::MAX))), Some(i32::MAX));
    }

    #[test]
    fn mfa_codes_go_into_both_fields_or_neither() {
        assert_eq!(mfa_fields(None), (None, None));
        let code = SecretString::from("123456");
        let mfa = MfaCode {
            serial: "arn:aws:iam::123456789012:mfa/a",
            code: &code,
        };
        assert_eq!(
            mfa_fields(Some(mfa)),
            (
                Some("arn:aws:iam::123456789012:mfa/a".to_owned()),
                Some("123456".to_owned())
            )
        );
    }
}
