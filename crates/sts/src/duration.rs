//! Durations as aws-vault users write them: Go style (`1h`, `90m`, `1h30m`, `3600s`), or a
//! bare number of seconds (as `duration_seconds` in the config file).

use std::time::Duration;

/// Parses `1h30m`, `45m`, `900s`, `900`. Errors say what was expected.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("{text:?} is too long"));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => {
                return Err(format!(
                    "{text:?} is not a duration (use e.g. 1h, 90m, 3600s)"
                ));
            }
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration (use e.g. 1h, 90m, 3600s)"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{text:?} is too long"))?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!(
            "{text:?} has a number without a unit (use e.g. 1h, 90m, 3600s)"
        ));
    }
    Ok(Duration::from_secs(total))
}

/// 5400 s → "1h30m"; 900 s → "15m"; 59 s → "59s".
pub fn display(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 || out.is_empty() {
        out.push_str(&format!("{sec}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_style_and_seconds() {
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("900s").unwrap(), Duration::from_secs(900));
        assert_eq!(parse("900").unwrap(), Duration::from_secs(900));
        for bad in ["", "5x", "1h30", "h", "-1h", "1.5h"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(
            parse("99999999999999999999")
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn displays_compactly() {
        assert_eq!(display(Duration::from_secs(5400)), "1h30m");
        assert_eq!(display(Duration::from_secs(28800)), "8h");
        assert_eq!(display(Duration::from_secs(59)), "59s");
    }
}
