//! Prompts without a terminal, as an IDE's credential_process meets them: zenity under Xvfb
//! with the answer typed by xdotool (the real programs), the default choice (a GUI prompt when
//! there is a display and no terminal), and a stand-in `osascript` on PATH (macOS only; the
//! test says so) to show what a helper is given: the question, never a secret.

use std::fs;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vault_harness::{Guard, World};

const CONFIG: &str = "\
[profile base]
region = us-east-1
mfa_serial = arn:aws:iam::123456789012:mfa/alice
";

/// Xvfb on a display nobody uses, stopped by PID when dropped.
struct Display {
    number: u32,
    _server: Guard,
}

impl Display {
    fn start(w: &World) -> Option<Display> {
        for program in ["Xvfb", "xdotool", "zenity"] {
            if !w
                .env
                .require_program(program, if program == "Xvfb" { "xvfb" } else { program })
            {
                return None;
            }
        }
        for number in 90..140 {
            if std::path::Path::new(&format!("/tmp/.X11-unix/X{number}")).exists()
                || std::path::Path::new(&format!("/tmp/.X{number}-lock")).exists()
            {
                continue;
            }
            let child = w
                .env
                .command("Xvfb")
                .args([
                    &format!(":{number}"),
                    "-screen",
                    "0",
                    "800x600x24",
                    "-nolisten",
                    "tcp",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("Xvfb starts");
            let server = Guard::new("Xvfb", child);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if std::path::Path::new(&format!("/tmp/.X11-unix/X{number}")).exists() {
                    return Some(Display {
                        number,
                        _server: server,
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("no Xvfb display came up");
    }

    fn name(&self) -> String {
        format!(":{}", self.number)
    }

    /// Types `text` and Enter into the window titled `vault`, as a person would.
    fn answer(&self, w: &World, text: &str) {
        let display = self.name();
        let xdotool = |args: &[&str]| -> String {
            let out = w
                .env
                .command("xdotool")
                .env("DISPLAY", &display)
                .args(args)
                .output()
                .expect("xdotool runs");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let window = loop {
            let found = xdotool(&["search", "--name", "^vault$"]);
            if let Some(id) = found.lines().next() {
                break id.to_owned();
            }
            assert!(Instant::now() < deadline, "no vault dialog appeared");
            std::thread::sleep(Duration::from_millis(100));
        };
        xdotool(&["windowfocus", "--sync", &window]);
        xdotool(&["type", "--delay", "20", text]);
        xdotool(&["key", "Return"]);
    }
}

fn spawn(w: &World, display: &str, args: &[&str], vars: &[(&str, &str)]) -> Child {
    let mut cmd: Command = w.env.vault(args);
    cmd.env("DISPLAY", display)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.spawn().expect("vault starts")
}

#[test]
fn zenity_asks_for_the_mfa_code_when_there_is_no_terminal() {
    let w = World::new("prompts test", CONFIG);
    let Some(display) = Display::start(&w) else {
        return;
    };
    // No --prompt: no terminal and a display, so the GUI prompt is chosen by itself.
    let child = spawn(
        &w,
        &display.name(),
        &["export", "--format", "json", "base"],
        &[],
    );
    display.answer(&w, "123456");
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = w.minted();
    assert_eq!(calls[0].action, "GetSessionToken");
    assert_eq!(calls[0].param("TokenCode"), Some("123456"));
}

#[test]
fn zenity_asks_for_the_passphrase_which_comes_back_on_its_stdout_only() {
    let mut w = World::new("prompts passphrase", "[profile base]\nregion = us-east-1\n");
    let Some(display) = Display::start(&w) else {
        return;
    };
    w.env.unset("AWS_VAULT_FILE_PASSPHRASE");
    let child = spawn(
        &w,
        &display.name(),
        &[
            "--prompt",
            "zenity",
            "export",
            "--no-session",
            "--format",
            "json",
            "base",
        ],
        &[("AWS_VAULT_UNLOCK_TIMEOUT", "0")],
    );
    display.answer(&w, "prompts passphrase");
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&w.key_id));
}

#[test]
fn a_helper_gets_the_question_never_a_secret() {
    let mut w = World::new("prompts test", CONFIG);
    // A stand-in: osascript exists only on macOS. It records what it was given and answers.
    let bin = w.path("bin");
    fs::create_dir_all(&bin).unwrap();
    let seen = w.path("osascript-seen");
    let script = bin.join("osascript");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\nenv >> '{}'\necho 654321\n",
            seen.display(),
            seen.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = w.env.get("PATH").cloned().unwrap_or_default();
    let mut dirs = vec![bin];
    dirs.extend(std::env::split_paths(&path));
    w.env.set("PATH", std::env::join_paths(dirs).unwrap());
    w.env
        .run(&[
            "--prompt",
            "osascript",
            "export",
            "--format",
            "json",
            "base",
        ])
        .success();
    let recorded = fs::read_to_string(&seen).unwrap();
    assert!(
        recorded.contains("MFA code for arn:aws:iam::123456789012:mfa/alice"),
        "{recorded}"
    );
    assert!(
        !recorded.contains("AWS_VAULT_FILE_PASSPHRASE"),
        "the helper saw the passphrase"
    );
    assert!(!recorded.contains("prompts test"));
    assert_eq!(w.minted()[0].param("TokenCode"), Some("654321"));

    // No terminal, no display, no --prompt: what to do instead.
    w.env.unset("DISPLAY");
    w.run(&["clear"]).success();
    w.run(&["export", "--format", "json", "base"])
        .failure(1)
        .stderr_has("no terminal to ask on and no GUI prompt")
        .stderr_has("--prompt");
    w.run(&["--prompt", "nope", "list"])
        .failure(2)
        .stderr_has("unknown prompt");
}

#[test]
fn a_long_server_job_is_asked_for_the_next_code_before_the_mfa_session_ends() {
    let w = World::new(
        "prompts ahead",
        "[profile base]\nregion = us-east-1\n\n[profile lab]\nsource_profile = base\n\
         role_arn = arn:aws:iam::123456789012:role/lab\n\
         mfa_serial = arn:aws:iam::123456789012:mfa/alice\nregion = us-east-1\n",
    );
    let Some(display) = Display::start(&w) else {
        return;
    };
    let stop = w.path("stop");
    let script = format!("while [ ! -e '{}' ]; do sleep 0.1; done", stop.display());
    // However the test ends, the stop file ends the child, and with it vault.
    let stopper = TouchOnDrop(stop);
    // A 15-minute MFA session (STS's shortest) and "ask 14m50s ahead": the question comes
    // about ten seconds in, through the GUI prompt, while the server keeps serving.
    let child = spawn(
        &w,
        &display.name(),
        &[
            "exec", "--server", "-t", "123456", "lab", "--", "sh", "-c", &script,
        ],
        &[
            ("AWS_CHAINED_SESSION_TOKEN_TTL", "15m"),
            ("AWS_VAULT_MFA_ASK_AHEAD", "14m50s"),
        ],
    );
    display.answer(&w, "654321");
    vault_harness::wait_for(Duration::from_secs(30), "a second GetSessionToken", || {
        w.moto.count("GetSessionToken") == 2
    });
    drop(stopper);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("asking for the next MFA code of lab ahead of time"),
        "{stderr}"
    );
    assert!(
        stderr.contains("renewed the MFA session of lab ahead of time"),
        "{stderr}"
    );
    let sessions: Vec<_> = w
        .minted()
        .into_iter()
        .filter(|c| c.action == "GetSessionToken")
        .collect();
    assert_eq!(sessions[0].param("TokenCode"), Some("123456"));
    assert_eq!(sessions[1].param("TokenCode"), Some("654321"));
    assert_eq!(sessions[1].param("DurationSeconds"), Some("900"));
    // Only the up-front AssumeRole: the role's session did not need renewing yet.
    assert_eq!(w.moto.count("AssumeRole"), 1);
}

/// Creates its file when dropped.
struct TouchOnDrop(std::path::PathBuf);

impl Drop for TouchOnDrop {
    fn drop(&mut self) {
        let _ = fs::write(&self.0, "");
    }
}
