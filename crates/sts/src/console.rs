//! AWS console sign-in links: credentials → a federation sign-in token → a login URL.
//!
//! Role credentials are used as they are; a plain IAM user's key first goes through
//! GetFederationToken (named after the user, with an allow-all inline policy, so the console
//! session has exactly the user's own permissions: a session policy can only narrow them).
//! The resulting URL is a credential for as long as the session lasts: it is returned as a
//! secret and never logged.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use vault_store::Credentials;

use crate::aws::{Aws, AwsError, Service};
use crate::policy::SessionPolicy;
use crate::profile::session_name_char;

/// The signin and console hosts of a partition, chosen by region.
pub fn hosts(region: Option<&str>) -> (&'static str, &'static str) {
    match crate::plan::partition_of(region) {
        "aws-cn" => ("signin.amazonaws.cn", "console.amazonaws.cn"),
        "aws-us-gov" => (
            "signin.amazonaws-us-gov.com",
            "console.amazonaws-us-gov.com",
        ),
        _ => ("signin.aws.amazon.com", "console.aws.amazon.com"),
    }
}

/// What to sign in to.
#[derive(Debug, Clone)]
pub struct Destination {
    pub region: Option<String>,
    /// A console path such as `ec2/home`.
    pub path: Option<String>,
    /// `SessionDuration` for role sessions (not allowed for federation tokens).
    pub session_duration: Option<Duration>,
    /// The federation endpoint, e.g. `https://signin.aws.amazon.com/federation`.
    pub federation_endpoint: String,
}

impl Destination {
    pub fn default_endpoint(region: Option<&str>) -> String {
        format!("https://{}/federation", hosts(region).0)
    }

    /// The console URL to land on.
    pub fn console_url(&self) -> String {
        let (_, console) = hosts(self.region.as_deref());
        let path = self.path.as_deref().unwrap_or("").trim_start_matches('/');
        let mut url = format!("https://{console}/{path}");
        if let Some(region) = &self.region {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("region=");
            url.push_str(region);
        }
        url
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("the federation endpoint {endpoint} is not a valid URL")]
    BadEndpoint { endpoint: String },
    #[error("cannot reach the federation endpoint {endpoint}: {message}")]
    Unreachable { endpoint: String, message: String },
    #[error("the federation endpoint {endpoint} refused the session (HTTP {status}): {message}")]
    Refused {
        endpoint: String,
        status: u16,
        message: String,
    },
    #[error("temporary credentials (with a session token) are needed to sign in to the console")]
    NotTemporary,
}

#[derive(Serialize)]
struct Session<'a> {
    #[serde(rename = "sessionId")]
    session_id: &'a str,
    #[serde(rename = "sessionKey")]
    session_key: &'a str,
    #[serde(rename = "sessionToken")]
    session_token: &'a str,
}

#[derive(Deserialize)]
struct SigninToken {
    #[serde(rename = "SigninToken")]
    signin_token: String,
}

/// A federated user session for a plain IAM user's key (what the console needs when there
/// is no role): named after the user, with an allow-all policy, so it has exactly the user's
/// permissions, or with the session policy the user asked for instead.
pub fn federation_token(
    aws: &Aws,
    profile: &str,
    key: &Credentials,
    duration: Duration,
    policy: Option<&SessionPolicy>,
) -> Result<Credentials, AwsError> {
    const OP: &str = "GetFederationToken";
    let sts = aws.sts(Some(key));
    let who = aws
        .block_on(sts.get_caller_identity().send())
        .map_err(|e| aws.error(Service::Sts, "GetCallerIdentity", profile, e))?;
    let name = who
        .arn
        .as_deref()
        .and_then(|arn| arn.rsplit('/').next())
        .unwrap_or(profile);
    // GetFederationToken names are 2-32 characters.
    let name: String = name
        .chars()
        .filter(|c| session_name_char(*c))
        .take(32)
        .collect();
    let name = if name.len() < 2 {
        "vault-user".to_owned()
    } else {
        name
    };
    const ALLOW_ALL: &str =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let (inline, arns) = match policy {
        Some(policy) => crate::aws::sts_calls::policy_fields(Some(policy)),
        None => (Some(ALLOW_ALL.to_owned()), None),
    };
    let out = aws
        .block_on(
            sts.get_federation_token()
                .name(name)
                .set_policy(inline)
                .set_policy_arns(arns)
                .duration_seconds(duration.as_secs().min(i32::MAX as u64) as i32)
                .send(),
        )
        .map_err(|e| aws.error(Service::Sts, OP, profile, e))?;
    out.credentials
        .map(crate::aws::credentials_from_sdk)
        .ok_or_else(|| AwsError::incomplete(Service::Sts, OP, profile, "credentials"))
}

/// The console sign-in URL for `credentials`, on this command's runtime.
pub fn sign_in_url(
    aws: &Aws,
    credentials: &Credentials,
    destination: &Destination,
) -> Result<SecretString, ConsoleError> {
    aws.block_on(login_url(credentials, destination, "vault"))
}

/// The getSigninToken request URL for `credentials`.
fn token_request(
    credentials: &Credentials,
    destination: &Destination,
) -> Result<SecretString, ConsoleError> {
    let token = credentials
        .session_token
        .as_ref()
        .ok_or(ConsoleError::NotTemporary)?;
    let session = serde_json::to_string(&Session {
        session_id: credentials.access_key_id.expose_secret(),
        session_key: credentials.secret_access_key.expose_secret(),
        session_token: token.expose_secret(),
    })
    .expect("session serialises");
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("Action", "getSigninToken");
    if let Some(d) = destination.session_duration {
        query.append_pair("SessionDuration", &d.as_secs().to_string());
    }
    query.append_pair("Session", &session);
    Ok(SecretString::from(format!(
        "{}?{}",
        destination.federation_endpoint,
        query.finish()
    )))
}

/// Asks the federation endpoint for a sign-in token and builds the login URL.
async fn login_url(
    credentials: &Credentials,
    destination: &Destination,
    issuer: &str,
) -> Result<SecretString, ConsoleError> {
    let endpoint = destination.federation_endpoint.clone();
    let request_url = token_request(credentials, destination)?;
    let uri: hyper::Uri =
        request_url
            .expose_secret()
            .parse()
            .map_err(|_| ConsoleError::BadEndpoint {
                endpoint: endpoint.clone(),
            })?;
    let (status, body, _) =
        crate::aws::https::get(uri)
            .await
            .map_err(|message| ConsoleError::Unreachable {
                endpoint: endpoint.clone(),
                message,
            })?;
    if status != 200 {
        let message = String::from_utf8_lossy(&body).chars().take(300).collect();
        return Err(ConsoleError::Refused {
            endpoint,
            status,
            message,
        });
    }
    let token: SigninToken = serde_json::from_slice(&body).map_err(|_| ConsoleError::Refused {
        endpoint: endpoint.clone(),
        status,
        message: "the answer has no SigninToken".into(),
    })?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("Action", "login")
        .append_pair("Issuer", issuer)
        .append_pair("Destination", &destination.console_url())
        .append_pair("SigninToken", &token.signin_token);
    Ok(SecretString::from(format!(
        "{}?{}",
        destination.federation_endpoint,
        query.finish()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_and_destinations() {
        assert_eq!(hosts(Some("cn-north-1")).0, "signin.amazonaws.cn");
        assert_eq!(
            hosts(Some("us-gov-west-1")).1,
            "console.amazonaws-us-gov.com"
        );
        assert_eq!(hosts(None).0, "signin.aws.amazon.com");
        let d = Destination {
            region: Some("eu-west-1".into()),
            path: Some("/ec2/home".into()),
            session_duration: None,
            federation_endpoint: Destination::default_endpoint(Some("eu-west-1")),
        };
        assert_eq!(
            d.console_url(),
            "https://console.aws.amazon.com/ec2/home?region=eu-west-1"
        );
        assert_eq!(
            d.federation_endpoint,
            "https://signin.aws.amazon.com/federation"
        );
    }
}
