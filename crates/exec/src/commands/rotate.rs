//! `vault rotate PROFILE`: a new access key in the vault, the old one deleted in IAM.
//!
//! Never lose a working key. The order: create the new key; check that STS accepts it
//! (retrying while IAM propagates it); store it; delete the old key *with the new one*.
//! Whatever step fails, the vault holds a key that works and the message says what exists in
//! the account: nothing changed, or both keys exist and which one to delete.

use secrecy::ExposeSecret;
use vault_store::{Credentials, redact_key_id};
use vault_sts::iam::Iam;
use vault_sts::plan::StepKind;

use crate::cli::RotateArgs;
use crate::context::Context;
use crate::error::{CommandError, CommandResult};
use crate::prepare::{self, Request};

/// GetCallerIdentity attempts (2 s apart) while a new key propagates.
const VERIFY_ATTEMPTS: u32 = 8;

pub fn run(ctx: &Context, profile: String, args: RotateArgs) -> CommandResult {
    let request = |profile: &str, no_session: bool| Request {
        no_session,
        mfa_token: args.mfa_token.clone().map(|c| c.0),
        uncarried_policy_ok: true,
        ..Request::profile(profile.to_owned())
    };
    // Which stored key: the profile's own, or the one its chain starts from.
    let chain = prepare::prepare(ctx, &request(&profile, true))?;
    if !matches!(chain.plan.steps[0].kind, StepKind::StoredKey) {
        return Err(CommandError::user(format!(
            "profile {:?} takes its credentials from outside the vault; there is no stored key to rotate",
            profile
        ))
        .hint("rotate keys only for profiles whose chain starts with `vault add`"));
    }
    let base = chain.plan.base.clone();
    drop(chain);

    // IAM is called as the user: with an MFA session when the key's profile has an MFA
    // device (IAM policies often demand it), else with the key itself.
    let iam_profile = prepare::prepare(ctx, &request(&base, args.no_session))?;
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
        iam_profile.obtain()?.credentials
    } else {
        old.clone()
    };
    let old_id = old.access_key_id.expose_secret().to_owned();
    let iam = Iam::new(&iam_profile.aws, &base);

    let user = iam.user(&iam_creds).map_err(|e| {
        CommandError::user(format!("{e}; nothing changed")).hint("the key's user needs iam:GetUser")
    })?;
    let new = iam.create_access_key(&iam_creds, &user).map_err(|e| {
        let hint = match e.code() {
            Some("LimitExceeded") => format!(
                "IAM allows two keys per user and {user:?} has two: delete the unused one (`aws iam list-access-keys --user-name {user}`), then rotate"
            ),
            _ => "the key's user needs iam:CreateAccessKey on itself".to_owned(),
        };
        CommandError::user(format!("{e}; nothing changed")).hint(hint)
    })?;
    if let Err(e) = iam.verify_key(&new, VERIFY_ATTEMPTS) {
        return Err(undo(
            &iam,
            &iam_creds,
            &user,
            &new,
            &format!("STS did not accept the new key ({e})"),
        ));
    }

    // Store it; the vault keeps the old key if this fails.
    let mut vault = iam_profile.vault;
    if let Err(e) = vault.store_credentials(&base, &new) {
        let why = format!("the vault could not store it ({e})");
        return Err(undo(&iam, &iam_creds, &user, &new, &why).with_source(e));
    }

    // Delete the old key, signed with the new one. The recovery messages below name whole
    // key ids: the user needs them to delete a key by hand (key ids are not secret).
    if let Err(e) = iam.delete_access_key(&new, &user, &old_id) {
        return Err(CommandError::user(format!(
            "the new key {} is stored and works, but the old key {old_id} was not deleted: {e}",
            new.key_id_hint()
        ))
        .hint(format!(
            "both keys exist; delete the old one: aws iam delete-access-key --user-name {user} --access-key-id {old_id}"
        ))
        .with_source(e));
    }
    eprintln!(
        "Rotated the key of profile {base:?} (IAM user {user}): {} → {}; the old key is deleted and cached sessions are dropped.",
        redact_key_id(&old_id),
        new.key_id_hint()
    );
    Ok(())
}

/// Deletes the new key again after a failure, so the account is as it was.
fn undo(
    iam: &Iam<'_>,
    iam_creds: &Credentials,
    user: &str,
    new: &Credentials,
    why: &str,
) -> CommandError {
    let new_id = new.access_key_id.expose_secret();
    match iam.delete_access_key(iam_creds, user, new_id) {
        Ok(()) => CommandError::user(format!(
            "rotation stopped: {why}; the new key was deleted again and the vault keeps the old one: nothing changed"
        )),
        Err(e) => CommandError::user(format!(
            "rotation stopped: {why}; the vault keeps the old key, which works, but the new key {new_id} could not be deleted ({e})"
        ))
        .hint(format!(
            "both keys exist; delete the new one: aws iam delete-access-key --user-name {user} --access-key-id {new_id}"
        ))
        .with_source(e),
    }
}
