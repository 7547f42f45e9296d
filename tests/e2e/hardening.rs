//! What odd names, dotfiles, shared directories, a full disk, hung helpers and hostile
//! config values do to `vault`: each case is a defect an adversarial pass found, and each
//! test failed before its fix. Every bad input must give a clear message, a non-zero exit
//! and leave every file as it was.

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use vault_harness::terminal::{Shell, Terminal};
use vault_harness::{Moto, TestEnv};

const PASSPHRASE: &str = "hardening test passphrase";
const KEY_ID: &str = "AKIAHARDENINGTEST001";
const SECRET: &str = "hardeningTestSecret0123456789abcdefghijk";

fn env() -> TestEnv {
    let mut env = TestEnv::new();
    env.use_file_vault(PASSPHRASE);
    // Nothing listens there: the commands that get past their checks fail without traffic
    // leaving 127.0.0.1.
    env.set("AWS_ENDPOINT_URL", "http://127.0.0.1:1");
    env
}

fn add_env(env: &TestEnv, profile: &str) -> vault_harness::Run {
    env.run_with(
        &[
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
        &["add", "--env", profile],
    )
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn write_script(path: &Path, body: &str) {
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    #[cfg(unix)]
    chmod(path, 0o755);
}

#[test]
fn profile_names_that_would_break_the_config_are_refused_before_anything_is_written() {
    let env = env();
    env.write_config("[profile base]\nregion = us-east-1\n");
    let before = fs::read(env.config_path()).unwrap();
    let long = "n".repeat(10_000);
    for name in [
        "a;b",
        "a#b",
        "[x",
        "a]b",
        "a\nb",
        "a\u{1b}[2Jb",
        "a b",
        long.as_str(),
    ] {
        let run = add_env(&env, name);
        run.failure(1).stderr_has("invalid profile name");
        assert!(
            !run.stderr.contains('\u{1b}'),
            "raw escape in {:?}",
            run.stderr
        );
        assert!(
            run.stderr.len() < 1_000,
            "echoed {} bytes",
            run.stderr.len()
        );
        assert_eq!(fs::read(env.config_path()).unwrap(), before, "{name:?}");
        assert!(
            !env.vault_dir().join("credentials.json").exists(),
            "{name:?}"
        );
    }
    // The file still parses, and names the SDKs allow still work.
    add_env(&env, "team/lab-1.admin@x").success();
    env.run(&["list", "--profiles"])
        .success()
        .stdout_has("team/lab-1.admin@x");
}

#[cfg(unix)]
#[test]
fn a_symlinked_config_is_written_through_and_keeps_its_mode() {
    let env = env();
    let dotfiles = env.dir.path().join("dotfiles");
    fs::create_dir_all(&dotfiles).unwrap();
    let real = dotfiles.join("aws-config");
    fs::write(&real, "# mine\n[profile base]\nregion = us-east-1\n").unwrap();
    chmod(&real, 0o640);
    let link = env.config_path();
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(&real, &link).unwrap();

    add_env(&env, "lab").success();
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let text = fs::read_to_string(&real).unwrap();
    assert!(text.starts_with("# mine\n[profile base]\n"), "{text}");
    assert!(text.contains("[profile lab]"), "{text}");
    assert_eq!(mode(&real), 0o640);
    // No temp file left beside the target or the link.
    for dir in [dotfiles.as_path(), link.parent().unwrap()] {
        let temps: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(temps.is_empty(), "{temps:?}");
    }
}

#[cfg(unix)]
#[test]
fn a_shared_vault_directory_is_refused_and_left_alone() {
    let env = env();
    env.write_config("[profile base]\nregion = us-east-1\n");
    let shared = env.dir.path().join("shared");
    fs::create_dir_all(&shared).unwrap();
    chmod(&shared, 0o777);
    let dir = shared.display().to_string();
    let run = env.run_with(
        &[
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
        &["--file-dir", &dir, "add", "--env", "base"],
    );
    run.failure(1)
        .stderr_has("is not private")
        .stderr_has("chmod 700");
    assert_eq!(
        mode(&shared),
        0o777,
        "vault changed the mode of a directory it did not create"
    );
    assert_eq!(fs::read_dir(&shared).unwrap().count(), 0);

    // A vault whose files others can read (someone could also have planted them).
    add_env(&env, "base").success();
    let sessions = env.vault_dir().join("credentials.json");
    chmod(&sessions, 0o666);
    let before = fs::read(&sessions).unwrap();
    env.run(&["list"])
        .failure(1)
        .stderr_has("credentials.json is not private")
        .stderr_has("chmod 600");
    assert_eq!(fs::read(&sessions).unwrap(), before);
    assert_eq!(mode(&sessions), 0o666);
}

#[cfg(unix)]
#[test]
fn temp_files_left_by_a_crash_are_cleaned_and_new_files_are_private_under_umask_000() {
    let env = env();
    let aws = env.config_path().parent().unwrap().to_owned();
    fs::remove_dir_all(&aws).unwrap();
    // `add` under umask 000: ~/.aws and the config it creates are still the user's alone.
    let mut cmd = env.command("sh");
    cmd.args(["-c", "umask 000; exec \"$0\" add --env base"])
        .arg(vault_harness::vault_bin())
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET);
    env.output(&mut cmd).success();
    assert_eq!(mode(&aws), 0o700);
    assert_eq!(mode(&env.config_path()), 0o600);
    assert_eq!(mode(&env.vault_dir()), 0o700);

    // What a writer killed mid-write leaves behind: its temp file names its PID, which no
    // process has now (a child that has exited).
    let dead = {
        let mut child = env.command("true").spawn().unwrap();
        child.wait().unwrap();
        child.id()
    };
    let stale = [
        env.vault_dir()
            .join(format!(".credentials.json.{dead}.a1b2c3.tmp")),
        aws.join(format!(".config.vault-{dead}.tmp")),
    ];
    for path in &stale {
        fs::write(path, b"half").unwrap();
    }
    add_env(&env, "lab").success();
    for path in &stale {
        assert!(!path.exists(), "{} left", path.display());
    }
}

#[test]
fn hostile_values_are_escaped_in_every_line() {
    let env = env();
    env.write_config(
        "[profile lab]\nsource_profile = gh\u{1b}]0;pwned\u{7}ost\nrole_arn = arn:aws:iam::123456789012:role/x\n",
    );
    let run = env.run(&["exec", "lab", "--", "true"]);
    run.failure(1);
    assert!(
        !run.stderr.contains('\u{1b}') && !run.stderr.contains('\u{7}'),
        "raw control characters: {:?}",
        run.stderr
    );
    assert!(run.stderr.contains("\\u{1b}"), "{}", run.stderr);
}

#[test]
fn misleading_messages_are_now_precise() {
    let env = env();
    add_env(&env, "base").success();
    let dir = env.dir.path().display().to_string();
    env.write_config(&format!(
        "[profile base]\nregion = us-east-1\n\
         [profile garbage]\nsource_profile = base\nrole_arn = arn:aws:iam::123456789012:role/g\n\
         mfa_serial = arn:aws:iam::123456789012:mfa/a\nmfa_process = echo not-a-code-4711\n\
         [profile failing]\nsource_profile = base\nrole_arn = arn:aws:iam::123456789012:role/f\n\
         mfa_serial = arn:aws:iam::123456789012:mfa/b\nmfa_process = exit 3\n\
         [profile huge]\nsource_profile = base\nrole_arn = arn:aws:iam::123456789012:role/h\n\
         duration_seconds = 99999999999999999999\n\
         [profile nul]\nsource_profile = base\nrole_arn = arn:aws:iam::123456789012:role/n\u{0}x\n\
         [profile both]\nsource_profile = base\ncredential_source = Environment\n\
         role_arn = arn:aws:iam::123456789012:role/b\n# {dir}\n"
    ));
    let run = env.run(&["export", "garbage"]);
    run.failure(1)
        .stderr_has("mfa_process (")
        .stderr_has("an MFA code is 6 digits")
        .stderr_has("mfa_process must print only");
    assert!(
        !run.stderr.contains("4711"),
        "echoed what it printed: {}",
        run.stderr
    );

    env.run(&["export", "failing"])
        .failure(1)
        .stderr_has("failed")
        .stderr_has("run the mfa_process command yourself");
    env.run(&["export", "huge"])
        .failure(1)
        .stderr_has("too long");
    env.run(&["export", "nul"])
        .failure(1)
        .stderr_has("control character");
    env.run(&["export", "both"])
        .failure(1)
        .stderr_has("not both");
    env.run_with(&[("AWS_VAULT_FILE_PASSPHRASE", "")], &["export", "base"])
        .failure(1)
        .stderr_has("set but empty");

    // A config that does not parse: the line and why; `add` stores nothing then.
    env.write_config("[profile base]\nregion = us-east-1\nthis is not a setting\n");
    env.run(&["list"])
        .failure(1)
        .stderr_has("line 3: Expected an '=' sign");
    let credentials = env.vault_dir().join("credentials.json");
    let before = fs::read(&credentials).unwrap();
    add_env(&env, "other")
        .failure(1)
        .stderr_has("line 3: Expected an '=' sign");
    assert_eq!(
        fs::read(&credentials).unwrap(),
        before,
        "a failed add stored a key"
    );
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let env = env();
    let mut config = String::new();
    for i in 0..5_000 {
        config.push_str(&format!("[profile p{i}]\nregion = us-east-1\n"));
    }
    env.write_config(&config);
    let mut cmd = env.vault(&["list", "--profiles"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // The reader goes away at once, as `head` does after its lines.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}

#[test]
fn a_hung_mfa_process_is_stopped_with_its_group_and_waiters_say_why_they_wait() {
    let mut env = env();
    add_env(&env, "base").success();
    let pidfile = env.dir.path().join("helper-pid");
    let slow = env.dir.path().join("slow-mfa.sh");
    // A helper that starts a grandchild and never answers.
    write_script(
        &slow,
        &format!("sleep 600 &\necho $! > {}\nwait", pidfile.display()),
    );
    env.write_config(&format!(
        "[profile base]\nregion = us-east-1\nmfa_serial = arn:aws:iam::123456789012:mfa/a\n\
         mfa_process = {}\n",
        slow.display()
    ));
    let start = Instant::now();
    env.run_with(&[("AWS_VAULT_HELPER_TIMEOUT", "2s")], &["export", "base"])
        .failure(1)
        .stderr_has("did not finish within 2s")
        .stderr_has("AWS_VAULT_HELPER_TIMEOUT");
    assert!(start.elapsed() < Duration::from_secs(60));
    let pid: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    vault_harness::wait_for(
        Duration::from_secs(10),
        "the grandchild to be killed",
        || {
            !Path::new(&format!("/proc/{pid}")).exists()
                || fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
        },
    );

    // One process holds the mint lock while its helper runs; the other says what it waits for.
    let paced = env.dir.path().join("paced-mfa.sh");
    write_script(&paced, "sleep 3\necho 123456");
    env.write_config(&format!(
        "[profile base]\nregion = us-east-1\nmfa_serial = arn:aws:iam::123456789012:mfa/a\n\
         mfa_process = {}\n",
        paced.display()
    ));
    env.put_vault_on_path();
    // The first holds the lock while its helper runs; the second is started meanwhile.
    let while_one_holds_the_lock = |second: &dyn Fn()| {
        let first = env
            .vault(&["export", "base"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(800));
        second();
        let first = first.wait_with_output().unwrap();
        assert_eq!(first.status.code(), Some(1));
    };
    // stderr is a pipe: a program reads it, so no status line.
    while_one_holds_the_lock(&|| {
        let second = env.run(&["export", "base"]);
        second.failure(1);
        assert!(!second.stderr.contains("waiting for"), "{}", second.stderr);
    });

    // On a terminal, the waiting one says what it waits for.
    let Some(term) = Terminal::start(&env, Shell::Bash) else {
        return;
    };
    while_one_holds_the_lock(&|| {
        term.line("vault export base >/dev/null; echo done-$?");
        term.wait_for("waiting for another vault process minting GetSessionToken with MFA");
        term.wait_for("done-");
    });
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_still_hands_out_the_credentials_sts_gave() {
    let mut env = TestEnv::new();
    env.use_file_vault(PASSPHRASE);
    let Some(disk) = vault_harness::SmallDisk::mount(env.dir.path().join("small")).unwrap() else {
        // CI runs as root, where mounting works: there a failure is a failure.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "cannot mount a tmpfs under CI"
        );
        vault_harness::skip("cannot mount a tmpfs here (needs root)");
        return;
    };
    let vault_dir = disk.dir().join("vault");
    env.set("AWS_VAULT_FILE_DIR", &vault_dir);
    let moto = Moto::start(&env);
    env.use_moto(&moto);
    let (key_id, secret) = moto.create_access_key(&env, "alice");
    env.write_config("[profile base]\nregion = us-east-1\n");
    env.store_key("base", &key_id, &secret);
    disk.fill().unwrap();
    let before = fs::read(vault_dir.join("credentials.json")).unwrap();

    let run = env.run(&["export", "--format", "json", "base"]);
    run.success()
        .stderr_has("could not cache the session")
        .stderr_has("no space left on device");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(json["SessionToken"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(moto.count("GetSessionToken"), 1);
    assert_eq!(
        fs::read(vault_dir.join("credentials.json")).unwrap(),
        before
    );
    let temps: Vec<_> = fs::read_dir(&vault_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");

    // A command that must write says where the space ran out, not a temp file's name.
    let run = env.run_with(
        &[
            ("AWS_ACCESS_KEY_ID", key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", secret.as_str()),
        ],
        &["add", "--env", "--no-add-config", "--force", "other"],
    );
    run.failure(1).stderr_has("no space left on device in");
    assert!(!run.stderr.contains(".tmp"), "{}", run.stderr);
    drop(moto);
    drop(disk);
}

/// A temp file whose writer still runs is that writer's: another writer (say, of another
/// vault directory sharing the AWS config) must not delete it mid-write.
#[test]
fn a_live_writers_temp_file_is_left_alone() {
    let env = env();
    let aws = env.config_path().parent().unwrap().to_owned();
    let mut live = env.command("sleep").arg("30").spawn().unwrap();
    let theirs = aws.join(format!(".config.{}.a1b2c3.tmp", live.id()));
    fs::write(&theirs, b"half").unwrap();
    add_env(&env, "lab").success();
    assert!(theirs.exists(), "a live writer's temp file was deleted");
    live.kill().unwrap();
    live.wait().unwrap();
}
