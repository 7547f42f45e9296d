//! Hostile values through every `vault export` format into the program that reads it: bash,
//! zsh and fish evaluate what they are given, so a value that leaves its quotes runs code
//! (what `vault use` does with the output). The values come in through a credential_process
//! (its session token) and the config file (the region), as an attacker with either would
//! send them. No STS is needed: the credential_process answer is the credentials.
//!
//! PowerShell cannot be installed here (Debian does not package it): its output is checked
//! byte for byte against the language specification's single-quoted string (§2.3.5.2:
//! inside `'…'` only the single-quote characters U+0027 and U+2018–U+201B are special, and two
//! of them stand for one).

use std::fs;
use std::path::Path;

use vault_harness::TestEnv;

/// Printable values that mean something to one shell or another; each must come back
/// unchanged and run nothing.
const HOSTILE: &[&str] = &[
    "'",
    "\"",
    "\\",
    "\\'",
    "a'b",
    "'\\''",
    "$(touch @PWNED@)",
    "`touch @PWNED@`",
    "; touch @PWNED@",
    "\\'; touch @PWNED@; echo \\",
    "'; touch @PWNED@; echo '",
    "$HOME",
    "${HOME}",
    "$env:PATH",
    "%PATH%",
    "!!",
    "*",
    "#comment",
    " spaced  out ",
    "{a,b}",
    "(x)",
    "a|b&c",
    "~",
    "été ünï 🦀",
];

/// PowerShell's other single quotes: safe in every other format, refused for PowerShell.
const TYPOGRAPHIC_QUOTES: &[&str] = &["\u{2018}", "\u{2019}", "\u{201A}", "\u{201B}", "a\u{2019}b"];

/// Control characters: a line break adds a line (`env`: a new variable such as LD_PRELOAD),
/// NUL ends a C string, ESC drives the terminal. Refused by every format but JSON, which
/// escapes them.
const CONTROL: &[&str] = &[
    "tok\nLD_PRELOAD=/tmp/evil.so",
    "tok\r\nX=1",
    "tok\u{0}x",
    "tok\u{1b}[2J",
    "tok\tx",
    "tok\u{85}x",
    "tok\u{7f}",
];

const FORMATS: &[&str] = &["env", "export-env", "json", "ini", "fish", "powershell"];

struct Rig {
    env: TestEnv,
}

impl Rig {
    fn new() -> Rig {
        let env = TestEnv::new();
        let script = env.dir.path().join("cp.sh");
        fs::write(
            &script,
            format!(
                "#!/bin/sh\ncat {}\n",
                env.dir.path().join("answer.json").display()
            ),
        )
        .unwrap();
        make_executable(&script);
        env.write_config(&format!(
            "[profile p]\ncredential_process = {}\nregion = us-east-1\n",
            script.display()
        ));
        Rig { env }
    }

    fn pwned(&self) -> std::path::PathBuf {
        self.env.dir.path().join("PWNED")
    }

    /// `value` with the marker file's path in place of `@PWNED@`.
    fn armed(&self, value: &str) -> String {
        value.replace("@PWNED@", &self.pwned().display().to_string())
    }

    /// The credential_process answers with `token` as its session token.
    fn answer_token(&self, token: &str) {
        let json = serde_json::json!({
            "Version": 1,
            "AccessKeyId": "ASIAIOSFODNN7OUTPUT1",
            "SecretAccessKey": "outputsecretoutputsecretoutputsecret0000",
            "SessionToken": token,
            "Expiration": "2999-01-01T00:00:00Z",
        });
        fs::write(self.env.dir.path().join("answer.json"), json.to_string()).unwrap();
    }

    fn export(&self, format: &str) -> vault_harness::Run {
        self.env.run(&["export", "p", "--format", format])
    }

    /// Runs `script` in `shell` with the export's output in a file `out` beside it; what the
    /// script prints on stdout.
    fn in_shell(&self, shell: &str, output: &str, script: &str) -> String {
        let file = self.env.dir.path().join("out");
        fs::write(&file, output).unwrap();
        let mut cmd = self.env.command(shell);
        cmd.arg("-c")
            .arg(script.replace("@OUT@", &file.display().to_string()));
        let run = self.env.output(&mut cmd);
        run.success();
        run.stdout.clone()
    }
}

#[test]
fn hostile_tokens_come_back_unchanged_and_run_nothing_in_every_shell() {
    let rig = Rig::new();
    let shells: Vec<&str> = ["bash", "zsh", "fish"]
        .into_iter()
        .filter(|s| rig.env.require_program(s, s))
        .collect();
    for raw in HOSTILE.iter().chain(TYPOGRAPHIC_QUOTES) {
        let value = rig.armed(raw);
        rig.answer_token(&value);
        for shell in &shells {
            let (format, script) = match *shell {
                "fish" => ("fish", "source @OUT@; printf %s \"$AWS_SESSION_TOKEN\""),
                _ => (
                    "export-env",
                    "eval \"$(cat @OUT@)\"; printf %s \"$AWS_SESSION_TOKEN\"",
                ),
            };
            let run = rig.export(format);
            run.success();
            let got = rig.in_shell(shell, &run.stdout, script);
            assert_eq!(got, value, "{shell} read back another value for {raw:?}");
            assert!(!rig.pwned().exists(), "{shell} ran code from {raw:?}");
        }
        // env: one line a variable, the value as given.
        let run = rig.export("env");
        run.success();
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert!(
            lines.iter().all(|l| l.starts_with("AWS_")),
            "{raw:?}: {lines:?}"
        );
        assert!(lines.contains(&format!("AWS_SESSION_TOKEN={value}").as_str()));
        // JSON: the value as given.
        let run = rig.export("json");
        run.success();
        let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(json["SessionToken"], value.as_str());
    }
}

#[test]
fn powershell_output_follows_the_single_quoted_string_grammar() {
    let rig = Rig::new();
    for raw in HOSTILE {
        let value = rig.armed(raw);
        rig.answer_token(&value);
        let run = rig.export("powershell");
        run.success();
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with("$env:AWS_SESSION_TOKEN = "))
            .expect("the token's line");
        let literal = &line["$env:AWS_SESSION_TOKEN = ".len()..];
        assert_eq!(
            powershell_single_quoted(literal).as_deref(),
            Some(value.as_str()),
            "{raw:?}: {literal}"
        );
    }
    for raw in TYPOGRAPHIC_QUOTES {
        rig.answer_token(raw);
        let run = rig.export("powershell");
        run.failure(1)
            .stderr_has("AWS_SESSION_TOKEN holds the character U+201");
        assert_eq!(run.stdout, "", "nothing printed");
    }
}

#[test]
fn control_characters_are_refused_by_every_format_that_cannot_carry_them() {
    let rig = Rig::new();
    for raw in CONTROL {
        rig.answer_token(raw);
        for format in FORMATS {
            let run = rig.export(format);
            if *format == "json" {
                run.success();
                let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
                assert_eq!(json["SessionToken"], *raw);
                continue;
            }
            let code = raw.chars().find(|c| c.is_control()).unwrap() as u32;
            run.failure(1)
                .stderr_has(&format!("U+{code:04X}"))
                .stderr_has("nothing was printed");
            assert_eq!(run.stdout, "", "{format} printed something for {raw:?}");
            // The value is never shown: it may be a secret.
            assert!(!run.stderr.contains("LD_PRELOAD"), "{}", run.stderr);
        }
    }
}

/// A region from the config file is as hostile as a token: `vault use` in fish sourced it.
#[test]
fn a_hostile_region_in_the_config_runs_nothing() {
    let rig = Rig::new();
    rig.answer_token("token");
    let script = rig.env.dir.path().join("cp.sh");
    for raw in [
        "eu-west-1\\'; touch @PWNED@; echo \\",
        "eu-west-1'; touch @PWNED@; echo '",
        "$(touch @PWNED@)",
    ] {
        let region = rig.armed(raw);
        rig.env.write_config(&format!(
            "[profile p]\ncredential_process = {}\nregion = {region}\n",
            script.display()
        ));
        for (shell, format, source) in [
            ("bash", "export-env", "eval \"$(cat @OUT@)\""),
            ("zsh", "export-env", "eval \"$(cat @OUT@)\""),
            ("fish", "fish", "source @OUT@"),
        ] {
            if !rig.env.require_program(shell, shell) {
                continue;
            }
            let run = rig.export(format);
            run.success();
            let got = rig.in_shell(
                shell,
                &run.stdout,
                &format!("{source}; printf %s \"$AWS_REGION\""),
            );
            assert_eq!(got, region, "{shell}");
            assert!(
                !rig.pwned().exists(),
                "{shell} ran code from the region {raw:?}"
            );
        }
    }
}

/// PowerShell's verbatim string (`'…'`), per its language specification: the content between
/// an opening and a closing single-quote character, in which two single-quote characters in
/// a row stand for the second. `None` when `literal` is not exactly one such string.
fn powershell_single_quoted(literal: &str) -> Option<String> {
    let is_quote = |c: char| c == '\'' || ('\u{2018}'..='\u{201B}').contains(&c);
    let mut chars = literal.chars().peekable();
    if !chars.next().is_some_and(is_quote) {
        return None;
    }
    let mut value = String::new();
    while let Some(c) = chars.next() {
        if !is_quote(c) {
            value.push(c);
            continue;
        }
        match chars.peek() {
            Some(&next) if is_quote(next) => {
                value.push(next);
                chars.next();
            }
            // The closing quote must end the literal.
            _ => return chars.next().is_none().then_some(value),
        }
    }
    None
}

#[cfg(unix)]
fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}
