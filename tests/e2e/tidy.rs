//! Repository policy checked by an ordinary test ("tidy"): every lint relaxation says why,
//! `unsafe` stays in the files ARCHITECTURE.md lists, the library crates never print, every
//! module starts with a `//!` doc, and no credential-shaped literal sits in non-test code.
//!
//! It reads the sources as text with a small lexer (comments and literals told apart from
//! code) and the standard library only, so it needs neither the rig nor a parser crate.
//! Test code, where fake keys belong, is `tests/` and everything after a `#[cfg(test)]` line;
//! `xtask` gets its keys from moto at run time, so the key check covers it too. AWS's own
//! documentation examples (`AKIAIOSFODNN7EXAMPLE`, the secret ending `EXAMPLEKEY`) are public
//! placeholders, allowed everywhere: `vault add` quotes one in a hint.

use std::fs;
use std::path::{Path, PathBuf};

/// Only these hold print macros back: the binary, the rig and xtask may print.
const NO_PRINT_DIRS: &[&str] = &["crates/vault/", "crates/sts/"];
const PRINT_MACROS: &[&str] = &["print", "println", "eprint", "eprintln", "dbg"];
/// Where the Rust sources are, relative to the workspace root.
const SOURCE_DIRS: &[&str] = &["crates", "tests", "xtask"];

#[test]
fn tidy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_owned();
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
