//! Unit tests of the plan: the table in the module's doc, shared MFA sessions, what the
//! cache keys cover (and that they never change), duration limits; and the config fuzz
//! target, which resolves and plans whatever the config file holds.

use super::*;
use crate::profile::Link;

fn src<T>(v: T) -> Sourced<T> {
    Sourced::new(v, Origin::Default)
}

fn role(arn: &str, secs: Option<u64>) -> RoleSpec {
    RoleSpec {
        arn: src(arn.to_owned()),
        external_id: None,
        session_name: None,
        duration: secs.map(|s| src(Duration::from_secs(s))),
        session_tags: None,
        transitive_tags: None,
        source_identity: None,
    }
}

fn resolved(roles: Vec<(&str, RoleSpec)>, mfa: bool) -> Resolved {
    let mut links: Vec<Link> = roles
        .into_iter()
        .rev()
        .map(|(p, r)| Link {
            profile: p.to_owned(),
            role: Some(r),
        })
        .collect();
    links.push(Link {
        profile: "base".into(),
        role: None,
    });
    Resolved {
        name: links[0].profile.clone(),
        links,
        base: "base".into(),
        source: BaseSource::StoredKey,
        region: None,
        mfa_serial: mfa.then(|| src("arn:aws:iam::123456789012:mfa/alice".to_owned())),
        mfa_process: None,
        session_policy: None,
    }
}

fn options() -> PlanOptions {
    PlanOptions {
        no_session: false,
        duration: None,
        ttls: Ttls::from_env(|_| None).unwrap(),
        endpoint: None,
        sso_endpoint: None,
        signin_endpoint: None,
        source_fingerprint: None,
    }
}

fn shape(p: &Plan) -> Vec<String> {
    p.steps
        .iter()
        .map(|s| {
            let mfa = if s.needs_mfa() { "+mfa" } else { "" };
            let secs = s.duration.as_ref().map(|d| d.value.as_secs()).unwrap_or(0);
            format!("{}{mfa}:{secs}", s.name())
        })
        .collect()
}

const LAB: &str = "arn:aws:iam::123456789012:role/lab";
const ADMIN: &str = "arn:aws:iam::123456789012:role/admin";

#[test]
fn the_table() {
    let plain = resolved(vec![], false);
    let no_session = PlanOptions {
        no_session: true,
        ..options()
    };
    assert_eq!(shape(&plan(&plain, &no_session).unwrap()), ["stored key:0"]);
    assert_eq!(
        shape(&plan(&plain, &options()).unwrap()),
        ["stored key:0", "GetSessionToken:3600"]
    );
    assert_eq!(
        shape(&plan(&resolved(vec![], true), &options()).unwrap()),
        ["stored key:0", "GetSessionToken+mfa:3600"]
    );
    assert_eq!(
        shape(&plan(&resolved(vec![("lab", role(LAB, None))], false), &options()).unwrap()),
        ["stored key:0", "AssumeRole:3600"]
    );
    assert_eq!(
        shape(&plan(&resolved(vec![("lab", role(LAB, None))], true), &options()).unwrap()),
        [
            "stored key:0",
            "GetSessionToken+mfa:28800",
            "AssumeRole:3600"
        ]
    );
    let chain = resolved(
        vec![("lab", role(LAB, None)), ("admin", role(ADMIN, Some(7200)))],
        true,
    );
    let p = plan(&chain, &options()).unwrap();
    assert_eq!(
        shape(&p),
        [
            "stored key:0",
            "GetSessionToken+mfa:28800",
            "AssumeRole:3600",
            "AssumeRole:3600"
        ]
    );
    assert!(
        p.steps[3].notes[0].contains("capped at 1h"),
        "{:?}",
        p.steps[3].notes
    );
    assert_eq!(
        shape(
            &plan(
                &resolved(vec![("lab", role(LAB, Some(7200)))], true),
                &options()
            )
            .unwrap()
        ),
        ["stored key:0", "AssumeRole+mfa:7200"]
    );
    // --no-session with a role and MFA: straight from the key, code on the AssumeRole.
    assert_eq!(
        shape(&plan(&resolved(vec![("lab", role(LAB, None))], true), &no_session).unwrap()),
        ["stored key:0", "AssumeRole+mfa:3600"]
    );
}

#[test]
fn mfa_session_is_shared_between_roles() {
    let lab = plan(&resolved(vec![("lab", role(LAB, None))], true), &options()).unwrap();
    let admin = plan(
        &resolved(vec![("admin", role(ADMIN, None))], true),
        &options(),
    )
    .unwrap();
    assert_eq!(lab.steps[1].cache_key, admin.steps[1].cache_key);
    assert_ne!(lab.steps[2].cache_key, admin.steps[2].cache_key);
}

#[test]
fn cache_keys_cover_what_shapes_the_session() {
    let base = plan(&resolved(vec![("lab", role(LAB, None))], false), &options()).unwrap();
    let mut with_ext = role(LAB, None);
    with_ext.external_id = Some(src("x".into()));
    let ext = plan(&resolved(vec![("lab", with_ext)], false), &options()).unwrap();
    let longer = plan(
        &resolved(vec![("lab", role(LAB, Some(7200)))], false),
        &options(),
    )
    .unwrap();
    let endpoint = PlanOptions {
        endpoint: Some("http://127.0.0.1:1".into()),
        ..options()
    };
    let elsewhere = plan(&resolved(vec![("lab", role(LAB, None))], false), &endpoint).unwrap();
    let keys: std::collections::HashSet<_> = [&base, &ext, &longer, &elsewhere]
        .iter()
        .map(|p| p.final_step().cache_key.clone())
        .collect();
    assert_eq!(keys.len(), 4);
}

#[test]
fn a_session_policy_changes_only_the_final_key() {
    let doc = |t: &str| crate::policy::SessionPolicy {
        document: Some(src(crate::policy::document(t).unwrap())),
        arns: vec![],
    };
    let chain = vec![("lab", role(LAB, None)), ("admin", role(LAB, None))];
    let open = plan(&resolved(chain.clone(), true), &options()).unwrap();
    let mut narrowed = resolved(chain.clone(), true);
    narrowed.session_policy = Some(doc(r#"{"Statement":[]}"#));
    let narrow = plan(&narrowed, &options()).unwrap();
    narrowed.session_policy = Some(doc(r#"{"Statement":[{}]}"#));
    let other = plan(&narrowed, &options()).unwrap();
    let last = open.steps.len() - 1;
    for i in 0..last {
        assert_eq!(open.steps[i].cache_key, narrow.steps[i].cache_key);
        assert!(narrow.policy_for(i).is_none());
    }
    assert_ne!(open.steps[last].cache_key, narrow.steps[last].cache_key);
    assert_ne!(other.steps[last].cache_key, narrow.steps[last].cache_key);
    assert!(narrow.policy_for(last).is_some());
    // GetSessionToken takes no policy: the plan says so, and its key is unchanged.
    let mut keyed = resolved(vec![], false);
    keyed.session_policy = Some(doc("{}"));
    let keyed = plan(&keyed, &options()).unwrap();
    assert!(!keyed.policy_carried());
    assert_eq!(
        keyed.final_step().cache_key,
        plan(&resolved(vec![], false), &options())
            .unwrap()
            .final_step()
            .cache_key
    );
}

#[test]
fn durations_are_checked() {
    let short = PlanOptions {
        duration: Some(src(Duration::from_secs(60))),
        ..options()
    };
    let e = plan(&resolved(vec![], false), &short).unwrap_err();
    assert!(e.to_string().contains("at least 15m"), "{e}");
    let long = resolved(vec![("lab", role(LAB, Some(13 * 3600)))], false);
    assert!(
        plan(&long, &options())
            .unwrap_err()
            .to_string()
            .contains("12h")
    );
}

/// The cache keys of every kind of step, as vaults hold them: a changed key orphans every
/// cached session (and makes people type MFA codes again), so a change must be deliberate.
/// `cache_keys_are_stable`'s plans, step by step (`-`: no cache key).
const GOLDEN: &[&str] = &[
    "-",
    "8bdf4371bc562d2d01abc113547e688d",
    "-",
    "0124d33ee2d95443095f79192f374f11",
    "-",
    "2d282bfcbde546b0d58c4f1a7e7a67c7",
    "51a448bf340d67b8f7c04d1d4f9ee257",
    "4f906c6ec42bb905c9bf863a122e90ff",
    "-",
    "2b0a71b83bb2e90820809e9233fc851d",
    "-",
    "c28cc58accedbefdd3de092d7fa60d83",
    "4a5e2b38e71a919e57b787244702208a",
    "-",
    "a1672dd4409e4cfd06a1a62e90f34a1a",
    "72eb252da2494fca563cd1dbef86e77e",
    "efafc3ba1bbe66abfb5bd3c584a3ee5e",
    "681aca469efc3e181fd286800ee791b5",
    "391f3e564215a8853a5e4bc4a8d635da",
    "6493c2b8600a3d3fb372f64b50c08c08",
    "277aabe034fc2a6b59b94c36f4b64392",
];

#[test]
fn cache_keys_are_stable() {
    let mut tagged = role(LAB, Some(7200));
    tagged.external_id = Some(src("ext".into()));
    tagged.session_name = Some(src("alice".into()));
    tagged.session_tags = Some(src(vec![("team".into(), "infra".into())]));
    tagged.transitive_tags = Some(src(vec!["team".into()]));
    tagged.source_identity = Some(src("alice".into()));
    let elsewhere = PlanOptions {
        endpoint: Some("http://127.0.0.1:1".into()),
        sso_endpoint: Some("http://127.0.0.1:2".into()),
        signin_endpoint: None,
        source_fingerprint: Some("fp".into()),
        ..options()
    };
    let mut in_china = resolved(vec![("lab", role(LAB, None))], true);
    in_china.region = Some(src("cn-north-1".into()));
    let mut plans = vec![
        plan(&resolved(vec![], false), &options()),
        plan(&resolved(vec![], true), &elsewhere),
        plan(
            &resolved(
                vec![("lab", role(LAB, None)), ("admin", tagged.clone())],
                true,
            ),
            &options(),
        ),
        plan(&resolved(vec![("lab", tagged.clone())], true), &elsewhere),
        plan(&in_china, &options()),
    ];
    let sso = SsoSession {
        key: "corp".into(),
        session: Some("corp".into()),
        start_url: src("https://x.awsapps.com/start".into()),
        region: src("eu-west-1".into()),
        scopes: vec![],
    };
    for source in [
        BaseSource::CredentialSource(src(CredentialSourceKind::EcsContainer)),
        BaseSource::Process(src("saml2aws login".into())),
        BaseSource::WebIdentity {
            role: Box::new(tagged.clone()),
            token_file: src("/token".into()),
        },
        BaseSource::Sso {
            sso: Box::new(sso),
            account_id: src("123456789012".into()),
            role_name: src("Admin".into()),
        },
    ] {
        let mut r = resolved(vec![("admin", role(ADMIN, None))], false);
        r.source = source;
        plans.push(plan(&r, &elsewhere));
    }
    let keys: Vec<String> = plans
        .into_iter()
        .flat_map(|p| p.unwrap().steps)
        .map(|s| s.cache_key.unwrap_or_else(|| "-".into()))
        .collect();
    assert_eq!(keys, GOLDEN);
}

/// Fuzz target (see `vault_fuzz`): any bytes as the AWS config file; every profile in it
/// resolves or gives an error, and each resolved one plans or gives an error: no panic.
#[test]
fn fuzz_config_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    let seeds: &[&[u8]] = &[
        b"[profile base]\nregion = eu-west-1\nmfa_serial = arn:aws:iam::123456789012:mfa/a\n\
          [profile lab]\nsource_profile = base\nrole_arn = arn:aws:iam::123456789012:role/lab\n\
          duration_seconds = 1h\nsession_tags = a=b,c=d\ntransitive_session_tags = a\n",
        b"[default]\nregion = us-east-1\n[profile ci]\nrole_arn = arn:aws:iam::123456789012:role/ci\n\
          web_identity_token_file = /nonexistent\n[profile sr]\ncredential_source = Environment\n\
          role_arn = arn:aws:iam::123456789012:role/x\n",
        b"[profile a]\ninclude_profile = b\n[profile b]\ninclude_profile = a\nsource_profile = a\n\
          role_arn = arn:aws:iam::123456789012:role/x\n[services s]\nsts =\n  endpoint_url = http://x\n",
    ];
    let tokens: &[&[u8]] = &[
        b"\n[profile ",
        b"]\n",
        b"\nsource_profile = ",
        b"\nrole_arn = arn:aws:iam::123456789012:role/",
        b"\ninclude_profile = ",
        b"\nduration_seconds = ",
        b"\ncredential_process = ",
        b"\nmfa_serial = ",
        b"\n  continued = x",
        b"#",
        b";",
        b"=",
        b"\xff",
    ];
    let has_key = |n: &str| n.len().is_multiple_of(2);
    vault_fuzz::fuzz("config_resolution", seeds, tokens, |input| {
        std::fs::write(&path, input).unwrap();
        let Ok(config) = crate::config::ConfigFile::load(&path) else {
            return;
        };
        for name in config.profile_names() {
            let Ok(resolved) =
                crate::profile::resolve(&config, &name, &Default::default(), &has_key)
            else {
                continue;
            };
            let _ = plan(&resolved, &options());
            let _ = crate::config::ConfigFile::load_for(&path, &name);
        }
    });
}

/// A console session is read, not minted or cached by vault; roles on it are chained (≤ 1 h)
/// and carry the MFA code themselves; their keys name the session and the Sign-In endpoint.
#[test]
fn console_sessions_plan_as_an_uncached_role_source() {
    let login = crate::profile::LoginSession {
        arn: src("arn:aws:iam::123456789012:user/alice".to_owned()),
        region: None,
    };
    let mut r = resolved(
        vec![(
            "lab",
            role("arn:aws:iam::123456789012:role/lab", Some(7200)),
        )],
        true,
    );
    r.source = BaseSource::LoginSession(Box::new(login.clone()));
    let p = plan(&r, &options()).unwrap();
    assert_eq!(shape(&p), ["login_session:0", "AssumeRole+mfa:3600"]);
    assert_eq!(p.steps[0].cache_key, None);
    assert_eq!(
        p.steps[0].describe(),
        "console session of arn:aws:iam::123456789012:user/alice"
    );
    assert!(matches!(
        p.steps[1].kind,
        StepKind::AssumeRole { chained: true, .. }
    ));
    // No MFA session to skip here: the note about one is the stored key's only.
    assert!(
        p.steps[1]
            .notes
            .iter()
            .all(|n| !n.contains("straight from the key")),
        "{:?}",
        p.steps[1].notes
    );
    let mut elsewhere = options();
    elsewhere.signin_endpoint = Some("http://127.0.0.1:9".into());
    let q = plan(&r, &elsewhere).unwrap();
    assert_ne!(p.steps[1].cache_key, q.steps[1].cache_key);

    let mut direct = resolved(vec![], false);
    direct.source = BaseSource::LoginSession(Box::new(login));
    let d = plan(&direct, &options()).unwrap();
    assert_eq!(shape(&d), ["login_session:0"]);
}
