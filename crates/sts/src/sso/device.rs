//! The device authorization flow (RFC 8628): the person approves a code on any device
//! (`--use-device-code`, SSH sessions, the legacy SSO form) while this process polls.

use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use vault_store::SsoToken;

use crate::aws::{Aws, AwsError, Service};
use crate::profile::SsoSession;

use super::error::SsoError;
use super::oidc::{self, GRANT_DEVICE_CODE, TokenAnswer};
use super::prompt::{Approval, Flow};

/// The device authorization flow: the person approves a code on any device; we poll until
/// they do, the code expires, or the approval's deadline passes.
pub(super) fn device_code(
    aws: &Aws,
    approval: &Approval<'_>,
    sso: &SsoSession,
    token: &SsoToken,
) -> Result<TokenAnswer, SsoError> {
    let label = sso.label();
    let oidc = aws.sso_oidc(&sso.region.value);
    let request = oidc
        .start_device_authorization()
        .client_id(&token.secrets.client_id)
        .client_secret(token.secrets.client_secret.expose_secret())
        .start_url(&sso.start_url.value);
    let device = aws
        .block_on(request.send())
        .map_err(|e| aws.error(Service::SsoOidc, "StartDeviceAuthorization", &label, e))?;
    let incomplete =
        |what| AwsError::incomplete(Service::SsoOidc, "StartDeviceAuthorization", &label, what);
    let device_code =
        zeroize::Zeroizing::new(device.device_code.ok_or_else(|| incomplete("deviceCode"))?);
    let url = device
        .verification_uri_complete
        .or(device.verification_uri)
        .ok_or_else(|| incomplete("verificationUri"))?;
    approval.show(&label, &url, device.user_code.as_deref(), Flow::DeviceCode)?;
    let expires = Instant::now() + Duration::from_secs(device.expires_in.max(1) as u64);
    let mut interval = poll_interval(device.interval);
    loop {
        let now = Instant::now();
        if now >= approval.deadline {
            return Err(approval.timed_out(label));
        }
        if now >= expires {
            return Err(SsoError::Expired { label });
        }
        std::thread::sleep(interval.min(approval.deadline - now));
        let request = oidc::create_token(aws, sso, token, GRANT_DEVICE_CODE)
            .device_code(device_code.as_str());
        match aws.block_on(request.send()) {
            Ok(out) => return Ok((out.access_token, out.expires_in, out.refresh_token)),
            Err(e) => {
                let e = aws.error(Service::SsoOidc, "CreateToken", &label, e);
                match e.code() {
                    Some("AuthorizationPendingException") => {}
                    // RFC 8628 §3.5: five seconds more on every slow_down.
                    Some("SlowDownException") => interval += Duration::from_secs(5),
                    Some("ExpiredTokenException") => return Err(SsoError::Expired { label }),
                    Some("AccessDeniedException") => return Err(SsoError::Denied { label }),
                    _ => return Err(e.into()),
                }
            }
        }
    }
}

/// How long to wait between polls: the service's `interval`, else 5 seconds (RFC 8628
/// §3.2); the SDK reads a missing one as 0.
fn poll_interval(given: i32) -> Duration {
    match given {
        ..=0 => Duration::from_secs(5),
        n => Duration::from_secs(n.min(60) as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_interval_is_five_seconds() {
        assert_eq!(poll_interval(0), Duration::from_secs(5));
        assert_eq!(poll_interval(-3), Duration::from_secs(5));
        assert_eq!(poll_interval(1), Duration::from_secs(1));
        assert_eq!(poll_interval(600), Duration::from_secs(60));
    }
}
