//! `vault rotate PROFILE`: a new access key in the vault, the old one deleted in IAM.
//!
//! Never lose a working key. The order: create the new key; check that STS accepts it
//! (retrying while IAM propagates it); store it; delete the old key *with the new one*.
//! Whatever step fails, the vault holds a key that works and the message says what exists in
//! the account: nothing changed, or both keys exist and which one to delete.

use secrecy::ExposeSecret;
use vault_store::{Credentials, redact_key_id};
use vault_sts::mint::Minter;
use vault_sts::plan::StepKind;

use crate::cli::{CredentialArgs, RotateArgs};
use crate::commands::creds;
use crate::context::Context;
use crate::error::{CommandError, CommandResult};

/// GetCallerIdentity attempts (2 s apart) while a new key propagates.
const VERIFY_ATTEMPTS: u32 = 8;

pub fn run(ctx: &Context, args: RotateArgs) -> CommandResult {
    // Which stored key: the profile's own, or the one its chain starts from.
    let chain = creds::prepare(ctx, &credential_args(&args.profile, &args, true))?;
    if !matches!(chain.plan.steps[0].kind, StepKind::StoredKey) {
        return Err(CommandError::user(format!(
            "profile {:?} takes its credentials from outside the vault; there is no stored key to rotate",
            args.profile
        ))
        .hint("rotate keys only for profiles whose chain starts with `vault add`"));
    }
    let base = chain.plan.base.clone();
    drop(chain);

    // IAM is called as the user: with an MFA session when the key's profile has an MFA
    // device (IAM policies often demand it), else with the key itself.
    let iam_profile = creds::prepare(ctx, &credential_args(&base, &args, args.no_session))?;
    let use_session = !args.no_session
        && matches!(
            iam_profile.plan.final_step().kind,
            StepKind::GetSessionToken { mfa: true }
        )
        && matches!(iam_profile.plan.steps[0].kind, StepKind::StoredKey);
    let old = iam_profile
        .vault
        .credentials(&base)?
        .ok_or_else(|| CommandError::user(format!("the vault holds no key for {base:?}")))?;
    let iam_creds = if use_session {
        creds::obtain(&iam_profile)?.credentials
    } else {
        old.clone()
    };
    let old_id = old.access_key_id.expose_secret().to_owned();

    let (user, new) = {
        let minter = Minter::new(
            &iam_profile.vault,
            &iam_profile.mfa,
            iam_profile.sts.clone(),
        );
        let user = minter.iam_user(&base, &iam_creds).map_err(|e| {
            CommandError::user(format!("{e}; nothing changed"))
                .hint("the key's user needs iam:GetUser")
        })?;
        let new = minter
            .create_access_key(&base, &iam_creds, &user)
            .map_err(|e| {
                let hint = if e.to_string().contains("LimitExceeded") {
                    format!(
                        "IAM allows two keys per user and {user:?} has two: delete the unused one (`aws iam list-access-keys --user-name {user}`), then rotate"
                    )
                } else {
                    "the key's user needs iam:CreateAccessKey on itself".to_owned()
                };
                CommandError::user(format!("{e}; nothing changed")).hint(hint)
            })?;
        if let Err(e) = minter.verify_key(&base, &new, VERIFY_ATTEMPTS) {
            return Err(undo(
                &minter,
                &base,
                &iam_creds,
                &user,
                &new,
                &format!("STS did not accept the new key ({e})"),
            ));
        }
        (user, new)
    };

    // Store it; the vault keeps the old key if this fails.
    let mut vault = iam_profile.vault;
    if let Err(e) = vault.store_credentials(&base, &new) {
        let minter = Minter::new(&vault, &iam_profile.mfa, iam_profile.sts.clone());
        return Err(undo(
            &minter,
            &base,
            &iam_creds,
            &user,
            &new,
            &format!("the vault could not store it ({e})"),
        ));
    }

    // Delete the old key, signed with the new one.
    let minter = Minter::new(&vault, &iam_profile.mfa, iam_profile.sts.clone());
    if let Err(e) = minter.delete_access_key(&base, &new, &user, &old_id) {
        return Err(CommandError::user(format!(
            "the new key {} is stored and works, but the old key {old_id} was not deleted: {e}",
            new.key_id_hint()
        ))
        .hint(format!(
            "both keys exist; delete the old one: aws iam delete-access-key --user-name {user} --access-key-id {old_id}"
        )));
    }
    eprintln!(
        "Rotated the key of profile {base:?} (IAM user {user}): {} → {}; the old key is deleted and cached sessions are dropped.",
        redact_key_id(&old_id),
        new.key_id_hint()
    );
    Ok(())
}

fn credential_args(profile: &str, args: &RotateArgs, no_session: bool) -> CredentialArgs {
    CredentialArgs {
        profile: profile.to_owned(),
        duration: None,
        no_session,
        region: None,
        mfa_token: args.mfa_token.clone(),
    }
}

/// Deletes the new key again after a failure, so the account is as it was.
fn undo(
    minter: &Minter<'_>,
    base: &str,
    iam_creds: &Credentials,
    user: &str,
    new: &Credentials,
    why: &str,
) -> CommandError {
    let new_id = new.access_key_id.expose_secret();
    match minter.delete_access_key(base, iam_creds, user, new_id) {
        Ok(()) => CommandError::user(format!(
            "rotation stopped: {why}; the new key was deleted again and the vault keeps the old one: nothing changed"
        )),
        Err(e) => CommandError::user(format!(
            "rotation stopped: {why}; the vault keeps the old key, which works, but the new key {new_id} could not be deleted ({e})"
        ))
        .hint(format!(
            "both keys exist; delete the new one: aws iam delete-access-key --user-name {user} --access-key-id {new_id}"
        )),
    }
}
