//! Client registrations and the AWS CLI's tokens: a registration the service refuses is
//! dropped and made again, once; a token `aws sso login` left in `~/.aws/sso/cache` is
//! refreshed rather than signed in again, its client kept for the flow it was registered
//! for; and a refresh made with the CLI's refresh token is written back to the CLI's file,
//! so botocore keeps working when the service rotates refresh tokens (the stand-in does).

use std::fs;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::{CONFIG, Sso, sha1_hex, world};

const START_URL: &str = "https://corp.awsapps.com/start";

impl Sso {
    /// Every call the stand-in recorded, in order.
    fn calls(&self) -> Vec<Value> {
        self.stand_in.state()["calls"].as_array().unwrap().clone()
    }

    /// The client id of the `n`th RegisterClient (from 0).
    fn registered(&self, n: usize) -> String {
        let calls = self.calls();
        let register = calls
            .iter()
            .filter(|c| c["operation"] == "RegisterClient")
            .nth(n)
            .unwrap_or_else(|| panic!("no RegisterClient #{n}"));
        register["clientId"].as_str().unwrap().to_owned()
    }

    /// Calls the stand-in answered with `error`.
    fn errors(&self, error: &str) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|c| c["error"] == error)
            .collect()
    }

    /// `aws sso login` (the CLI v2's, see `aws_cli_sso_login.py`) for the session `corp`.
    fn aws_sso_login(&self, extra: &[&str]) -> String {
        let mut args = vec![
            "--session",
            "corp",
            "--start-url",
            START_URL,
            "--region",
            "us-east-1",
            "--scopes",
            "sso:account:access",
        ];
        args.extend_from_slice(extra);
        self.stand_in.aws_cli_sso_login(&self.w.env, &args)
    }

    /// The AWS CLI's token file for `corp`.
    fn cli_token_file(&self) -> PathBuf {
        self.w
            .env
            .home()
            .join(".aws/sso/cache")
            .join(format!("{}.json", sha1_hex("corp")))
    }

    fn cli_token(&self) -> Value {
        serde_json::from_str(&fs::read_to_string(self.cli_token_file()).unwrap()).unwrap()
    }

    /// A device-code sign-in, then a sign-out: the vault holds a device-flow client and no
    /// token. Returns the client id.
    fn device_client_signed_out(&self) -> String {
        self.w
            .run(&["sso", "login", "--use-device-code", "corp"])
            .success();
        self.w.run(&["sso", "logout", "corp"]).success();
        self.registered(0)
    }

    /// Runs Python in the venv with the test's environment (HOME, config, endpoints).
    fn python(&self, program: &str) -> vault_harness::Run {
        let python = vault_harness::env::venv().join("bin/python");
        self.w
            .env
            .output(self.w.env.command(python).args(["-c", program]))
    }
}

#[test]
fn a_refresh_refusing_the_client_registers_once_and_signs_in() {
    let s = world(CONFIG);
    // Ten minutes: the next use refreshes.
    s.stand_in.control(json!({"access_token_ttl": 600}));
    s.export("lab-ro");
    let revoked = s.registered(0);
    s.stand_in
        .control(json!({"access_token_ttl": 3600, "refuse_clients": [revoked]}));
    s.w.run(&["clear"]).success();
    s.export("lab-ro");
    // The refresh was refused for the client; one new registration, one new sign-in, and
    // the refused client was not tried again.
    assert_eq!(s.count("CreateToken.refresh_token"), 1);
    assert_eq!(s.count("RegisterClient"), 2);
    assert_eq!(s.count("CreateToken.authorization_code"), 2);
    assert_eq!(s.browser_opens(), 2);
    let refused = s.errors("InvalidClientException");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["grantType"], "refresh_token");
    // The new registration serves from now on.
    s.w.run(&["clear"]).success();
    s.export("lab-admin");
    assert_eq!(s.count("RegisterClient"), 2);
    assert_eq!(s.browser_opens(), 2);
    s.assert_no_sso_secrets(&[]);
}

#[test]
fn a_held_client_refused_at_sign_in_is_registered_again_once() {
    let s = world(CONFIG);
    // The device flow: StartDeviceAuthorization refuses the held client before anyone sees
    // a page.
    let device_client = s.device_client_signed_out();
    s.stand_in
        .control(json!({"refuse_clients": [device_client]}));
    let run = s.w.run(&["sso", "login", "--use-device-code", "corp"]);
    run.success().stderr_has("Signed in to sso-session corp");
    assert!(
        !run.stderr.contains("once more"),
        "one page: {}",
        run.stderr
    );
    assert_eq!(s.count("RegisterClient"), 2);
    assert_eq!(s.errors("InvalidClientException").len(), 1);
    assert_eq!(s.browser_opens(), 2);

    // The PKCE flow: CreateToken refuses the held client after the approval; the person
    // approves once more, with a new client.
    s.w.run(&["sso", "login", "corp"]).success();
    let pkce_client = s.registered(2);
    s.w.run(&["sso", "logout", "corp"]).success();
    s.stand_in.control(json!({"refuse_clients": [pkce_client]}));
    let opens = s.browser_opens();
    s.w.run(&["sso", "login", "corp"])
        .success()
        .stderr_has("Signed in to sso-session corp")
        // The second page is explained.
        .stderr_has("a new one is registered, so the sign-in page comes once more");
    assert_eq!(s.count("RegisterClient"), 4);
    assert_eq!(s.browser_opens(), opens + 2);
    let refused = s.errors("InvalidClientException");
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert_eq!(refused[1]["grantType"], "authorization_code");
    s.arn("lab-ro")
        .success()
        .stdout_has("assumed-role/ReadOnly/");

    // Never a loop: when the new client is refused too, the sign-in fails after one new
    // registration.
    s.stand_in.control(json!({"refuse_clients": ["*"]}));
    let opens = s.browser_opens();
    s.w.run(&["sso", "login", "corp"])
        .failure(1)
        .stderr_has("InvalidClientException")
        // The service's error_description, not "no message".
        .stderr_has("Client registration is no longer valid");
    assert_eq!(s.count("RegisterClient"), 5);
    assert_eq!(s.browser_opens(), opens + 2);
    s.assert_no_sso_secrets(&[]);
}

#[test]
fn an_expired_cli_token_is_refreshed_and_its_pkce_client_never_serves_the_device_flow() {
    let s = world(CONFIG);
    // The vault holds a device-flow client, signed out.
    s.device_client_signed_out();
    // `aws sso login` (PKCE) yesterday: the access token has expired, the refresh token
    // works.
    let cli_client = s.aws_sso_login(&["--expired"]);
    let opens = s.browser_opens();
    s.arn("lab-ro")
        .success()
        .stdout_has("assumed-role/ReadOnly/");
    // Refreshed as botocore would, with the CLI's client: no browser, no registration.
    assert_eq!(s.browser_opens(), opens);
    assert_eq!(s.count("RegisterClient"), 2);
    let refresh: Vec<Value> = s
        .calls()
        .into_iter()
        .filter(|c| c["grantType"] == "refresh_token")
        .collect();
    assert_eq!(refresh.len(), 1, "{refresh:?}");
    assert_eq!(refresh[0]["clientId"], cli_client.as_str());
    assert_eq!(refresh[0]["status"], 200);

    // A device-code sign-in does not reuse the CLI's PKCE client (botocore would not
    // either): a new registration, and no call refused for its grant.
    s.w.run(&["sso", "login", "--use-device-code", "corp"])
        .success();
    assert_eq!(s.count("RegisterClient"), 3);
    let device = s.registered(2);
    assert_ne!(device, cli_client);
    assert!(
        s.errors("UnauthorizedClientException").is_empty(),
        "{:?}",
        s.calls()
    );
    s.assert_no_sso_secrets(&[]);
}

#[test]
fn a_refresh_with_the_cli_s_refresh_token_is_written_back_for_botocore() {
    let s = world(CONFIG);
    s.aws_sso_login(&["--expired"]);
    let file = s.cli_token_file();
    #[cfg(unix)]
    use std::os::unix::fs::PermissionsExt;
    #[cfg(unix)]
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
    let before = s.cli_token();
    let old_refresh = before["refreshToken"].as_str().unwrap().to_owned();

    // vault's refresh gives a token with ten minutes left: botocore will refresh it too.
    s.stand_in.control(json!({"access_token_ttl": 600}));
    s.arn("lab-ro")
        .success()
        .stdout_has("assumed-role/ReadOnly/");
    assert_eq!(s.count("CreateToken.refresh_token"), 1);
    assert_eq!(s.browser_opens(), 0);
    let after = s.cli_token();
    let new_refresh = after["refreshToken"].as_str().unwrap().to_owned();
    // Compared, never shown: a failure must not print a token.
    assert!(
        new_refresh != old_refresh,
        "the rotated refresh token is in the file"
    );
    assert!(after["accessToken"] != before["accessToken"]);
    assert_ne!(after["expiresAt"], before["expiresAt"]);
    for kept in [
        "startUrl",
        "region",
        "clientId",
        "clientSecret",
        "registrationExpiresAt",
    ] {
        assert!(after[kept] == before[kept], "{kept} changed");
    }
    #[cfg(unix)]
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o640
    );

    // The stand-in rotates: the refresh token vault used is refused from now on.
    let old = s.python(&format!(
        "import boto3, botocore\n\
         from botocore.config import Config\n\
         c = boto3.session.Session().client('sso-oidc', config=Config(region_name='us-east-1', signature_version=botocore.UNSIGNED))\n\
         try:\n    c.create_token(grantType='refresh_token', clientId={id:?}, clientSecret={secret:?}, refreshToken={old:?})\n    print('accepted')\n\
         except c.exceptions.InvalidGrantException as e:\n    print(e.response['Error']['Code'], e.response.get('error_description'))\n",
        id = before["clientId"].as_str().unwrap(),
        secret = before["clientSecret"].as_str().unwrap(),
        old = old_refresh,
    ));
    old.success()
        .stdout_has("InvalidGrantException Invalid refresh token provided");

    // botocore's own SSO provider, from the file vault wrote back: it refreshes (ten minutes
    // left) with the refresh token vault put there, and gets the role.
    s.stand_in.control(json!({"access_token_ttl": 3600}));
    let boto = s.python(
        "import boto3; print(boto3.Session(profile_name='lab-ro').client('sts').get_caller_identity()['Arn'])",
    );
    boto.success().stdout_has("assumed-role/ReadOnly/");
    let refreshes: Vec<Value> = s
        .calls()
        .into_iter()
        .filter(|c| c["grantType"] == "refresh_token")
        .collect();
    assert_eq!(
        refreshes.len(),
        3,
        "vault's, the refused old one, botocore's"
    );
    assert_eq!(refreshes[2]["status"], 200, "{refreshes:?}");
    assert!(s.cli_token()["refreshToken"] != new_refresh.as_str());

    // botocore rotated the token vault held; vault's next refresh is refused, and it takes
    // the CLI's token instead of opening the browser.
    s.w.run(&["clear"]).success();
    s.export("lab-admin");
    assert_eq!(s.browser_opens(), 0);
    assert_eq!(s.count("RegisterClient"), 1, "only the CLI's");
    s.assert_no_sso_secrets(&[]);
}
