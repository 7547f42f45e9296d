//! Unit tests of profile resolution: chains, origins, overrides, includes and the errors
//! that name the line to fix.

use crate::config::ConfigFile;
use crate::origin::Origin;

use super::{Overrides, ProfileError, resolve};

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
