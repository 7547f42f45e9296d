//! The authorization code flow with PKCE (RFC 7636/8252): the person approves in a browser
//! on this machine, which is redirected to a one-shot listener on 127.0.0.1 with the code;
//! `state` and the PKCE verifier tie that code to this process.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use sha2::{Digest, Sha256};
use vault_store::SsoToken;

use crate::aws::{Aws, Service};
use crate::profile::SsoSession;

use super::error::SsoError;
use super::loopback;
use super::oidc::{self, GRANT_AUTHORIZATION_CODE, TokenAnswer};
use super::prompt::{Approval, Flow};

/// The authorization code flow: the browser approves and is redirected to a one-shot
/// server on 127.0.0.1 with the code; `state` and the PKCE verifier tie it to us.
pub(super) fn authorization_code(
    aws: &Aws,
    approval: &Approval<'_>,
    sso: &SsoSession,
    token: &SsoToken,
) -> Result<TokenAnswer, SsoError> {
    let label = sso.label();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(SsoError::Listen)?;
    let port = listener.local_addr().map_err(SsoError::Listen)?.port();
    listener.set_nonblocking(true).map_err(SsoError::Listen)?;
    let redirect_uri = format!("http://127.0.0.1:{port}/oauth/callback");
    let verifier = zeroize::Zeroizing::new(random_url_safe(64));
    let challenge = B64URL.encode(Sha256::digest(verifier.as_bytes()));
    let state = random_url_safe(16);
    let base = aws
        .sso_oidc_endpoint(&sso.region.value)
        .map_err(|message| SsoError::Failed {
            label: label.clone(),
            message: format!(
                "no SSO OIDC endpoint for region {}: {message}",
                sso.region.value
            ),
        })?;
    let url = format!(
        "{base}/authorize?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &token.secrets.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("state", &state)
            .append_pair("code_challenge_method", "S256")
            .append_pair("scopes", &sso.scopes.join(" "))
            .append_pair("code_challenge", &challenge)
            .finish()
    );
    approval.show(&label, &url, None, Flow::AuthorizationCode)?;
    let code = aws
        .block_on(loopback::wait_for_code(listener, &state, approval.deadline))
        .map_err(|end| match end {
            loopback::End::Denied => SsoError::Denied {
                label: label.clone(),
            },
            loopback::End::TimedOut => approval.timed_out(label.clone()),
            loopback::End::Failed(message) => SsoError::Failed {
                label: label.clone(),
                message,
            },
            loopback::End::Refused { error, description } => SsoError::Refused {
                label: label.clone(),
                error,
                description,
                scopes: sso.scopes.clone(),
            },
            loopback::End::Io(e) => SsoError::Listen(e),
        })?;
    let request = oidc::create_token(aws, sso, token, GRANT_AUTHORIZATION_CODE)
        .code(code.as_str())
        .redirect_uri(&redirect_uri)
        .code_verifier(verifier.as_str());
    let out = aws
        .block_on(request.send())
        .map_err(|e| aws.error(Service::SsoOidc, "CreateToken", &label, e))?;
    Ok((out.access_token, out.expires_in, out.refresh_token))
}

/// `bytes` random bytes as base64url (the PKCE verifier, the `state`).
pub(crate) fn random_url_safe(bytes: usize) -> String {
    let mut buf = zeroize::Zeroizing::new(vec![0u8; bytes]);
    getrandom::fill(&mut buf).expect("the OS random source works");
    B64URL.encode(&*buf)
}
