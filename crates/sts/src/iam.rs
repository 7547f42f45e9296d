//! The IAM calls of key rotation (GetUser, CreateAccessKey, DeleteAccessKey) and the check
//! that a new key is accepted. The safe order of those calls is the binary's (`vault rotate`);
//! this module only makes each call and names IAM, not STS, when one fails.

use std::time::Duration;

use secrecy::SecretString;
use vault_store::Credentials;

use crate::aws::{Aws, AwsError, Service};

/// IAM as the user of one profile's key.
#[derive(Debug)]
pub struct Iam<'a> {
    aws: &'a Aws,
    /// The profile the calls are made for, for messages.
    profile: &'a str,
}

impl<'a> Iam<'a> {
    pub fn new(aws: &'a Aws, profile: &'a str) -> Self {
        Iam { aws, profile }
    }

    /// The IAM user name of a key (GetUser without a name).
    pub fn user(&self, credentials: &Credentials) -> Result<String, AwsError> {
        let out = self
            .aws
            .block_on(self.aws.iam(credentials).get_user().send())
            .map_err(|e| self.aws.error(Service::Iam, "GetUser", self.profile, e))?;
        Ok(out.user.map(|u| u.user_name).unwrap_or_default())
    }

    /// CreateAccessKey for `user`; the new pair goes straight into secrets.
    pub fn create_access_key(
        &self,
        credentials: &Credentials,
        user: &str,
    ) -> Result<Credentials, AwsError> {
        const OP: &str = "CreateAccessKey";
        let out = self
            .aws
            .block_on(
                self.aws
                    .iam(credentials)
                    .create_access_key()
                    .user_name(user)
                    .send(),
            )
            .map_err(|e| self.aws.error(Service::Iam, OP, self.profile, e))?;
        let key = out
            .access_key
            .ok_or_else(|| AwsError::incomplete(Service::Iam, OP, self.profile, "key"))?;
        Ok(Credentials::long_lived(
            SecretString::from(key.access_key_id),
            SecretString::from(key.secret_access_key),
        ))
    }

    /// DeleteAccessKey of `key_id` for `user`, signed with `credentials`.
    pub fn delete_access_key(
        &self,
        credentials: &Credentials,
        user: &str,
        key_id: &str,
    ) -> Result<(), AwsError> {
        self.aws
            .block_on(
                self.aws
                    .iam(credentials)
                    .delete_access_key()
                    .user_name(user)
                    .access_key_id(key_id)
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| {
                self.aws
                    .error(Service::Iam, "DeleteAccessKey", self.profile, e)
            })
    }

    /// GetCallerIdentity with `credentials`, retried while IAM propagates a new key (AWS
    /// takes a few seconds); gives up after `attempts`. Returns the caller's ARN.
    pub fn verify_key(&self, credentials: &Credentials, attempts: u32) -> Result<String, AwsError> {
        let sts = self.aws.sts(Some(credentials));
        let mut last = None;
        for attempt in 0..attempts.max(1) {
            if attempt > 0 {
                std::thread::sleep(Duration::from_secs(2));
            }
            match self.aws.block_on(sts.get_caller_identity().send()) {
                Ok(out) => return Ok(out.arn.unwrap_or_default()),
                Err(e) => {
                    last = Some(
                        self.aws
                            .error(Service::Sts, "GetCallerIdentity", self.profile, e),
                    )
                }
            }
        }
        Err(last.expect("at least one attempt"))
    }
}
