//! Every program vault starts gets an environment without the vault passphrase: the
//! `mfa_process` and `credential_process` helpers and ykman here (exec's child in
//! `exec.rs`, the browser in `login.rs`). Each helper writes its environment to a file,
//! which must hold neither the variable nor the passphrase.
//!
//! No STS is needed: the helpers run before any call, and the endpoint points at a closed
//! port on 127.0.0.1, so the commands fail afterwards without traffic leaving the machine.

use std::path::Path;

use vault_harness::TestEnv;

const PASSPHRASE: &str = "children test passphrase";

fn env() -> TestEnv {
    let mut env = TestEnv::new();
    env.use_file_vault(PASSPHRASE);
    env.set("AWS_ENDPOINT_URL", "http://127.0.0.1:1");
    env.store_key(
        "base",
        "AKIAEXAMPLECHILDREN1",
        "childrenTestSecret0123456789abcdefghijkl",
    );
    env
}

fn script(env: &TestEnv, name: &str, body: &str) -> std::path::PathBuf {
    let path = env.dir.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

#[track_caller]
fn assert_clean(dump: &Path, what: &str) {
    let text = std::fs::read_to_string(dump).unwrap_or_else(|e| panic!("{what} did not run: {e}"));
    assert!(
        text.contains("HOME="),
        "{what}: not an environment dump:\n{text}"
    );
    assert!(
        !text.contains("AWS_VAULT_FILE_PASSPHRASE") && !text.contains(PASSPHRASE),
        "{what} saw the passphrase:\n{text}"
    );
}

#[test]
fn mfa_process_gets_no_passphrase() {
    let env = env();
    let dump = env.dir.path().join("mfa-env");
    env.write_config(&format!(
        "[profile base]\nregion = us-east-1\nmfa_serial = arn:aws:iam::123456789012:mfa/alice\n\
         mfa_process = env > {} ; echo 123456\n",
        dump.display()
    ));
    env.run(&["export", "base"]).failure(1);
    assert_clean(&dump, "mfa_process");
}

#[test]
fn credential_process_gets_no_passphrase() {
    let env = env();
    let dump = env.dir.path().join("cp-env");
    let helper = script(&env, "cp.sh", &format!("env > {}\nexit 3", dump.display()));
    env.write_config(&format!(
        "[profile saml]\nregion = us-east-1\ncredential_process = {}\n",
        helper.display()
    ));
    env.run(&["export", "saml"])
        .failure(1)
        .stderr_has("credential_process");
    assert_clean(&dump, "credential_process");
}

/// ykman needs a YubiKey, which no test machine has: a stand-in named `ykman` on PATH prints
/// a code as `ykman oath accounts code --single` does.
#[test]
fn ykman_gets_no_passphrase() {
    let mut env = env();
    let dump = env.dir.path().join("ykman-env");
    let bin = env.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let ykman = script(
        &env,
        "ykman",
        &format!("env > {}\necho 123456", dump.display()),
    );
    std::fs::rename(&ykman, bin.join("ykman")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        env.get("PATH").unwrap().to_string_lossy()
    );
    env.set("PATH", path);
    env.set("AWS_VAULT_PROMPT", "ykman");
    env.write_config(
        "[profile base]\nregion = us-east-1\nmfa_serial = arn:aws:iam::123456789012:mfa/alice\n",
    );
    env.run(&["export", "base"]).failure(1);
    assert_clean(&dump, "ykman");
}
