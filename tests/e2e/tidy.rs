//! Repository policy checked by an ordinary test ("tidy"): every lint relaxation says why,
//! `unsafe` stays in the files ARCHITECTURE.md lists, the library crates never print, every
//! module starts with a `//!` doc, and no credential-shaped literal sits in non-test code.
//! Beside that: the modules of each crate import each other in layers, never in a circle;
//! only the binary's settings module reads the environment; no code decides on an error's
//! message text; and every dependency a manifest declares is used.
//!
//! It reads the sources as text with a small lexer (comments and literals told apart from
//! code) and the standard library only, so it needs neither the rig nor a parser crate.
//! Test code, where fake keys belong, is `tests/` and everything after a `#[cfg(test)]` line;
//! `xtask` gets its keys from moto at run time, so the key check covers it too. AWS's own
//! documentation examples (`AKIAIOSFODNN7EXAMPLE`, the secret ending `EXAMPLEKEY`) are public
//! placeholders, allowed everywhere: `vault add` quotes one in a hint.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

/// Only these hold print macros back: the binary, the rig and xtask may print.
const NO_PRINT_DIRS: &[&str] = &["crates/vault/", "crates/sts/"];
const PRINT_MACROS: &[&str] = &["print", "println", "eprint", "eprintln", "dbg"];
/// Where the Rust sources are, relative to the workspace root.
const SOURCE_DIRS: &[&str] = &["crates", "tests", "xtask"];
/// Within each of these source trees no module reaches back to one that reaches it: the
/// modules (a top-level file `foo.rs` or folder `foo/`) form a layering, not a tangle.
const LAYERED_SOURCES: &[&str] = &["crates/vault/src", "crates/sts/src", "crates/exec/src"];
/// The binary reads the environment in its settings module only: one place lists every
/// variable vault obeys. The library crates may read `HOME` and the like, so they are not here.
const ENV_RULED: &str = "crates/exec/src/";
const ENV_READERS: &[&str] = &["crates/exec/src/settings.rs", "crates/exec/src/settings/"];
const ENV_READ_FUNCTIONS: &[&str] = &["var", "var_os", "vars", "vars_os"];
/// Dependencies that no source names, kept for their features or their linking:
/// (package directory, dependency, why). Empty for now: every dependency is named somewhere.
const UNNAMED_DEPENDENCIES: &[(&str, &str, &str)] = &[];

#[test]
fn tidy() {
    let root = workspace_root();
    let architecture = fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let unsafe_files = unsafe_list(&architecture);
    assert!(
        !unsafe_files.is_empty(),
        "ARCHITECTURE.md has no \"- Unsafe code\" invariant listing the files allowed `unsafe`"
    );

    let mut problems = Vec::new();
    let mut files_with_unsafe = Vec::new();
    for path in rust_files(&root) {
        let rel = path
            .strip_prefix(&root)
            .expect("under root")
            .to_string_lossy()
            .replace('\\', "/");
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let checked = check_file(&rel, &text, &unsafe_files);
        if checked.has_unsafe {
            files_with_unsafe.push(rel);
        }
        problems.extend(checked.problems);
    }
    for listed in &unsafe_files {
        if !files_with_unsafe.contains(listed) {
            problems.push(format!(
                "ARCHITECTURE.md: `{listed}` is in the \"Unsafe code\" list but has no `unsafe`: \
                 remove it from the list"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} tidy problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The checks fire on what they are meant to catch, and not on look-alikes in comments,
/// strings, test modules or identifiers.
#[test]
fn tidy_checks_catch_what_they_should() {
    // Not AWS's documentation examples, which are allowed; split so the file holds neither.
    let fake_id = ["AKIA", "Q3ZT7WXYB2LMN4PD"].concat();
    let fake_secret = ["h7Kq2/Lm9Zx4+Rt6Vb", "1Nc8Pw3Yd5Fg0Js7Ua2Eo9"].concat();
    let bad = format!(
        "fn main() {{}}\n\
         #[allow(dead_code)]\n\
         fn a() {{ println!(\"x\"); }}\n\
         fn b() {{ unsafe {{}} }}\n\
         const K: &str = \"{fake_id}\";\n\
         const S: &str = \"{fake_secret}\";\n\
         #[cfg_attr(unix, expect(\n    unused,\n))]\n\
         fn c() {{}}\n"
    );
    let checked = check_file("crates/sts/src/x.rs", &bad, &[]);
    let lines: Vec<&str> = checked.problems.iter().map(String::as_str).collect();
    for wanted in [
        "crates/sts/src/x.rs:1: ",
        "crates/sts/src/x.rs:2: ",
        "crates/sts/src/x.rs:3: ",
        "crates/sts/src/x.rs:4: ",
        "crates/sts/src/x.rs:5: ",
        "crates/sts/src/x.rs:6: ",
        "crates/sts/src/x.rs:7: ",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(wanted)),
            "nothing reported at {wanted}; got:\n{}",
            lines.join("\n")
        );
    }
    assert_eq!(lines.len(), 7, "{}", lines.join("\n"));
    assert!(checked.has_unsafe);

    let good = format!(
        "//! Doc.\n\
         // Why: the reason.\n\
         #[cfg(unix)]\n\
         #[allow(dead_code)]\n\
         #[expect(unused, reason = \"why\")]\n\
         fn a() {{ let unsafe_code = 'a'; let s = \"println!(unsafe)\"; /* dbg!(x) */ }}\n\
         fn b<'a>(x: &'a str) -> &'a str {{ x }} // unsafe println!\n\
         const R: &str = r#\"unsafe \"quoted\" {fake_id}\"#;\n\
         #[cfg(test)]\n\
         mod tests {{ const K: &str = \"{fake_id}\"; const S: &str = \"{fake_secret}\"; }}\n"
    );
    let checked = check_file("crates/vault/src/y.rs", &good, &[]);
    let examples = "const E: [&str; 2] = [\"AKIAIOSFODNN7EXAMPLE\", \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"];";
    assert!(
        check_file("xtask/src/z.rs", &format!("//! Doc.\n{examples}\n"), &[])
            .problems
            .is_empty()
    );
    // The raw string above is non-test code and holds a key id: exactly that is reported.
    assert_eq!(checked.problems.len(), 1, "{:?}", checked.problems);
    assert!(checked.problems[0].starts_with("crates/vault/src/y.rs:8: "));
    assert!(!checked.has_unsafe);
}

#[test]
fn no_import_circle() {
    let root = workspace_root();
    let mut problems = Vec::new();
    for src in LAYERED_SOURCES {
        let files: Vec<(String, String)> = rust_files_in(&root.join(src))
            .iter()
            .map(|path| (relative(&root, path), read(path)))
            .collect();
        problems.extend(import_circles(src, &module_edges(src, &files)));
    }
    assert!(
        problems.is_empty(),
        "{} import circle(s); each module should only use modules below it, so move what both \
         need down into one of them or into a new module:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn only_settings_reads_the_environment() {
    let root = workspace_root();
    let mut problems = Vec::new();
    for file in parsed_files(&root, &root.join(ENV_RULED)) {
        if ENV_READERS.iter().any(|r| file.rel.starts_with(r)) {
            continue;
        }
        for line in env_reads(&file) {
            problems.push(format!(
                "{}:{}: the environment read outside the settings module: add the variable \
                 to `Settings` (crates/exec/src/settings.rs) and take it from there",
                file.rel,
                line + 1
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} environment read(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn no_matching_on_error_text() {
    let root = workspace_root();
    let mut problems = Vec::new();
    for file in parsed_files(&root, &root.join("crates")) {
        if file.rel.split('/').nth(2) != Some("src") {
            continue;
        }
        for line in error_text_matches(&file) {
            problems.push(format!(
                "{}:{}: `.to_string().contains(` decides on a message's wording, which changes \
                 freely: match the error's variant or kind instead",
                file.rel,
                line + 1
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} match(es) on error text:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn every_dependency_is_used() {
    let root = workspace_root();
    let mut problems = Vec::new();
    let mut listed_unnamed: Vec<(&str, &str)> = Vec::new();
    for package in workspace_members(&read(&root.join("Cargo.toml"))) {
        let manifest_rel = format!("{package}/Cargo.toml");
        let manifest = read(&root.join(&manifest_rel));
        let code: Vec<String> = rust_files_in(&root.join(&package))
            .iter()
            .map(|path| Source::lex(&read(path)).code.join("\n"))
            .collect();
        for (line, dependency) in manifest_dependencies(&manifest) {
            let ident = dependency.replace('-', "_");
            let named = code.iter().any(|c| names_crate(c, &ident));
            let unnamed = UNNAMED_DEPENDENCIES
                .iter()
                .find(|(p, d, _)| *p == package && *d == dependency);
            if let Some((p, d, _)) = unnamed {
                listed_unnamed.push((p, d));
            }
            if named && unnamed.is_some() {
                problems.push(format!(
                    "{manifest_rel}:{}: `{dependency}` is named in the sources now: take it off \
                     UNNAMED_DEPENDENCIES in tests/e2e/tidy.rs",
                    line + 1
                ));
            } else if !named && unnamed.is_none() {
                problems.push(format!(
                    "{manifest_rel}:{}: `{dependency}` is never used (no `{ident}::`, `use \
                     {ident}` or `#[{ident}...]` in the package's sources): remove it, or if it \
                     is there for its features or its linking, add it with the reason to \
                     UNNAMED_DEPENDENCIES in tests/e2e/tidy.rs",
                    line + 1
                ));
            }
        }
    }
    for (package, dependency, _) in UNNAMED_DEPENDENCIES {
        if !listed_unnamed.contains(&(package, dependency)) {
            problems.push(format!(
                "tests/e2e/tidy.rs: UNNAMED_DEPENDENCIES lists `{dependency}` of `{package}`, \
                 which does not depend on it: remove the entry"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} unused dependenc(ies):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The checks above fire on what they are meant to catch, and not on look-alikes in
/// comments, strings, test code or other modules' names.
#[test]
fn policy_checks_catch_what_they_should() {
    let file = |rel: &str, text: &str| (format!("src/{rel}"), text.to_owned());
    let files = [
        file(
            "lib.rs",
            "//! [`crate::c`]\nmod a;\nmod b;\nmod c;\nmod d;\npub use c::C;\npub use d::{f as g};\n",
        ),
        // a -> b through a group, b -> c through a root re-export, c -> a in an expression.
        file("a.rs", "use crate::{b::B, d};\nuse std::fmt;\n"),
        file(
            "b/mod.rs",
            "mod inner;\nuse self::inner::X;\nfn f() -> crate::C { todo!() }\n",
        ),
        file(
            "b/inner.rs",
            "use super::X;\nuse super::super::g;\nmod m {\n    use super::super::a::Y;\n}\n",
        ),
        file(
            "c.rs",
            "fn f() { let _ = crate::a::f(); }\n\
             // crate::d::f()\n\
             /// [`crate::d`]\n\
             const S: &str = \"crate::d::x\";\n\
             macro_rules! m { () => { $crate::d::f() } }\n\
             #[cfg(test)]\n\
             mod tests { use crate::d::f; }\n\
             #[cfg(test)]\n\
             mod fuzz;\n",
        ),
        file("c/fuzz.rs", "use crate::d::f;\n"),
        file("d.rs", "pub(crate) fn f() {}\n"),
    ];
    let edges = module_edges("src", &files);
    let found: Vec<String> = edges
        .iter()
        .map(|e| format!("{} -> {} ({})", e.from, e.to, e.at))
        .collect();
    assert_eq!(
        found,
        [
            "a -> b (src/a.rs:1)",
            "a -> d (src/a.rs:1)",
            "b -> c (src/b/mod.rs:3)",
            "b -> d (src/b/inner.rs:2)",
            "c -> a (src/c.rs:1)",
        ],
    );
    let circles = import_circles("src", &edges);
    assert_eq!(circles.len(), 1, "{circles:?}");
    assert!(
        circles[0].contains("a -> b (src/a.rs:1) -> c (src/b/mod.rs:3) -> a (src/c.rs:1)\n"),
        "{}",
        circles[0]
    );
    let mut layered = files.clone();
    layered[1].1 = "use crate::d;\n".to_owned();
    assert!(import_circles("src", &module_edges("src", &layered)).is_empty());

    let env = Parsed::new(
        "crates/exec/src/x.rs",
        "use std::env::{self, args};\n\
         fn a() { std::env::var(\"HOME\"); }\n\
         fn b() { env::var_os(\"A\"); let v = env::vars(); }\n\
         use std::env::{var, vars_os as all};\n\
         fn c() { env::set_var(\"A\", \"1\"); env::args(); let env = 1; env!(\"CARGO\"); }\n\
         // env::var(\"A\")\n\
         const S: &str = \"std::env::var\";\n\
         #[cfg(test)]\n\
         fn d() { env::var(\"A\"); }\n",
    );
    assert_eq!(env_reads(&env), [1, 2, 3]);

    let text = Parsed::new(
        "crates/sts/src/x.rs",
        "fn a(e: E) -> bool { e.to_string().contains(\"x\") }\n\
         fn b(e: E) -> bool {\n    e.to_string()\n        .contains(\"x\")\n}\n\
         fn c(e: E) -> bool { e.to_string().starts_with(\"x\") } // .to_string().contains(\n\
         #[cfg(test)]\n\
         mod tests { fn d(e: E) -> bool { e.to_string().contains(\"x\") } }\n",
    );
    assert_eq!(error_text_matches(&text), [0, 2]);

    let manifest = "[package]\nname = \"p\"\n\n[dependencies]\n# a comment = 1\n\
                    serde = { workspace = true, features = [\n    \"derive\",\n] }\n\
                    vault-store.workspace = true\n\
                    [target.'cfg(unix)'.dependencies]\nnix = \"0.31\"\n\
                    [dev-dependencies.tempfile]\nversion = \"3\"\n\
                    [lints]\nworkspace = true\n";
    let deps = manifest_dependencies(manifest);
    assert_eq!(
        deps,
        [
            (5, "serde".to_owned()),
            (8, "vault-store".to_owned()),
            (10, "nix".to_owned()),
            (11, "tempfile".to_owned()),
        ]
    );
    for used in [
        "use serde::Serialize;",
        "let x = ::serde::de::Deserialize;",
        "extern crate serde;",
        "#[serde(rename = \"a\")]",
        "use serde;",
        "use std::{io, serde::x};",
    ] {
        assert!(names_crate(used, "serde"), "{used}");
    }
    for unused in [
        "let serde = 1;",
        "fn my_serde::x()",
        "serdex::y",
        "\"serde::x\"",
    ] {
        let code = Source::lex(unused).code.join("\n");
        assert!(!names_crate(&code, "serde"), "{unused}");
    }
    assert_eq!(
        workspace_members(
            "[workspace]\nresolver = \"3\"\nmembers = [\"crates/a\", \"b\",\n  \"c\"]\nexclude = [\"d\"]\n"
        ),
        ["crates/a", "b", "c"]
    );
}

/// What [`check_file`] found in one file.
struct Checked {
    problems: Vec<String>,
    has_unsafe: bool,
}

fn check_file(rel: &str, text: &str, unsafe_files: &[String]) -> Checked {
    let source = Source::lex(text);
    let original: Vec<&str> = text.lines().collect();
    let mut problems = Vec::new();
    let mut report = |line: usize, what: String| problems.push(format!("{rel}:{line}: {what}"));

    if !text.starts_with("//!") {
        report(
            1,
            "the module has no `//!` doc: start the file with `//!` lines saying why it exists"
                .to_owned(),
        );
    }

    for (i, attr) in attributes(&source.code) {
        if has_word_call(&attr, "allow") || has_word_call(&attr, "expect") {
            let reasoned = attr.replace(char::is_whitespace, "").contains("reason=");
            if !reasoned && !comment_above(&original, i) {
                report(
                    i + 1,
                    "a lint relaxation without its reason: add `reason = \"...\"` or a `//` \
                     comment on the line directly above"
                        .to_owned(),
                );
            }
        }
    }

    let mut has_unsafe = false;
    for (i, line) in source.code.iter().enumerate() {
        if words(line).any(|w| w == "unsafe") {
            has_unsafe = true;
            if !unsafe_files.iter().any(|f| f == rel) {
                report(
                    i + 1,
                    "`unsafe` outside the files ARCHITECTURE.md allows: do without it, or add \
                     this file with its reason to the \"Unsafe code\" invariant"
                        .to_owned(),
                );
            }
        }
    }

    if NO_PRINT_DIRS.iter().any(|d| rel.starts_with(d)) {
        for (i, line) in source.code.iter().enumerate() {
            if let Some(m) = PRINT_MACROS.iter().find(|m| has_word_macro(line, m)) {
                report(
                    i + 1,
                    format!(
                        "`{m}!` in a library crate, which never prints: return the value or \
                         an error, or log with `tracing`"
                    ),
                );
            }
        }
    }

    let test_from = if rel.starts_with("tests/") {
        0
    } else {
        source
            .code
            .iter()
            .position(|l| l.trim() == "#[cfg(test)]")
            .unwrap_or(usize::MAX)
    };
    for (i, literal) in &source.literals {
        if *i >= test_from {
            continue;
        }
        if let Some(what) = credential_shape(literal) {
            report(
                i + 1,
                format!(
                    "a string literal shaped like {what} in non-test code: read it at run \
                     time, or move it into test code"
                ),
            );
        }
    }

    Checked {
        problems,
        has_unsafe,
    }
}

/// The `.rs` files under [`SOURCE_DIRS`], sorted, skipping build output and hidden dirs.
fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs: Vec<PathBuf> = SOURCE_DIRS.iter().map(|d| root.join(d)).collect();
    while let Some(dir) = dirs.pop() {
        let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    dirs.push(path);
                }
            } else if name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The paths in ARCHITECTURE.md's "- Unsafe code" item: its indented `` - `path` `` lines.
fn unsafe_list(architecture: &str) -> Vec<String> {
    architecture
        .lines()
        .skip_while(|l| !l.starts_with("- Unsafe code"))
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .filter_map(|l| l.trim_start().strip_prefix("- `")?.split('`').next())
        .map(str::to_owned)
        .collect()
}

/// Attributes starting a line: (0-based line, the attribute's code up to its closing `]`).
fn attributes(code: &[String]) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (i, line) in code.iter().enumerate() {
        let trimmed = line.trim_start();
        if !(trimmed.starts_with("#[") || trimmed.starts_with("#![")) {
            continue;
        }
        let mut attr = String::new();
        let mut depth = 0i32;
        'lines: for next in &code[i..] {
            for c in next.chars() {
                attr.push(c);
                match c {
                    '[' | '(' => depth += 1,
                    ']' | ')' => {
                        depth -= 1;
                        if depth == 0 {
                            break 'lines;
                        }
                    }
                    _ => {}
                }
            }
            attr.push('\n');
        }
        found.push((i, attr));
    }
    found
}

/// Whether the nearest line above `line` that is not an attribute is a plain `//` comment
/// (doc comments describe the item, not the relaxation).
fn comment_above(lines: &[&str], line: usize) -> bool {
    lines[..line]
        .iter()
        .rev()
        .map(|l| l.trim_start())
        .find(|l| !(l.starts_with("#[") || l.starts_with("#![")))
        .is_some_and(|l| l.starts_with("//") && !l.starts_with("///") && !l.starts_with("//!"))
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The identifiers and keywords of a line of code.
fn words(line: &str) -> impl Iterator<Item = &str> {
    line.split(|c: char| !is_ident(c)).filter(|w| !w.is_empty())
}

/// `name(` as a whole word, as in `allow(...)` inside an attribute.
fn has_word_call(code: &str, name: &str) -> bool {
    follows_word(code, name, '(')
}

/// `name!` as a whole word, a macro call.
fn has_word_macro(code: &str, name: &str) -> bool {
    follows_word(code, name, '!')
}

fn follows_word(code: &str, name: &str, next: char) -> bool {
    code.match_indices(name).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + name.len()..].trim_start().chars().next();
        !before.is_some_and(is_ident) && after == Some(next)
    })
}

/// What a literal looks like, if it holds an AWS access key id (`AKIA`/`ASIA` and 16 more
/// capitals or digits) or a 40-character base64 run mixing capitals, small letters and
/// digits (an AWS secret key's shape; paths, words and hex digests lack one of the three).
/// AWS's documentation examples end in `EXAMPLE` / `EXAMPLEKEY` and pass.
fn credential_shape(literal: &str) -> Option<&'static str> {
    let documented = |run: &str| run.ends_with("EXAMPLE") || run.ends_with("EXAMPLEKEY");
    let key_char = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit();
    let base64_char = |c: char| c.is_ascii_alphanumeric() || c == '/' || c == '+';
    for run in literal.split(|c: char| !key_char(c)) {
        if run.len() == 20
            && (run.starts_with("AKIA") || run.starts_with("ASIA"))
            && !documented(run)
        {
            return Some("an AWS access key id");
        }
    }
    for run in literal.split(|c: char| !base64_char(c)) {
        if run.len() == 40
            && !documented(run)
            && run.contains(|c: char| c.is_ascii_uppercase())
            && run.contains(|c: char| c.is_ascii_lowercase())
            && run.contains(|c: char| c.is_ascii_digit())
        {
            return Some("an AWS secret key");
        }
    }
    None
}

/// A source file split into code and string literals: `code` has one entry per line, with
/// comments and the insides of string and char literals blanked out; `literals` holds each
/// string literal's text with the line it starts on.
struct Source {
    code: Vec<String>,
    literals: Vec<(usize, String)>,
}

impl Source {
    fn lex(text: &str) -> Source {
        let chars: Vec<char> = text.chars().collect();
        let mut code = String::new();
        let mut literals = Vec::new();
        let mut line = 0;
        let mut i = 0;
        // Blanks a char of a comment or literal, keeping line breaks so lines stay put.
        let blank = |c: char, code: &mut String, line: &mut usize| {
            if c == '\n' {
                *line += 1;
                code.push('\n');
            } else {
                code.push(' ');
            }
        };
        while i < chars.len() {
            let c = chars[i];
            let at = |k: usize| chars.get(i + k).copied();
            let after_ident = i > 0 && is_ident(chars[i - 1]);
            if c == '/' && at(1) == Some('/') {
                while i < chars.len() && chars[i] != '\n' {
                    code.push(' ');
                    i += 1;
                }
            } else if c == '/' && at(1) == Some('*') {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        depth += 1;
                        code.push_str("  ");
                        i += 2;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        code.push_str("  ");
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        blank(chars[i], &mut code, &mut line);
                        i += 1;
                    }
                }
            } else if let Some(hashes) = raw_string_start(&chars[i..]).filter(|_| !after_ident) {
                let start_line = line;
                let mut body = String::new();
                // Keep the prefix and opening quote as code, so the literal still reads as one.
                while chars[i] != '"' {
                    code.push(chars[i]);
                    i += 1;
                }
                code.push('"');
                i += 1;
                while i < chars.len() {
                    if chars[i] == '"' && chars[i + 1..].iter().take(hashes).all(|&h| h == '#') {
                        break;
                    }
                    body.push(chars[i]);
                    blank(chars[i], &mut code, &mut line);
                    i += 1;
                }
                literals.push((start_line, body));
                for &close in chars[i..].iter().take(hashes + 1) {
                    code.push(close);
                }
                i += hashes + 1;
            } else if c == '"' {
                let start_line = line;
                let mut body = String::new();
                code.push('"');
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    let escaped = chars[i] == '\\';
                    body.push(chars[i]);
                    blank(chars[i], &mut code, &mut line);
                    i += 1;
                    if escaped && i < chars.len() {
                        body.push(chars[i]);
                        blank(chars[i], &mut code, &mut line);
                        i += 1;
                    }
                }
                literals.push((start_line, body));
                if i < chars.len() {
                    code.push('"');
                    i += 1;
                }
            } else if c == '\'' && (at(1) == Some('\\') || at(2) == Some('\'')) {
                // A char literal; a lone quote (`'a` in `&'a str`) is a lifetime, left as code.
                code.push('\'');
                i += 1;
                if chars.get(i) == Some(&'\\') {
                    // The backslash and the char it escapes, which may be a quote.
                    code.push_str("  ");
                    i += 2;
                }
                while i < chars.len() && chars[i] != '\'' {
                    blank(chars[i], &mut code, &mut line);
                    i += 1;
                }
                if i < chars.len() {
                    code.push('\'');
                    i += 1;
                }
            } else {
                if c == '\n' {
                    line += 1;
                }
                code.push(c);
                i += 1;
            }
        }
        Source {
            code: code.lines().map(str::to_owned).collect(),
            literals,
        }
    }
}

/// If `rest` starts a raw string (`r"`, `r#"`, `br##"`, `cr"`…), how many `#` close it.
fn raw_string_start(rest: &[char]) -> Option<usize> {
    let rest = match rest {
        ['b' | 'c', 'r', tail @ ..] | ['r', tail @ ..] => tail,
        _ => return None,
    };
    let hashes = rest.iter().take_while(|&&c| c == '#').count();
    (rest.get(hashes) == Some(&'"')).then_some(hashes)
}

/// The workspace root, where `Cargo.toml` lists the members.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_owned()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `path` relative to `root`, with `/` separators.
fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .expect("under root")
        .to_string_lossy()
        .replace('\\', "/")
}

/// The `.rs` files under `top`, sorted, skipping build output, hidden dirs and the folders of
/// other packages (those with their own `Cargo.toml`, like tests/sdk-caller).
fn rust_files_in(top: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![top.to_owned()];
    while let Some(dir) = dirs.pop() {
        let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') && !path.join("Cargo.toml").exists() {
                    dirs.push(path);
                }
            } else if name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A source file's code (as [`Source::lex`] leaves it) and which of its lines are test code.
struct Parsed {
    rel: String,
    code: Vec<String>,
    test: Vec<bool>,
}

impl Parsed {
    fn new(rel: &str, text: &str) -> Parsed {
        let code = Source::lex(text).code;
        let test = test_lines(&code);
        Parsed {
            rel: rel.to_owned(),
            code,
            test,
        }
    }
}

/// The `.rs` files under `dir`, parsed, with the files of `#[cfg(test)] mod x;` all test.
fn parsed_files(root: &Path, dir: &Path) -> Vec<Parsed> {
    let mut files: Vec<Parsed> = rust_files_in(dir)
        .iter()
        .map(|path| Parsed::new(&relative(root, path), &read(path)))
        .collect();
    mark_test_only_files(&mut files);
    files
}

/// Which lines are test code: each item under a `#[cfg(test)]` (or `#[cfg(all(test, …))]`)
/// attribute, from the attribute to the item's end, or the whole file for `#![cfg(test)]`.
fn test_lines(code: &[String]) -> Vec<bool> {
    let mut test = vec![false; code.len()];
    for (start, attr) in attributes(code) {
        let compact: String = attr.split_whitespace().collect();
        let whole_file = compact.starts_with("#![cfg(");
        if !(whole_file || compact.starts_with("#[cfg("))
            || !words(&compact).any(|w| w == "test")
            || compact.contains("not(")
        {
            continue;
        }
        let end = if whole_file {
            code.len() - 1
        } else {
            item_end(code, start)
        };
        test[start..=end].fill(true);
    }
    test
}

/// The line an item ends on, from the line of its first attribute: its `;` outside brackets
/// or the `}` closing its body.
fn item_end(code: &[String], start: usize) -> usize {
    let mut depth = 0i32;
    for (i, line) in code.iter().enumerate().skip(start) {
        for c in line.chars() {
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' => depth -= 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return i;
                    }
                }
                ';' if depth == 0 => return i,
                _ => {}
            }
        }
    }
    code.len() - 1
}

/// Marks as test code the whole of each file that a `#[cfg(test)] mod x;` brings in.
fn mark_test_only_files(files: &mut [Parsed]) {
    let mut test_modules = Vec::new();
    for file in files.iter() {
        // Where this file's submodules live: beside a mod.rs or crate root, else in its folder.
        let dir = match file.rel.rsplit_once('/') {
            Some((dir, "mod.rs" | "lib.rs" | "main.rs")) => dir,
            _ => file.rel.trim_end_matches(".rs"),
        };
        for (line, _) in file.code.iter().zip(&file.test).filter(|(_, t)| **t) {
            let Some(declaration) = line.trim().strip_suffix(';') else {
                continue;
            };
            if let [.., "mod", name] = words(declaration).collect::<Vec<_>>()[..] {
                test_modules.push(format!("{dir}/{name}"));
            }
        }
    }
    for file in files.iter_mut() {
        if test_modules
            .iter()
            .any(|m| file.rel == format!("{m}.rs") || file.rel.starts_with(&format!("{m}/")))
        {
            file.test.fill(true);
        }
    }
}

/// The tokens of the non-test lines of some code, each with its 0-based line: identifiers,
/// `::`, and single punctuation characters.
fn tokens<'a>(code: &'a [String], skip: &[bool]) -> Vec<(usize, &'a str)> {
    let mut found = Vec::new();
    for (i, line) in code.iter().enumerate() {
        if skip.get(i).copied().unwrap_or(false) {
            continue;
        }
        let mut rest = line.as_str();
        while let Some(c) = rest.chars().next() {
            let len = if is_ident(c) {
                rest.find(|c| !is_ident(c)).unwrap_or(rest.len())
            } else if rest.starts_with("::") {
                2
            } else {
                c.len_utf8()
            };
            if !c.is_whitespace() {
                found.push((i, &rest[..len]));
            }
            rest = &rest[len..];
        }
    }
    found
}

/// The paths a path or `use` tree starting at `tokens[at]` names, each with the name it binds
/// (`a::{b, c::d as e}` names `a::b`, bound as `b`, and `a::c::d`, bound as `e`; a glob names
/// nothing), added to `found` after `prefix`. Returns where the tree ends.
fn use_tree(
    tokens: &[(usize, &str)],
    mut at: usize,
    prefix: &[String],
    found: &mut Vec<(Vec<String>, String)>,
) -> usize {
    let token = |at: usize| tokens.get(at).map_or("", |t| t.1);
    let mut path = prefix.to_vec();
    loop {
        match token(at) {
            "{" => {
                at += 1;
                loop {
                    match token(at) {
                        "}" => return at + 1,
                        "," => at += 1,
                        _ => {
                            let next = use_tree(tokens, at, &path, found);
                            if next == at {
                                return at;
                            }
                            at = next;
                        }
                    }
                }
            }
            "*" => return at + 1,
            t if t.starts_with(is_ident) => {
                path.push(t.to_owned());
                at += 1;
                if token(at) != "::" {
                    break;
                }
                at += 1;
            }
            _ => break,
        }
    }
    if path.last().is_some_and(|s| s == "self") {
        path.pop();
    }
    if path.len() > prefix.len() {
        let name = if token(at) == "as" {
            at += 2;
            token(at - 1)
        } else {
            path.last().map_or("", String::as_str)
        };
        let name = name.to_owned();
        found.push((path, name));
    }
    at
}

/// The module path a `crate::`, `self::` or `super::` path leads to, from module `here`.
fn resolve(here: &[String], path: &[String]) -> Option<Vec<String>> {
    let supers = path.iter().take_while(|s| *s == "super").count();
    let (base, rest) = match path.first()?.as_str() {
        "crate" => (&[][..], &path[1..]),
        "self" => (here, &path[1..]),
        "super" if supers <= here.len() => (&here[..here.len() - supers], &path[supers..]),
        _ => return None,
    };
    Some(base.iter().chain(rest).cloned().collect())
}

/// One module's use of another, and the first place it happens.
struct Edge {
    from: String,
    to: String,
    at: String,
}

/// Which modules of the source tree `src` use which, from their `crate::`, `self::` and
/// `super::` paths outside test code and comments. A module is a top-level file or folder of
/// `src`; the crate root (lib.rs, main.rs) is none, but a path to a name it imports
/// (`crate::Error` after `pub use error::Error;`) counts as a path to that name's module.
fn module_edges(src: &str, files: &[(String, String)]) -> Vec<Edge> {
    let mut parsed: Vec<Parsed> = files
        .iter()
        .map(|(rel, text)| Parsed::new(rel, text))
        .collect();
    mark_test_only_files(&mut parsed);
    let prefix = format!("{src}/");
    // `b/inner.rs` is `b::inner`, `b/mod.rs` and `b.rs` are `b`, the crate root is empty.
    let module_path = |rel: &str| {
        let inner = rel.strip_prefix(&prefix).unwrap_or(rel);
        let inner = inner.strip_suffix(".rs").unwrap_or(inner);
        let mut path: Vec<String> = inner.split('/').map(str::to_owned).collect();
        if path.last().is_some_and(|l| l == "mod")
            || (path.len() == 1 && (path[0] == "lib" || path[0] == "main"))
        {
            path.pop();
        }
        path
    };
    let modules: BTreeSet<String> = parsed
        .iter()
        .filter_map(|f| module_path(&f.rel).first().cloned())
        .collect();

    let mut root_names = BTreeMap::new();
    for file in parsed.iter().filter(|f| module_path(&f.rel).is_empty()) {
        let tokens = tokens(&file.code, &file.test);
        for (i, _) in tokens.iter().enumerate().filter(|(_, t)| t.1 == "use") {
            let mut paths = Vec::new();
            use_tree(&tokens, i + 1, &[], &mut paths);
            for (path, name) in paths {
                let skip = usize::from(path[0] == "crate" || path[0] == "self");
                if path.len() >= skip + 2 && modules.contains(&path[skip]) {
                    root_names.insert(name, path[skip].clone());
                }
            }
        }
    }

    let mut edges: BTreeMap<(String, String), String> = BTreeMap::new();
    for file in &parsed {
        let file_path = module_path(&file.rel);
        let Some(from) = file_path.first() else {
            continue;
        };
        let tokens = tokens(&file.code, &file.test);
        // Inline `mod x { … }` blocks open so far, with the brace depth inside each.
        let mut inline: Vec<(usize, String)> = Vec::new();
        let mut depth = 0usize;
        let mut parsed_to = 0;
        for (i, &(line, token)) in tokens.iter().enumerate() {
            let before = |back: usize| i.checked_sub(back).map_or("", |b| tokens[b].1);
            match token {
                "{" => {
                    depth += 1;
                    if before(2) == "mod" {
                        inline.push((depth, before(1).to_owned()));
                    }
                }
                "}" => {
                    if inline.last().is_some_and(|m| m.0 == depth) {
                        inline.pop();
                    }
                    depth = depth.saturating_sub(1);
                }
                "crate" | "self" | "super"
                    if i >= parsed_to && !matches!(before(1), "::" | "$") =>
                {
                    let mut paths = Vec::new();
                    parsed_to = use_tree(&tokens, i, &[], &mut paths);
                    let here: Vec<String> = file_path
                        .iter()
                        .cloned()
                        .chain(inline.iter().map(|m| m.1.clone()))
                        .collect();
                    for (path, _) in paths {
                        let Some(target) = resolve(&here, &path) else {
                            continue;
                        };
                        let Some(first) = target.first() else {
                            continue;
                        };
                        let to = match root_names.get(first) {
                            _ if modules.contains(first) => first,
                            Some(module) => module,
                            None => continue,
                        };
                        if to != from {
                            edges
                                .entry((from.clone(), to.clone()))
                                .or_insert_with(|| format!("{}:{}", file.rel, line + 1));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    edges
        .into_iter()
        .map(|((from, to), at)| Edge { from, to, at })
        .collect()
}

/// Each set of modules that use each other round in a circle, told once, with the shortest
/// circle through its first module: `a -> b (where a uses b) -> a (where b uses a)`.
fn import_circles(src: &str, edges: &[Edge]) -> Vec<String> {
    let modules: BTreeSet<&str> = edges
        .iter()
        .flat_map(|e| [e.from.as_str(), e.to.as_str()])
        .collect();
    // From `start`, the edge by which each module is first reached, breadth first.
    let reach = |start: &str| {
        let mut came: BTreeMap<&str, &Edge> = BTreeMap::new();
        let mut queue = VecDeque::from([start.to_owned()]);
        while let Some(m) = queue.pop_front() {
            for e in edges.iter().filter(|e| e.from == m) {
                if !came.contains_key(e.to.as_str()) {
                    came.insert(&e.to, e);
                    queue.push_back(e.to.clone());
                }
            }
        }
        came
    };
    let reached: BTreeMap<&str, BTreeMap<&str, &Edge>> =
        modules.iter().map(|&m| (m, reach(m))).collect();
    let mut told = BTreeSet::new();
    let mut circles = Vec::new();
    for &start in &modules {
        let from_start = &reached[start];
        if told.contains(start) || !from_start.contains_key(start) {
            continue;
        }
        let tangle: Vec<&str> = modules
            .iter()
            .copied()
            .filter(|&m| from_start.contains_key(m) && reached[m].contains_key(start))
            .collect();
        told.extend(tangle.iter().copied());
        let mut way = vec![from_start[start]];
        while way[0].from != start {
            way.insert(0, from_start[way[0].from.as_str()]);
        }
        let round: String = way
            .iter()
            .map(|e| format!(" -> {} ({})", e.to, e.at))
            .collect();
        let inside: Vec<String> = edges
            .iter()
            .filter(|e| tangle.contains(&e.from.as_str()) && tangle.contains(&e.to.as_str()))
            .map(|e| format!("{} -> {} ({})", e.from, e.to, e.at))
            .collect();
        circles.push(format!(
            "{src}: modules {} import each other in a circle, for one: {start}{round}\n    \
             all their uses of each other: {}",
            tangle.join(", "),
            inside.join(", ")
        ));
    }
    circles
}

/// The 0-based lines of non-test code calling `env::var`, `env::var_os`, `env::vars` or
/// `env::vars_os`, or importing them from `std::env`.
fn env_reads(file: &Parsed) -> Vec<usize> {
    let tokens = tokens(&file.code, &file.test);
    let mut lines = Vec::new();
    for (i, &(line, token)) in tokens.iter().enumerate() {
        if token != "env" || tokens.get(i + 1).is_none_or(|t| t.1 != "::") {
            continue;
        }
        let mut paths = Vec::new();
        use_tree(&tokens, i, &[], &mut paths);
        let reads = paths.iter().any(|(path, _)| {
            path.get(1)
                .is_some_and(|f| ENV_READ_FUNCTIONS.contains(&f.as_str()))
        });
        if reads && !lines.contains(&line) {
            lines.push(line);
        }
    }
    lines
}

/// The 0-based lines where non-test code starts a `.to_string().contains(`, even one that
/// rustfmt split over lines.
fn error_text_matches(file: &Parsed) -> Vec<usize> {
    const NEEDLE: &str = ".to_string().contains(";
    // The code without whitespace, and for each of its bytes the line it came from.
    let mut compact = String::new();
    let mut line_of = Vec::new();
    for (i, line) in file.code.iter().enumerate() {
        if file.test[i] {
            continue;
        }
        for c in line.chars().filter(|c| !c.is_whitespace()) {
            compact.push(c);
            line_of.extend(std::iter::repeat_n(i, c.len_utf8()));
        }
    }
    let mut lines: Vec<usize> = compact
        .match_indices(NEEDLE)
        .map(|(at, _)| line_of[at])
        .collect();
    lines.dedup();
    lines
}

/// The `members` of the workspace manifest.
fn workspace_members(manifest: &str) -> Vec<String> {
    let Some(at) = manifest.find("\nmembers") else {
        return Vec::new();
    };
    let list = &manifest[at..];
    let list = &list[list.find('[').unwrap_or(0)..list.find(']').unwrap_or(list.len())];
    list.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The dependencies a package manifest declares, each with its 0-based line: the keys of
/// `[dependencies]`, `[dev-dependencies]`, `[build-dependencies]` and their
/// `[target.'…'.…]` forms, and the `[dependencies.name]` tables.
fn manifest_dependencies(manifest: &str) -> Vec<(usize, String)> {
    let is_table = |header: &str| {
        let kind = header.rsplit('.').next().unwrap_or(header);
        matches!(
            kind,
            "dependencies" | "dev-dependencies" | "build-dependencies"
        ) && (!header.contains('.') || header.starts_with("target."))
    };
    let mut found = Vec::new();
    let mut in_table = false;
    // Brackets a value left open, so its next lines are not read as keys.
    let mut open = 0i32;
    for (i, line) in manifest.lines().enumerate() {
        let line = toml_code(line);
        let line = line.trim();
        if open > 0 {
            open += bracket_balance(line);
            continue;
        }
        if let Some(header) = line.strip_prefix('[').filter(|h| !h.starts_with('[')) {
            let header = header.trim_end_matches(']').trim();
            in_table = is_table(header);
            if let Some((table, name)) = header.rsplit_once('.')
                && is_table(table)
            {
                found.push((i, name.trim_matches(['"', '\'']).to_owned()));
            }
            continue;
        }
        if let (true, Some((key, value))) = (in_table, line.split_once('=')) {
            let name = key.split('.').next().unwrap_or(key).trim();
            found.push((i, name.trim_matches(['"', '\'']).to_owned()));
            open = bracket_balance(value);
        }
    }
    found
}

/// A TOML line without its `#` comment, and with its strings blanked.
fn toml_code(line: &str) -> String {
    let mut quote = None;
    let mut code = String::new();
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {
                code.push(' ');
                continue;
            }
            None if c == '#' => break,
            None if c == '"' || c == '\'' => quote = Some(c),
            None => {}
        }
        code.push(c);
    }
    code
}

/// How many more brackets a line of TOML opens than it closes.
fn bracket_balance(line: &str) -> i32 {
    line.chars()
        .map(|c| match c {
            '[' | '{' => 1,
            ']' | '}' => -1,
            _ => 0,
        })
        .sum()
}

/// Whether code (comments and literals blanked) names the crate `name`: `name::`, `use name`,
/// `extern crate name`, or an attribute `#[name…]` such as `#[serde(…)]`.
fn names_crate(code: &str, name: &str) -> bool {
    let ends_with_word = |text: &str, word: &str| {
        text.strip_suffix(word)
            .is_some_and(|rest| !rest.ends_with(is_ident))
    };
    code.match_indices(name).any(|(at, _)| {
        let before = &code[..at];
        let after = &code[at + name.len()..];
        if before.ends_with(is_ident) || after.starts_with(is_ident) {
            return false;
        }
        let before = before.trim_end();
        let before_path = before.strip_suffix("::").map_or(before, str::trim_end);
        after.trim_start().starts_with("::")
            || ends_with_word(before_path, "use")
            || ends_with_word(before_path, "crate")
            || before.ends_with("#[")
            || before.ends_with("#![")
    })
}

/// Every variable `crates/exec/src/settings.rs` names is documented in docs/config.md, so a
/// new one cannot ship unexplained.
#[test]
fn every_variable_is_documented() {
    let root = workspace_root();
    let settings = fs::read_to_string(root.join("crates/exec/src/settings.rs")).unwrap();
    let docs = fs::read_to_string(root.join("docs/config.md")).unwrap();
    let start = settings
        .find("variables! {")
        .expect("settings.rs names its variables in `variables! { … }`");
    let end = start + settings[start..].find("\n}").unwrap();
    let names: Vec<&str> = settings[start..end]
        .lines()
        .filter_map(|l| l.split('"').nth(1))
        .collect();
    assert!(names.len() > 20, "found only {names:?}");
    let missing: Vec<&&str> = names
        .iter()
        .filter(|n| !docs.contains(&format!("`{n}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not documented in docs/config.md: {missing:?}"
    );
}
