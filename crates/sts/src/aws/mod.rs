//! The AWS side of every call: one small current-thread tokio runtime, one SDK config from
//! `aws_config::defaults` (so endpoint overrides, retries and timeouts behave as in the
//! SDKs), clients for STS and IAM signed with given credentials, and one error type that
//! names the service and the operation that failed.
//!
//! Nothing is built until the first call: a warm command served from the cache never starts
//! a runtime or reads the SDK's configuration.
//!
//! The parts, each using only those before it: `https` (one plain GET, for what is no SDK
//! operation), this file ([`Aws`], [`AwsError`], [`Waiting`]), and [`sts_calls`] (the
//! requests that mint credentials, built from a profile's role).

pub(crate) mod https;
pub mod sts_calls;

use std::cell::OnceCell;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use chrono::{TimeZone, Utc};
use secrecy::{ExposeSecret, SecretString};
use vault_store::Credentials;

use crate::endpoints::Endpoints;
use crate::error_chain;
use crate::origin::Sourced;

/// The AWS services vault calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Sts,
    Iam,
    /// The IAM Identity Center portal (role credentials, accounts, logout).
    Sso,
    /// The IAM Identity Center OIDC service (client registration, tokens).
    SsoOidc,
    /// AWS Sign-In: the console sessions of `aws login` (CreateOAuth2Token).
    Signin,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Sts => "STS",
            Service::Iam => "IAM",
            Service::Sso => "the SSO portal",
            Service::SsoOidc => "SSO OIDC",
            Service::Signin => "AWS Sign-In",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to reach AWS for one command.
#[derive(Clone, Debug)]
pub struct AwsSettings {
    /// The profile whose `endpoint_url` / `services` apply (the requested one).
    pub profile: String,
    /// The region of the endpoints (us-east-1 when nothing says otherwise).
    pub region: String,
    /// Endpoint overrides in force, for messages (aws-config applies them itself).
    pub endpoints: Endpoints,
    pub timeouts: Timeouts,
}

/// How long a call may take. The SDK's standard retry mode applies within them: up to
/// [`Timeouts::attempts`] attempts with exponential back-off and jitter on throttling, 5xx
/// answers and broken connections.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// To open the TCP (and TLS) connection.
    pub connect: Duration,
    /// One attempt, from sending to the whole answer.
    pub attempt: Duration,
    /// The whole call, all attempts and back-off included: the most any call can take.
    pub operation: Duration,
    pub attempts: u32,
}

impl Timeouts {
    /// 3 s to connect, 10 s an attempt, 30 s in all, 3 attempts.
    pub const DEFAULT: Timeouts = Timeouts {
        connect: Duration::from_secs(3),
        attempt: Duration::from_secs(10),
        operation: Duration::from_secs(30),
        attempts: 3,
    };

    /// A shorter (or longer) bound on the whole call, e.g. from `AWS_VAULT_STS_TIMEOUT`;
    /// attempts and connecting never take longer than the whole.
    pub fn within(self, operation: Duration) -> Timeouts {
        Timeouts {
            operation,
            attempt: self.attempt.min(operation),
            connect: self.connect.min(operation),
            ..self
        }
    }
}

impl AwsSettings {
    /// A human description of where `service` is reached, for errors.
    pub fn describe_endpoint(&self, service: Service) -> String {
        let endpoint = match service {
            Service::Sts => &self.endpoints.sts,
            Service::Iam => &self.endpoints.iam,
            Service::Sso => &self.endpoints.sso,
            Service::SsoOidc => &self.endpoints.sso_oidc,
            Service::Signin => &self.endpoints.signin,
        };
        match endpoint {
            Some(Sourced { value, .. }) => value.clone(),
            None => format!("the {service} endpoint of {}", self.region),
        }
    }
}

/// A failed AWS call.
#[derive(Debug, thiserror::Error)]
pub struct AwsError {
    pub service: Service,
    pub operation: &'static str,
    /// The profile the call was made for.
    pub profile: String,
    pub kind: AwsErrorKind,
}

#[derive(Debug)]
pub enum AwsErrorKind {
    /// The service answered with an error code.
    Refused { code: String, message: String },
    /// No answer: DNS, connection, TLS or a timeout.
    Unreachable { endpoint: String, message: String },
    /// Anything else (an answer that could not be read, one without the expected data).
    Other { message: String },
}

impl AwsError {
    /// The service's error code (`AccessDenied`, `LimitExceeded`, ...), when it answered.
    pub fn code(&self) -> Option<&str> {
        match &self.kind {
            AwsErrorKind::Refused { code, .. } => Some(code),
            _ => None,
        }
    }

    /// An answer that lacked what the operation must return.
    pub fn incomplete(
        service: Service,
        operation: &'static str,
        profile: &str,
        what: &str,
    ) -> AwsError {
        AwsError {
            service,
            operation,
            profile: profile.to_owned(),
            kind: AwsErrorKind::Other {
                message: format!("the answer held no {what}"),
            },
        }
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (service, operation) = (self.service, self.operation);
        match &self.kind {
            AwsErrorKind::Refused { code, message } => write!(
                f,
                "{service} refused {operation} for profile {:?}: {code}: {message}",
                self.profile
            ),
            AwsErrorKind::Unreachable { endpoint, message } => write!(
                f,
                "cannot reach {service} at {endpoint} for {operation}: {message}"
            ),
            AwsErrorKind::Other { message } => {
                write!(f, "{service} call {operation} failed: {message}")
            }
        }
    }
}

/// Told when work waits on something outside this process (a lock another `vault` holds,
/// an AWS call slower than [`SLOW_CALL_NOTICE`]), so the person knows what for. The caller
/// decides how to say it; this crate never prints.
pub trait Waiting {
    fn waiting_for(&self, what: &str);
}

/// The runtime and SDK config, built on first use.
pub struct Aws {
    settings: AwsSettings,
    inner: OnceCell<Inner>,
    /// Told when a call takes longer than [`SLOW_CALL_NOTICE`].
    slow: Option<std::sync::Arc<dyn Waiting + Send + Sync>>,
}

/// How long a call may take before the person hears what we wait for.
pub const SLOW_CALL_NOTICE: std::time::Duration = std::time::Duration::from_secs(1);

struct Inner {
    runtime: tokio::runtime::Runtime,
    config: aws_types::SdkConfig,
}

impl fmt::Debug for Aws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aws")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Aws {
    pub fn new(settings: AwsSettings) -> Aws {
        Aws {
            settings,
            inner: OnceCell::new(),
            slow: None,
        }
    }

    /// Drops the runtime and SDK config (HTTP client, connection pool, TLS roots) until the
    /// next call: for a holder that keeps an `Aws` between calls an hour apart (`vault
    /// serve`'s workers), so idle profiles cost no memory for them.
    pub fn idle(&mut self) {
        self.inner = OnceCell::new();
    }

    /// Tell `waiting` when a call keeps us waiting over a second.
    pub fn telling(mut self, waiting: std::sync::Arc<dyn Waiting + Send + Sync>) -> Self {
        self.slow = Some(waiting);
        self
    }

    /// [`Aws::block_on`] for a call to `service`; over a second, [`Aws::telling`]'s
    /// listener hears which call it is and where it went.
    pub fn call<F: Future>(&self, service: Service, operation: &str, future: F) -> F::Output {
        let Some(slow) = &self.slow else {
            return self.block_on(future);
        };
        self.block_on(async {
            let mut future = std::pin::pin!(future);
            tokio::select! {
                out = &mut future => out,
                () = tokio::time::sleep(SLOW_CALL_NOTICE) => {
                    slow.waiting_for(&format!(
                        "{service} {operation} ({})",
                        self.settings.describe_endpoint(service)
                    ));
                    future.await
                }
            }
        })
    }

    pub fn settings(&self) -> &AwsSettings {
        &self.settings
    }

    /// Runs one future (an SDK call) to completion on this command's runtime.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.inner().runtime.block_on(future)
    }

    /// An STS client signed with `credentials`; unsigned without (web identity).
    pub fn sts(&self, credentials: Option<&Credentials>) -> aws_sdk_sts::Client {
        let mut builder = aws_sdk_sts::config::Builder::from(&self.inner().config);
        if let Some(c) = credentials {
            builder = builder.credentials_provider(provider_of(c));
        }
        aws_sdk_sts::Client::from_conf(builder.build())
    }

    /// An IAM client signed with `credentials`.
    pub fn iam(&self, credentials: &Credentials) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(&self.inner().config)
                .credentials_provider(provider_of(credentials))
                .build(),
        )
    }

    /// An SSO OIDC client in the sign-in's region (unsigned: its calls carry client secrets).
    pub fn sso_oidc(&self, region: &str) -> aws_sdk_ssooidc::Client {
        aws_sdk_ssooidc::Client::from_conf(
            aws_sdk_ssooidc::config::Builder::from(&self.inner().config)
                .region(aws_types::region::Region::new(region.to_owned()))
                .build(),
        )
    }

    /// Where the SSO OIDC service of `region` is, as the SDK resolves it for its own calls:
    /// the endpoint override when set, else the partition's host (`amazonaws.com.cn` in
    /// China), FIPS and dual-stack as configured. The browser's authorize page is there.
    pub fn sso_oidc_endpoint(&self, region: &str) -> Result<String, String> {
        let config = &self.inner().config;
        let endpoint = self.settings().endpoints.sso_oidc.as_ref();
        self.block_on(sso_oidc_url(
            region,
            config.use_fips().unwrap_or(false),
            config.use_dual_stack().unwrap_or(false),
            endpoint.map(|e| e.value.clone()),
        ))
    }

    /// An AWS Sign-In client in `region` whose every request carries `interceptor`'s DPoP
    /// proof (the operation itself is unsigned).
    pub fn signin(
        &self,
        region: &str,
        interceptor: impl aws_sdk_signin::config::Intercept + 'static,
    ) -> aws_sdk_signin::Client {
        aws_sdk_signin::Client::from_conf(
            aws_sdk_signin::config::Builder::from(&self.inner().config)
                .region(aws_types::region::Region::new(region.to_owned()))
                .interceptor(interceptor)
                .build(),
        )
    }

    /// Where AWS Sign-In of `region` is, as the SDK resolves it for its own calls (the
    /// endpoint override when set): the browser's authorize page is there.
    pub fn signin_endpoint(&self, region: &str) -> Result<String, String> {
        use aws_sdk_signin::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
        let config = &self.inner().config;
        let params = Params::builder()
            .region(region)
            .use_fips(config.use_fips().unwrap_or(false))
            .use_dual_stack(config.use_dual_stack().unwrap_or(false))
            .set_endpoint(
                self.settings()
                    .endpoints
                    .signin
                    .as_ref()
                    .map(|e| e.value.clone()),
            )
            // As CreateOAuth2Token resolves it: the token endpoint's host is the authorize
            // page's.
            .set_is_control_plane(Some(false))
            .build()
            .map_err(|e| e.to_string())?;
        let resolved = self
            .block_on(DefaultResolver::new().resolve_endpoint(&params))
            .map_err(|e| e.to_string())?;
        Ok(resolved.url().trim_end_matches('/').to_owned())
    }

    /// An SSO portal client in the sign-in's region (its calls carry the bearer token).
    pub fn sso_portal(&self, region: &str) -> aws_sdk_sso::Client {
        aws_sdk_sso::Client::from_conf(
            aws_sdk_sso::config::Builder::from(&self.inner().config)
                .region(aws_types::region::Region::new(region.to_owned()))
                .build(),
        )
    }

    /// What aws-config's own credential providers are built with (the login provider of
    /// console sessions): this command's HTTP client, retries and timeouts, in `region`
    /// (else the command's). Endpoint overrides reach them from the environment
    /// (`AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`), as in the SDKs.
    pub fn provider_config(
        &self,
        region: Option<&str>,
    ) -> aws_config::provider_config::ProviderConfig {
        let config = &self.inner().config;
        let region = region.unwrap_or(&self.settings.region).to_owned();
        let mut provider = aws_config::provider_config::ProviderConfig::without_region()
            .with_region(Some(aws_types::region::Region::new(region)))
            .with_use_fips(config.use_fips())
            .with_use_dual_stack(config.use_dual_stack())
            .with_retry_config(self.retry_config())
            .with_timeout_config(self.timeout_config());
        if let Some(http) = config.http_client() {
            provider = provider.with_http_client(http);
        }
        provider
    }

    fn retry_config(&self) -> RetryConfig {
        RetryConfig::standard().with_max_attempts(self.settings.timeouts.attempts)
    }

    fn timeout_config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.settings.timeouts.connect)
            .read_timeout(self.settings.timeouts.attempt)
            .operation_attempt_timeout(self.settings.timeouts.attempt)
            .operation_timeout(self.settings.timeouts.operation)
            .build()
    }

    /// Turns the SDK's error for `operation` into an [`AwsError`].
    pub fn error<E>(
        &self,
        service: Service,
        operation: &'static str,
        profile: &str,
        e: SdkError<E, HttpResponse>,
    ) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let kind = match &e {
            SdkError::ServiceError(failure) => {
                let err = failure.err();
                // Some stand-ins (moto) wrap errors in <Errors>, which the SDK's parser does
                // not read; fall back to the raw body so the code is never lost.
                let body = failure
                    .raw()
                    .body()
                    .bytes()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                AwsErrorKind::Refused {
                    code: err
                        .code()
                        .map(str::to_owned)
                        .or_else(|| xml_field(&body, "Code"))
                        .unwrap_or_else(|| "unknown error".to_owned()),
                    message: err
                        .message()
                        .map(str::to_owned)
                        .or_else(|| xml_field(&body, "Message"))
                        .or_else(|| oauth_description(&body))
                        .unwrap_or_else(|| "no message".to_owned()),
                }
            }
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => AwsErrorKind::Unreachable {
                endpoint: self.settings.describe_endpoint(service),
                message: error_chain(&e),
            },
            _ => AwsErrorKind::Other {
                message: error_chain(&e),
            },
        };
        AwsError {
            service,
            operation,
            profile: profile.to_owned(),
            kind,
        }
    }

    fn inner(&self) -> &Inner {
        self.inner.get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime builds");
            let loader = aws_config::defaults(BehaviorVersion::latest())
                .profile_name(&self.settings.profile)
                .region(aws_types::region::Region::new(self.settings.region.clone()))
                .no_credentials()
                .retry_config(self.retry_config())
                .timeout_config(self.timeout_config());
            let config = runtime.block_on(loader.load());
            Inner { runtime, config }
        })
    }
}

/// How far this machine's clock is from STS's (positive: ours is ahead), from the `Date`
/// header of one unsigned GET to the STS endpoint in force. STS refuses signatures more than
/// 5 minutes off.
pub fn clock_skew(aws: &Aws) -> Result<chrono::Duration, String> {
    let settings = aws.settings();
    let endpoint = match &settings.endpoints.sts {
        Some(e) => e.value.clone(),
        None => format!("https://sts.{}.amazonaws.com/", settings.region),
    };
    let uri: hyper::Uri = endpoint
        .parse()
        .map_err(|e| format!("the STS endpoint {endpoint} is not a URL: {e}"))?;
    let (_, _, date) = aws.block_on(https::get(uri))?;
    let date = date.ok_or_else(|| format!("{endpoint} answered without a Date header"))?;
    let theirs = chrono::DateTime::parse_from_rfc2822(&date)
        .map_err(|e| format!("{endpoint} sent a Date header that is not a date ({e})"))?;
    Ok(Utc::now() - theirs.with_timezone(&Utc))
}

/// The text of the first `<name>...</name>` element in `body`.
fn xml_field(body: &str, name: &str) -> Option<String> {
    let start = body.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + body[start..].find(&format!("</{name}>"))?;
    Some(body[start..end].to_owned())
}

/// SSO OIDC answers errors as OAuth does (RFC 6749 §5.2): the reason is in
/// `error_description`, which the SDK does not take for the message.
fn oauth_description(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let description = value.get("error_description")?.as_str()?.trim();
    (!description.is_empty()).then(|| description.to_owned())
}

fn provider_of(c: &Credentials) -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new(
        c.access_key_id.expose_secret(),
        c.secret_access_key.expose_secret(),
        c.session_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
        None,
        "vault",
    )
}

/// Moves the SDK's strings into zeroizing secrets without copying them.
pub fn credentials_from_sdk(c: aws_sdk_sts::types::Credentials) -> Credentials {
    let expiration = Utc
        .timestamp_opt(c.expiration.secs(), c.expiration.subsec_nanos())
        .single();
    Credentials {
        access_key_id: SecretString::from(c.access_key_id),
        secret_access_key: SecretString::from(c.secret_access_key),
        session_token: Some(SecretString::from(c.session_token)),
        expiration,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_name_the_service() {
        let refused = AwsError {
            service: Service::Iam,
            operation: "CreateAccessKey",
            profile: "base".into(),
            kind: AwsErrorKind::Refused {
                code: "LimitExceeded".into(),
                message: "two keys".into(),
            },
        };
        assert_eq!(refused.code(), Some("LimitExceeded"));
        assert_eq!(
            refused.to_string(),
            "IAM refused CreateAccessKey for profile \"base\": LimitExceeded: two keys"
        );
        let unreachable = AwsError {
            service: Service::Sts,
            operation: "AssumeRole",
            profile: "lab".into(),
            kind: AwsErrorKind::Unreachable {
                endpoint: "http://127.0.0.1:1".into(),
                message: "refused".into(),
            },
        };
        assert_eq!(unreachable.code(), None);
        assert!(unreachable.to_string().starts_with("cannot reach STS at"));
    }

    #[test]
    fn xml_fields_are_read_from_wrapped_errors() {
        let body = "<ErrorResponse><Errors><Error><Code>AccessDenied</Code><Message>no</Message></Error></Errors></ErrorResponse>";
        assert_eq!(xml_field(body, "Code").as_deref(), Some("AccessDenied"));
        assert_eq!(xml_field(body, "Message").as_deref(), Some("no"));
        assert_eq!(xml_field(body, "Missing"), None);
    }

    #[test]
    fn oauth_errors_give_their_description() {
        let body =
            r#"{"error":"invalid_grant","error_description":"Invalid refresh token provided"}"#;
        assert_eq!(
            oauth_description(body).as_deref(),
            Some("Invalid refresh token provided")
        );
        assert_eq!(oauth_description(r#"{"error":"invalid_grant"}"#), None);
        assert_eq!(oauth_description("<xml/>"), None);
    }
}

/// The SSO OIDC endpoint the SDK's own resolver gives for these settings.
async fn sso_oidc_url(
    region: &str,
    fips: bool,
    dual_stack: bool,
    endpoint: Option<String>,
) -> Result<String, String> {
    use aws_sdk_ssooidc::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
    let params = Params::builder()
        .region(region)
        .use_fips(fips)
        .use_dual_stack(dual_stack)
        .set_endpoint(endpoint)
        .build()
        .map_err(|e| e.to_string())?;
    let resolved = DefaultResolver::new()
        .resolve_endpoint(&params)
        .await
        .map_err(|e| e.to_string())?;
    Ok(resolved.url().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod endpoint_tests {
    use super::sso_oidc_url;

    fn url(region: &str, fips: bool, endpoint: Option<&str>) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(sso_oidc_url(
                region,
                fips,
                false,
                endpoint.map(str::to_owned),
            ))
            .unwrap()
    }

    /// The authorize page is in the sign-in's partition, as the SDK's calls are.
    #[test]
    fn the_authorize_host_follows_the_partition() {
        assert_eq!(
            url("eu-west-1", false, None),
            "https://oidc.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            url("cn-north-1", false, None),
            "https://oidc.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            url("eusc-de-east-1", false, None),
            "https://oidc.eusc-de-east-1.amazonaws.eu"
        );
        assert_eq!(
            url("us-east-1", false, Some("http://127.0.0.1:9/")),
            "http://127.0.0.1:9"
        );
    }
}
