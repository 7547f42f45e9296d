//! Credentials from outside the vault: `credential_source` (Environment, EcsContainer,
//! Ec2InstanceMetadata), `web_identity_token_file`, `credential_process` as a source, and the
//! session tags passed to AssumeRole. All against moto, with the AWS CLI as the child.

use std::fs;

use vault_harness::{Run, World};

const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// [`World`] without a stored key: sources need no vault unless a test adds one.
fn world(config: &str) -> World {
    World::without_stored_key("sources test", config)
}

/// `vault exec PROFILE -- aws sts get-caller-identity`, with extra variables.
fn caller(w: &World, vars: &[(&str, &str)], profile: &str) -> Run {
    w.env.caller_arn(vars, &["exec", profile])
}

const ENV_CONFIG: &str = "\
[profile ci]
role_arn = arn:aws:iam::123456789012:role/ci
credential_source = Environment
region = us-east-1
session_tags = team=infra,env=lab
transitive_session_tags = team
source_identity = alice
";

#[test]
fn environment_source_assumes_the_role_with_tags_and_needs_no_vault() {
    let w = world(ENV_CONFIG);
    let run = caller(
        &w,
        &[
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
        "ci",
    );
    run.success()
        .stdout_has("arn:aws:sts::123456789012:assumed-role/ci/");
    let calls = w.moto.sts_calls();
    let assume: Vec<_> = calls.iter().filter(|c| c.action == "AssumeRole").collect();
    assert_eq!(assume.len(), 1, "{calls:?}");
    let a = assume[0];
    assert_eq!(a.param("Tags.member.1.Key"), Some("team"));
    assert_eq!(a.param("Tags.member.1.Value"), Some("infra"));
    assert_eq!(a.param("Tags.member.2.Key"), Some("env"));
    assert_eq!(a.param("Tags.member.2.Value"), Some("lab"));
    assert_eq!(a.param("TransitiveTagKeys.member.1"), Some("team"));
    assert_eq!(a.param("SourceIdentity"), Some("alice"));
    // The environment's own key never reaches the child.
    assert!(!w.env.vault_dir().exists(), "a vault was created");

    // Without the variables: a clear error naming what to set.
    caller(&w, &[], "ci")
        .failure(1)
        .stderr_has("Environment")
        .stderr_has("AWS_ACCESS_KEY_ID");
    assert!(!w.env.transcript().contains(SECRET));
}

#[test]
fn web_identity_token_file_uses_assume_role_with_web_identity() {
    let w = world(
        "[profile gha]\nrole_arn = arn:aws:iam::123456789012:role/deploy\n\
         web_identity_token_file = @DIR@/token\nrole_session_name = gha-run\nregion = us-east-1\n",
    );
    fs::write(w.path("token"), "eyJhbGciOi.fake.oidc-token\n").unwrap();
    caller(&w, &[], "gha")
        .success()
        .stdout_has("assumed-role/deploy/gha-run");
    let calls = w.moto.sts_calls();
    let web: Vec<_> = calls
        .iter()
        .filter(|c| c.action == "AssumeRoleWithWebIdentity")
        .collect();
    assert_eq!(web.len(), 1, "{calls:?}");
    assert_eq!(
        web[0].param("RoleArn"),
        Some("arn:aws:iam::123456789012:role/deploy")
    );
    assert_eq!(
        web[0].param("WebIdentityToken"),
        Some("eyJhbGciOi.fake.oidc-token")
    );
    assert_eq!(web[0].param("RoleSessionName"), Some("gha-run"));

    fs::remove_file(w.path("token")).unwrap();
    caller(&w, &[], "gha")
        .failure(1)
        .stderr_has("web_identity_token_file");
}

#[test]
fn credential_process_source_is_cached_then_chained() {
    let w = world(
        "[profile saml]\ncredential_process = @DIR@/saml.sh --role sso\nregion = us-east-1\n\
         [profile admin]\nsource_profile = saml\nrole_arn = arn:aws:iam::123456789012:role/admin\n\
         [profile broken]\ncredential_process = @DIR@/broken.sh\nregion = us-east-1\n",
    );
    let count = w.path("saml.count");
    let script = format!(
        "#!/bin/sh\necho \"$1 $2\" >> {}\nprintf '%s' '{{\"Version\": 1, \"AccessKeyId\": \"ASIAIOSFODNN7SAMLXX1\", \
         \"SecretAccessKey\": \"samlsecretsamlsecretsamlsecretsamlsecre\", \"SessionToken\": \"samltoken\", \
         \"Expiration\": \"2999-01-01T00:00:00Z\"}}'\n",
        count.display()
    );
    fs::write(w.path("saml.sh"), script).unwrap();
    fs::write(w.path("broken.sh"), "#!/bin/sh\necho '{\"Version\": 2}'\n").unwrap();
    for name in ["saml.sh", "broken.sh"] {
        make_executable(&w.path(name));
    }
    // A vault to cache in (any stored key creates it).
    w.env.store_key("unused", KEY_ID, SECRET);

    caller(&w, &[], "admin")
        .success()
        .stdout_has("assumed-role/admin/");
    w.env.run(&["exec", "admin", "--", "true"]).success();
    w.env
        .run(&["export", "saml", "--format", "json"])
        .success()
        .stdout_has("ASIAIOSFODNN7SAMLXX1");
    // Run once (arguments split shell-style), then served from the vault until it expires.
    assert_eq!(fs::read_to_string(&count).unwrap(), "--role sso\n");
    assert_eq!(w.moto.count("AssumeRole"), 1);

    let run = w.env.run(&["exec", "broken", "--", "true"]);
    run.failure(1)
        .stderr_has("credential_process of profile \"broken\"")
        .stderr_has("config:8")
        .stderr_has("Version");
}

/// The container and instance-role sources, against vault's own credential servers: the
/// outer `vault exec --server/--imds` plays ECS or EC2 for the inner `vault exec`.
#[test]
fn container_and_instance_sources_use_the_sdk_providers() {
    let w = world(
        "[profile base]\nregion = us-east-1\n\
         [profile host]\nsource_profile = base\nrole_arn = arn:aws:iam::123456789012:role/host\n\
         [profile from-ecs]\nrole_arn = arn:aws:iam::123456789012:role/app\ncredential_source = EcsContainer\nregion = us-east-1\n\
         [profile from-ec2]\nrole_arn = arn:aws:iam::123456789012:role/app\ncredential_source = Ec2InstanceMetadata\nregion = us-east-1\n",
    );
    w.env.store_key("base", KEY_ID, SECRET);
    let bin = vault_harness::vault_bin();
    for (server, profile) in [("--server", "from-ecs"), ("--imds", "from-ec2")] {
        // Inside, AWS_VAULT is set by the outer exec; the inner one is a deliberate nest.
        let inner = format!(
            "unset AWS_VAULT; exec '{}' exec {profile} -- aws sts get-caller-identity --query Arn --output text",
            bin.display()
        );
        let run = w
            .env
            .run(&["exec", server, "host", "--", "sh", "-c", &inner]);
        run.success().stdout_has("assumed-role/app/");
    }
    let roles: Vec<String> = w
        .moto
        .sts_calls()
        .iter()
        .filter(|c| c.action == "AssumeRole")
        .filter_map(|c| c.param("RoleArn").map(str::to_owned))
        .collect();
    assert!(
        roles.iter().filter(|r| r.ends_with("role/app")).count() >= 2,
        "{roles:?}"
    );
}

#[test]
fn bad_source_settings_are_named() {
    let w = world(
        "[profile a]\ncredential_source = Environment\nregion = us-east-1\n\
         [profile b]\nrole_arn = arn:aws:iam::123456789012:role/b\ncredential_source = Laptop\n\
         [profile c]\nrole_arn = arn:aws:iam::123456789012:role/c\nsession_tags = team\n\
         [profile d]\nsource_profile = d2\nrole_arn = arn:aws:iam::123456789012:role/d\n[profile d2]\n",
    );
    w.env
        .run(&["exec", "a", "--", "true"])
        .failure(1)
        .stderr_has("needs role_arn");
    w.env
        .run(&["exec", "b", "--", "true"])
        .failure(1)
        .stderr_has("\"Laptop\"");
    w.env
        .run(&["exec", "c", "--", "true"])
        .failure(1)
        .stderr_has("session_tags");
    w.env
        .run(&["exec", "d", "--", "true"])
        .failure(1)
        .stderr_has("vault add d2");
    assert!(w.moto.sts_calls().is_empty());
}

fn make_executable(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }
}
