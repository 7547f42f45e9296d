//! IAM Identity Center (SSO): sign-in with PKCE and with a device code, one sign-in for many
//! processes, refresh, a refused refresh or token leading to exactly one new sign-in, logout,
//! populate (names that never collide, as botocore's strict reader checks), `sso accounts`,
//! and the AWS CLI's token cache shared with boto3 and aws-sdk-rust.
//!
//! No emulator implements SSO OIDC or the SSO portal (moto lists both as unimplemented), so
//! these tests talk to a stand-in on 127.0.0.1 (`tests/sso_stand_in.py`) that speaks their
//! real restJson1 wire format; the role credentials it hands out are real moto credentials,
//! so the AWS CLI child sees the SSO role. `$BROWSER` is a script that counts its calls and
//! follows the URL as a browser would (through the redirect to vault's loopback callback).

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

use serde_json::json;
use vault_harness::sso::{SsoStandIn, browser_script};
use vault_harness::terminal::{Shell, Terminal};
use vault_harness::{Run, World};

// Client registrations refused or imported, and the AWS CLI's tokens refreshed and written
// back: in their own file, with this module's rig.
mod tokens;

const CONFIG: &str = "\
# my own notes stay
[default]
region = eu-west-1

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = us-east-1
sso_registration_scopes = sso:account:access

[profile lab-ro]
sso_session = corp
sso_account_id = 111111111111
sso_role_name = ReadOnly
region = us-east-1

[profile lab-admin]
sso_session = corp
sso_account_id = 111111111111
sso_role_name = Admin
region = us-east-1

[profile deploy]
source_profile = lab-ro
role_arn = arn:aws:iam::111111111111:role/deploy
region = us-east-1

[profile legacy]
sso_start_url = https://old.awsapps.com/start
sso_region = us-east-1
sso_account_id = 111111111111
sso_role_name = ReadOnly
region = us-east-1
";

/// moto, the stand-in, the browser script. The stand-in is declared first: it stops before
/// the world's temp dir goes.
struct Sso {
    stand_in: SsoStandIn,
    w: World,
}

fn world(config: &str) -> Sso {
    let mut w = World::without_stored_key("sso test", config);
    let stand_in = SsoStandIn::start(&w.env, &w.moto.endpoint);
    let browser = browser_script(&w.env, &w.path("browser-calls"));
    w.env
        .set("AWS_ENDPOINT_URL_SSO", &stand_in.endpoint)
        .set("AWS_ENDPOINT_URL_SSO_OIDC", &stand_in.endpoint)
        .set("BROWSER", browser);
    Sso { stand_in, w }
}

impl Sso {
    /// How many times vault opened the browser.
    fn browser_opens(&self) -> usize {
        fs::read_to_string(self.w.path("browser-calls"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    /// The first `operation` call the stand-in recorded, with what it was sent.
    fn first_call(&self, operation: &str) -> serde_json::Value {
        self.stand_in.state()["calls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["operation"] == operation)
            .unwrap_or_else(|| panic!("no {operation} call"))
            .clone()
    }

    fn count(&self, operation: &str) -> usize {
        self.stand_in.count(operation)
    }

    fn arn(&self, profile: &str) -> Run {
        self.w.env.caller_arn(&[], &["exec", profile])
    }

    fn export(&self, profile: &str) -> serde_json::Value {
        self.w.export_json(profile)
    }

    /// No token, refresh token or client secret in any output, vault file or extra file.
    #[track_caller]
    fn assert_no_sso_secrets(&self, files: &[&std::path::Path]) {
        let secrets = self.stand_in.issued_secrets();
        assert!(!secrets.is_empty());
        let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        self.w.assert_no_secrets(&refs);
        let mut contents: Vec<(String, Vec<u8>)> = self
            .w
            .env
            .vault_files()
            .into_iter()
            .map(|(p, b)| (p.display().to_string(), b))
            .collect();
        for f in files {
            if let Ok(b) = fs::read(f) {
                contents.push((f.display().to_string(), b));
            }
        }
        for (path, bytes) in contents {
            let text = String::from_utf8_lossy(&bytes);
            for secret in &secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "{path} holds an SSO secret in plaintext: {}…",
                    &secret[..8]
                );
            }
        }
    }
}

#[test]
fn pkce_sign_in_runs_the_cli_as_the_sso_role_and_chains_from_it() {
    let s = world(CONFIG);
    let run = s.w.run(&[
        "--debug",
        "exec",
        "lab-ro",
        "--",
        "aws",
        "sts",
        "get-caller-identity",
    ]);
    run.success()
        .stdout_has("arn:aws:sts::111111111111:assumed-role/ReadOnly/")
        .stderr_has("signing in to sso-session corp in your browser")
        .stderr_has("if the browser does not open, visit this page");
    assert_eq!(s.browser_opens(), 1);
    // The page shown is the page the browser got, whole.
    let opened = fs::read_to_string(s.w.path("browser-calls")).unwrap();
    let opened = opened.trim();
    assert!(opened.contains("&code_challenge="), "{opened}");
    assert!(
        run.stderr.contains(&format!("\n  {opened}\n")),
        "{}",
        run.stderr
    );
    for (operation, n) in [
        ("RegisterClient", 1),
        ("Authorize", 1),
        ("CreateToken.authorization_code", 1),
        ("GetRoleCredentials", 1),
        ("StartDeviceAuthorization", 0),
    ] {
        assert_eq!(s.count(operation), n, "{operation}");
    }
    // Registered for the authorization code grant and refresh, with a loopback redirect.
    let register = s.first_call("RegisterClient");
    assert_eq!(
        register["grantTypes"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        register["redirectUris"],
        json!(["http://127.0.0.1/oauth/callback"])
    );
    assert_eq!(register["issuerUrl"], "https://corp.awsapps.com/start");
    assert_eq!(register["scopes"], json!(["sso:account:access"]));

    // Cached: no portal call, no browser; a role chained from the SSO role's credentials.
    s.arn("lab-ro")
        .success()
        .stdout_has("assumed-role/ReadOnly/");
    s.arn("deploy")
        .success()
        .stdout_has("arn:aws:sts::111111111111:assumed-role/deploy/");
    assert_eq!(s.count("GetRoleCredentials"), 1);
    assert_eq!(s.browser_opens(), 1);
    // moto also saw the stand-in's own AssumeRole behind GetRoleCredentials.
    let deploy: Vec<_> =
        s.w.minted()
            .into_iter()
            .filter(|c| c.param("RoleArn") == Some("arn:aws:iam::111111111111:role/deploy"))
            .collect();
    assert_eq!(deploy.len(), 1, "{deploy:?}");

    // The child gets role credentials, and neither the passphrase nor any SSO secret.
    let env = s.w.run(&["exec", "lab-ro", "--", "env"]);
    env.success().stdout_has("AWS_ACCESS_KEY_ID=");
    assert!(!env.stdout.contains("AWS_VAULT_FILE_PASSPHRASE"));

    // `list` shows the sign-in and the role session.
    let list = s.w.run(&["list"]);
    list.success()
        .stdout_has("SSO sign-in")
        .stdout_has("https://corp.awsapps.com/start")
        .stdout_has("(refreshable)");
    let sso: serde_json::Value =
        serde_json::from_str(&s.w.run(&["list", "--sso", "--json"]).stdout).unwrap();
    assert_eq!(sso[0]["session"], "corp");
    assert_eq!(sso[0]["refreshable"], true);
    assert!(sso[0]["seconds_left"].as_i64().unwrap() > 3000);
    s.assert_no_sso_secrets(&[]);
}

#[test]
fn device_code_sign_in_slows_down_when_asked_and_serves_exec() {
    let s = world(CONFIG);
    s.stand_in.control(json!({"slow_down_once": true}));
    s.w.run(&["sso", "login", "--use-device-code", "corp"])
        .success()
        .stderr_has("check that it shows the code")
        .stderr_has("Signed in to sso-session corp");
    assert_eq!(s.count("StartDeviceAuthorization"), 1);
    assert_eq!(s.count("DeviceVisit"), 1);
    assert!(
        s.count("CreateToken.device_code") >= 2,
        "polled past slow_down"
    );
    assert_eq!(s.count("Authorize"), 0);
    let register = s.first_call("RegisterClient");
    assert_eq!(
        register["grantTypes"],
        json!([
            "urn:ietf:params:oauth:grant-type:device_code",
            "refresh_token"
        ])
    );
    s.arn("lab-admin")
        .success()
        .stdout_has("assumed-role/Admin/");
    assert_eq!(s.browser_opens(), 1);
    s.assert_no_sso_secrets(&[]);
}

#[test]
fn over_ssh_without_a_browser_the_device_flow_is_chosen_and_the_page_printed() {
    let mut s = world(CONFIG);
    s.w.env
        .unset("BROWSER")
        .set("SSH_CONNECTION", "10.0.0.1 5000 10.0.0.2 22");
    let mut child =
        s.w.env
            .vault(&["sso", "login", "--no-browser", "corp"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("vault starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut printed = String::new();
    let mut url = None;
    for _ in 0..10 {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        printed.push_str(&line);
        if let Some(u) = line.trim().strip_prefix(&s.stand_in.endpoint) {
            url = Some(u.to_owned());
            break;
        }
    }
    let path = url.unwrap_or_else(|| panic!("no sign-in page printed: {printed}"));
    assert!(
        printed.contains("check that it shows the code"),
        "{printed}"
    );
    // The person opens the page elsewhere.
    vault_harness::http::http_get(s.stand_in.port, &path).expect("the device page answers");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{printed}{rest}");
    assert!(rest.contains("Signed in to sso-session corp"), "{rest}");
    assert_eq!(s.browser_opens(), 0);
    assert_eq!(s.count("StartDeviceAuthorization"), 1);
}

#[test]
fn thirty_two_cold_exports_sign_in_once() {
    let s = world(CONFIG);
    let children: Vec<_> = (0..32)
        .map(|i| {
            let profile = if i % 2 == 0 { "lab-ro" } else { "lab-admin" };
            s.w.env
                .vault(&["export", "--format", "json", profile])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("vault starts")
        })
        .collect();
    let mut keys = [BTreeSet::new(), BTreeSet::new()];
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        keys[i % 2].insert(json["AccessKeyId"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        keys[0].len(),
        1,
        "every lab-ro export got the same credentials"
    );
    assert_eq!(
        keys[1].len(),
        1,
        "every lab-admin export got the same credentials"
    );
    assert_eq!(s.browser_opens(), 1);
    for (operation, n) in [
        ("RegisterClient", 1),
        ("Authorize", 1),
        ("CreateToken", 1),
        ("GetRoleCredentials", 2),
    ] {
        assert_eq!(s.count(operation), n, "{operation}");
    }
}

/// Runs `vault export lab-ro` with `vars`, waits for the sign-in page on its stderr, opens
/// it with the test browser as the person would, and returns the command's whole stderr.
fn export_opening_the_page_by_hand(s: &Sso, vars: &[(&str, &str)]) -> String {
    let mut cmd = s.w.env.vault(&["export", "--format", "json", "lab-ro"]);
    for (name, value) in vars {
        cmd.env(name, value);
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vault starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut printed = String::new();
    let prefix = format!("  {}/", s.stand_in.endpoint);
    let url = loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("no sign-in page shown: {printed}");
        }
        printed.push_str(&line);
        if line.starts_with(&prefix) {
            break line.trim().to_owned();
        }
    };
    let browser = browser_script(&s.w.env, &s.w.path("by-hand"));
    let visited = s.w.env.command(&browser).arg(&url).status().unwrap();
    assert!(visited.success(), "{printed}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    printed.push_str(&rest);
    assert!(status.success(), "{printed}");
    printed
}

/// Implicit sign-ins (exec, export, the servers) take the flow from the variables, and the
/// page is always shown, so a browser that fails or cannot start does not end the sign-in.
#[test]
fn implicit_sign_ins_follow_the_variables_and_always_show_the_page() {
    let s = world(CONFIG);
    let run = s.w.env.run_with(
        &[("AWS_VAULT_SSO_USE_DEVICE_CODE", "true")],
        &["export", "lab-ro"],
    );
    run.success().stderr_has("check that it shows the code");
    assert_eq!(s.count("StartDeviceAuthorization"), 1);
    assert_eq!(s.count("Authorize"), 0);
    assert_eq!(s.browser_opens(), 1, "the device page opens in the browser");

    let s = world(CONFIG);
    let printed = export_opening_the_page_by_hand(&s, &[("AWS_VAULT_SSO_NO_BROWSER", "true")]);
    assert!(
        printed.contains("open this page in a browser on this machine"),
        "{printed}"
    );
    assert_eq!(s.browser_opens(), 0);
    assert_eq!(s.count("Authorize"), 1);

    for (browser, says) in [
        ("false", "the browser command failed"),
        ("/nonexistent/browser", "command not found"),
    ] {
        let s = world(CONFIG);
        let printed = export_opening_the_page_by_hand(&s, &[("BROWSER", browser)]);
        assert!(printed.contains(says), "{browser}: {printed}");
        assert!(
            printed.contains("open the page above yourself"),
            "{printed}"
        );
        assert_eq!(s.count("CreateToken.authorization_code"), 1);
    }
}

/// Under credential_process botocore captures vault's stderr, so the sign-in's lines go to
/// the terminal: over SSH the person sees the page and the code. The device flow is vault's
/// own choice here (SSH, no BROWSER), and it says so.
#[test]
fn a_sign_in_under_credential_process_is_shown_on_the_terminal() {
    let config = format!(
        "{CONFIG}\n[profile via-cli]\ncredential_process = vault export --format json lab-ro\nregion = us-east-1\n"
    );
    let mut s = world(&config);
    s.w.env
        .unset("BROWSER")
        .set("SSH_CONNECTION", "10.0.0.1 5000 10.0.0.2 22")
        .put_vault_on_path();
    let Some(term) = Terminal::start(&s.w.env, Shell::Bash) else {
        return;
    };
    term.line("aws sts get-caller-identity --profile via-cli --query Arn --output text");
    let screen = term.wait_for("/device?user_code=");
    assert!(
        screen.contains("with a device code: this is an SSH session"),
        "{screen}"
    );
    let url = screen
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&s.stand_in.endpoint))
        .unwrap_or_else(|| panic!("no page on the screen:\n{screen}"));
    let path = &url[s.stand_in.endpoint.len()..];
    vault_harness::http::http_get(s.stand_in.port, path).expect("the device page answers");
    term.wait_for("assumed-role/ReadOnly/");
    assert_eq!(s.count("StartDeviceAuthorization"), 1);
    assert_eq!(s.browser_opens(), 0);
}

/// What the service refuses is named for what it is: a role not assigned to the user (the
/// portal's 403) and a scope the sign-in may not ask for (`invalid_scope` on the redirect),
/// each with where to fix it; neither gets "check sso_start_url" or "sign in again".
#[test]
fn a_role_not_assigned_and_a_refused_scope_say_what_they_are() {
    let config = format!(
        "{CONFIG}\n[profile not-mine]\nsso_session = corp\nsso_account_id = 111111111111\nsso_role_name = Owner\n\n\
         [sso-session wide]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n\
         sso_registration_scopes = sso:account:access, bogus:everything\n"
    );
    let s = world(&config);
    let run = s.w.run(&["export", "not-mine"]);
    run.failure(1)
        .stderr_has("ForbiddenException")
        .stderr_has("does not assign that role in that account")
        .stderr_has("sso_role_name");
    assert!(!run.stderr.contains("sso_start_url"), "{}", run.stderr);

    s.stand_in
        .control(json!({"allowed_scopes": ["sso:account:access"]}));
    let run = s.w.run(&["sso", "login", "wide"]);
    run.failure(1)
        .stderr_has("invalid_scope")
        .stderr_has("Invalid scope: bogus:everything")
        .stderr_has("sso_registration_scopes in the [sso-session wide] section");
    assert!(!run.stderr.contains("again"), "{}", run.stderr);
}

/// 16 cold commands, and the person denies the one sign-in: every one fails at once with
/// the same message. Before, each waiter in turn opened a browser of its own.
#[test]
fn a_denied_sign_in_fails_every_waiter_with_one_browser() {
    let s = world(CONFIG);
    s.stand_in.control(json!({"deny_authorize": true}));
    let children: Vec<_> = (0..16)
        .map(|_| {
            s.w.env
                .vault(&["export", "--format", "json", "lab-ro"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("vault starts")
        })
        .collect();
    let mut messages = BTreeSet::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{stderr}");
        assert!(out.stdout.is_empty());
        let first = stderr
            .lines()
            .find(|l| l.starts_with("vault: error: "))
            .unwrap_or_else(|| panic!("no message: {stderr}"))
            .to_owned();
        messages.insert(first);
    }
    assert_eq!(s.browser_opens(), 1);
    assert_eq!(s.count("Authorize"), 1);
    assert_eq!(s.count("CreateToken"), 0);
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = messages.into_iter().next().unwrap();
    assert!(message.contains("denied"), "{message}");

    // Not a ban: the next command, a while later, signs in.
    s.stand_in.control(json!({"deny_authorize": false}));
    std::thread::sleep(std::time::Duration::from_secs(6));
    s.export("lab-ro");
    assert_eq!(s.browser_opens(), 2);
}

#[test]
fn a_token_near_its_end_is_refreshed_once_without_a_browser() {
    let s = world(CONFIG);
    // Ten minutes: inside the fifteen minutes vault refreshes ahead.
    s.stand_in.control(json!({"access_token_ttl": 600}));
    s.export("lab-ro");
    s.stand_in.control(json!({"access_token_ttl": 3600}));
    s.w.run(&["clear"]).success();
    s.export("lab-ro");
    s.w.run(&["clear"]).success();
    s.export("lab-admin");
    assert_eq!(s.count("CreateToken.refresh_token"), 1);
    assert_eq!(s.count("CreateToken.authorization_code"), 1);
    assert_eq!(s.count("GetRoleCredentials"), 3);
    assert_eq!(s.browser_opens(), 1);
    s.assert_no_sso_secrets(&[]);
}

#[test]
fn a_refused_refresh_leads_to_exactly_one_new_sign_in() {
    let s = world(CONFIG);
    s.stand_in.control(json!({"access_token_ttl": 600}));
    s.export("lab-ro");
    s.stand_in
        .control(json!({"access_token_ttl": 3600, "refresh_invalid_grant": 1}));
    s.w.run(&["clear"]).success();
    s.export("lab-ro");
    assert_eq!(s.count("CreateToken.refresh_token"), 1);
    assert_eq!(s.count("CreateToken.authorization_code"), 2);
    // The client registration outlives its tokens.
    assert_eq!(s.count("RegisterClient"), 1);
    assert_eq!(s.browser_opens(), 2);
}

#[test]
fn a_token_the_portal_refuses_leads_to_exactly_one_new_sign_in() {
    let s = world(CONFIG);
    s.export("lab-ro");
    s.w.run(&["clear"]).success();
    s.stand_in.control(json!({"portal_unauthorized": 1}));
    s.export("lab-ro");
    assert_eq!(s.count("GetRoleCredentials"), 3, "first, refused, retried");
    assert_eq!(s.count("CreateToken.authorization_code"), 2);
    assert_eq!(s.browser_opens(), 2);
}

#[test]
fn logout_calls_the_portal_and_forgets_tokens_and_role_sessions() {
    let s = world(CONFIG);
    s.arn("lab-ro").success();
    s.w.run(&["sso", "logout", "corp"])
        .success()
        .stderr_has("Signed out of sso-session corp; removed 1 role session");
    assert_eq!(s.count("Logout"), 1);
    s.w.run(&["list", "--sso"])
        .success()
        .stdout_has("signed out");
    s.arn("lab-ro")
        .success()
        .stdout_has("assumed-role/ReadOnly/");
    assert_eq!(s.browser_opens(), 2);
    // Logout of everything the vault holds.
    s.w.run(&["sso", "logout"])
        .success()
        .stderr_has("Signed out of sso-session corp");
    assert_eq!(s.count("Logout"), 2);
}

#[test]
fn populate_appends_a_profile_per_role_and_leaves_every_other_byte() {
    let s = world(CONFIG);
    s.stand_in.control(json!({"accounts": [
        {"accountId": "111111111111", "accountName": "Lab", "emailAddress": "lab@example.com", "roles": ["ReadOnly", "Admin"]},
        {"accountId": "222222222222", "accountName": "Prod Account", "emailAddress": "p@example.com", "roles": ["ReadOnly"]},
        {"accountId": "333333333333", "accountName": "Sandbox", "emailAddress": "s@example.com", "roles": ["Dev"]},
    ]}));
    let path = s.w.env.config_path();
    let original = fs::read_to_string(&path).unwrap();
    s.w.run(&["sso", "populate", "corp"])
        .success()
        .stderr_has("added 4 profiles");
    let after = fs::read_to_string(&path).unwrap();
    assert!(after.starts_with(&original), "existing bytes changed");
    let added = &after[original.len()..];
    assert_eq!(
        added,
        "\n# vault sso populate: corp\n[profile Lab/Admin]\nsso_session = corp\nsso_account_id = 111111111111\nsso_role_name = Admin\n\
         \n# vault sso populate: corp\n[profile Lab/ReadOnly]\nsso_session = corp\nsso_account_id = 111111111111\nsso_role_name = ReadOnly\n\
         \n# vault sso populate: corp\n[profile Prod-Account/ReadOnly]\nsso_session = corp\nsso_account_id = 222222222222\nsso_role_name = ReadOnly\n\
         \n# vault sso populate: corp\n[profile Sandbox/Dev]\nsso_session = corp\nsso_account_id = 333333333333\nsso_role_name = Dev\n"
    );
    // Two pages of accounts at the stand-in's page size of 2.
    assert_eq!(s.count("ListAccounts"), 2);
    // The written profiles work.
    s.arn("Prod-Account/ReadOnly")
        .success()
        .stdout_has("arn:aws:sts::222222222222:assumed-role/ReadOnly/");

    // Again: nothing changes.
    s.w.run(&["sso", "populate", "corp"])
        .success()
        .stderr_has("added 0 profiles");
    assert_eq!(fs::read_to_string(&path).unwrap(), after);

    // Sandbox/Dev goes away, Lab/Billing arrives: --dry-run shows it and writes nothing.
    s.stand_in.control(json!({"accounts": [
        {"accountId": "111111111111", "accountName": "Lab", "emailAddress": "lab@example.com", "roles": ["ReadOnly", "Admin", "Billing"]},
        {"accountId": "222222222222", "accountName": "Prod Account", "emailAddress": "p@example.com", "roles": ["ReadOnly"]},
    ]}));
    s.w.run(&["sso", "populate", "--prune", "--dry-run", "corp"])
        .success()
        .stdout_has("+[profile Lab/Billing]")
        .stdout_has("-[profile Sandbox/Dev]")
        .stderr_has("nothing written");
    assert_eq!(fs::read_to_string(&path).unwrap(), after);
    // Without --prune a gone role's section stays; with it, only that section goes.
    s.w.run(&["sso", "populate", "--prune", "corp"])
        .success()
        .stderr_has("added 1 profiles, removed 1");
    let pruned = fs::read_to_string(&path).unwrap();
    assert!(pruned.starts_with(&original));
    assert!(!pruned.contains("Sandbox/Dev"));
    assert!(pruned.contains("[profile Lab/Billing]"));
    assert!(pruned.contains("[profile Prod-Account/ReadOnly]"));
}

/// Two accounts, three roles.
fn lab_and_prod() -> serde_json::Value {
    json!({"accounts": [
        {"accountId": "111111111111", "accountName": "Lab", "emailAddress": "lab@example.com", "roles": ["ReadOnly", "Admin"]},
        {"accountId": "222222222222", "accountName": "Prod Account", "emailAddress": "p@example.com", "roles": ["ReadOnly"]},
    ]})
}

/// The accounts of the naming tests: account names equal once cleaned, role names equal once
/// cleaned, and names with no character a profile name can hold.
fn colliding_accounts() -> serde_json::Value {
    json!({"accounts": [
        {"accountId": "111111111111", "accountName": "Lab", "emailAddress": "lab@example.com", "roles": ["Admin", "A=B", "A-B"]},
        {"accountId": "222222222222", "accountName": "Prod (EU)", "emailAddress": "p@example.com", "roles": ["Admin"]},
        {"accountId": "333333333333", "accountName": "Prod EU", "emailAddress": "q@example.com", "roles": ["Admin"]},
        {"accountId": "444444444444", "accountName": "日本", "emailAddress": "j@example.com", "roles": ["ReadOnly"]},
        {"accountId": "555555555555", "accountName": "Ελλάδα", "emailAddress": "g@example.com", "roles": ["ReadOnly"]},
    ]})
}

/// The config file as botocore's strict reader sees it: Python's configparser with
/// `strict=True` (a section given twice is an error) parses it, and the AWS CLI (v1 in the
/// venv: no `list-profiles`) reads each of `profiles` with the role its section names.
#[track_caller]
fn assert_the_cli_reads(s: &Sso, profiles: &[(&str, &str)]) {
    let path = s.w.env.config_path();
    s.w.env
        .output(s.w.env.command("python3").args([
            "-c",
            "import configparser, sys\n\
             c = configparser.ConfigParser(strict=True)\n\
             c.read_file(open(sys.argv[1], encoding='utf-8'))",
            path.to_str().unwrap(),
        ]))
        .success();
    for (profile, role) in profiles {
        let got = s.w.env.output(s.w.env.command("aws").args([
            "configure",
            "get",
            "sso_role_name",
            "--profile",
            profile,
        ]));
        got.success();
        assert_eq!(got.stdout.trim(), *role, "{profile}");
    }
}

#[test]
fn populate_never_writes_two_sections_of_one_name() {
    let config = format!("{CONFIG}\n[profile corp-Lab/Admin]\nregion = eu-west-1\n");
    let s = world(&config);
    s.stand_in.control(colliding_accounts());
    let path = s.w.env.config_path();
    let run = s.w.run(&["sso", "populate", "--prefix", "corp-", "corp"]);
    run.success();
    assert_the_cli_reads(
        &s,
        &[
            ("corp-Lab/A-B", "A-B"),
            ("corp-Lab-111111111111/A-B", "A=B"),
            ("corp-Lab-111111111111/Admin", "Admin"),
            ("corp-Prod-EU-333333333333/Admin", "Admin"),
            ("corp-444444444444/ReadOnly", "ReadOnly"),
        ],
    );
    run.stderr_has("added 7 profiles")
        .stderr_has(
            "Named corp-Lab-111111111111/A-B (not corp-Lab/A-B) for role A=B of account \"Lab\" (111111111111): role A-B of account \"Lab\" (111111111111) has that name.",
        )
        .stderr_has(
            "Named corp-Lab-111111111111/Admin (not corp-Lab/Admin) for role Admin of account \"Lab\" (111111111111): the config file has a profile of that name for another account or role.",
        )
        .stderr_has(
            "Named corp-Prod-EU-222222222222/Admin (not corp-Prod-EU/Admin) for role Admin of account \"Prod (EU)\" (222222222222): its name is the same as that of account \"Prod EU\" (333333333333) once cleaned.",
        )
        .stderr_has(
            "Named corp-444444444444/ReadOnly (not corp-/ReadOnly) for role ReadOnly of account \"日本\" (444444444444): no character of its name can be in a profile name.",
        );
    let after = fs::read_to_string(&path).unwrap();
    assert!(after.starts_with(&config), "existing bytes changed");
    let headers: Vec<&str> = after[config.len()..]
        .lines()
        .filter(|l| l.starts_with('['))
        .collect();
    assert_eq!(
        headers,
        [
            "[profile corp-Lab/A-B]",
            "[profile corp-Lab-111111111111/A-B]",
            "[profile corp-Lab-111111111111/Admin]",
            "[profile corp-Prod-EU-222222222222/Admin]",
            "[profile corp-Prod-EU-333333333333/Admin]",
            "[profile corp-555555555555/ReadOnly]",
            "[profile corp-444444444444/ReadOnly]",
        ]
    );
    assert!(after.contains(
        "[profile corp-Prod-EU-333333333333/Admin]\nsso_session = corp\nsso_account_id = 333333333333\nsso_role_name = Admin\n"
    ));
    s.arn("corp-Prod-EU-333333333333/Admin")
        .success()
        .stdout_has("arn:aws:sts::333333333333:assumed-role/Admin/");

    // Again, with an account that takes a name already given: the file keeps its names.
    let mut more = colliding_accounts();
    more["accounts"].as_array_mut().unwrap().push(json!(
        {"accountId": "666666666666", "accountName": "Lab", "emailAddress": "l@example.com", "roles": ["Dev"]}
    ));
    s.stand_in.control(more);
    s.w.run(&["sso", "populate", "--prefix", "corp-", "corp"])
        .success()
        .stderr_has("added 1 profiles");
    let again = fs::read_to_string(&path).unwrap();
    assert!(again.starts_with(&after));
    assert!(
        again[after.len()..].contains("[profile corp-Lab-666666666666/Dev]"),
        "{}",
        &again[after.len()..]
    );
    assert_the_cli_reads(&s, &[("corp-Lab-666666666666/Dev", "Dev")]);
    s.w.run(&["sso", "populate", "--prefix", "corp-", "corp"])
        .success()
        .stderr_has("added 0 profiles");
    assert_eq!(fs::read_to_string(&path).unwrap(), again);
}

#[test]
fn populate_names_profiles_by_template_and_writes_their_region() {
    let s = world(CONFIG);
    let path = s.w.env.config_path();
    // Mistakes in the flags are usage errors before any sign-in or write.
    for (args, says) in [
        (
            &["--profile-template", "{account}-{role_name}"][..],
            "{account} is not a placeholder",
        ),
        (
            &["--profile-template", "{role_name} x"][..],
            "cannot be part of a profile name",
        ),
        (&["--profile-template", "admin"][..], "no placeholder"),
        (&["--region", "eu-west"][..], "not an AWS region name"),
        (&["--region", "Frankfurt"][..], "not an AWS region name"),
    ] {
        let mut argv = vec!["sso", "populate"];
        argv.extend_from_slice(args);
        argv.push("corp");
        s.w.run(&argv)
            .failure(2)
            .stderr_has(says)
            .stderr_has("hint:");
    }
    assert_eq!(s.count("RegisterClient"), 0);
    assert_eq!(s.browser_opens(), 0);
    assert_eq!(fs::read_to_string(&path).unwrap(), CONFIG);

    s.stand_in.control(lab_and_prod());
    // No session named: the config's only one.
    let template = ["--profile-template", "{session}.{account_name}-{role_name}"];
    let mut dry = vec!["sso", "populate", "--dry-run", "--region", "eu-central-1"];
    dry.extend(template);
    s.w.run(&dry)
        .success()
        .stdout_has("+[profile corp.Lab-Admin]")
        .stdout_has("+region = eu-central-1")
        .stderr_has("nothing written");
    assert_eq!(fs::read_to_string(&path).unwrap(), CONFIG);
    let mut real = vec!["sso", "populate", "corp", "--region", "eu-central-1"];
    real.extend(template);
    s.w.run(&real).success().stderr_has("added 3 profiles");
    let after = fs::read_to_string(&path).unwrap();
    assert_eq!(
        &after[CONFIG.len()..],
        "\n# vault sso populate: corp\n[profile corp.Lab-Admin]\nsso_session = corp\nsso_account_id = 111111111111\nsso_role_name = Admin\nregion = eu-central-1\n\
         \n# vault sso populate: corp\n[profile corp.Lab-ReadOnly]\nsso_session = corp\nsso_account_id = 111111111111\nsso_role_name = ReadOnly\nregion = eu-central-1\n\
         \n# vault sso populate: corp\n[profile corp.Prod-Account-ReadOnly]\nsso_session = corp\nsso_account_id = 222222222222\nsso_role_name = ReadOnly\nregion = eu-central-1\n"
    );
    assert_the_cli_reads(&s, &[("corp.Lab-Admin", "Admin")]);
    s.w.run(&[
        "exec",
        "corp.Prod-Account-ReadOnly",
        "--",
        "sh",
        "-c",
        "echo $AWS_REGION",
    ])
    .success()
    .stdout_has("eu-central-1");
    // The default template, once more: a profile for each role besides these.
    s.w.run(&["sso", "populate", "corp"])
        .success()
        .stderr_has("added 3 profiles");
    assert!(
        fs::read_to_string(&path)
            .unwrap()
            .contains("[profile Lab/Admin]\n")
    );
}

#[test]
fn accounts_lists_each_role_with_its_profiles_and_signs_in_again_once_when_refused() {
    let s = world(CONFIG);
    s.stand_in.control(lab_and_prod());
    // No name: the config's only sso-session.
    let run = s.w.run(&["sso", "accounts"]);
    run.success().stderr_has(
        "sso-session corp reaches 3 roles in 2 accounts; 1 without a profile: `vault sso populate corp` writes one for each.",
    );
    let lines: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(
        lines,
        [
            vec!["Account", "Name", "Role", "Profiles"],
            vec!["111111111111", "Lab", "Admin", "lab-admin"],
            vec!["111111111111", "Lab", "ReadOnly", "lab-ro"],
            vec!["222222222222", "Prod Account", "ReadOnly", "-"],
        ],
        "{}",
        run.stdout
    );
    assert_eq!(s.browser_opens(), 1);

    // The portal refuses the token: exactly one new sign-in, and the listing.
    s.stand_in.control(json!({"portal_unauthorized": 1}));
    let json_run = s.w.run(&["sso", "accounts", "--json", "lab-ro"]);
    json_run.success();
    let listing: serde_json::Value = serde_json::from_str(&json_run.stdout).unwrap();
    assert_eq!(
        listing,
        json!({
            "session": "corp",
            "start_url": "https://corp.awsapps.com/start",
            "accounts": [
                {"account_id": "111111111111", "account_name": "Lab", "roles": [
                    {"role_name": "Admin", "profiles": ["lab-admin"]},
                    {"role_name": "ReadOnly", "profiles": ["lab-ro"]},
                ]},
                {"account_id": "222222222222", "account_name": "Prod Account", "roles": [
                    {"role_name": "ReadOnly", "profiles": []},
                ]},
            ]
        })
    );
    assert_eq!(s.browser_opens(), 2);
    assert_eq!(s.count("CreateToken.authorization_code"), 2);
    let refused = s.stand_in.state()["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == 401)
        .count();
    assert_eq!(refused, 1);

    // Populate's profiles show up; with two sessions, the name is needed.
    s.w.run(&["sso", "populate", "corp"]).success();
    let two = format!(
        "{CONFIG}\n[sso-session other]\nsso_start_url = https://other.awsapps.com/start\nsso_region = us-east-1\n"
    );
    let populated = fs::read_to_string(s.w.env.config_path()).unwrap();
    s.w.write_config(&format!("{two}{}", &populated[CONFIG.len()..]));
    s.w.run(&["sso", "accounts"])
        .failure(2)
        .stderr_has("has 2: corp, other")
        .stderr_has("vault sso accounts corp");
    s.w.run(&["sso", "accounts", "corp"])
        .success()
        .stdout_has("Prod-Account/ReadOnly")
        .stderr_has("each has a profile");
    assert_eq!(s.browser_opens(), 2);
    s.assert_no_sso_secrets(&[]);
    // No session in the file: say how to add one.
    s.w.write_config("[profile x]\nregion = us-east-1\n");
    s.w.run(&["sso", "populate"])
        .failure(1)
        .stderr_has("has no [sso-session] section")
        .stderr_has("hint: add an [sso-session NAME] section");
}

#[test]
fn cli_cache_is_shared_with_boto3_and_the_rust_sdk_and_imported_back() {
    let s = world(CONFIG);
    s.w.run(&["sso", "login", "--cli-cache", "corp"])
        .success()
        .stderr_has(".aws/sso/cache/");
    let cache_dir = s.w.env.home().join(".aws/sso/cache");
    // sha1("corp"), as the AWS CLI names the file of `sso_session = corp`.
    let file = cache_dir.join(format!("{}.json", sha1_hex("corp")));
    assert!(file.exists(), "{} missing", file.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let cached: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
    for field in [
        "startUrl",
        "region",
        "accessToken",
        "expiresAt",
        "refreshToken",
        "clientId",
        "clientSecret",
        "registrationExpiresAt",
    ] {
        assert!(cached[field].is_string(), "{field} missing: {cached}");
    }
    assert!(cached["expiresAt"].as_str().unwrap().ends_with('Z'));

    // boto3's own SSO provider, from the file vault wrote.
    let boto = s.w.env.output(
        s.w.env
            .command("python3")
            .args([
                "-c",
                "import boto3; print(boto3.Session(profile_name='lab-ro').client('sts').get_caller_identity()['Arn'])",
            ]),
    );
    boto.success().stdout_has("assumed-role/ReadOnly/");
    // aws-sdk-rust's, too.
    let rust = s.w.env.output(
        s.w.env
            .command(vault_harness::env::sdk_caller())
            .env("AWS_PROFILE", "lab-admin"),
    );
    rust.success().stdout_has("assumed-role/Admin/");

    // A new vault finds the CLI's token instead of opening the browser.
    let other = s.w.path("other-vault");
    s.w.env
        .run_with(
            &[("AWS_VAULT_FILE_DIR", other.to_str().unwrap())],
            &["exec", "lab-ro", "--", "aws", "sts", "get-caller-identity"],
        )
        .success()
        .stdout_has("assumed-role/ReadOnly/");
    assert_eq!(s.browser_opens(), 1);
    assert_eq!(s.count("CreateToken"), 1);
    s.assert_no_sso_secrets(&[]);
}

#[test]
fn sso_config_mistakes_name_the_line_and_change_nothing() {
    let cases = [
        (
            "[profile p]\nsso_session = nope\nsso_account_id = 111111111111\nsso_role_name = R\n",
            "sso_session of profile \"p\"",
            "there is no [sso-session nope] section",
        ),
        (
            "[sso-session s]\nsso_start_url = https://x.awsapps.com/start\n[profile p]\nsso_session = s\nsso_account_id = 111111111111\nsso_role_name = R\n",
            "sso-session \"s\"",
            "sso_region is missing",
        ),
        (
            "[sso-session s]\nsso_start_url = https://x.awsapps.com/start\nsso_region = us-east-1\n[profile p]\nsso_session = s\nsso_account_id = 111111111111\n",
            ":6",
            "needs sso_role_name too",
        ),
        (
            "[sso-session s]\nsso_start_url = https://x.awsapps.com/start\nsso_region = us-east-1\n[profile p]\nsso_session = s\nsso_start_url = https://y.awsapps.com/start\nsso_account_id = 111111111111\nsso_role_name = R\n",
            ":6",
            "contradicts sso-session s",
        ),
        (
            "[sso-session s]\nsso_start_url = https://x.awsapps.com/start\nsso_region = us-east-1\n[profile p]\nsso_session = s\nsso_account_id = 1111\nsso_role_name = R\n",
            ":6",
            "not a 12-digit AWS account id",
        ),
    ];
    let s = world("");
    for (config, place, reason) in cases {
        s.w.write_config(config);
        s.w.run(&["exec", "p", "--", "true"])
            .failure(1)
            .stderr_has(place)
            .stderr_has(reason);
    }
    assert!(
        !s.w.env.vault_dir().exists(),
        "a bad profile created a vault"
    );
    assert_eq!(s.count("RegisterClient"), 0);
}

#[test]
fn legacy_profiles_sign_in_with_a_device_code_and_explain_says_they_cannot_refresh() {
    let s = world(CONFIG);
    s.w.run(&["exec", "--explain", "legacy"])
        .success()
        .stdout_has("cannot be refreshed")
        .stdout_has("not signed in");
    assert_eq!(s.count("RegisterClient"), 0);
    s.arn("legacy")
        .success()
        .stdout_has("assumed-role/ReadOnly/");
    assert_eq!(s.count("StartDeviceAuthorization"), 1);
    let register = s.first_call("RegisterClient");
    assert!(register.get("scopes").is_none(), "{register}");
    s.w.run(&["exec", "--explain", "lab-ro"])
        .success()
        .stdout_has("refreshed without a browser");
}

fn sha1_hex(text: &str) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(text.as_bytes()))
}

#[test]
fn device_flow_endings_are_told_apart() {
    let mut s = world(CONFIG);
    s.stand_in.control(json!({"deny_device": true}));
    s.w.run(&["sso", "login", "--use-device-code", "corp"])
        .failure(1)
        .stderr_has("the sign-in to sso-session corp was denied in the browser");
    // Nobody opens the page: the code runs out.
    s.stand_in
        .control(json!({"deny_device": null, "device_code_ttl": 2}));
    s.w.env.unset("BROWSER");
    s.w.run(&["sso", "login", "--use-device-code", "--no-browser", "corp"])
        .failure(1)
        .stderr_has("the sign-in code for sso-session corp expired before it was approved")
        .stderr_has("run the command again");
    assert_eq!(s.count("GetRoleCredentials"), 0);
}

#[test]
fn the_ecs_server_serves_an_sso_role_to_the_child() {
    let s = world(CONFIG);
    s.w.run(&[
        "exec",
        "--server",
        "lab-ro",
        "--",
        "aws",
        "sts",
        "get-caller-identity",
    ])
    .success()
    .stdout_has("arn:aws:sts::111111111111:assumed-role/ReadOnly/");
    assert_eq!(s.browser_opens(), 1);
    assert_eq!(s.count("GetRoleCredentials"), 1);
}
