//! Many writers of one file: nothing any of them wrote is lost. Every writer of the AWS
//! config (any vault directory, any command) takes the lock beside the file and reads it
//! again under it; `recent` is written under the vault's lock like every vault file.

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use vault_harness::sso::{SsoStandIn, browser_script};
use vault_harness::{TestEnv, World};

const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn add(env: &TestEnv, dir: &std::path::Path, profile: &str) -> std::process::Child {
    let mut cmd = env.vault(&["add", "--env", profile]);
    cmd.env("AWS_VAULT_FILE_DIR", dir)
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

/// Two vault directories, one config: their adds take turns on the file (the lock is beside
/// it, not in either vault), and neither deletes the other's temp file.
#[test]
fn adds_from_two_vault_directories_into_one_config_lose_nothing() {
    let mut env = TestEnv::new();
    env.use_file_vault("writers passphrase");
    env.write_config("[default]\nregion = us-east-1\n");
    let dirs = [env.dir.path().join("v1"), env.dir.path().join("v2")];
    // One key each first: the vaults exist, so the adds below race only on the config.
    for (i, dir) in dirs.iter().enumerate() {
        let out = add(&env, dir, &format!("first{i}"))
            .wait_with_output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut expected = Vec::new();
    for round in 0..2 {
        let mut children = Vec::new();
        for i in 0..6 {
            for (d, dir) in dirs.iter().enumerate() {
                let name = format!("r{round}v{d}n{i}");
                children.push((name.clone(), add(&env, dir, &name)));
                expected.push(name);
            }
        }
        for (name, child) in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let config = fs::read_to_string(env.config_path()).unwrap();
    for name in &expected {
        assert!(
            config.contains(&format!("[profile {name}]\n")),
            "lost [profile {name}]:\n{config}"
        );
    }
    assert!(config.starts_with("[default]\nregion = us-east-1\n"));
    let left: Vec<_> = fs::read_dir(env.config_path().parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");
}

/// Ten exports of ten profiles at once: every name is in `recent` afterwards.
#[test]
fn recent_keeps_every_name_under_concurrency() {
    let mut env = TestEnv::new();
    env.use_file_vault("writers passphrase");
    env.store_key("unused", KEY_ID, SECRET);
    let script = env.dir.path().join("cp.sh");
    fs::write(
        &script,
        "#!/bin/sh\nprintf '%s' '{\"Version\": 1, \"AccessKeyId\": \"ASIAIOSFODNN7RECENT1\", \
         \"SecretAccessKey\": \"recentsecretrecentsecretrecentsecret0000\", \
         \"SessionToken\": \"t\", \"Expiration\": \"2999-01-01T00:00:00Z\"}'\n",
    )
    .unwrap();
    make_executable(&script);
    let names: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
    let config: String = names
        .iter()
        .map(|n| format!("[profile {n}]\ncredential_process = {}\n", script.display()))
        .collect();
    env.write_config(&config);
    let exports = env.outputs_concurrently(
        names
            .iter()
            .map(|n| env.vault(&["export", "--format", "json", n])),
    );
    for run in &exports {
        run.success();
    }
    // `vault list` shows the picker's order: the recent ones first.
    let shown = env.run(&["list", "--profiles"]).stdout.clone();
    for name in &names {
        assert!(shown.contains(name.as_str()), "{shown}");
    }
    let recent = fs::read_to_string(env.vault_dir().join("recent")).unwrap();
    for name in &names {
        assert!(
            recent.contains(&format!("\"{name}\"")),
            "lost {name}: {recent}"
        );
    }
}

/// `vault sso populate` waits for a sign-in (here a browser that takes 4 s); a key added and
/// lines typed into the config meanwhile are still there after it writes, and the names it
/// writes avoid a profile added meanwhile.
#[test]
fn populate_keeps_what_was_written_while_it_waited() {
    let mut w = World::without_stored_key("writers sso", SSO_CONFIG);
    let stand_in = SsoStandIn::start(&w.env, &w.moto.endpoint);
    let browser = browser_script(&w.env, &w.path("browser-calls"));
    let slow = w.path("slow-browser");
    fs::write(
        &slow,
        format!("#!/bin/sh\nsleep 4\nexec '{}' \"$1\"\n", browser.display()),
    )
    .unwrap();
    make_executable(&slow);
    w.env
        .set("AWS_ENDPOINT_URL_SSO", &stand_in.endpoint)
        .set("AWS_ENDPOINT_URL_SSO_OIDC", &stand_in.endpoint)
        .set("BROWSER", &slow);
    stand_in.control(json!({"accounts": [
        {"accountId": "111111111111", "accountName": "Lab", "emailAddress": "lab@example.com", "roles": ["ReadOnly"]},
    ]}));
    let populate = w
        .env
        .vault(&["sso", "populate", "corp"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    w.env
        .run_with(
            &[
                ("AWS_ACCESS_KEY_ID", KEY_ID),
                ("AWS_SECRET_ACCESS_KEY", SECRET),
            ],
            &["add", "--env", "newx"],
        )
        .success();
    let path = w.env.config_path();
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str(
        "# edit made while populate waited\n[profile Lab/ReadOnly]\nregion = eu-west-1\n",
    );
    fs::write(&path, text).unwrap();
    let out = populate.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = fs::read_to_string(&path).unwrap();
    assert!(config.contains("[profile newx]\n"), "{config}");
    assert!(
        config.contains("# edit made while populate waited\n"),
        "{config}"
    );
    assert_eq!(
        config.matches("[profile Lab/ReadOnly]").count(),
        1,
        "{config}"
    );
    assert!(
        config.contains("[profile Lab-111111111111/ReadOnly]\nsso_session = corp\n"),
        "{config}"
    );
    drop(stand_in);
}

const SSO_CONFIG: &str = "\
[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = us-east-1
sso_registration_scopes = sso:account:access
";

#[cfg(unix)]
fn make_executable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}
