//! The IAM Identity Center portal, called with a sign-in's access token: a role's
//! credentials (GetRoleCredentials), the accounts and roles it reaches (ListAccounts,
//! ListAccountRoles), and Logout.

use chrono::{TimeZone, Utc};
use secrecy::{ExposeSecret, SecretString};
use vault_store::Credentials;

use crate::aws::{Aws, AwsError, Service};
use crate::profile::SsoSession;

/// An account the sign-in reaches, with its roles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoAccount {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
}

/// GetRoleCredentials of `role_name` in `account_id` for `profile`.
pub(super) fn role_credentials(
    aws: &Aws,
    sso: &SsoSession,
    token: &SecretString,
    account_id: &str,
    role_name: &str,
    profile: &str,
) -> Result<Credentials, AwsError> {
    let portal = aws.sso_portal(&sso.region.value);
    let request = portal
        .get_role_credentials()
        .access_token(token.expose_secret())
        .account_id(account_id)
        .role_name(role_name);
    let out = aws
        .call(Service::Sso, "GetRoleCredentials", request.send())
        .map_err(|e| aws.error(Service::Sso, "GetRoleCredentials", profile, e))?;
    let incomplete = |what| AwsError::incomplete(Service::Sso, "GetRoleCredentials", profile, what);
    let c = out
        .role_credentials
        .ok_or_else(|| incomplete("roleCredentials"))?;
    Ok(Credentials {
        access_key_id: SecretString::from(
            c.access_key_id.ok_or_else(|| incomplete("accessKeyId"))?,
        ),
        secret_access_key: SecretString::from(
            c.secret_access_key
                .ok_or_else(|| incomplete("secretAccessKey"))?,
        ),
        session_token: Some(SecretString::from(
            c.session_token.ok_or_else(|| incomplete("sessionToken"))?,
        )),
        expiration: Some(
            Utc.timestamp_millis_opt(c.expiration)
                .single()
                .ok_or_else(|| incomplete("valid expiration"))?,
        ),
    })
}

/// Every account the token reaches and its roles (ListAccounts, ListAccountRoles; all
/// pages), sorted by account name, then role.
pub(super) fn accounts(
    aws: &Aws,
    sso: &SsoSession,
    token: &SecretString,
) -> Result<Vec<SsoAccount>, AwsError> {
    let portal = aws.sso_portal(&sso.region.value);
    let label = sso.label();
    let mut accounts = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let request = portal
            .list_accounts()
            .access_token(token.expose_secret())
            .set_next_token(next.take());
        let page = aws
            .call(Service::Sso, "ListAccounts", request.send())
            .map_err(|e| aws.error(Service::Sso, "ListAccounts", &label, e))?;
        for account in page.account_list.unwrap_or_default() {
            let Some(id) = account.account_id else {
                continue;
            };
            accounts.push(SsoAccount {
                name: account.account_name.unwrap_or_else(|| id.clone()),
                id,
                roles: Vec::new(),
            });
        }
        match page.next_token {
            Some(t) if !t.is_empty() => next = Some(t),
            _ => break,
        }
    }
    for account in &mut accounts {
        let mut next: Option<String> = None;
        loop {
            let request = portal
                .list_account_roles()
                .access_token(token.expose_secret())
                .account_id(&account.id)
                .set_next_token(next.take());
            let page = aws
                .call(Service::Sso, "ListAccountRoles", request.send())
                .map_err(|e| aws.error(Service::Sso, "ListAccountRoles", &label, e))?;
            account.roles.extend(
                page.role_list
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|r| r.role_name),
            );
            match page.next_token {
                Some(t) if !t.is_empty() => next = Some(t),
                _ => break,
            }
        }
        account.roles.sort();
    }
    accounts.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(accounts)
}

/// Logout of `token` at the portal. A token the portal no longer knows is as logged out as
/// it gets, so its refusal (401) is no error.
pub(super) fn logout(aws: &Aws, sso: &SsoSession, token: &SecretString) -> Result<(), AwsError> {
    let portal = aws.sso_portal(&sso.region.value);
    let request = portal.logout().access_token(token.expose_secret());
    match aws.call(Service::Sso, "Logout", request.send()) {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = aws.error(Service::Sso, "Logout", &sso.label(), e);
            match e.code() {
                Some("UnauthorizedException") => Ok(()),
                _ => Err(e),
            }
        }
    }
}
