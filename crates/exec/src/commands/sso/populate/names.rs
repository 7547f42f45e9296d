//! Profile names for `vault sso populate`: the `--profile-template`, the cleaning that makes
//! any account or role name fit in a profile name, and the choice that never gives two
//! sections one name. botocore reads the config strictly: one duplicate section makes every
//! `aws` command fail, so a name is checked against the file and the run's own output after
//! cleaning, when names that differed may have become one.
//!
//! Pure: the file's names come in an [`InFile`], so every rule is tested here.

use std::collections::{BTreeMap, BTreeSet};

/// The placeholders `--profile-template` knows, as written inside `{}`.
pub const PLACEHOLDERS: &[&str] = &["account_name", "account_id", "role_name", "session"];

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    AccountName,
    AccountId,
    RoleName,
    Session,
}

/// A parsed `--profile-template`.
#[derive(Clone, Debug)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// The template, or what is wrong with it (for a usage error).
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('{') {
                let Some(end) = after
                    .find(['}', '{'])
                    .filter(|&i| after[i..].starts_with('}'))
                else {
                    return Err(format!("{rest:?} opens a {{ that no }} closes"));
                };
                parts.push(match &after[..end] {
                    "account_name" => Part::AccountName,
                    "account_id" => Part::AccountId,
                    "role_name" => Part::RoleName,
                    "session" => Part::Session,
                    other => return Err(format!("{{{other}}} is not a placeholder")),
                });
                rest = &after[end + 1..];
                continue;
            }
            let end = rest.find(['{', '}']).unwrap_or(rest.len());
            if end == 0 {
                return Err("a } closes no {".to_owned());
            }
            let literal = &rest[..end];
            if vault_store::validate_profile_name(literal).is_err() {
                return Err(format!(
                    "{literal:?} cannot be part of a profile name: use letters, digits and _ - / . % @ : +"
                ));
            }
            parts.push(Part::Text(literal.to_owned()));
            rest = &rest[end..];
        }
        if parts.iter().all(|p| matches!(p, Part::Text(_))) {
            return Err("it has no placeholder, so every profile would get the same name".into());
        }
        Ok(Template { parts })
    }

    /// The name for `role`, with `account` standing for the account's (cleaned) name.
    fn render(&self, prefix: &str, account: &str, role: &Role, session: &str) -> String {
        let mut out = prefix.to_owned();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::AccountName => out.push_str(account),
                Part::AccountId => out.push_str(&role.account_id),
                Part::RoleName => out.push_str(&clean_role(&role.role)),
                Part::Session => out.push_str(&clean_role(session)),
            }
        }
        out
    }
}

/// The account name as it goes into a profile name: every run of characters other than
/// letters, digits, `_`, `.` and `-` becomes one `-`, trimmed at both ends (`Prod (EU)` →
/// `Prod-EU`). May be empty.
pub fn account_slug(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        match c.is_ascii_alphanumeric() || "_.-".contains(c) {
            true => slug.push(c),
            false if !slug.ends_with('-') => slug.push('-'),
            false => {}
        }
    }
    slug.trim_matches('-').to_owned()
}

/// A role (or session) name as it goes into a profile name: each character a profile name
/// cannot hold becomes `-` (`A=B` → `A-B`).
pub fn clean_role(name: &str) -> String {
    name.chars()
        .map(|c| match c.is_ascii_alphanumeric() || "_.-+@".contains(c) {
            true => c,
            false => '-',
        })
        .collect()
}

/// One role of one account: what a generated profile signs in to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub account_id: String,
    pub account_name: String,
    pub role: String,
}

/// What the config file holds already: every profile name (none may be written again) and,
/// for each (account id, role) of this sign-in, the names of the profiles for it.
#[derive(Debug, Default)]
pub struct InFile {
    pub names: BTreeSet<String>,
    pub roles: BTreeMap<(String, String), Vec<String>>,
}

/// Why a profile does not get the name the template gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Renamed {
    /// Other accounts' names (with their ids) clean to the same text.
    SameAfterCleaning { others: Vec<(String, String)> },
    /// Nothing of the account's name is left once cleaned (a name with no ASCII letter).
    NothingLeft,
    /// A profile in the file has that name, for another account or role.
    InFile,
    /// A profile written by this run has it, for `by`.
    InRun { by: Role },
}

/// The name chosen for a role.
#[derive(Clone, Debug)]
pub struct Named {
    pub role: Role,
    pub name: String,
    /// The file already has this profile, for this very role: nothing is written.
    pub in_file: bool,
    /// The template's name and why it was not used.
    pub renamed: Option<(String, Renamed)>,
}

/// Names for `roles`, in their order (accounts by name then id, roles by name: the same
/// listing gets the same names). A profile already in the file for the role keeps its name
/// (so a second run writes nothing, even after a new account took a name); a new one gets
/// the template's name, else the account id after the account's name, else that with `-2`,
/// `-3`, ... — the first that no profile in the file and no earlier role of the run has.
/// Accounts whose names are equal once cleaned, or empty, never get the plain name: it
/// would say one of them where it could be either.
pub fn choose(
    template: &Template,
    prefix: &str,
    session: &str,
    roles: &[Role],
    in_file: &InFile,
) -> Vec<Named> {
    let mut by_slug: BTreeMap<String, BTreeMap<&str, &str>> = BTreeMap::new();
    for r in roles {
        by_slug
            .entry(account_slug(&r.account_name))
            .or_default()
            .insert(&r.account_id, &r.account_name);
    }
    let mut used: BTreeMap<String, Role> = BTreeMap::new();
    let mut named: Vec<Option<Named>> = vec![None; roles.len()];
    let forms = |r: &Role| {
        let slug = account_slug(&r.account_name);
        let plain = template.render(prefix, &slug, r, session);
        let qualified = match slug.is_empty() {
            true => r.account_id.clone(),
            false => format!("{slug}-{}", r.account_id),
        };
        let with_id = template.render(prefix, &qualified, r, session);
        (slug, plain, with_id)
    };
    // First the roles the file has a profile for under one of their names.
    for (i, r) in roles.iter().enumerate() {
        let (_, plain, with_id) = forms(r);
        let rank = |name: &str| match name {
            n if n == plain => Some(0),
            n if n == with_id => Some(1),
            n => n
                .strip_prefix(&with_id)
                .and_then(|s| s.strip_prefix('-'))
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|&n| n >= 2)
                .map(|n| n.saturating_add(1)),
        };
        let key = (r.account_id.clone(), r.role.clone());
        let Some(kept) = in_file
            .roles
            .get(&key)
            .into_iter()
            .flatten()
            .filter_map(|n| Some((rank(n)?, n)))
            .min()
            .map(|(_, n)| n.clone())
        else {
            continue;
        };
        used.insert(kept.clone(), r.clone());
        named[i] = Some(Named {
            role: r.clone(),
            name: kept,
            in_file: true,
            renamed: None,
        });
    }
    // Then new names, in order.
    for (i, r) in roles.iter().enumerate() {
        if named[i].is_some() {
            continue;
        }
        let (slug, plain, with_id) = forms(r);
        let mut why = match by_slug.get(&slug) {
            _ if slug.is_empty() => Some(Renamed::NothingLeft),
            Some(group) if group.len() > 1 => Some(Renamed::SameAfterCleaning {
                others: group
                    .iter()
                    .filter(|(id, _)| **id != r.account_id)
                    .map(|(id, name)| ((*name).to_owned(), (*id).to_owned()))
                    .collect(),
            }),
            _ => None,
        };
        let first = match why {
            Some(_) => with_id.clone(),
            None => plain.clone(),
        };
        let numbered = (2u64..).map(|n| format!("{with_id}-{n}"));
        // `with_id` may be `first` again: blocked again, it costs one look-up.
        let mut candidates = [first, with_id.clone()].into_iter().chain(numbered);
        let name = loop {
            let candidate = candidates.next().expect("the numbered names never end");
            let blocked = match used.get(&candidate) {
                Some(by) => Some(Renamed::InRun { by: by.clone() }),
                None if in_file.names.contains(&candidate) => Some(Renamed::InFile),
                None => None,
            };
            match blocked {
                None => break candidate,
                Some(reason) => {
                    why.get_or_insert(reason);
                }
            }
        };
        used.insert(name.clone(), r.clone());
        named[i] = Some(Named {
            role: r.clone(),
            renamed: (name != plain).then(|| (plain, why.expect("a reason for every rename"))),
            name,
            in_file: false,
        });
    }
    named
        .into_iter()
        .map(|n| n.expect("every role named"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(id: &str, account: &str, role: &str) -> Role {
        Role {
            account_id: id.into(),
            account_name: account.into(),
            role: role.into(),
        }
    }

    fn default_template() -> Template {
        Template::parse("{account_name}/{role_name}").unwrap()
    }

    fn names(named: &[Named]) -> Vec<&str> {
        named.iter().map(|n| n.name.as_str()).collect()
    }

    #[test]
    fn cleaning_follows_the_documented_rule() {
        assert_eq!(account_slug("My Team (prod)"), "My-Team-prod");
        assert_eq!(account_slug("Ünïcode & co"), "n-code-co");
        assert_eq!(account_slug("日本"), "");
        assert_eq!(clean_role("Read Only"), "Read-Only");
        assert_eq!(clean_role("A=B,C"), "A-B-C");
        let t = default_template();
        let r = role("111111111111", "Lab", "ReadOnly");
        assert_eq!(t.render("corp-", "Lab", &r, "s"), "corp-Lab/ReadOnly");
    }

    #[test]
    fn templates_take_the_placeholders_and_refuse_the_rest() {
        let t = Template::parse("{session}.{account_id}:{role_name}@{account_name}").unwrap();
        let r = role("111111111111", "Lab", "A=B");
        assert_eq!(t.render("", "Lab", &r, "corp"), "corp.111111111111:A-B@Lab");
        for (bad, says) in [
            ("{account}-{role_name}", "{account} is not a placeholder"),
            ("{account_name", "no } closes"),
            ("{account_name{role_name}}", "no } closes"),
            ("{role_name}}", "a } closes no {"),
            ("{role_name} x", "cannot be part of a profile name"),
            ("static", "no placeholder"),
            ("", "no placeholder"),
        ] {
            let e = Template::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn names_equal_after_cleaning_all_get_the_account_id() {
        let roles = [
            role("222222222222", "Prod (EU)", "Admin"),
            role("333333333333", "Prod EU", "Admin"),
            role("444444444444", "Solo", "Admin"),
        ];
        let named = choose(&default_template(), "", "s", &roles, &InFile::default());
        assert_eq!(
            names(&named),
            [
                "Prod-EU-222222222222/Admin",
                "Prod-EU-333333333333/Admin",
                "Solo/Admin"
            ]
        );
        assert_eq!(
            named[0].renamed,
            Some((
                "Prod-EU/Admin".to_owned(),
                Renamed::SameAfterCleaning {
                    others: vec![("Prod EU".into(), "333333333333".into())]
                }
            ))
        );
        assert!(named[2].renamed.is_none());
    }

    #[test]
    fn roles_equal_after_cleaning_and_empty_names_with_a_prefix_stay_apart() {
        let roles = [
            role("111111111111", "Lab", "A-B"),
            role("111111111111", "Lab", "A=B"),
            role("555555555555", "日本", "R"),
            role("666666666666", "Ελλάδα", "R"),
        ];
        let named = choose(
            &default_template(),
            "corp-",
            "s",
            &roles,
            &InFile::default(),
        );
        assert_eq!(
            names(&named),
            [
                "corp-Lab/A-B",
                "corp-Lab-111111111111/A-B",
                "corp-555555555555/R",
                "corp-666666666666/R"
            ]
        );
        assert_eq!(
            named[1].renamed.as_ref().unwrap().1,
            Renamed::InRun {
                by: roles[0].clone()
            }
        );
        assert_eq!(named[2].renamed.as_ref().unwrap().1, Renamed::NothingLeft);
    }

    #[test]
    fn the_file_keeps_its_names_and_its_other_profiles_are_avoided() {
        let roles = [
            role("111111111111", "Lab", "Admin"),
            role("222222222222", "Prod (EU)", "Admin"),
            role("333333333333", "Prod EU", "Admin"),
        ];
        let mut in_file = InFile::default();
        // Someone else's Lab/Admin and Lab-111111111111/Admin; Prod (EU) written by an earlier
        // run, before Prod EU existed.
        for n in ["Lab/Admin", "Lab-111111111111/Admin", "Prod-EU/Admin"] {
            in_file.names.insert(n.into());
        }
        in_file.roles.insert(
            ("222222222222".into(), "Admin".into()),
            vec!["Prod-EU/Admin".into()],
        );
        let named = choose(&default_template(), "", "s", &roles, &in_file);
        assert_eq!(
            names(&named),
            [
                "Lab-111111111111/Admin-2",
                "Prod-EU/Admin",
                "Prod-EU-333333333333/Admin"
            ]
        );
        assert_eq!(named[0].renamed.as_ref().unwrap().1, Renamed::InFile);
        assert!(named[1].in_file && named[1].renamed.is_none());
        assert!(!named[2].in_file);

        // The next run finds each where it was put: nothing new.
        let mut again = InFile::default();
        for n in &named {
            again.names.insert(n.name.clone());
            again.roles.insert(
                (n.role.account_id.clone(), n.role.role.clone()),
                vec![n.name.clone()],
            );
        }
        again.names.insert("Lab/Admin".into());
        let second = choose(&default_template(), "", "s", &roles, &again);
        assert!(second.iter().all(|n| n.in_file), "{second:?}");
        assert_eq!(names(&second), names(&named));
    }

    #[test]
    fn a_template_without_the_account_name_numbers_its_collisions() {
        let t = Template::parse("{role_name}").unwrap();
        let roles = [
            role("111111111111", "Lab", "Admin"),
            role("222222222222", "Prod", "Admin"),
        ];
        let named = choose(&t, "", "s", &roles, &InFile::default());
        assert_eq!(names(&named), ["Admin", "Admin-2"]);
        for n in &named {
            vault_store::validate_profile_name(&n.name).unwrap();
        }
    }
}
