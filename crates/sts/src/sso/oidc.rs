//! The SSO OIDC service's two operations as the sign-ins use them: RegisterClient (the
//! client vault signs in as, per sign-in and flow) and CreateToken (for each grant: the
//! authorization code, the device code, the refresh token).

use chrono::{TimeZone, Utc};
use secrecy::{ExposeSecret, SecretString};
use vault_store::{SsoSecrets, SsoToken, SsoTokenInfo};

use crate::aws::{Aws, AwsError, Service};
use crate::profile::SsoSession;

use super::error::SsoError;
use super::prompt::Flow;

/// The loopback redirect registered for the authorization code flow; any port is accepted
/// for 127.0.0.1 (RFC 8252 §7.3), the actual one is sent with each request.
const REDIRECT_REGISTERED: &str = "http://127.0.0.1/oauth/callback";
pub(super) const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
pub(super) const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub(super) const GRANT_REFRESH: &str = "refresh_token";
/// The name the portal shows for the registered client.
const CLIENT_NAME: &str = "vault";

/// access token, lifetime in seconds, refresh token: what CreateToken answers.
pub(super) type TokenAnswer = (Option<String>, i32, Option<String>);

/// The grant a client registered for `flow` needs.
fn grant_of(flow: Flow) -> &'static str {
    match flow {
        Flow::AuthorizationCode => GRANT_AUTHORIZATION_CODE,
        Flow::DeviceCode => GRANT_DEVICE_CODE,
    }
}

/// RegisterClient for `flow`: a new registration with no token yet. `held` is what the
/// vault had for the sign-in (its choice of the CLI's cache carries over).
pub(super) fn register(
    aws: &Aws,
    sso: &SsoSession,
    held: Option<&SsoToken>,
    flow: Flow,
) -> Result<SsoToken, SsoError> {
    let oidc = aws.sso_oidc(&sso.region.value);
    let mut request = oidc
        .register_client()
        .client_name(CLIENT_NAME)
        .client_type("public");
    let mut grant_types = Vec::new();
    if !sso.scopes.is_empty() {
        grant_types = vec![grant_of(flow).to_owned(), GRANT_REFRESH.to_owned()];
        request = request
            .set_scopes(Some(sso.scopes.clone()))
            .set_grant_types(Some(grant_types.clone()));
    }
    if flow == Flow::AuthorizationCode {
        request = request
            .redirect_uris(REDIRECT_REGISTERED)
            .issuer_url(&sso.start_url.value);
    }
    tracing::debug!(sso = %sso.label(), "registering the client");
    let out = aws
        .call(Service::SsoOidc, "RegisterClient", request.send())
        .map_err(|e| aws.error(Service::SsoOidc, "RegisterClient", &sso.label(), e))?;
    let incomplete =
        |what| AwsError::incomplete(Service::SsoOidc, "RegisterClient", &sso.label(), what);
    let client_id = out.client_id.ok_or_else(|| incomplete("clientId"))?;
    let client_secret = out
        .client_secret
        .ok_or_else(|| incomplete("clientSecret"))?;
    let registration_expires = Utc
        .timestamp_opt(out.client_secret_expires_at, 0)
        .single()
        .ok_or_else(|| incomplete("valid clientSecretExpiresAt"))?;
    Ok(SsoToken {
        info: SsoTokenInfo {
            key: sso.key.clone(),
            start_url: sso.start_url.value.clone(),
            region: sso.region.value.clone(),
            scopes: sso.scopes.clone(),
            grant_types,
            cli_cache: held.is_some_and(|h| h.info.cli_cache),
            registration_expires,
            token_expires: None,
            refreshable: false,
        },
        secrets: SsoSecrets {
            client_id,
            client_secret: SecretString::from(client_secret),
            access_token: None,
            refresh_token: None,
        },
    })
}

/// A CreateToken request of the registered client for `grant`.
pub(super) fn create_token(
    aws: &Aws,
    sso: &SsoSession,
    token: &SsoToken,
    grant: &str,
) -> aws_sdk_ssooidc::operation::create_token::builders::CreateTokenFluentBuilder {
    aws.sso_oidc(&sso.region.value)
        .create_token()
        .client_id(&token.secrets.client_id)
        .client_secret(token.secrets.client_secret.expose_secret())
        .grant_type(grant)
}
