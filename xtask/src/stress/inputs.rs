//! Scenarios 6 and 7: a full disk, and the catalogue of bad inputs. "Bad input changes
//! nothing": every case must exit non-zero and leave the store and the config byte for byte
//! as they were; a full disk must still hand out what STS gave, with a warning.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use vault_harness::{SmallDisk, TestEnv};

use super::{Ctx, Rng, Row, Section, fake_key, first_line, role_config, temp_files};
use crate::{Result, setup};

pub(super) fn full_disk(ctx: &Ctx<'_>, _rng: &mut Rng) -> Result<Section> {
    let mut s = Section::new(6, "");
    let skipped = |why: &str| {
        let mut s = Section::new(6, "");
        s.md = format!("Skipped: {why}.\n");
        s.rows = vec![Row::info(6, "full disk", format!("skipped: {why}"))];
        s.json = json!({ "skipped": why });
        s
    };
    if !setup::is_root() {
        return Ok(skipped("not root"));
    }
    let mut env = ctx.file_env(true);
    let Some(disk) = SmallDisk::mount(env.dir.path().join("small"))
        .ok()
        .flatten()
    else {
        return Ok(skipped("cannot mount a tmpfs here"));
    };
    let vault_dir = disk.dir().join("vault");
    env.set("AWS_VAULT_FILE_DIR", &vault_dir);
    let (key, role_arn) = ctx.moto_identity("stress-disk");
    env.write_config(&role_config(&role_arn));
    let _unlocked = ctx.seed(&env, &key)?;
    // A disk left with room fails the figures below (no cache warning), so no error here.
    let _ = disk.fill();
    let before = env.vault_files();

    let mut handed_out = 0;
    let mut warned = 0;
    let mut lines = Vec::new();
    for profile in ["base", "role"] {
        let run = ctx.run(&env, &["export", "--format", "json", profile], &[]);
        let json: Value = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
        if run.status.success() && json["SessionToken"].as_str().is_some_and(|t| !t.is_empty()) {
            handed_out += 1;
        }
        if run.stderr.contains("could not cache the session") {
            warned += 1;
        }
        lines.push(format!("{profile}: {}", first_line(&run.stderr)));
    }
    let after_exports = env.vault_files();
    // A command that must write fails, and says so, without touching the store.
    let write = ctx.run(
        &env,
        &["add", "--env", "--no-add-config", "other"],
        &[
            ("AWS_ACCESS_KEY_ID", &fake_key(1).0),
            ("AWS_SECRET_ACCESS_KEY", &fake_key(1).1),
        ],
    );
    let after_write = env.vault_files();
    let temps = temp_files(&[vault_dir]);
    drop(_unlocked);
    drop(disk);

    s.md = format!(
        "A 512 KiB tmpfs (`mount -t tmpfs -o size=512k`) holds the vault; `base`'s key (moto) \
         is stored, then a file takes every free byte. Cold `vault export --format json` of \
         `base` (GetSessionToken) and `role` (AssumeRole) must hand out credentials and warn \
         that the session could not be cached; the vault's files must stay byte-identical; a \
         `vault add` must fail saying where the space ran out, changing nothing.\n\n\
         Warnings: {}. The add: exit {}, \"{}\".\n",
        lines.join("; "),
        write.code(),
        first_line(&write.stderr)
    );
    let identical = before == after_exports && before == after_write;
    s.rows = vec![
        Row::check(
            6,
            "cold exports handing out credentials",
            format!("{handed_out} of 2"),
            "2 of 2",
            handed_out == 2,
        ),
        Row::check(
            6,
            "… with the cache warning",
            format!("{warned} of 2"),
            "2 of 2",
            warned == 2,
        ),
        Row::check(
            6,
            "store byte-identical (exports, refused add)",
            if identical { "yes" } else { "no" }.to_owned(),
            "yes",
            identical,
        ),
        Row::check(
            6,
            "add on the full disk refused with the reason",
            format!("exit {}", write.code()),
            "exit 1, \"no space left on device\"",
            write.code() == 1 && write.stderr.contains("no space left on device"),
        ),
        Row::zero(6, "temp files left", temps),
    ];
    s.json = json!({
        "handed_out": handed_out, "warned": warned, "identical": identical,
        "messages": lines, "add_exit": write.code(), "add_message": first_line(&write.stderr),
        "temps": temps,
    });
    Ok(s)
}

/// One bad input: how to damage the world first (if at all), the arguments, extra variables.
struct Case {
    name: &'static str,
    prepare: fn(&TestEnv),
    args: fn(&TestEnv) -> Vec<String>,
    vars: &'static [(&'static str, &'static str)],
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

fn add_other(_: &TestEnv) -> Vec<String> {
    strings(&["add", "--env", "other"])
}

fn nothing(_: &TestEnv) {}

fn flip_a_byte(env: &TestEnv) {
    let path = env.vault_dir().join("credentials.json");
    if let Ok(mut bytes) = fs::read(&path) {
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        let _ = fs::write(&path, bytes);
    }
}

fn unparsable_config(env: &TestEnv) {
    let mut text = fs::read_to_string(env.config_path()).unwrap_or_default();
    text.push_str("this is not a setting\n");
    env.write_config(&text);
}

fn shared_dir(env: &TestEnv) -> PathBuf {
    env.dir.path().join("shared")
}

fn make_shared_dir(env: &TestEnv) {
    let dir = shared_dir(env);
    let _ = fs::create_dir_all(&dir);
    let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o777));
}

/// Cases that fail today because of a defect in vault, with what goes wrong. Reported as
/// KNOWN DEFECT and not counted; a listed case that passes fails the run (remove it here).
const KNOWN_DEFECTS: &[(&str, &str)] = &[];

const CASES: &[Case] = &[
    Case {
        name: "profile name `a;b`",
        prepare: nothing,
        args: |_| strings(&["add", "--env", "a;b"]),
        vars: &[],
    },
    Case {
        name: "profile name `[x`",
        prepare: nothing,
        args: |_| strings(&["add", "--env", "[x"]),
        vars: &[],
    },
    Case {
        name: "a 10 kB profile name",
        prepare: nothing,
        args: |_| vec!["add".into(), "--env".into(), "n".repeat(10_000)],
        vars: &[],
    },
    Case {
        name: "damaged credentials.json (a flipped byte): add",
        prepare: flip_a_byte,
        args: add_other,
        vars: &[],
    },
    Case {
        name: "damaged credentials.json: export --no-session",
        prepare: flip_a_byte,
        args: |_| strings(&["export", "--no-session", "base"]),
        vars: &[],
    },
    Case {
        name: "wrong passphrase: add",
        prepare: nothing,
        args: add_other,
        vars: &[("AWS_VAULT_FILE_PASSPHRASE", "not the passphrase")],
    },
    Case {
        name: "wrong passphrase: export",
        prepare: nothing,
        args: |_| strings(&["export", "--no-session", "base"]),
        vars: &[("AWS_VAULT_FILE_PASSPHRASE", "not the passphrase")],
    },
    Case {
        name: "empty AWS_VAULT_FILE_PASSPHRASE: add",
        prepare: nothing,
        args: add_other,
        vars: &[("AWS_VAULT_FILE_PASSPHRASE", "")],
    },
    Case {
        name: "bad --duration (`5x`)",
        prepare: nothing,
        args: |_| strings(&["export", "--duration", "5x", "base"]),
        vars: &[],
    },
    Case {
        name: "bad -t code (`12345`)",
        prepare: nothing,
        args: |_| strings(&["export", "-t", "12345", "base"]),
        vars: &[],
    },
    Case {
        name: "role_arn with a NUL",
        prepare: nothing,
        args: |_| strings(&["export", "nul"]),
        vars: &[],
    },
    Case {
        name: "source_profile and credential_source both",
        prepare: nothing,
        args: |_| strings(&["export", "both"]),
        vars: &[],
    },
    Case {
        name: "a config line that does not parse: add",
        prepare: unparsable_config,
        args: add_other,
        vars: &[],
    },
    Case {
        name: "a shared 0777 --file-dir: add",
        prepare: make_shared_dir,
        args: |env| {
            vec![
                "--file-dir".into(),
                shared_dir(env).display().to_string(),
                "add".into(),
                "--env".into(),
                "base".into(),
            ]
        },
        vars: &[],
    },
    Case {
        name: "re-add of a stored profile without --force (no terminal)",
        prepare: nothing,
        args: |_| strings(&["add", "--env", "base"]),
        vars: &[],
    },
    Case {
        name: "unknown profile",
        prepare: nothing,
        args: |_| strings(&["export", "nope"]),
        vars: &[],
    },
];

/// Everything a case may not change: the vault's files, the config, the shared dir's mode
/// and how many entries it has.
#[derive(PartialEq)]
struct Snapshot {
    vault: Vec<(PathBuf, Vec<u8>)>,
    config: Vec<u8>,
    shared: Option<(u32, usize)>,
}

fn snapshot(env: &TestEnv) -> Snapshot {
    let shared = shared_dir(env);
    let shared = fs::metadata(&shared).ok().map(|m| {
        (
            m.permissions().mode() & 0o7777,
            fs::read_dir(&shared).map(|d| d.count()).unwrap_or(0),
        )
    });
    Snapshot {
        vault: env.vault_files(),
        config: fs::read(env.config_path()).unwrap_or_default(),
        shared,
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .map_err(|e| format!("cp: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cp -a {} {} failed", from.display(), to.display()))
    }
}

pub(super) fn catalogue(ctx: &Ctx<'_>, _rng: &mut Rng) -> Result<Section> {
    // One vault made once (one scrypt), copied into a fresh world per case.
    let template = ctx.file_env(false);
    let config = "[profile base]\nregion = us-east-1\n\n\
         [profile nul]\nsource_profile = base\nrole_arn = arn:aws:iam::123456789012:role/n\u{0}x\n\n\
         [profile both]\nsource_profile = base\ncredential_source = Environment\n\
         role_arn = arn:aws:iam::123456789012:role/b\n";
    template.write_config(config);
    let (id, secret) = fake_key(0);
    ctx.ok(
        &template,
        &["add", "--env", "--no-add-config", "base"],
        &[
            ("AWS_ACCESS_KEY_ID", &id),
            ("AWS_SECRET_ACCESS_KEY", &secret),
        ],
    )?;

    let mut s = Section::new(7, "");
    s.md = String::from(
        "Each bad input runs in a fresh copy of one passphrase vault (locked: `base`'s key \
         stored) and a config with `base`, `nul` (a role_arn holding a NUL) and `both` \
         (source_profile and credential_source), with `AWS_ACCESS_KEY_ID` / \
         `AWS_SECRET_ACCESS_KEY` set for the `add`s; nothing listens at the STS endpoint. \
         Every case must exit non-zero and leave the vault's files, the config (and the shared \
         dir's mode and contents) byte-identical.\n\n\
         | case | exit | first line of the message | unchanged |\n|---|---:|---|---|\n",
    );
    let mut records = Vec::new();
    let (mut changed, mut succeeded) = (0, 0);
    for case in CASES {
        let env = ctx.file_env(false);
        copy_dir(&template.vault_dir(), &env.vault_dir())?;
        env.write_config(config);
        (case.prepare)(&env);
        let before = snapshot(&env);
        let args = (case.args)(&env);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut vars = vec![
            ("AWS_ACCESS_KEY_ID", id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", secret.as_str()),
        ];
        vars.extend_from_slice(case.vars);
        let run = ctx.run(&env, &args, &vars);
        let unchanged = snapshot(&env) == before;
        let message = first_line(&run.stderr).replace('|', "\\|");
        let defect = KNOWN_DEFECTS
            .iter()
            .find(|(name, _)| *name == case.name)
            .map(|(_, what)| *what);
        if defect.is_none() {
            changed += usize::from(!unchanged);
            succeeded += usize::from(run.status.success());
        }
        s.md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            case.name,
            run.code(),
            message,
            if unchanged { "yes" } else { "**no**" }
        ));
        s.rows.push(
            Row::check(
                7,
                case.name,
                format!(
                    "exit {}, {}: {}",
                    run.code(),
                    if unchanged { "unchanged" } else { "CHANGED" },
                    message.chars().take(90).collect::<String>()
                ),
                "≠ 0, unchanged",
                unchanged && !run.status.success(),
            )
            .known_defect(defect),
        );
        records.push(json!({
            "case": case.name, "exit": run.code(), "message": first_line(&run.stderr),
            "unchanged": unchanged, "known_defect": defect,
        }));
    }
    s.rows.push(Row::zero(
        7,
        "bad inputs that changed a file (known defects aside)",
        changed,
    ));
    s.rows.push(Row::zero(
        7,
        "bad inputs that exited 0 (known defects aside)",
        succeeded,
    ));
    s.json = json!({ "cases": records });
    Ok(s)
}
