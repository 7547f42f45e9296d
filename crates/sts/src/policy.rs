//! Session policies: an inline JSON policy and managed policy ARNs that narrow one session
//! below what its role allows (`Policy`, `PolicyArns` on the last AssumeRole). Checked here,
//! before any call, as STS would check them: the JSON must parse (the error names its line
//! and column), its packed form (whitespace outside strings removed) is at most 2,048
//! characters of U+0020–U+00FF, and each ARN names an IAM policy.

use sha2::{Digest, Sha256};

use crate::origin::Sourced;

/// STS's limit on an inline session policy, in characters once packed.
pub const MAX_PACKED: usize = 2048;
/// STS takes at most this many managed session policies.
pub const MAX_ARNS: usize = 10;

/// An inline policy, packed, and the file it was read from (none when written inline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyDocument {
    pub packed: String,
    pub file: Option<String>,
}

/// What narrows a session: an inline policy and managed policy ARNs (either may be absent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionPolicy {
    pub document: Option<Sourced<PolicyDocument>>,
    pub arns: Vec<Sourced<String>>,
}

impl SessionPolicy {
    /// A digest of everything sent, for the session's cache key: sessions narrowed
    /// differently (or not at all) never share a key.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(
            self.document
                .as_ref()
                .map_or("-", |d| d.value.packed.as_str()),
        );
        for arn in &self.arns {
            hasher.update([0]);
            hasher.update(arn.value.as_bytes());
        }
        hex::encode(&hasher.finalize()[..12])
    }

    /// The inline policy as sent.
    pub fn packed(&self) -> Option<&str> {
        self.document.as_ref().map(|d| d.value.packed.as_str())
    }

    /// The ARNs as sent.
    pub fn arn_values(&self) -> Vec<String> {
        self.arns.iter().map(|a| a.value.clone()).collect()
    }
}

/// `value` as a policy: inline JSON when it starts with `{`, else the path of a file
/// holding it. The error says what is wrong and where (line and column of the JSON).
pub fn document(value: &str) -> Result<PolicyDocument, String> {
    if value.trim_start().starts_with('{') {
        return pack(value).map(|packed| PolicyDocument { packed, file: None });
    }
    let text = crate::config::read_token_file(std::path::Path::new(value))
        .map_err(|e| format!("cannot read the policy file {value}: {e}"))?;
    let packed = pack(&text).map_err(|e| format!("{value}: {e}"))?;
    Ok(PolicyDocument {
        packed,
        file: Some(value.to_owned()),
    })
}

/// The policy JSON without whitespace outside strings, checked against STS's limits.
fn pack(text: &str) -> Result<String, String> {
    // serde_json's message ends with the line and column.
    let parsed: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    if !parsed.is_object() {
        return Err("a policy is a JSON object ({\"Version\": ..., \"Statement\": [...]})".into());
    }
    let mut packed = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            packed.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_string = c == '"';
            packed.push(c);
        }
    }
    if let Some(c) = packed.chars().find(|c| !('\u{20}'..='\u{ff}').contains(c)) {
        return Err(format!(
            "it contains {c:?} (U+{:04X}); STS takes only characters U+0020 to U+00FF in a policy (write it as a \\u escape)",
            c as u32
        ));
    }
    let length = packed.chars().count();
    if length > MAX_PACKED {
        return Err(format!(
            "it is {length} characters once packed (whitespace outside strings removed); STS takes at most {MAX_PACKED}"
        ));
    }
    Ok(packed)
}

/// `arn:PARTITION:iam::ACCOUNT:policy/NAME`, ACCOUNT being 12 digits or `aws` (AWS managed).
pub fn check_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let problem = if arn.chars().any(|c| c.is_control() || c.is_whitespace()) {
        "it contains a control character or whitespace"
    } else if parts.len() != 6 || parts[0] != "arn" || !parts[1].starts_with("aws") {
        "expected arn:aws:iam::123456789012:policy/NAME"
    } else if parts[2] != "iam" || !parts[3].is_empty() {
        "not an IAM ARN (arn:aws:iam::...)"
    } else if !(parts[4] == "aws"
        || (parts[4].len() == 12 && parts[4].bytes().all(|b| b.is_ascii_digit())))
    {
        "the account must be 12 digits, or aws for an AWS managed policy"
    } else if !parts[5].starts_with("policy/") || parts[5].len() <= "policy/".len() {
        "expected policy/NAME after the account"
    } else {
        return Ok(());
    };
    Err(format!("{arn:?} is not a policy ARN: {problem}"))
}

/// The ARNs of a list (commas or whitespace between them), each checked, at most [`MAX_ARNS`].
pub fn arns(list: &str) -> Result<Vec<String>, String> {
    let arns: Vec<String> = list
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    check_arns(&arns)?;
    Ok(arns)
}

/// Each ARN checked, and no more than STS takes.
pub fn check_arns(arns: &[String]) -> Result<(), String> {
    for arn in arns {
        check_arn(arn)?;
    }
    if arns.len() > MAX_ARNS {
        return Err(format!(
            "{} policy ARNs; STS takes at most {MAX_ARNS}",
            arns.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_removes_whitespace_outside_strings_only() {
        let text = "{\n  \"Statement\" : [ {\"Sid\": \"a b\\\" c\", \"Action\": \"s3:*\"} ]\n}\n";
        assert_eq!(
            pack(text).unwrap(),
            r#"{"Statement":[{"Sid":"a b\" c","Action":"s3:*"}]}"#
        );
    }

    #[test]
    fn bad_json_names_line_and_column() {
        let e = pack("{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [,]\n}").unwrap_err();
        assert!(e.contains("line 3 column"), "{e}");
        assert!(pack("[]").unwrap_err().contains("JSON object"));
        assert!(pack("{\"a\":\"\u{2019}\"}").unwrap_err().contains("U+2019"));
    }

    #[test]
    fn the_packed_limit_is_2048_characters() {
        let fill = |n: usize| format!("{{\"a\":\"{}\"}}", "x".repeat(n - 8));
        assert_eq!(pack(&fill(MAX_PACKED)).unwrap().len(), MAX_PACKED);
        // Whitespace outside strings does not count.
        let spaced = fill(MAX_PACKED).replace(':', " :   ");
        assert!(pack(&spaced).is_ok());
        assert!(pack(&fill(MAX_PACKED + 1)).unwrap_err().contains("2049"));
    }

    #[test]
    fn policy_arns_are_checked() {
        assert!(check_arn("arn:aws:iam::aws:policy/ReadOnlyAccess").is_ok());
        assert!(check_arn("arn:aws-cn:iam::123456789012:policy/team/Mine").is_ok());
        for bad in [
            "arn:aws:iam::123456789012:role/x",
            "arn:aws:iam::12345:policy/x",
            "arn:aws:s3:::bucket",
            "ReadOnlyAccess",
            "arn:aws:iam::aws:policy/",
        ] {
            assert!(check_arn(bad).is_err(), "{bad}");
        }
        assert_eq!(arns("a, b").unwrap_err(), check_arn("a").unwrap_err());
        let many = vec!["arn:aws:iam::aws:policy/P".to_owned(); 11];
        assert!(check_arns(&many).unwrap_err().contains("at most 10"));
    }

    #[test]
    fn the_digest_covers_document_and_arns() {
        let origin = crate::origin::Origin::Default;
        let doc = |t: &str| {
            Some(Sourced::new(
                PolicyDocument {
                    packed: t.into(),
                    file: None,
                },
                origin.clone(),
            ))
        };
        let a = SessionPolicy {
            document: doc("{}"),
            arns: vec![],
        };
        let b = SessionPolicy {
            document: doc("{}"),
            arns: vec![Sourced::new("arn".into(), origin.clone())],
        };
        let c = SessionPolicy {
            document: doc("{\"x\":1}"),
            arns: vec![],
        };
        assert_ne!(a.digest(), b.digest());
        assert_ne!(a.digest(), c.digest());
    }
}
