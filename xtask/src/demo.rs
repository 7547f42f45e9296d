//! `cargo xtask demo`: vault's main job, end to end, with no AWS account.
//!
//! moto plays STS and IAM on 127.0.0.1; a user, an access key and a role are created in it;
//! the key goes into a passphrase-protected vault in a temp dir; `vault exec` on a role
//! profile with MFA runs the AWS CLI as that role. moto's request recording shows the STS
//! calls vault made, and a second run shows the cache at work. Everything lives in one temp
//! dir (HOME, config, vault) and moto is stopped by its PID at the end.
//!
//! The processes and the recording are handled by the test rig (`vault_harness`), so the demo
//! runs exactly what the end-to-end tests run.

use std::path::Path;

use vault_harness::{Moto, Run, StsCall, TestEnv};

use crate::{Result, cargo, run as run_cmd, setup};

const PASSPHRASE: &str = "demo passphrase";
const MFA_SERIAL: &str = "arn:aws:iam::123456789012:mfa/demo";
const MFA_CODE: &str = "123456";

pub fn run(root: &Path) -> Result {
    heading("1. Build vault");
    run_cmd(
        cargo()
            .current_dir(root)
            .args(["build", "-p", "vault-exec"]),
    )?;
    let bin = root.join("target/debug/vault");
    if !bin.exists() {
        return Err(format!("{} was not built", bin.display()));
    }

    heading("2. The Python venv with moto, the AWS CLI and boto3");
    let venv = setup::python_venv(root)?;
    println!("using {}", venv.display());

    heading("3. A local STS/IAM emulator (moto_server, recording every request)");
    let mut env = TestEnv::new();
    let moto = Moto::start(&env);
    let moto_pid = moto.pid();
    env.use_moto(&moto);
    println!(
        "moto_server listening on {} (pid {moto_pid})",
        moto.endpoint
    );
    println!(
        "temp dir (HOME, AWS config, vault): {}",
        env.dir.path().display()
    );

    heading("4. An IAM user with an access key, and a role `lab`, in moto");
    let (key_id, secret) = moto.create_access_key(&env, "demo");
    let role_arn = moto.create_role(&env, "lab");
    println!("user demo, access key {}…", &key_id[..8]);
    println!("role {role_arn}");

    heading("5. The AWS config and a passphrase vault");
    env.set("AWS_VAULT_BACKEND", "file");
    env.set("AWS_VAULT_FILE_PASSPHRASE", PASSPHRASE);
    let config = format!(
        "[profile base]\n\
         region = us-east-1\n\
         \n\
         [profile lab]\n\
         source_profile = base\n\
         role_arn = {role_arn}\n\
         mfa_serial = {MFA_SERIAL}\n\
         region = us-east-1\n"
    );
    env.write_config(&config);
    println!("{}:", env.config_path().display());
    print_indented(&config);
    println!(
        "AWS_VAULT_BACKEND=file, AWS_VAULT_FILE_PASSPHRASE=\"{PASSPHRASE}\", \
         AWS_VAULT_FILE_DIR={}, AWS_ENDPOINT_URL={}",
        env.vault_dir().display(),
        moto.endpoint
    );
    let add = env.run_with(
        &[
            ("AWS_ACCESS_KEY_ID", &key_id),
            ("AWS_SECRET_ACCESS_KEY", &secret),
        ],
        &["add", "--env", "base", "--no-add-config"],
    );
    show(
        "AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… vault add --env base --no-add-config",
        &add,
    )?;
    show("vault list", &env.run(&["list"]))?;

    heading("6. The plan vault will follow for `lab`");
    show(
        "vault exec --explain lab",
        &env.run(&["exec", "--explain", "lab"]),
    )?;

    let exec_args = [
        "exec",
        "--mfa-token",
        MFA_CODE,
        "lab",
        "--",
        "aws",
        "sts",
        "get-caller-identity",
    ];
    let exec_line = format!("vault exec --mfa-token {MFA_CODE} lab -- aws sts get-caller-identity");

    heading("7. Run the AWS CLI as the role");
    let first = env.run(&exec_args);
    show(&exec_line, &first)?;
    let arn = assumed_arn(&first.stdout)?;
    println!("=> the AWS CLI ran as {arn}");

    heading("8. The STS calls vault made (from moto's recording)");
    let calls = minting(&moto);
    for call in &calls {
        println!("  {}", describe(call));
    }
    println!("=> GetSessionToken with the MFA code (an 8 h MFA session), then AssumeRole from it");
    // The claim above is checked against moto's recording, not taken on trust.
    let actions: Vec<&str> = calls.iter().map(|c| c.action.as_str()).collect();
    if actions != ["GetSessionToken", "AssumeRole"] {
        return Err(format!(
            "the first run made the STS calls {actions:?}; expected GetSessionToken, AssumeRole"
        ));
    }
    if calls[0].param("SerialNumber") != Some(MFA_SERIAL)
        || calls[0].param("TokenCode") != Some(MFA_CODE)
    {
        return Err("GetSessionToken was not called with the MFA serial and code".to_owned());
    }
    if calls[1].param("RoleArn") != Some(role_arn.as_str()) {
        return Err(format!("AssumeRole was not for {role_arn}"));
    }

    heading("9. Again: the cached session is used");
    let second = env.run(&exec_args);
    show(&exec_line, &second)?;
    assumed_arn(&second.stdout)?;
    let new_calls = minting(&moto).len() - calls.len();
    println!("=> STS calls made by vault this time: {new_calls}");
    show("vault list", &env.run(&["list"]))?;
    if new_calls != 0 {
        return Err(format!(
            "the second run made {new_calls} STS call(s); expected none"
        ));
    }

    heading("10. Clean up");
    drop(moto);
    println!("stopped moto_server (pid {moto_pid})");
    let dir = env.dir.path().to_owned();
    drop(env);
    println!("removed {}", dir.display());
    println!("\nDone: vault minted role credentials with MFA, cached them, and reused them.");
    Ok(())
}

fn heading(text: &str) {
    println!("\n=== {text} ===");
}

fn print_indented(text: &str) {
    for line in text.lines() {
        println!("    {line}");
    }
}

/// Prints a vault run as a terminal would show it; fails when it failed.
fn show(command: &str, run: &Run) -> Result {
    println!("$ {command}");
    print_indented(&run.stdout);
    print_indented(&run.stderr);
    if run.status.success() {
        Ok(())
    } else {
        Err(format!("`{command}` failed ({})", run.status))
    }
}

/// The assumed-role ARN in `aws sts get-caller-identity`'s JSON.
fn assumed_arn(stdout: &str) -> Result<String> {
    let json: serde_json::Value = serde_json::from_str(stdout)
        .map_err(|e| format!("get-caller-identity printed no JSON ({e}): {stdout}"))?;
    let arn = json["Arn"].as_str().unwrap_or_default().to_owned();
    if arn.contains(":assumed-role/lab/") {
        Ok(arn)
    } else {
        Err(format!("expected an assumed-role/lab ARN, got {arn:?}"))
    }
}

/// vault's own STS calls: the AWS CLI's GetCallerIdentity left out.
fn minting(moto: &Moto) -> Vec<StsCall> {
    moto.sts_calls()
        .into_iter()
        .filter(|c| c.action != "GetCallerIdentity")
        .collect()
}

fn describe(call: &StsCall) -> String {
    let mut text = call.action.clone();
    for name in [
        "RoleArn",
        "RoleSessionName",
        "SerialNumber",
        "TokenCode",
        "DurationSeconds",
    ] {
        if let Some(value) = call.param(name) {
            text.push_str(&format!(" {name}={value}"));
        }
    }
    text
}
