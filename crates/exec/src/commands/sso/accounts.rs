//! `vault sso accounts`: the accounts and roles a sign-in reaches (the AWS CLI's `aws sso
//! list-accounts` and `list-account-roles` in one table), each with the profiles of the
//! config file that already sign in to it, so the person sees what `populate` would add.

use std::io::Write;

use serde::Serialize;
use vault_sts::profile;

use super::{not_a_sign_in, profiles_by_role, reachable, session_named};
use crate::cli::SsoAccountsArgs;
use crate::context::Context;
use crate::error::{CommandError, CommandResult, escaped};

/// `--json`: this shape is documented in docs/sso.md; fields are only ever added.
#[derive(Serialize)]
struct Listing<'a> {
    /// The sso-session; `null` for a legacy profile's sign-in.
    session: Option<&'a str>,
    start_url: &'a str,
    accounts: Vec<Account>,
}

#[derive(Serialize)]
struct Account {
    account_id: String,
    account_name: String,
    roles: Vec<Role>,
}

#[derive(Serialize)]
struct Role {
    role_name: String,
    /// The config file's profiles for this role, by name; empty when it has none.
    profiles: Vec<String>,
}

pub(super) fn accounts(ctx: &Context, args: SsoAccountsArgs) -> CommandResult {
    let config = ctx.load_config()?;
    let name = session_named(ctx, &config, args.name, "accounts")?;
    let sso = profile::sign_in_named(&config, &name).map_err(|e| not_a_sign_in(ctx, &config, e))?;
    let reached = reachable(ctx, &config, &name, &sso)?;
    // The file as it is now: the sign-in may have taken minutes.
    let config = ctx.load_config()?;
    let start_url = sso.start_url.value.trim_end_matches('/');
    // Any sign-in to the same start URL reaches the same accounts: a legacy profile's too.
    let mut profiles = profiles_by_role(&config, |s| {
        s.start_url.value.trim_end_matches('/') == start_url
    });
    let listing = Listing {
        session: sso.session.as_deref(),
        start_url: &sso.start_url.value,
        accounts: reached
            .into_iter()
            .map(|a| Account {
                roles: a
                    .roles
                    .into_iter()
                    .map(|role_name| Role {
                        profiles: profiles
                            .remove(&(a.id.clone(), role_name.clone()))
                            .unwrap_or_default(),
                        role_name,
                    })
                    .collect(),
                account_id: a.id,
                account_name: a.name,
            })
            .collect(),
    };

    let mut out = std::io::stdout().lock();
    let written = match args.json {
        true => crate::commands::write_json(&mut out, &listing),
        false => write_table(&mut out, &listing),
    };
    written.map_err(|e| CommandError::output("the accounts", e))?;

    let roles = listing.accounts.iter().flat_map(|a| &a.roles);
    let (all, bare) = (
        roles.clone().count(),
        roles.filter(|r| r.profiles.is_empty()).count(),
    );
    let label = sso.label();
    let label = escaped(&label);
    match (bare, &sso.session) {
        _ if all == 0 => eprintln!("{label} reaches no role in any account."),
        (0, _) => eprintln!(
            "{label} reaches {all} roles in {} accounts; each has a profile.",
            listing.accounts.len()
        ),
        (n, Some(session)) => eprintln!(
            "{label} reaches {all} roles in {} accounts; {n} without a profile: `vault sso populate {}` writes one for each.",
            listing.accounts.len(),
            escaped(session)
        ),
        (n, None) => eprintln!(
            "{label} reaches {all} roles in {} accounts; {n} without a profile.",
            listing.accounts.len()
        ),
    }
    Ok(())
}

/// A row per role, columns as wide as their widest cell; `-` where no profile has the role.
fn write_table(out: &mut dyn Write, listing: &Listing) -> std::io::Result<()> {
    let header = ["Account", "Name", "Role", "Profiles"].map(str::to_owned);
    let rows: Vec<[String; 4]> = listing
        .accounts
        .iter()
        .flat_map(|a| {
            a.roles.iter().map(|r| {
                [
                    a.account_id.clone(),
                    escaped(&a.account_name).into_owned(),
                    escaped(&r.role_name).into_owned(),
                    match r.profiles.is_empty() {
                        true => "-".to_owned(),
                        false => escaped(&r.profiles.join(", ")).into_owned(),
                    },
                ]
            })
        })
        .collect();
    let mut widths = [0; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let [a, b, c, d] = row;
        let [w0, w1, w2, _] = widths;
        writeln!(out, "{a:<w0$}  {b:<w1$}  {c:<w2$}  {d}")?;
    }
    Ok(())
}
