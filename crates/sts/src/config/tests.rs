//! The config readers and writers against files in a temp dir: the SDK parser, lines, the
//! rewrites that keep every other byte.

use std::fs;

use super::*;

#[test]
fn parses_profiles_like_the_sdk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    fs::write(
        &path,
        "[default]\nregion = eu-west-1\n[profile lab]\nrole_arn = arn:aws:iam::1:role/x\n\
         [sso-session corp]\nsso_region = us-east-1\n[services local]\nsts =\n  endpoint_url = http://x\n",
    )
    .unwrap();
    let config = ConfigFile::load(&path).unwrap();
    assert_eq!(config.profile_names(), vec!["default", "lab"]);
}

#[test]
fn parse_errors_name_the_line() {
    for (text, expected) in [
        (
            "[profile a;b]\n",
            "line 1: Profile definition must end with ']'",
        ),
        (
            "[profile lab]\njunk\n",
            "line 2: Expected an '=' sign defining a property",
        ),
    ] {
        assert_eq!(parse(text).unwrap_err(), expected, "{text:?}");
    }
}

/// aws-config gives the line of a parse error only in its message: this fails when the
/// wording changes, before users lose the line (see `parse_error_line`).
#[test]
fn the_parsers_wording_still_names_the_line() {
    let bad = "[profile lab]\nregion = eu-west-1\njunk\n";
    let chain = sdk_parse(bad, ProfileFileKind::Config).unwrap_err();
    let (line, reason) = parse_error_line(&chain)
        .unwrap_or_else(|| panic!("no line in aws-config's message {chain:?}"));
    assert_eq!(line, 3, "{chain:?}");
    assert!(reason.contains("'='"), "{chain:?}");
}

#[test]
fn appends_missing_section_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    let original = "# mine\n[profile lab]\nregion = eu-west-1";
    fs::write(&path, original).unwrap();
    assert!(!ensure_profile_section(&path, "lab").unwrap());
    assert_eq!(fs::read_to_string(&path).unwrap(), original);
    assert!(ensure_profile_section(&path, "prod").unwrap());
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        format!("{original}\n[profile prod]\n")
    );
    assert!(ensure_profile_section(&path, "default").unwrap());
    assert!(
        fs::read_to_string(&path)
            .unwrap()
            .ends_with("[profile prod]\n[default]\n")
    );
}

/// `vault signin`'s edit: keys under the profile's header, or a new section; the rest of
/// the file (comments, CRLF, other profiles) byte for byte; a file the AWS CLI refuses
/// (a BOM) is refused and left as it is.
#[test]
fn adds_keys_below_the_header_or_in_a_new_section() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    let bom = "\u{feff}[profile console]\n";
    fs::write(&path, bom).unwrap();
    assert!(add_profile_keys(&path, "console", &[("region", "us-west-2")]).is_err());
    assert_eq!(fs::read_to_string(&path).unwrap(), bom);
    let original = "# mine\r\n[profile console] ; note\r\noutput = json\r\n[profile other]\r\nregion = eu-west-1\r\n";
    fs::write(&path, original).unwrap();
    let arn = "arn:aws:iam::123456789012:user/alice";
    let written = add_profile_keys(
        &path,
        "console",
        &[("login_session", arn), ("region", "us-west-2")],
    )
    .unwrap();
    assert_eq!(written, ["login_session", "region"]);
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        original.replace(
            "; note\r\n",
            &format!("; note\r\nlogin_session = {arn}\r\nregion = us-west-2\r\n")
        )
    );
    // Already there: nothing written.
    let before = fs::read_to_string(&path).unwrap();
    assert!(
        add_profile_keys(&path, "console", &[("login_session", arn)])
            .unwrap()
            .is_empty()
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), before);
    // The region of [profile other] is kept; a missing profile gets a section.
    assert_eq!(
        add_profile_keys(&path, "other", &[("region", "us-east-1")]).unwrap(),
        Vec::<String>::new()
    );
    add_profile_keys(&path, "new", &[("login_session", arn)]).unwrap();
    assert!(
        fs::read_to_string(&path)
            .unwrap()
            .ends_with(&format!("[profile new]\r\nlogin_session = {arn}\r\n"))
    );
    let config = ConfigFile::load(&path).unwrap();
    assert_eq!(
        config.get("console", "login_session").map(|v| v.0),
        Some(arn)
    );
    assert_eq!(config.get("console", "output").map(|v| v.0), Some("json"));
}

#[test]
fn finds_lines_of_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    fs::write(
        &path,
        "[default]\nregion = eu-west-1\n\n[profile lab]\n# c\nRole_Arn = arn:x\ns3 =\n  sub = y\n[sso-session s]\nregion = z\n",
    )
    .unwrap();
    let config = ConfigFile::load(&path).unwrap();
    assert_eq!(
        config.get("default", "region"),
        Some(("eu-west-1", Some(2)))
    );
    assert_eq!(config.get("lab", "role_arn"), Some(("arn:x", Some(6))));
    assert_eq!(config.get("lab", "region"), None);
}

#[test]
fn load_for_parses_only_the_chain_and_keeps_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    let mut text = String::from("# top\n[default]\nregion = us-east-1\n");
    for i in 0..200 {
        text.push_str(&format!("[profile p{i}]\nregion = eu-west-1\n"));
    }
    text.push_str(
        "[profile lab]\nsource_profile = base\nrole_arn = arn:x\n\
         [profile base]\ninclude_profile = common\n[profile common]\nmfa_serial = m\n\
         [services local]\nsts =\n  endpoint_url = http://x\n",
    );
    std::fs::write(&path, &text).unwrap();
    let full = ConfigFile::load(&path).unwrap();
    let part = ConfigFile::load_for(&path, "lab").unwrap();
    assert_eq!(part.profile_names(), vec!["base", "common", "lab"]);
    for (p, k) in [
        ("lab", "role_arn"),
        ("base", "include_profile"),
        ("common", "mfa_serial"),
    ] {
        assert_eq!(part.get(p, k), full.get(p, k), "{p}.{k}");
    }
    assert!(part.get("lab", "role_arn").unwrap().1.unwrap() > 400);
    // Unknown profiles stay unknown.
    assert!(
        !ConfigFile::load_for(&path, "nope")
            .unwrap()
            .has_profile("nope")
    );
}

#[test]
fn key_pairs_leave_the_credentials_file_and_nothing_else_does() {
    let text = "# keep\n[a]\naws_access_key_id = AKIA1\naws_secret_access_key = s1\n\n[b]\nregion = x\nAWS_ACCESS_KEY_ID=AKIA2\naws_secret_access_key = s2\n[c]\naws_access_key_id = AKIA3\n";
    assert_eq!(
        without_key_pair(text, "a"),
        "# keep\n[b]\nregion = x\nAWS_ACCESS_KEY_ID=AKIA2\naws_secret_access_key = s2\n[c]\naws_access_key_id = AKIA3\n"
    );
    assert_eq!(
        without_key_pair(text, "b"),
        "# keep\n[a]\naws_access_key_id = AKIA1\naws_secret_access_key = s1\n\n[b]\nregion = x\n[c]\naws_access_key_id = AKIA3\n"
    );
    assert_eq!(without_key_pair(text, "nope"), text);
}

#[test]
fn missing_file_is_empty_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = ConfigFile::load(&dir.path().join("nope")).unwrap();
    assert!(config.profile_names().is_empty());
}
