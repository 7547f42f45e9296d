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
        Display::start_for(w, "zenity")
    }

    /// Xvfb for `dialog` (zenity or kdialog), when it and the rig are installed.
    fn start_for(w: &World, dialog: &str) -> Option<Display> {
        for program in ["Xvfb", "xdotool", dialog] {
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
            // zenity titles its window `vault`; kdialog adds its own name.
            let found = xdotool(&["search", "--name", "^vault( — KDialog)?$"]);
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

/// `vault ARGS` on `display`, its dialog answered with `answer`: what it printed on stdout
/// (it must succeed).
fn answered(
    w: &World,
    display: &Display,
    args: &[&str],
    vars: &[(&str, &str)],
    answer: &str,
) -> String {
    let child = spawn(w, &display.name(), args, vars);
    display.answer(w, answer);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains(answer), "the answer shows on stderr");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `export --no-session` with `prompt` asking for the passphrase (nothing in the
/// environment, nothing kept): the stored key comes out.
fn passphrase_through(w: &mut World, display: &Display, prompt: &str) {
    w.env.unset("AWS_VAULT_FILE_PASSPHRASE");
    let args = [
        "--prompt",
        prompt,
        "export",
        "--no-session",
        "--format",
        "json",
        "base",
    ];
    let passphrase = w.passphrase.clone();
    let stdout = answered(
        w,
        display,
        &args,
        &[("AWS_VAULT_UNLOCK_TIMEOUT", "0")],
        &passphrase,
    );
    assert!(stdout.contains(&w.key_id), "{prompt}");
}

#[test]
fn zenity_asks_for_the_mfa_code_when_there_is_no_terminal() {
    let w = World::new("prompts test", CONFIG);
    let Some(display) = Display::start(&w) else {
        return;
    };
    // No --prompt: no terminal and a display, so the GUI prompt is chosen by itself.
    answered(
        &w,
        &display,
        &["export", "--format", "json", "base"],
        &[],
        "123456",
    );
    let calls = w.minted();
    assert_eq!(calls[0].action, "GetSessionToken");
    assert_eq!(calls[0].param("TokenCode"), Some("123456"));
}

#[test]
fn kdialog_asks_for_the_mfa_code_and_the_passphrase() {
    let mut w = World::new("prompts kdialog", CONFIG);
    let Some(display) = Display::start_for(&w, "kdialog") else {
        return;
    };
    answered(
        &w,
        &display,
        &["--prompt", "kdialog", "export", "--format", "json", "base"],
        &[],
        "246810",
    );
    assert_eq!(w.minted()[0].param("TokenCode"), Some("246810"));
    passphrase_through(&mut w, &display, "kdialog");
}

#[test]
fn zenity_asks_for_the_passphrase_which_comes_back_on_its_stdout_only() {
    let mut w = World::new("prompts passphrase", "[profile base]\nregion = us-east-1\n");
    let Some(display) = Display::start(&w) else {
        return;
    };
    passphrase_through(&mut w, &display, "zenity");
}

#[test]
fn a_helper_gets_the_question_never_a_secret() {
    let mut w = World::new("prompts test", CONFIG);
    // Stand-ins: osascript exists only on macOS, and wincredui's PowerShell only on Windows
    // here. Each records what it was given and answers.
    let bin = w.path("bin");
    fs::create_dir_all(&bin).unwrap();
    let path = w.env.get("PATH").cloned().unwrap_or_default();
    let mut dirs = vec![bin.clone()];
    dirs.extend(std::env::split_paths(&path));
    w.env.set("PATH", std::env::join_paths(dirs).unwrap());
    for (prompt, program, code) in [
        ("osascript", "osascript", "654321"),
        ("wincredui", "powershell", "135791"),
    ] {
        let seen = w.path(&format!("{program}-seen"));
        let script = bin.join(program);
        fs::write(
            &script,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\nenv >> '{}'\necho {code}\n",
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
        w.run(&["clear"]).success();
        w.env
            .run(&["--prompt", prompt, "export", "--format", "json", "base"])
            .success();
        let recorded = fs::read_to_string(&seen).unwrap();
        assert!(
            recorded.contains("MFA code for arn:aws:iam::123456789012:mfa/alice"),
            "{prompt}: {recorded}"
        );
        assert!(
            !recorded.contains("AWS_VAULT_FILE_PASSPHRASE"),
            "{prompt}: the helper saw the passphrase"
        );
        assert!(!recorded.contains("prompts test"), "{prompt}");
        let minted = w.minted();
        assert_eq!(
            minted.last().unwrap().param("TokenCode"),
            Some(code),
            "{prompt}"
        );
    }

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
