//! The exact words a person sees for the main mistakes, and `--explain`'s plan: whole
//! stdout and stderr, so wording cannot drift unseen. Temp paths are shown as `$TMP`, the
//! moto port as `$PORT`. On a mismatch the test prints the whole new output: if the change
//! is meant, paste it in.

use vault_harness::{Run, World};

const PASSPHRASE: &str = "messages test passphrase";

const CONFIG: &str = "\
[profile base]
region = eu-west-1
mfa_serial = arn:aws:iam::123456789012:mfa/alice

[profile lab]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/lab

[profile nokey]
region = eu-west-1
";

fn world() -> World {
    World::new(PASSPHRASE, CONFIG)
}

/// `run`'s exit code, stdout and stderr, with the test's paths and ports made stable.
fn shown(world: &World, run: &Run) -> String {
    let tmp = world.env.dir.path().display().to_string();
    let port = world
        .moto
        .endpoint
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_owned();
    let text = format!(
        "exit {}\n--- stdout\n{}--- stderr\n{}",
        run.code(),
        run.stdout,
        run.stderr
    );
    text.replace(&tmp, "$TMP").replace(&port, "$PORT")
}

#[track_caller]
fn assert_shows(world: &World, run: &Run, expected: &str) {
    let actual = shown(world, run);
    assert!(
        actual == expected,
        "output changed; if that is meant, this is the new text:\n{actual}\n--- (expected)\n{expected}"
    );
}

#[test]
fn the_main_mistakes_read_exactly_so() {
    let w = world();
    assert_shows(
        &w,
        &w.run(&["exec", "nosuch", "--", "true"]),
        "exit 1
--- stdout
--- stderr
vault: error: profile \"nosuch\" is not in $TMP/home/.aws/config and has no stored key in the vault
hint: `vault list --profiles` shows the profiles of the config file; `vault add NAME` stores a key pair
",
    );
    assert_shows(
        &w,
        &w.run(&["exec", "nokey", "--", "true"]),
        "exit 1
--- stdout
--- stderr
vault: error: profile \"nokey\" needs a stored key, and the vault has none for it
hint: store its key pair: vault add nokey
",
    );
    assert_shows(
        &w,
        &w.env.run_with(
            &[("AWS_VAULT_FILE_PASSPHRASE", "not the passphrase")],
            &["exec", "lab", "--", "true"],
        ),
        "exit 1
--- stdout
--- stderr
vault: error: wrong passphrase for the vault in $TMP/vault
hint: type the passphrase you chose when the vault was created; if it comes from AWS_VAULT_FILE_PASSPHRASE, check that variable
",
    );
    assert_shows(
        &w,
        &w.run(&["exec", "-d", "5x", "lab", "--", "true"]),
        "exit 2
--- stdout
--- stderr
error: invalid value '5x' for '--duration <DURATION>': \"5x\" is not a duration (use e.g. 1h, 90m, 3600s)

For more information, try '--help'.
",
    );
    assert_shows(
        &w,
        &w.run(&["exec", "-t", "12345", "lab", "--", "true"]),
        "exit 2
--- stdout
--- stderr
error: --mfa-token: the MFA code must be 6 digits, not 5 digits
hint: type the 6-digit code your MFA device shows now
",
    );
    assert_shows(
        &w,
        &w.run(&["exec", "lab", "--", "true"]),
        "exit 1
--- stdout
--- stderr
vault: error: an MFA code for arn:aws:iam::123456789012:mfa/alice is needed, but there is no terminal to ask on and no GUI prompt
hint: pass --mfa-token CODE, set mfa_process in the profile, or choose a prompt with --prompt (zenity, kdialog, osascript, wincredui, ykman)
",
    );
    assert!(w.minted().is_empty(), "{:?}", w.minted());
}

#[test]
fn explain_reads_exactly_so() {
    let w = world();
    let run = w.run(&["exec", "--explain", "lab"]);
    assert_shows(
        &w,
        &run,
        "exit 0
--- stdout
Plan for profile \"lab\":
  region        eu-west-1 ($TMP/home/.aws/config:2)
  STS endpoint  http://127.0.0.1:$PORT ($AWS_ENDPOINT_URL)
  MFA device    arn:aws:iam::123456789012:mfa/alice ($TMP/home/.aws/config:3)
  MFA codes     from a prompt on the terminal
  reuse         cached sessions with more than 15m left (default)

  1. stored key of base
       from the vault: the long-lived key of \"base\"
  2. GetSessionToken with MFA, 8h (default)
       not cached: will call STS
       carries the MFA code
       note: the MFA session: shared by every role reached through this key
  3. AssumeRole arn:aws:iam::123456789012:role/lab, 1h (default)
       not cached: will call STS
       role_arn           $TMP/home/.aws/config:7

Nothing was run and no STS call was made.
--- stderr
",
    );
}
