//! What a person meets at the keyboard, tested as they meet it: completion in a real bash and
//! fish under tmux (profile names read at Tab time), the man pages rendered by `man`, the
//! profile picker when no profile is named (AWS_PROFILE first, a usage error without a
//! terminal), and "did you mean" for a misspelt profile.

use std::fs;

use vault_harness::terminal::{Shell, Terminal};
use vault_harness::{TestEnv, World};

const CONFIG: &str = "\
[profile base]
region = us-east-1

[profile lab]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/lab
region = us-east-1

[profile prod]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/prod
region = us-east-1

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = us-east-1
";

#[test]
fn bash_completes_subcommands_profiles_and_backends_at_tab_time() {
    let mut env = TestEnv::new();
    env.put_vault_on_path();
    env.write_config(CONFIG);
    let Some(term) = Terminal::start(&env, Shell::Bash) else {
        return;
    };
    term.run("source <(vault completion bash)");
    term.type_text("vault exe");
    term.keys(&["Tab"]);
    term.wait_for("vault exec");
    term.keys(&["C-u"]);
    // A profile from the config file, read now.
    term.type_text("vault exec l");
    term.keys(&["Tab"]);
    term.wait_for("vault exec lab");
    term.keys(&["C-u"]);
    // A profile added after the script was loaded completes too.
    fs::write(
        env.config_path(),
        format!("{CONFIG}\n[profile staging]\nregion = us-east-1\n"),
    )
    .unwrap();
    term.type_text("vault export st");
    term.keys(&["Tab"]);
    term.wait_for("vault export staging");
    term.keys(&["C-u"]);
    term.type_text("vault --backend ");
    term.keys(&["Tab", "Tab"]);
    let screen = term.wait_for("keyctl");
    assert!(
        screen.contains("file") && screen.contains("secret-service"),
        "{screen}"
    );
    term.keys(&["C-u"]);
    term.type_text("vault sso populate c");
    term.keys(&["Tab"]);
    term.wait_for("vault sso populate corp");
    // Completing asked for nothing and made no vault.
    assert!(!env.vault_dir().exists());
}

#[test]
fn fish_completes_profiles_too() {
    let mut env = TestEnv::new();
    env.put_vault_on_path();
    env.write_config(CONFIG);
    let Some(term) = Terminal::start(&env, Shell::Fish) else {
        return;
    };
    term.run("vault completion fish | source");
    term.type_text("vault login pr");
    term.keys(&["Tab"]);
    term.wait_for("vault login prod");
}

#[test]
fn every_shell_gets_a_script_and_every_man_page_renders_cleanly() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let run = env.run(&["completion", shell]);
        run.success();
        assert!(
            run.stdout.contains("VAULT_COMPLETE"),
            "{shell}: {}",
            run.stdout
        );
    }
    env.run(&["completion", "tcsh"]).failure(2);

    let dir = env.dir.path().join("man");
    env.run(&["man", dir.to_str().unwrap()]).success();
    let mut pages: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for page in [
        "vault.1",
        "vault-exec.1",
        "vault-export.1",
        "vault-sso.1",
        "vault-sso-login.1",
    ] {
        assert!(
            pages.iter().any(|p| p == page),
            "{page} missing from {pages:?}"
        );
    }
    assert!(
        !pages.iter().any(|p| p == "vault-man.1"),
        "the hidden command has a page"
    );
    if !env.require_program("man", "man-db") {
        return;
    }
    for page in &pages {
        let out = env.output(
            env.command("man")
                .args(["--warnings", "-E", "UTF-8", "-l"])
                .arg(dir.join(page))
                .env("MANWIDTH", "80")
                .env("MANPAGER", "cat")
                .env("PAGER", "cat"),
        );
        out.success();
        assert!(out.stderr.trim().is_empty(), "{page}: {}", out.stderr);
        assert!(out.stdout.contains("NAME"), "{page} rendered nothing");
    }
}

#[test]
fn without_a_profile_aws_profile_then_the_picker_then_a_usage_error() {
    let mut w = World::new("everyday test", CONFIG);
    // No terminal: say how to name one.
    w.run(&["exec", "--", "true"])
        .failure(2)
        .stderr_has("vault exec needs a profile, and there is no terminal to pick one on")
        .stderr_has("set AWS_PROFILE");
    w.env
        .caller_arn(&[("AWS_PROFILE", "lab")], &["exec"])
        .success()
        .stdout_has("assumed-role/lab/");

    // On a terminal: the picker, type to filter, most recently used first.
    w.env.put_vault_on_path();
    let Some(term) = Terminal::start(&w.env, Shell::Bash) else {
        return;
    };
    term.line("vault exec -- sh -c 'echo picked-$AWS_VAULT'");
    term.wait_for("type to filter");
    term.type_text("pro");
    term.wait_for("prod");
    term.keys(&["Enter"]);
    term.wait_for("picked-prod");
    // prod was used last: the picker offers it first.
    term.line("vault export --format env");
    let screen = term.wait_for("type to filter");
    let after: Vec<&str> = screen
        .lines()
        .skip_while(|l| !l.contains("type to filter"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(
        after.first().is_some_and(|l| l.contains("prod")),
        "{screen}"
    );
    // Escape picks nothing: a usage error, nothing printed on stdout.
    term.keys(&["Escape"]);
    term.wait_for("no profile picked");
}

#[test]
fn a_misspelt_profile_gets_did_you_mean() {
    let w = World::new("everyday test", CONFIG);
    w.run(&["exec", "lba", "--", "true"])
        .failure(1)
        .stderr_has("did you mean `lab`?");
    w.run(&["export", "bsae"])
        .failure(1)
        .stderr_has("did you mean `base`?");
    // Nothing close: no guess.
    let run = w.run(&["exec", "zzzzzz", "--", "true"]);
    run.failure(1);
    assert!(!run.stderr.contains("did you mean"), "{}", run.stderr);
}

#[test]
fn vault_use_sets_and_unsets_credentials_in_bash_zsh_and_fish() {
    let mut w = World::new("everyday test", CONFIG);
    w.env.put_vault_on_path();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let Some(term) = Terminal::start(&w.env, shell) else {
            continue;
        };
        let init = match shell {
            Shell::Fish => "vault shell-init fish | source",
            Shell::Bash => "eval \"$(vault shell-init bash)\"",
            Shell::Zsh => "eval \"$(vault shell-init zsh)\"",
        };
        term.run(init);
        term.run("vault use lab");
        assert_eq!(term.run("echo $AWS_VAULT"), "lab", "{shell:?}");
        let arn = term.run("aws sts get-caller-identity --query Arn --output text");
        assert!(arn.contains("assumed-role/lab/"), "{shell:?}: {arn}");
        assert!(
            term.run("echo $AWS_CREDENTIAL_EXPIRATION").ends_with('Z'),
            "{shell:?}"
        );
        // Switching replaces; --unset removes every variable it set, and only those.
        term.run("vault use prod");
        assert_eq!(term.run("echo $AWS_VAULT"), "prod", "{shell:?}");
        term.run("vault use --unset");
        let left = match shell {
            Shell::Fish => {
                term.run("set -q AWS_ACCESS_KEY_ID AWS_VAULT AWS_SESSION_TOKEN; or echo none-left")
            }
            _ => term.run("echo ${AWS_ACCESS_KEY_ID-none}${AWS_VAULT-}${AWS_SESSION_TOKEN-}-left"),
        };
        assert!(
            left.contains("none") && left.contains("left"),
            "{shell:?}: {left}"
        );
        assert!(
            term.run("echo $HOME").ends_with("home"),
            "{shell:?}: the shell's own variables stay"
        );
        // Other commands go to the binary.
        assert!(
            term.run("vault list --profiles").contains("prod"),
            "{shell:?}"
        );
    }
    // Without the function: what to add where.
    w.run(&["use", "lab"])
        .failure(2)
        .stderr_has("vault shell-init bash");
    // Nothing secret was written anywhere under the home or the temp dir but the vault.
    let mut files = Vec::new();
    collect(w.env.dir.path(), &w.env.vault_dir(), &mut files);
    for (path, text) in files {
        assert!(
            !text.contains(&w.secret) && !text.contains("aws_session_token"),
            "{} holds a secret",
            path.display()
        );
    }
}

#[test]
fn exec_without_a_command_says_a_subshell_started() {
    let w = World::new("everyday test", CONFIG);
    let run = w
        .env
        .output(w.env.vault(&["exec", "lab"]).env("SHELL", "/bin/true"));
    run.success()
        .stderr_has("starting a subshell with the credentials of lab; `exit` leaves it");
    let quiet = w.env.output(
        w.env
            .vault(&["exec", "lab"])
            .env("SHELL", "/bin/true")
            .env("AWS_VAULT_DISABLE_HELP_MESSAGE", "1"),
    );
    quiet.success();
    assert!(!quiet.stderr.contains("subshell"), "{}", quiet.stderr);
}

/// Every file under `dir` but `skip`, as text.
fn collect(
    dir: &std::path::Path,
    skip: &std::path::Path,
    out: &mut Vec<(std::path::PathBuf, String)>,
) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if path.starts_with(skip) {
            continue;
        }
        if kind.is_dir() {
            collect(&path, skip, out);
        } else if !kind.is_file() {
            // Sockets and FIFOs (tmux's, fish's notifier) hold no data, and opening a FIFO
            // would wait for a writer.
        } else if let Ok(bytes) = fs::read(&path) {
            out.push((path, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
}

#[test]
fn import_moves_keys_out_of_the_plaintext_credentials_file() {
    let w = World::without_stored_key("everyday test", CONFIG);
    let path = w.env.home().join(".aws/credentials");
    let original = format!(
        "# my notes\n[base]\naws_access_key_id = {}\naws_secret_access_key = {}\nregion = us-east-1\n\n[temp]\naws_access_key_id = ASIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\naws_session_token = FQoGZXIvYXdzEXAMPLE\n",
        w.key_id, w.secret
    );
    fs::write(&path, &original).unwrap();
    // Named, a temporary key is refused, and nothing is stored.
    w.run(&["import", "base", "temp"])
        .failure(1)
        .stderr_has("profile temp in")
        .stderr_has("holds temporary credentials");
    assert!(!w.env.vault_dir().exists());
    assert_eq!(fs::read_to_string(&path).unwrap(), original);

    // Unnamed, it is left out.
    w.run(&["import", "--remove"])
        .success()
        .stderr_has("leaving out profile temp")
        .stderr_has("Imported the key of profile base");
    // The key works from the vault; the plaintext file lost exactly its two lines.
    w.env
        .caller_arn(&[], &["exec", "lab"])
        .success()
        .stdout_has("assumed-role/lab/");
    let after = fs::read_to_string(&path).unwrap();
    assert_eq!(
        after,
        original.replace(
            &format!(
                "aws_access_key_id = {}\naws_secret_access_key = {}\n",
                w.key_id, w.secret
            ),
            ""
        )
    );
    assert!(!after.contains(&w.secret));
    w.assert_no_secrets(&[]);
}

#[test]
fn doctor_reports_each_check_with_a_fix_and_fails_on_a_broken_profile() {
    let w = World::new("everyday test", CONFIG);
    let run = w.run(&["doctor"]);
    run.success();
    for line in [
        "ok    config",
        "ok    vault files",
        "ok    backend      file (passphrase)",
        "ok    profiles     all 3 profiles resolve",
        "ok    clock        within",
        "AWS_ENDPOINT_URL=",
        "AWS_VAULT_FILE_PASSPHRASE (set)",
    ] {
        assert!(
            run.stdout.contains(line),
            "{line:?} missing:\n{}",
            run.stdout
        );
    }
    w.assert_no_secrets(&[]);

    w.write_config(&format!("{CONFIG}\n[profile broken]\nsource_profile = nowhere\nrole_arn = arn:aws:iam::123456789012:role/x\n"));
    let run = w.run_with_key_in_env();
    run.failure(1);
    assert!(run.stdout.contains("FAIL  profile"), "{}", run.stdout);
    assert!(
        run.stdout.contains("fix: fix [profile broken]"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("warn  environment"), "{}", run.stdout);
    let json: serde_json::Value =
        serde_json::from_str(&w.run(&["doctor", "--json"]).stdout).unwrap();
    let checks = json.as_array().unwrap();
    assert!(
        checks
            .iter()
            .any(|c| c["check"] == "profile" && c["status"] == "fail")
    );
    assert!(checks.iter().all(|c| c["message"].is_string()));
}

trait KeyInEnv {
    fn run_with_key_in_env(&self) -> vault_harness::Run;
}

impl KeyInEnv for World {
    /// `vault doctor` with a key pair in the environment, which it must warn about.
    fn run_with_key_in_env(&self) -> vault_harness::Run {
        self.env.run_with(
            &[
                ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
                (
                    "AWS_SECRET_ACCESS_KEY",
                    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                ),
            ],
            &["doctor"],
        )
    }
}

#[test]
fn migrate_backend_moves_the_vault_key_and_keeps_every_stored_key() {
    let mut w = World::new("everyday test", CONFIG);
    if !w.env.use_own_session_keyring() {
        return;
    }
    let meta = w.env.vault_dir().join("vault.json");
    let before = fs::read(&meta).unwrap();
    w.run(&["migrate-backend", "--to", "keyctl", "--dry-run"])
        .success()
        .stderr_has("Would move the vault key")
        .stderr_has("from file to keyctl");
    assert_eq!(fs::read(&meta).unwrap(), before, "--dry-run wrote");
    w.run(&["migrate-backend", "--to", "keyctl"])
        .success()
        .stderr_has("Moved the vault key");
    assert!(fs::read_to_string(&meta).unwrap().contains("\"keyctl\""));
    // No passphrase now, and the stored key is the same one.
    w.env
        .unset("AWS_VAULT_FILE_PASSPHRASE")
        .unset("AWS_VAULT_BACKEND");
    w.run(&["export", "--no-session", "--format", "json", "base"])
        .success()
        .stdout_has(&w.key_id);
    // And back, behind a passphrase from the environment.
    w.env.set("AWS_VAULT_FILE_PASSPHRASE", "a new passphrase");
    w.run(&["migrate-backend", "--to", "file"]).success();
    w.env.unset("AWS_VAULT_FILE_PASSPHRASE");
    w.run(&["export", "--no-session", "--format", "json", "base"])
        .failure(1)
        .stderr_has("passphrase");
    w.env.set("AWS_VAULT_FILE_PASSPHRASE", "a new passphrase");
    w.run(&["export", "--no-session", "--format", "json", "base"])
        .success()
        .stdout_has(&w.key_id);
    // export printed the key on purpose; the passphrases never showed.
    let shown = w.env.transcript();
    assert!(!shown.contains("a new passphrase") && !shown.contains("everyday test"));
}
