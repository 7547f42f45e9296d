//! Unit tests of profile resolution: chains, origins, overrides, includes and the errors
//! that name the line to fix.

use crate::config::ConfigFile;
use crate::origin::Origin;

use super::{BaseSource, Overrides, ProfileError, resolve, sign_in_named};

fn config(text: &str) -> (tempfile::TempDir, ConfigFile) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, text).unwrap();
    let config = ConfigFile::load(&path).unwrap();
    (dir, config)
}

const CHAIN: &str = "\
[default]
region = us-east-1
mfa_serial = arn:aws:iam::111111111111:mfa/default

[profile base]
region = eu-west-1
mfa_serial = arn:aws:iam::111111111111:mfa/alice

[profile lab]
source_profile = base
role_arn = arn:aws:iam::222222222222:role/lab
external_id = ext-1

[profile lab-admin]
source_profile = lab
role_arn = arn:aws:iam::333333333333:role/admin
role_session_name = alice

[profile loop-a]
source_profile = loop-b
role_arn = arn:aws:iam::222222222222:role/a
[profile loop-b]
source_profile = loop-a
role_arn = arn:aws:iam::222222222222:role/b

[profile plain]
";

fn only(names: &'static [&'static str]) -> impl Fn(&str) -> bool {
    move |n| names.contains(&n)
}

#[test]
fn chain_resolves_to_base_with_origins() {
    let (_d, c) = config(CHAIN);
    let r = resolve(&c, "lab-admin", &Overrides::default(), &only(&["base"])).unwrap();
    assert_eq!(r.base, "base");
    let names: Vec<&str> = r.links.iter().map(|l| l.profile.as_str()).collect();
    assert_eq!(names, ["lab-admin", "lab", "base"]);
    let roles: Vec<&str> = r.roles().map(|(p, _)| p).collect();
    assert_eq!(roles, ["lab", "lab-admin"]);
    assert_eq!(r.region.as_ref().unwrap().value, "eu-west-1");
    let mfa = r.mfa_serial.unwrap();
    assert!(mfa.value.ends_with("mfa/alice"));
    assert_eq!(mfa.origin.to_string(), format!("{}:7", c.path.display()));
    let lab = r.links[1].role.as_ref().unwrap();
    assert_eq!(lab.external_id.as_ref().unwrap().value, "ext-1");
}

#[test]
fn default_does_not_leak() {
    let (_d, c) = config(CHAIN);
    let r = resolve(&c, "plain", &Overrides::default(), &only(&["plain"])).unwrap();
    assert!(r.mfa_serial.is_none());
    assert!(r.region.is_none());
}

#[test]
fn overrides_win() {
    let (_d, c) = config(CHAIN);
    let o = Overrides::from_env(|n| match n {
        "AWS_DEFAULT_REGION" => Some("ap-south-1".into()),
        "AWS_ROLE_SESSION_NAME" => Some("ci-run".into()),
        _ => None,
    });
    let r = resolve(&c, "lab", &o, &only(&["base"])).unwrap();
    assert_eq!(r.region.unwrap().origin, Origin::Env("AWS_DEFAULT_REGION"));
    let role = r.links[0].role.as_ref().unwrap();
    assert_eq!(role.session_name.as_ref().unwrap().value, "ci-run");
}

#[test]
fn errors_name_the_problem() {
    let (_d, c) = config(CHAIN);
    let none = only(&[]);
    assert!(matches!(
        resolve(&c, "nope", &Overrides::default(), &none),
        Err(ProfileError::Unknown { .. })
    ));
    let e = resolve(&c, "loop-a", &Overrides::default(), &none).unwrap_err();
    assert_eq!(
        e.to_string(),
        "source_profile cycle: loop-a → loop-b → loop-a"
    );
    assert!(matches!(
        resolve(&c, "lab", &Overrides::default(), &none),
        Err(ProfileError::NoStoredKey { .. })
    ));

    let (_d, c) = config(
        "[profile x]\nsource_profile = gone\nrole_arn = arn:aws:iam::123456789012:role/x\n\
         [profile bad]\nsource_profile = bad2\nrole_arn = arn:aws:iam::123:rol\n[profile bad2]\n\
         [profile slow]\nsource_profile = bad2\nrole_arn = arn:aws:iam::123456789012:role/x\nduration_seconds = 1h?\n",
    );
    let e = resolve(&c, "x", &Overrides::default(), &only(&["x"])).unwrap_err();
    assert!(e.to_string().contains("\"gone\""), "{e}");
    let e = resolve(&c, "bad", &Overrides::default(), &only(&["bad2"])).unwrap_err();
    assert!(e.to_string().contains("role_arn"), "{e}");
    assert!(e.to_string().contains(":6)"), "{e}");
    let e = resolve(&c, "slow", &Overrides::default(), &only(&["bad2"])).unwrap_err();
    assert!(e.to_string().contains("duration_seconds"), "{e}");

    // Ambiguous, as the SDKs see it; a NUL in an ARN.
    let (_d, c) = config(
        "[profile both]\nsource_profile = base\ncredential_source = Environment\n\
         role_arn = arn:aws:iam::123456789012:role/x\n[profile base]\n\
         [profile nul]\nsource_profile = base\nrole_arn = arn:aws:iam::123456789012:role/x\0y\n",
    );
    let e = resolve(&c, "both", &Overrides::default(), &only(&["base"])).unwrap_err();
    assert!(e.to_string().contains("not both"), "{e}");
    let e = resolve(&c, "nul", &Overrides::default(), &only(&["base"])).unwrap_err();
    assert!(e.to_string().contains("control character"), "{e}");
}

#[test]
fn a_web_identity_token_without_a_role_names_role_arn() {
    let (_d, c) = config("[profile ci]\nweb_identity_token_file = /tmp/token\n");
    let e = resolve(&c, "ci", &Overrides::default(), &only(&["ci"])).unwrap_err();
    assert!(e.to_string().contains("needs role_arn"), "{e}");
    assert!(e.to_string().contains(":2)"), "{e}");
}

#[test]
fn a_missing_stored_key_still_resolves_for_the_plan() {
    let (_d, c) = config(CHAIN);
    let r = super::resolve_without_key(&c, "lab-admin", &Overrides::default(), &only(&[])).unwrap();
    assert_eq!(r.missing_key(&only(&[])), Some("base"));
    assert_eq!(r.missing_key(&only(&["base"])), None);
}

#[test]
fn include_profile_fills_gaps() {
    let (_d, c) = config(
        "[profile common]\nregion = eu-central-1\nmfa_serial = arn:aws:iam::123456789012:mfa/a\n\
         [profile lab]\ninclude_profile = common\nsource_profile = base\n\
         role_arn = arn:aws:iam::123456789012:role/lab\n[profile base]\n",
    );
    let r = resolve(&c, "lab", &Overrides::default(), &only(&["base"])).unwrap();
    assert_eq!(r.region.unwrap().value, "eu-central-1");
    assert!(r.mfa_serial.is_some());
}

#[test]
fn self_source_and_vault_only_profiles() {
    let (_d, c) =
        config("[profile me]\nsource_profile = me\nrole_arn = arn:aws:iam::123456789012:role/x\n");
    let r = resolve(&c, "me", &Overrides::default(), &only(&["me"])).unwrap();
    assert_eq!(r.base, "me");
    assert_eq!(r.links.len(), 1);
    assert_eq!(r.roles().count(), 1);
    let r = resolve(&c, "ghost", &Overrides::default(), &only(&["ghost"])).unwrap();
    assert_eq!(r.base, "ghost");
    assert_eq!(r.roles().count(), 0);
}

#[test]
fn sso_profiles_are_checked_as_the_sdks_check_them() {
    let (_d, c) = config(
        "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n\
         [profile dev]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Dev\n\
         [profile legacy]\nsso_start_url = https://old.awsapps.com/start\nsso_region = us-east-1\n\
         sso_account_id = 123456789012\nsso_role_name = Dev\n\
         [profile clash]\nsso_session = corp\nsso_region = us-east-1\nsso_account_id = 123456789012\n\
         sso_role_name = Dev\n\
         [profile nosession]\nsso_session = gone\nsso_account_id = 123456789012\nsso_role_name = Dev\n\
         [profile noregion]\nsso_start_url = https://old.awsapps.com/start\n\
         sso_account_id = 123456789012\nsso_role_name = Dev\n\
         [profile short]\nsso_session = corp\nsso_account_id = 1234\nsso_role_name = Dev\n\
         [profile half]\nsso_session = corp\nsso_account_id = 123456789012\n\
         [profile bare]\nsso_account_id = 123456789012\nsso_role_name = Dev\n\
         [profile signin]\nsso_session = corp\n",
    );
    let none = only(&[]);
    let sso_of = |name: &str| match resolve(&c, name, &Overrides::default(), &none)
        .unwrap()
        .source
    {
        BaseSource::Sso {
            sso,
            account_id,
            role_name,
        } => (*sso, account_id.value, role_name.value),
        other => panic!("{name}: {other:?}"),
    };
    let (sso, account, role) = sso_of("dev");
    assert_eq!((sso.key.as_str(), sso.refreshable()), ("corp", true));
    assert_eq!((account.as_str(), role.as_str()), ("123456789012", "Dev"));
    let (sso, _, _) = sso_of("legacy");
    assert_eq!(sso.key, "https://old.awsapps.com/start");
    assert!(!sso.refreshable());
    assert_eq!(sign_in_named(&c, "dev").unwrap().key, "corp");
    assert_eq!(
        sign_in_named(&c, "corp")
            .unwrap()
            .start_url
            .origin
            .to_string(),
        format!("{}:2", c.path.display())
    );

    let path = c.path.display().to_string();
    let problem = |name: &str| {
        let e = resolve(&c, name, &Overrides::default(), &none).unwrap_err();
        e.to_string().replace(&path, "CONFIG")
    };
    for (name, wanted) in [
        (
            "clash",
            r#"sso_region of profile "clash" (CONFIG:15) is not valid: "us-east-1" contradicts sso-session corp (CONFIG:3), which says "eu-west-1"; remove it from the profile"#,
        ),
        (
            "nosession",
            r#"sso_session of profile "nosession" (CONFIG:19) is not valid: there is no [sso-session gone] section in the file; add one with sso_start_url and sso_region"#,
        ),
        (
            "noregion",
            r#"sso_start_url of profile "noregion" (CONFIG:23) is not valid: the legacy SSO form needs sso_region too (or use sso_session, which can refresh)"#,
        ),
        (
            "short",
            r#"sso_account_id of profile "short" (CONFIG:28) is not valid: "1234" is not a 12-digit AWS account id"#,
        ),
        (
            "half",
            r#"sso_account_id of profile "half" (CONFIG:32) is not valid: it needs sso_role_name too: the role to sign in to in that account"#,
        ),
        (
            "bare",
            r#"sso_account_id of profile "bare" (CONFIG:34) is not valid: it needs sso_session (naming an [sso-session] section) or sso_start_url and sso_region"#,
        ),
        (
            "signin",
            r#"sso_session of profile "signin" (CONFIG:2) is not valid: the profile names a sign-in (sso-session corp) but no role; add sso_account_id and sso_role_name (or sign in with `vault sso login`)"#,
        ),
    ] {
        assert_eq!(problem(name), wanted, "{name}");
    }
    assert_eq!(
        sign_in_named(&c, "nope")
            .unwrap_err()
            .to_string()
            .replace(&path, "CONFIG"),
        r#"sso-session "nope" (CONFIG): no [sso-session nope] section and no profile "nope" that signs in with SSO; sessions here: corp"#
    );
}

/// `role_arn` beside a sign-in with no `source_profile`: botocore and aws-sdk-rust refuse
/// it ("missing: source_profile or credential_source"), so vault does too, and keeps the
/// sign-in's keys for the fix. With `source_profile` naming the sign-in's profile it works.
#[test]
fn a_role_beside_a_sign_in_needs_a_source_profile() {
    let (_d, c) = config(
        "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n\
         [profile both]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Dev\n\
         role_arn = arn:aws:iam::123456789012:role/deploy\n\
         [profile legacy-both]\nsso_start_url = https://old.awsapps.com/start\nsso_region = us-east-1\n\
         sso_account_id = 123456789012\nsso_role_name = Dev\nrole_arn = arn:aws:iam::123456789012:role/x\n\
         [profile dev]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Dev\n\
         [profile deploy]\nsource_profile = dev\nrole_arn = arn:aws:iam::123456789012:role/deploy\n",
    );
    let none = only(&[]);
    let e = resolve(&c, "both", &Overrides::default(), &none).unwrap_err();
    assert!(
        e.to_string().contains(&format!(
            "profile \"both\" sets role_arn ({}:8) and the keys of an IAM Identity Center sign-in, but no source_profile",
            c.path.display()
        )),
        "{e}"
    );
    match e {
        ProfileError::RoleBesideSignIn {
            sign_in, role_arn, ..
        } => {
            assert_eq!(
                sign_in,
                [
                    "sso_session = corp",
                    "sso_account_id = 123456789012",
                    "sso_role_name = Dev"
                ]
            );
            assert_eq!(role_arn, "arn:aws:iam::123456789012:role/deploy");
        }
        other => panic!("{other:?}"),
    }
    match resolve(&c, "legacy-both", &Overrides::default(), &none).unwrap_err() {
        ProfileError::RoleBesideSignIn { sign_in, .. } => {
            assert_eq!(sign_in[0], "sso_start_url = https://old.awsapps.com/start");
            assert_eq!(sign_in[1], "sso_region = us-east-1");
        }
        other => panic!("{other:?}"),
    }
    let deploy = resolve(&c, "deploy", &Overrides::default(), &none).unwrap();
    assert!(matches!(deploy.source, BaseSource::Sso { .. }));
    assert_eq!(deploy.links.len(), 2);
}

/// `login_session` (what `aws login` writes) starts a chain as SSO does, in aws-config's
/// order (after SSO, before credential_process and keys), and `role_arn` beside it without a
/// `source_profile` is refused as the SDKs refuse it.
#[test]
fn login_sessions_start_chains_in_the_sdks_order() {
    let (_d, c) = config(
        "[profile console]\nlogin_session = arn:aws:iam::123456789012:user/alice\nregion = us-west-2\n\
         credential_process = never-run\n\
         [profile lab]\nsource_profile = console\nrole_arn = arn:aws:iam::123456789012:role/lab\nregion = eu-west-1\n\
         [profile both]\nlogin_session = arn:aws:iam::123456789012:user/alice\nrole_arn = arn:aws:iam::123456789012:role/lab\n\
         [profile sso-first]\nlogin_session = arn:aws:iam::123456789012:user/alice\n\
         sso_start_url = https://old.awsapps.com/start\nsso_region = us-east-1\nsso_account_id = 123456789012\nsso_role_name = Dev\n\
         [profile empty]\nlogin_session =\n",
    );
    // A stored key of the same profile does not win over it either (aws-config: static keys
    // come last).
    let keys = only(&["console"]);
    let console = resolve(&c, "console", &Overrides::default(), &keys).unwrap();
    match &console.source {
        BaseSource::LoginSession(login) => {
            assert_eq!(login.arn.value, "arn:aws:iam::123456789012:user/alice");
            assert_eq!(login.region.as_ref().unwrap().value, "us-west-2");
            assert!(matches!(
                login.arn.origin,
                Origin::Config { line: Some(2), .. }
            ));
        }
        other => panic!("{other:?}"),
    }
    let lab = resolve(&c, "lab", &Overrides::default(), &keys).unwrap();
    assert!(matches!(lab.source, BaseSource::LoginSession(_)));
    assert_eq!(lab.base, "console");
    assert_eq!(lab.roles().count(), 1);
    // The region of the chain is the requested profile's; Sign-In's is the session's own.
    assert_eq!(lab.region.unwrap().value, "eu-west-1");

    let none = only(&[]);
    match resolve(&c, "both", &Overrides::default(), &none).unwrap_err() {
        e @ ProfileError::RoleBesideSignIn { console: true, .. } => {
            assert!(
                e.to_string().contains(
                    "the keys of a console session (login_session), but no source_profile"
                ),
                "{e}"
            );
            let ProfileError::RoleBesideSignIn { sign_in, .. } = e else {
                unreachable!()
            };
            assert_eq!(
                sign_in,
                ["login_session = arn:aws:iam::123456789012:user/alice"]
            );
        }
        other => panic!("{other:?}"),
    }
    let sso = resolve(&c, "sso-first", &Overrides::default(), &none).unwrap();
    assert!(matches!(sso.source, BaseSource::Sso { .. }));
    assert!(matches!(
        resolve(&c, "empty", &Overrides::default(), &none).unwrap_err(),
        ProfileError::Invalid {
            key: "login_session",
            ..
        }
    ));
}
