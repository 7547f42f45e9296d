//! The AWS CLI's reading of a config file where aws-config's parser would differ: applied
//! before aws-config parses, so every command and `aws --profile` agree on what a file says.

use std::borrow::Cow;

/// The file as the AWS CLI reads it (botocore's configparser), where aws-config's parser
/// would read it otherwise: one rule for every command, and the same as `aws --profile`'s.
///
/// - A byte order mark at the start is an error (the AWS CLI refuses the file; aws-config
///   would skip the first section, and with it, say, the profile's `mfa_serial`).
/// - A header indented where no property is being continued (at the start, after another
///   header) is a section: its line is given to aws-config without the indentation.
/// - A section, or a property within one, given twice is an error (the AWS CLI refuses it;
///   aws-config would keep the last).
///
/// Line numbers stay as they are. `View::whole_parse` says a line is one this scan cannot
/// vouch for (no `=`, a property before any section, a `[` without `]`): only aws-config's
/// parse of the whole file can say what is wrong there.
pub(super) fn as_the_cli_reads(text: &str) -> Result<View<'_>, String> {
    if text.starts_with('\u{feff}') {
        return Err(
            "line 1: the file starts with a byte order mark (U+FEFF), which the AWS \
                    CLI refuses too; save it as UTF-8 without one"
                .to_owned(),
        );
    }
    let mut dedented: Option<String> = None;
    let mut whole_parse = false;
    let mut sections = std::collections::HashSet::new();
    let mut section = String::new();
    let mut properties = std::collections::HashSet::new();
    let mut continuing = false;
    let mut indent_level = 0;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let number = index + 1;
        let start = offset;
        offset += line.len();
        let body = line.trim_end_matches(['\n', '\r']);
        let content = body.trim();
        let indent = body.len() - body.trim_start().len();
        let keep = |dedented: &mut Option<String>| {
            if let Some(out) = dedented {
                out.push_str(line);
            }
        };
        // Blank lines and comments neither start nor end a property's continuation.
        if content.is_empty() || content.starts_with(['#', ';']) {
            keep(&mut dedented);
            continue;
        }
        if continuing && indent > indent_level {
            keep(&mut dedented);
            continue;
        }
        indent_level = indent;
        if content.starts_with('[') && !content.contains(']') {
            whole_parse = true;
        }
        if let Some(end) = content.strip_prefix('[').and_then(|c| c.rfind(']')) {
            section = content[1..=end].to_owned();
            if !sections.insert(section.clone()) {
                return Err(format!(
                    "line {number}: the section [{section}] appears twice, which the AWS CLI \
                     refuses; merge the two"
                ));
            }
            properties.clear();
            continuing = false;
            if indent > 0 {
                let out = dedented.get_or_insert_with(|| text[..start].to_owned());
                out.push_str(line.trim_start());
            } else {
                keep(&mut dedented);
            }
            continue;
        }
        if sections.is_empty() || !content.contains('=') {
            whole_parse = true;
        }
        if let Some((key, _)) = content.split_once('=') {
            let key = key.trim().to_ascii_lowercase();
            if !properties.insert(key.clone()) {
                return Err(format!(
                    "line {number}: {key} is set twice in [{section}], which the AWS CLI \
                     refuses; keep one"
                ));
            }
        }
        continuing = true;
        keep(&mut dedented);
    }
    Ok(View {
        text: dedented.map_or(Cow::Borrowed(text), Cow::Owned),
        whole_parse,
    })
}

/// The text to give aws-config's parser, and whether only the whole file's parse can judge it.
pub(super) struct View<'a> {
    pub(super) text: Cow<'a, str>,
    pub(super) whole_parse: bool,
}
